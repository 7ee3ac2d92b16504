"""Explanations of image files (inference.explain and the CLI): mlplab.explain's shape for
each method, head and channel count, predict's preprocessing, the written folder (PNGs,
explanations.json), what it refuses to replace, and `explain` / `predict --explain`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from shipping import tiny_run

import mlplab
from mlplab.cli import main
from mlplab.errors import ConfigError, WriteError
from mlplab.inference import Predictor
from mlplab.inference.explain import SHOWN, Explainer
from mlplab.trust.explain import METHODS


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "shipping"


def images(n: int = 3, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """Images like tiny_run's: noise of 0-59 and one bright band of rows (class i % 4)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (n, channels, 8, 8), generator=g)
    for i in range(n):
        x[i, :, 2 * (i % 4) : 2 * (i % 4) + 2, :] += 150
    return x.to(torch.uint8)


def save(x: torch.Tensor, path: Path) -> Path:
    a = x.numpy()
    Image.fromarray(a[0] if len(a) == 1 else a.transpose(1, 2, 0)).save(path)
    return path


# ----- mlplab.explain -------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("head", "channels"), [("logits", 1), ("log_softmax", 1), ("softmax", 1), ("logits", 3)]
)
def test_explain_returns_maps_shaped_like_the_input(
    root: Path, method: str, head: str, channels: int
) -> None:
    run = tiny_run(root, head, channels=channels)
    maps = mlplab.explain(run, list(images(3, channels)), method=method, style="none")
    assert maps.shape == (3, channels, 8, 8) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all()
    # the softmax head's outputs are probabilities: a confident one is 1.0 in float32 and the
    # others underflow, so the gradients and occlusion differences at the input vanish;
    # integrated gradients read the path from the background, where they do not
    if head != "softmax" or method == "integrated-gradients":
        assert maps.abs().sum() > 0


def test_explain_uses_predicts_preprocessing(root: Path, tmp_path: Path) -> None:
    """A file and the model input predict makes of it give the same map."""
    run = tiny_run(root)
    big = Image.fromarray(images(1)[0, 0].numpy()).resize((64, 64), Image.NEAREST)
    big.save(tmp_path / "big.png")
    predictor = Predictor(run)
    model_input = predictor.prepare(tmp_path / "big.png")  # the resize and restyle of predict
    from_file = mlplab.explain(run, [tmp_path / "big.png"])
    from_input = mlplab.explain(run, [model_input], style="none")
    torch.testing.assert_close(from_file, from_input)


def test_explain_targets_by_name_and_index(root: Path) -> None:
    run = tiny_run(root)
    x = list(images(2))
    by_name = mlplab.explain(run, x, target="c3", style="none")
    by_index = mlplab.explain(run, x, target=3, style="none")
    torch.testing.assert_close(by_name, by_index)
    assert not torch.equal(by_name, mlplab.explain(run, x, target="c0", style="none"))
    with pytest.raises(ConfigError) as info:
        mlplab.explain(run, x, target="c9")
    assert str(info.value) == (
        "the target (--target, ?target=) must be a class of this run (c0, c1, c2, c3) or its index 0 to 3; got 'c9'"
    )


# ----- the written folder ---------------------------------------------------------------------
def test_write_makes_three_pngs_per_image_and_the_record(root: Path, tmp_path: Path) -> None:
    run = tiny_run(root)
    x = images(2)
    files = [save(x[0], tmp_path / "a.png"), save(x[1], tmp_path / "b.png")]
    record = Explainer(run).write([*files, x[0]], tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{s}.{k}.png" for s in ("a", "b", "image-2") for k in ("input", "attribution", "overlay")]
        + ["explanations.json"]
    )
    assert json.loads((out / "explanations.json").read_text()) == record
    assert record["mlplab"] == "explanations" and record["method"] == "integrated-gradients"
    assert record["baseline"]["from"] == "the run's training images' border (median)"
    assert record["completeness"]["max_relative_error"] < 0.05
    first = record["images"][0]
    assert first["file"] == str(files[0]) and first["overlay"] == "a.overlay.png"
    assert first["attribution_sum"] == pytest.approx(
        first["log_odds"] - first["baseline_log_odds"] + first["completeness_error"],
        abs=1e-4,
    )
    # the input PNG holds the exact model input; the pictures are enlarged to >= SHOWN pixels
    np.testing.assert_array_equal(np.asarray(Image.open(out / "a.input.png")), x[0, 0].numpy())
    overlay = Image.open(out / "a.overlay.png")
    assert overlay.mode == "RGB" and min(overlay.size) >= SHOWN and overlay.size[0] % 8 == 0


def test_write_replaces_only_its_own_earlier_output(root: Path, tmp_path: Path) -> None:
    run, out = tiny_run(root), tmp_path / "out"
    source = save(images(1)[0], tmp_path / "a.png")
    explainer = Explainer(run)
    explainer.write([source], out)
    again = explainer.write([source], out, "saliency")  # an earlier explanations.json: replaced
    assert again["method"] == "saliency" and "completeness" not in again
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a.overlay.png").write_bytes(b"mine")
    with pytest.raises(WriteError, match=r"refusing to replace .*a\.overlay\.png: it already"):
        explainer.write([source], foreign)
    assert (foreign / "a.overlay.png").read_bytes() == b"mine"
    assert not (foreign / "a.input.png").exists()  # refused before any work
    with pytest.raises(WriteError, match="run directory"):
        explainer.write([source], Path(run) / "why")


def test_same_names_get_their_own_files(root: Path, tmp_path: Path) -> None:
    x = images(2)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    files = [save(x[0], tmp_path / "one" / "d.png"), save(x[1], tmp_path / "two" / "d.png")]
    record = Explainer(tiny_run(root)).write(files, tmp_path / "out")
    assert [e["input"] for e in record["images"]] == ["d.input.png", "d-2.input.png"]


# ----- the CLI --------------------------------------------------------------------------------
def test_cli_explain_and_predict_explain(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tiny_run(root)
    source = save(images(1)[0], tmp_path / "a.png")
    argv = ["explain", str(run), str(source), "--out", str(tmp_path / "why")]
    assert main([*argv, "--method", "occlusion", "--window", "2", "--stride", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"occlusion: 1 image explained into {tmp_path / 'why'}"
    assert out[0].startswith(str(source)) and out[0].endswith(
        str(tmp_path / "why" / "a.overlay.png")
    )
    assert main([*argv, "--target", "c2"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert " c2 " in line and "(predicted " in line
    assert main([*argv, "--method", "occlusion", "--window", "9"]) == 2
    assert capsys.readouterr().err == (
        "mlplab: error: window must fit the model's input (8x8 pixels): at most 8; got 9\n"
    )
    assert main(["predict", str(run), str(source), "--explain", str(tmp_path / "p")]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"integrated-gradients: 1 image explained into {tmp_path / 'p'}; ")
    assert (tmp_path / "p" / "a.overlay.png").is_file()
    assert main(["explain", str(run), str(source)]) == 0  # the default: under the output root
    assert (tmp_path / "runs" / "explain" / "explanations.json").is_file()


def test_one_2d_array_is_one_image(root: Path) -> None:
    """It was read as a sequence of rows: "got shape (8,)" for a valid (H, W) image."""
    run = tiny_run(root)
    image = images(1, 1)[0][0].numpy()  # (8, 8) uint8
    assert image.shape == (8, 8)
    one = mlplab.explain(run, image, method="occlusion", style="none")
    listed = mlplab.explain(run, [image], method="occlusion", style="none")
    assert one.shape == (1, 1, 8, 8) and torch.equal(one, listed)
