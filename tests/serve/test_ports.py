"""A port that cannot be served on is one line before anything is announced: who holds it,
and a free port to pass instead (serve.bind, serve.ports)."""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
from pathlib import Path

import pytest

from mlplab.cli import main
from mlplab.errors import ConfigError
from mlplab.serve import bind
from mlplab.serve.ports import free_port_near, holder


def held(listen: bool) -> socket.socket:
    """A loopback port taken by this process, as another server would take it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio and uvicorn do
    sock.bind(("127.0.0.1", 0))
    if listen:
        sock.listen()
    return sock


def test_a_second_serve_on_the_port_of_one_still_loading_its_model_fails_at_bind() -> None:
    """`mlplab serve` binds before its model loads; under SO_REUSEADDR two bound sockets that
    do not listen yet do not conflict, so a second serve used to bind too, announce 'serving
    on ...' and die in uvicorn's listen() with [Errno 98], exit 3. bind() listens at once."""
    first = bind("127.0.0.1", 0)
    port = first[0].getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: port "):
            for sock in bind("127.0.0.1", port):
                sock.close()
    finally:
        for sock in first:
            sock.close()


def test_serve_on_a_busy_port_is_one_line_naming_the_holder_and_a_free_port(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with held(listen=True) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", str(tmp_path / "no-such-run"), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert "serving" not in out
    assert err.count("\n") == 1
    match = re.fullmatch(
        rf"mlplab: error: cannot listen on 127\.0\.0\.1:{port}: port {port} is in use by "
        rf"pid {os.getpid()} \((.+)\); stop it, or pass a free port, e\.g\. --port (\d+)\n",
        err,
    )
    assert match, err
    assert "python" in match[1] or "pytest" in match[1]
    assert int(match[2]) != port


def test_holder_names_the_process_or_nothing() -> None:
    with held(listen=True) as taken:
        port = taken.getsockname()[1]
        found = holder(port)
    if not Path("/proc/net/tcp").exists():
        assert found is None  # no /proc: nothing to read, nothing guessed
        return
    assert found is not None and found[0] == os.getpid()
    assert found[1].split()[0].endswith(os.path.basename(sys.executable)) or "py" in found[1]
    assert holder(port) is None  # closed: nobody holds it


def test_free_port_near_skips_the_taken_ones() -> None:
    with held(listen=True) as a:
        port = a.getsockname()[1]
        suggestion = free_port_near("127.0.0.1", port)
        assert suggestion is not None and suggestion != port and 1024 <= suggestion <= 65535
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", suggestion))  # really free


def test_a_privileged_port_names_a_free_one_from_1024_up(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_bind = socket.socket.bind

    def refused(sock: socket.socket, address: tuple) -> None:  # as for a user who is not root
        if address[1] < 1024:
            raise PermissionError(errno.EACCES, "Permission denied")
        real_bind(sock, address)

    monkeypatch.setattr(socket.socket, "bind", refused)
    assert main(["serve", str(tmp_path / "no-such-run"), "--port", "80"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"mlplab: error: cannot listen on 127\.0\.0\.1:80: port 80 is privileged: binding it "
        r"needs root \(or CAP_NET_BIND_SERVICE\); pass a port from 1024 up, e\.g\. "
        r"--port \d{4,5}\n",
        err,
    ), err
