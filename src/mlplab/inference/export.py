"""Export a run's model to a file that runs without mlplab: TorchScript or ONNX, parity-checked.

The exported model takes raw images and needs nothing else: float32 pixels in [0, 1] of
shape ``(N, C, H, W)`` with any batch size N; the run's normalization is built in; it returns
what the model's head returns (``logits``, ``log_softmax`` or ``softmax`` of the classes),
calibrated by the run's temperature T (``model.json``): calibrated logits ``z / T``,
``log_softmax(z / T)`` or ``softmax(z / T)``; the metadata records T.
Class names and the input format travel inside the file (TorchScript extra file
``mlplab.json``, ONNX metadata ``mlplab``).

When the run has a rejection of unfamiliar inputs (:mod:`mlplab.trust.rejection`) and
``reject`` is on (the default; ``mlplab export --no-reject`` turns it off), the file returns
three outputs from one graph over the same weights: the head's output as above (first, so a
consumer that reads output 0 is unchanged), ``ood_score`` (float32 ``(N,)``, 0 to 1) and
``reason_code`` (int64 ``(N,)``); an input is rejected when ``ood_score > threshold``, and
why is ``reasons[reason_code]``: the threshold and the reasons travel in the metadata
(``"rejection"``), so a consumer says "rejected, and why" without mlplab. A run without a
rejection exports its one output exactly as before, and the result says why
(:attr:`ExportResult.rejection`).

The file is written under a temporary name, loaded back (``torch.jit.load`` or an
onnxruntime session), compared with the eager model on real test images (when the run's
dataset is on this machine) and random pixels at batch sizes 1, 7 and 64, and only then
renamed into place: a file that fails the check (``|exported - eager| <= 1e-5 *
max(1, max |eager|)``) is never installed. The figure is returned and recorded in
``export.json`` beside the file. With the rejection, the check also runs the run's
:meth:`~mlplab.trust.rejection.Rejector.score` on the same pixels plus synthetic non-digits
(:mod:`mlplab.trust.negatives`, so rejected inputs are covered): ``|ood_score - eager| <=``
:func:`score_tolerance`, and the reason codes equal except where the eager score is within
that tolerance of the threshold (see :func:`_score_parity` for why a rank needs that).

What it may write over (:func:`mlplab.files.atomic.check_target`): nothing that exists, unless
``force`` — except its own earlier export at the default path inside the run directory;
never anything but a regular file (a FIFO, a device, a folder, a symbolic link), never a run
directory's own files (weights, ``model.json``, config, metrics...), never into another run's
directory, and ``export.json`` only when it is an export record. On any failure (a full
disk, a read-only folder) the temporary file is removed and the error is one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..config.rules import check_names
from ..data import Normalization
from ..errors import MlplabError, WriteError
from ..extras import require
from ..files.atomic import (
    CARD,
    EXPORT_RECORD,
    atomic_write,
    check_target,
    describe,
    is_run_directory,
    os_errors,
    write_text_atomic,
)
from ..model.heads import OUTPUT_NAMES, with_temperature
from ..model.mlp import MLP
from ..model.raw_image import RawImageModel
from ..progress import logger
from ..run.directory import Run
from ..run.splits import run_dataset
from ..trust.negatives import KINDS, PHOTO_KINDS, negatives
from ..trust.rejection import METHOD, REASONS, RejectionModel, Rejector, why_off

__all__ = [
    "FORMATS",
    "SCORE_TOLERANCE",
    "TIE_STEPS",
    "TOLERANCE",
    "ExportError",
    "ExportResult",
    "export",
    "score_tolerance",
]

FORMATS = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx"}  # format -> default name
# Largest |exported - eager| accepted: 1e-5 in the head's output units, or that fraction of
# the largest output when it exceeds 1 (ONNX Runtime sums in another order than torch: on a
# 2-epoch MNIST model, logits up to 22, it differs by up to 7.6e-6 over 1,000 test images).
TOLERANCE = 1e-5
# Largest |exported ood_score - eager| accepted: the larger of these two (score_tolerance).
# The score is a rank, the fraction of the n (<= 10,000) validation statistics an input's is
# above, so rounding moves it in whole steps of 1/n: the detectors' surprises take discrete
# values, so an input's statistic often EQUALS validation ones (with the max combination, up
# to one validation image per detector shares it), and another engine's log or summation
# order, one unit in the last place above, counts it above that tie. Measured: a 2-epoch
# tutorial MNIST model (n = 6,000), 3,000 test images + 240 synthetic non-digits, ONNX Runtime
# at batch sizes 1-256: up to 5e-4 (3 steps); TorchScript at batch 1: 1.7e-4 (1 step); the CLI
# tests' logistic run (n = 24): 1 step, 0.042. A wrong reference moves scores by far more.
SCORE_TOLERANCE = 2e-3
TIE_STEPS = 3  # steps of 1/n: one tie of three detectors crossed
SCORE_OUTPUTS = ("ood_score", "reason_code")  # the outputs after the head's, with a rejection
NEGATIVES_PER_KIND = 8  # synthetic non-digits per in-frame kind in the parity check
PHOTO_NEGATIVES_PER_KIND = 2  # and per photographed kind (~7 ms each to make)
PARITY_BATCHES = (1, 7, 64)  # batch sizes the loaded-back file is checked at (dynamic batch)
RECORD = EXPORT_RECORD  # parity records, one entry per exported file name
ONNX_MAX_BYTES = 2**31 - 2**24  # one protobuf holds < 2 GiB; keep 16 MiB for the graph itself
FIX = "choose another --out"  # how every write error of export ends


class ExportError(MlplabError):
    """The exporter failed, or the exported file does not reproduce the model."""


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
    outputs: tuple[str, ...] = ()  # the file's outputs, in order
    rejection: str = ""  # one line: what the file says about unfamiliar inputs, or why nothing
    # with the rejection: max |exported ood_score - Rejector.score| and its bound, the
    # checked inputs the file rejects, and the codes that differ (only at the threshold)
    max_score_diff: float | None = None
    score_tolerance: float | None = None
    rejected: int | None = None
    codes_at_threshold: int | None = None

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
    force: bool = False,
    reject: bool = True,
) -> ExportResult:
    """Write the run's model as TorchScript or ONNX, check it, and return the parity figure.

    ``out`` defaults to ``model.torchscript.pt`` / ``model.onnx`` inside the run directory;
    a folder gets that name inside it. The run's dataset (looked up in ``data_dir`` and the
    usual places, never downloaded) supplies real test images for the check when present.

    An existing file at ``out`` is replaced only with ``force`` (an earlier export at the
    default path always is); anything but a regular file, and a run directory's own files,
    never are (:class:`~mlplab.errors.WriteError`, before any work).

    With ``reject`` (the default) and a run that has a rejection, the file has the outputs
    ``ood_score`` and ``reason_code`` after the head's (the module docstring); ``reject=False``
    exports the head's output alone, as a run without a rejection does.
    """
    _check_format(format)
    run = Run.open(run_dir)
    model, normalization, classes = run.load_model("cpu")
    rejector = Rejector.load(run) if reject else None
    path = _output_path(run, format, out, force)
    if format == "onnx":
        _check_onnx_size(model)
    pixels, inputs = _parity_pixels(run, model.input_shape, data_dir)
    if rejector is not None:  # so that rejected inputs are checked too
        fakes, kinds = _negative_pixels(model.input_shape)
        pixels, inputs = torch.cat([pixels, fakes]), f"{inputs} and {kinds}"
    started = time.perf_counter()
    # Replacing needs a yes (force, or our own default path); else the rename cannot clobber
    # a file that appeared meanwhile (another export to the same name).
    overwrite = force or _is_default(run, path, format)
    temperature = run.temperature()
    metadata = {**_metadata(run, model, normalization, classes), "temperature": temperature}
    if rejector is not None:
        metadata |= _rejection_metadata(rejector, model.head)
    diff, size, scores = _write_checked(
        path, format, model, normalization, metadata, pixels, overwrite, temperature, rejector
    )
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
        outputs=(OUTPUT_NAMES[model.head], *(SCORE_OUTPUTS if rejector else ())),
        rejection=_rejection_line(run, reject, rejector),
        **(asdict(scores) if scores else {}),
    )
    _record(result)
    logger.debug(
        f"export   {path} ({format}): max |exported - eager| = {result.max_abs_diff:.2e} "
        f"over {result.images} images"
    )
    return result


def _check_format(format: str) -> None:
    """``format`` is one of :data:`FORMATS`, with its extra installed, before any work."""
    check_names([format], FORMATS, unknown="export format must be one of {choices}; got {got}")
    if format == "onnx":
        for module in ("onnx", "onnxscript", "onnxruntime"):
            require(module, "export", "ONNX export")


def _metadata(
    run: Run, model: MLP, normalization: Normalization, classes: Sequence[str]
) -> dict[str, Any]:
    """What travels inside the file: the input format, the head's output, the classes."""
    return {
        "mlplab": __version__,
        "run": run.path.name,
        "input": "float32 pixels in [0, 1], shape (N, C, H, W), normalization built in",
        "input_shape": list(model.input_shape),
        "head": model.head,
        "output": OUTPUT_NAMES[model.head],
        "classes": list(classes),
        "normalization": normalization.to_dict(),
    }


def _rejection_metadata(rejector: Rejector, head: str) -> dict[str, Any]:
    """What a consumer needs to say "rejected, and why" from the file's outputs alone."""
    return {
        "outputs": [OUTPUT_NAMES[head], *SCORE_OUTPUTS],
        "rejection": {
            "rule": "rejected = ood_score > threshold; why = reasons[reason_code]",
            "threshold": rejector.threshold,
            "reasons": list(REASONS),  # reasons[0] == "": accepted
            "ood_score": "0 to 1: the fraction of validation images more familiar than it",
            "accept": rejector.accept,  # validation fraction the threshold was chosen to accept
            "method": METHOD,
        },
    }


def _rejection_line(run: Run, reject: bool, rejector: Rejector | None) -> str:
    """One line on what the file says about unfamiliar inputs, or why it says nothing."""
    if rejector is not None:
        return (
            f"with rejection: outputs {', '.join(SCORE_OUTPUTS)}; rejected = ood_score > "
            f"{rejector.threshold:.6g} (metadata 'rejection')"
        )
    if not reject:
        return "rejection off (--no-reject): the head's output only"
    return f"{why_off(run)}; exported the head's output only, as before"


class _Judged(nn.Module):
    """The class outputs and the rejection of one run in one graph over the same weights:
    ``pixels -> (outputs, ood_score, reason_code)``."""

    def __init__(self, classes: RawImageModel, rejection: RejectionModel) -> None:
        super().__init__()
        self.classes = classes
        self.rejection = rejection  # holds the same MLP as ``classes``: one set of weights

    # the argument's name is the ONNX input's name (dynamic_shapes is keyed by it)
    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        score, code = self.rejection(pixels)
        return self.classes(pixels), score, code


def _write_checked(
    path: Path,
    format: str,
    model: MLP,
    normalization: Normalization,
    metadata: dict[str, Any],
    pixels: torch.Tensor,
    overwrite: bool,
    temperature: float = 1.0,
    rejector: Rejector | None = None,
) -> tuple[float, float, ScoreParity | None]:
    """Write the file under a temporary name, load it back, compare it with the eager model
    (and the rejection's eager scores) on ``pixels`` and only then rename it to ``path``;
    returns max |exported - eager|, max |eager| and the scores' parity. A file that fails
    the check is never installed (ExportError)."""
    wrapper: nn.Module = RawImageModel(model, normalization, temperature).eval()
    if rejector is not None:
        wrapper = _Judged(wrapper, rejector.module(model)).eval()
    outputs = metadata.get("outputs", [OUTPUT_NAMES[model.head]])
    writer = _torchscript if format == "torchscript" else _onnx
    diff = size = float("nan")
    scores = None

    def write_and_check(tmp: Path) -> None:
        nonlocal diff, size, scores
        exported = writer(wrapper, pixels[1:8].float() / 255, metadata, outputs, tmp)
        diff, size = _max_abs_diff(model, normalization, exported, pixels, temperature)
        if not diff <= TOLERANCE * max(1.0, size):  # `not <=` also catches nan
            raise ExportError(
                f"the exported {format} model differs from the eager model by {diff:.3g} "
                f"(outputs up to {size:.3g}; tolerance {TOLERANCE:g} x max(1, that)); nothing "
                f"was written to {path}. Please report this with your torch version "
                f"({torch.__version__})"
            )
        if rejector is not None:
            scores = _score_parity(rejector, model, exported, pixels, format, path)

    atomic_write(path, write_and_check, overwrite=overwrite, fix=FIX)
    return diff, size, scores


# ----- writers: each saves to ``tmp`` and returns the file loaded back, as a callable --------
# pixels -> the file's outputs, always as a tuple (one tensor, or three with the rejection)
Exported = Callable[[torch.Tensor], tuple[torch.Tensor, ...]]


def _torchscript(
    wrapper: nn.Module,
    example: torch.Tensor,
    metadata: dict[str, Any],
    outputs: Sequence[str],
    tmp: Path,
) -> Exported:
    with _quiet_torch():  # torch.jit is deprecated upstream; it is still the format asked for
        traced = torch.jit.trace(wrapper, example, check_trace=False)
        # Into a Python file object: given a path, torch's C++ writer aborts the process on a
        # full disk (and raises a RuntimeError on a refused open) instead of an OSError.
        with open(tmp, "wb") as file:
            torch.jit.save(traced, file, _extra_files={"mlplab.json": json.dumps(metadata)})
        loaded = torch.jit.load(str(tmp), map_location="cpu")  # our own file, just written
    loaded.eval()

    def run(pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            got = loaded(pixels)
        return tuple(got) if isinstance(got, (tuple, list)) else (got,)

    return run


def _onnx(
    wrapper: nn.Module,
    example: torch.Tensor,
    metadata: dict[str, Any],
    outputs: Sequence[str],
    tmp: Path,
) -> Exported:
    onnx = require("onnx", "export", "ONNX export")
    ort = require("onnxruntime", "export", "ONNX export")
    try:
        with _quiet_torch():
            program = torch.onnx.export(  # f=None: the program in memory, no file written yet
                wrapper,
                (example,),
                None,
                input_names=["pixels"],
                output_names=list(outputs),
                dynamic_shapes={"pixels": {0: torch.export.Dim("batch", min=1)}},
                verbose=False,  # the exporter prints its steps otherwise
            )
            proto = program.model_proto
    except Exception as exc:  # the exporter raises many types; say which step failed
        raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    entry = proto.metadata_props.add()
    entry.key, entry.value = "mlplab", json.dumps(metadata)
    proto.doc_string = metadata["input"]
    # One self-contained file, written by us: the exporter's own save puts weights over 2 GB
    # in a sidecar file named after the temporary one (left behind, and the model broken).
    with open(tmp, "wb") as file:
        file.write(proto.SerializeToString())
    onnx.checker.check_model(str(tmp))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the check is tiny; do not take over a shared machine
    options.log_severity_level = 3
    session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])

    def run(pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        got = session.run(list(outputs), {"pixels": pixels.numpy()})
        return tuple(torch.from_numpy(array) for array in got)

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
            if tuple(test.shape[1:]) == tuple(input_shape) and len(test):
                real = test[:need]  # a test split smaller than the batches is still real data
                return torch.cat([real, random]), (
                    f"{name} test images 0-{len(real) - 1} and {need} uniform random images"
                )
    return random, f"{need} uniform random images ({name or 'dataset'} test split not available)"


def _negative_pixels(input_shape: tuple[int, ...]) -> tuple[torch.Tensor, str]:
    """Synthetic non-digits of the model's shape (:mod:`mlplab.trust.negatives`, seed 0): the
    rejected inputs of the scores' check. uint8 ``(N, C, H, W)`` and what they are."""
    counts = {kind: NEGATIVES_PER_KIND for kind in KINDS}
    counts |= {kind: PHOTO_NEGATIVES_PER_KIND for kind in PHOTO_KINDS}
    images = torch.cat([negatives(kind, n, input_shape) for kind, n in counts.items()])
    return (
        images,
        f"{len(images)} synthetic non-digits ({len(counts)} kinds of mlplab.trust.negatives)",
    )


def _batches(pixels: torch.Tensor) -> Iterator[torch.Tensor]:
    """``pixels`` in batches of :data:`PARITY_BATCHES`, over and over: the dynamic batch."""
    start = 0
    while start < len(pixels):
        for size in PARITY_BATCHES:
            batch = pixels[start : start + size]
            if len(batch) == 0:
                return
            yield batch
            start += size


def _max_abs_diff(
    model: MLP,
    normalization: Normalization,
    exported: Exported,
    pixels: torch.Tensor,
    temperature: float = 1.0,
) -> tuple[float, float]:
    """max |exported(pixels / 255) - model(pixels * scale + offset)|, and max |model(...)|,
    the eager outputs calibrated by the same ``temperature`` (the head's rule)."""
    scale, offset = normalization.affine()
    worst = largest = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for batch in _batches(pixels):  # real images at 1, 7, 64; then the random ones
            eager = model(batch.float() * scale + offset)  # exactly the training loop's input
            eager = with_temperature(model.head, eager, temperature)
            got = exported(batch.float() / 255)[0]
            if got.shape != eager.shape:
                raise ExportError(
                    f"the exported model returned shape {tuple(got.shape)} for a batch of "
                    f"{len(batch)}; expected {tuple(eager.shape)}"
                )
            worst = torch.maximum(worst, (got.double() - eager.double()).abs().max())
            largest = torch.maximum(largest, eager.double().abs().max())
    return float(worst), float(largest)


@dataclass(frozen=True)
class ScoreParity:
    """How the file's ood_score and reason_code compare with :meth:`Rejector.score`."""

    max_score_diff: float
    score_tolerance: float
    rejected: int  # checked inputs the file rejects
    codes_at_threshold: int  # codes that differ, each where the score is at the threshold


def _score_parity(
    rejector: Rejector,
    model: MLP,
    exported: Exported,
    pixels: torch.Tensor,
    format: str,
    path: Path,
) -> ScoreParity:
    """Compare the file's ``ood_score`` and ``reason_code`` with the run's own
    :meth:`Rejector.score` on the same batches: scores within :func:`score_tolerance`, codes
    equal except where the eager score is within that tolerance of the threshold.

    Why not exactly: the score is a rank among validation statistics, and the exported graph
    sums in another order, so an input whose statistic sits within rounding of validation
    values (the detectors' surprises take discrete values: ties are common) can be counted
    above one more or one fewer of them. Near the threshold that can flip rejected/accepted
    (code 0 on one side, a reason on the other); any other difference in the codes (another
    reason, or a flip away from the threshold) is an error.
    """
    worst, rejected, flipped = 0.0, 0, 0
    threshold, tolerance = rejector.threshold, score_tolerance(rejector)

    def fail(what: str) -> ExportError:
        return ExportError(
            f"the exported {format} model's {what}; nothing was written to {path}. Please "
            f"report this with your torch version ({torch.__version__})"
        )

    for batch in _batches(pixels):
        got = exported(batch.float() / 255)
        if len(got) != 1 + len(SCORE_OUTPUTS):
            raise fail(f"outputs are {len(got)}, expected {1 + len(SCORE_OUTPUTS)}")
        score, code = got[1], got[2]
        verdict = rejector.score(model, batch)
        if score.shape != (len(batch),) or code.shape != (len(batch),):
            raise fail(
                f"ood_score and reason_code have shapes {tuple(score.shape)} and "
                f"{tuple(code.shape)} for a batch of {len(batch)}; expected ({len(batch)},)"
            )
        want = torch.tensor([REASONS.index(r) if r else 0 for r in verdict.reasons])
        diff = (score.double() - verdict.scores.double()).abs()
        worst = max(worst, float(diff.max()))
        differ = code.long() != want
        # accepted by one, rejected by the other, with the score at the threshold: allowed
        flip = ((code == 0) | (want == 0)) & (
            (verdict.scores.double() - threshold).abs() <= tolerance
        )
        if (differ & ~flip).any():
            i = int((differ & ~flip).nonzero()[0, 0])
            raise fail(
                f"reason_code is {int(code[i])} where the run's rejection gives {int(want[i])} "
                f"(ood_score {float(verdict.scores[i]):.6g}, threshold {threshold:.6g})"
            )
        flipped += int(differ.sum())
        rejected += int((code > 0).sum())
    if not worst <= tolerance:  # `not <=` also catches nan
        raise fail(
            f"ood_score differs from the run's rejection by {worst:.3g} (tolerance {tolerance:.3g})"
        )
    return ScoreParity(worst, tolerance, rejected, flipped)


def score_tolerance(rejector: Rejector) -> float:
    """The largest |exported ood_score - eager| the check accepts for this run's rejection:
    :data:`SCORE_TOLERANCE`, or :data:`TIE_STEPS` steps of its rank when they are larger (a
    run with few validation images: 3/24 for 24), plus half a step: a difference of exactly
    three steps, k/n - j/n in floating point, can come out a hair above 3/n (seen on an Intel
    AMX VM: a stand-in MNIST run with n = 90 failed at 0.0333 against 0.0333)."""
    steps = (TIE_STEPS + 0.5) / max(1, len(rejector.tensors["combined.reference"]))
    return max(SCORE_TOLERANCE, steps)


def _output_path(run: Run, format: str, out: str | Path | None, force: bool) -> Path:
    """Where the file goes, checked (before any work) to be a place export may write."""
    if out is None:
        path = run.path / FORMATS[format]
    else:
        path = Path(out)
        with os_errors(path, FIX):  # is_dir raises for a name too long
            if path.is_dir() or str(out).endswith(("/", os.sep)):  # a folder, or one to make
                path = path / FORMATS[format]
    other = path.parent
    if is_run_directory(other) and not _same(other, run.path):
        raise WriteError(
            f"refusing to write {path}: {other} is another run's directory, and an export of "
            f"{run.path} there would pass for that run's model; {FIX}",
            errno.EEXIST,
            str(path),
            "File exists",
        )
    beside = {RECORD: "export's parity record, written beside the model file"}
    if _same(path.parent, run.path):
        beside[CARD] = "the run's model card"
    if path.name in beside:  # another output of the run's, even with --force
        raise WriteError(
            f"refusing to write {path}: {path.name} is {beside[path.name]}, not a place for a "
            f"model; give the model file another name ({FIX})",
            errno.EEXIST,
            str(path),
            "File exists",
        )
    check_target(path, force=force, replaceable=lambda p: _is_default(run, p, format))
    record = path.with_name(RECORD)
    try:  # export.json beside the file was not named by the user: only ours is updated
        check_target(record, replaceable=_is_record, force_flag=None)
    except WriteError as exc:
        raise WriteError(
            f"refusing to write {path}: export records its parity check beside it in {record}, "
            f"and what is there ({describe(record)}) is not an export record; {FIX} folder",
            exc.errno,
            str(record),
            exc.strerror,
        ) from None
    if out is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise WriteError(
                f"cannot write {path}: {path.parent} (or a folder above it) is a file; {FIX}",
                errno.ENOTDIR,
                str(path),
                "Not a directory",
            ) from None
        except OSError as exc:  # read-only, no permission, full: the machine's refusal
            raise WriteError(
                f"cannot create the folder {path.parent}: {exc.strerror}; {FIX}",
                exc.errno or 0,
                str(path.parent),
                exc.strerror or "",
            ) from None
    return path


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_default(run: Run, path: Path, format: str) -> bool:
    """``path`` is the run's own default export file (an earlier export: replaceable)."""
    return _same(path.parent, run.path) and path.name == FORMATS[format]


def _is_record(path: Path) -> bool:
    """``path`` holds an export record (a JSON object of parity entries), which we may update."""
    return _read_record(path) is not None


def _read_record(path: Path) -> dict[str, Any] | None:
    """The entries of the export record at ``path``; {} when absent; None when it is not one."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 1 << 20:  # a record is a few entries
            return None
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(entries, dict) or not all(
        isinstance(v, dict) and "max_abs_diff" in v for v in entries.values()
    ):
        return None
    return entries


def _check_onnx_size(model: MLP) -> None:
    """Refuse, before the export, weights one self-contained ONNX file cannot hold."""
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    size += sum(b.numel() * b.element_size() for b in model.buffers())
    if size > ONNX_MAX_BYTES:
        raise ExportError(
            f"the model's weights take {size / 2**30:.2f} GiB; one ONNX file holds less than "
            "2 GiB: export it as torchscript (--format torchscript)"
        )


def _record(result: ExportResult) -> None:
    """Add this export's parity figure to export.json beside the file (one entry per name).

    Only a file that is an export record is updated: anything else with that name (checked
    before the export too) is left alone, with a warning.
    """
    record = result.path.with_name(RECORD)
    entries = _read_record(record)
    if entries is None:
        logger.warning(
            f"export: {record} is not an export record; the parity figure is not recorded"
        )
        return
    entries[result.path.name] = {k: v for k, v in result.to_dict().items() if k != "path"}
    entries[result.path.name]["written"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    try:
        write_text_atomic(record, json.dumps(entries, indent=2) + "\n")
    except OSError as exc:  # the model is in place: a missing record is not worth failing for
        logger.warning(f"export: could not record parity: {exc}")
