"""Memory of `mlplab serve` under concurrent hostile uploads: the bound, measured.

Starts ``mlplab serve`` as a subprocess on 127.0.0.1 (a free port), warms it up with a few
drawings, then runs ``--clients`` concurrent clients for ``--seconds``, each posting hostile
payloads in a loop, while the server's resident memory (VmRSS, from /proc) is sampled every
20 ms; its peak (VmHWM, reset through /proc/PID/clear_refs when the attack starts) is read at
the end. Reports the idle and peak RSS, their ratio, the answers by status code, and the
bound the server's settings promise (idle + --max-memory-mb + per-connection buffers).

Attacks (``--attack``):

- ``issue``: the one reported in issue 25: 40-megapixel grayscale PNGs of a few KB each;
- ``at-cap``: RGBA PNG bombs just under the server's per-image pixel limit, two per request
  (just under the per-request limit): the worst the limits accept, decoded in full;
- ``json``: JSON bodies built to inflate when parsed (a million empty lists);
- ``bodies``: multipart bodies just under the upload limit (noise, not images);
- ``mixed`` (default): all four, one per client in turn.

    python benchmarks/serve_memory.py --clients 16 --seconds 20

``--server-src DIR`` runs another mlplab source tree as the server (e.g. a checkout of the
code before the fix, with ``--attack issue``). Without ``--run`` it first trains the
tutorial MLP for one epoch on MNIST (``--data-dir`` or ``MLPLAB_DATA_DIR``). Loopback only,
bounded in clients and time; payloads are built before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from machine import describe
from mlplab import Config, load_dataset, train
from serve_load import running_server

MAX_CLIENTS, MAX_SECONDS = 64, 300
SAMPLE_S = 0.02  # RSS sampling period
CONNECTION_BYTES = 128 * 1024  # per open connection: uvicorn's 64 KiB read buffer, h11, a task
ATTACKS = ("issue", "at-cap", "json", "bodies")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="run directory (default: train one)")
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default: 16)")
    parser.add_argument("--seconds", type=float, default=20, help="attack duration (default: 20)")
    parser.add_argument("--attack", choices=(*ATTACKS, "mixed"), default="mixed")
    parser.add_argument("--server-src", type=Path, default=None,
                        help="the src/ folder of the mlplab the server runs (default: this one)")  # fmt: skip
    parser.add_argument("--server-arg", action="append", default=[],
                        help="an argument for `mlplab serve` (repeat it), e.g. --server-arg=--max-memory-mb=512")  # fmt: skip
    parser.add_argument("--max-pixels", type=int, default=12_000_000,
                        help="the server's per-image pixel limit the at-cap bombs stay under (default: 12e6)")  # fmt: skip
    parser.add_argument("--max-memory-mb", type=float, default=1024,
                        help="the server's --max-memory-mb, for the bound (default: 1024)")  # fmt: skip
    parser.add_argument("--max-connections", type=int, default=512,
                        help="the server's --max-connections, for the bound (default: 512)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--clients must be 1-{MAX_CLIENTS} and --seconds in (0, {MAX_SECONDS}]")

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or train_quick_run(args.data_dir, Path(tmp))
        payloads = make_payloads(args.attack, args.max_pixels)
        print(
            f"machine: {describe()}, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB; "
            f"python {platform.python_version()}, torch {torch.__version__}"
        )  # fmt: skip
        for kind, (body, _) in payloads.items():
            print(
                f"payload {kind}: {len(body):,} bytes ({describe_payload(kind, args.max_pixels)})"
            )
        with Server(run, args) as server:
            print(f"server: {' '.join(server.command[2:])}")
            result = asyncio.run(attack(server, payloads, args.clients, args.seconds))
    bound = result["idle_mb"] + args.max_memory_mb + args.max_connections * CONNECTION_BYTES / 2**20
    result["bound_mb"] = bound
    report(result, args)
    if args.json:
        settings = vars(args) | {"run": str(run), "machine": describe()}
        args.json.write_text(json.dumps(result | {"settings": settings}, indent=2, default=str))
    return 0


def train_quick_run(data_dir: str | None, root: Path) -> Path:
    dataset = load_dataset("mnist", data_dir)
    config = Config.preset("tutorial").override({"train.epochs": 1, "run.dir": str(root)})
    return train(config, dataset=dataset).run_dir


def bomb_png(width: int, height: int, mode: str) -> bytes:
    """A PNG of ``width`` x ``height`` pixels that compresses to almost nothing.

    A dark bar (a "1") on light paper, not a flat image: preprocessing does all its steps
    (a flat one stops early). Built row by row: never held decoded here.
    """
    channels, color = {"L": (1, 0), "RGBA": (4, 6)}[mode]
    paper = np.full((width, channels), 230, np.uint8)
    if channels == 4:
        paper[:, 3] = 255
    ink = paper.copy()
    ink[width * 9 // 20 : width * 11 // 20, :3] = 20
    rows = [b"\x00" + paper.tobytes(), b"\x00" + ink.tobytes()]  # filter byte, then the row
    compressor = zlib.compressobj(9)
    data = b"".join(
        compressor.compress(rows[height // 5 <= y < height * 4 // 5]) for y in range(height)
    )
    data += compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, color, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body with each file in the field 'file', and its content type."""
    boundary = "mlplab-serve-memory"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"  # fmt: skip


def make_payloads(attack: str, max_pixels: int) -> dict[str, tuple[bytes, str]]:
    """(body, content type) per attack kind."""
    kinds = ATTACKS if attack == "mixed" else (attack,)
    payloads = {}
    if "issue" in kinds:
        side = math.isqrt(40_000_000)  # 6324 x 6324 = 39,992,976 pixels
        payloads["issue"] = multipart([("bomb-40mp.png", bomb_png(side, side, "L"))])
    if "at-cap" in kinds:
        side = math.isqrt(max_pixels)
        bomb = bomb_png(side, side, "RGBA")
        payloads["at-cap"] = multipart([("cap-a.png", bomb), ("cap-b.png", bomb)])
    if "json" in kinds:
        payloads["json"] = (b'{"pixels": [' + b"[]," * 1_300_000 + b"[]]}", "application/json")
    if "bodies" in kinds:
        noise = np.random.default_rng(0).integers(0, 256, 4 * 1024 * 1024 - 4096, np.uint8)
        payloads["bodies"] = multipart([("noise.bin", noise.tobytes())])
    return payloads


def describe_payload(kind: str, max_pixels: int) -> str:
    side = math.isqrt(max_pixels)
    return {
        "issue": "one 6324x6324 grayscale PNG, 40.0 megapixels decoded, a bar drawn",
        "at-cap": f"two {side}x{side} RGBA PNGs, {2 * side * side / 1e6:.1f} megapixels decoded, a bar drawn",
        "json": "1.3 million empty lists",
        "bodies": "4 MiB of noise in one upload",
    }[kind]


class Server(running_server):
    """``mlplab serve`` (serve_load's running_server), its RSS readable from /proc."""

    def __init__(self, run: Path, args: argparse.Namespace) -> None:
        super().__init__(run, args.server_arg, args.server_src)

    def status(self, key: str) -> int:
        """A /proc/PID/status figure, in bytes (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def reset_peak(self) -> None:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")


async def attack(
    server: Server, payloads: dict[str, tuple[bytes, str]], clients: int, seconds: float
) -> dict:
    drawing = io.BytesIO()
    Image.fromarray(np.zeros((280, 280), np.uint8)).save(drawing, format="PNG")
    statuses: dict[str, collections.Counter] = {k: collections.Counter() for k in payloads}
    samples: list[int] = []
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as client:
        for _ in range(20):  # warm-up: imports, caches, the first forward passes
            await client.post(
                "/predict", files={"file": ("d.png", drawing.getvalue(), "image/png")}
            )
        await asyncio.sleep(1.0)
        idle = server.status("VmRSS")
        server.reset_peak()

        stop = threading.Event()

        def sample() -> None:  # a thread: the event loop is busy sending
            while not stop.is_set():
                try:
                    samples.append(server.status("VmRSS"))
                except (OSError, KeyError):
                    return
                time.sleep(SAMPLE_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        kinds = list(payloads)

        async def one_client(k: int, until: float) -> None:
            kind = kinds[k % len(kinds)]
            body, content_type = payloads[kind]
            while time.monotonic() < until:
                try:
                    r = await client.post("/predict", content=body, headers={"content-type": content_type})  # fmt: skip
                    statuses[kind][str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[kind][type(exc).__name__] += 1
                    await asyncio.sleep(0.1)

        started = time.monotonic()
        await asyncio.gather(*(one_client(k, started + seconds) for k in range(clients)))
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
        peak = max(server.status("VmHWM"), max(samples, default=0))
        after = server.status("VmRSS")
        health = (await client.get("/health", timeout=10)).status_code
    return {
        "idle_mb": idle / 2**20,
        "peak_mb": peak / 2**20,
        "after_mb": after / 2**20,
        "ratio": peak / idle,
        "seconds": elapsed,
        "samples": len(samples),
        "statuses": {k: dict(v) for k, v in statuses.items()},
        "health_after": health,
    }


def report(r: dict, args: argparse.Namespace) -> None:
    print(
        f"attack: {args.clients} concurrent clients, {args.attack}, {r['seconds']:.1f} s; "
        f"RSS sampled every {SAMPLE_S * 1000:g} ms ({r['samples']:,} samples) and VmHWM"
    )
    for kind, counts in r["statuses"].items():
        answers = ", ".join(f"{n:,} x {status}" for status, n in sorted(counts.items()))
        print(f"  {kind}: {answers}")
    print(
        f"server RSS: idle {r['idle_mb']:,.0f} MB, peak {r['peak_mb']:,.0f} MB "
        f"(x{r['ratio']:.2f}; +{r['peak_mb'] - r['idle_mb']:,.0f} MB), after {r['after_mb']:,.0f} MB; "
        f"/health after: {r['health_after']}"
    )
    print(
        f"bound: idle + --max-memory-mb {args.max_memory_mb:g} + {args.max_connections} connections "
        f"x {CONNECTION_BYTES // 1024} KiB = {r['bound_mb']:,.0f} MB; "
        f"{'within' if r['peak_mb'] <= r['bound_mb'] else 'OVER'} it"
    )


if __name__ == "__main__":
    sys.exit(main())
