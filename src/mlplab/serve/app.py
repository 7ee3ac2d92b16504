"""The FastAPI app: a run's model behind HTTP, with a drawing page.

Routes (all answers JSON except the page):

- ``POST /predict``  images in, ``{"predictions": [{"class", "index", "probability",
  "top": [...], "rejected", "ood_score"}, ...]}`` out, in input order, with ``"reason"``
  when rejected (the run's rejection of unfamiliar inputs, :mod:`mlplab.trust.rejection`,
  as ``mlplab predict --json`` gives it: rejection off, ``"rejected": false`` and
  ``"ood_score": null``). Either multipart uploads in the field
  ``file`` (repeat it for a batch; each goes through :func:`mlplab.inference.images.preprocess`,
  as ``mlplab predict`` does), or JSON ``{"pixels": ...}``: one image as nested lists
  ``H x W`` (one-channel models) or ``C x H x W``, or a list of them, float pixels in
  [0, 1] exactly like the exported model's input (no preprocessing). ``?top_k=`` sets how
  many classes ``top`` lists (default 3).
- ``GET /health`` (with the temperature and whether rejection is on), ``GET /model``
  (architecture, dataset, classes, test accuracy, temperature, rejection),
  ``GET /docs`` (FastAPI's interactive docs), ``GET /`` (the drawing page).

Errors answer ``{"detail": "<what was wrong and what is allowed>"}``: 400 for undecodable
images, malformed JSON or multipart bodies, wrong shapes, values or batch sizes; 408 for a
body that does not arrive in time; 413 for a body over ``max_upload_bytes`` or images over
the pixel limits; 415 for another content type; 422 for a bad query parameter; 503 while
the server's memory budget is taken by other requests; 404 for unknown routes. Concurrent
requests share forward passes through :class:`~mlplab.serve.batcher.MicroBatcher`.

Memory is bounded whatever clients send: a request reserves, from a
:class:`~mlplab.serve.batcher.MemoryGate`, what its body will take before reading it, and
what its images take to decode (from their headers: nothing is decoded before) before
decoding them; the two gates share ``max_memory_bytes`` (a quarter for bodies, the rest
for decoding), so concurrent hostile uploads wait their turn instead of adding up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import parse_options_header
from typing_extensions import NotRequired, TypedDict  # pydantic needs it before Python 3.12

from .. import __version__
from ..errors import ConfigError, MissingExtraError, MlplabError
from ..inference.explain import Explainer
from ..inference.images import ImageTooLarge, decode_bytes, image_header, shown_name
from ..inference.predictor import Predictor
from ..trust.explain import METHODS
from ..trust.rejection import REASONS, describe
from .batcher import MemoryGate, MicroBatcher
from .settings import BODY_COPIES, ServeSettings

__all__ = ["create_app"]

T = TypeVar("T")

# A parsed JSON value costs at most this many bytes: a Python float (24) and its list slot
# (8), or an empty list, plus its float64 and float32 copies. The body is checked to hold
# no more values and lists than max_batch images have, before it is parsed.
JSON_VALUE_BYTES = 64
# Uploads up to this many pixels (all of a request's) are preprocessed on the event loop
# (~2 ms for a 280x280 drawing); larger ones in a worker thread, so that a 12-megapixel
# photo does not stall every other request. Measured on 2 cores with 16 clients posting
# drawings: inline 167 requests/s, p99 180 ms; in threads 124-171 requests/s, p99 380-490 ms.
INLINE_PIXELS = 1_000_000

_ERROR = {  # every error answer: {"detail": "<one line>"}
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string"}},
                "required": ["detail"],
            }
        }
    }
}
_PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": why, **_ERROR}
    for status, why in (
        (
            400,
            "an undecodable image, malformed JSON or multipart, wrong shapes, values or batch size",
        ),
        (408, "the body did not arrive within the request timeout"),
        (413, "a body over the upload limit, or images over the pixel limits"),
        (415, "a content type other than multipart/form-data or application/json"),
        (503, "the server's memory budget is taken by other requests: try again"),
    )
}

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
        },
    },
}


def _request_body(input_shape: tuple[int, ...]) -> dict[str, Any]:
    """:data:`_REQUEST_BODY` with a JSON example this model takes (a blank image of its
    shape: the one /docs' "Try it out" sends)."""
    c, h, w = input_shape
    blank = [[0.0] * w for _ in range(h)]
    body = json.loads(json.dumps(_REQUEST_BODY))  # a copy per app
    body["content"]["application/json"]["example"] = {"pixels": blank if c == 1 else [blank] * c}
    return body


NO_REJECT = "rejection off: --no-reject (every input answered unchecked)"

Choice = TypedDict("Choice", {"class": str, "index": int, "probability": float})
Prediction = TypedDict(
    "Prediction",
    {
        "class": str,
        "index": int,
        "probability": float,
        "top": list[Choice],
        "rejected": Annotated[
            bool,
            Field(
                description="true: the input is unlike the training images (the class and "
                "probabilities are still given); false: accepted, or rejection is off"
            ),
        ],
        "ood_score": Annotated[
            float | None,
            Field(
                description="how unusual the input is: the fraction of validation images it is "
                "more unusual than (0 to 1); null when rejection is off"
            ),
        ],
        "reason": NotRequired[
            Annotated[
                str,
                Field(description="only when rejected, why: " + ", ".join(map(repr, REASONS[1:]))),
            ]
        ],
    },
)


class Predictions(TypedDict):
    predictions: list[Prediction]


class Rejection(TypedDict):
    """Whether ``/predict`` checks its inputs against the training images, and how."""

    on: bool
    threshold: float | None  # an ood_score above it is rejected; None when off
    accept: float | None  # the fraction of the validation split the threshold accepts (asked)
    off: str | None  # why it is off, in one line; None when on


class Health(TypedDict):
    status: str
    run: str
    forward_passes: int
    images: int
    temperature: float  # the calibration's (1: none fitted)
    rejection: Rejection


def create_app(run_dir: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    """The app serving the model of ``run_dir`` (loaded once, on the CPU), as ``settings`` say.

    ``max_pixels``: the largest upload once decoded; ``max_request_pixels``: all of a
    request's; ``max_memory_bytes``: what requests may make the server hold at once (bodies
    and decoding); ``request_timeout``: seconds for a body to arrive, and for a request to
    get its turn at the memory budget (408, 503 past them).
    """
    settings = settings or ServeSettings()
    predictor = Predictor(
        run_dir, style=settings.style, max_pixels=settings.max_pixels, reject=settings.reject
    )

    def score(x: torch.Tensor) -> Scored:
        # One batched call of each: the classes' probabilities and the rejection's fields.
        return predictor.probabilities(x), predictor.verdicts(x)

    service = Service(
        predictor,
        MicroBatcher(score, settings.max_batch, settings.max_wait_ms / 1000),
        MemoryGate(settings.body_budget),
        MemoryGate(settings.decode_budget),
        settings,
        JsonLimits.of(predictor.input_shape, settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await service.batcher.close()

    app = FastAPI(
        title="mlplab",
        version=__version__,
        summary=f"Predictions of run {predictor.run.path.name}",
        description=(__doc__ or "").split("\n\n")[1],
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.predictor, app.state.batcher = predictor, service.batcher
    app.state.body_gate, app.state.decode_gate = service.body_gate, service.decode_gate
    add_error_answers(app)
    add_info_routes(app, service)
    add_predict_route(app, service)
    add_explain_route(app, service, Explainer(predictor=predictor))
    return app


@dataclass(frozen=True)
class JsonLimits:
    """How many lists and values a JSON body may hold: those of twice max_batch images.

    A body somewhat over the batch still hears how many images it sent (from the parsed
    shape); one far over is refused before it is parsed.
    """

    lists: int  # '[' of the C x H x W nested lists
    values: int  # ',' separate at most these

    @classmethod
    def of(cls, input_shape: tuple[int, int, int], settings: ServeSettings) -> JsonLimits:
        """The limits for images of ``input_shape``; ConfigError if they overflow the budget."""
        c, h, w = input_shape
        lists = 64 + 2 * settings.max_batch * (1 + c * (1 + h))
        limits = cls(lists, 2 * settings.max_batch * c * h * w + lists)
        if _body_reservation(settings.max_upload_bytes, True, limits.values) > settings.body_budget:
            raise ConfigError(
                f"max_batch {settings.max_batch} images of {c}x{h}x{w} as JSON take more than a "
                f"quarter of max_memory_bytes ({settings.max_memory_bytes:,}); raise it, or "
                "lower max_batch"
            )
        return limits


# A batch's answer: probabilities (N, classes) and, per image, the rejection's fields
Scored = tuple[torch.Tensor, list[dict[str, Any]]]


@dataclass(frozen=True)
class Service:
    """What the routes share: the model, the batcher, the two memory gates and the limits."""

    predictor: Predictor
    batcher: MicroBatcher[Scored]
    body_gate: MemoryGate
    decode_gate: MemoryGate
    settings: ServeSettings
    json_limits: JsonLimits

    def model_info(self) -> dict[str, Any]:
        """What ``GET /model`` answers."""
        predictor, s = self.predictor, self.settings
        summary = predictor.run.summary()
        return {
            "run": predictor.run.path.name,
            "dataset": summary.get("dataset"),
            "classes": list(predictor.classes),
            "input_shape": list(predictor.input_shape),
            "head": predictor.head,
            "architecture": predictor.run.model_info()["model"],
            "parameters": sum(p.numel() for p in predictor.model.parameters()),
            "test_accuracy": summary.get("test_accuracy"),
            "preprocessing": s.style,
            "temperature": predictor.temperature,
            "rejection": self.rejection(),
            "limits": {
                "max_upload_bytes": s.max_upload_bytes,
                "max_batch": s.max_batch,
                "max_pixels": s.max_pixels,
                "max_request_pixels": s.max_request_pixels,
                "max_memory_bytes": s.max_memory_bytes,
            },
        }

    def rejection(self) -> Rejection:
        """Whether rejection is on, its threshold and accept, or why it is off."""
        rejector = self.predictor.rejector
        if rejector is None:
            off = self.predictor.rejection_off or NO_REJECT  # None: the settings turned it off
            return {"on": False, "threshold": None, "accept": None, "off": off}
        return {"on": True, "threshold": rejector.threshold, "accept": rejector.accept, "off": None}

    def startup_line(self) -> str:
        """One line for the log when the server starts: the temperature and the rejection."""
        predictor = self.predictor
        temperature = f"temperature {predictor.temperature:.3g}"
        if "temperature" not in predictor.run.model_info():  # 1: an older run, no validation
            temperature += " (none fitted)"
        rejection = self.rejection()["off"] or describe(predictor.rejector)
        return f"{temperature}; {rejection}"

    async def images(self, request: Request) -> torch.Tensor:
        """The request's images as float32 ``(N, C, H, W)`` in [0, 1], through every guard.

        415 for another content type; the body's declared size (413), its turn at the memory
        budget for bodies (503), its arrival in time (408); then JSON pixels, or uploads
        checked from their headers and decoded in their turn at the budget for decoding.
        """
        s = self.settings
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("multipart/form-data", "application/json", ""):
            raise HTTPException(
                415,
                f"content type '{shown_name(kind, 80)}' is not accepted; send multipart/form-data "
                "(field 'file') or application/json ({'pixels': ...})",
            )
        multipart = kind == "multipart/form-data"
        size = _declared_length(request, s.max_upload_bytes)
        reservation = _body_reservation(size, not multipart, self.json_limits.values)
        async with _turn(self.body_gate, reservation, s.request_timeout, "request bodies"):
            body = await _read_body(request, s.max_upload_bytes, s.request_timeout)
            if not multipart:
                return await _json_pixels(
                    body, self.predictor.input_shape, s.max_batch, self.json_limits
                )
            uploads = await _uploads(request, body, s.max_batch)
            need, pixels = _decode_reservation(uploads, s.max_pixels, s.max_request_pixels)
            async with _turn(self.decode_gate, need, s.request_timeout, "decoding images"):
                return await _decode(self.predictor, uploads, inline=pixels <= INLINE_PIXELS)


# ----- routes ------------------------------------------------------------------------------
def add_error_answers(app: FastAPI) -> None:
    """Every error answers ``{"detail": "<one line>"}``; a 404 lists the routes."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = (
                f"no route {request.method} {shown_name(request.url.path)}; the routes are GET /, "
                "GET /health, GET /model, POST /predict, POST /explain and GET /docs"
            )
        allowed = (exc.headers or {}).get("Allow")
        if exc.status_code == 405 and detail == "Method Not Allowed" and allowed:
            detail = (
                f"{request.method} is not accepted at {shown_name(request.url.path)}; it "
                f"takes {allowed}"
            )
        return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the client's doing: a short JSON answer (uvicorn logs the traceback).
        return JSONResponse(
            {
                "detail": f"internal error ({type(exc).__name__}): a bug in mlplab; see the server log"
            },
            500,
        )


def add_info_routes(app: FastAPI, service: Service) -> None:
    """``GET /`` (the drawing page), ``GET /health`` and ``GET /model``."""
    page = (files("mlplab.serve") / "static" / "index.html").read_text(encoding="utf-8")
    model_info = service.model_info()
    batcher = service.batcher

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def drawing_page() -> str:
        return page

    @app.get(
        "/health",
        summary="liveness, how many forward passes served how many images, the temperature "
        "and whether rejection is on",
    )
    async def health() -> Health:
        return {
            "status": "ok",
            "run": model_info["run"],
            "forward_passes": batcher.batches,
            "images": batcher.images,
            "temperature": model_info["temperature"],
            "rejection": model_info["rejection"],
        }

    @app.get(
        "/model",
        summary="the model: architecture, dataset, classes, test accuracy, temperature, rejection",
    )
    async def model() -> dict[str, Any]:
        return model_info


def add_predict_route(app: FastAPI, service: Service) -> None:
    """``POST /predict``: images in, the top classes of each and the rejection's verdict out,
    in input order."""

    @app.post(
        "/predict",
        summary="classify images (multipart uploads, or JSON pixels in [0, 1])",
        openapi_extra={"requestBody": _request_body(service.predictor.input_shape)},
        responses=_PREDICT_ERRORS,
    )
    async def predict(
        request: Request,
        top_k: int = Query(3, ge=1, description="how many classes each 'top' lists"),
    ) -> Predictions:
        probs, verdicts = await service.batcher.submit(await service.images(request))
        top = service.predictor.top
        return {
            "predictions": [top(p, top_k) | v for p, v in zip(probs, verdicts, strict=True)]  # type: ignore[misc]
        }


def add_explain_route(app: FastAPI, service: Service, explainer: Explainer) -> None:
    """``POST /explain``: the same images as ``/predict``, and for each where the model looked:
    an attribution map (H x W, channels summed) of the calibrated log-odds of the predicted
    class (or ``target``), its largest magnitude (``scale``) and the model input it is over
    (``pixels``, gray 0-255)."""

    @app.post(
        "/explain",
        summary="why: attribution maps of the class for each image (as /predict takes them)",
        openapi_extra={"requestBody": _request_body(service.predictor.input_shape)},
        responses=_PREDICT_ERRORS
        | {501: {"description": "Captum is not installed: pip install 'mlplab[explain]'"}},
    )
    async def explain(
        request: Request,
        method: str = Query(METHODS[0], description="one of " + ", ".join(METHODS)),
        target: str | None = Query(None, description="class name or index (default: predicted)"),
    ) -> dict[str, Any]:
        if method not in METHODS:  # before reading the body
            raise HTTPException(400, f"method must be one of {', '.join(METHODS)}; got {method!r}")
        try:
            index = explainer.target_index(target)
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from None
        x = await service.images(request)
        try:  # in a thread, outside the batcher: its forward passes count /predict's alone
            probs, found = await _in_thread(
                lambda: (service.predictor.probabilities(x), explainer.attribute(x, method, index))
            )
        except MissingExtraError as exc:
            raise HTTPException(501, str(exc)) from None
        classes = explainer.classes
        out = []
        for i, p in enumerate(probs):
            heat = found.maps[i].sum(0)
            t = int(found.targets[i])
            entry: dict[str, Any] = {
                **service.predictor.top(p, 1),
                "target": classes[t],
                "target_index": t,
                "method": method,
                "scale": float(heat.abs().max()),  # the largest magnitude, for a colour scale
                "attribution": [[round(float(v), 6) for v in row] for row in heat],
                "pixels": (x[i].mean(0) * 255).round().int().tolist(),  # the model input, gray
            }
            entry.pop("top")
            if found.completeness_error is not None:
                entry["completeness_error"] = float(found.completeness_error[i])
            out.append(entry)
        return {"explanations": out}


# ----- guards: size, memory, time ------------------------------------------------------------
def _declared_length(request: Request, cap: int) -> int:
    """The body's declared length (413 over ``cap``); ``cap`` when none is declared."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and len(declared) < 20:
        if int(declared) > cap:
            raise HTTPException(413, _too_large(int(declared), cap))
        return int(declared)
    if declared:  # neither a length nor absent: no body is framed by it
        raise HTTPException(
            400, f"Content-Length '{shown_name(declared, 40)}' is not a whole number of bytes"
        )
    return cap  # chunked: it may take up to the cap


def _body_reservation(size: int, is_json: bool, max_values: int) -> int:
    """Bytes a body of ``size`` may make the server hold while it is read and parsed."""
    return BODY_COPIES * size + (min(size, max_values) * JSON_VALUE_BYTES if is_json else 0)


@asynccontextmanager
async def _turn(gate: MemoryGate, nbytes: int, timeout: float, what: str) -> AsyncIterator[None]:
    """Hold ``nbytes`` of ``gate`` for the block; 503 when no turn comes within ``timeout``."""
    try:
        await gate.acquire(nbytes, timeout)
    except asyncio.TimeoutError:
        raise HTTPException(
            503,
            f"the server is busy: its memory budget for {what} ({gate.capacity / 2**20:,.0f} MiB) "
            f"stayed taken by other requests for {timeout:g} s; try again",
            headers={"Retry-After": "1"},
        ) from None
    try:
        yield
    finally:
        gate.release(nbytes)


async def _read_body(request: Request, cap: int, timeout: float) -> bytes:
    """The request body, refused (413) as soon as it is over ``cap`` bytes, 408 if too slow."""
    body = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    chunks = request.stream().__aiter__()
    try:
        while True:
            try:  # one deadline for the whole body: trickling bytes does not extend it
                chunk = await asyncio.wait_for(chunks.__anext__(), deadline - loop.time())
            except StopAsyncIteration:
                break
            body += chunk
            if len(body) > cap:
                raise HTTPException(413, _too_large(len(body), cap, at_least=True))
    except asyncio.TimeoutError:
        raise HTTPException(
            408,
            f"the request body did not arrive within {timeout:g} s ({len(body):,} bytes came); "
            "send it faster, or smaller",
            headers={"Connection": "close"},
        ) from None
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
    except StarletteHTTPException as exc:  # starlette's own: too many parts, no boundary, ...
        raise HTTPException(400, f"malformed multipart body ({shown_name(exc.detail)})") from None
    except Exception as exc:  # the multipart parser raises several types
        raise HTTPException(400, f"malformed multipart body ({shown_name(exc)})") from None
    parts = form.getlist("file")
    boundary = parse_options_header(request.headers.get("content-type", ""))[1].get(b"boundary")
    if boundary and b"--" + boundary + b"--" not in body:  # the parser drops an open part
        raise HTTPException(
            400,
            "malformed multipart body: it ends before its closing boundary "
            f"('--{shown_name(boundary.decode('latin-1'), 80)}--'); was the upload cut short?",
        )
    if not parts:
        fields = ", ".join(shown_name(key, 40) for key in list(form.keys())[:8])
        raise HTTPException(
            400,
            f"no image in the request: upload each image in the multipart field 'file' "
            f"(got fields: {fields or 'none'})",
        )
    if len(parts) > max_batch:
        raise HTTPException(400, f"{len(parts)} images in one request; at most {max_batch}")
    uploads = []
    for i, part in enumerate(parts, 1):
        if not isinstance(part, UploadFile):
            raise HTTPException(400, f"field 'file' #{i} is text, not a file upload")
        uploads.append((shown_name(part.filename or f"file #{i}"), await part.read()))
    return uploads


def _decode_reservation(
    uploads: list[tuple[str, bytes]], max_pixels: int, max_request_pixels: int
) -> tuple[int, int]:
    """(bytes decoding the uploads takes at most, one at a time; their pixels), from headers.

    400 for one that is unreadable; 413 for one over ``max_pixels`` or all of them over
    ``max_request_pixels``: nothing has been decoded yet.
    """
    total, need = 0, 0
    for name, data in uploads:
        try:
            width, height, tile_bytes = image_header(data, name, max_pixels=max_pixels)
        except ImageTooLarge as exc:  # Pillow's own ceiling, or a TIFF's tiles
            if exc.pixels is not None and exc.pixels > max_pixels:
                raise _over_max_pixels(name, f"{exc.pixels:,}", max_pixels) from None
            raise HTTPException(413, str(exc)) from None
        except MlplabError as exc:
            raise HTTPException(400, str(exc)) from None
        if width * height > max_pixels:
            raise _over_max_pixels(name, f"{width}x{height} is {width * height:,}", max_pixels)
        total += width * height
        need = max(need, decode_bytes(width, height) + tile_bytes)
    if total > max_request_pixels:
        raise HTTPException(
            413,
            f"the {len(uploads)} images of the request hold {total:,} pixels, more than the "
            f"{max_request_pixels:,} this server accepts per request; send fewer or smaller images",
        )
    return need, total


def _over_max_pixels(name: str, pixels: str, max_pixels: int) -> HTTPException:
    return HTTPException(
        413,
        f"{name}: {pixels} pixels, more than the {max_pixels:,} this server accepts per image; "
        "scale the image down",
    )


async def _decode(
    predictor: Predictor, uploads: list[tuple[str, bytes]], inline: bool
) -> torch.Tensor:
    """The uploads decoded and preprocessed: float32 ``(N, C, H, W)`` in [0, 1]; 400 if not."""

    def prepare() -> np.ndarray:
        return np.stack([predictor.prepare(data, name) for name, data in uploads])

    try:  # small images inline: a thread's GIL hand-offs cost more than the work
        x = prepare() if inline else await _in_thread(prepare)
    except MlplabError as exc:
        raise HTTPException(400, str(exc)) from None
    return torch.from_numpy(x).float() / 255  # requests batch together as [0, 1] floats


async def _in_thread(work: Callable[[], T]) -> T:
    """``work()`` in a worker thread; if the request is cancelled, only once the thread ends.

    A thread cannot be stopped: were the request to return (and give back its memory
    reservation) while the thread still decodes, the memory would be held unreserved.
    """
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


async def _json_pixels(
    body: bytes, input_shape: tuple[int, int, int], max_batch: int, limits: JsonLimits
) -> torch.Tensor:
    """``{"pixels": ...}`` -> float32 ``(N, C, H, W)`` in [0, 1]; 400 with the reason otherwise."""
    c, h, w = input_shape
    expected = f"one image as {h}x{w} nested lists" if c == 1 else f"one image as {c}x{h}x{w}"
    expected += " (or a list of them), float pixels in [0, 1]"
    # Parsed JSON takes up to ~40 times its text (an empty list: 56 bytes for "[],"): a body
    # holding more lists or values than max_batch images have is refused before parsing.
    lists, values, objects = body.count(b"["), body.count(b","), body.count(b"{")
    if lists > limits.lists or values > limits.values or objects > 16:
        raise HTTPException(
            400,
            f"the JSON body holds more lists or values ({lists:,} '[', {values:,} ',', {objects:,} "
            f"'{{') than {max_batch} images of {c}x{h}x{w} pixels take; expected {expected}",
        )

    def parse() -> Any:
        return json.loads(body, parse_constant=_no_constant, parse_int=float)

    try:  # a large body is parsed in a thread: the event loop serves the others meanwhile
        data = parse() if len(body) < 65536 else await _in_thread(parse)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else shown_name(exc, 120)
        raise HTTPException(400, f"the body is not valid JSON ({reason})") from None
    if not isinstance(data, dict) or "pixels" not in data:
        raise HTTPException(400, f"expected a JSON object with the key 'pixels': {expected}")
    return _pixels_tensor(data["pixels"], input_shape, max_batch, expected)


def _pixels_tensor(
    pixels: Any, input_shape: tuple[int, int, int], max_batch: int, expected: str
) -> torch.Tensor:
    """The parsed ``pixels`` as float32 ``(N, C, H, W)``: numbers only, in shape, in [0, 1]."""
    c, h, w = input_shape
    try:
        a = np.asarray(pixels, dtype=np.float64)
    except (ValueError, TypeError, RecursionError):
        raise HTTPException(
            400, f"'pixels' must be numbers in nested lists of equal lengths: {expected}"
        ) from None
    # numpy reads true/false as 1/0 and "0.5" as 0.5: only JSON numbers are pixels
    odd = {type(v).__name__ for v in np.asarray(pixels, dtype=object).flat} - {
        "float",
        "NoneType",
    }
    if odd:
        kinds = ", ".join(sorted({"bool": "true/false", "str": "strings"}.get(k, k) for k in odd))
        raise HTTPException(400, f"'pixels' must hold numbers only; got {kinds}: {expected}")
    if a.ndim == 2 and c == 1:
        a = a[None, None]  # one H x W image
    elif a.ndim == 3 and c == 1:
        a = a[:, None]  # a list of H x W images (or one 1 x H x W)
    elif a.ndim == 3:
        a = a[None]  # one C x H x W image
    if a.ndim != 4 or a.shape[1:] != (c, h, w):
        shape = list(np.shape(pixels))
        raise HTTPException(400, f"'pixels' has shape {shape}; expected {expected}")
    if len(a) == 0 or len(a) > max_batch:
        raise HTTPException(400, f"{len(a)} images in one request; send 1 to {max_batch}")
    if np.isnan(a).any():
        raise HTTPException(400, f"'pixels' holds null where numbers belong; expected {expected}")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise HTTPException(
            400,
            f"'pixels' must be in [0, 1] (the exported model's input); got values in "
            f"[{a.min():g}, {a.max():g}]; divide 0-255 values by 255",
        )
    return torch.from_numpy(a.astype(np.float32))
