"""The report's rejection numbers: the sets a run is scored on, their AUROC and rejected
fraction against the run's own rejection, the other dataset (resized, skipped with its
reason, never downloaded), and the one line of a run without a rejection."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from bars import SHAPE, bars_dataset
from sklearn.metrics import roc_auc_score

from mlplab import MLP, Config, Dataset, train
from mlplab.analysis.rejection import (
    EDGES,
    KIND_TITLES,
    counterpart,
    rejection_analysis,
    resize,
    score_sets,
)
from mlplab.run.directory import Run
from mlplab.trust.negatives import KINDS
from mlplab.trust.rejection import Rejector


@pytest.fixture(scope="module")
def bars() -> Dataset:
    return bars_dataset()


@pytest.fixture(scope="module")
def run(bars: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rejection-analysis")
    config = Config().override({"model.hidden": [16], "train.epochs": 3, "train.batch_size": 32,
                                "train.lr": 0.01, "train.threads": 1,
                                "run.dir": str(root / "runs"), "run.name": "bars"})  # fmt: skip
    return train(config, dataset=bars).run_dir


def _model(run: Path) -> MLP:
    return Run.open(run).load_model("cpu")[0]


def test_every_set_is_scored_against_the_test_split(run: Path, bars: Dataset) -> None:
    r = rejection_analysis(Run.open(run), _model(run), bars, samples=50, seed=3)
    summary = json.loads((run / "summary.json").read_text())
    assert r.off is None and r.inside is not None
    assert r.inside.name == "test split" and r.inside.samples == 200  # the whole split
    assert r.inside.rejected_fraction == pytest.approx(summary["test_rejected_fraction"])
    assert [s.name for s in r.outside] == [KIND_TITLES.get(k, k) for k in KINDS]
    assert all(s.samples == 50 and s.source == "synthetic" for s in r.outside)
    for s in r.sets:
        assert (s.rejected == (s.scores > r.threshold)).all()
        assert s.counts.sum() == s.samples and len(s.counts) == len(EDGES) - 1
        assert sum(s.reasons.values()) == s.rejected.sum()
    for s in r.outside:  # the AUROC of the test split against the set, as scikit-learn has it
        truth = np.r_[np.zeros(r.inside.samples), np.ones(s.samples)]
        expected = roc_auc_score(truth, np.r_[r.inside.scores, s.scores])
        assert s.auroc == pytest.approx(expected, abs=1e-9)
    by_name = {s.name: s for s in r.outside}
    assert by_name["uniform noise"].rejected_fraction == 1.0
    assert by_name["blank"].rejected_fraction == 1.0 and by_name["blank"].reasons == {"no ink": 50}
    assert by_name["blank"].auroc > 0.9 and by_name["uniform noise"].auroc > 0.9
    assert r.skipped == {
        "other dataset": "no other dataset: MNIST and Fashion-MNIST stand in for each other "
        "(and Fashion-MNIST for USPS and digits); a run on 'bars' has neither"
    }
    record = json.loads(json.dumps(r.to_dict(), allow_nan=False))  # valid JSON: no NaN
    assert (record["samples"], record["seed"], record["threshold"]) == (50, 3, r.threshold)
    assert [s["name"] for s in record["sets"]][:3] == ["test split", "uniform noise", "blank"]


def test_the_sets_are_seeded(run: Path, bars: Dataset) -> None:
    model = _model(run)
    first, again = (rejection_analysis(Run.open(run), model, bars, samples=20) for _ in "ab")
    assert first.to_dict() == again.to_dict()
    assert [s.scores.tolist() for s in first.sets] == [s.scores.tolist() for s in again.sets]


def test_a_run_without_rejection_says_why_in_one_line(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    info = json.loads((copy / "model.json").read_text())
    del info["rejection"]  # as a run trained before the feature
    (copy / "model.json").write_text(json.dumps(info))
    (copy / "rejection.safetensors").unlink()
    asked = []
    r = rejection_analysis(Run.open(copy), _model(copy), lambda: asked.append(1))  # type: ignore
    assert asked == []  # the data is not even loaded
    assert r.off == (
        f"rejection off: run {copy} was trained by an mlplab without the rejection of "
        "unfamiliar inputs; train it again to have one"
    )
    assert r.sets == () and r.to_dict()["sets"] == [] and r.to_dict()["off"] == r.off


def test_resize_averages_areas_down_and_interpolates_up() -> None:
    images = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4) * 10
    small = resize(images, (2, 2))
    assert small.dtype == torch.uint8
    # each pixel the mean of a 2x2 block: (0 + 10 + 40 + 50) / 4 = 25, ...
    assert small[0, 0].tolist() == [[25, 45], [105, 125]]
    assert resize(images, (4, 4)) is images
    assert resize(images, (8, 8)).shape == (1, 1, 8, 8)
    odd = resize(torch.full((3, 1, 28, 28), 200, dtype=torch.uint8), (16, 16))
    assert odd.shape == (3, 1, 16, 16) and (odd == 200).all()  # 28 -> 16: not a whole ratio


def test_the_other_dataset_is_never_downloaded(tmp_path: Path) -> None:
    why = counterpart("usps", (1, 16, 16), tmp_path)
    assert isinstance(why, str)
    assert why.startswith("Fashion-MNIST test skipped: dataset 'fashion-mnist' not found")
    assert "the report never downloads" in why and "\n" not in why
    assert not (tmp_path / "cache" / "fashion-mnist").exists()
    assert counterpart("mnist", (3, 28, 28), tmp_path) == (
        "Fashion-MNIST test skipped: the run's images have 3 channels, it has 1"
    )


def test_the_other_dataset_for_mnist_and_usps(fashion_dir: Path, mnist_dir: Path) -> None:
    name, images = counterpart("mnist", (1, 28, 28), fashion_dir, samples=30, seed=0)
    assert name == "Fashion-MNIST test" and images.shape == (30, 1, 28, 28)
    again = counterpart("mnist", (1, 28, 28), fashion_dir, samples=30, seed=0)
    assert torch.equal(images, again[1])  # type: ignore[index]
    shuffled = counterpart("mnist", (1, 28, 28), fashion_dir, samples=30, seed=1)
    assert not torch.equal(images, shuffled[1])  # type: ignore[index]
    name, small = counterpart("usps", (1, 16, 16), fashion_dir, samples=30, seed=0)
    assert name == "Fashion-MNIST test, resized to 16x16" and small.shape == (30, 1, 16, 16)
    assert torch.equal(small, resize(images, (16, 16)))
    name, digits = counterpart("fashion-mnist", (1, 28, 28), mnist_dir, samples=5)
    assert name == "MNIST test" and digits.shape == (5, 1, 28, 28)


def test_the_splits_accuracy_on_the_accepted_recomputed(run: Path, bars: Dataset) -> None:
    """The test split's rejected fraction and accuracy on the accepted, from model.json's
    threshold and the model's argmax in plain torch: as summary.json has them."""
    r = rejection_analysis(Run.open(run), _model(run), bars, samples=10)
    info = json.loads((run / "model.json").read_text())
    mean = torch.tensor(info["normalization"]["mean"]).view(-1, 1, 1)
    std = torch.tensor(info["normalization"]["std"]).view(-1, 1, 1)
    with torch.no_grad():
        predicted = _model(run)((bars.test.images.float() / 255 - mean) / std).argmax(1)
    accepted = torch.from_numpy(r.inside.scores) <= info["rejection"]["threshold"]
    right = (predicted == bars.test.labels)[accepted].double().mean().item()
    assert 0 < accepted.sum() < len(accepted)  # both kinds: the check can tell them apart
    assert r.inside.accepted_accuracy == pytest.approx(right, abs=1e-12)
    assert r.inside.rejected_fraction == pytest.approx(1 - accepted.double().mean().item())
    summary = json.loads((run / "summary.json").read_text())
    assert r.inside.accepted_accuracy == pytest.approx(summary["test_accepted_accuracy"])
    assert all(s.accepted_accuracy is None for s in r.outside)  # no labels there
    # the classes given (as the report gives its own predictions) are the ones used
    given = rejection_analysis(Run.open(run), _model(run), bars, samples=10,
                               predicted=lambda: predicted.numpy())  # fmt: skip
    assert given.to_dict() == r.to_dict()
    wrong = rejection_analysis(Run.open(run), _model(run), bars, samples=10,
                               predicted=(predicted.numpy() + 1) % 4)  # fmt: skip
    assert wrong.inside.accepted_accuracy == 0.0


def test_nothing_accepted_is_null_not_nan(run: Path, bars: Dataset) -> None:
    rejector = replace(Rejector.load(Run.open(run)), threshold=-1.0)  # rejects everything
    images = bars.test.images[:30]
    r = score_sets(rejector, _model(run), ("test split", images),
                   {"blank": ("synthetic", torch.zeros(5, *SHAPE, dtype=torch.uint8))},
                   right=np.ones(30, dtype=bool))  # fmt: skip
    assert r.inside.rejected_fraction == 1.0 and r.inside.accepted_accuracy is None
    record = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert record["sets"][0]["accepted_accuracy"] is None
    assert record["sets"][1]["accepted_accuracy"] is None
    with pytest.raises(ValueError, match="right holds 29 values for 30 images"):
        score_sets(rejector, _model(run), ("test split", images), {}, right=np.ones(29, bool))
