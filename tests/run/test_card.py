"""The model card, README.md: written when training ends and by ``mlplab card``, from the
run's own files; its front matter parses and its figures are summary.json's; a README.md
the user wrote is never replaced unless named."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import make_dataset

from mlplab import Config, train
from mlplab.cli import main
from mlplab.errors import ConfigError, WriteError
from mlplab.run.card import CARD, MARKER, card_text, is_card, refresh_card, write_card
from mlplab.run.directory import Run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small classifier run (2 epochs, 4 classes, a validation split), trained once."""
    root = tmp_path_factory.mktemp("card")
    config = Config().override(
        {
            "model.hidden": [16],
            "train.epochs": 2,
            "train.batch_size": 32,
            "train.lr": 0.01,
            "train.threads": 1,
            "run.dir": str(root / "runs"),
            "run.name": "card",
        }
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLPLAB_PROGRESS", "0")
        return train(config, dataset=make_dataset(n_train=256, n_test=64)).run_dir


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run for one test to change."""
    return Path(shutil.copytree(trained, tmp_path / trained.name))


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    head, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(head)


def table_after(text: str, title: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after the line starting with ``title``."""
    lines = text[text.index(title) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start + 2 :]:  # past the header and the --- line
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_training_writes_the_card(trained: Path) -> None:
    text = (trained / CARD).read_text()
    summary = json.loads((trained / "summary.json").read_text())
    meta = front_matter(text)
    assert meta["library_name"] == "mlplab" and meta["license"] == "unknown"
    assert meta["datasets"] == ["synthetic"] and "image-classification" in meta["tags"]
    (result,) = meta["model-index"][0]["results"]
    assert meta["model-index"][0]["name"] == trained.name
    assert result["dataset"]["split"] == "test"
    values = {m["name"]: m["value"] for m in result["metrics"]}
    # every figure is summary.json's, exactly
    assert values["test accuracy"] == summary["test_accuracy"]
    assert values["test loss"] == summary["test_loss"]
    assert values["test ECE (calibrated)"] == summary["test_ece"]
    assert values["test ECE (uncalibrated)"] == summary["test_ece_uncalibrated"]
    assert values["test rejected fraction"] == summary["test_rejected_fraction"]
    assert values["test accuracy on the accepted"] == summary["test_accepted_accuracy"]
    assert text.splitlines()[text.splitlines().index("---", 1) + 2].startswith(MARKER)
    rows = table_after(text, "Per class")
    assert [r[0] for r in rows] == ["c0", "c1", "c2", "c3"]  # one row per class, in order
    per_class = summary["test_per_class_accuracy"]
    assert [r[1] for r in rows] == [f"{per_class[c]:.2%}" for c in ("c0", "c1", "c2", "c3")]
    temperature = json.loads((trained / "model.json").read_text())["temperature"]
    calibration = dict(table_after(text, "## Calibration"))
    assert calibration["temperature T (fitted on the validation split)"] == f"{temperature:.4g}"
    assert calibration["ECE before (T = 1)"] == f"{summary['test_ece_uncalibrated']:.2%}"
    assert calibration["ECE after"] == f"{summary['test_ece']:.2%}"
    rejection = dict(table_after(text, "## Rejection"))
    assert rejection["test split rejected"] == f"{summary['test_rejected_fraction']:.2%}"
    assert f"mlplab predict {trained} image.png" in text  # this run's own path
    assert f"mlplab serve {trained}" in text and "@misc{mlplab-" in text
    assert is_card(trained / CARD)


def test_mlplab_card_rewrites_it(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run / CARD).write_text((run / CARD).read_text().replace("## Model", "## Edited"))
    assert main(["card", str(run)]) == 0
    assert capsys.readouterr().out == f"{run / CARD}\n"
    assert "## Model" in (run / CARD).read_text() and "## Edited" not in (run / CARD).read_text()
    assert (run / CARD).read_text() == card_text(run)  # the same text, whoever writes it
    assert main(["card", str(run), "--out", "-", "--license", "mit"]) == 0
    assert front_matter(capsys.readouterr().out)["license"] == "mit"
    out = run.parent / "card.md"
    assert main(["card", str(run), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"{out}\n" and is_card(out)
    assert not list(run.glob(".*")), "no temporary file is left behind"


def test_a_readme_the_user_wrote_is_left_alone(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run / CARD).write_text("# my notes\n")
    note = refresh_card(Run(run))  # what training does when it ends (a resume, say)
    assert note == (
        f"model card not written: {run / CARD} is not one mlplab wrote, so it is left alone; "
        f"write the card elsewhere with `mlplab card {run} --out FILE`"
    )
    assert main(["card", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"mlplab: error: refusing to replace {run / CARD}: it was not written by mlplab (no "
        f"'{MARKER}' line), so it is yours; write the card elsewhere with --out FILE, or "
        f"replace it with --out {run / CARD} --force\n"
    )
    assert (run / CARD).read_text() == "# my notes\n"
    other = run.parent / "notes.md"
    other.write_text("mine\n")
    with pytest.raises(WriteError, match="it already exists .* and is not an mlplab model card"):
        write_card(run, other)
    assert other.read_text() == "mine\n"
    with pytest.raises(WriteError, match="config.yaml is one of the own files of the run"):
        write_card(run, run / "config.yaml", force=True)
    assert write_card(run, run / CARD, force=True) == run / CARD  # named, and forced
    assert is_card(run / CARD)


def test_an_older_run_without_calibration_or_rejection(run: Path) -> None:
    model = json.loads((run / "model.json").read_text())
    del model["temperature"], model["rejection"]
    (run / "model.json").write_text(json.dumps(model))
    summary = json.loads((run / "summary.json").read_text())
    for key in [k for k in summary if k.startswith(("test_ece", "test_nll", "test_brier"))]:
        del summary[key]
    del summary["test_rejected_fraction"], summary["test_accepted_accuracy"]
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "dataset.json").unlink()  # older still: no record of its data
    text = card_text(run)
    names = [m["name"] for m in front_matter(text)["model-index"][0]["results"][0]["metrics"]]
    assert names == ["test accuracy", "test loss"]
    assert "## Calibration\n\nNone: this run has no temperature" in text
    assert "## Rejection of unfamiliar inputs\n\nNone: this run has no rejection" in text
    assert "unless the rejection flags it" not in text
    assert len(table_after(text, "Per class")) == 4


def test_the_report_s_per_class_figures_join_the_table(run: Path) -> None:
    per_class = [
        {"class": f"c{i}", "precision": 0.5 + i / 10, "recall": 1.0, "f1": 0.6, "support": 16}
        for i in range(4)
    ]
    analysis = {"classes": ["c0", "c1", "c2", "c3"], "per_class": per_class, "macro_f1": 0.6}
    (run / "analysis.json").write_text(json.dumps(analysis))
    rows = table_after(card_text(run), "Per class")
    assert [(r[0], r[2], r[4]) for r in rows] == [
        (f"c{i}", f"{0.5 + i / 10:.4g}", "16") for i in range(4)
    ]
    (run / "analysis.json").write_text(json.dumps({**analysis, "classes": ["a", "b"]}))
    assert len(table_after(card_text(run), "Per class")[0]) == 2  # another run's: not used


def test_a_regression_card(tmp_path: Path) -> None:
    config = Config.preset("linreg").override(
        {"train.epochs": 2, "train.threads": 1, "run.dir": str(tmp_path / "runs")}
    )
    run_dir = train(config).run_dir
    text = (run_dir / CARD).read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    meta = front_matter(text)
    assert "tabular-regression" in meta["tags"]
    values = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values == {
        "r_squared": summary["test_r2"],
        "rmse": summary["test_rmse"],
        "mae": summary["test_mae"],
        "loss": summary["test_loss"],
    }
    assert "## Calibration" not in text and "## Rejection" not in text
    assert "mlplab predict" not in text and "mlplab serve" not in text  # images, classifiers only
    assert re.search(r"The fitted line, in the data's own units: y = -?[\d.]+ x [+−] ", text)


def test_a_license_is_an_id(run: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"license \(--license\) 'a b' is not a license id; use one such"
    ):
        card_text(run, license="a b")
    assert front_matter(card_text(run, license="cc-by-4.0"))["license"] == "cc-by-4.0"


def test_names_from_the_data_show_as_written(run: Path) -> None:
    """Class names are data: Markdown in them is shown, not rendered (``**x**`` was bold,
    ``&amp;`` an ampersand, a backtick became a quote); a path in a code span keeps its
    backticks by a longer fence."""
    model = json.loads((run / "model.json").read_text())
    model["classes"] = ["**bold**", "&amp;x", "a|b", "`tick`"]
    (run / "model.json").write_text(json.dumps(model))
    dataset = json.loads((run / "dataset.json").read_text())
    dataset["reload"] = {"dataset": "data/odd`name|x.csv"}
    (run / "dataset.json").write_text(json.dumps(dataset))
    text = card_text(run)
    assert r"4 classes: \*\*bold\*\*, \&amp;x, a\|b, \`tick\`" in text
    assert [row[0] for row in table_after(text, "Per class")] == [
        r"\*\*bold\*\*",
        r"\&amp;x",
        r"a\|b",
        r"\`tick\`",
    ]
    assert "(`dataset.json`: ``data/odd`name|x.csv``)." in text
