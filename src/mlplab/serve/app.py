"""The FastAPI app: a run's model behind HTTP, with a drawing page.

Routes (all answers JSON except the page):

- ``POST /predict``  images in, ``{"predictions": [{"class", "index", "probability",
  "top": [...]}, ...]}`` out, in input order. Either multipart uploads in the field
  ``file`` (repeat it for a batch; each goes through :func:`mlplab.predict.preprocess`,
  as ``mlplab predict`` does), or JSON ``{"pixels": ...}``: one image as nested lists
  ``H x W`` (one-channel models) or ``C x H x W``, or a list of them, float pixels in
  [0, 1] exactly like the exported model's input (no preprocessing). ``?top_k=`` sets how
  many classes ``top`` lists (default 3).
- ``GET /health``, ``GET /model`` (architecture, dataset, classes, test accuracy),
  ``GET /docs`` (FastAPI's interactive docs), ``GET /`` (the drawing page).

Errors answer ``{"detail": "<what was wrong and what is allowed>"}``: 413 for a body over
``max_upload_bytes``, 400 for undecodable images, wrong shapes, values or batch sizes,
415 for another content type, 404 for unknown routes. Concurrent requests share forward
passes through :class:`~mlplab.serve.batcher.MicroBatcher`.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import MlplabError
from ..predict import Predictor
from .batcher import MicroBatcher

__all__ = ["create_app"]

MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # whole request body, bytes
MAX_BATCH = 64  # images per request and per forward pass
MAX_WAIT_MS = 2.0  # how long the first request of a batch waits for others, ms
# Uploads up to this many pixels (all of a request's) are preprocessed on the event loop
# (~2 ms for a 280x280 drawing); larger ones in a worker thread, so that a 12-megapixel
# photo does not stall every other request. Measured on 2 cores with 16 clients posting
# drawings: inline 167 requests/s, p99 180 ms; in threads 124-171 requests/s, p99 380-490 ms.
INLINE_PIXELS = 1_000_000

_REQUEST_BODY = {  # /predict reads its body itself (size cap first); this documents it in /docs
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "image files (PNG, JPEG, ...); repeat the field for a batch",
                    }
                },
                "required": ["file"],
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "pixels": {
                        "type": "array",
                        "description": "one image (H x W, or C x H x W) or a list of them; "
                        "float pixels in [0, 1], no preprocessing",
                    }
                },
                "required": ["pixels"],
            },
            "example": {"pixels": [[0.0, 0.5], [1.0, 0.0]]},
        },
    },
}


def create_app(
    run_dir: str | Path,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_batch: int = MAX_BATCH,
    max_wait_ms: float = MAX_WAIT_MS,
    style: str = "auto",
) -> FastAPI:
    """The app serving the model of ``run_dir`` (loaded once, on the CPU)."""
    predictor = Predictor(run_dir, style=style)
    batcher = MicroBatcher(predictor.probabilities, max_batch, max_wait_ms / 1000)
    page = (files("mlplab.serve") / "static" / "index.html").read_text(encoding="utf-8")
    summary = predictor.run.summary()
    model_info = {
        "run": predictor.run.path.name,
        "dataset": summary.get("dataset"),
        "classes": list(predictor.classes),
        "input_shape": list(predictor.input_shape),
        "head": predictor.head,
        "architecture": predictor.run.model_info()["model"],
        "parameters": sum(p.numel() for p in predictor.model.parameters()),
        "test_accuracy": summary.get("test_accuracy"),
        "preprocessing": style,
        "limits": {"max_upload_bytes": max_upload_bytes, "max_batch": max_batch},
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()

    app = FastAPI(
        title="mlplab",
        version=__version__,
        summary=f"Predictions of run {predictor.run.path.name}",
        description=(__doc__ or "").split("\n\n")[1],
        lifespan=lifespan,
    )
    app.state.predictor, app.state.batcher = predictor, batcher

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = (
                f"no route {request.method} {request.url.path}; the routes are GET /, GET /health, "
                "GET /model, POST /predict and GET /docs"
            )
        return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def drawing_page() -> str:
        return page

    @app.get("/health", summary="liveness, and how many forward passes served how many images")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "run": model_info["run"],
            "forward_passes": batcher.batches,
            "images": batcher.images,
        }

    @app.get("/model", summary="the model: architecture, dataset, classes, test accuracy")
    async def model() -> dict[str, Any]:
        return model_info

    @app.post(
        "/predict",
        summary="classify images (multipart uploads, or JSON pixels in [0, 1])",
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def predict(
        request: Request,
        top_k: int = Query(3, ge=1, description="how many classes each 'top' lists"),
    ) -> dict[str, Any]:
        body = await _read_body(request, max_upload_bytes)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            uploads = await _uploads(request, body, max_batch)

            def prepare() -> np.ndarray:
                return np.stack([predictor.prepare(data, name) for name, data in uploads])

            try:  # small images inline: a thread's GIL hand-offs cost more than the work
                small = _decoded_pixels(uploads) <= INLINE_PIXELS
                pixels = prepare() if small else await asyncio.to_thread(prepare)
            except MlplabError as exc:
                raise HTTPException(400, str(exc)) from None
            x = torch.from_numpy(pixels).float() / 255  # requests batch together as [0, 1] floats
        elif kind in ("application/json", ""):
            x = _json_pixels(body, predictor.input_shape, max_batch)
        else:
            raise HTTPException(
                415,
                f"content type '{kind}' is not accepted; send multipart/form-data (field 'file') "
                "or application/json ({'pixels': ...})",
            )
        probs = await batcher.submit(x)
        return {"predictions": [predictor.top(p, top_k) for p in probs]}

    return app


async def _read_body(request: Request, cap: int) -> bytes:
    """The request body, refused (413) as soon as it is known to be over ``cap`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise HTTPException(413, _too_large(int(declared), cap))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise HTTPException(413, _too_large(len(body), cap, at_least=True))
    return bytes(body)


def _too_large(size: int, cap: int, at_least: bool = False) -> str:
    return (
        f"request body of {'over ' if at_least else ''}{size:,} bytes is larger than the "
        f"server's limit of {cap:,} bytes; send smaller images or fewer per request"
    )


async def _uploads(request: Request, body: bytes, max_batch: int) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each upload in the multipart field ``file``."""

    async def replay() -> dict[str, Any]:  # the body was already read, under the size cap
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(
            max_files=max_batch + 1, max_fields=max_batch + 1
        )
    except HTTPException:
        raise
    except Exception as exc:  # the multipart parser raises several types
        raise HTTPException(400, f"malformed multipart body ({exc})") from None
    parts = form.getlist("file")
    if not parts:
        raise HTTPException(
            400,
            f"no image in the request: upload each image in the multipart field 'file' "
            f"(got fields: {', '.join(form.keys()) or 'none'})",
        )
    if len(parts) > max_batch:
        raise HTTPException(400, f"{len(parts)} images in one request; at most {max_batch}")
    uploads = []
    for i, part in enumerate(parts, 1):
        if not isinstance(part, UploadFile):
            raise HTTPException(400, f"field 'file' #{i} is text, not a file upload")
        uploads.append((part.filename or f"file #{i}", await part.read()))
    return uploads


def _decoded_pixels(uploads: list[tuple[str, bytes]]) -> int:
    """Pixels the uploads decode to, from their headers alone (unreadable ones count 0)."""
    total = 0
    for _, data in uploads:
        try:
            with Image.open(io.BytesIO(data)) as image:
                total += image.size[0] * image.size[1]
        except Exception:  # decoding proper reports it, with the file's name
            continue
    return total


def _json_pixels(body: bytes, input_shape: tuple[int, int, int], max_batch: int) -> torch.Tensor:
    """``{"pixels": ...}`` -> float32 ``(N, C, H, W)`` in [0, 1]; 400 with the reason otherwise."""
    c, h, w = input_shape
    expected = f"one image as {h}x{w} nested lists" if c == 1 else f"one image as {c}x{h}x{w}"
    expected += " (or a list of them), float pixels in [0, 1]"
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"the body is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "pixels" not in data:
        raise HTTPException(400, f"expected a JSON object with the key 'pixels': {expected}")
    try:
        a = np.asarray(data["pixels"], dtype=np.float32)
    except (ValueError, TypeError):
        raise HTTPException(
            400, f"'pixels' must be numbers in nested lists of equal lengths: {expected}"
        ) from None
    if a.ndim == 2 and c == 1:
        a = a[None, None]  # one H x W image
    elif a.ndim == 3 and c == 1:
        a = a[:, None]  # a list of H x W images (or one 1 x H x W)
    elif a.ndim == 3:
        a = a[None]  # one C x H x W image
    if a.ndim != 4 or a.shape[1:] != (c, h, w):
        raise HTTPException(400, f"'pixels' has shape {list(np.shape(data['pixels']))}; expected {expected}")  # fmt: skip
    if len(a) == 0 or len(a) > max_batch:
        raise HTTPException(400, f"{len(a)} images in one request; send 1 to {max_batch}")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise HTTPException(
            400,
            f"'pixels' must be in [0, 1] (the exported model's input); got values in "
            f"[{np.nanmin(a):g}, {np.nanmax(a):g}]; divide 0-255 values by 255",
        )
    return torch.from_numpy(a)
