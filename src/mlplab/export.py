"""Export a run's model to a file that runs without mlplab: TorchScript or ONNX, parity-checked.

The exported model takes raw images and needs nothing else: float32 pixels in [0, 1] of
shape ``(N, C, H, W)`` with any batch size N; the run's normalization is built in; it returns
what the model's head returns (``logits``, ``log_softmax`` or ``softmax`` of the classes).
Class names and the input format travel inside the file (TorchScript extra file
``mlplab.json``, ONNX metadata ``mlplab``).

The file is written under a temporary name, loaded back (``torch.jit.load`` or an
onnxruntime session), compared with the eager model on real test images (when the run's
dataset is on this machine) and random pixels at batch sizes 1, 7 and 64, and only then
renamed into place: a file that fails the check (``|exported - eager| <= 1e-5 *
max(1, max |eager|)``) is never installed. The figure is returned and recorded in
``export.json`` beside the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .atomic import atomic_write, write_text_atomic
from .data import Normalization
from .errors import ConfigError, MlplabError, did_you_mean
from .extras import require
from .metrics import run_dataset
from .model import MLP
from .progress import logger
from .run import Run

__all__ = ["FORMATS", "TOLERANCE", "ExportError", "ExportResult", "RawImageModel", "export"]

FORMATS = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx"}  # format -> default name
# Largest |exported - eager| accepted: 1e-5 in the head's output units, or that fraction of
# the largest output when it exceeds 1 (ONNX Runtime sums in another order than torch: on a
# 2-epoch MNIST model, logits up to 22, it differs by up to 7.6e-6 over 1,000 test images).
TOLERANCE = 1e-5
PARITY_BATCHES = (1, 7, 64)  # batch sizes the loaded-back file is checked at (dynamic batch)
RECORD = "export.json"  # parity records, one entry per exported file name
OUTPUT_NAMES = {"logits": "logits", "log_softmax": "log_probabilities", "softmax": "probabilities"}


class ExportError(MlplabError):
    """The exporter failed, or the exported file does not reproduce the model."""


class RawImageModel(nn.Module):
    """A run's model with its normalization built in: takes pixels in [0, 1], ``(N, C, H, W)``.

    ``forward(pixels) = model(pixels * 255 * scale + offset)``: the affine map the training
    loop applies to uint8 pixels (``Normalization.affine``). Multiplying by 255 first gives
    back the exact integer for every ``k / 255``, so the model sees bit for bit what it saw
    in training.
    """

    def __init__(self, model: MLP, normalization: Normalization) -> None:
        super().__init__()
        scale, offset = normalization.affine()
        self.model = model
        self.input_shape = model.input_shape
        self.head = model.head
        self.register_buffer("scale", scale)  # (C, 1, 1), per 0-255 pixel level
        self.register_buffer("offset", offset)  # (C, 1, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels * 255 * self.scale + self.offset)


@dataclass(frozen=True)
class ExportResult:
    """Where the model went and how closely the file reproduces the eager model."""

    path: Path
    format: str
    max_abs_diff: float  # max |exported - eager| over every checked output
    max_abs_output: float  # max |eager| over them: the scale the tolerance is relative to
    tolerance: float
    batch_sizes: tuple[int, ...]
    images: int  # images compared
    inputs: str  # what they were
    head: str
    input_shape: tuple[int, int, int]
    seconds: float  # export + check

    def __fspath__(self) -> str:  # usable wherever the path is expected
        return str(self.path)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def export(
    run_dir: str | Path,
    format: str = "torchscript",
    out: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
) -> ExportResult:
    """Write the run's model as TorchScript or ONNX, check it, and return the parity figure.

    ``out`` defaults to ``model.torchscript.pt`` / ``model.onnx`` inside the run directory;
    a folder gets that name inside it. The run's dataset (looked up in ``data_dir`` and the
    usual places, never downloaded) supplies real test images for the check when present.
    """
    if format not in FORMATS:
        raise ConfigError(
            f"export format must be one of {', '.join(FORMATS)}; got '{format}'{did_you_mean(format, FORMATS)}"
        )
    if format == "onnx":  # fail before any work when the extra is missing
        for module in ("onnx", "onnxscript", "onnxruntime"):
            require(module, "export", "ONNX export")
    run = Run.open(run_dir)
    model, normalization, classes = run.load_model("cpu")
    path = _output_path(run, format, out)
    wrapper = RawImageModel(model, normalization).eval()
    pixels, inputs = _parity_pixels(run, model.input_shape, data_dir)
    metadata = {
        "mlplab": __version__,
        "run": run.path.name,
        "input": "float32 pixels in [0, 1], shape (N, C, H, W), normalization built in",
        "input_shape": list(model.input_shape),
        "head": model.head,
        "output": OUTPUT_NAMES[model.head],
        "classes": list(classes),
        "normalization": normalization.to_dict(),
    }
    started = time.perf_counter()
    writer = _torchscript if format == "torchscript" else _onnx
    diff = size = float("nan")

    def write_and_check(tmp: Path) -> None:
        nonlocal diff, size
        exported = writer(wrapper, pixels[1:8].float() / 255, metadata, tmp)
        diff, size = _max_abs_diff(model, normalization, exported, pixels)
        if not diff <= TOLERANCE * max(1.0, size):  # `not <=` also catches nan
            raise ExportError(
                f"the exported {format} model differs from the eager model by {diff:.3g} "
                f"(outputs up to {size:.3g}; tolerance {TOLERANCE:g} x max(1, that)); nothing "
                f"was written to {path}. Please report this with your torch version ({torch.__version__})"
            )

    try:
        atomic_write(path, write_and_check)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    result = ExportResult(
        path=path,
        format=format,
        max_abs_diff=diff,
        max_abs_output=size,
        tolerance=TOLERANCE,
        batch_sizes=PARITY_BATCHES,
        images=len(pixels),
        inputs=inputs,
        head=model.head,
        input_shape=model.input_shape,
        seconds=time.perf_counter() - started,
    )
    _record(result)
    logger.debug(
        f"export   {path} ({format}): max |exported - eager| = {result.max_abs_diff:.2e} "
        f"over {result.images} images"
    )
    return result


# ----- writers: each saves to ``tmp`` and returns the file loaded back, as a callable --------
Exported = Callable[[torch.Tensor], torch.Tensor]


def _torchscript(
    wrapper: RawImageModel, example: torch.Tensor, metadata: dict[str, Any], tmp: Path
) -> Exported:
    with _quiet_torch():  # torch.jit is deprecated upstream; it is still the format asked for
        traced = torch.jit.trace(wrapper, example, check_trace=False)
        traced.save(str(tmp), _extra_files={"mlplab.json": json.dumps(metadata)})
        loaded = torch.jit.load(str(tmp), map_location="cpu")  # our own file, just written
    loaded.eval()

    def run(pixels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return loaded(pixels)

    return run


def _onnx(
    wrapper: RawImageModel, example: torch.Tensor, metadata: dict[str, Any], tmp: Path
) -> Exported:
    onnx = require("onnx", "export", "ONNX export")
    ort = require("onnxruntime", "export", "ONNX export")
    output = OUTPUT_NAMES[wrapper.head]
    try:
        with _quiet_torch():
            torch.onnx.export(
                wrapper,
                (example,),
                str(tmp),
                input_names=["pixels"],
                output_names=[output],
                dynamic_shapes={"pixels": {0: torch.export.Dim("batch", min=1)}},
                external_data=False,  # one self-contained file
                verbose=False,  # the exporter prints its steps otherwise
            )
    except Exception as exc:  # the exporter raises many types; say which step failed
        raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    proto = onnx.load(str(tmp))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "mlplab", json.dumps(metadata)
    proto.doc_string = metadata["input"]
    onnx.save(proto, str(tmp))
    onnx.checker.check_model(str(tmp))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the check is tiny; do not take over a shared machine
    options.log_severity_level = 3
    session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])

    def run(pixels: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([output], {"pixels": pixels.numpy()})[0])

    return run


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Silence the exporters' deprecation chatter and progress logs (library code is quiet)."""
    logs = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)


# ----- parity ---------------------------------------------------------------------------
def _parity_pixels(
    run: Run, input_shape: tuple[int, ...], data_dir: str | Path | None
) -> tuple[torch.Tensor, str]:
    """uint8 images ``(N, C, H, W)`` to compare on: real test images when available, then random."""
    need = sum(PARITY_BATCHES)
    random = torch.randint(
        0, 256, (need, *input_shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    name = run.summary().get("dataset")
    if name:
        try:  # the data the run was trained on, as dataset.json records it (files too)
            test = run_dataset(run, data_dir=data_dir).test.images
        except MlplabError as exc:  # not on this machine, or a dataset made in memory
            logger.debug(f"export: parity on random pixels ({name} test split: {exc})")
        else:
            if tuple(test.shape[1:]) == tuple(input_shape) and len(test) >= need:
                return torch.cat([test[:need], random]), (
                    f"{name} test images 0-{need - 1} and {need} uniform random images"
                )
    return random, f"{need} uniform random images ({name or 'dataset'} test split not available)"


def _max_abs_diff(
    model: MLP, normalization: Normalization, exported: Exported, pixels: torch.Tensor
) -> tuple[float, float]:
    """max |exported(pixels / 255) - model(pixels * scale + offset)|, and max |model(...)|."""
    scale, offset = normalization.affine()
    worst = largest = torch.zeros((), dtype=torch.float64)
    start = 0
    with torch.no_grad():
        while start < len(pixels):
            for size in PARITY_BATCHES:  # real images at 1, 7, 64; then the random ones
                batch = pixels[start : start + size]
                if len(batch) == 0:
                    break
                eager = model(batch.float() * scale + offset)  # exactly the training loop's input
                got = exported(batch.float() / 255)
                if got.shape != eager.shape:
                    raise ExportError(
                        f"the exported model returned shape {tuple(got.shape)} for a batch of "
                        f"{len(batch)}; expected {tuple(eager.shape)}"
                    )
                worst = torch.maximum(worst, (got.double() - eager.double()).abs().max())
                largest = torch.maximum(largest, eager.double().abs().max())
                start += size
    return float(worst), float(largest)


def _output_path(run: Run, format: str, out: str | Path | None) -> Path:
    if out is None:
        return run.path / FORMATS[format]
    path = Path(out)
    if path.is_dir() or str(out).endswith(("/", os.sep)):  # a folder, existing or to be made
        path = path / FORMATS[format]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the folder {path.parent}: {exc.strerror}") from None
    return path


def _record(result: ExportResult) -> None:
    """Add this export's parity figure to export.json beside the file (one entry per name)."""
    record = result.path.with_name(RECORD)
    try:
        entries = json.loads(record.read_text()) if record.is_file() else {}
    except (OSError, json.JSONDecodeError):
        entries = {}
    if not isinstance(entries, dict):
        entries = {}
    entries[result.path.name] = {k: v for k, v in result.to_dict().items() if k != "path"}
    entries[result.path.name]["written"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    try:
        write_text_atomic(record, json.dumps(entries, indent=2) + "\n")
    except OSError as exc:
        logger.warning(f"export: could not record parity in {record}: {exc.strerror}")
