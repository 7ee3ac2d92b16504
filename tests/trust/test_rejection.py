"""Rejection of unfamiliar inputs: the detectors against by-hand references (pooled-covariance
Mahalanobis, PCA reconstruction, scikit-learn's AUROC), the threshold's acceptance of the
validation split, blank and noise always rejected, the saved form (checked when read), the
traceable module's parity, and the runs that have none."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from bars import SHAPE, bars_dataset, bars_split
from safetensors.torch import load_file, save_file
from sklearn.metrics import roc_auc_score

from mlplab import Config, Dataset, Split, train
from mlplab.config import check_against_data
from mlplab.data.splits import configured_splits
from mlplab.errors import ConfigError, RunError
from mlplab.run.directory import Run
from mlplab.trust.negatives import KINDS, PHOTO_KINDS, negatives
from mlplab.trust.rejection import PIXEL_VARIANTS, REASONS, Rejector, auroc, why_off


@pytest.fixture(scope="module")
def bars() -> Dataset:
    return bars_dataset()


@pytest.fixture(scope="module")
def run(bars: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rejection")
    config = Config().override(
        {
            "model.hidden": [16],
            "train.epochs": 3,
            "train.batch_size": 32,
            "train.lr": 0.01,
            "train.threads": 1,
            "train.accept": 0.9,
            "run.dir": str(root / "runs"),
            "run.name": "bars",
        }
    )
    return train(config, dataset=bars).run_dir


@pytest.fixture(scope="module")
def splits(run: Path, bars: Dataset) -> tuple[Split, Split, Split]:
    """The run's train, validation and test splits, as training made them."""
    return configured_splits(bars, Run.open(run).config().data)


# ----- what training keeps ------------------------------------------------------------------
def test_training_keeps_a_rejection_whose_threshold_accepts_the_asked_fraction(
    run: Path, splits: tuple[Split, ...]
) -> None:
    info = json.loads((run / "model.json").read_text())
    block = info["rejection"]
    assert block["method"] == "max-rank" and block["version"] == 1 and block["accept"] == 0.9
    assert block["pixels"] in ("ppca", "reconstruction") and block["features"] is True
    assert block["residual"] is True  # ppca's noise variance, kept whichever variant won
    assert block["combine"] in ("max", "fisher") and set(block["validation"]["combine_auroc"]) == {
        "max",
        "fisher",
    }
    tensors = load_file(str(run / "rejection.safetensors"))
    assert set(tensors) == {
        "ink.background",
        "pixel.mean",
        "pixel.basis",
        "pixel.variance",
        "pixel.residual",
        "pixel.reference",
        "feature.means",
        "feature.precision",
        "feature.reference",
        "confidence.reference",
        "combined.reference",
    }
    assert all(t.dtype == torch.float32 for t in tensors.values())
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["test_rejected_fraction"] < 0.3
    assert summary["test_accepted_accuracy"] >= summary["test_accuracy"] - 0.02

    rejector = Rejector.load(run)
    assert rejector is not None and rejector.threshold == block["threshold"]
    model, _, _ = Run.open(run).load_model()
    _, val, _ = splits
    verdict = rejector.score(model, val.images)
    accepted = int((~verdict.rejected).sum())
    # the accept quantile of the validation scores: at least 0.9, ties may add a few more
    assert math.ceil(0.9 * len(val)) <= accepted <= math.ceil(0.9 * len(val)) + 5
    assert accepted / len(val) == pytest.approx(block["validation"]["accepted"])
    assert [r is not None for r in verdict.reasons] == verdict.rejected.tolist()
    assert set(verdict.reasons) - {None} <= set(REASONS[1:])


def test_blank_noise_and_negatives_are_rejected_with_their_reason(run: Path) -> None:
    rejector = Rejector.load(run)
    model, _, _ = Run.open(run).load_model()
    blank = rejector.score(model, torch.zeros(5, *SHAPE, dtype=torch.uint8))
    assert blank.rejected.all() and set(blank.reasons) == {"no ink"}
    assert blank.scores.tolist() == [1.0] * 5
    gray = rejector.score(model, torch.full((3, *SHAPE), 0.5))  # flat, in [0, 1] floats
    assert set(gray.reasons) == {"no ink"}
    noise = rejector.score(model, negatives("noise", 50, SHAPE, seed=1))
    assert noise.rejected.all() and set(noise.reasons) == {"ink everywhere"}
    for kind in ("gradient", "textures", "glyphs", "shapes", "strokes"):
        verdict = rejector.score(model, negatives(kind, 40, SHAPE, seed=1))
        assert verdict.rejected.float().mean() >= 0.5, kind  # bars, not shapes


def test_the_test_split_chooses_nothing(run: Path, splits: tuple[Split, ...]) -> None:
    """The rejection is a function of the training and validation splits alone."""
    train_split, val, _ = splits
    model, normalization, _ = Run.open(run).load_model()
    fitted = Rejector.fit(model, normalization, train_split, val, 0.9)
    saved = Rejector.load(run)
    assert fitted.threshold == pytest.approx(saved.threshold)
    assert (fitted.pixel_variant, fitted.combine) == (saved.pixel_variant, saved.combine)
    for name, tensor in saved.tensors.items():
        torch.testing.assert_close(fitted.tensors[name], tensor, rtol=1e-5, atol=1e-5)


def test_the_choices_are_the_mean_auroc_over_both_families_of_negatives(
    run: Path, splits: tuple[Split, ...]
) -> None:
    """The pixel variant and the combination: the larger mean, over the in-frame and the
    photographed negatives, of the AUROC vs the validation images (docs/trust.md), each
    family's AUROC recorded; recomputed here from the public pieces."""
    val = splits[1]
    rejector = Rejector.load(run)
    model, _, _ = Run.open(run).load_model()
    fake = {
        "in-frame": torch.cat([negatives(k, 64, SHAPE) for k in KINDS]),
        "photographed": torch.cat([negatives(k, 32, SHAPE) for k in PHOTO_KINDS]),
    }
    record = rejector.validation
    for choice, options in (("combine", ("max", "fisher")), ("pixel", PIXEL_VARIANTS)):
        by_family = record[f"{choice}_auroc_by_family"]
        assert set(by_family) == set(options)
        for option in options:
            areas = by_family[option]
            assert set(areas) == {"in-frame", "photographed", "mean"}
            assert areas["mean"] == pytest.approx((areas["in-frame"] + areas["photographed"]) / 2)
            assert record[f"{choice}_auroc"][option] == areas["mean"]
    means = record["combine_auroc"]
    assert rejector.combine == ("fisher" if means["fisher"] > means["max"] else "max")
    means = record["pixel_auroc"]
    assert rejector.pixel_variant == max(PIXEL_VARIANTS, key=lambda v: (means[v], v == "ppca"))
    # the combined statistic's AUROC per family, by hand, for the kept combination
    module = rejector.module(model)
    with torch.no_grad():
        inside = module.statistic(val.images.float() / 255)[0]
        for family, images in fake.items():
            outside = module.statistic(images.float() / 255)[0]
            kept = record["combine_auroc_by_family"][rejector.combine][family]
            assert auroc(inside, outside) == pytest.approx(kept, abs=1e-9), family


# ----- the detectors against references -----------------------------------------------------
def test_feature_distance_is_the_pooled_covariance_mahalanobis_by_hand(
    run: Path, splits: tuple[Split, ...]
) -> None:
    train_split, val, _ = splits
    model, normalization, _ = Run.open(run).load_model()
    rejector = Rejector.load(run)
    scale, offset = normalization.affine()
    with torch.no_grad():
        _, h = model(train_split.images.float() * scale + offset, return_hidden=True)
        _, q = model(val.images[:20].float() * scale + offset, return_hidden=True)
    h, q, y = h.double(), q.double(), train_split.labels
    means = torch.stack([h[y == c].mean(0) for c in range(4)])
    residual = h - means[y]
    covariance = residual.T @ residual / len(h)  # one covariance shared by the classes
    covariance += 1e-3 * covariance.diagonal().mean() * torch.eye(16, dtype=torch.float64)
    precision = torch.linalg.inv(covariance)
    by_hand = torch.stack([((q - m) @ precision * (q - m)).sum(1) for m in means], 1).amin(1)
    got = rejector.module(model).raw(val.images[:20].float() / 255)["features"]
    torch.testing.assert_close(got.double(), by_hand, rtol=2e-3, atol=1e-3)


def test_pixel_scores_are_the_pca_projection_by_hand(run: Path, splits: tuple[Split, ...]) -> None:
    train_split, val, _ = splits
    model, normalization, _ = Run.open(run).load_model()
    rejector = Rejector.load(run)
    scale, offset = normalization.affine()
    x = (train_split.images.float() * scale + offset).flatten(1).double()
    mean = x.mean(0)
    _, values, axes = torch.linalg.svd(x - mean, full_matrices=False)
    k = rejector.tensors["pixel.basis"].shape[0]
    q = (val.images[:20].float() * scale + offset).flatten(1).double() - mean
    projected = q @ axes[:k].T
    variance = values[:k] ** 2 / len(x)
    ridge = 1e-3 * variance.mean()
    # probabilistic PCA's noise variance: the mean of the discarded axes' variances
    residual_variance = (values[k:] ** 2 / len(x)).sum() / (x.shape[1] - k)
    within = (projected * projected / (variance + ridge)).sum(1)
    residual = (q * q).sum(1) - (projected * projected).sum(1)
    by_hand = {
        "reconstruction": residual,
        "ppca": within + residual / max(residual_variance, ridge),
        "mahalanobis": within,  # runs fitted before ppca
    }
    module = rejector.module(model)
    for variant in by_hand:
        module.pixel_variant = variant
        got = module.raw(val.images[:20].float() / 255)["pixels"]
        torch.testing.assert_close(got.double(), by_hand[variant], rtol=1e-3, atol=1e-3)
    assert rejector.pixel_variant in PIXEL_VARIANTS  # a fit chooses ppca or reconstruction


def test_a_run_that_kept_the_older_variant_loads_and_an_unknown_one_is_refused(
    run: Path, tmp_path: Path
) -> None:
    """A run fitted before ppca kept 'mahalanobis' and no residual: it loads and scores as
    fitted; an unknown variant, or ppca without its residual, is one line."""
    import shutil

    older = tmp_path / "older"
    shutil.copytree(run, older)
    info = json.loads((older / "model.json").read_text())
    block = info["rejection"]
    tensors = load_file(str(older / "rejection.safetensors"))
    del tensors["pixel.residual"]
    save_file(tensors, str(older / "rejection.safetensors"))
    for pixels, residual, why in (
        ("mahalanobis", None, None),
        ("ppca", None, "rejection.pixels ppca needs its residual variance (residual: true)"),
        ("pca", True, "rejection.pixels must be mahalanobis, ppca or reconstruction; got 'pca'"),
    ):
        block = {k: v for k, v in block.items() if k != "residual"} | {"pixels": pixels}
        if residual:
            block["residual"] = True
        (older / "model.json").write_text(json.dumps(info | {"rejection": block}))
        if why is None:
            assert Rejector.load(older).pixel_variant == pixels
            continue
        with pytest.raises(RunError) as error:
            Rejector.load(older)
        assert str(error.value) == (
            f"{older / 'model.json'}: not a model description made by mlplab (ValueError: {why})"
        )


def test_auroc_matches_scikit_learn() -> None:
    g = torch.Generator().manual_seed(0)
    inside = torch.randn(300, generator=g)
    outside = torch.randn(200, generator=g) + 1
    outside[:20] = inside[:20]  # ties count half
    labels = [0] * 300 + [1] * 200
    expected = roc_auc_score(labels, torch.cat([inside, outside]).numpy())
    assert auroc(inside, outside) == pytest.approx(expected, abs=1e-12)
    assert auroc(torch.zeros(3), torch.ones(2)) == 1.0 and math.isnan(auroc(torch.zeros(0), inside))


# ----- the traceable module -------------------------------------------------------------------
def test_the_module_traces_to_the_same_scores(run: Path, splits: tuple[Split, ...]) -> None:
    rejector = Rejector.load(run)
    model, _, _ = Run.open(run).load_model()
    _, val, _ = splits
    pixels = torch.cat([val.images[:30], negatives("noise", 5, SHAPE)]).float() / 255
    module = rejector.module(model)
    traced = torch.jit.trace(module, pixels[:2], check_trace=False)
    scores, codes = traced(pixels)
    verdict = rejector.score(model, pixels)
    torch.testing.assert_close(scores, verdict.scores)
    assert ((codes > 0) == verdict.rejected).all() and (
        (scores > module.threshold) == (codes > 0)
    ).all()
    assert [REASONS[c] or None for c in codes.tolist()] == verdict.reasons


# ----- reading what was saved ---------------------------------------------------------------
def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


def test_damaged_rejection_files_are_one_line(run: Path, tmp_path: Path) -> None:
    copy = _copy(run, tmp_path)
    tensors = load_file(str(copy / "rejection.safetensors"))
    tensors["feature.precision"] = tensors["feature.precision"][:3]
    save_file(tensors, str(copy / "rejection.safetensors"))
    with pytest.raises(
        RunError,
        match=r"rejection\.safetensors: the weights do not fit .*wrong shape feature\.precision",
    ):
        Rejector.load(copy)

    tensors = load_file(str(run / "rejection.safetensors"))
    tensors["pixel.mean"][0] = float("nan")
    save_file(tensors, str(copy / "rejection.safetensors"))
    with pytest.raises(RunError, match=r"tensor pixel\.mean holds NaN or infinite values$"):
        Rejector.load(copy)

    (copy / "rejection.safetensors").unlink()
    with pytest.raises(RunError, match=r"rejection\.safetensors is missing, though model\.json"):
        Rejector.load(copy)

    info = json.loads((run / "model.json").read_text())
    info["rejection"]["accept"] = 1.5
    (copy / "model.json").write_text(json.dumps(info))
    with pytest.raises(RunError, match=r"rejection\.accept must be in \(0, 1\]; got 1\.5"):
        Run.open(copy).model_info()
    info["rejection"]["accept"] = 0.9
    info["rejection"]["components"] = -1
    (copy / "model.json").write_text(json.dumps(info))
    with pytest.raises(RunError, match=r"rejection\.components must be a whole number >= 0"):
        Run.open(copy).model_info()


def test_older_runs_and_runs_without_validation_have_none(run: Path, tmp_path: Path) -> None:
    copy = _copy(run, tmp_path)
    info = json.loads((copy / "model.json").read_text())
    del info["rejection"]
    (copy / "model.json").write_text(json.dumps(info))
    (copy / "rejection.safetensors").unlink()
    assert Rejector.load(copy) is None  # an older run: loads, rejection off

    g = torch.Generator().manual_seed(1)
    data = Dataset("bars", bars_split(200, g), bars_split(50, g), ("a", "b", "c", "d"), "generated")
    config = Config().override(
        {
            "model.hidden": [8],
            "train.epochs": 1,
            "train.threads": 1,
            "data.val_size": 0,
            "run.dir": str(tmp_path / "runs"),
        }
    )
    result = train(config, dataset=data)
    assert "rejection" not in json.loads((result.run_dir / "model.json").read_text())
    assert not (result.run_dir / "rejection.safetensors").exists()
    assert Rejector.load(result.run_dir) is None


def test_accept_is_checked_and_refused_for_a_regression() -> None:
    with pytest.raises(ConfigError, match=r"train\.accept.*\(0, 1\]"):
        Config().override({"train.accept": 0})
    assert Config().override({"train.accept": 1}).train.accept == 1
    table = Dataset(
        "table",
        Split(torch.rand(20, 2, 1, 1), torch.rand(20)),
        Split(torch.rand(5, 2, 1, 1), torch.rand(5)),
        ("y",),
        "generated",
        task="regression",
    )
    check_against_data(Config(), table)  # the default is no request: a regression trains
    with pytest.raises(
        ConfigError, match=r"^train\.accept=0\.9 sets how many inputs .*regression has no rejection"
    ):
        check_against_data(Config().override({"train.accept": 0.9}), table)


def test_surprises_and_their_combination_by_hand(run: Path, splits: tuple[Split, ...]) -> None:
    from mlplab.trust.rejection import _surprise

    reference = torch.tensor([1.0, 2.0, 3.0, 4.0])
    got = _surprise(torch.tensor([0.0, 2.5, 4.0, 9.0]), reference)
    # upper-tail p = (1 + #reference >= score) / (n + 1)
    expected = -torch.log(torch.tensor([5 / 5, 3 / 5, 2 / 5, 1 / 5]))
    torch.testing.assert_close(got, expected)

    rejector = Rejector.load(run)
    model, _, _ = Run.open(run).load_model()
    module = rejector.module(model)
    pixels = splits[1].images[:10].float() / 255
    with torch.no_grad():
        raw = module.raw(pixels)
        combined, _, _, _ = module.statistic(pixels)
        score, _ = module(pixels)
    names = {"pixels": "pixel", "features": "feature", "confidence": "confidence"}
    parts = torch.stack(
        [_surprise(raw[k], rejector.tensors[f"{v}.reference"]) for k, v in names.items()], 1
    )
    by_hand = parts.sum(1) if rejector.combine == "fisher" else parts.amax(1)
    torch.testing.assert_close(combined, by_hand)
    reference = rejector.tensors["combined.reference"]
    torch.testing.assert_close(score, (by_hand[:, None] > reference[None]).float().mean(1))


def test_evaluate_gives_the_rejected_fraction_and_accepted_accuracy(
    run: Path, bars: Dataset, tmp_path: Path
) -> None:
    from mlplab.analysis.evaluate import evaluate

    metrics = evaluate(run, dataset=bars)
    summary = json.loads((run / "summary.json").read_text())
    assert metrics["rejected_fraction"] == pytest.approx(summary["test_rejected_fraction"])
    assert metrics["accepted_accuracy"] == pytest.approx(summary["test_accepted_accuracy"])
    assert metrics["rejection_off"] is None
    off = evaluate(run, dataset=bars, reject=False)
    assert (off["rejected_fraction"], off["accepted_accuracy"], off["rejection_off"]) == (
        None,
        None,
        None,
    )
    assert off["accuracy"] == metrics["accuracy"]  # rejection never changes the answers

    copy = _copy(run, tmp_path)
    info = json.loads((copy / "model.json").read_text())
    del info["rejection"]
    (copy / "model.json").write_text(json.dumps(info))
    older = evaluate(copy, dataset=bars)
    assert older["rejected_fraction"] is None
    assert older["rejection_off"].startswith(f"rejection off: run {copy} was trained by an mlplab")


def test_nothing_accepted_is_null_not_nan(run: Path, splits: tuple[Split, ...]) -> None:
    """A threshold that rejects everything: accuracy on the accepted is None (JSON null), so
    evaluate --json and summary.json stay valid JSON (NaN is not JSON)."""
    rejector = Rejector.load(run)
    model, _, _ = Run.open(run).load_model()
    rejector.threshold = -1.0
    figures = rejector.figures(model, splits[2])
    assert figures == {"rejected_fraction": 1.0, "accepted_accuracy": None}
    json.dumps(figures, allow_nan=False)


def test_with_test_time_views_the_confidence_is_the_largest_log_probability(
    bars: Dataset, tmp_path: Path
) -> None:
    """With ``model.tta`` the outputs are the log of the views' mean probability, so the
    energy -logsumexp is 0 up to rounding: that detector ranked rounding noise, which changes
    with the batch (found 2026-12-06: 11 verdicts of 1,797 digits flipped between one batch
    and one image at a time, and ONNX exports of such runs failed their parity check)."""
    config = Config().override(
        {
            "model.hidden": [16],
            "model.tta": ["shift"],
            "train.epochs": 2,
            "train.batch_size": 32,
            "train.lr": 0.01,
            "train.threads": 1,
            "run.dir": str(tmp_path / "runs"),
        }
    )
    run = train(config, dataset=bars).run_dir
    assert json.loads((run / "model.json").read_text())["rejection"]["confidence"] == "max_log_p"
    rejector = Rejector.load(run)
    model, _, _ = Run.open(run).load_model()
    images = bars.test.images[:64]
    raw = rejector.module(model).raw(images.float() / 255)["confidence"]
    assert raw.std() > 1e-3  # the largest log-probability varies; the energy was ~1e-7
    together = rejector.score(model, images).scores
    alone = torch.cat([rejector.score(model, images[i : i + 1]).scores for i in range(64)])
    step = 1 / rejector.tensors["confidence.reference"].numel()  # one validation rank
    moved = (together - alone).abs()  # rounding of other batch sizes: a rank or two, rarely
    assert moved.max() <= 3.5 * step and moved.mean() < step / 2  # export's own tolerance

    copy = _copy(run, tmp_path)  # fitted before the choice was recorded: the energy, noise
    info = json.loads((copy / "model.json").read_text())
    del info["rejection"]["confidence"]
    (copy / "model.json").write_text(json.dumps(info))
    assert Rejector.load(copy) is None
    assert why_off(Run.open(copy)) == (
        f"rejection off: run {copy}'s rejection was fitted before 2026-12-06 with a confidence "
        "score its test-time views (model.tta) made meaningless (it changed with the batch); "
        "train it again to have one"
    )
