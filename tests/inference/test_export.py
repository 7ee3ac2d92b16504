"""Export: the loaded-back file matches the eager model, takes any batch, is written atomically."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from shipping import mnist_run, mnist_test_split, tiny_run

import mlplab.inference.export
from mlplab import ConfigError, Run
from mlplab.cli import main
from mlplab.extras import MissingExtraError
from mlplab.inference.export import ExportError, export
from mlplab.model.heads import with_temperature
from mlplab.model.raw_image import RawImageModel

HEADS = ("logits", "log_softmax", "softmax")
# Loading a TorchScript file the way a user would warns that torch.jit is deprecated upstream.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "shipping"


def load_exported(path: Path, format: str):
    """A callable pixels -> outputs for an exported file, loaded the way a user would."""
    if format == "torchscript":
        module = torch.jit.load(str(path))
        return lambda x: module(x).detach()
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"pixels": x.numpy()})[0])


def eager(run: Path, pixels: torch.Tensor) -> torch.Tensor:
    """The trained model on uint8 pixels, normalized exactly as in training, its outputs
    calibrated by the run's temperature in the head's own rule."""
    model, normalization, _ = Run.open(run).load_model()
    scale, offset = normalization.affine()
    with torch.no_grad():
        outputs = model(pixels.float() * scale + offset)
    return with_temperature(model.head, outputs, Run.open(run).temperature())


@pytest.mark.parametrize("format", ["torchscript", "onnx"])
@pytest.mark.parametrize("head", HEADS)
def test_parity_on_each_head(root: Path, head: str, format: str) -> None:
    run = tiny_run(root, head)
    result = export(run, format)
    assert (
        result.path == run / {"torchscript": "model.torchscript.pt", "onnx": "model.onnx"}[format]
    )
    assert result.max_abs_diff < 1e-5 and result.head == head
    assert result.batch_sizes == (1, 7, 64) and result.input_shape == (1, 8, 8)

    # Independently of export's own check: load the file and compare at batch 1, 7 and 33.
    run_file = load_exported(result.path, format)
    g = torch.Generator().manual_seed(1)
    for n in (1, 7, 33):
        pixels = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
        got = run_file(pixels.float() / 255)
        want = eager(run, pixels)
        assert got.shape == (n, 4)
        # export's own tolerance: a small temperature scales the outputs up (here T = 0.05)
        assert (got - want).abs().max() < 1e-5 * max(1.0, float(want.abs().max()))
    if head == "softmax":
        assert torch.allclose(got.sum(1), torch.ones(n), atol=1e-5)
    if head == "log_softmax":
        assert torch.allclose(got.exp().sum(1), torch.ones(n), atol=1e-5)


def test_color_model(root: Path) -> None:
    run = tiny_run(root, channels=3)
    result = export(run, "onnx")
    assert result.input_shape == (3, 8, 8) and result.max_abs_diff < 1e-5
    pixels = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    got = load_exported(result.path, "onnx")(pixels.float() / 255)
    assert (got - eager(run, pixels)).abs().max() < 1e-5


@pytest.mark.parametrize("format", ["torchscript", "onnx"])
def test_a_cropped_model_exports_and_takes_whole_images(root: Path, format: str) -> None:
    run = tiny_run(root, crop=2)
    result = export(run, format)
    assert result.input_shape == (1, 8, 8) and result.max_abs_diff < 1e-5
    pixels = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    got = load_exported(result.path, format)(pixels.float() / 255)
    assert (got - eager(run, pixels)).abs().max() < 1e-5
    changed = pixels.clone()
    changed[:, :, 0, :] = 255 - changed[:, :, 0, :]  # the cropped border does not count
    assert torch.equal(load_exported(result.path, format)(changed.float() / 255), got)


@pytest.mark.parametrize("format", ["torchscript", "onnx"])
@pytest.mark.parametrize("center", [False, True])
def test_a_deskewing_model_exports_with_its_alignment(
    root: Path, format: str, center: bool
) -> None:
    run = tiny_run(root, size=12, deskew=True, center=center)
    result = export(run, format)  # checks several batch sizes: the trace froze none
    assert result.max_abs_diff < 1e-4
    pixels = torch.zeros(3, 1, 12, 12, dtype=torch.uint8)
    pixels[:, :, 2:8, 3:5] = 200
    pixels[1] = torch.roll(pixels[0], shifts=(2, 3), dims=(1, 2))  # the same stroke, moved
    pixels[2, :, 2:8, 3:5] = 0
    for y in range(6):  # the stroke leaning right: upright again
        pixels[2, :, 2 + y, 3 + y // 2 : 5 + y // 2] = 200
    got = load_exported(result.path, format)(pixels.float() / 255)
    assert (got - eager(run, pixels)).abs().max() < 1e-4
    moved = (got[1] - got[0]).abs().max()
    assert moved < 1e-4 if center else moved > 1e-3  # centred: the shift is gone


@pytest.mark.parametrize("format", ["torchscript", "onnx"])
def test_a_tta_model_exports_its_average_over_views(root: Path, format: str) -> None:
    run = tiny_run(root, size=12, tta=("shift", "rotate", "flip"))
    result = export(run, format)  # checks several batch sizes: the views' blocks follow them
    assert result.max_abs_diff < 1e-4
    g = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (5, 1, 12, 12), generator=g).to(torch.uint8)
    got = load_exported(result.path, format)(pixels.float() / 255)
    assert (got - eager(run, pixels)).abs().max() < 1e-4
    model, normalization, _ = Run.open(run).load_model()
    model.tta = ()  # the same weights on the images alone: a different function
    scale, offset = normalization.affine()
    with torch.no_grad():
        plain = torch.log_softmax(model(pixels.float() * scale + offset), 1)
    assert (got - plain).abs().max() > 1e-3


def test_raw_image_model_reproduces_training_input_exactly(root: Path) -> None:
    run = tiny_run(root)
    model, normalization, _ = Run.open(run).load_model()
    pixels = torch.arange(256, dtype=torch.uint8).view(4, 1, 8, 8)
    with torch.no_grad():
        wrapped = RawImageModel(model, normalization, Run.open(run).temperature())(
            pixels.float() / 255
        )
    assert torch.equal(wrapped, eager(run, pixels))  # k/255*255 == k for every level


def test_real_mnist_images_and_record(root: Path) -> None:
    run = mnist_run(root)
    for format in ("torchscript", "onnx"):
        result = export(run, format)
        assert result.max_abs_diff < 1e-5, result
        assert result.inputs.startswith("mnist test images 0-71") and result.images == 144
    record = json.loads((run / "export.json").read_text())
    assert set(record) == {"model.torchscript.pt", "model.onnx"}
    assert record["model.onnx"]["max_abs_diff"] < 1e-5
    images = mnist_test_split().images[:500]
    session = load_exported(run / "model.onnx", "onnx")
    np.testing.assert_array_equal(
        session(images.float() / 255).argmax(1).numpy(), eager(run, images).argmax(1).numpy()
    )


def test_metadata_travels_with_the_file(root: Path) -> None:
    run = tiny_run(root)
    extra = {"mlplab.json": ""}
    torch.jit.load(str(export(run, "torchscript").path), _extra_files=extra)
    meta = json.loads(extra["mlplab.json"])
    assert meta["classes"] == ["c0", "c1", "c2", "c3"] and meta["input_shape"] == [1, 8, 8]
    assert meta["head"] == "logits" and "[0, 1]" in meta["input"]
    assert meta["temperature"] == Run.open(run).temperature()  # the outputs are calibrated

    import onnx

    proto = onnx.load(str(export(run, "onnx").path))
    onnx_meta = json.loads({p.key: p.value for p in proto.metadata_props}["mlplab"])
    assert onnx_meta == meta | {"output": "logits"}
    assert [i.name for i in proto.graph.input] == ["pixels"]
    assert [o.name for o in proto.graph.output] == ["logits"]


def test_written_atomically(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tiny_run(root)
    out = tmp_path / "out" / "m.onnx"
    result = export(run, "onnx", out)  # a missing parent folder is created
    assert result.path == out and out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["export.json", "m.onnx"]  # no temp
    assert export(run, "torchscript", tmp_path / "out").path == out.parent / "model.torchscript.pt"
    assert (
        export(run, "torchscript", f"{tmp_path}/new/").path
        == tmp_path / "new" / "model.torchscript.pt"
    )

    # A file that fails the check never replaces the old one, and leaves no temporary behind.
    before = out.read_bytes()
    monkeypatch.setattr(mlplab.inference.export, "_max_abs_diff", lambda *a: (0.5, 2.0))
    with pytest.raises(
        ExportError, match=r"differs from the eager model by 0\.5 .*nothing was written to"
    ):
        export(run, "onnx", out, force=True)
    assert out.read_bytes() == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_unknown_format_and_missing_extra(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tiny_run(root)
    with pytest.raises(
        ConfigError,
        match=r"^export format must be one of torchscript, onnx; got 'onx' \(did you mean 'onnx'\?\)$",
    ):
        export(run, "onx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(
        MissingExtraError,
        match=r"ONNX export needs .*'onnxruntime'.*pip install 'mlplab\[export\]'",
    ):
        export(run, "onnx")
    assert export(run, "torchscript").max_abs_diff < 1e-5  # torchscript needs no extra


def test_cli(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tiny_run(root, "log_softmax")
    assert main(["export", str(run), "--format", "onnx"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(run / "model.onnx")
    assert (
        lines[1].startswith("parity: max |onnx - eager| = ") and "batch sizes 1, 7, 64" in lines[1]
    )
    assert main(["export", str(root / "nowhere")]) == 2
    assert "run directory" in capsys.readouterr().err


@pytest.mark.parametrize("format", ["torchscript", "onnx"])
@pytest.mark.parametrize("head", HEADS)
def test_the_exported_outputs_are_calibrated_and_predict_the_same_class(
    root: Path, head: str, format: str
) -> None:
    run = tiny_run(root, head)
    temperature = Run.open(run).temperature()
    assert temperature != 1.0  # the tiny run's validation split gives it one
    model, normalization, _ = Run.open(run).load_model()
    scale, offset = normalization.affine()
    pixels = torch.randint(0, 256, (9, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        z = model.output(model.hidden((pixels.float() * scale + offset).flatten(1)))
    got = load_exported(export(run, format).path, format)(pixels.float() / 255)
    calibrated = {"logits": z / temperature, "log_softmax": torch.log_softmax(z / temperature, 1)}
    want = calibrated.get(head, torch.softmax(z / temperature, 1))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
    assert torch.equal(got.argmax(1), z.argmax(1))
