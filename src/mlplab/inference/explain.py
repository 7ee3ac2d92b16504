"""Why a run's model gave its answer: attribution maps for image files (``mlplab explain``).

The images go through predict's preprocessing (:class:`.predictor.Predictor`), so what is
explained is exactly what predict classified; the attributions come from
:mod:`mlplab.trust.explain` (Captum: integrated gradients, occlusion, saliency), of the
calibrated log-odds of the predicted class (or ``target``), against a baseline that is
the run's background in pixel space.

    maps = mlplab.explain(run_dir, ["seven.png"])            # float32 (N, C, H, W)
    explainer = Explainer(run_dir)                           # the model loaded once
    record = explainer.write(["seven.png"], "explanations/")  # PNGs + explanations.json

:meth:`Explainer.write` puts three PNGs per image in the folder: ``<stem>.input.png`` (the
model's input, its exact pixels: fed back, it gives the same input), ``<stem>.attribution.png``
(red: for the class, blue: against; scaled to the image's largest magnitude) and
``<stem>.overlay.png`` (the heat over the input, dimmed), both enlarged to at least
:data:`SHOWN` pixels, and ``explanations.json`` (per image: the class, the numbers and the
file names). Files already in the folder are replaced only when its ``explanations.json`` is
an earlier one of these; otherwise the call is refused before any work.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from ..files.atomic import (
    atomic_write,
    check_not_inside_owned,
    check_outputs,
    os_errors,
    write_text_atomic,
)
from ..trust.explain import (
    STEPS,
    STRIDE,
    WINDOW,
    Attributions,
    LogOdds,
    attribute,
    baseline_images,
    check_options,
)
from ..trust.rejection import Rejector
from .images import MAX_PIXELS, ImageSource
from .predictor import Predictor, _named_sources, _stem

__all__ = ["SHOWN", "Explainer", "explain", "is_explanations"]

SHOWN = 224  # the attribution and overlay PNGs are enlarged (nearest) to at least this, pixels
MARK = b'{\n  "mlplab": "explanations"'  # how an earlier explanations.json starts
POSITIVE = np.array([214, 39, 40], np.float32)  # red: evidence for the class
NEGATIVE = np.array([31, 119, 180], np.float32)  # blue: evidence against it
STRENGTH = 0.85  # the heat's opacity at the image's largest magnitude, in the overlay


def explain(
    run_dir: str | Path,
    images: Sequence[ImageSource],
    method: str = "integrated-gradients",
    target: int | str | None = None,
    *,
    steps: int = STEPS,
    window: int = WINDOW,
    stride: int = STRIDE,
    style: str = "auto",
    device: str = "cpu",
    max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """Attribution maps of a run's model on image files (or folders, PIL images, arrays).

    Returns float32 ``(N, C, H, W)``, shaped like the model's input, in input order (folders
    expanded): each pixel's share of the calibrated log-odds of ``target`` (a class
    name or index; None: each image's predicted class). ``method``: one of
    ``integrated-gradients`` (``steps`` along the path), ``occlusion`` (a ``window`` x
    ``window`` patch moved by ``stride``) or ``saliency``. Needs ``mlplab[explain]``.
    """
    explainer = Explainer(run_dir, style=style, device=device, max_pixels=max_pixels)
    sources = _named_sources(images)
    pixels = explainer.prepare(sources)
    return explainer.attribute(
        pixels, method, target, steps=steps, window=window, stride=stride
    ).maps


class Explainer:
    """A run's model and preprocessing (a :class:`Predictor`), loaded once, explaining images.

    ``background``: the baseline's level per channel in [0, 1], the run's training images'
    border (kept by its rejection); None for a run without one (each image's own border is
    used then). ``predictor``: reuse one already loaded (``predict --explain``)."""

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        predictor: Predictor | None = None,
        style: str = "auto",
        device: str = "cpu",
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        if predictor is None:
            if run_dir is None:
                raise ConfigError("Explainer needs a run directory or a Predictor")
            predictor = Predictor(
                run_dir, style=style, device=device, max_pixels=max_pixels, reject=False
            )
        self.predictor = predictor
        self.model = LogOdds(predictor.model, predictor.head)
        rejector = predictor.rejector or Rejector.load(predictor.run)
        self.background = (
            rejector.tensors["ink.background"].float() / 255 if rejector is not None else None
        )

    def __repr__(self) -> str:
        return f"Explainer({self.predictor!r})"

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.predictor.classes)

    def prepare(self, sources: list[tuple[str | None, ImageSource]]) -> torch.Tensor:
        """Named sources -> the model's uint8 inputs ``(N, C, H, W)`` (predict's steps)."""
        arrays = [self.predictor.prepare(source, name) for name, source in sources]
        c, h, w = self.predictor.input_shape
        return torch.from_numpy(np.stack(arrays)) if arrays else torch.empty(0, c, h, w).byte()

    def target_index(self, target: int | str | None) -> int | None:
        """A class name (or, for a string that is none, its index written out) or an index
        -> the index; None stays None. ConfigError naming the classes otherwise."""
        if target is None:
            return None
        k = len(self.classes)
        if isinstance(target, str):
            if target in self.classes:
                return self.classes.index(target)
            if target.strip().lstrip("-").isdecimal():
                target = int(target)
        if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < k:
            shown = ", ".join(self.classes[:12]) + (", ..." if k > 12 else "")
            raise ConfigError(
                f"the target (--target, ?target=) must be a class of this run ({shown}) or its "
                f"index 0 to {k - 1}; got {target!r}"
            )
        return target

    def attribute(
        self,
        pixels: torch.Tensor,
        method: str = "integrated-gradients",
        target: int | str | None = None,
        *,
        steps: int = STEPS,
        window: int = WINDOW,
        stride: int = STRIDE,
    ) -> Attributions:
        """:func:`mlplab.trust.explain.attribute` on the model's inputs (uint8 ``(N, C, H, W)``)."""
        return attribute(
            self.model,
            pixels,
            method=method,
            target=self.target_index(target),
            background=self.background,
            steps=steps,
            window=window,
            stride=stride,
        )

    def baseline(self, pixels: torch.Tensor) -> torch.Tensor:
        """The baseline images of ``pixels`` (uint8 ``(N, C, H, W)``), floats in [0, 1]."""
        return baseline_images(pixels.float() / 255, self.background)

    def write(
        self,
        images: Sequence[ImageSource],
        out: str | Path,
        method: str = "integrated-gradients",
        target: int | str | None = None,
        *,
        steps: int = STEPS,
        window: int = WINDOW,
        stride: int = STRIDE,
        flag: str = "--out",
    ) -> dict[str, Any]:
        """Explain ``images`` into the folder ``out``: three PNGs per image and
        ``explanations.json`` (module doc); returns what the JSON holds.

        Refused before any work (WriteError): ``out`` inside a run directory or a sweep
        folder, or any file to be written already there unless the folder's
        ``explanations.json`` is an earlier one of these (``flag`` names the option)."""
        out = Path(out)
        check_options(method, steps, window, stride, self.predictor.input_shape[1:])
        index = self.target_index(target)
        check_not_inside_owned(out, flag=flag)
        sources = _named_sources(images)
        stems = _unique_stems([name or f"image-{i}" for i, (name, _) in enumerate(sources)])
        files = {stem: _file_names(stem) for stem in stems}
        check_outputs(
            out / "explanations.json",
            [out / f for names in files.values() for f in names.values()],
            ours=is_explanations,
            ours_is="an earlier mlplab explanations.json",
            flag=flag,
        )
        pixels = self.prepare(sources)
        found = self.attribute(pixels, method, index, steps=steps, window=window, stride=stride)
        probs = self.predictor.probabilities(pixels)
        with os_errors(out, f"choose another {flag}"):  # a read-only disk, no permission
            out.mkdir(parents=True, exist_ok=True)
        entries = []
        for i, ((name, _), stem) in enumerate(zip(sources, stems, strict=True)):
            names = files[stem]
            _write_png(out / names["input"], _input_image(pixels[i]))
            heat = found.maps[i].sum(0).numpy()
            _write_png(out / names["attribution"], _enlarged(_heat_image(heat)))
            _write_png(out / names["overlay"], _enlarged(_overlay_image(pixels[i], heat)))
            entries.append(_entry(self, name, names, found, probs[i], i))
        record = self._record(method, index, steps, window, stride, entries, found)
        text = json.dumps(record, indent=2) + "\n"
        write_text_atomic(out / "explanations.json", text)
        return record

    def _record(
        self,
        method: str,
        index: int | None,
        steps: int,
        window: int,
        stride: int,
        entries: list[dict[str, Any]],
        found: Attributions,
    ) -> dict[str, Any]:
        options = (
            {"steps": steps}
            if method == "integrated-gradients"
            else {"window": window, "stride": stride}
            if method == "occlusion"
            else {}
        )
        background = self.background
        record: dict[str, Any] = {
            "mlplab": "explanations",
            "run": str(self.predictor.run.path),
            "method": method,
            "options": options,
            "target": None if index is None else self.classes[index],
            "attributed": "the calibrated log-odds of the class, log(p / (1 - p)), nats",
            "temperature": self.predictor.temperature,
            "baseline": {
                "pixel": None if background is None else [round(float(v), 6) for v in background],
                "from": "the run's training images' border (median)"
                if background is not None
                else "each image's own border (median): the run keeps no background",
            },
            "images": entries,
        }
        if found.completeness_error is not None and len(entries):
            gap = (found.log_odds - found.baseline_log_odds).abs()
            error = found.completeness_error.abs()
            record["completeness"] = {
                "max_error": round(float(error.max()), 6),
                "mean_error": round(float(error.mean()), 6),
                "max_relative_error": round(float((error / gap.clamp_min(1e-6)).max()), 6),
            }
        return record


def is_explanations(path: str | Path) -> bool:
    """``path`` is an explanations.json mlplab wrote (one a new one may replace)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MARK)) == MARK
    except OSError:
        return False


def _entry(
    explainer: Explainer,
    name: str | None,
    files: dict[str, str],
    found: Attributions,
    probs: torch.Tensor,
    i: int,
) -> dict[str, Any]:
    """One image's line of explanations.json."""
    t = int(found.targets[i])
    best = int(probs.argmax())
    entry: dict[str, Any] = {
        "file": name,
        "class": explainer.classes[best],
        "probability": round(float(probs[best]), 6),
        "target": explainer.classes[t],
        "target_index": t,
        "target_probability": round(float(probs[t]), 6),
        "log_odds": round(float(found.log_odds[i]), 6),
        "baseline_log_odds": round(float(found.baseline_log_odds[i]), 6),
        "attribution_sum": round(float(found.maps[i].sum()), 6),
    }
    if found.completeness_error is not None:
        entry["completeness_error"] = round(float(found.completeness_error[i]), 6)
    return entry | files


def _unique_stems(names: list[str]) -> list[str]:
    """Each name's stem, made unique within the call (``seven``, ``seven-2``, ...)."""
    seen: set[str] = set()
    stems = []
    for name in names:
        stem = base = _stem(name)
        n = 1
        while stem in seen:
            n += 1
            stem = f"{base}-{n}"
        seen.add(stem)
        stems.append(stem)
    return stems


def _file_names(stem: str) -> dict[str, str]:
    return {kind: f"{stem}.{kind}.png" for kind in ("input", "attribution", "overlay")}


# ----- pictures ------------------------------------------------------------------------------
def _write_png(path: Path, image: Image.Image) -> None:
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def _input_image(pixels: torch.Tensor) -> Image.Image:
    """The model's input, its exact pixels (gray or RGB)."""
    x = pixels.numpy()
    return Image.fromarray(x[0] if len(x) == 1 else np.ascontiguousarray(x.transpose(1, 2, 0)))


def _scaled(heat: np.ndarray) -> np.ndarray:
    """The map in [-1, 1]: divided by its largest magnitude (0 everywhere for an empty map)."""
    top = float(np.abs(heat).max()) if heat.size else 0.0
    return heat / top if top > 0 and math.isfinite(top) else np.zeros_like(heat)


def _colours(t: np.ndarray) -> np.ndarray:
    """(H, W) in [-1, 1] -> (H, W, 3): red for positive, blue for negative."""
    return np.where(t[..., None] >= 0, POSITIVE, NEGATIVE)


def _heat_image(heat: np.ndarray) -> Image.Image:
    """The map alone: white at 0, full red or blue at the largest magnitude."""
    t = _scaled(heat)
    a = np.abs(t)[..., None]
    rgb = 255 * (1 - a) + _colours(t) * a
    return Image.fromarray(rgb.round().clip(0, 255).astype(np.uint8))


def _overlay_image(pixels: torch.Tensor, heat: np.ndarray) -> Image.Image:
    """The heat laid over the input (gray, dimmed to 60%) with opacity ``|t| * STRENGTH``."""
    x = pixels.float().numpy()
    gray = x[0] if len(x) == 1 else 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    t = _scaled(heat)
    a = (np.abs(t) * STRENGTH)[..., None]
    rgb = (0.6 * gray)[..., None] * (1 - a) + _colours(t) * a
    return Image.fromarray(rgb.round().clip(0, 255).astype(np.uint8))


def _enlarged(image: Image.Image) -> Image.Image:
    """Enlarged by a whole factor (nearest: one pixel stays one square) to >= SHOWN pixels."""
    factor = max(1, math.ceil(SHOWN / max(image.size)))
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.NEAREST)
