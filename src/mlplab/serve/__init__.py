"""Serve a run's model over HTTP: a JSON API, FastAPI's docs, and a page to draw digits on.

``mlplab serve RUN`` (or :func:`serve`) runs uvicorn on 127.0.0.1:8000; :func:`create_app`
returns the app itself (for tests, or to mount it in another ASGI app). The routes are
described in :mod:`mlplab.serve.app`. Needs the ``serve`` extra:
``pip install 'mlplab[serve]'``. The server has no authentication: keep it on the
loopback address, or put it behind a proxy that authenticates.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..extras import require
from ..progress import logger

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app", "is_loopback", "serve"]


def create_app(run_dir: str | Path, **options: Any) -> FastAPI:
    """The FastAPI app for ``run_dir``; options: max_upload_bytes, max_batch, max_wait_ms, style."""
    require("fastapi", "serve", "mlplab serve")
    require(("python_multipart", "multipart"), "serve", "mlplab serve")  # newer, older name
    from .app import create_app as make

    return make(run_dir, **options)


def serve(
    run_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    threads: int = 1,
    **options: Any,
) -> None:
    """Run the app with uvicorn until interrupted (options as for :func:`create_app`).

    ``threads``: torch CPU threads (0: torch's default). One suits a small MLP best and
    leaves the other cores to decoding uploads and the event loop.
    """
    uvicorn = require("uvicorn", "serve", "mlplab serve")
    if threads > 0:
        torch.set_num_threads(threads)
    app = create_app(run_dir, **options)
    if not is_loopback(host):
        logger.warning(
            f"warning: serving on {host}, reachable from other machines, and the server has no "
            "authentication: anyone who can reach it can use the model. Use --host 127.0.0.1 "
            "to keep it local, or put it behind an authenticating proxy"
        )
    shown = f"[{host}]" if ":" in host else host
    logger.info(f"serving {Path(run_dir)} on http://{shown}:{port}/  (API docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def is_loopback(host: str) -> bool:
    """Does ``host`` only accept connections from this machine?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False
