"""Rejection: a score of how unlike its training images an input is, and "not sure" above a
threshold chosen on the validation split.

A classifier answers every input with a class; this module lets it say "this does not look
like anything I was trained on". The score combines five detectors, each fitted on the
TRAINING split only:

- **no ink** (a rule): no pixel differs from the image's darkest by more than
  :data:`INK_MARGIN` levels of 0-255: a blank or flat frame holds nothing to classify;
- **ink everywhere** (a rule): the fraction of pixels that differ from the training images'
  background by more than :data:`INK_MARGIN` is above ``ink_limit``, halfway between the
  largest fraction any training image has and a full frame (for data whose images fill the
  frame, e.g. photos, the limit is past 1 and the rule never fires);
- **pixels**: the normalized input's Mahalanobis distance under probabilistic PCA of the
  training images (Tipping & Bishop 1999: the distance within the top :data:`PCA_COMPONENTS`
  axes plus the residual's energy over the mean discarded variance), or its PCA
  reconstruction error alone: each run keeps the variant that separates its validation
  images from synthetic non-digits (:mod:`.negatives`) with the larger AUROC. (Runs fitted
  before 2026-12-05 could keep the distance within the axes alone, ``mahalanobis``, which is
  blind to whatever lies outside them: it let 92% of uniform noise through on a
  Fashion-MNIST model; they load and score as they were fitted.)
- **features**: the Mahalanobis distance of the last hidden layer's activations to the
  nearest class mean, with one covariance shared by the classes (Lee et al. 2018, "A Simple
  Unified Framework for Detecting Out-of-Distribution Samples");
- **confidence**: the model's energy, ``-logsumexp(z)`` of its logits (Liu et al. 2020,
  "Energy-based Out-of-distribution Detection"); for the log_softmax and softmax heads, whose
  logits are normalized, and for a model with test-time views (``model.tta``: its outputs
  are the log of the views' mean probabilities, normalized too), the negative largest
  log-probability. (Fits before 2026-12-06 took the energy of a view-averaging model too:
  ``-logsumexp`` of normalized outputs is 0 up to rounding, so that detector ranked rounding
  noise, which changed with the batch; such a run's rejection is off, :func:`why_off`.) Added to the plan on the
  synthetic negatives' evidence: on a tutorial MNIST model it tells letters and scribbles from
  validation digits with an AUROC of 0.985 and 0.970, where the features reach 0.81 and 0.89
  (docs/trust.md).

Each continuous score becomes its rank among the validation split's scores (the fraction of
validation images it exceeds, 0 to 1); the ``ood_score`` is the largest rank, and 1 when a
rule fires. The threshold is the ``accept`` quantile of the validation split's ood_scores,
so that ``accept`` (default :data:`ACCEPT`) of them are accepted; an input is rejected when
its ood_score is above it. The test split never chooses anything.

API, for predict, evaluate, serve, the exports and the report::

    rejector = Rejector.fit(model, normalization, train_split, val_split, accept=0.98)
    rejector.save(run)                       # rejection.safetensors + model.json "rejection"
    rejector = Rejector.load(run)            # None: no rejection (older run, no val split)
    verdict = rejector.score(model, pixels)  # uint8 (N, C, H, W), or floats in [0, 1]
    verdict.scores, verdict.rejected, verdict.reasons   # (N,) float, (N,) bool, str | None
    module = rejector.module(model)          # nn.Module: pixels in [0, 1] -> (score, code)
    REASONS[code]                            # "" (accepted), "no ink", ...

:class:`RejectionModel` is the whole score as one traceable module (``torch.jit.trace`` and
``torch.onnx.export`` take it): ``forward(pixels)`` with pixels in [0, 1] as
:class:`mlplab.model.raw_image.RawImageModel` takes them returns ``(ood_score, code)``, float32
and int64 ``(N,)``; rejected is ``ood_score > threshold`` (its ``threshold`` buffer) and the
reason is ``REASONS[code]``. :meth:`Rejector.score` runs this same module, so an export of it
gives the same numbers. It shares the run's model (the weights are not copied), so an
exporter that also traces the class outputs should wrap both in one module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..data import Normalization, Split
from ..model import heads
from ..model.mlp import MLP
from ..run.directory import Run
from .negatives import FAMILIES, PHOTO_KINDS, negatives

__all__ = [
    "ACCEPT",
    "INK_MARGIN",
    "METHOD",
    "REASONS",
    "VERSION",
    "RejectionModel",
    "Rejector",
    "Verdict",
    "auroc",
    "confidence_of",
    "describe",
    "not_sure",
    "why_off",
]

METHOD = "max-rank"  # the ood_score: the largest of the detectors' validation ranks
VERSION = 1  # of the "rejection" block and rejection.safetensors' tensors
ACCEPT = 0.98  # default fraction of the validation split accepted (train.accept)
INK_MARGIN = 16.0  # levels of 0-255 a pixel must differ by to be ink (JPEG noise stays below)
# ood_score's reason codes: 0 accepted, 1-2 the rules, 3-4 the continuous detectors
REASONS = (
    "",
    "no ink",
    "ink everywhere",
    "unlike the training images",  # pixels
    "unlike every class it knows",  # features
    "no class stands out",  # confidence
)
PCA_SAMPLES = 4096  # training images the PCA is fitted on (evenly spaced): enough for 64 axes
PCA_COMPONENTS = 64  # at most; fewer when the training images span fewer dimensions
RIDGE = 1e-3  # added to the covariances' diagonals, times their mean variance: dead units
REFERENCE = 10_000  # validation scores kept per detector (evenly spaced quantiles if more)
# synthetic images per kind for the choices (pixel variant, combination): in-frame, and
# photographed (~7 ms each through predict's pixel steps: the whole set builds in ~1 s)
NEGATIVES = 64
PHOTO_NEGATIVES = 32
CHUNK = 256  # images per scoring pass (the ranks compare each with every reference score)
PIXEL_VARIANTS = ("ppca", "reconstruction")  # the candidates a fit chooses from
KNOWN_PIXEL_VARIANTS = ("mahalanobis", *PIXEL_VARIANTS)  # and what older runs may have kept
COMBINATIONS = ("max", "fisher")  # of the detectors' surprises -log p: the largest, the sum


class Verdict(NamedTuple):
    """The rejection's answer for ``N`` inputs: ``scores`` (the ood_score, float32 ``(N,)``,
    0 to 1), ``rejected`` (bool ``(N,)``) and ``reasons`` (``None`` for an accepted input,
    else one of :data:`REASONS`)."""

    scores: torch.Tensor
    rejected: torch.Tensor
    reasons: list[str | None]


# ----- the score as one module -------------------------------------------------------------
class RejectionModel(nn.Module):
    """The ood_score of pixels in [0, 1], ``(N, C, H, W)``: ``forward -> (score, code)``.

    Every constant is a buffer (float32) or a Python number, so tracing it gives a graph
    with no branches on data; the run's ``model`` is held, not copied.
    """

    def __init__(self, rejector: Rejector, model: MLP) -> None:
        super().__init__()
        self.model = model
        self.pixel_variant = rejector.pixel_variant
        self.combine = rejector.combine
        self.features = "feature.means" in rejector.tensors
        self.energy = rejector.confidence == "energy"  # else -max log p (confidence_of)
        self.ink_limit = float(rejector.ink_limit)
        scale, offset = rejector.normalization.affine()
        self.register_buffer("scale", scale)
        self.register_buffer("offset", offset)
        self.register_buffer("threshold", torch.tensor(float(rejector.threshold)))
        self.register_buffer("background", rejector.tensors["ink.background"].view(1, -1, 1, 1))
        for name, tensor in rejector.tensors.items():
            if name != "ink.background":
                self.register_buffer(name.replace(".", "_"), tensor)
        if self.features:  # (h - mu)^T P (h - mu) = |(h - mu) L|^2, P = L L^T
            whitener = torch.linalg.cholesky(rejector.tensors["feature.precision"].double())
            centers = rejector.tensors["feature.means"].double() @ whitener
            self.register_buffer("whitener", whitener.float())
            self.register_buffer("centers", centers.float())

    def raw(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each detector's own score (the rules as 0/1), before ranking."""
        levels = pixels.float() * 255
        flat = levels.flatten(1)
        inked = ((levels - self.background).abs() > INK_MARGIN).flatten(1).float().mean(1)
        scores = {
            "no ink": (flat.amax(1) - flat.amin(1) <= INK_MARGIN).float(),
            "ink everywhere": (inked > self.ink_limit).float(),
        }
        x = levels * self.scale + self.offset
        centered = x.flatten(1) - self.pixel_mean
        projected = centered @ self.pixel_basis.T
        residual = (centered * centered).sum(1) - (projected * projected).sum(1)
        within = (projected * projected / self.pixel_variance).sum(1)
        if self.pixel_variant == "reconstruction":  # the residual's energy (orthonormal basis)
            scores["pixels"] = residual
        elif self.pixel_variant == "ppca":  # the whole Gaussian's distance: both parts
            scores["pixels"] = within + residual / self.pixel_residual
        else:  # mahalanobis: within the axes only (runs fitted before ppca)
            scores["pixels"] = within
        outputs, hidden = self.model(x, return_hidden=True)
        z = heads.to_logits(self.model.head, outputs.float())
        scores["confidence"] = (
            -torch.logsumexp(z, 1) if self.energy else -torch.log_softmax(z, 1).amax(1)
        )
        if self.features:
            w = hidden.float() @ self.whitener
            # the differences themselves, not |w|^2 - 2 w.m + |m|^2: the whitened units of
            # rarely active neurons are large, and that sum would cancel in float32
            difference = w.unsqueeze(1) - self.centers.unsqueeze(0)
            distances = (difference * difference).sum(2)
            scores["features"] = distances.amin(1)
        return scores

    def statistic(
        self, pixels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The combined statistic (``combine``: the sum or the largest of the detectors'
        surprises), the detector that contributes most (0 pixels, 1 features, 2
        confidence), whether a rule fired and which (0 no ink, 1 ink everywhere)."""
        raw = self.raw(pixels)
        pixels_ = _surprise(raw["pixels"], self.pixel_reference)
        features = (
            _surprise(raw["features"], self.feature_reference) if self.features else 0 * pixels_
        )
        confidence = _surprise(raw["confidence"], self.confidence_reference)
        stacked = torch.stack([pixels_, features, confidence], 1)
        which = stacked.argmax(1)
        combined = stacked.sum(1) if self.combine == "fisher" else stacked.amax(1)
        fired, rule = torch.stack([raw["no ink"], raw["ink everywhere"]], 1).max(1)
        return combined, which, fired, rule

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        combined, which, fired, rule = self.statistic(pixels)
        best = _rank(combined, self.combined_reference)
        score = torch.where(fired > 0, torch.ones_like(best), best)
        code = torch.where(fired > 0, rule + 1, which + 3)
        code = torch.where(score > self.threshold, code, torch.zeros_like(code))
        return score, code


def _surprise(scores: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``-log p``, ``p`` the upper-tail rank of each score among ``reference`` (the
    validation scores): ``(1 + #reference >= score) / (n + 1)``, so 0 to ``log(n + 1)``."""
    above = (reference.unsqueeze(0) >= scores.unsqueeze(1)).float().sum(1)
    return -torch.log((above + 1) / (reference.shape[0] + 1))


def _rank(scores: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The fraction of ``reference`` (validation scores) each score is above: 0 to 1."""
    return (scores.unsqueeze(1) > reference.unsqueeze(0)).float().mean(1)


# ----- fitting, scoring, saving ----------------------------------------------------------
@dataclass
class Rejector:
    """A run's rejection: the detectors' constants, the validation ranks and the threshold.

    Build it with :meth:`fit` (the training loop does, when it ends) or :meth:`load`; score
    inputs with :meth:`score`; :meth:`module` gives the traceable form.
    """

    normalization: Normalization
    accept: float
    threshold: float  # reject when the ood_score is above it
    ink_limit: float  # inked fraction above which "ink everywhere" fires (> 1: never)
    pixel_variant: str  # ppca or reconstruction (mahalanobis: older runs)
    combine: str  # fisher (the sum of the detectors' surprises) or max (the largest)
    tensors: dict[str, torch.Tensor]  # float32, on the host (see rejection.safetensors)
    validation: dict[str, Any]  # figures of the fit: accepted fraction, AUROCs (the record)
    confidence: str = "energy"  # energy or max_log_p (confidence_of: what the outputs allow)

    @classmethod
    def fit(
        cls,
        model: MLP,
        normalization: Normalization,
        train: Split,
        val: Split,
        accept: float = ACCEPT,
        *,
        batch_size: int = 1000,
        max_batches: int | None = None,
    ) -> Rejector:
        """Fit the detectors on ``train`` and the ranks and threshold on ``val``.

        ``max_batches``: only the first few batches of each split (a dry run).
        """
        if not 0 < accept <= 1:
            raise ValueError(f"accept must be in (0, 1]; got {accept}")
        if max_batches is not None:
            train, val = (_head(s, batch_size * max_batches) for s in (train, val))
        if len(train) == 0 or len(val) == 0:
            raise ValueError("rejection needs training and validation images")
        device = next(model.parameters()).device
        scale, offset = (t.to(device) for t in normalization.affine())
        tensors = _ink(train, device)
        tensors |= _pca(train, scale, offset, device)
        if model.hidden_sizes:  # a linear model's "features" are its pixels
            tensors |= _class_features(model, train, scale, offset, batch_size)
        rejector = cls(
            normalization,
            accept,
            1.0,
            _ink_limit(train, tensors),
            "ppca",
            "max",
            tensors,
            {},
            confidence_of(model),
        )
        rejector._choose_pixel_variant(model, val, batch_size)
        rejector._fit_threshold(model, val, batch_size)
        return rejector

    def _choose_pixel_variant(self, model: MLP, val: Split, batch_size: int) -> None:
        """Keep the pixel score that separates validation images from the synthetic
        non-digits (:mod:`.negatives`) better: the larger mean over the families of
        :func:`_separation`'s AUROCs, ties to ppca; record them."""
        fake = _negatives(val)
        areas = {}
        for variant in PIXEL_VARIANTS:
            self.pixel_variant = variant
            inside = self._raw(model, val.images, batch_size)["pixels"]
            outside = {f: self._raw(model, x, batch_size)["pixels"] for f, x in fake.items()}
            areas[variant] = _separation(inside, outside)
        self.pixel_variant = max(PIXEL_VARIANTS, key=lambda v: (areas[v]["mean"], v == "ppca"))
        self.validation["pixel_auroc"] = {v: a["mean"] for v, a in areas.items()}
        self.validation["pixel_auroc_by_family"] = areas

    def _fit_threshold(self, model: MLP, val: Split, batch_size: int) -> None:
        """The validation ranks (each detector's sorted scores), the combination that tells
        validation images from synthetic negatives better (the larger mean AUROC over the
        families, ties to max; recorded), the validation statistics it ranks against, and
        the threshold."""
        raw = self._raw(model, val.images, batch_size)
        self.tensors["pixel.reference"] = _reference(raw["pixels"])
        if "features" in raw:
            self.tensors["feature.reference"] = _reference(raw["features"])
        self.tensors["confidence.reference"] = _reference(raw["confidence"])
        fake, areas, inside = _negatives(val), {}, {}
        for combine in COMBINATIONS:
            self.combine = combine
            inside[combine] = self._statistic(model, val.images, batch_size)
            outside = {f: self._statistic(model, x, batch_size) for f, x in fake.items()}
            areas[combine] = _separation(inside[combine], outside)
        self.combine = max(COMBINATIONS, key=lambda c: (areas[c]["mean"], c == "max"))
        self.validation["combine_auroc"] = {c: a["mean"] for c, a in areas.items()}
        self.validation["combine_auroc_by_family"] = areas
        self.tensors["combined.reference"] = _reference(inside[self.combine])
        scores = self.score(model, val.images, batch_size=batch_size).scores.double()
        ordered = scores.sort().values
        self.threshold = float(ordered[max(math.ceil(self.accept * len(ordered)) - 1, 0)])
        self.validation["accepted"] = float((scores <= self.threshold).double().mean())
        self.validation["samples"] = len(scores)

    def module(self, model: MLP) -> RejectionModel:
        """The score as one traceable module over ``model`` (see :class:`RejectionModel`)."""
        device = next(model.parameters()).device
        return RejectionModel(self, model).to(device).eval()

    @torch.no_grad()
    def _statistic(self, model: MLP, images: torch.Tensor, batch_size: int) -> torch.Tensor:
        module = self.module(model)
        device = module.threshold.device
        parts = [module.statistic(_pixels(c).to(device))[0] for c in images.split(batch_size)]
        return torch.cat(parts).cpu()

    @torch.no_grad()
    def _raw(self, model: MLP, images: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
        module = self.module(model)
        device = module.threshold.device
        parts = [module.raw(_pixels(chunk).to(device)) for chunk in images.split(batch_size)]
        return {k: torch.cat([p[k] for p in parts]).cpu() for k in parts[0]}

    @torch.no_grad()
    def score(self, model: MLP, pixels: torch.Tensor, *, batch_size: int = CHUNK) -> Verdict:
        """The verdict on ``pixels``: uint8 ``(N, C, H, W)`` as the splits hold them, or
        floats in [0, 1] as :class:`~mlplab.model.raw_image.RawImageModel` takes them."""
        module = self.module(model)
        device = module.threshold.device
        was_training = model.training
        model.eval()
        try:
            parts = [module(_pixels(chunk).to(device)) for chunk in pixels.split(batch_size)]
        finally:
            model.train(was_training)
        if not parts:
            return Verdict(torch.zeros(0), torch.zeros(0, dtype=torch.bool), [])
        scores = torch.cat([p[0] for p in parts]).cpu()
        codes = torch.cat([p[1] for p in parts]).cpu()
        reasons = [REASONS[c] if c else None for c in codes.tolist()]
        return Verdict(scores, codes > 0, reasons)

    @torch.no_grad()
    def figures(
        self, model: MLP, split: Split, *, batch_size: int = 1000, max_batches: int | None = None
    ) -> dict[str, float]:
        """On a labelled split: ``{"rejected_fraction", "accepted_accuracy"}`` (the model's
        accuracy on the inputs it accepts; NaN when it accepts none)."""
        if max_batches is not None:
            split = _head(split, batch_size * max_batches)
        verdict = self.score(model, split.images, batch_size=batch_size)
        module = self.module(model)
        device = module.threshold.device
        was_training = model.training
        model.eval()
        try:
            predicted = (
                torch.cat(
                    [
                        model(_pixels(chunk).to(device) * 255 * module.scale + module.offset)
                        .argmax(1)
                        .cpu()
                        for chunk in split.images.split(batch_size)
                    ]
                )
                if len(split)
                else torch.zeros(0, dtype=torch.long)
            )
        finally:
            model.train(was_training)
        accepted = ~verdict.rejected
        right = (predicted == split.labels.cpu()) & accepted
        n = len(split)
        return {
            # None (JSON null), never NaN: nothing to score, or nothing accepted
            "rejected_fraction": float(verdict.rejected.sum()) / n if n else None,
            "accepted_accuracy": (
                float(right.sum()) / float(accepted.sum()) if accepted.any() else None
            ),
        }

    # ----- the run directory ---------------------------------------------------------------
    def block(self) -> dict[str, Any]:
        """model.json's ``"rejection"``: what a reader needs besides the tensors."""
        return {
            "method": METHOD,
            "version": VERSION,
            "accept": self.accept,
            "threshold": self.threshold,
            "ink_margin": INK_MARGIN,
            "ink_limit": self.ink_limit,
            "pixels": self.pixel_variant,
            "combine": self.combine,
            "components": int(self.tensors["pixel.basis"].shape[0]),
            "reference": int(self.tensors["pixel.reference"].shape[0]),
            "features": "feature.means" in self.tensors,
            "residual": "pixel.residual" in self.tensors,  # ppca's (fits since 2026-12-05)
            "confidence": self.confidence,  # recorded since 2026-12-06
            "validation": self.validation,
        }

    def save(self, run: Run | str | Path) -> None:
        """Write ``rejection.safetensors`` and model.json's ``"rejection"`` (atomically)."""
        run = run if isinstance(run, Run) else Run.open(run)
        tensors = {k: v.detach().float().cpu().contiguous() for k, v in self.tensors.items()}
        run.save_rejection(self.block(), tensors)

    @classmethod
    def load(cls, run: Run | str | Path) -> Rejector | None:
        """A run's rejection, or None when it has none (trained before this feature, a
        regression, no validation split). Shapes are checked against the model's."""
        run = run if isinstance(run, Run) else Run.open(run)
        info = run.model_info()
        block = info.get("rejection")
        if block is None or _meaningless_confidence(info):
            return None
        tensors = run.rejection_tensors(expected_shapes(info["model"], block))
        return cls(
            normalization=Normalization.from_dict(info["normalization"]),
            accept=block["accept"],
            threshold=block["threshold"],
            ink_limit=block["ink_limit"],
            pixel_variant=block["pixels"],
            combine=block["combine"],
            tensors=tensors,
            validation=block.get("validation", {}),
            # a block without it was fitted with the energy exactly when the head is logits
            confidence=block.get("confidence")
            or ("energy" if info["model"]["head"] == "logits" else "max_log_p"),
        )


def confidence_of(model: MLP) -> str:
    """The confidence detector a model's outputs allow: the energy of raw logits, or the
    negative largest log-probability where the outputs are normalized (a log_softmax or
    softmax head; test-time views, whose outputs are the log of a mean probability)."""
    return "energy" if model.head == "logits" and not model.tta else "max_log_p"


def _meaningless_confidence(info: dict[str, Any]) -> bool:
    """A rejection fitted before 2026-12-06 on a model with test-time views and the logits
    head: its confidence detector took the energy of normalized outputs (0 up to rounding)."""
    block, spec = info.get("rejection") or {}, info["model"]
    return "confidence" not in block and spec["head"] == "logits" and bool(spec.get("tta"))


def expected_shapes(spec: dict[str, Any], block: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The tensors rejection.safetensors must hold for a model of ``spec`` and its block."""
    c, h, w = spec["input_shape"]
    k, n = block["components"], block["reference"]
    shapes = {
        "ink.background": (c,),
        "pixel.mean": (c * h * w,),
        "pixel.basis": (k, c * h * w),
        "pixel.variance": (k,),
        **({"pixel.residual": (1,)} if block.get("residual") else {}),
        "pixel.reference": (n,),
        "confidence.reference": (n,),
        "combined.reference": (n,),
    }
    if block["features"]:
        d, classes = spec["hidden"][-1], spec["classes"]
        shapes |= {
            "feature.means": (classes, d),
            "feature.precision": (d, d),
            "feature.reference": (n,),
        }
    return shapes


def describe(rejector: Rejector | None) -> str:
    """One line on a run's rejection, for the logs."""
    if rejector is None:
        return "rejection off"
    return (
        f"rejection: threshold {rejector.threshold:.4f} accepts "
        f"{rejector.validation.get('accepted', float('nan')):.2%} of the validation split "
        f"(asked {rejector.accept:g}); pixels by {rejector.pixel_variant}"
    )


# ----- the detectors' fits ---------------------------------------------------------------
def _pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 levels -> floats in [0, 1]; floats pass as they are."""
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


def _negatives(val: Split) -> dict[str, torch.Tensor]:
    """The synthetic negatives the choices are made on, by family (:data:`.negatives.FAMILIES`),
    of the validation images' shape: :data:`NEGATIVES` of each in-frame kind and
    :data:`PHOTO_NEGATIVES` of each photographed one (seed 0; built once per shape)."""
    shape = tuple(val.images.shape[1:])
    return {
        family: torch.cat(
            [
                negatives(kind, PHOTO_NEGATIVES if kind in PHOTO_KINDS else NEGATIVES, shape)
                for kind in kinds
            ]
        )
        for family, kinds in FAMILIES.items()
    }


def _separation(inside: torch.Tensor, outside: dict[str, torch.Tensor]) -> dict[str, float]:
    """The AUROC of telling ``inside`` (validation) from each family of ``outside``, and their
    mean (``"mean"``): the figure the choices are made by, each family counting the same."""
    areas = {family: auroc(inside, scores) for family, scores in outside.items()}
    return areas | {"mean": sum(areas.values()) / len(areas)}


def _head(split: Split, n: int) -> Split:
    return Split(split.images[:n], split.labels[:n])


def _ink(train: Split, device: torch.device) -> dict[str, torch.Tensor]:
    """The training images' background: per channel, the median of their border pixels."""
    images = train.images[_spaced(len(train), PCA_SAMPLES)].to(device).float()
    k = max(1, round(0.02 * min(images.shape[-2:])))  # the ring images.py reads the paper from
    ring = torch.cat(
        [
            images[..., :k, :].flatten(2),
            images[..., -k:, :].flatten(2),
            images[..., :, :k].flatten(2),
            images[..., :, -k:].flatten(2),
        ],
        2,
    )
    return {"ink.background": ring.transpose(0, 1).flatten(1).median(1).values.cpu()}


def _ink_limit(train: Split, tensors: dict[str, torch.Tensor]) -> float:
    """Halfway between the largest inked fraction of a training image and a full frame."""
    background = tensors["ink.background"].view(1, -1, 1, 1)
    largest = 0.0
    for chunk in train.images.split(4096):
        levels = chunk.cpu().float()
        inked = ((levels - background).abs() > INK_MARGIN).flatten(1).float().mean(1)
        largest = max(largest, float(inked.max()))
    return largest + (1 - largest) / 2 if largest < 1 else 2.0  # 2: never


def _spaced(n: int, at_most: int) -> torch.Tensor:
    """At most ``at_most`` evenly spaced indices of ``n`` (all of them if fewer)."""
    return torch.linspace(0, n - 1, min(n, at_most)).round().long()


def _pca(
    train: Split, scale: torch.Tensor, offset: torch.Tensor, device: torch.device
) -> dict[str, torch.Tensor]:
    """Mean, principal axes (rows, orthonormal) and their variances of the normalized
    training images, in float64 from up to :data:`PCA_SAMPLES` of them."""
    images = train.images[_spaced(len(train), PCA_SAMPLES)].to(device)
    # float64 on the host: MPS has no float64, and this is one eigendecomposition
    x = torch.addcmul(offset, images.float(), scale).flatten(1).cpu().double()
    mean = x.mean(0)
    centered = x - mean
    m, d = centered.shape
    if d <= m:  # the covariance's eigenvectors
        values, vectors = torch.linalg.eigh(centered.T @ centered / m)
        values, axes = values.flip(0), vectors.flip(1).T
    else:  # fewer images than pixels: the Gram matrix's, mapped back to pixel space
        values, vectors = torch.linalg.eigh(centered @ centered.T / m)
        values, vectors = values.flip(0), vectors.flip(1)
        axes = (centered.T @ vectors / (values.clamp_min(1e-12) * m).sqrt()).T
    kept = values > values[0] * 1e-9 if len(values) else values.bool()
    k = max(1, min(PCA_COMPONENTS, int(kept.sum())))
    variance = values[:k] + RIDGE * values[:k].mean()
    # probabilistic PCA's noise variance: the mean variance of the d - k discarded axes (the
    # total, the covariance's trace, less the kept), at least the ridge the kept ones get
    discarded = (centered * centered).sum() / m - values[:k].sum()
    residual = (discarded / max(d - k, 1)).clamp_min(RIDGE * values[:k].mean())
    return {
        "pixel.mean": mean.float().cpu(),
        "pixel.basis": axes[:k].float().cpu(),
        "pixel.variance": variance.float().cpu(),
        "pixel.residual": residual.reshape(1).float().cpu(),
    }


@torch.no_grad()
def _class_features(
    model: MLP, train: Split, scale: torch.Tensor, offset: torch.Tensor, batch_size: int
) -> dict[str, torch.Tensor]:
    """Per-class means of the last hidden layer and the precision of their shared (pooled
    within-class) covariance, in float64, ridged for units that never vary."""
    was_training = model.training
    model.eval()
    device = scale.device
    d, k = model.hidden_sizes[-1], model.classes
    # sums in float64 on the host (MPS has no float64)
    sums = torch.zeros(k, d, dtype=torch.float64)
    outer = torch.zeros(d, d, dtype=torch.float64)
    counts = torch.zeros(k, dtype=torch.float64)
    try:
        for start in range(0, len(train), batch_size):
            images = train.images[start : start + batch_size].to(device)
            labels = train.labels[start : start + batch_size].cpu()
            _, hidden = model(torch.addcmul(offset, images.float(), scale), return_hidden=True)
            h = hidden.cpu().double()
            sums.index_add_(0, labels, h)
            counts += torch.bincount(labels, minlength=k).double()
            outer += h.T @ h
    finally:
        model.train(was_training)
    means = sums / counts.clamp_min(1).unsqueeze(1)
    # pooled within-class covariance: E[h h^T] - sum_c n_c mu_c mu_c^T / N
    covariance = (outer - (means.T * counts) @ means) / counts.sum()
    covariance = (covariance + covariance.T) / 2
    ridge = RIDGE * float(covariance.diagonal().mean().clamp_min(1e-12))
    precision = torch.linalg.inv(covariance + ridge * torch.eye(d, dtype=torch.float64))
    return {
        "feature.means": means.float().cpu(),
        "feature.precision": ((precision + precision.T) / 2).float().cpu(),
    }


def _reference(scores: torch.Tensor) -> torch.Tensor:
    """The sorted validation scores, at most :data:`REFERENCE` (evenly spaced quantiles)."""
    ordered = scores.float().sort().values
    return ordered[_spaced(len(ordered), REFERENCE)].contiguous()


def auroc(inside: torch.Tensor, outside: torch.Tensor) -> float:
    """The probability that an ``outside`` score is above an ``inside`` one (ties: half):
    the area under the ROC curve of telling them apart by the score."""
    a, b = inside.double().flatten(), outside.double().flatten()
    if not len(a) or not len(b):
        return float("nan")
    both = torch.cat([a, b])
    order = both.argsort()
    ranks = torch.empty_like(both)
    ranks[order] = torch.arange(1, len(both) + 1, dtype=torch.float64)
    # ties share their mean rank
    values, inverse, counts = torch.unique(both, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, ranks)
    ranks = (sums / counts)[inverse]
    u = float(ranks[len(a) :].sum()) - len(b) * (len(b) + 1) / 2
    return u / (len(a) * len(b))


def not_sure(classes: Sequence[str], score: float, reason: str) -> str:
    """How a rejected input is shown to people: ``not sure this is a digit (score 0.999:
    unlike the training images)``; "a digit" only when the classes are the digits, else
    "one of its N classes"."""
    digits = sorted(classes) == [str(d) for d in range(10)]
    what = "a digit" if digits else f"one of its {len(classes)} classes"
    return f"not sure this is {what} (score {score:.3f}: {reason})"


def why_off(run: Run) -> str:
    """Why a run has no rejection, in one line for predict and evaluate to say once."""
    if run.model_info().get("task", "classification") != "classification":
        return f"rejection off: run {run.path} is a regression (no classes to be unlike)"
    if _meaningless_confidence(run.model_info()):
        return (
            f"rejection off: run {run.path}'s rejection was fitted before 2026-12-06 with a "
            "confidence score its test-time views (model.tta) made meaningless (it changed with "
            "the batch); train it again to have one"
        )
    if run.config().data.val_size == 0:
        return (
            f"rejection off: run {run.path} holds out no validation split to choose a "
            "threshold on (data.val_size=0); its answers are not checked for unfamiliar inputs"
        )
    return (
        f"rejection off: run {run.path} was trained by an mlplab without the rejection of "
        "unfamiliar inputs; train it again to have one"
    )
