"""Every command on every kind of run: {classifier, regression, linear classifier, linear
regression} x {train, evaluate (text and --json), report, export (TorchScript, ONNX), predict},
each through ``mlplab.cli.main`` as a user types it.

One run per kind, made once for the module (tiny data, one or two epochs). Each cell checks a
concrete fact of what the command printed or wrote; a combination refused on purpose (report
and predict on a regression) must say why in one line and exit 2. A regression run's
``evaluate`` once crashed with "internal error" and no test saw it: these cells are why.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from mlplab.cli import main

# loading the TorchScript file back is the check, whatever torch thinks of the format's future
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

CLASSES = ("0", "1", "2")  # the synthetic images' classes (npz labels 0..2)


@dataclass(frozen=True)
class Kind:
    """One kind of run: how it is trained, and what it is."""

    argv: tuple[str, ...]  # train flags; {data} is the folder of the synthetic files
    regression: bool
    linear: bool
    dataset: str  # the name evaluate prints
    parameters: int  # the model's parameter count


# A table: one kind of run a row reads better than the formatter's one argument a line.
KINDS = {
    "classifier": Kind(("--dataset", "{data}/shapes.npz", "--hidden", "16", "--epochs", "1"),
                       False, False, "shapes.npz", 64 * 16 + 16 + 16 * 3 + 3),
    "regression": Kind(("--dataset", "{data}/houses.csv", "--target", "price", "--hidden", "8",
                        "--epochs", "1"), True, False, "houses.csv", 3 * 8 + 8 + 8 + 1),
    "logistic": Kind(("--preset", "logistic", "--dataset", "{data}/shapes.npz", "--epochs", "1"),
                     False, True, "shapes.npz", 64 * 3 + 3),
    "linreg": Kind(("--preset", "linreg", "--epochs", "2"), True, True, "make-regression", 2),
}  # fmt: skip


@dataclass(frozen=True)
class Made:
    """A trained run of one kind, and what ``train`` printed."""

    kind: Kind
    run: Path
    code: int
    out: str

    def summary(self) -> dict:
        return json.loads((self.run / "summary.json").read_text())


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """``mlplab ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def write_data(folder: Path) -> None:
    """shapes.npz: 8x8 gray images whose class lights up its own band of rows (240 train,
    60 test); two of its test images as PNGs; houses.csv: a price linear in two of three
    features."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 3, n)
        images = rng.integers(0, 60, (n, 8, 8))
        for c in range(3):
            images[labels == c, 2 * c : 2 * c + 2, :] += 150
        return images.clip(0, 255).astype(np.uint8), labels

    (x_train, y_train), (x_test, y_test) = split(240), split(60)
    np.savez(folder / "shapes.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for i in range(2):
        Image.fromarray(x_test[i]).save(folder / f"digit{i}.png")
    x = rng.normal(size=(200, 3))
    price = 2 * x[:, 0] - x[:, 1] + 0.5 + rng.normal(scale=0.1, size=200)
    rows = [",".join(f"{v:.4f}" for v in (*r, p)) for r, p in zip(x, price, strict=True)]
    (folder / "houses.csv").write_text("size,age,noise,price\n" + "\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Made]:
    """One run of each kind, trained through the CLI once for the whole matrix."""
    root = tmp_path_factory.mktemp("matrix")
    write_data(root)
    runs = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLPLAB_PROGRESS", "0")
        env.setenv("MLPLAB_CACHE_DIR", str(root / "cache"))
        env.chdir(root)
        for name, kind in KINDS.items():
            argv = [a.replace("{data}", str(root)) for a in kind.argv]
            code, out, _ = run_main(["train", *argv, "--threads", "1", "--runs-dir",
                                     str(root / "runs"), "--name", name, "-q"])  # fmt: skip
            runs[name] = Made(kind, Path(out.strip()), code, out)
    return runs


@pytest.fixture
def images(made: dict[str, Made]) -> list[str]:
    folder = made["classifier"].run.parents[1]
    return [str(folder / "digit0.png"), str(folder / "digit1.png")]


NAMES = list(KINDS)


def input_shape(run: Path) -> list[int]:
    return json.loads((run / "dataset.json").read_text())["image_shape"]


# ----- train ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_train(made: dict[str, Made], name: str) -> None:
    m = made[name]
    assert m.code == 0 and m.out.strip() == str(m.run) and m.run.is_dir()  # -q: the run only
    summary = m.summary()
    assert summary["parameters"] == m.kind.parameters
    model = json.loads((m.run / "model.json").read_text())["model"]
    assert (model["hidden"] == []) == m.kind.linear
    if m.kind.regression:
        assert summary["task"] == "regression" and summary["test_accuracy"] is None
        assert summary["test_r2"] is not None
    else:
        assert summary["task"] == "classification" and 0 <= summary["test_accuracy"] <= 1


# ----- evaluate --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_evaluate_text(made: dict[str, Made], name: str) -> None:
    m = made[name]
    code, out, err = run_main(["evaluate", str(m.run)])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    samples = m.summary()["samples"]["test"]
    assert lines[0] == f"{m.run}: {m.kind.dataset} test, {samples} samples"
    if m.kind.regression:
        assert len(lines) == 2 and " R² " in lines[1] and "RMSE" in lines[1]
    else:
        assert "accuracy" in lines[1] and [line.split()[0] for line in lines[5:]] == list(CLASSES)
        assert lines[2].startswith("  calibrated   ECE ") and " temperature " in lines[2]
        assert lines[3].startswith("  rejected ") and " accuracy on the accepted " in lines[3]


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_json(made: dict[str, Made], name: str) -> None:
    m = made[name]
    code, out, err = run_main(["evaluate", str(m.run), "--json"])
    assert (code, err) == (0, "")
    metrics, summary = json.loads(out), m.summary()
    assert metrics["task"] == summary["task"] and metrics["split"] == "test"
    if m.kind.regression:
        assert metrics["accuracy"] is None and metrics["classes"] == []
        assert metrics["r2"] == pytest.approx(summary["test_r2"], rel=1e-5)
    else:
        assert metrics["accuracy"] == pytest.approx(summary["test_accuracy"])
        assert metrics["classes"] == list(CLASSES) and len(metrics["per_class_accuracy"]) == 3
        assert metrics["ece"] == pytest.approx(summary["test_ece"], abs=1e-6)


# ----- report ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_report(made: dict[str, Made], name: str) -> None:
    m = made[name]
    code, out, err = run_main(["report", str(m.run), "--tsne-samples", "30"])
    if m.kind.regression:  # refused on purpose: a regression has no classes to analyse
        line = " and line.png draws the fitted line" if name == "linreg" else ""
        assert (code, out) == (2, "")
        assert err == (
            f"mlplab: error: run {m.run} is a regression: the report's analyses (confusion, "
            f"mistakes, class prototypes) are for classifiers; its summary.json has R², RMSE and "
            f"MAE{line}\n"
        )
        assert not (m.run / "report.html").exists()
        return
    assert (code, err, out) == (0, "", f"{m.run / 'report.html'}\n")
    analysis = json.loads((m.run / "analysis.json").read_text())
    assert analysis["test_accuracy"] == m.summary()["test_accuracy"]
    html = (m.run / "report.html").read_text()
    assert ("This model is a logistic regression" in html) == m.kind.linear


# ----- export ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_export_torchscript(made: dict[str, Made], name: str, tmp_path: Path) -> None:
    m = made[name]
    out_file = tmp_path / "model.pt"
    code, out, err = run_main(["export", str(m.run), "--out", str(out_file)])
    assert (code, err) == (0, "")
    path, parity, rejection, *score_parity = out.splitlines()
    assert path == str(out_file) and parity.startswith("parity: max |torchscript - eager| = ")
    samples = m.summary()["samples"]["test"]
    real = min(samples, 72) - 1  # the run's own test images (even fewer than 72) are checked
    fakes = 0 if m.kind.regression else 66  # the rejection's: synthetic non-digits too
    assert (
        f"over {real + 1 + 72 + fakes} images" in parity
        and f"{m.kind.dataset} test images 0-{real}" in parity
    )
    model = torch.jit.load(str(out_file))
    outputs = model(torch.zeros((2, *input_shape(m.run))))
    if m.kind.regression:  # no rejection: one output, as before, and one line says why
        assert rejection.startswith(f"rejection off: run {m.run} is a regression")
        assert score_parity == [] and outputs.shape == (2, 1)
    else:  # the class outputs first, then ood_score and reason_code
        assert rejection.startswith("with rejection: outputs ood_score, reason_code")
        assert score_parity[0].startswith("parity: max |ood_score - eager| = ")
        assert [tuple(o.shape) for o in outputs] == [(2, len(CLASSES)), (2,), (2,)]


@pytest.mark.parametrize("name", NAMES)
def test_export_onnx(made: dict[str, Made], name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="ONNX export needs mlplab[export]")
    m = made[name]
    out_file = tmp_path / "model.onnx"
    code, out, err = run_main(["export", str(m.run), "--format", "onnx", "--out", str(out_file)])
    assert (code, err) == (0, "")
    assert out.splitlines()[1].startswith("parity: max |onnx - eager| = ")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out_file), providers=["CPUExecutionProvider"])
    pixels = np.zeros((2, *input_shape(m.run)), dtype=np.float32)
    (outputs, *_) = session.run(None, {session.get_inputs()[0].name: pixels})
    assert outputs.shape == (2, 1 if m.kind.regression else len(CLASSES))


# ----- predict ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_predict(made: dict[str, Made], name: str, images: list[str]) -> None:
    m = made[name]
    code, out, err = run_main(["predict", str(m.run), *images])
    if m.kind.regression:  # refused on purpose: predict takes images for classifiers
        assert (code, out) == (2, "")
        assert err == (
            f"mlplab: error: run {m.run} is a regression on tabular data: predict and serve take "
            "images for classifiers; load its model with Run.load_model and feed it feature rows\n"
        )
        return
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == images
    assert all(line.split()[1] in CLASSES and "top 3:" in line for line in lines)
    code, out, _ = run_main(["predict", str(m.run), *images, "--json"])
    results = json.loads(out)
    assert code == 0 and [r["class"] in CLASSES for r in results] == [True, True]
    assert all(
        sum(t["probability"] for t in r["top"]) == pytest.approx(1, abs=1e-5) for r in results
    )


# ----- card ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_card(made: dict[str, Made], name: str) -> None:
    m = made[name]
    card = m.run / "README.md"
    assert card.is_file()  # training wrote it
    code, out, err = run_main(["card", str(m.run)])
    assert (code, out, err) == (0, f"{card}\n", "")
    text = card.read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    tabular = name in ("regression", "linreg")  # feature rows; the classifiers take 8x8 images
    kind = "regression" if m.kind.regression else "classification"
    assert meta["pipeline_tag"] == f"{'tabular' if tabular else 'image'}-{kind}"
    (result,) = meta["model-index"][0]["results"]
    figure = "test_r2" if m.kind.regression else "test_accuracy"
    assert result["metrics"][0]["value"] == m.summary()[figure]
    assert ("## Calibration" in text) is (not m.kind.regression)
    assert ("mlplab predict" in text) is (not m.kind.regression)  # predict takes images
    assert ("A logistic regression" in text) is (name == "logistic")
