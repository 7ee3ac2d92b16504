"""Export: the loaded-back file matches the eager model, takes any batch, is written atomically."""

from __future__ import annotations

import json
import shutil
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
from mlplab.inference.export import (
    FORMATS,
    SCORE_TOLERANCE,
    ExportError,
    export,
    score_tolerance,
)
from mlplab.model.heads import with_temperature
from mlplab.model.raw_image import RawImageModel
from mlplab.trust.negatives import KINDS, negatives
from mlplab.trust.rejection import REASONS, Rejector

HEADS = ("logits", "log_softmax", "softmax")
# Loading a TorchScript file the way a user would warns that torch.jit is deprecated upstream.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "shipping"


def load_exported(path: Path, format: str, every: bool = False):
    """A callable pixels -> outputs for an exported file, loaded the way a user would: the
    first output (the head's, what a consumer of older exports reads), or with ``every`` the
    tuple of all of them."""
    if format == "torchscript":
        module = torch.jit.load(str(path))

        def run(x: torch.Tensor):
            got = module(x)
            got = tuple(t.detach() for t in got) if isinstance(got, tuple) else (got.detach(),)
            return got if every else got[0]

        return run
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run_onnx(x: torch.Tensor):
        got = tuple(torch.from_numpy(a) for a in session.run(None, {"pixels": x.numpy()}))
        return got if every else got[0]

    return run_onnx


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
    # export's own tolerance: the synthetic non-digits of the scores' check (blank, noise) give
    # the largest outputs (here up to ~220 at T = 0.05), and the figure scales with them
    assert result.max_abs_diff < 1e-5 * max(1.0, result.max_abs_output) and result.head == head
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
    assert result.input_shape == (3, 8, 8)
    assert result.max_abs_diff < 1e-5 * max(1.0, result.max_abs_output)  # export's rule
    pixels = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    got = load_exported(result.path, "onnx")(pixels.float() / 255)
    want = eager(run, pixels)
    # export's own tolerance, relative to the outputs' size (here up to ~40: an absolute 1e-5
    # is below float32's rounding there; the Intel AMX VM's kernels differed by 1.05e-5)
    assert (got - want).abs().max() < 1e-5 * max(1.0, float(want.abs().max()))


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
    run = tiny_run(root, size=12, deskew=True, center=center, crop=1)  # `fast` aligns and crops
    result = export(run, format)  # checks several batch sizes: the trace froze none
    assert result.max_abs_diff < 1e-4 * max(1.0, result.max_abs_output)
    pixels = torch.zeros(3, 1, 12, 12, dtype=torch.uint8)
    pixels[:, :, 2:8, 3:5] = 200
    pixels[1] = torch.roll(pixels[0], shifts=(2, 3), dims=(1, 2))  # the same stroke, moved
    pixels[2, :, 2:8, 3:5] = 0
    for y in range(6):  # the stroke leaning right: upright again
        pixels[2, :, 2 + y, 3 + y // 2 : 5 + y // 2] = 200
    got = load_exported(result.path, format)(pixels.float() / 255)
    # relative, as export's own check above: this tiny model's log-probabilities reach ~100,
    # and onnxruntime sums the ink's moments in another order (the shifts differ by ~1e-6)
    assert (got - eager(run, pixels)).abs().max() < 1e-4 * max(1.0, got.abs().max())
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
        assert result.inputs.startswith("mnist test images 0-71") and result.images == 144 + 66
        assert result.rejected and result.rejected < result.images  # both kinds checked
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
    assert [o.name for o in proto.graph.output] == ["logits", "ood_score", "reason_code"]


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
    assert lines[2].startswith("with rejection: outputs ood_score, reason_code; rejected = ")
    assert lines[3].startswith("parity: max |ood_score - eager| = 0.00e+00 (tolerance 0.0686275); ")
    assert main(["export", str(run), "--no-reject"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:] == ["rejection off (--no-reject): the head's output only"]
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


# ----- the rejection's outputs -----------------------------------------------------------------
def tiny_images(n: int, seed: int = 5) -> torch.Tensor:
    """Images like the tiny run's own (its class bands on a dark frame): mostly accepted."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = torch.randint(0, 60, (n, 1, 8, 8), generator=g)
    for c in range(4):
        images[labels == c, :, 2 * c : 2 * c + 2, :] += 150
    return images.clamp(0, 255).to(torch.uint8)


def verdict_codes(verdict) -> torch.Tensor:
    return torch.tensor([REASONS.index(r) if r else 0 for r in verdict.reasons])


@pytest.mark.parametrize("format", ["torchscript", "onnx"])
def test_the_export_rejects_what_the_run_rejects(root: Path, format: str) -> None:
    run = tiny_run(root)
    result = export(run, format)
    assert result.outputs == ("logits", "ood_score", "reason_code")
    assert result.max_score_diff == 0.0 and result.codes_at_threshold == 0  # same torch kernels
    # the check covered rejected inputs: the 66 synthetic non-digits (and the random pixels)
    assert (
        result.rejected == result.images == 72 + 66 and "66 synthetic non-digits" in result.inputs
    )

    inside = tiny_images(200)
    outside = torch.cat([negatives(kind, 4, (1, 8, 8), seed=3) for kind in KINDS])
    pixels = torch.cat([inside, outside])
    rejector = Rejector.load(run)
    model, _, _ = Run.open(run).load_model()
    verdict = rejector.score(model, pixels)
    for n in (1, 7, 64):  # any batch size, the scores and codes of the run's own rejection
        got = [
            load_exported(result.path, format, every=True)(b.float() / 255) for b in pixels.split(n)
        ]
        probs, scores, codes = (torch.cat(parts) for parts in zip(*got, strict=True))
        assert probs.shape == (len(pixels), 4) and probs.dtype == torch.float32
        assert scores.shape == codes.shape == (len(pixels),)
        assert scores.dtype == torch.float32 and codes.dtype == torch.int64
        assert (probs - eager(run, pixels)).abs().max() < 1e-5 * max(1.0, float(probs.abs().max()))
        assert (scores - verdict.scores).abs().max() <= score_tolerance(rejector)
        assert torch.equal(codes, verdict_codes(verdict))
    rejected = codes > 0
    assert torch.equal(rejected, scores > rejector.threshold)  # the rule the metadata states
    assert rejected[len(inside) :].all()  # every non-digit flagged, as the run flags it
    assert (~rejected[: len(inside)]).float().mean() > 0.8  # and its own kind of image passes
    assert {REASONS[c] for c in codes[len(inside) :].tolist()} >= {"no ink", "ink everywhere"}


def test_the_rejection_travels_in_the_metadata(root: Path) -> None:
    run = tiny_run(root)
    rejector = Rejector.load(run)
    extra = {"mlplab.json": ""}
    torch.jit.load(str(export(run, "torchscript").path), _extra_files=extra)
    meta = json.loads(extra["mlplab.json"])
    assert meta["outputs"] == ["logits", "ood_score", "reason_code"]
    assert meta["rejection"]["threshold"] == rejector.threshold
    assert meta["rejection"]["reasons"] == list(REASONS) and REASONS[0] == ""
    assert (
        meta["rejection"]["rule"] == "rejected = ood_score > threshold; why = reasons[reason_code]"
    )

    import onnx

    proto = onnx.load(str(export(run, "onnx").path))
    assert json.loads({p.key: p.value for p in proto.metadata_props}["mlplab"]) == meta
    record = json.loads((run / "export.json").read_text())["model.onnx"]
    assert record["outputs"] == meta["outputs"] and record["max_score_diff"] == 0.0
    assert record["rejection"].startswith("with rejection: ")
    assert record["score_tolerance"] == score_tolerance(rejector) > SCORE_TOLERANCE


@pytest.mark.parametrize("format", ["torchscript", "onnx"])
def test_no_reject_and_runs_without_a_rejection_export_as_before(
    root: Path, tmp_path: Path, format: str
) -> None:
    run = tiny_run(root)
    off = export(run, format, tmp_path / "off", reject=False)
    assert off.outputs == ("logits",) and off.images == 72 and off.max_score_diff is None
    assert off.rejection == "rejection off (--no-reject): the head's output only"

    older = tmp_path / "older"  # as a run trained before the rejection: no block, no tensors
    shutil.copytree(run, older)
    info = json.loads((older / "model.json").read_text())
    del info["rejection"]
    (older / "model.json").write_text(json.dumps(info))
    (older / "rejection.safetensors").unlink()
    (older / FORMATS[format]).unlink(missing_ok=True)
    old = export(older, format)
    assert old.rejection.startswith(f"rejection off: run {older} was trained by an mlplab without")
    assert old.rejection.endswith("; exported the head's output only, as before")

    pixels = tiny_images(9)
    for result in (off, old):
        got = load_exported(result.path, format, every=True)(pixels.float() / 255)
        assert len(got) == 1 and got[0].shape == (9, 4)  # one tensor, as before
        torch.testing.assert_close(got[0], eager(run, pixels), rtol=1e-5, atol=1e-5 * 40)
        if format == "torchscript":  # a plain tensor, not a tuple: older consumers unchanged
            assert isinstance(torch.jit.load(str(result.path))(pixels.float() / 255), torch.Tensor)
            extra = {"mlplab.json": ""}
            torch.jit.load(str(result.path), _extra_files=extra)
            assert "rejection" not in json.loads(extra["mlplab.json"])
        else:
            import onnx

            proto = onnx.load(str(result.path))
            assert [o.name for o in proto.graph.output] == ["logits"]
            meta = json.loads({p.key: p.value for p in proto.metadata_props}["mlplab"])
            assert "rejection" not in meta and "outputs" not in meta


def test_a_score_off_by_more_than_the_tolerance_is_never_installed(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tiny_run(root)
    out = tmp_path / "m.onnx"
    forward = mlplab.inference.export._Judged.forward

    def shifted(self, pixels):
        probs, score, code = forward(self, pixels)
        return probs, score - 0.1, code  # tolerance: 3.5/51

    monkeypatch.setattr(mlplab.inference.export._Judged, "forward", shifted)
    with pytest.raises(
        ExportError,
        match=r"ood_score differs from the run's rejection by 0\.1 \(tolerance 0\.0686\); nothing was",
    ):
        export(run, "torchscript", out)
    assert not out.exists()

    def another_reason(self, pixels):  # each rejection given the next reason along
        probs, score, code = forward(self, pixels)
        return probs, score, torch.where(code > 0, code % 5 + 1, code)

    monkeypatch.setattr(mlplab.inference.export._Judged, "forward", another_reason)
    with pytest.raises(ExportError, match=r"reason_code is [1-5] where the run's rejection gives "):
        export(run, "torchscript", out)
    assert not out.exists()


def test_codes_may_differ_only_at_the_threshold(root: Path) -> None:
    run = tiny_run(root)
    rejector = Rejector.load(run)
    model, _, _ = Run.open(run).load_model()
    pixels = tiny_images(200)
    verdict = rejector.score(model, pixels)
    at = float(verdict.scores[verdict.rejected].min())  # the least unfamiliar rejected input
    tolerance = score_tolerance(rejector)
    assert tolerance == 3.5 / 51  # the tiny run's 51 validation images: 3 steps, and half
    # of one for rounding: three steps as ranks differ pass whatever the rounding, four fail
    assert all(abs(k / 51 - (k + 3) / 51) <= tolerance < 4 / 51 for k in range(48))

    def flipped(x: torch.Tensor):  # a file that accepts the inputs scored `at`
        score, code = rejector.module(model)(x)
        return score, score, torch.where(score == at, 0, code)

    check = mlplab.inference.export._score_parity
    rejector.threshold = at - tolerance / 2  # within the tolerance below `at`: allowed
    parity = check(rejector, model, flipped, pixels, "onnx", Path("m.onnx"))
    assert parity.codes_at_threshold == int((verdict.scores == at).sum()) >= 1
    assert parity.max_score_diff == 0.0 and parity.score_tolerance == tolerance
    rejector.threshold = at - 2 * tolerance  # not at the threshold: an error
    with pytest.raises(ExportError, match="reason_code is 0 where the run's rejection gives"):
        check(rejector, model, flipped, pixels, "onnx", Path("m.onnx"))
