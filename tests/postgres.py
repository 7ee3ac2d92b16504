"""A throw-away PostgreSQL cluster on loopback, for the tests of sweeps shared by workers.

``throwaway_cluster()`` runs Debian's (or any) ``initdb`` into a temporary folder with
trust authentication, starts ``postgres`` on 127.0.0.1 at a free port with its socket in
that folder, creates a database and yields its URL; on exit it stops the server
(``-m immediate``) and deletes the folder. As root it runs them as the ``postgres`` user
(PostgreSQL refuses to run as root). Without PostgreSQL binaries it raises
:class:`NoPostgres` with the reason, which the tests turn into a skip.

Run it as a script to get a server for a few minutes by hand (docs/scale.md does):
``python tests/postgres.py 600``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NoPostgres", "postgres_bin", "throwaway_cluster"]


class NoPostgres(RuntimeError):
    """PostgreSQL cannot be started here; the message says why."""


def postgres_bin() -> Path | None:
    """The folder of initdb, pg_ctl and createdb: the newest /usr/lib/postgresql/*/bin, else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)  # fmt: skip
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_cluster(database: str = "mlplab") -> Iterator[str]:
    """Yield ``postgresql://postgres@127.0.0.1:PORT/<database>`` of a fresh, private server."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise NoPostgres(
            "no PostgreSQL binaries (initdb) in /usr/lib/postgresql/*/bin or on PATH; "
            "install them with: apt-get install postgresql"
        )
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="mlplab-pg-"))
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres user
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise NoPostgres(
                "running as root and there is no 'postgres' user to run the server as"
            ) from None
        runuser = shutil.which("runuser")
        if runuser is None:
            shutil.rmtree(root, ignore_errors=True)
            raise NoPostgres("running as root without runuser to switch to the 'postgres' user")
        shutil.chown(root, "postgres")
        prefix = [runuser, "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, text=True, timeout=60)

    started = False
    try:
        try:
            run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
            options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                "-t", "30", "-o", options, "start")  # fmt: skip
            started = True
            run(
                str(bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                database,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            said = getattr(exc, "stderr", "") or ""
            raise NoPostgres(
                f"PostgreSQL did not start: {Path(exc.cmd[len(prefix)]).name}: {said.strip()[:300]}"
            ) from None
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError):
                run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # a server for a while, by hand: python tests/postgres.py SECONDS
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill PID` still stops the server
    with throwaway_cluster() as url:
        print(url, flush=True)
        time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 600)
