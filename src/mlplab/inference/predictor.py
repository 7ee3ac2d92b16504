"""A run's model on image files: files, folders, PIL images or arrays in, top-k classes out.

:func:`predict` runs the whole path once (``mlplab predict``); :class:`Predictor` keeps the
model loaded for many calls (the server uses it). Each image goes through
:mod:`.images` (load, preprocess to the training distribution), then the run's model with
its normalization built in (:class:`mlplab.model.raw_image.RawImageModel`, the very
function the exports hold), then its head's probabilities (:mod:`mlplab.model.heads`),
calibrated by the run's temperature (:mod:`mlplab.trust.calibration`), and the run's
rejection of unfamiliar inputs (:mod:`mlplab.trust.rejection`): each result says whether the
image is rejected, its ``ood_score`` and, when rejected, the reason.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError, DataError, RunError
from ..files.atomic import atomic_write, check_not_inside_owned, write_error
from ..model import heads
from ..model.raw_image import RawImageModel
from ..run.directory import Run
from ..trust.rejection import Rejector, Verdict, why_off
from .images import (
    MAX_PIXELS,
    ImageSource,
    check_style,
    image_files,
    load_image,
    preprocess,
    shown_name,
)

__all__ = ["Predictor", "predict"]

SHOW_STEM_BYTES = 200  # of a --show file's name stem (file names may have 255)
SHOW_TRIES = 1000  # names tried in a --show folder before giving up
CHUNK = 256  # images per forward pass


def predict(
    run_dir: str | Path,
    images: Sequence[ImageSource],
    top_k: int = 3,
    *,
    style: str = "auto",
    show: str | Path | None = None,
    device: str = "cpu",
    max_pixels: int = MAX_PIXELS,
    reject: bool = True,
) -> list[dict[str, Any]]:
    """Classify image files (or folders of them, PIL images, arrays) with a run's model.

    Returns, in input order, ``{"file", "class", "index", "probability", "top", "rejected",
    "ood_score"}`` per image (and ``"reason"`` when rejected), ``top`` holding the ``top_k``
    best ``{"class", "index", "probability"}``. ``reject=False``, or a run without a
    rejection: every image ``"rejected": False`` with ``"ood_score": None``.
    ``show``: a folder to write each model input into as a PNG, under a new name
    (``shown``; never over an existing file). ``max_pixels``: the largest image accepted.
    """
    predictor = Predictor(run_dir, style=style, device=device, max_pixels=max_pixels, reject=reject)
    return predictor.classify(images, top_k, show=show)


class Predictor:
    """A run's model, loaded once, with its preprocessing: files in, top-k classes out.

    ``rejector`` is the run's rejection of unfamiliar inputs (None with ``reject=False`` or
    when the run has none; ``rejection_off`` then says why, for one log line)."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        style: str = "auto",
        device: str = "cpu",
        max_pixels: int = MAX_PIXELS,
        reject: bool = True,
    ) -> None:
        check_style(style)
        self.run = Run.open(run_dir)
        task = self.run.model_info().get("task", "classification")
        if task != "classification":  # its inputs are table rows, not images
            raise RunError(
                f"run {self.run.path} is a {task} on tabular data: predict and serve take images "
                "for classifiers; load its model with Run.load_model and feed it feature rows"
            )
        model, normalization, classes = self.run.load_model(device)
        self.temperature = self.run.temperature()  # calibrated probabilities (model.json)
        self.model = RawImageModel(model, normalization, self.temperature).to(device).eval()
        self.classes = classes
        self.input_shape: tuple[int, int, int] = tuple(model.input_shape)  # type: ignore[assignment]
        self.head = model.head
        self.style = style
        self.device = torch.device(device)
        self.max_pixels = max_pixels  # the largest image accepted (load_image)
        self.rejector = Rejector.load(self.run) if reject else None
        self.rejection_off = (
            why_off(self.run) if reject and self.rejector is None else None
        )  # None: on, or turned off by the caller

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return (
            f"Predictor('{self.run.path}', input={c}x{h}x{w}, classes={len(self.classes)}, "
            f"style='{self.style}')"
        )

    def prepare(self, source: ImageSource, name: str | None = None) -> np.ndarray:
        """Any image source -> the model's uint8 input ``(C, H, W)``."""
        image = load_image(source, name, max_pixels=self.max_pixels)
        return preprocess(image, self.input_shape, self.style)

    @torch.no_grad()
    def probabilities(self, pixels: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Class probabilities ``(N, classes)``, float32, of uint8 images or float pixels in
        [0, 1]."""
        x = torch.as_tensor(pixels)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        out = [
            heads.probabilities(self.head, self.model(chunk.to(self.device)).float()).cpu()
            for chunk in x.split(CHUNK)
        ]
        return torch.cat(out) if out else torch.empty(0, len(self.classes))

    def judge(self, pixels: torch.Tensor | np.ndarray) -> Verdict | None:
        """The rejection's verdict on uint8 images or float pixels in [0, 1] ``(N, C, H, W)``
        (:meth:`mlplab.trust.rejection.Rejector.score`); None when rejection is off."""
        if self.rejector is None:
            return None
        return self.rejector.score(self.model.model, torch.as_tensor(pixels))

    def verdicts(self, pixels: torch.Tensor | np.ndarray) -> list[dict[str, Any]]:
        """Per image ``{"rejected", "ood_score"}`` and, when rejected, ``"reason"``."""
        verdict = self.judge(pixels)
        if verdict is None:
            return [{"rejected": False, "ood_score": None} for _ in range(len(pixels))]
        return [
            {"rejected": reason is not None, "ood_score": float(score)}
            | ({"reason": reason} if reason is not None else {})
            for score, reason in zip(verdict.scores.tolist(), verdict.reasons, strict=True)
        ]

    def top(self, probs: torch.Tensor, k: int = 3) -> dict[str, Any]:
        """``{"class", "index", "probability", "top": [{"class", "index", "probability"}]}``."""
        values, indices = probs.topk(min(k, len(self.classes)))
        top = [
            {"class": self.classes[i], "index": i, "probability": float(p)}
            for p, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]
        best = top[0]
        return {**best, "top": top}

    def classify(
        self,
        images: Sequence[ImageSource],
        top_k: int = 3,
        *,
        show: str | Path | None = None,
    ) -> list[dict[str, Any]]:
        """Top-k classes per image, in input order; folders expand to their image files.

        Each result: ``{"file", "class", "index", "probability", "top", "rejected",
        "ood_score"}`` and ``"reason"`` when rejected (``file`` is None for in-memory images;
        see :meth:`verdicts`). ``show``: a folder to write each model input into as a PNG,
        under a name nothing has yet (``shown``; see :func:`_save_input`); never a run
        directory or a sweep folder, nor a folder inside one (WriteError).
        """
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be an integer >= 1; got {top_k!r}")
        if show is not None:  # before any work: never into a run's or a sweep's folder
            check_not_inside_owned(show, flag="--show")
        sources = _named_sources(images)
        pixels = [self.prepare(source, name) for name, source in sources]
        probs = self.probabilities(np.stack(pixels)) if pixels else torch.empty(0)
        verdicts = self.verdicts(np.stack(pixels)) if pixels else []
        results = [
            {"file": name, **self.top(p, top_k), **verdict}
            for (name, _), p, verdict in zip(sources, probs, verdicts, strict=True)
        ]
        if show is not None:
            for i, (result, (name, _), x) in enumerate(zip(results, sources, pixels, strict=True)):
                result["shown"] = str(_save_input(x, Path(show), name or f"image-{i}"))
        return results


def _named_sources(images: Sequence[ImageSource]) -> list[tuple[str | None, ImageSource]]:
    """(file name or None, source) per image: folders expanded to their image files, in-memory
    images unnamed."""
    if isinstance(images, (str, Path, bytes, Image.Image)):
        images = [images]  # one image given alone, not a sequence of characters
    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 2:
        images = [images]  # one (H, W) image alone, not a sequence of rows
    sources: list[tuple[str | None, ImageSource]] = []
    for item in images:
        if isinstance(item, (str, Path)):
            sources += [(str(f), f) for f in image_files([item])]
        else:
            sources.append((None, item))
    return sources


# ----- --show: the model's inputs as PNG files ---------------------------------------------
def _save_input(pixels: np.ndarray, folder: Path, name: str) -> Path:
    """Write one model input as a PNG of its exact pixels (fed back, it gives the same input).

    Under a name nothing has yet: ``<stem>.png``, else ``<stem>-2.png``, ... so that it never
    replaces an input (``--show`` may name the inputs' own folder), an earlier call's output
    or anything else (:func:`_reserve_name`); the PNG is written to a temporary sibling and
    renamed over that empty reservation, which this call created.
    """
    path = _reserve_name(folder, _stem(name))
    image = Image.fromarray(pixels[0] if len(pixels) == 1 else pixels.transpose(1, 2, 0))
    try:
        atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()  # the empty reservation, ours
        raise
    return path


def _stem(name: str) -> str:
    """The file name's stem, shortened so that it fits with ``-1000.png`` after it."""
    stem = Path(name).stem or "image"
    while len(os.fsencode(stem)) > SHOW_STEM_BYTES:
        stem = stem[: len(stem) * 3 // 4]
    return stem


def _reserve_name(folder: Path, stem: str) -> Path:
    """The first free name of ``<stem>.png``, ``<stem>-2.png``, ... in ``folder`` (made if
    missing), reserved by creating it empty and exclusively (``O_EXCL`` and ``O_NOFOLLOW``:
    an existing file, folder, FIFO or symbolic link, even a dangling one, makes it try the
    next name)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DataError(
            f"--show {shown_name(folder)}: not a folder; name a folder to write the model "
            "inputs into"
        ) from None
    except OSError as exc:  # a read-only disk, no permission: the system's refusal (exit 1)
        raise write_error(exc, folder, "choose another --show folder") from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for n in range(1, SHOW_TRIES + 1):
        path = folder / (f"{stem}.png" if n == 1 else f"{stem}-{n}.png")
        try:
            os.close(os.open(path, flags, 0o666))
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise write_error(exc, path, "choose another --show folder") from None
    raise DataError(
        f"--show {shown_name(folder)}: {stem}.png to {stem}-{SHOW_TRIES}.png all exist; "
        "name an empty folder"
    )
