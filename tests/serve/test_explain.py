"""POST /explain: the maps of the images /predict takes, the same numbers as mlplab.explain,
its refusals, a server without Captum, and the drawing page's heatmap."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from shipping import tiny_run

import mlplab
from mlplab.serve import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "shipping"


def client_for(run: Path):
    from fastapi.testclient import TestClient

    return TestClient(create_app(run))


def png(band: int) -> bytes:
    """An 8x8 PNG with one band of rows lit (the tiny model's classes), on black."""
    pixels = np.full((8, 8), 20, np.uint8)
    pixels[2 * band : 2 * band + 2] = 220
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_explain_route_gives_the_maps_mlplab_explain_gives(root: Path) -> None:
    run = tiny_run(root)
    client = client_for(run)
    files = [("file", (f"{b}.png", png(b), "image/png")) for b in (1, 3)]
    answer = client.post("/explain", files=files)
    assert answer.status_code == 200
    found = answer.json()["explanations"]
    maps = mlplab.explain(run, [Image.open(io.BytesIO(png(b))) for b in (1, 3)])
    for e, m, b in zip(found, maps, (1, 3), strict=True):
        assert (
            e["class"] == f"c{b}"
            and e["target"] == e["class"]
            and e["method"] == "integrated-gradients"
        )
        np.testing.assert_allclose(np.array(e["attribution"]), m.sum(0).numpy(), atol=1e-5)
        assert e["scale"] == pytest.approx(float(m.abs().max()), rel=1e-5)
        assert np.array(e["pixels"]).shape == (8, 8) and max(map(max, e["pixels"])) == 220
        assert abs(e["completeness_error"]) < 0.05 * max(1.0, abs(sum(map(sum, e["attribution"]))))
    other = client.post("/explain?method=occlusion&target=c0", files=files[:1]).json()
    assert (
        other["explanations"][0]["target"] == "c0"
        and "completeness_error" not in other["explanations"][0]
    )
    pixels = torch.zeros(1, 1, 8, 8).tolist()
    assert client.post("/explain?method=saliency", json={"pixels": pixels}).status_code == 200


def test_explain_route_refusals(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_for(tiny_run(root))
    file = {"file": ("a.png", png(0), "image/png")}
    bad = client.post("/explain?method=lime", files=file)
    assert bad.status_code == 400 and bad.json()["detail"] == (
        "method must be one of integrated-gradients, occlusion, saliency; got 'lime'"
    )
    target = client.post("/explain?target=c7", files=file)
    assert target.status_code == 400 and target.json()["detail"] == (
        "the target (--target, ?target=) must be a class of this run (c0, c1, c2, c3) or its "
        "index 0 to 3; got 'c7'"
    )
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    missing = client.post("/explain", files=file)
    assert missing.status_code == 501
    assert missing.json()["detail"].endswith("pip install 'mlplab[explain]'")
    assert client.post("/predict", files=file).status_code == 200  # predict is unaffected
    health = client.get("/health").json()
    assert health["forward_passes"] == 1  # /explain's passes are not the batcher's


def test_the_page_asks_explain_and_draws_the_heatmap(root: Path) -> None:
    page = client_for(tiny_run(root)).get("/").text
    assert 'id="heat"' in page and 'fetch("explain"' in page and "explain(blob)" in page
    assert "response.status === 501" in page  # a server without Captum: the panel stays hidden


def test_the_page_shows_where_the_model_looked_in_a_browser(root: Path) -> None:
    """Draw on the page in headless Chromium: the heatmap appears, painted, without errors."""
    from browser import Browser, find_chromium
    from shipping import live_server

    executable = find_chromium()
    if executable is None:
        pytest.skip(reason="Chromium not available: none on the PATH (or set MLPLAB_CHROMIUM)")
    painted = (
        "(() => { const d = document.getElementById('heat').getContext('2d')"
        ".getImageData(0, 0, 140, 140).data; let m = 0;"
        " for (let i = 0; i < d.length; i += 4) m = Math.max(m, d[i], d[i + 1], d[i + 2]);"
        " return m; })()"
    )
    with live_server(create_app(tiny_run(root))) as url, Browser(executable) as browser:
        browser.open(url)
        browser.until("document.querySelectorAll('#bars li').length > 0")
        assert browser.evaluate("document.getElementById('why').hidden")  # nothing drawn yet
        left, top, width, height = browser.evaluate(
            "(() => { const r = document.getElementById('canvas').getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height]; })()"
        )
        browser.drag([(left + u * width, top + 0.4 * height) for u in (0.2, 0.5, 0.8)])
        browser.until(f"!document.getElementById('why').hidden && {painted} > 0", timeout=30)
        assert browser.errors() == []
        browser.evaluate("document.getElementById('clear').click()")
        assert browser.evaluate("document.getElementById('why').hidden")
