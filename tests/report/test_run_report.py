"""The report: files, analysis.json against summary.json, every figure, the CLI commands,
shape generality, and the page in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from html import escape
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import make_images, quick

from mlplab import Config, RunError, train
from mlplab.analysis.rejection import KIND_TITLES
from mlplab.cli import main
from mlplab.errors import ConfigError
from mlplab.report.run_report import FIGURES, RunAnalysis, plot, report

# the figures a report draws for a run without robustness.json (that section is one line)
DRAWN = [name for name in FIGURES if name != "robustness"]

# Small settings: each report takes a few seconds on one thread.
FAST = {"tsne_samples": 40, "candidates": 32, "iterations": 2, "ascent_steps": 10,
        "mistakes": 9, "samples": 12, "rejection_samples": 60}  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run on the bundled digits: it reloads its data by itself."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("digits")
    config = Config().override({"data.dataset": "digits", "model.hidden": [24], "train.epochs": 3,
                                "train.lr": 0.01, "train.threads": 1, "run.dir": str(root / "runs"),
                                "run.name": "digits"})  # fmt: skip
    return train(config).run_dir


@pytest.fixture(scope="module")
def digits_report(digits_run: Path) -> Path:
    return report(digits_run, **FAST)


def test_report_writes_html_json_and_figures(digits_run: Path, digits_report: Path) -> None:
    assert digits_report == digits_run / "report.html"
    html = digits_report.read_text()
    for name in DRAWN:
        assert (digits_run / "figures" / f"{name}.png").read_bytes().startswith(PNG)
        assert f'id="fig-{name}"' in html
    assert "http://" not in html and "https://" not in html  # offline: nothing fetched
    assert html.count('src="data:image/png;base64,') == len(DRAWN)
    assert f"No robustness.json: `mlplab robustness {digits_run}`" in html
    assert json.loads((digits_run / "analysis.json").read_text())["robustness"] is None
    for section in ("Training", "Test metrics", "Mistakes", "Representations", "Weights",
                    "Imagining a class", "Most confused pairs", "full config"):  # fmt: skip
        assert section in html
    assert not list(digits_run.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_analysis_json_matches_summary(digits_run: Path, digits_report: Path) -> None:
    analysis = json.loads((digits_run / "analysis.json").read_text())
    summary = json.loads((digits_run / "summary.json").read_text())
    counts = np.array(analysis["confusion_matrix"])
    assert counts.shape == (10, 10) and counts.sum() == analysis["samples"] == 450
    assert analysis["classes"] == [str(d) for d in range(10)]
    assert analysis["test_accuracy"] == np.trace(counts) / counts.sum()
    assert analysis["test_accuracy"] == summary["test_accuracy"]  # the run's own figure, exactly
    assert analysis["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-6)
    assert [r["support"] for r in analysis["per_class"]] == counts.sum(1).tolist()
    assert [r["recall"] for r in analysis["per_class"]] == pytest.approx(
        list(summary["test_per_class_accuracy"].values())
    )
    for pair in analysis["most_confused"]:
        assert counts[pair["true_index"], pair["predicted_index"]] == pair["count"]
    assert [p["count"] for p in analysis["most_confused"]] == sorted(
        (p["count"] for p in analysis["most_confused"]), reverse=True
    )
    assert [w["layer"] for w in analysis["weights"]] == ["hidden.0", "output"]


def test_the_reports_calibration_is_the_summarys(digits_run: Path, digits_report: Path) -> None:
    analysis = json.loads((digits_run / "analysis.json").read_text())["calibration"]
    summary = json.loads((digits_run / "summary.json").read_text())
    temperature = json.loads((digits_run / "model.json").read_text())["temperature"]
    assert analysis["temperature"] == temperature != 1
    assert analysis["ece_after"] == pytest.approx(summary["test_ece"], abs=1e-6)
    assert analysis["ece_before"] == pytest.approx(summary["test_ece_uncalibrated"], abs=1e-6)
    assert analysis["nll_after"] == pytest.approx(summary["test_nll"], rel=1e-5)
    assert analysis["brier_after"] == pytest.approx(summary["test_brier"], rel=1e-5)
    assert analysis["nll_before"] == pytest.approx(summary["test_loss"], rel=1e-5)  # the model's
    bins = analysis["reliability_after"]
    assert len(bins["counts"]) == 15 and sum(bins["counts"]) == 450
    assert "Reliability: how often the model is right" in digits_report.read_text()


def test_the_reports_rejection_is_the_summarys(digits_run: Path, digits_report: Path) -> None:
    """analysis.json's rejection: the test split whole, as summary.json scored it; each other
    set against it; the section's table shows the same figures."""
    record = json.loads((digits_run / "analysis.json").read_text())["rejection"]
    summary = json.loads((digits_run / "summary.json").read_text())
    threshold = json.loads((digits_run / "model.json").read_text())["rejection"]["threshold"]
    assert (record["off"], record["threshold"], record["accept"]) == (None, threshold, 0.98)
    inside, *others = record["sets"]
    assert (inside["name"], inside["samples"], inside["auroc"]) == ("test split", 450, None)
    assert inside["rejected_fraction"] == pytest.approx(summary["test_rejected_fraction"])
    assert inside["accepted_accuracy"] == pytest.approx(summary["test_accepted_accuracy"])
    synthetic = [s for s in others if s["source"] == "synthetic"]
    assert [s["name"] for s in synthetic] == list(KIND_TITLES.values())
    assert all(s["samples"] == 60 for s in others)
    for s in record["sets"]:
        assert (
            sum(s["histogram"]) == s["samples"] and len(s["histogram"]) == len(record["bins"]) - 1
        )
    blank = next(s for s in synthetic if s["name"] == "blank")
    assert blank["rejected_fraction"] == 1.0 and blank["reasons"] == {"no ink": 60}
    html = digits_report.read_text()
    assert 'id="fig-rejection"' in html and "AUROC vs the split" in html
    for s in others:
        assert (
            f'<td>{s["name"]}</td><td class="n">60</td><td class="n">{s["auroc"]:.4f}</td>' in html
        )
    if "other dataset" in record["skipped"]:  # Fashion-MNIST is not on this machine: why
        assert record["skipped"]["other dataset"].startswith("Fashion-MNIST test skipped: ")
        assert html.count("the report never downloads") == 1
    else:
        assert others[0]["name"] == "Fashion-MNIST test, resized to 8x8"


def test_a_run_without_rejection_gets_one_line(digits_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "older"
    shutil.copytree(digits_run, copy, ignore=shutil.ignore_patterns("figures", "report.html"))
    info = json.loads((copy / "model.json").read_text())
    del info["rejection"]
    (copy / "model.json").write_text(json.dumps(info))
    (copy / "rejection.safetensors").unlink()
    html = report(copy, **FAST).read_text()
    line = (f"Rejection off: run {copy} was trained by an mlplab without the rejection of "
            "unfamiliar inputs; train it again to have one.")  # fmt: skip
    assert html.count(escape(line)) == 1
    assert 'id="fig-rejection"' not in html and "AUROC vs the split" not in html
    assert not (copy / "figures" / "rejection.png").exists()
    record = json.loads((copy / "analysis.json").read_text())["rejection"]
    assert record["off"] == line[:1].lower() + line[1:-1] and record["sets"] == []


def test_nothing_accepted_is_written_as_null(digits_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "strict"
    shutil.copytree(digits_run, copy, ignore=shutil.ignore_patterns("figures", "report.html"))
    info = json.loads((copy / "model.json").read_text())
    info["rejection"]["threshold"] = -1.0  # every score is above it
    (copy / "model.json").write_text(json.dumps(info))
    report(copy, **FAST)

    def no_nan(name: str) -> None:
        raise AssertionError(f"analysis.json holds {name}")

    text = (copy / "analysis.json").read_text()
    inside = json.loads(text, parse_constant=no_nan)["rejection"]["sets"][0]
    assert inside["rejected_fraction"] == 1.0 and inside["accepted_accuracy"] is None
    assert '"accepted_accuracy": null' in text


def test_plot_figures_from_the_run_directory_alone(digits_run: Path, tmp_path: Path) -> None:
    """Curves, weights and imagining need no data: they draw even with the data gone."""
    for name in ("curves", "weights", "histograms", "imagine"):
        out = plot(digits_run, name, tmp_path / f"{name}.png", **FAST)
        assert out.read_bytes().startswith(PNG)
    with pytest.raises(ConfigError, match="unknown figure 'confuson'.*did you mean 'confusion'"):
        RunAnalysis(digits_run).figure("confuson")


def test_notebook_api_numbers_and_figures(digits_run: Path) -> None:
    a = RunAnalysis(digits_run, **FAST)
    assert a.confusion.counts.shape == (10, 10) and len(a.mistakes) <= 9
    assert a.pca["hidden"].points.shape == (450, 2) and a.tsne["logits"].points.shape == (40, 2)
    figure = a.figure("confusion")
    assert type(figure).__name__ == "Figure" and figure.axes
    with pytest.raises(
        ConfigError, match="report setting 'tsne_samples' must be a whole number >= 10"
    ):
        RunAnalysis(digits_run, tsne_samples=2)


# ----- the command line --------------------------------------------------------------------
def test_cli_report_plot_compare(digits_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", str(digits_run), "--tsne-samples", "40"]) == 0
    assert capsys.readouterr().out.strip() == str(digits_run / "report.html")

    out = tmp_path / "c.png"
    assert main(["plot", "confusion", str(digits_run), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.read_bytes().startswith(PNG)

    assert main(["compare", str(digits_run), str(digits_run), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    assert "test acc" in printed and "hidden.0" in printed and "l2" in printed
    assert printed.strip().endswith(str(tmp_path / "cmp" / "compare.html"))
    assert (tmp_path / "cmp" / "figures" / "compare-curves.png").is_file()


def test_cli_report_open_uses_the_browser(digits_run: Path, monkeypatch, capsys) -> None:
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    monkeypatch.setattr(
        "mlplab.report.run_report.report", lambda run, **kw: Path(run) / "report.html"
    )
    assert main(["report", str(digits_run), "--open"]) == 0
    assert opened == [(digits_run / "report.html").resolve().as_uri()]


@pytest.mark.parametrize("argv", [
    ["report", "{missing}"], ["plot", "curves", "{missing}"], ["compare", "{missing}"],
    ["report", "{not_a_run}"],
])  # fmt: skip
def test_cli_unreadable_run_is_one_line_exit_2(argv, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    paths = {"missing": str(tmp_path / "nope"), "not_a_run": str(tmp_path / "empty")}
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mlplab: error: ") and "Traceback" not in err
    assert "does not exist" in err or "is not a run directory" in err


def test_cli_unknown_figure_lists_choices(digits_run: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", "confuson", str(digits_run)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'confuson'" in capsys.readouterr().err


def test_in_memory_run_needs_its_dataset(tmp_path: Path) -> None:
    data = make_images(classes=3)
    run_dir = train(quick(tmp_path), dataset=data).run_dir
    with pytest.raises(RunError, match="passed in memory and cannot be reloaded; pass the dataset"):
        report(run_dir, **FAST)
    assert report(run_dir, dataset=data, **FAST).is_file()


# ----- any image shape, any number of classes -------------------------------------------------------
@pytest.mark.parametrize(
    ("channels", "height", "width", "classes", "hidden"),
    [(1, 8, 8, 2, [16]), (3, 6, 10, 3, [16, 8]), (3, 5, 9, 100, [32]), (1, 7, 4, 12, [])],
    ids=["gray-square-2-classes", "rgb-6x10-3-classes", "rgb-5x9-100-classes", "logistic-7x4"],
)
def test_report_for_any_shape(channels, height, width, classes, hidden, tmp_path: Path) -> None:
    n_train, n_test = max(300, 6 * classes), max(90, 3 * classes)
    data = make_images(classes, channels, height, width, n_train, n_test)
    run_dir = train(quick(tmp_path, **{"model.hidden": hidden}), dataset=data).run_dir
    path = report(run_dir, dataset=data, **FAST)
    analysis = json.loads((run_dir / "analysis.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert analysis["test_accuracy"] == summary["test_accuracy"]
    assert np.array(analysis["confusion_matrix"]).shape == (classes, classes)
    html = path.read_text()
    assert html.count("data:image/png;base64,") == len(DRAWN)
    a = RunAnalysis(run_dir, dataset=data, **FAST)
    assert a.first_layer.weights.shape[1:] == (channels, height, width)
    assert a.pca["hidden"].empty == (not hidden)
    if not hidden:
        assert "logistic regression" in a.pca["hidden"].note
        assert a.first_layer.names[0] == "class k0"  # its first layer is the output layer


# ----- in a real browser ----------------------------------------------------------------------------
def test_report_in_headless_chromium(digits_run: Path, digits_report: Path, tmp_path: Path) -> None:
    from browser import Browser, find_chromium

    executable = find_chromium()
    if executable is None:
        pytest.skip(reason="Chromium not available: no chromium or google-chrome on PATH")
    with Browser(executable, width=1366, height=768) as browser:
        browser.open(digits_report.resolve().as_uri())
        images = browser.evaluate(
            "Array.from(document.images).map(i => ({ok: i.complete, w: i.naturalWidth, "
            "shown: i.getBoundingClientRect().width}))"
        )
        assert len(images) == len(DRAWN)
        assert all(i["ok"] and i["w"] > 0 for i in images), images
        assert all(i["shown"] <= 1366 for i in images)  # fits a laptop screen: no sideways scroll
        wide = browser.evaluate("document.documentElement.scrollWidth")
        assert wide <= 1366
        assert browser.errors() == []
        shot = browser.screenshot(tmp_path / "report.png")
        full = browser.screenshot(tmp_path / "report-full.png", full_page=True)
    assert shot.read_bytes().startswith(PNG) and full.stat().st_size > shot.stat().st_size
    assert re.search(r"<title>Report: .*digits</title>", digits_report.read_text())


def test_docs_notebook_example_runs(tmp_path: Path, monkeypatch) -> None:
    """The Python example of docs/report.md, as written (on the bundled digits)."""
    docs = Path(__file__).parents[2] / "docs" / "report.md"
    blocks = re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    code = blocks[0].replace('"train.epochs": 5', '"train.epochs": 2, "train.threads": 1')
    code = code.replace("steps=100", "steps=10").replace(
        "RunAnalysis(run_dir)",
        "RunAnalysis(run_dir, tsne_samples=60, iterations=2, candidates=50, ascent_steps=10)",
    )
    monkeypatch.chdir(tmp_path)
    printed = []
    exec(compile(code, str(docs), "exec"), {"print": printed.append})
    assert printed[-1].name == "report.html" and printed[-1].is_file()
    assert printed[0].shape == (10, 10)


# ----- captions: what a reader will wonder about ------------------------------------------
def caption_of(overrides: dict[str, object]) -> str:
    """The curves' caption for a run trained with ``overrides`` (its config is all it reads)."""
    from types import SimpleNamespace

    from mlplab.report.run_report import _caption

    config = Config().override(overrides)
    return _caption(SimpleNamespace(run=SimpleNamespace(config=lambda: config)), "curves")


def test_the_curves_caption_says_why_validation_can_beat_training() -> None:
    plain = caption_of({"model.dropout": 0.0})
    assert (
        "The training figures are the mean over the epoch's batches, each scored as it was "
        "trained on (before its update, while the weights still change)" in plain
    )
    assert "validation is scored once, after the epoch, in eval mode on the images as they are" in plain  # fmt: skip
    for absent in ("dropout", "augmented", "label smoothing", "weight average"):
        assert absent not in plain, absent
    busy = caption_of({"model.dropout": 0.2, "augment.rotation": 10.0, "augment.clean_epochs": 2,
                       "train.label_smoothing": 0.1, "train.ema": 0.999})  # fmt: skip
    assert "In this run: dropout 0.2 drops units while training only;" in busy
    assert "training images are augmented (rotation, but not in the last 2 epochs);" in busy
    assert "the training loss includes label smoothing 0.1 (validation's does not);" in busy
    assert "validation scores the weight average (train.ema 0.999)." in busy
    assert "So validation above training is expected here, not a bug." in busy


def test_the_mistakes_captions_say_the_probabilities_are_calibrated() -> None:
    assert "calibrated by the run's temperature (model.json)" in FIGURES["mistakes"].caption
    assert "the model's (calibrated) probability" in FIGURES["samples"].caption
