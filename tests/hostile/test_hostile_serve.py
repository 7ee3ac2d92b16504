"""The server against hostile and careless clients: malformed bodies, bombs, liars, slow and
silent connections, floods; and `mlplab serve` against a bad address.

Every malformed request gets a 4xx JSON ``{"detail": ...}`` (never a 500), memory stays under
the budget, slow clients are dropped, and the command line answers one line, exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shipping import tiny_run
from tiff import tiled_tiff

from mlplab.cli import main
from mlplab.serve import bind, create_app, uvicorn_server
from mlplab.serve.batcher import MemoryGate

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "shipping"


def client_for(run: Path, **options):
    from fastapi.testclient import TestClient

    return TestClient(create_app(run, **options), raise_server_exceptions=False)


def detail(response, status: int | tuple[int, ...]) -> str:
    """The one-line ``detail`` of a JSON error answer, after checking its status."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/json"
    got = response.json()["detail"]
    assert isinstance(got, (str, list)) and "Traceback" not in response.text
    return got


def png(width: int, height: int, mode: str = "L") -> bytes:
    """A PNG of ``width`` x ``height`` pixels, all zero: a few KB, whatever it decodes to."""
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    color = {"L": 0, "RGB": 2, "RGBA": 6}[mode]
    row = b"\x00" + bytes(width * channels)  # filter byte, then the row
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, color, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def small_png(size: int = 8) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.zeros((size, size), np.uint8)).save(out, format="PNG")
    return out.getvalue()


def tiff(pixels: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels, mode).save(out, format="TIFF")
    return out.getvalue()


# ----- JSON bodies -----------------------------------------------------------------------
JSON = {"content-type": "application/json"}
MALFORMED_JSON = {
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "the JSON body holds more lists"),
    "deep nesting under pixels": (
        b'{"pixels": ' + b"[" * 1300 + b"]" * 1300 + b"}",  # deeper than Python recurses
        "the body is not valid JSON (nested too deeply)",
    ),
    "100,000-digit integer": (b'{"pixels": ' + b"1" * 100_000 + b"}", "'pixels' has shape []"),
    "NaN literal": (
        b'{"pixels": [[NaN, 0], [0, 0]]}',
        "not valid JSON (NaN is not a number JSON allows)",
    ),
    "Infinity literal": (b'{"pixels": [[Infinity]]}', "Infinity is not a number JSON allows"),
    "-Infinity literal": (b'{"pixels": [[-Infinity]]}', "-Infinity is not a number JSON allows"),
    "1e400": (
        json.dumps({"pixels": [[0.5] * 8] * 8}).replace("0.5", "1e400", 1).encode(),
        "got values in [0.5, inf]",
    ),
    "a string": (b'{"pixels": "abc"}', "'pixels' must be numbers in nested lists"),
    "null": (b'{"pixels": null}', "'pixels' has shape []"),
    "nulls in the image": (
        json.dumps({"pixels": [[None] * 8] * 8}).encode(),
        "'pixels' holds null where numbers belong",
    ),
    "booleans": (
        json.dumps({"pixels": [[True, False] * 4] * 8}).encode(),
        "'pixels' must hold numbers only; got true/false",
    ),
    "strings": (
        json.dumps({"pixels": [["0.5"] * 8] * 8}).encode(),
        "'pixels' must hold numbers only; got strings",
    ),
    "a number": (b'{"pixels": 5}', "'pixels' has shape []"),
    "an object": (b'{"pixels": {}}', "'pixels' must be numbers in nested lists"),
    "objects in lists": (
        json.dumps({"pixels": [[{}, {}], [{}, {}]]}).encode(),
        "'pixels' must be numbers",
    ),
    "empty list": (b'{"pixels": []}', "'pixels' has shape [0]"),
    "list of an empty list": (b'{"pixels": [[]]}', "'pixels' has shape [1, 0]"),
    "ragged": (
        json.dumps({"pixels": [[0.5] * 8, [0.5]]}).encode(),
        "'pixels' must be numbers in nested lists of equal lengths",
    ),
    "a list, not an object": (b"[1, 2]", "expected a JSON object with the key 'pixels'"),
    "null body": (b"null", "expected a JSON object"),
    "empty body": (b"", "the body is not valid JSON"),
    "not UTF-8": (b'{"pixels": "\xff\xfe"}', "the body is not valid JSON"),
    "lone surrogate key": (b'{"\\ud800": 1}', "expected a JSON object with the key 'pixels'"),
    "a million empty lists": (
        b'{"pixels": [' + b"[]," * 1_000_000 + b"[]]}",
        "the JSON body holds more lists",
    ),
    "a million zeros": (
        b'{"pixels": [' + b"0," * 1_000_000 + b"0]}",
        "the JSON body holds more lists or values",
    ),
    "many objects": (b'{"pixels": [' + b"{}," * 100 + b"{}]}", "the JSON body holds more"),
}


@pytest.mark.parametrize("body,message", MALFORMED_JSON.values(), ids=MALFORMED_JSON.keys())
def test_malformed_json_is_a_400_never_a_500(root: Path, body: bytes, message: str) -> None:
    with client_for(tiny_run(root), max_upload_bytes=4 << 20) as client:
        got = detail(client.post("/predict", content=body, headers=JSON), 400)
    assert message in got
    assert len(got) < 400 and "\n" not in got


def test_a_server_bug_is_a_short_json_500_without_traceback(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(tiny_run(root)) as client:
        monkeypatch.setattr(client.app.state.predictor, "top", lambda p, k: 1 / 0)
        response = client.post("/predict", json={"pixels": [[0.5] * 8] * 8})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error (ZeroDivisionError): a bug in mlplab; see the server log"}  # fmt: skip


# ----- images ------------------------------------------------------------------------------
def test_float_tiffs_holding_nan_or_infinity_are_refused(root: Path) -> None:
    with client_for(tiny_run(root)) as client:
        for bad in (np.nan, np.inf, -np.inf):
            pixels = np.full((30, 30), 3.0, np.float32)
            pixels[3, 3] = bad
            files = {"file": ("float.tif", tiff(pixels, "F"), "image/tiff")}
            assert detail(client.post("/predict", files=files), 400) == (
                "float.tif: a floating-point image holding NaN or infinite pixels; mlplab reads finite values only"
            )  # fmt: skip
        lab = io.BytesIO()
        Image.new("LAB", (30, 30)).save(lab, format="TIFF")  # a mode preprocessing cannot take
        files = {"file": ("lab.tif", lab.getvalue(), "image/tiff")}
        assert client.post("/predict", files=files).status_code == 200  # converted to RGB


def test_decompression_bombs_are_refused_from_the_header(root: Path) -> None:
    bomb = png(6000, 6000)  # 36 megapixels in 35 KB
    assert len(bomb) < 60_000
    with client_for(tiny_run(root)) as client:
        got = detail(client.post("/predict", files={"file": ("bomb.png", bomb, "image/png")}), 413)
        assert got == (
            "bomb.png: 6000x6000 is 36,000,000 pixels, more than the 12,000,000 this server "
            "accepts per image; scale the image down"
        )
        four = [("file", (f"{i}.png", png(2500, 2500), "image/png")) for i in range(4)]
        assert detail(client.post("/predict", files=four), 413) == (
            "the 4 images of the request hold 25,000,000 pixels, more than the 24,000,000 this "
            "server accepts per request; send fewer or smaller images"
        )
        assert client.app.state.decode_gate.peak == 0  # nothing was decoded, nor reserved
        pillow_bomb = png(20_000, 20_000)  # over Pillow's own limit: refused by Pillow first
        got = detail(client.post("/predict", files={"file": ("huge.png", pillow_bomb, "image/png")}), 413)  # fmt: skip
        assert got == (  # the server's limit, not Pillow's far higher one
            "huge.png: 400,000,000 pixels, more than the 12,000,000 this server accepts per "
            "image; scale the image down"
        )
        tiles = tiled_tiff(np.zeros((28, 28), np.uint8), (32768, 65520), bomb=True)
        got = detail(client.post("/predict", files={"file": ("tiles.tif", tiles, "image/tiff")}), 413)  # fmt: skip
        assert got == (  # 146 bytes that made libtiff allocate 2 GB for one tile
            "tiles.tif: a TIFF in tiles of 32768x65520 = 2,146,959,360 pixels each, more than "
            "the 12,000,000 accepted (--max-megapixels sets the limit); save it untiled or in "
            "smaller tiles"
        )
        assert client.app.state.decode_gate.peak == 0
        real = tiled_tiff(np.zeros((28, 28), np.uint8), (32, 32))
        answer = client.post("/predict", files={"file": ("real.tif", real, "image/tiff")})
        assert answer.status_code == 200, answer.text


def test_decoding_reserves_its_memory_and_waits_its_turn(root: Path) -> None:
    """Concurrent big uploads: what they decode at once stays within the decode budget."""
    import httpx

    from mlplab.inference.images import decode_bytes

    app = create_app(tiny_run(root), max_pixels=4_000_000, max_memory_bytes=400 << 20)
    gate = app.state.decode_gate
    need = decode_bytes(2000, 2000)  # one 4-megapixel image: 160 MiB; the budget: 300 MiB
    assert need <= gate.capacity < 2 * need
    bomb = png(2000, 2000)

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as client:  # fmt: skip
            posts = [
                client.post("/predict", files={"file": (f"{i}.png", bomb, "image/png")})
                for i in range(4)
            ]
            return [r.status_code for r in await asyncio.gather(*posts)]

    assert asyncio.run(scenario()) == [200] * 4
    assert gate.peak == need and gate.used == 0  # one at a time, all given back


def test_memory_gate_first_come_first_served_timeout_and_cancel() -> None:
    async def scenario() -> None:
        gate = MemoryGate(100)
        order: list[str] = []

        async def take(name: str, n: int, hold: float) -> None:
            async with gate.reserve(n, timeout=5):
                order.append(name)
                await asyncio.sleep(hold)

        await asyncio.gather(take("a", 80, 0.05), take("b", 50, 0), take("c", 10, 0))
        assert order == ["a", "b", "c"]  # c would fit beside a, but b came first
        assert gate.used == 0 and gate.peak == 80
        await gate.acquire(90, timeout=1)
        with pytest.raises(asyncio.TimeoutError):
            await gate.acquire(20, timeout=0.05)
        waiting = asyncio.ensure_future(gate.acquire(20, timeout=5))
        await asyncio.sleep(0.01)
        waiting.cancel()  # a client that left while waiting
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        gate.release(90)
        assert gate.used == 0 and not gate._waiters
        with pytest.raises(ValueError, match="101 bytes asked of a gate of 100"):
            await gate.acquire(101, timeout=1)

    asyncio.run(scenario())


def test_a_cancelled_request_keeps_its_reservation_until_its_thread_ends() -> None:
    """A decode in a thread cannot be stopped: its memory stays reserved until it ends."""
    from mlplab.serve.app import _in_thread

    finished = threading.Event()

    def decode() -> int:
        time.sleep(0.3)
        finished.set()
        return 1

    async def scenario() -> None:
        gate = MemoryGate(100)

        async def request() -> None:
            async with gate.reserve(100, timeout=1):
                await _in_thread(decode)

        task = asyncio.ensure_future(request())
        await asyncio.sleep(0.05)
        task.cancel()  # the client left
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished.is_set() and gate.used == 0  # given back only after the thread ended

    asyncio.run(scenario())


# ----- multipart ---------------------------------------------------------------------------
def test_hostile_multipart_bodies(root: Path) -> None:
    image = small_png()
    with client_for(tiny_run(root), max_batch=4) as client:

        def post(**kwargs) -> str:
            return detail(client.post("/predict", **kwargs), 400)

        thousand = [("file", (f"{i}.png", image, "image/png")) for i in range(1000)]
        assert post(files=thousand) == "malformed multipart body (Too many files. Maximum number of files is 5.)"  # fmt: skip
        fields = {f"f{i}": "x" for i in range(1000)}
        assert post(data=fields, files={"file": ("a.png", image, "image/png")}).startswith(
            "malformed multipart body (Too many fields."
        )
        assert post(files={"upload": ("a.png", image, "image/png")}) == (
            "no image in the request: upload each image in the multipart field 'file' (got fields: upload)"
        )  # fmt: skip
        text = post(data={"file": "hello"}, files={"other": ("a.png", image, "image/png")})
        assert text == "field 'file' #1 is text, not a file upload"
        no_boundary = {"content-type": "multipart/form-data"}
        assert post(content=b"xx", headers=no_boundary).startswith("malformed multipart body")
        escape = post(files={"file": ("\x1b[31mred\n.png", b"not an image", "image/png")})
        assert escape.startswith("\\x1b[31mred")  # escaped: no terminal code reaches a log
        long_name = "n" * 1000 + ".png"
        echoed = post(files={"file": (long_name, b"not an image", "image/png")})
        assert len(echoed) < 400 and "nnn..." in echoed
        huge_name = "n" * 1_000_000 + ".png"  # over the multipart parser's own header limit
        assert post(files={"file": (huge_name, image, "image/png")}).startswith("malformed multipart body")  # fmt: skip
        whole = (
            b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + image + b"\r\n--XyZ--\r\n"
        )
        form = {"content-type": "multipart/form-data; boundary=XyZ"}
        assert client.post("/predict", content=whole, headers=form).status_code == 200
        assert post(content=whole[:-20], headers=form) == (  # the parser would drop the part
            "malformed multipart body: it ends before its closing boundary ('--XyZ--'); was "
            "the upload cut short?"
        )
        eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"  # Ghostscript is never run
        assert "cannot read as an image" in post(files={"file": ("a.eps", eps, "image/x-eps")})


@pytest.mark.parametrize(
    "query,status",
    [("top_k=-1", 422), ("top_k=0", 422), ("top_k=abc", 422), ("top_k=1e3", 422),
     ("top_k=" + "9" * 5000, 422), ("top_k=%ff%fe", 422), ("top_k=" + "1" + "0" * 30, 200),
     ("top_k=2&top_k=3", 200), ("unknown=1", 200)],
)  # fmt: skip
def test_hostile_query_parameters(root: Path, query: str, status: int) -> None:
    with client_for(tiny_run(root)) as client:
        response = client.post(f"/predict?{query}", json={"pixels": [[0.5] * 8] * 8})
    assert response.status_code == status, response.text
    if status == 200:
        assert len(response.json()["predictions"][0]["top"]) <= 4
    else:
        assert isinstance(response.json()["detail"], list)  # FastAPI's validation answer


# ----- slow, silent and lying clients, on a real server ---------------------------------------
@contextlib.contextmanager
def hostile_server(app: object, **settings) -> Iterator[int]:
    """``app`` under the uvicorn server `mlplab serve` runs, on a free loopback port."""
    sockets = bind("127.0.0.1", 0)
    server = uvicorn_server(app, log_level="warning", **settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(20)
        for sock in sockets:
            sock.close()


def until_closed(sock: socket.socket, limit: float = 10) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed it."""
    start, received = time.monotonic(), b""
    sock.settimeout(limit)
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received, time.monotonic() - start


def test_silent_trickling_and_lying_clients_are_dropped(root: Path) -> None:
    app = create_app(tiny_run(root), request_timeout=1.0)
    with hostile_server(app, request_timeout=1.0, timeout_keep_alive=1) as port:
        silent = socket.create_connection(("127.0.0.1", port))
        received, waited = until_closed(silent)  # connects, sends nothing
        assert received == b"" and 0.8 < waited < 3, waited

        trickle = socket.create_connection(("127.0.0.1", port))  # a header byte every 0.2 s
        start = time.monotonic()
        with contextlib.suppress(OSError):
            for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                trickle.send(bytes([byte]))
                time.sleep(0.2)
        assert time.monotonic() - start < 3  # dropped at its deadline, though never idle
        trickle.close()

        liar = socket.create_connection(("127.0.0.1", port))  # declares 1,000 bytes, sends 1
        liar.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{")  # fmt: skip
        received, waited = until_closed(liar)
        assert received.startswith(b"HTTP/1.1 408 ") and 0.8 < waited < 3, (received, waited)
        assert b'"detail":"the request body did not arrive within 1 s (1 bytes came)' in received

        short = socket.create_connection(("127.0.0.1", port))  # declares 2, sends more
        short.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 2\r\n\r\n{}GARBAGE\r\n\r\n")  # fmt: skip
        received, _ = until_closed(short)
        assert b" 500 " not in received and received.startswith(b"HTTP/1.1 400 ")

        huge = socket.create_connection(("127.0.0.1", port))  # declares more than the cap
        huge.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 99999999999\r\n\r\n")  # fmt: skip
        received, waited = until_closed(huge)
        assert received.startswith(b"HTTP/1.1 413 ") and waited < 3

        idle = socket.create_connection(("127.0.0.1", port))  # keep-alive, then nothing
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        received, waited = until_closed(idle)
        assert received.startswith(b"HTTP/1.1 200 ") and 0.8 < waited < 3


def test_requests_wait_for_their_turn_at_the_budget_then_503(root: Path) -> None:
    """While others hold the memory budget, a request waits request_timeout, then 503."""
    import httpx

    app = create_app(tiny_run(root), request_timeout=0.5)
    gate = app.state.body_gate

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await gate.acquire(gate.capacity, timeout=1)  # as if other bodies filled it
            start = time.monotonic()
            busy = await client.post("/predict", json={"pixels": [[0.5] * 8] * 8})
            assert 0.4 < time.monotonic() - start < 3
            later = asyncio.ensure_future(client.post("/predict", json={"pixels": [[0.5] * 8] * 8}))  # fmt: skip
            await asyncio.sleep(0.1)
            gate.release(gate.capacity)  # the others finish: the waiting request goes on
            return busy, await later

    busy, later = asyncio.run(scenario())
    assert detail(busy, 503) == (
        "the server is busy: its memory budget for request bodies (256 MiB) stayed taken by "
        "other requests for 0.5 s; try again"
    )
    assert busy.headers["retry-after"] == "1"
    assert later.status_code == 200 and gate.used == 0


def test_an_accept_loop_out_of_file_descriptors_logs_once(root: Path, tmp_path: Path) -> None:
    """EMFILE: asyncio retries (and logs) every accept; the server logs it once, then recovers."""
    run = tiny_run(root)
    port = bind("127.0.0.1", 0)
    number = port[0].getsockname()[1]
    port[0].close()
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        from mlplab.cli import main
        sys.exit(main(["serve", {str(run)!r}, "--port", "{number}", "--log-level", "warning"]))
    """)
    log = open(tmp_path / "serve.log", "w+")  # noqa: SIM115 - the server writes it meanwhile
    server = subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "serving" not in (tmp_path / "serve.log").read_text():
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "serve.log").read_text()  # fmt: skip
            time.sleep(0.1)
        time.sleep(0.5)
        clients = []
        for _ in range(100):  # more connections than the server has file descriptors
            clients.append(socket.create_connection(("127.0.0.1", number), timeout=5))
        time.sleep(3)
        text = (tmp_path / "serve.log").read_text()
        for client in clients:
            client.close()
        time.sleep(1.5)  # asyncio retries accepting after 1 s
        health = socket.create_connection(("127.0.0.1", number), timeout=5)
        health.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert until_closed(health)[0].startswith(b"HTTP/1.1 200 ")
    finally:
        server.terminate()
        server.wait(20)
        log.close()
    assert text.count("socket.accept() out of system resource") == 1, text[:2000]
    assert len(text.splitlines()) < 20


# ----- the command line: a bad address is one line, before the model loads ---------------------
def test_bad_ports_and_hosts_are_one_line_before_the_model_loads(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = "no-such-run"  # were the model loaded first, the error would name the run

    def error(*args: str) -> str:
        assert main(["serve", missing, *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "internal error" not in err
        return err.strip()

    assert error("--port", "99999") == "mlplab: error: --port must be 1-65535 (0: any free port); got 99999"  # fmt: skip
    assert error("--port", "-1") == "mlplab: error: --port must be 1-65535 (0: any free port); got -1"  # fmt: skip
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        said = error("--port", str(port))  # the holder is this process: tests/serve/test_ports
        assert said.startswith(
            f"mlplab: error: cannot listen on 127.0.0.1:{port}: port {port} is in use by pid "
        )
        assert re.search(r"\); stop it, or pass a free port, e\.g\. --port \d+$", said), said
    assert error("--host", "no-such-host.invalid").startswith(
        "mlplab: error: --host no-such-host.invalid: cannot resolve it ("
    )
    assert error("--host", "192.0.2.1") == (  # TEST-NET-1: never this machine's
        "mlplab: error: cannot listen on 192.0.2.1:8000: 192.0.2.1 is not an address of this "
        "machine; give one of its own with --host"
    )
    assert error("--host", "bad\x1bhost").startswith("mlplab: error: --host bad\\x1bhost:")

    def refused(sock: socket.socket, address: tuple) -> None:  # as for a user who is not root
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refused)
    assert error("--port", "80") == (  # every bind refused: no free port to suggest either
        "mlplab: error: cannot listen on 127.0.0.1:80: port 80 is privileged: binding it needs "
        "root (or CAP_NET_BIND_SERVICE); pass a port from 1024 up"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run the server as nobody")
def test_a_privileged_port_as_a_real_non_root_user(tmp_path: Path) -> None:
    low = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    if low.is_file() and int(low.read_text()) <= 80:
        pytest.skip(reason="port 80 is not privileged on this machine")
    script = 'import sys; from mlplab.cli import main; sys.exit(main(["serve", "no-such-run", "--port", "80"]))'  # fmt: skip
    try:
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
            user=65534, group=65534, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)},
        )  # fmt: skip
    except PermissionError:
        pytest.skip(reason="nobody cannot run this Python here")
    if "mlplab: error" not in result.stderr:
        pytest.skip(reason=f"nobody cannot import mlplab here: {result.stderr[-200:]}")
    assert result.returncode == 2, result.stderr
    assert re.search(r"port 80 is privileged: binding it needs root \(or CAP_NET_BIND_SERVICE\); pass a port from 1024 up, e\.g\. --port \d+\n$", result.stderr)  # fmt: skip
