"""The report's explanations (analysis.explanations): the sample per class, the mistakes, the
class means, the deletion curves, the JSON, and a run without Captum."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from mlplab import MLP, Normalization, Split
from mlplab.analysis.explanations import explain_split
from mlplab.analysis.mistakes import most_confident_mistakes
from mlplab.analysis.predictions import predict_split


@pytest.fixture(scope="module")
def predictions():
    torch.manual_seed(0)
    model = MLP((1, 8, 8), hidden=[16], classes=3).eval()
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (60, 1, 8, 8), dtype=torch.uint8, generator=g),
                  torch.arange(60) % 3)  # fmt: skip
    normalization = Normalization((0.5,), (0.25,))
    return model, normalization, predict_split(model, split, normalization, ("a", "b", "c"))


def test_explain_split(predictions) -> None:
    model, normalization, p = predictions
    wrong = most_confident_mistakes(p, 25).indices
    e = explain_split(
        model, normalization, 1.5, p, wrong, torch.zeros(1), per_class=4, n_mistakes=3, steps=8
    )
    assert e.off is None and e.classes == ("a", "b", "c") and e.class_counts == (4, 4, 4)
    assert e.class_means.shape == (3, 8, 8) and e.maps.shape == (3, 8, 8)
    assert e.images.shape == (3, 1, 8, 8) and e.images.dtype == np.uint8
    np.testing.assert_array_equal(e.images, p.images[wrong[:3]])
    assert list(e.true) == [p.classes[p.labels[i]] for i in wrong[:3]]
    assert list(e.probability) == pytest.approx([float(p.confidence[i]) for i in wrong[:3]])
    assert e.deletion is not None and e.deletion.images == 12
    record = e.to_dict()
    assert record["per_class"] == [4, 4, 4] and len(record["mistakes"]) == 3
    assert record["deletion"]["images"] == 12 and record["steps"] == 8
    again = explain_split(
        model, normalization, 1.5, p, wrong, torch.zeros(1), per_class=4, n_mistakes=3, steps=8
    )
    np.testing.assert_array_equal(again.class_means, e.class_means)  # seeded


def test_without_captum_the_section_says_why(predictions, monkeypatch: pytest.MonkeyPatch) -> None:
    model, normalization, p = predictions
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    e = explain_split(model, normalization, 1.0, p, np.array([0]), None)
    assert e.off is not None and e.deletion is None and e.to_dict() == {"off": e.off}
    assert e.off.endswith("install it with: pip install 'mlplab[explain]'")
