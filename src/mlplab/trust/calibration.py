"""Calibration: one temperature that makes a classifier's probabilities mean what they say.

Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"): the
calibrated probabilities are ``softmax(z / T)``, ``z`` being logits whose softmax is the
head's own probabilities (:func:`mlplab.model.heads.to_logits`). T minimises the negative
log-likelihood of the validation split's outputs; it is fitted in float64 over ``log T`` with
L-BFGS (strong Wolfe line search) from T = 1 and bounded to :data:`BOUNDS` (a bound reached is
logged). Dividing every logit by the same T > 0 never changes the predicted class, so
accuracy is untouched; only the confidence moves.

The training loop fits T when it ends (the kept weights, the validation split) and
``model.json`` keeps it; :func:`calibrate` fits it again afterwards (``mlplab calibrate``).
Metrics are pure functions on tensors: the top-label expected calibration error over
:data:`BINS` equal-width confidence bins, the NLL, the Brier score, and the per-bin numbers
of the reliability diagram.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data import Dataset, Split
from ..data.splits import configured_splits
from ..errors import ConfigError, RunError
from ..model import heads
from ..model.mlp import MLP
from ..progress import logger
from ..run.directory import Run
from ..run.splits import run_dataset

__all__ = [
    "BINS",
    "BOUNDS",
    "Calibration",
    "Reliability",
    "Scores",
    "brier_score",
    "calibrate",
    "calibration_figures",
    "expected_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
    "outputs_on",
    "reliability",
    "score",
]

BINS = 15  # equal-width confidence bins of the ECE (Guo et al.; torchmetrics' default)
BOUNDS = (0.05, 20.0)  # the temperatures allowed: beyond them the validation data is degenerate


# ----- metrics: pure functions on tensors -------------------------------------------------
@dataclass(frozen=True)
class Reliability:
    """The reliability diagram's numbers: per equal-width bin of top-label confidence, how
    many samples fell in it, their mean confidence and the fraction of them predicted right.

    Bin ``b`` holds confidences in ``[edges[b], edges[b + 1])``; the last bin also holds 1.
    An empty bin has NaN confidence and accuracy.
    """

    edges: list[float]
    counts: list[int]
    confidence: list[float]
    accuracy: list[float]
    ece: float  # sum over bins of |accuracy - confidence| x the bin's share of samples

    @property
    def samples(self) -> int:
        return sum(self.counts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: an empty bin's NaNs become null."""
        clean = [
            [None if math.isnan(v) else v for v in vs] for vs in (self.confidence, self.accuracy)
        ]
        return {**asdict(self), "confidence": clean[0], "accuracy": clean[1]}


def reliability(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> Reliability:
    """The top-label reliability of ``probabilities`` ``(N, K)`` for true ``labels`` ``(N,)``.

    The confidence is the largest probability, the prediction its class (the first of a tie).
    """
    confidence, predicted = probabilities.max(1)
    confidence = confidence.double().cpu()
    correct = (predicted.cpu() == labels.cpu()).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    # [edges[b], edges[b+1]): a confidence on an inner edge belongs to the bin above it
    index = (torch.bucketize(confidence, edges, right=True) - 1).clamp(0, bins - 1)
    counts = torch.bincount(index, minlength=bins)
    confidence_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, confidence)
    correct_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, correct)
    n = len(confidence)
    ece = float((correct_sum - confidence_sum).abs().sum()) / n if n else float("nan")
    return Reliability(
        edges=edges.tolist(),
        counts=counts.tolist(),
        confidence=(confidence_sum / counts).tolist(),  # 0 / 0: NaN for an empty bin
        accuracy=(correct_sum / counts).tolist(),
        ece=ece,
    )


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS
) -> float:
    """Top-label ECE: the mean |accuracy - confidence| over ``bins`` equal-width confidence
    bins, each weighted by its share of the samples (NaN for no samples)."""
    return reliability(probabilities, labels, bins).ece


def negative_log_likelihood(log_probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean of ``-log p(true class)``, in float64."""
    if len(labels) == 0:
        return float("nan")
    return float(F.nll_loss(log_probabilities.double(), labels.to(log_probabilities.device)))


def brier_score(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean over samples of ``sum over classes (p - onehot)²`` (0 is perfect, 2 the worst)."""
    if len(labels) == 0:
        return float("nan")
    p = probabilities.double()
    onehot = F.one_hot(labels.to(p.device), p.shape[1]).double()
    return float(((p - onehot) ** 2).sum(1).mean())


@dataclass(frozen=True)
class Scores:
    """How well calibrated ``softmax(z / T)`` is on a split: ECE, NLL, Brier, the bins."""

    temperature: float
    ece: float
    nll: float
    brier: float
    reliability: Reliability


def score(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0, bins: int = BINS
) -> Scores:
    """The calibration of ``softmax(logits / temperature)`` for ``labels``, in float64."""
    z = logits.double() / temperature
    p, log_p = torch.softmax(z, 1), torch.log_softmax(z, 1)
    bins_ = reliability(p, labels, bins)
    return Scores(
        temperature=temperature,
        ece=bins_.ece,
        nll=negative_log_likelihood(log_p, labels),
        brier=brier_score(p, labels),
        reliability=bins_,
    )


def calibration_figures(
    head: str, outputs: torch.Tensor, labels: torch.Tensor, temperature: float
) -> dict[str, float]:
    """The calibration of a classifier's ``outputs`` on a split (evaluate's and the summary's
    figures): ``{"ece", "ece_uncalibrated", "nll", "brier", "temperature"}``, all with the
    temperature but ``ece_uncalibrated``."""
    z = heads.to_logits(head, outputs)
    after, before = score(z, labels, temperature), score(z, labels)
    return {
        "ece": after.ece,
        "ece_uncalibrated": before.ece,
        "nll": after.nll,
        "brier": after.brier,
        "temperature": temperature,
    }


# ----- fitting the temperature ----------------------------------------------------------
def fit_temperature(
    head: str, outputs: torch.Tensor, labels: torch.Tensor, bounds: tuple[float, float] = BOUNDS
) -> float:
    """The T in ``bounds`` that minimises the NLL of ``softmax(to_logits(outputs) / T)``.

    Fitted in float64 over ``log T`` by L-BFGS with a strong Wolfe line search, from T = 1.
    The NLL is convex in 1 / T, so it has one minimum over ``log T``, and clamping ``log T``
    inside the objective makes it flat beyond the bounds: the search stops at a bound when the
    minimum lies past it (separable outputs want T -> 0), which is logged. No samples: 1.
    """
    if len(labels) == 0:
        return 1.0
    # the head's rule in the outputs' own dtype (a softmax head's log clamps there), then float64
    z = heads.to_logits(head, outputs.detach()).double().cpu()
    y = labels.cpu()
    low, high = math.log(bounds[0]), math.log(bounds[1])
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_t],
        lr=1.0,
        max_iter=100,
        tolerance_grad=1e-10,  # |d NLL / d log T|: T to ~1e-8 at the curvatures met here
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def nll() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(z / log_t.clamp(low, high).exp(), y)
        loss.backward()
        return loss

    def nll_at(log_temperature: float) -> float:
        return float(F.cross_entropy(z / math.exp(log_temperature), y))

    with torch.enable_grad():  # callers may be scoring under no_grad
        optimizer.step(nll)
    fitted = min(max(float(log_t.detach()), low), high)
    # Separable outputs make the NLL underflow to ~0 well before the lower bound, where the
    # search stalls on a flat objective: a bound that scores at least as well as where it
    # stopped is where the (unimodal) minimum lies.
    fitted = min((fitted, low, high), key=lambda v: (nll_at(v), v != low and v != high))
    if fitted in (low, high):
        which = "lower" if fitted == low else "upper"
        logger.info(  # in the run's log; not a warning: small or easy data reach it honestly
            f"calibration: the temperature stopped at its {which} bound {math.exp(fitted):g} "
            f"(allowed {bounds[0]:g} to {bounds[1]:g}); the {len(y):,} samples it was fitted on "
            "are too few or too easy to calibrate on"
        )
    return math.exp(fitted)


@torch.no_grad()
def outputs_on(
    model: MLP,
    split: Split,
    scale: torch.Tensor,
    offset: torch.Tensor,
    *,
    batch_size: int = 1000,
    max_batches: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's outputs ``(N, K)`` (eval mode, on the host, its own dtype) on ``split``
    in order, with the labels; the pixels normalized as training does,
    ``pixel * scale + offset``. ``max_batches``: only the first few (a dry run)."""
    was_training = model.training
    model.eval()
    device = scale.device
    outputs, labels = [], []
    try:
        for b, start in enumerate(range(0, len(split), batch_size)):
            if max_batches is not None and b >= max_batches:
                break
            images = split.images[start : start + batch_size].to(device)
            outputs.append(model(torch.addcmul(offset, images.float(), scale)).cpu())
            labels.append(split.labels[start : start + batch_size].cpu())
    finally:
        model.train(was_training)
    if not outputs:
        return torch.zeros(0, model.classes), torch.zeros(0, dtype=torch.long)
    return torch.cat(outputs), torch.cat(labels)


# ----- a run, afterwards ----------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` did: the temperature before and after, and the split's ECE,
    NLL and Brier score with each."""

    temperature: float
    temperature_before: float
    dataset: str
    split: str  # "val" (the run's validation split) or "test" (another dataset's)
    samples: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    brier_before: float
    brier_after: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate(
    run_dir: str | Path,
    split: str = "val",
    dataset: Dataset | str | None = None,
    *,
    data_dir: str | Path | None = None,
) -> Calibration:
    """Fit a run's temperature again and write it into its ``model.json`` (atomically).

    On the run's validation split (``split="val"``, rebuilt from its config and seeds), or,
    given another ``dataset`` (a :class:`Dataset`, a name or a file; its image shape and
    number of classes must be the run's), on that dataset's test split. The test split of the
    run's own data never chooses anything, so it is refused. Runs on the CPU.
    """
    if split != "val":
        raise ConfigError(
            f"calibrate's split must be val (the test split is for scoring, never for fitting); "
            f"got {split!r}; pass a dataset to calibrate on another dataset's test split"
        )
    run = Run.open(run_dir)
    if run.model_info().get("task", "classification") != "classification":
        raise RunError(f"calibration applies to classification runs; {run.path} is a regression")
    model, normalization, _ = run.load_model("cpu")
    config = run.config()
    data = run_dataset(run, dataset=dataset, data_dir=data_dir, same_data=False)
    if dataset is not None and data.name == run.dataset_info()["name"]:
        raise ConfigError(
            f"dataset '{data.name}' is the one run {run.path} was trained on: its test split is "
            "for scoring, never for fitting; calibrate on the validation split (--split val) "
            "or on another dataset"
        )
    chosen = data.test if dataset is not None else configured_splits(data, config.data)[1]
    if len(chosen) == 0:
        raise RunError(
            f"run {run.path} holds out no validation split (data.val_size="
            f"{config.data.val_size:g}); pass --dataset NAME to calibrate on another dataset's "
            "test split"
        )
    scale, offset = normalization.affine()
    outputs, labels = outputs_on(
        model, chosen, scale, offset, batch_size=config.train.eval_batch_size
    )
    before_t = run.temperature()
    after_t = fit_temperature(model.head, outputs, labels)
    z = heads.to_logits(model.head, outputs)
    before, after = score(z, labels, before_t), score(z, labels, after_t)
    run.save_temperature(after_t)
    return Calibration(
        temperature=after_t,
        temperature_before=before_t,
        dataset=data.name,
        split="test" if dataset is not None else "val",
        samples=len(labels),
        ece_before=before.ece,
        ece_after=after.ece,
        nll_before=before.nll,
        nll_after=after.nll,
        brier_before=before.brier,
        brier_after=after.brier,
    )
