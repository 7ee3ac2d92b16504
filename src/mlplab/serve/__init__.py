"""Serve a run's model over HTTP: a JSON API, FastAPI's docs, and a page to draw digits on.

``mlplab serve RUN`` (or :func:`serve`) runs uvicorn on 127.0.0.1:8000; :func:`create_app`
returns the app itself (for tests, or to mount it in another ASGI app). Both take a
:class:`~mlplab.serve.settings.ServeSettings` (every default, with its unit) and/or any of
its fields by name. The routes are described in :mod:`mlplab.serve.app`; ``/predict`` gives
the run's rejection of unfamiliar inputs (``reject=False``, ``--no-reject``: off), and the
startup log says in one line the temperature and whether rejection is on (if off, why).
Needs the ``serve`` extra: ``pip install 'mlplab[serve]'``. The server has no
authentication: keep it on the loopback address, or put it behind a proxy that
authenticates.

Against slow, silent and numerous clients, :func:`serve` binds its address before the
model loads (a port in use, out of range or privileged, or a host that does not resolve,
is one line), drops a connection whose request head has not arrived ``request_timeout``
seconds after it connected (or after its first byte following a keep-alive), closes idle
keep-alive connections after ``timeout_keep_alive``, answers 503 past
``max_connections``, and logs a repeated warning (an accept loop out of file descriptors,
invalid requests) once, then at most once a minute with a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ConfigError
from ..extras import require
from ..files.limits import printable
from ..progress import logger
from .ports import free_port_near, holder
from .settings import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeSettings", "bind", "create_app", "is_loopback", "serve", "uvicorn_server"]

LOG_WINDOW = 60.0  # s: a repeated warning is logged once per window, with a count
# Connections waiting to be accepted; also how many accept() calls asyncio makes per wakeup.
# Out of file descriptors, CPython without the fix of gh-151615 (3.11 here) does not stop
# at the first EMFILE but goes on `backlog` times, logging and scheduling a retry each time:
# with uvicorn's 2048, 40% of a core spent failing (measured, 2-core VM); with 128, 3%.
BACKLOG = 128
MAX_OPEN_FILES = 65536  # the file descriptor limit serve raises its soft limit towards
DEFAULTS = ServeSettings()


def create_app(
    run_dir: str | Path, settings: ServeSettings | None = None, **changes: object
) -> FastAPI:
    """The FastAPI app for ``run_dir``, as ``settings`` (then ``changes`` to them) say.

    ``changes``: any field of :class:`ServeSettings` by name, e.g. ``max_batch=8``.
    """
    settings = (settings or DEFAULTS).replace(**changes)  # a bad name: before the extras
    require("fastapi", "serve", "mlplab serve")
    require(("python_multipart", "multipart"), "serve", "mlplab serve")  # newer, older name
    from .app import create_app as make

    return make(run_dir, settings)


def serve(run_dir: str | Path, settings: ServeSettings | None = None, **changes: object) -> None:
    """Run the app with uvicorn until interrupted, as ``settings`` (then ``changes``) say.

    ``changes``: any field of :class:`ServeSettings` by name, e.g. ``host="0.0.0.0"``.
    ``threads``: torch CPU threads (0: torch's default). One suits a small MLP best and
    leaves the other cores to decoding uploads and the event loop. The address is bound
    first (:func:`bind`), before the model loads.
    """
    require("uvicorn", "serve", "mlplab serve")  # before binding: a missing extra is one line
    settings = (settings or DEFAULTS).replace(**changes)
    host = settings.host
    sockets = bind(host, settings.port)
    try:
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        app = create_app(run_dir, settings)
        if not is_loopback(host):
            logger.warning(
                f"warning: serving on {printable(host)}, reachable from other machines, and the "
                "server has no authentication: anyone who can reach it can use the model. Use "
                "--host 127.0.0.1 to keep it local, or put it behind an authenticating proxy"
            )
        raise_open_file_limit()
        server = uvicorn_server(app, settings)
        port = sockets[0].getsockname()[1]  # port 0: the one the system chose
        shown = f"[{host.strip('[]')}]" if ":" in host else host
        logger.info(f"serving {Path(run_dir)} on http://{shown}:{port}/  (API docs: /docs)")
        # once, not per request: a run without a rejection serves every input unchecked
        off_in_run = app.state.predictor.rejection_off is not None
        (logger.warning if off_in_run else logger.info)(app.state.service.startup_line())
        with quiet_repeats(("asyncio", "uvicorn.error")), warnings.catch_warnings():
            # Pillow warns of large or damaged uploads on stderr; the answer says it already
            warnings.filterwarnings("ignore", module=r"PIL\.")
            server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()


def uvicorn_server(app: Any, settings: ServeSettings | None = None, **changes: object) -> Any:
    """The ``uvicorn.Server`` :func:`serve` runs: deadlines, connection limit, short backlog.

    Of the settings it uses log_level, timeout_keep_alive, request_timeout and
    max_connections.
    """
    uvicorn = require("uvicorn", "serve", "mlplab serve")
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    settings = (settings or DEFAULTS).replace(**changes)
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        http=deadline_protocol(AutoHTTPProtocol, settings.request_timeout),
        timeout_keep_alive=settings.timeout_keep_alive,
        limit_concurrency=settings.max_connections,
        backlog=BACKLOG,
    )
    return uvicorn.Server(config)


def bind(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address of ``host`` at ``port`` (not listening yet).

    ConfigError, one line, for a port outside 0-65535, a host that does not resolve or is
    not this machine's, a port in use, or a privileged port without the right to it.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 1-65535 (0: any free port); got {printable(port)}")
    name = host.strip("[]")
    try:
        found = socket.getaddrinfo(
            name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid host name"
        raise ConfigError(
            f"--host {printable(host)}: cannot resolve it ({reason}); give an address of this "
            "machine (127.0.0.1, ::1, 0.0.0.0) or a name that resolves to one"
        ) from None
    sockets: list[socket.socket] = []
    failure: ConfigError | None = None
    for family, kind, proto, _, address in dict.fromkeys(  # unique, in the resolver's order
        (f, k, p, "", a) for f, k, p, _, a in found
    ):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers
            if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            # listen now, not in uvicorn: a server still starting has bound the port without
            # listening, so bind() alone succeeds under SO_REUSEADDR and uvicorn's listen()
            # failed after "serving on ..." (exit 3). Connections wait in the backlog meanwhile.
            sock.listen(BACKLOG)
            sockets.append(sock)
        except OSError as exc:
            sock.close()
            if family == socket.AF_INET6 and exc.errno == errno.EADDRNOTAVAIL:
                failure = failure or _bind_error(host, port, address[0], exc)
                continue  # IPv6 switched off: "localhost" still serves on 127.0.0.1
            for other in sockets:
                other.close()
            raise _bind_error(host, port, address[0], exc) from None
    if not sockets:
        raise failure or ConfigError(f"--host {printable(host)}: resolves to no address")
    return sockets


def _bind_error(host: str, port: int, address: str, exc: OSError) -> ConfigError:
    named = printable(host) if host == address else f"{printable(host)} ({address})"
    where = f"{named}:{port}"
    free = free_port_near(host, port)
    instead = f", e.g. --port {free}" if free else ""
    if exc.errno == errno.EADDRINUSE:
        found = holder(port)
        who = f"by pid {found[0]} ({printable(found[1])})" if found else "(another server?)"
        why = f"port {port} is in use {who}; stop it, or pass a free port{instead}"
    elif exc.errno == errno.EACCES and 0 < port < 1024:
        why = (
            f"port {port} is privileged: binding it needs root (or CAP_NET_BIND_SERVICE); "
            f"pass a port from 1024 up{instead}"
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"{address} is not an address of this machine; give one of its own with --host"
    else:
        why = exc.strerror or str(exc)
    return ConfigError(f"cannot listen on {where}: {why}")


def deadline_protocol(base: type[asyncio.Protocol], timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol ``base`` with a deadline for each request's head.

    uvicorn times out only idle keep-alive connections, after a response: a client that
    connects and sends nothing, or its headers a byte at a time, holds its connection (and
    a file descriptor) forever. Here the head of a request must arrive within ``timeout``
    seconds of the connection (or of the first byte after a response); the body has the
    app's own deadline (408).
    """

    class DeadlineProtocol(base):  # type: ignore[valid-type, misc]
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = getattr(self, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                self._disarm()  # a request is being served: its head arrived in time
            elif self._deadline is None and not self.transport.is_closing():
                self._arm()  # the first bytes of a next request: its head has `timeout` s

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    DeadlineProtocol.__name__ = DeadlineProtocol.__qualname__ = f"Deadline{base.__name__}"
    return DeadlineProtocol


class _Repeats(logging.Filter):
    """Let a warning through once, then at most once per ``window`` s, with a count.

    An accept loop out of file descriptors logs its error (with a traceback) every second,
    and each invalid request or request over the connection limit logs a warning: under a
    flood, the log would be nothing else.
    """

    def __init__(self, window: float = LOG_WINDOW) -> None:
        super().__init__()
        self.window = window
        self.seen: dict[str, tuple[float, int]] = {}  # first line -> (when logged, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = f"{record.name}:{record.getMessage().partition(chr(10))[0][:120]}"
        now = time.monotonic()
        last, held = self.seen.get(key, (-self.window, 0))
        if now - last < self.window:
            self.seen[key] = (last, held + 1)
            return False
        if len(self.seen) > 1000:  # messages with varying parts: forget, rather than grow
            self.seen.clear()
        self.seen[key] = (now, 0)
        if held:
            held_back = f"{held} more like this in the last {self.window:g} s not shown"
            record.msg = f"{record.getMessage()} [{held_back}]"
            record.args = ()
        return True


@contextlib.contextmanager
def quiet_repeats(names: tuple[str, ...], window: float = LOG_WINDOW) -> Iterator[_Repeats]:
    """Install :class:`_Repeats` on the loggers ``names`` (and their handlers) for the block."""
    repeats = _Repeats(window)
    loggers = [logging.getLogger(name) for name in names]
    for log in loggers:
        log.addFilter(repeats)
    try:
        yield repeats
    finally:
        for log in loggers:
            log.removeFilter(repeats)


def raise_open_file_limit(target: int = MAX_OPEN_FILES) -> None:
    """Raise the soft limit on open files towards the hard one (each connection takes one)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def is_loopback(host: str) -> bool:
    """Does ``host`` only accept connections from this machine?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False
