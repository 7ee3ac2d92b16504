"""The predictor: a run's model on image files, each head's results, test-time views, real
digits, the CLI, and careless or hostile inputs and --show folders."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from shipping import (
    digit_font,
    drawn_digit,
    mnist_run,
    mnist_test_split,
    tiny_run,
)

from mlplab import ConfigError, DataError, Run
from mlplab.cli import main
from mlplab.errors import WriteError
from mlplab.inference import Predictor, predict
from mlplab.inference.images import load_image, preprocess
from mlplab.model import heads
from mlplab.model.views import tta_views

MNIST = (1, 28, 28)


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "shipping"


def paper(
    size: tuple[int, int] = (400, 300), shade: int = 230
) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("L", size, shade)
    return image, ImageDraw.Draw(image)


# ----- probabilities and results --------------------------------------------------------
@pytest.mark.parametrize("head", ["logits", "log_softmax", "softmax"])
def test_predict_results_on_each_head(root: Path, head: str) -> None:
    run = tiny_run(root, head)
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8, generator=g)
    results = predict(run, list(pixels), top_k=3, style="none")  # arrays, in the model's size
    model, normalization, classes = Run.open(run).load_model()
    scale, offset = normalization.affine()
    temperature = Run.open(run).temperature()  # the calibrated probabilities: softmax(z / T)
    assert temperature != 1.0
    with torch.no_grad():
        reference = torch.softmax(
            model.output(model.hidden((pixels.float() * scale + offset).flatten(1))) / temperature,
            1,
        )
    for r, p in zip(results, reference, strict=True):
        assert (
            r["file"] is None
            and r["index"] == int(p.argmax())
            and r["class"] == classes[r["index"]]
        )
        assert r["probability"] == pytest.approx(float(p.max()), abs=1e-6)
        assert [t["index"] for t in r["top"]] == p.argsort(descending=True)[:3].tolist()
        assert r["top"][0] == {
            "class": r["class"],
            "index": r["index"],
            "probability": r["probability"],
        }
    assert len(predict(run, [pixels[0]], top_k=99, style="none")[0]["top"]) == 4  # every class
    with pytest.raises(ConfigError, match=r"^top_k must be an integer >= 1; got 0$"):
        predict(run, [pixels[0]], top_k=0)


def test_predict_averages_a_models_test_time_views(root: Path) -> None:
    run = tiny_run(root, size=12, tta=("shift", "rotate", "flip"))
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (4, 1, 12, 12), dtype=torch.uint8, generator=g)
    results = predict(run, list(pixels), top_k=4, style="none")
    model, normalization, _ = Run.open(run).load_model()
    scale, offset = normalization.affine()
    views = tta_views(pixels.float() * scale + offset, model.tta)  # the same weights, by hand
    with torch.no_grad():
        z = model.output(model.hidden(views.flatten(1)))
    mean = torch.softmax(z, 1).unflatten(0, (8, 4)).mean(0)
    calibrated = torch.softmax(mean.log() / Run.open(run).temperature(), 1)
    for r, p in zip(results, calibrated, strict=True):
        got = sorted((t["index"], t["probability"]) for t in r["top"])
        assert [q for _, q in got] == pytest.approx(p.tolist(), abs=1e-6)


# ----- real digits, with a model trained on real MNIST -------------------------------------
def test_drawn_digits_are_recognized(root: Path) -> None:
    run = mnist_run(root)
    font, serif = digit_font(160)
    images = [drawn_digit(d, font, at=(30 + 17 * d, 10 + 5 * d)) for d in range(10)]
    results = predict(run, images, top_k=3)
    correct = [r["index"] == d for d, r in enumerate(results)]
    # a 2-epoch model on clean serif digits: 10/10 measured; Pillow's own font: 8/10
    assert sum(correct) >= (9 if serif else 7), [r["class"] for r in results]
    naive = predict(run, images, top_k=1, style="resize")  # no inversion, no crop, no centering
    assert sum(r["index"] == d for d, r in enumerate(naive)) <= 3


def test_saved_mnist_images_predict_as_the_tensor(root: Path, tmp_path: Path) -> None:
    run = mnist_run(root)
    test = mnist_test_split()
    images = test.images[:200]
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(tmp_path / f"{i:03d}.png")
    results = predict(run, [tmp_path], top_k=1)  # a folder: its images, sorted
    assert [Path(r["file"]).name for r in results] == [f"{i:03d}.png" for i in range(200)]
    model, normalization, _ = Run.open(run).load_model()
    scale, offset = normalization.affine()
    temperature = Run.open(run).temperature()  # predict shows the calibrated probabilities
    with torch.no_grad():
        direct = heads.probabilities(
            model.head, model(images.float() * scale + offset), temperature
        )
    assert [r["index"] for r in results] == direct.argmax(1).tolist()
    np.testing.assert_allclose([r["probability"] for r in results], direct.max(1).values, atol=1e-6)

    # Forcing the MNIST-style pipeline on images that are already MNIST changes little.
    again = Predictor(run, style="mnist").classify(list(images[:, 0].numpy()), top_k=1)
    agree = np.mean([a["index"] == r["index"] for a, r in zip(again, results, strict=True)])
    assert agree >= 0.97  # measured 0.996 on the first 1,000 test images


# ----- rejection of unfamiliar inputs ------------------------------------------------------
def test_every_result_says_whether_it_is_rejected(root: Path) -> None:
    run = tiny_run(root)
    g = torch.Generator().manual_seed(0)
    blank = np.zeros((1, 8, 8), np.uint8)
    noise = torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8, generator=g)
    results = predict(run, [blank, noise], top_k=2, style="none")
    assert [r["rejected"] for r in results] == [True, True]
    assert [r["reason"] for r in results] == ["no ink", "ink everywhere"]
    assert [r["ood_score"] for r in results] == [1.0, 1.0]
    assert all(r["class"] in ("c0", "c1", "c2", "c3") and len(r["top"]) == 2 for r in results)

    # blank paper, photographed: said to be blank by the preprocessing, and so "no ink"
    page, _ = paper((300, 200))
    assert predict(run, [page])[0]["reason"] == "no ink"

    off = predict(run, [blank, noise], style="none", reject=False)
    assert [(r["rejected"], r["ood_score"]) for r in off] == [(False, None)] * 2
    assert all("reason" not in r for r in off)
    assert Predictor(run, reject=False).rejection_off is None  # asked for: nothing to say


def test_cli_marks_rejected_images_and_an_older_run_says_once(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tiny_run(root)
    page, _ = paper((120, 100))
    page.save(tmp_path / "blank.png")
    assert main(["predict", str(run), str(tmp_path / "blank.png")]) == 0
    line = capsys.readouterr().out
    assert "not sure this is one of its 4 classes (score 1.000: no ink)" in line
    assert "   top 3: " in line  # the classes are still given

    old = tmp_path / "old-run"
    shutil.copytree(run, old)  # as an mlplab before rejection wrote it
    info = json.loads((old / "model.json").read_text())
    del info["rejection"]
    (old / "model.json").write_text(json.dumps(info))
    (old / "rejection.safetensors").unlink()
    files = [str(tmp_path / "blank.png")] * 2
    assert main(["predict", str(old), *files, "--json"]) == 0
    out, err = capsys.readouterr()
    assert [r["ood_score"] for r in json.loads(out)] == [None, None]
    assert err == (
        f"mlplab: rejection off: run {old} was trained by an mlplab without the rejection of "
        "unfamiliar inputs; train it again to have one\n"
    )
    assert main(["predict", str(run), *files, "--json", "--no-reject"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and {r["rejected"] for r in json.loads(out)} == {False}


def _photographed_non_digits() -> list[Image.Image]:
    """Things people photograph that are not digits: blank and shaded paper, printed letters,
    shapes, a scribble, a texture, and a smiley (photo-like: dark ink on light paper)."""
    font, _ = digit_font(160)
    images = []
    for letter in "AMNVYKWHRX":  # the M, N, V, Y ("4" at 99.5%) and more
        image = Image.new("RGB", (360, 300), (238, 232, 215))
        ImageDraw.Draw(image).text((90, 40), letter, fill=(25, 25, 60), font=font)
        images.append(image)
    blank, _ = paper((360, 300), 225)
    shaded = Image.fromarray(
        np.clip(np.tile(np.linspace(180, 240, 360), (300, 1)), 0, 255).astype(np.uint8)
    )
    images += [blank, shaded]
    for draw_shape in range(4):
        image, draw = paper((360, 300))
        if draw_shape == 0:  # a smiley
            draw.ellipse((80, 50, 280, 250), outline=20, width=10)
            draw.ellipse((130, 100, 150, 120), fill=20)
            draw.ellipse((210, 100, 230, 120), fill=20)
            draw.arc((130, 120, 230, 210), 20, 160, fill=20, width=10)
        elif draw_shape == 1:  # a filled square
            draw.rectangle((100, 70, 260, 230), fill=20)
        elif draw_shape == 2:  # a scribble
            draw.line(
                [(60, 200), (120, 60), (180, 240), (240, 50), (300, 220), (90, 150)],
                fill=20,
                width=8,
            )
        else:  # a checkered texture
            for i in range(0, 360, 30):
                for j in range(0, 300, 30):
                    if (i + j) // 30 % 2 == 0:
                        draw.rectangle((i, j, i + 29, j + 29), fill=20)
        images.append(image)
    return images


def test_photographed_non_digits_are_rejected_and_digits_accepted(root: Path) -> None:
    run = mnist_run(root)
    font, serif = digit_font(160)
    digits = [drawn_digit(d, font, at=(30 + 17 * d, 10 + 5 * d)) for d in range(10)]
    results = predict(run, digits, top_k=1)
    accepted_right = [not r["rejected"] and r["index"] == d for d, r in enumerate(results)]
    assert sum(accepted_right) >= (9 if serif else 7), [
        (r["class"], r["ood_score"]) for r in results
    ]
    others = predict(run, _photographed_non_digits(), top_k=1)
    rejected = [r["rejected"] for r in others]
    # measured: 4 of 16 with this 2-epoch model, 5 of 16 with the tutorial's 10 epochs (seeds
    # 0-2): blank and shaded paper, the filled square, the texture (and one letter); printed
    # letters mostly pass (docs/trust.md, "Measured")
    # (3 of 16 on the Intel AMX VM, whose kernels round differently)
    assert sum(rejected) >= 3, [(r["class"], r.get("reason")) for r in others]
    assert all(rejected[10:12])  # blank and shaded paper: always


# ----- command line -------------------------------------------------------------------------
def test_cli_predict(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tiny_run(root)
    for i in range(3):
        image, draw = paper((120, 100))
        draw.rectangle((20, 10 + 20 * i, 100, 25 + 20 * i), fill=10)
        image.save(tmp_path / f"in-{i}.png")
    files = [str(tmp_path / f"in-{i}.png") for i in (2, 0, 1)]
    assert main(["predict", str(run), *files, "--top-k", "2", "--show", str(tmp_path / "saw")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == files
    assert all("top 2: " in line and "(model input: " in line for line in lines)

    assert main(["predict", str(run), *files, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in results] == files
    for r in results:  # bars on paper are unlike the tiny run's training images: rejected
        assert set(r) == {
            "file",
            "index",
            "class",
            "probability",
            "top",
            "rejected",
            "ood_score",
        } | ({"reason"} if r["rejected"] else set())

    # What the model saw, fed back, is taken as it is and predicted the same.
    shown = [str(tmp_path / "saw" / f"in-{i}.png") for i in (2, 0, 1)]
    assert main(["predict", str(run), *shown, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [r["top"] for r in again] == [r["top"] for r in results]

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    assert main(["predict", str(run), files[0], str(tmp_path / "broken.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mlplab: error: {tmp_path / 'broken.jpg'}: cannot read as an image")
    assert err.count("\n") == 1
    assert main(["predict", str(run), str(tmp_path / "saw"), "--top-k", "0"]) == 2
    assert capsys.readouterr().err == "mlplab: error: --top-k must be >= 1; got 0\n"


def test_a_regression_run_is_refused_with_one_line(tmp_path: Path, capsys) -> None:
    from mlplab.cli import main

    assert (
        main(["train", "--preset", "linreg", "--epochs", "1", "--runs-dir", str(tmp_path), "-q"])
        == 0
    )
    run = capsys.readouterr().out.strip()
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    assert main(["predict", run, str(tmp_path / "x.png")]) == 2
    assert (
        "is a regression on tabular data: predict and serve take images" in capsys.readouterr().err
    )


# ----- careless and hostile input (issue 25) ------------------------------------------------
def bomb_png(width: int, height: int) -> bytes:
    """A PNG of ``width`` x ``height`` black pixels: a few KB, whatever it decodes to."""
    import zlib

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte, then the row
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_show_never_writes_over_an_input_or_any_existing_file(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tiny_run(root)
    photos = tmp_path / "photos"
    photos.mkdir()
    image, draw = paper((120, 100))
    draw.rectangle((20, 30, 100, 45), fill=10)
    image.save(photos / "x.png")
    original = (photos / "x.png").read_bytes()

    # --show names the inputs' own folder: the photo stays, the model input goes beside it
    assert main(["predict", str(run), str(photos / "x.png"), "--show", str(photos)]) == 0
    assert (photos / "x.png").read_bytes() == original
    assert f"(model input: {photos / 'x-2.png'})" in capsys.readouterr().out
    assert Image.open(photos / "x-2.png").size == (8, 8)

    # again: neither the photo nor the earlier output is replaced
    shown = (photos / "x-2.png").read_bytes()
    assert main(["predict", str(run), str(photos / "x.png"), "--show", str(photos)]) == 0
    assert (photos / "x.png").read_bytes() == original and (
        photos / "x-2.png"
    ).read_bytes() == shown
    assert "(model input: " + str(photos / "x-3.png") in capsys.readouterr().out

    # whatever holds the name is skipped, never followed or replaced: a link out, a dangling
    # link, a FIFO, a folder
    out, secret = tmp_path / "out", tmp_path / "secret.txt"
    out.mkdir()
    secret.write_text("keep me")
    (out / "x.png").symlink_to(secret)
    (out / "x-2.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(out / "x-3.png")
    (out / "x-4.png").mkdir()
    assert main(["predict", str(run), str(photos / "x.png"), "--show", str(out)]) == 0
    assert secret.read_text() == "keep me" and not (tmp_path / "nowhere.png").exists()
    assert (out / "x.png").is_symlink() and (out / "x-2.png").is_symlink()
    assert stat.S_ISFIFO((out / "x-3.png").lstat().st_mode) and (out / "x-4.png").is_dir()
    assert Image.open(out / "x-5.png").size == (8, 8)
    assert {p.name for p in out.iterdir()} == {f"x{s}.png" for s in ("", "-2", "-3", "-4", "-5")}
    capsys.readouterr()

    # --show naming a file: one line, and the file is left alone
    assert main(["predict", str(run), str(photos / "x.png"), "--show", str(secret)]) == 2
    assert capsys.readouterr().err == (
        f"mlplab: error: --show {secret}: not a folder; name a folder to write the model inputs into\n"
    )
    assert secret.read_text() == "keep me"


def test_pixel_limit_is_checked_from_the_header(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tiny_run(root)
    (tmp_path / "bomb.png").write_bytes(bomb_png(6000, 6000))  # 36 megapixels in 35 KB
    assert main(["predict", str(run), str(tmp_path / "bomb.png"), "--max-megapixels", "10"]) == 2
    assert capsys.readouterr().err == (
        f"mlplab: error: {tmp_path / 'bomb.png'}: 6000x6000 is 36,000,000 pixels, more than the "
        "10,000,000 accepted (--max-megapixels sets the limit); scale the image down\n"
    )
    assert main(["predict", str(run), str(tmp_path / "bomb.png"), "--max-megapixels", "0"]) == 2
    assert capsys.readouterr().err == "mlplab: error: --max-megapixels must be > 0; got 0\n"
    with pytest.raises(
        DataError,
        match=r"^upload: 400,000,000 pixels, more than Pillow decodes \(178,956,970\); scale the image down$",
    ):
        load_image(bomb_png(20_000, 20_000), max_pixels=500_000_000)  # under ours, over Pillow's
    assert main(["predict", str(run), str(tmp_path / "bomb.png")]) == 0  # under the default 40
    capsys.readouterr()

    (tmp_path / "huge.png").write_bytes(bomb_png(10_000, 10_000))  # over Pillow's warning size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["predict", str(run), str(tmp_path / "huge.png")]) == 2
    assert not caught  # Pillow's DecompressionBombWarning would be a second line on stderr
    assert capsys.readouterr().err == (
        f"mlplab: error: {tmp_path / 'huge.png'}: 10000x10000 is 100,000,000 pixels, more than "
        "the 40,000,000 accepted (--max-megapixels sets the limit); scale the image down\n"
    )


def test_memory_budget_refuses_an_image_it_cannot_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "100")
    with pytest.raises(
        DataError,
        match=r"^big\.png: decoding its 4000x4000 pixels would need 335\.7 MiB of memory, more than the 100\.0 MiB",
    ):
        load_image(bomb_png(4000, 4000), "big.png")


def test_names_with_control_characters_are_escaped(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tiny_run(root)
    name = tmp_path / "red\x1b[31m\nline.png"
    image, draw = paper((60, 50))
    draw.rectangle((10, 10, 40, 20), fill=10)
    image.save(name, format="PNG")
    assert main(["predict", str(run), str(name), "--show", str(tmp_path / "seen")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and out.count("\n") == 1
    assert "red\\x1b[31m\\nline.png" in out
    broken = tmp_path / "bad\x1b]0;owned\x07.png"
    broken.write_bytes(b"not an image")
    assert main(["predict", str(run), str(broken)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and err.count("\n") == 1
    assert "bad\\x1b]0;owned\\x07.png: cannot read as an image" in err


def test_fifos_folders_and_odd_images_are_one_line(root: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"pipe\.png: a FIFO \(named pipe\), not a regular file"):
        load_image(fifo)  # would block forever, waiting for a writer
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DataError, match=r"dir\.png: a folder"):
        load_image(tmp_path / "dir.png")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"  # never handed to Ghostscript
    with pytest.raises(
        DataError, match=r"^a\.eps: cannot read as an image \(not a known image format\)"
    ):
        load_image(eps, "a.eps")
    nan = io.BytesIO()
    Image.fromarray(np.full((4, 4), np.nan, np.float32), "F").save(nan, format="TIFF")
    with pytest.raises(
        DataError, match=r"^f\.tif: a floating-point image holding NaN or infinite pixels"
    ):
        load_image(nan.getvalue(), "f.tif")
    lab = io.BytesIO()
    Image.new("LAB", (30, 30), (50, 0, 0)).save(lab, format="TIFF")
    assert preprocess(load_image(lab.getvalue()), MNIST).shape == MNIST  # converted to RGB


@pytest.mark.parametrize(
    "where", ["run", "run/figures", "run/figures/new", "link", "sweep", "sweep/trial"]
)
def test_show_refuses_a_run_or_sweep_folder_and_any_folder_inside(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    # before: `predict RUN img.png --show RUN` exited 0 and wrote RUN/img.png among the run's
    # own files (and could take a name a run file is read by)
    run = tmp_path / "run"
    shutil.copytree(tiny_run(root), run)  # a copy: the shared tiny run gets no figures/
    photo = tmp_path / "x.png"
    image, draw = paper((120, 100))
    draw.rectangle((20, 30, 100, 45), fill=10)
    image.save(photo)
    sweep = tmp_path / "sweep"
    (sweep / "trial").mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}\n")
    (run / "figures").mkdir(exist_ok=True)
    (tmp_path / "link").symlink_to(run)
    base, _, rest = where.partition("/")
    top = run if base == "run" else tmp_path / base
    folder = top / rest if rest else top
    owner, kind = (sweep, "sweep folder") if base == "sweep" else (run, "run directory")
    before = {p: sorted(p.rglob("*")) for p in (run, sweep)}
    assert main(["predict", str(run), str(photo), "--show", str(folder)]) == 2
    inside = "is" if folder.resolve() == owner else "is inside"
    assert capsys.readouterr().err == (
        f"mlplab: error: refusing to write into {folder}: it {inside} the {kind} {owner}, not a "
        "place for other files; choose another --show outside it\n"
    )
    assert {p: sorted(p.rglob("*")) for p in (run, sweep)} == before  # nothing written
    with pytest.raises(WriteError, match=rf"^refusing to write into .*: it {inside} the {kind} "):
        predict(run, [photo], show=folder)
    elsewhere = tmp_path / "out"
    assert main(["predict", str(run), str(photo), "--show", str(elsewhere)]) == 0
