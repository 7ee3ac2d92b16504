"""Serve: every route and error through a real HTTP client, the micro-batcher, a live uvicorn
server, and the drawing page in headless Chromium."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from browser import Browser, find_chromium
from PIL import Image, ImageDraw
from shipping import live_server, mnist_run, tiny_run

from mlplab.cli import main
from mlplab.extras import MissingExtraError
from mlplab.inference import Predictor
from mlplab.serve import create_app, is_loopback
from mlplab.serve.app import NO_REJECT
from mlplab.serve.batcher import MicroBatcher, rows
from mlplab.trust.rejection import REASONS, Rejector, Verdict, not_sure

# Starlette 1.x deprecates its httpx-based TestClient in favour of a fork; it still works.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "shipping"


def client_for(run: Path, **options):
    from fastapi.testclient import TestClient

    return TestClient(create_app(run, **options))


def png(band: int, size: int = 8) -> bytes:
    """An 8x8 PNG with one band of rows lit (the tiny model's classes), on black.

    Already the model's size with a dark background, so "auto" preprocessing keeps it as it
    is: cropping and centering would erase the position that tells the classes apart.
    """
    pixels = np.full((size, size), 20, np.uint8)
    pixels[band * size // 4 : (band + 1) * size // 4] = 220
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


# ----- routes ---------------------------------------------------------------------------
def test_health_model_docs_and_page(root: Path) -> None:
    run = tiny_run(root)
    with client_for(run) as client:
        health = client.get("/health").json()
        temperature = json.loads((run / "model.json").read_text())["temperature"]
        threshold = Rejector.load(run).threshold
        rejection = {"on": True, "threshold": threshold, "accept": 0.98, "off": None}
        assert health == {
            "status": "ok",
            "run": run.name,
            "forward_passes": 0,
            "images": 0,
            "temperature": temperature,
            "rejection": rejection,
        }
        info = client.get("/model").json()
        assert info["temperature"] == temperature and info["rejection"] == rejection
        summary = json.loads((run / "summary.json").read_text())
        assert info["test_accuracy"] == summary["test_accuracy"] and info["dataset"] == "synthetic"
        assert info["classes"] == ["c0", "c1", "c2", "c3"] and info["input_shape"] == [1, 8, 8]
        assert (
            info["architecture"]["hidden"] == [16]
            and info["parameters"] == 64 * 16 + 16 + 16 * 4 + 4
        )
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text
        spec = client.get("/openapi.json").json()
        body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
        assert set(body) == {"multipart/form-data", "application/json"}
        for route in ("/predict", "/explain"):  # what /docs' "Try it out" sends is answered
            example = spec["paths"][route]["post"]["requestBody"]["content"]["application/json"]
            assert example["example"] == {"pixels": [[0.0] * 8] * 8}  # this model's 1x8x8
        tried = client.post("/predict", json=example["example"])
        assert tried.status_code == 200 and len(tried.json()["predictions"]) == 1, tried.text
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<canvas id="canvas"' in page.text and "pointerdown" in page.text
        # offline: nothing fetched from another origin
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text)
        assert "@import" not in page.text and "url(" not in page.text


@pytest.mark.parametrize("inline_pixels", [1_000_000, 0], ids=["inline", "in-a-thread"])
def test_uploads_predicted_in_input_order(
    root: Path, inline_pixels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlplab.serve.app.INLINE_PIXELS", inline_pixels)  # large uploads: a thread
    run = tiny_run(root)
    images = [png(3), png(0), png(1), png(2)]
    with client_for(run) as client:
        response = client.post(
            "/predict?top_k=2",
            files=[("file", (f"{i}.png", b, "image/png")) for i, b in enumerate(images)],
        )
    assert response.status_code == 200
    got = response.json()["predictions"]
    want = Predictor(run).classify([Image.open(io.BytesIO(b)) for b in images], top_k=2)
    assert [p["index"] for p in got] == [w["index"] for w in want] == [3, 0, 1, 2]
    for p, w in zip(got, want, strict=True):
        assert set(p) == {"class", "index", "probability", "top", "rejected", "ood_score"} | (
            {"reason"} if p["rejected"] else set()
        )
        assert len(p["top"]) == 2 and p["probability"] == pytest.approx(w["probability"], abs=1e-6)
        assert (p["rejected"], p.get("reason")) == (w["rejected"], w.get("reason"))  # as predict
        assert p["ood_score"] == pytest.approx(w["ood_score"], abs=1e-6)


def test_json_pixels(root: Path) -> None:
    run = tiny_run(root)
    predictor = Predictor(run)
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    want = predictor.probabilities(x)
    with client_for(run) as client:
        for pixels, rows in (
            (x[0, 0].tolist(), [0]),  # one H x W image
            (x[0].tolist(), [0]),  # one 1 x H x W image
            (x[:, 0].tolist(), [0, 1, 2]),  # a list of H x W
            (x.tolist(), [0, 1, 2]),  # a list of 1 x H x W
        ):
            got = client.post("/predict", json={"pixels": pixels}).json()["predictions"]
            assert len(got) == len(rows)
            for p, r in zip(got, rows, strict=True):
                assert p["probability"] == pytest.approx(float(want[r].max()), abs=1e-6)

    color = tiny_run(root, channels=3)
    with client_for(color) as client:
        one = torch.rand(3, 8, 8).tolist()
        assert len(client.post("/predict", json={"pixels": one}).json()["predictions"]) == 1
        assert len(client.post("/predict", json={"pixels": [one, one]}).json()["predictions"]) == 2
        wrong = client.post("/predict", json={"pixels": torch.rand(8, 8).tolist()})
        assert wrong.status_code == 400
        assert (
            wrong.json()["detail"]
            == "'pixels' has shape [8, 8]; expected one image as 3x8x8 (or a list of them), float pixels in [0, 1]"
        )


# ----- rejection of unfamiliar inputs -------------------------------------------------------
def like_training(band: int, seed: int) -> np.ndarray:
    """An 8x8 image as tiny_run's training images are: noise 0-59, its class's rows +150."""
    g = np.random.default_rng(seed)
    pixels = g.integers(0, 60, (8, 8))
    pixels[band * 2 : band * 2 + 2] += 150
    return pixels.astype(np.uint8)


def png_of(image: Image.Image | np.ndarray) -> bytes:
    out = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(out, format="PNG")
    return out.getvalue()


def drawing(shape: str) -> Image.Image:
    """What the page sends: white strokes 20 px wide on a black 280x280 canvas."""
    image = Image.new("L", (280, 280), 0)
    draw = ImageDraw.Draw(image)
    if shape in ("smiley", "face"):  # a face: eyes and a smile, in a circle for "smiley"
        if shape == "smiley":
            draw.ellipse((40, 40, 240, 240), outline=255, width=20)
        draw.ellipse((95, 95, 120, 120), fill=255)
        draw.ellipse((160, 95, 185, 120), fill=255)
        draw.arc((85, 100, 195, 205), 20, 160, fill=255, width=20)
    elif shape == "seven":
        draw.line([(70, 56), (210, 56), (140, 196), (118, 238)], fill=255, width=20, joint="curve")
    return image  # "blank": nothing drawn


def test_predict_says_what_is_rejected_as_predict_does(root: Path) -> None:
    run = tiny_run(root)
    # two images well inside (ood_score 0.04 and 0.02 of a validation rank ~0.98 threshold)
    images = [png_of(like_training(1, 0)), png_of(drawing("smiley")), png_of(drawing("blank"))]
    images.append(png_of(like_training(3, 2)))
    files = [("file", (f"{i}.png", b, "image/png")) for i, b in enumerate(images)]
    with client_for(run) as client:
        got = client.post("/predict", files=files).json()["predictions"]
    assert [(p["rejected"], p.get("reason")) for p in got] == [
        (False, None),
        (True, "unlike the training images"),
        (True, "no ink"),
        (False, None),
    ]
    assert [p["index"] for p in (got[0], got[3])] == [1, 3]  # the class is still given...
    assert all(len(p["top"]) == 3 and "class" in p for p in got)  # ...rejected or not
    assert got[1]["ood_score"] == got[2]["ood_score"] == 1.0 > got[0]["ood_score"]
    want = Predictor(run).classify([Image.open(io.BytesIO(b)) for b in images])
    for p, w in zip(got, want, strict=True):  # the fields of predict --json, less "file"
        assert set(p) == set(w) - {"file"}
        assert [p[k] for k in ("class", "rejected")] == [w[k] for k in ("class", "rejected")]
        assert p.get("reason") == w.get("reason") and p["ood_score"] == pytest.approx(
            w["ood_score"]
        )

    # JSON pixels: no preprocessing, the same fields
    with client_for(run) as client:
        [blank] = client.post("/predict", json={"pixels": [[0.0] * 8] * 8}).json()["predictions"]
    assert (blank["rejected"], blank["ood_score"], blank["reason"]) == (True, 1.0, "no ink")


def test_no_reject_and_a_run_without_rejection(root: Path, tmp_path: Path) -> None:
    run = tiny_run(root)
    blank = {"pixels": [[0.0] * 8] * 8}
    with client_for(run, reject=False) as client:  # --no-reject: every input answered
        [p] = client.post("/predict", json=blank).json()["predictions"]
        assert (p["rejected"], p["ood_score"], "reason" in p) == (False, None, False)
        off = {"on": False, "threshold": None, "accept": None, "off": NO_REJECT}
        assert client.get("/health").json()["rejection"] == off
        assert client.get("/model").json()["rejection"] == off

    old = tmp_path / "old-run"
    shutil.copytree(run, old)  # as an mlplab before calibration and rejection wrote it
    info = json.loads((old / "model.json").read_text())
    del info["rejection"], info["temperature"]
    (old / "model.json").write_text(json.dumps(info))
    (old / "rejection.safetensors").unlink()
    app = create_app(old)
    with client_for(old) as client:
        [p] = client.post("/predict", json=blank).json()["predictions"]
        assert (p["rejected"], p["ood_score"], "reason" in p) == (False, None, False)
        health = client.get("/health").json()
    why = f"rejection off: run {old} was trained by an mlplab without the rejection of unfamiliar inputs; train it again to have one"
    assert health["temperature"] == 1.0 and health["rejection"]["off"] == why
    assert app.state.service.startup_line() == f"temperature 1 (none fitted); {why}"
    line = create_app(run).state.service.startup_line()
    temperature = json.loads((run / "model.json").read_text())["temperature"]
    assert line.startswith(f"temperature {temperature:.3g}; rejection: threshold 0.")


def test_the_schema_documents_the_fields(root: Path) -> None:
    with client_for(tiny_run(root)) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    prediction = schemas["Prediction"]
    required = ["class", "index", "probability", "top", "rejected", "ood_score"]
    assert prediction["required"] == required  # "reason": only when rejected
    assert prediction["properties"]["ood_score"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert "'no ink'" in prediction["properties"]["reason"]["description"]
    assert {"temperature", "rejection"} <= set(schemas["Health"]["required"])
    assert schemas["Rejection"]["required"] == ["on", "threshold", "accept", "off"]


def test_the_page_reads_the_rejection_fields(root: Path) -> None:
    with client_for(tiny_run(root)) as client:
        page = client.get("/").text
    fields = ("prediction.rejected", "prediction.ood_score", "prediction.reason")
    for handled in (*fields, '"no ink"', '"blank"', "not sure this is ", "info.rejection"):
        assert handled in page, handled


def test_the_page_words_a_rejection_as_not_sure_does(tmp_path: Path) -> None:
    """The page's notSure (JavaScript) against trust.rejection.not_sure, in Node."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip(reason="Node.js not available (the page's words are tested in Chromium too)")
    from mlplab.serve import app

    page = (Path(app.__file__).parent / "static" / "index.html").read_text()
    function = re.search(r"^function notSure\(.*?^}$", page, re.S | re.M)
    assert function is not None
    digits = [str(d) for d in range(10)]
    cases = [
        (digits, 0.9991, "unlike the training images"),
        (list(reversed(digits)), 1.0, "no ink"),
        (["c0", "c1", "c2", "c3"], 0.98765, "no class stands out"),
        ([*digits, "x"], 0.5, "ink everywhere"),
    ]
    script = tmp_path / "not_sure.js"
    calls = f"console.log(JSON.stringify({json.dumps(cases)}.map(c => notSure(...c))));"
    script.write_text(f"{function.group(0)}\n{calls}")
    out = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=30)
    assert json.loads(out.stdout) == [not_sure(*case) for case in cases], out.stderr


def test_a_drawn_face_and_a_blank_canvas_are_rejected_by_an_mnist_model(root: Path) -> None:
    run = mnist_run(root)
    shapes = ["seven", "face", "blank"]
    with client_for(run) as client:
        files = [("file", (f"{s}.png", png_of(drawing(s)), "image/png")) for s in shapes]
        got = client.post("/predict", files=files).json()["predictions"]
    assert [(p["rejected"], p.get("reason")) for p in got] == [
        (False, None),
        (True, got[1].get("reason")),  # its detector may vary with the model
        (True, "no ink"),
    ]
    assert got[0]["class"] == "7"


# ----- errors ---------------------------------------------------------------------------
def test_errors_are_clear_json(root: Path) -> None:
    run = tiny_run(root)
    with client_for(run, max_upload_bytes=2000, max_batch=2) as client:

        def error(response: httpx.Response, status: int) -> str:
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == "application/json"
            return response.json()["detail"]

        big = bytes(3000)
        assert error(
            client.post("/predict", files={"file": ("big.png", big, "image/png")}), 413
        ).startswith("request body of 3,")
        streamed = client.post(
            "/predict",
            content=iter([big[:1500], big[1500:]]),
            headers={"content-type": "application/json"},
        )
        assert "over 2,000 bytes" not in error(streamed, 413)  # no length declared: counted
        assert error(
            client.post("/predict", files={"file": ("cat.txt", b"meow", "text/plain")}), 400
        ) == (
            "cat.txt: cannot read as an image (not a known image format); pass a PNG, JPEG, BMP, GIF, TIFF or WebP file"
        )
        three = [("file", (f"{i}.png", png(0), "image/png")) for i in range(3)]
        assert (
            error(client.post("/predict", files=three), 400) == "3 images in one request; at most 2"
        )
        assert error(
            client.post("/predict", files={"image": ("a.png", png(0), "image/png")}), 400
        ) == (
            "no image in the request: upload each image in the multipart field 'file' (got fields: image)"
        )
        assert error(client.post("/predict", json={"pixels": [[0.5] * 7] * 8}), 400).startswith(
            "'pixels' has shape [8, 7]; expected one image as 8x8 nested lists"
        )
        assert error(client.post("/predict", json={"pixels": [[255] * 8] * 8}), 400) == (
            "'pixels' must be in [0, 1] (the exported model's input); got values in [255, 255]; divide 0-255 values by 255"
        )
        assert error(client.post("/predict", json={"pixels": [[0.5] * 8, [0.5]]}), 400).startswith(
            "'pixels' must be numbers in nested lists of equal lengths"
        )
        assert error(client.post("/predict", json={"image": []}), 400).startswith(
            "expected a JSON object with the key 'pixels'"
        )
        assert error(client.post("/predict", json={"pixels": [[[0.5] * 8] * 8] * 3}), 400) == (
            "3 images in one request; send 1 to 2"
        )
        not_json = client.post(
            "/predict", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert error(not_json, 400).startswith("the body is not valid JSON")
        plain = client.post("/predict", content=b"7", headers={"content-type": "text/plain"})
        assert error(plain, 415).startswith("content type 'text/plain' is not accepted")
        assert error(client.get("/nope"), 404) == (
            "no route GET /nope; the routes are GET /, GET /health, GET /model, POST /predict, POST /explain and GET /docs"
        )
        assert client.post("/predict?top_k=0", json={"pixels": [[0.0] * 8] * 8}).status_code == 422
        wrong = client.get("/predict")
        assert error(wrong, 405) == "GET is not accepted at /predict; it takes POST"
        assert wrong.headers["allow"] == "POST"
        assert error(client.post("/health"), 405) == "POST is not accepted at /health; it takes GET"


# ----- micro-batching -------------------------------------------------------------------
def test_micro_batcher_collects_concurrent_requests() -> None:
    calls: list[int] = []

    def double(x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return x * 2

    async def scenario() -> None:
        batcher = MicroBatcher(double, max_batch=8, max_wait=0.05)
        inputs = [torch.full((1, 3), float(i)) for i in range(6)]
        outs = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        assert calls == [6]  # one forward pass for six concurrent requests
        for x, y in zip(inputs, outs, strict=True):
            assert torch.equal(y, x * 2)  # each gets its own rows back

        calls.clear()  # a request that would overflow the batch waits for the next one
        sizes = [3, 4, 2]
        outs = await asyncio.gather(*(batcher.submit(torch.ones(n, 3)) for n in sizes))
        assert calls == [7, 2] and [len(o) for o in outs] == sizes
        assert batcher.batches == 3 and batcher.images == 15

        gone = asyncio.ensure_future(batcher.submit(torch.ones(1, 3)))  # a client that gives up
        gone.cancel()
        assert torch.equal(await batcher.submit(torch.ones(1, 3)), torch.full((1, 3), 2.0))
        await batcher.close()

    asyncio.run(scenario())


def test_micro_batcher_hands_out_rows_of_tuples_and_lists() -> None:
    """The server's batch answer: probabilities and a list of verdicts, one pass for all."""
    calls: list[int] = []

    def score(x: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        calls.append(len(x))
        return x * 2, x[:, 0].tolist()

    async def scenario() -> list[tuple[torch.Tensor, list[float]]]:
        batcher = MicroBatcher(score, max_batch=8, max_wait=0.05)
        inputs = [torch.full((n, 1), float(n)) for n in (1, 3, 2)]
        outs = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        await batcher.close()
        return outs

    outs = asyncio.run(scenario())
    assert calls == [6]
    assert [(y.flatten().tolist(), v) for y, v in outs] == [
        ([2.0], [1.0]),
        ([6.0] * 3, [3.0] * 3),
        ([4.0] * 2, [2.0] * 2),
    ]
    verdict = Verdict(torch.arange(4.0), torch.tensor([0, 1, 0, 1]) > 0, [None, "no ink"] * 2)
    part = rows((torch.eye(4), verdict), 1, 3)  # a named tuple keeps its type
    assert torch.equal(part[0], torch.eye(4)[1:3]) and isinstance(part[1], Verdict)
    assert part[1].scores.tolist() == [1.0, 2.0] and part[1].reasons == ["no ink", None]


def test_micro_batcher_failure_reaches_every_request() -> None:
    def broken(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("model on fire")

    async def scenario() -> None:
        batcher = MicroBatcher(broken, max_batch=8, max_wait=0.05)
        results = await asyncio.gather(
            *(batcher.submit(torch.ones(1, 2)) for _ in range(3)), return_exceptions=True
        )
        assert [str(r) for r in results] == ["model on fire"] * 3
        with pytest.raises(ValueError, match="9 images in one request; at most 8"):
            await batcher.submit(torch.ones(9, 2))
        await batcher.close()

    asyncio.run(scenario())


def test_concurrent_http_requests_share_forward_passes(root: Path) -> None:
    run = tiny_run(root)
    app = create_app(run, max_wait_ms=20)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (24, 1, 8, 8), dtype=torch.uint8, generator=g)
    x[:, :, [0, -1]] = 0  # a dark border: uploads in the model's size are taken as they are
    x[:, :, :, [0, -1]] = 0
    want = Predictor(run).probabilities(x).max(1).values

    def request(client: httpx.AsyncClient, i: int):  # uploads and JSON, mixed in one batch
        if i % 2:
            return client.post("/predict", json={"pixels": (x[i, 0].float() / 255).tolist()})
        out = io.BytesIO()
        Image.fromarray(x[i, 0].numpy()).save(out, format="PNG")
        return client.post("/predict", files={"file": (f"{i}.png", out.getvalue(), "image/png")})

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(request(client, i) for i in range(24)))

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 24
    got = [r.json()["predictions"][0]["probability"] for r in responses]
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert app.state.batcher.images == 24 and app.state.batcher.batches < 24


# ----- a real server ----------------------------------------------------------------------
def test_real_uvicorn_server_on_loopback(root: Path) -> None:
    run = tiny_run(root)
    with live_server(create_app(run)) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/health").json()["status"] == "ok"
        response = client.post("/predict", files={"file": ("bar.png", png(0), "image/png")})
        assert response.status_code == 200 and response.json()["predictions"][0]["class"] == "c0"
        assert client.get("/missing").status_code == 404


def test_loopback_and_the_no_authentication_warning(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.org"):
        assert not is_loopback(host), host

    import uvicorn

    started: list[dict] = []

    def run(server: uvicorn.Server, sockets: list) -> None:  # instead of serving forever
        config = server.config
        started.append(
            {
                "address": sockets[0].getsockname()[:2],
                "log_level": config.log_level,
                "keep_alive": config.timeout_keep_alive,
                "limit": config.limit_concurrency,
                "backlog": config.backlog,
                "http": config.http.__name__[:8],
            }
        )

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: started.append({"threads": n}))
    run_dir = tiny_run(root)
    assert main(["serve", str(run_dir), "--port", "0"]) == 0
    out = capsys.readouterr().out
    assert "no authentication" not in out and re.search(r"on http://127\.0\.0\.1:\d+/", out)
    limits = ["--max-batch", "8", "--max-connections", "20"]
    assert main(["serve", str(run_dir), "--host", "0.0.0.0", "--port", "0", *limits]) == 0
    out = capsys.readouterr().out
    assert (
        "warning: serving on 0.0.0.0, reachable from other machines, and the server has no authentication"
        in out
    )
    common = {"log_level": "info", "keep_alive": 5, "backlog": 128, "http": "Deadline"}
    assert started == [
        {"threads": 1},
        {"address": ("127.0.0.1", started[1]["address"][1]), "limit": 512, **common},
        {"threads": 1},
        {"address": ("0.0.0.0", started[3]["address"][1]), "limit": 20, **common},
    ]
    assert main(["serve", str(run_dir), "--max-batch", "0"]) == 2
    assert "--max-batch >= 1" in capsys.readouterr().err


def test_the_startup_log_says_temperature_and_rejection_once(
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: None)
    run = tiny_run(root)
    old = tmp_path / "old-run"  # trained before rejection: served with it off, said once
    shutil.copytree(run, old)
    info = json.loads((old / "model.json").read_text())
    del info["rejection"]
    (old / "model.json").write_text(json.dumps(info))
    (old / "rejection.safetensors").unlink()
    temperature = f"temperature {info['temperature']:.3g}"
    for argv, said in (
        ([str(run)], f"{temperature}; rejection: threshold 0."),
        ([str(run), "--no-reject"], f"{temperature}; {NO_REJECT}"),
        ([str(old)], f"{temperature}; rejection off: run {old} was trained by an mlplab without"),
    ):
        assert main(["serve", *argv, "--port", "0"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("serving ") and lines[1].startswith(said), lines
        assert sum("rejection" in line for line in lines) == 1
    # and not per request
    with caplog.at_level("INFO", logger="mlplab"), client_for(old) as client:
        for _ in range(3):
            client.post("/predict", json={"pixels": [[0.0] * 8] * 8})
    assert not [r for r in caplog.records if "rejection" in r.getMessage()]


def test_a_regression_run_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No temperature, no rejection, no images: serve says so before it starts."""
    from mlplab import Config, train

    config = Config.preset("linreg").override(
        {"train.epochs": 1, "train.threads": 1, "run.dir": str(tmp_path / "runs")}
    )
    run = train(config).run_dir
    capsys.readouterr()
    assert main(["serve", str(run), "--port", "0"]) == 2
    out, err = capsys.readouterr()
    assert "serving" not in out and err == (
        f"mlplab: error: run {run} is a regression on tabular data: predict and serve take "
        "images for classifiers; load its model with Run.load_model and feed it feature rows\n"
    )


def test_missing_extra_names_the_install_command(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if not installed
    with pytest.raises(
        MissingExtraError,
        match=r"^mlplab serve needs the Python package 'fastapi'.*pip install 'mlplab\[serve\]'$",
    ):
        create_app(tiny_run(root))
    assert main(["serve", str(tiny_run(root))]) == 2
    assert "pip install 'mlplab[serve]'" in capsys.readouterr().err


# ----- the drawing page in a real browser ---------------------------------------------------
def draw_on_page(
    url: str, strokes: list[list[tuple[float, float]]], screenshot: Path, then: str = ""
) -> dict:
    """Open the page, draw strokes (in 0-1 canvas units), run the script ``then``, wait for a
    prediction, screenshot."""
    executable = find_chromium()
    if executable is None:
        pytest.skip(reason="Chromium not available: none on the PATH (or set MLPLAB_CHROMIUM)")
    with Browser(executable, width=900, height=720) as browser:
        browser.open(url)
        browser.until("document.querySelectorAll('#bars li').length > 0")
        box = browser.evaluate(
            "(() => { const r = document.getElementById('canvas')"
            ".getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()"
        )
        left, top, width, height = box
        for stroke in strokes:
            browser.drag([(left + u * width, top + v * height) for u, v in stroke])
        if then:
            browser.evaluate(then)
        browser.until(
            "document.getElementById('guess').textContent !== '–' && document.body.dataset.state === 'idle'"
        )
        browser.until("!document.querySelector('#status').textContent")  # no error shown
        state = browser.evaluate("""(() => ({
            guess: document.getElementById('guess').textContent,
            confidence: document.getElementById('confidence').textContent,
            fallback: document.getElementById('fallback').textContent,
            unsure: document.querySelector('.result').classList.contains('unsure'),
            bars: [...document.querySelectorAll('#bars li')].map(li => ({
                name: li.querySelector('.name').textContent,
                width: parseFloat(li.querySelector('.fill').style.width),
                best: li.classList.contains('best')})),
            model: document.getElementById('model').textContent}))()""")
        time.sleep(0.3)  # let the bars' 120 ms width transition finish before the picture
        browser.screenshot(screenshot)
        state["errors"] = browser.errors()
    return state


def test_drawing_page_in_chromium(root: Path, tmp_path: Path) -> None:
    run = tiny_run(root)
    with live_server(create_app(run, reject=False)) as url:  # every drawing answered
        state = draw_on_page(
            url + "/", [[(0.1, 0.15), (0.5, 0.18), (0.9, 0.2)]], tmp_path / "page.png"
        )
    assert state["errors"] == []
    assert [b["name"] for b in state["bars"]] == ["c0", "c1", "c2", "c3"]
    assert sum(b["width"] for b in state["bars"]) == pytest.approx(100, abs=0.5)
    best = [b for b in state["bars"] if b["best"]]
    assert len(best) == 1 and best[0]["name"] == state["guess"]
    assert state["confidence"].endswith("% sure") and run.name in state["model"]
    assert not state["unsure"] and state["fallback"] == ""
    assert state["model"].endswith("Rejection of unfamiliar drawings is off.")
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_drawing_page_says_not_sure_and_blank(root: Path, tmp_path: Path) -> None:
    run = tiny_run(root)  # its classes are bands of 8x8 noise: a drawn stroke is unfamiliar
    classes = ["c0", "c1", "c2", "c3"]
    with live_server(create_app(run)) as url:
        stroke = [[(0.1, 0.15), (0.5, 0.18), (0.9, 0.2)]]
        state = draw_on_page(url + "/", stroke, tmp_path / "unsure.png")
        # the empty canvas sent as it is (the page itself sends only once something is drawn)
        send_blank = "drawn = dirty = true; send()"
        blank = draw_on_page(url + "/", [], tmp_path / "blank.png", then=send_blank)
    assert state["errors"] == [] and state["unsure"] and state["guess"] == "?"
    said = re.fullmatch(r"not sure this is .* \(score ([\d.]+): (.*)\)", state["confidence"])
    assert said and said[2] in REASONS[1:]
    assert state["confidence"] == not_sure(classes, float(said[1]), said[2])
    assert re.fullmatch(r"its best guess would be c\d, \d+\.\d%", state["fallback"])
    assert sum(b["width"] for b in state["bars"]) == pytest.approx(100, abs=0.5)  # still shown
    assert "Rejection" not in state["model"]  # on: nothing to say
    assert blank["errors"] == [] and blank["unsure"] and blank["guess"] == "blank"
    assert blank["confidence"] == not_sure(classes, 1.0, "no ink")


def test_drawing_page_reads_a_drawn_seven(root: Path, tmp_path: Path) -> None:
    run = mnist_run(root)
    seven = [[(0.25, 0.2), (0.5, 0.2), (0.75, 0.2), (0.62, 0.45), (0.5, 0.7), (0.42, 0.85)]]
    with live_server(create_app(run)) as url:
        state = draw_on_page(url + "/", seven, tmp_path / "seven.png")
    assert state["errors"] == [] and state["guess"] == "7", state
    assert "mnist" in state["model"] and len(state["bars"]) == 10
