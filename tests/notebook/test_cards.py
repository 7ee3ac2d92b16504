"""The HTML cards a notebook shows: Run, TrainResult, RunAnalysis and Comparison
``_repr_html_``: the figures the run's files hold, the curves, escaped user text, cheap."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mlplab import Config, train
from mlplab.notebook.svg import confusion_html, curves_html, from_history
from mlplab.report.compare import compare_runs
from mlplab.report.run_report import RunAnalysis
from mlplab.run.directory import Run

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """Two 3-epoch runs of the conftest's synthetic data (one module-wide: seconds)."""
    from conftest import make_dataset

    root = tmp_path_factory.mktemp("cards")
    data = make_dataset(classes=3)
    data = type(data)(data.name, data.train, data.test, ("zero", EVIL, "two"), data.origin)
    config = Config().override(
        {
            "model.hidden": [16],
            "train.epochs": 3,
            "train.batch_size": 32,
            "train.lr": 0.01,
            "train.threads": 1,
            "run.dir": str(root / "runs"),
            "run.name": "plain",
        }
    )
    first = train(config, dataset=data, progress=False)
    second = train(config.override({"train.lr": 0.003}), dataset=data, progress=False)
    # run.name refuses '<', but a folder can be renamed, or come from anyone
    evil = first.run_dir.with_name(first.run_dir.name + EVIL.replace("/", "_"))
    first.run_dir.rename(evil)
    return dataclasses.replace(first, run=Run(evil)), second, data


def _text(markup: str) -> str:
    return re.sub(r"<[^>]+>", " ", markup)


def test_a_runs_card(trained) -> None:
    result, _, _ = trained
    markup = Run(result.run_dir)._repr_html_()
    summary = result.summary
    assert f"{summary['test_accuracy']:.2%}" in markup
    assert f"{summary['test_loss']:.4f}" in markup
    assert (
        f"ECE {summary['test_ece']:.2%} (uncalibrated {summary['test_ece_uncalibrated']:.2%})"
        in markup
    )
    assert f"{summary['test_rejected_fraction']:.2%} of the test split rejected" in markup
    assert f"{summary['train_seconds']:.1f}" in markup
    assert (
        "synthetic" in markup
        and "64-16-3 relu" in markup
        and html.escape(str(result.run_dir)) in markup
    )
    for record in result.history:  # the curves, one dot per epoch and figure
        e = record["epoch"]
        assert f"epoch {e}: val loss {record['val_loss']:.4f}</title>" in markup
        assert f"epoch {e}: train accuracy {record['train_accuracy']:.2%}</title>" in markup
    for svg in re.findall(r"<svg.*?</svg>", markup, re.S):
        ET.fromstring(svg)  # well-formed
    assert result._repr_html_().count("<svg") == markup.count("<svg") == 2  # loss, accuracy
    assert Run(str(result.run_dir))._repr_html_() == markup  # a str path too


def test_user_text_is_escaped(trained) -> None:
    """A run name is user input: it is shown, as text, never as markup."""
    result, _, _ = trained
    assert "<script" in result.run_dir.name
    for markup in (Run(result.run_dir)._repr_html_(), result._repr_html_()):
        assert "<script" not in markup and "&lt;script&gt;alert(1)&lt;" in markup


def test_a_runs_card_is_cheap(trained, monkeypatch) -> None:
    """From the JSON files alone: the weights are never read, in milliseconds."""
    result, _, _ = trained
    monkeypatch.setattr(Run, "load_model", lambda *a, **k: pytest.fail("loaded the model"))
    start = time.perf_counter()
    Run(result.run_dir)._repr_html_()
    assert time.perf_counter() - start < 0.5


def test_an_unfinished_or_damaged_run_still_shows(tmp_path: Path, trained) -> None:
    result, _, _ = trained
    run = Run.create(tmp_path, "fresh")
    (run.path / "metrics.jsonl").write_text(
        (result.run_dir / "metrics.jsonl").read_text().splitlines()[0] + "\n"
    )
    markup = run._repr_html_()
    assert "1 finished; no summary.json yet" in markup and "epoch 1: val loss" in markup
    (run.path / "summary.json").write_text("{not json")
    assert "summary.json" in _text(run._repr_html_())  # the problem as a note, not a traceback


def test_an_analysis_shows_the_confusion_matrix(trained) -> None:
    result, _, data = trained
    analysis = RunAnalysis(result.run_dir, dataset=data)
    markup = analysis._repr_html_()
    counts = analysis.confusion.counts
    assert f"accuracy {analysis.confusion.accuracy:.2%}" in markup
    cells = [int(c) for c in re.findall(r"<td [^>]*>(\d+)</td>", markup)]
    assert cells == counts.ravel().tolist()
    assert "<script" not in markup and "&lt;script&gt;" in markup  # the class name


def test_a_comparison(trained) -> None:
    first, second, _ = trained
    comparison = compare_runs([first.run_dir, second.run_dir])
    markup = comparison._repr_html_()
    assert "Comparing 2 runs" in markup and "<script" not in markup
    _, rows = comparison.results()
    for row in rows:  # the results table, cell by cell
        assert all(f">{c.replace('<', '&lt;').replace('>', '&gt;')}</td>" in markup for c in row)
    for name, result in zip(comparison.names, (first, second), strict=True):
        loss = result.history[-1]["val_loss"]
        shown = name.replace("<", "&lt;").replace(">", "&gt;")
        assert f"{shown} epoch 3: val loss {loss:.4f}</title>" in markup  # overlaid curves


def test_curves_with_gaps_and_one_epoch() -> None:
    """No validation (None), a regression (no accuracy chart), a single epoch: still drawn."""
    history = [{"epoch": 1, "train_loss": 0.5, "val_loss": None, "train_accuracy": None}]
    markup = curves_html([from_history("r", history)])
    assert markup.count("<svg") == 1 and "train loss 0.5000" in markup
    ET.fromstring(re.search(r"<svg.*?</svg>", markup, re.S).group(0))


def test_confusion_cells_are_shaded_by_row() -> None:
    markup = confusion_html([[6, 1, 1], [2, 2, 0], [0, 0, 0]], ["a", "b&c", "d"])
    assert "rgba(46,160,67,0.75)" in markup and "rgba(46,160,67,0.50)" in markup  # row shares
    assert "rgba(207,34,46,0.70)" in markup  # the worst mistake (2 of 4 b&c)
    assert markup.count("rgba(207,34,46,0.17)") == 2  # 1 of 8 a: a quarter as bad
    assert "b&amp;c" in markup
    json.dumps(markup)  # plain text, no objects


def _rings(markup: str) -> list[str]:
    """The tooltips of the ringed dots (the kept epoch)."""
    return re.findall(r'r="4.5"[^>]*><title>([^<]*)</title>', markup)


def test_the_kept_epoch_is_ringed_where_it_was_chosen() -> None:
    """On the validation curve; without validation figures (train.select then watched the
    training ones) on the training curve, and the key says so only where a ring is drawn."""
    with_val = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 0.5 + e / 10}
        for e in (1, 2, 3)
    ]
    markup = curves_html([from_history("r", with_val, best_epoch=2)])
    assert _rings(markup) == ["r epoch 2: val loss 0.5500"]
    assert "solid: validation &middot; dashed: training &middot; ring: kept epoch" in markup
    no_val = [{**r, "val_loss": None} for r in with_val]
    markup = curves_html([from_history("r", no_val, best_epoch=2)])
    assert _rings(markup) == ["r epoch 2: train loss 0.5000", "r epoch 2: train accuracy 70.00%"]
    assert "solid: validation" not in markup and "dashed: training &middot; ring" in markup
    markup = curves_html([from_history("r", no_val, best_epoch=7)])  # not a recorded epoch
    assert _rings(markup) == [] and "ring" not in markup


def test_curves_of_non_finite_or_extreme_figures() -> None:
    """NaN and infinities are left out; with nothing finite there is no chart and no key;
    figures near a float's limit do not break the drawing."""
    nan, inf = float("nan"), float("inf")
    history = [
        {"epoch": 1, "train_loss": nan, "val_loss": inf, "train_accuracy": nan},
        {"epoch": 2, "train_loss": 0.5, "val_loss": nan},
    ]
    markup = curves_html([from_history("r", history)])
    assert markup.count("<svg") == 1 and "train loss 0.5000" in markup
    assert "nan" not in markup.lower() and "inf" not in markup.lower()
    ET.fromstring(re.search(r"<svg.*?</svg>", markup, re.S).group(0))
    assert curves_html([from_history("r", [{"epoch": 1, "train_loss": nan}])]) == ""
    for extreme in ([1.7e308, -1.7e308], [-1.7e308]):
        records = [{"epoch": e, "train_loss": v} for e, v in enumerate(extreme, 1)]
        assert "nan" not in curves_html([from_history("r", records)]).lower()


def test_a_card_of_an_odd_history(tmp_path: Path) -> None:
    """Records without a whole epoch (a damaged or foreign metrics.jsonl) are left out of the
    curves; an empty file draws none: the card shows either way."""
    run = Run.create(tmp_path, "odd")
    metrics = run.path / "metrics.jsonl"
    metrics.write_text('{"train_loss": 0.9}\n{"epoch": 2, "train_loss": 0.7, "val_loss": 0.8}\n')
    markup = run._repr_html_()
    assert "epoch 2: val loss 0.8000" in markup and markup.count("<title>") == 2
    metrics.write_text("")
    markup = run._repr_html_()
    assert "<svg" not in markup and "solid: validation" not in markup
    assert "0 finished; no summary.json yet" in markup


def test_a_result_and_its_run_carry_the_same_notes(trained, tmp_path: Path) -> None:
    """An interrupted or dry run says so on both cards, in the report's words."""
    from mlplab.notebook.cards import NOTES

    result, _, _ = trained
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in ("metrics.jsonl", "model.json"):
        (copy / file).write_bytes((result.run_dir / file).read_bytes())
    summary = {**result.summary, "interrupted": True, "dry_run": True}
    (copy / "summary.json").write_text(json.dumps(summary))
    shown = dataclasses.replace(result, summary=summary)._repr_html_()
    for text in NOTES.values():
        assert html.escape(text) in shown and html.escape(text) in Run(copy)._repr_html_()
