"""The range test's outputs: the plot (the suggestion marked) and the numbers beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlplab import Config, load_dataset
from mlplab.report.lr_find import lr_find_figure, save_lr_find
from mlplab.training.lr_find import LRFind, lr_find

pytest.importorskip("matplotlib")


def made_up(method: str) -> LRFind:
    steepest = 1e-3 if method == "steepest descent" else None
    return LRFind(
        lrs=[1e-4, 1e-3, 1e-2, 1e-1],
        losses=[2.3, 1.5, 0.9, 4.0],
        smoothed=[2.3, 1.8, 1.3, float("inf")],
        suggestion=1e-3,
        method=method,
        steepest=steepest,
        minimum=1e-2,
        stopped="done",
        setup={"dataset": "d", "model": "4-2 relu"},
    )


def test_save_writes_plot_and_json(tmp_path: Path) -> None:
    config = Config().override({"data.dataset": "digits", "model.hidden": [16], "train.threads": 1})
    result = lr_find(config, dataset=load_dataset("digits"), steps=40)
    png, data = save_lr_find(result, tmp_path / "out" / "lr.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and data == tmp_path / "out" / "lr.json"
    saved = json.loads(data.read_text())
    assert saved["suggestion"] == result.suggestion and saved["lrs"] == result.lrs
    assert saved["minimum_over_10"] == result.minimum / 10 and saved["method"] == result.method


@pytest.mark.parametrize(
    "method, marks",
    [
        ("steepest descent", ["suggested 1.0e-03 (steepest descent)", "minimum/10 1.0e-03"]),
        ("minimum/10", ["suggested 1.0e-03 (minimum/10)"]),
    ],
)
def test_the_plot_marks_the_suggestion_and_keeps_the_blow_up_out_of_view(
    method: str, marks: list[str]
) -> None:
    ax = lr_find_figure(made_up(method)).axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["loss per step", "smoothed", *marks]
    assert ax.get_xscale() == "log"
    low, high = ax.get_ylim()  # the finite smoothed losses 2.3 .. 1.3, not the blow-up
    assert low == pytest.approx(1.3 - 0.1 - 1e-3) and high == pytest.approx(2.3 + 0.6 + 1e-3)
