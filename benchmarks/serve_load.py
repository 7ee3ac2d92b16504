"""Load test of `mlplab serve`: concurrent clients on loopback, requests/s and latency.

Starts ``mlplab serve`` as a subprocess on 127.0.0.1 (a free port), then runs ``--clients``
concurrent keep-alive clients for ``--seconds`` (after a 1 s warm-up that is not counted),
each posting one image per request and waiting for the answer. Reports requests/s, latency
percentiles, failures (any non-200 answer or transport error; exit status 1 if any) and
how many images each forward pass carried. Loopback only, bounded in clients and time.

Payloads: ``canvas`` (default) is what the drawing page sends, a 280x280 PNG of an MNIST
test digit drawn white on black, so each request also decodes and preprocesses an image;
``json`` sends the 28x28 pixels as floats in [0, 1] (no decoding or preprocessing).

    python benchmarks/serve_load.py --run runs/<run> --clients 16 --seconds 10

Without ``--run`` it first trains the tutorial MLP for one epoch on MNIST (``--data-dir``
or ``MLPLAB_DATA_DIR``; ~3 s). Clients and server share the machine: on 2 cores the
figures measure both.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch
from PIL import Image

import mlplab
from machine import describe
from mlplab import Config, load_dataset, train

MAX_CLIENTS, MAX_SECONDS = 256, 120
WARMUP = 1.0  # seconds of load before measuring (connections, first batches)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="run directory (default: train one)")
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default: 16)")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds (default: 10)")
    parser.add_argument("--payload", choices=("canvas", "json"), default="canvas")
    parser.add_argument("--batch-wait-ms", type=float, default=2.0, help="server's --batch-wait-ms")
    parser.add_argument("--max-batch", type=int, default=64, help="server's --max-batch")
    parser.add_argument("--threads", type=int, default=1, help="server's torch threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--clients must be 1-{MAX_CLIENTS} and --seconds in (0, {MAX_SECONDS}]")

    torch.set_num_threads(1)
    dataset = load_dataset("mnist", args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or train_quick_run(dataset, Path(tmp))
        payloads = make_payloads(dataset.test.images[:64], args.payload)
        busy = cpu_busy()
        print(
            f"machine: {describe()}, {busy:.0%} busy just before; "
            f"python {platform.python_version()}, torch {torch.__version__}"
        )
        if busy > 0.15:
            print("warning: the machine is busy; these figures will be low and noisy")
        print(
            f"server: mlplab serve {run.name} --threads {args.threads} --max-batch {args.max_batch} "
            f"--batch-wait-ms {args.batch_wait_ms:g} --log-level warning (one uvicorn worker)"
        )
        print(
            f"clients: {args.clients} concurrent keep-alive (httpx, asyncio, one process), "
            f"{args.payload} payload (~{statistics.mean(map(len, payloads)) / 1024:.1f} KiB), "
            f"{WARMUP:g} s warm-up then {args.seconds:g} s measured"
        )
        server_args = ["--threads", str(args.threads), "--max-batch", str(args.max_batch),
                       "--batch-wait-ms", str(args.batch_wait_ms)]  # fmt: skip
        with running_server(run, server_args) as server:
            result = asyncio.run(drive(server, payloads, args.clients, args.seconds))
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result | {"settings": vars(args) | {"run": str(run)}}, indent=2, default=str))  # fmt: skip
    return 1 if result["failures"] else 0


def train_quick_run(dataset, root: Path) -> Path:
    config = Config.preset("tutorial").override({"train.epochs": 1, "run.dir": str(root)})
    return train(config, dataset=dataset).run_dir


def make_payloads(images: torch.Tensor, kind: str) -> list[bytes]:
    payloads = []
    for image in images[:, 0].numpy():
        if kind == "json":
            payloads.append(json.dumps({"pixels": (image / 255).round(4).tolist()}).encode())
        else:
            out = io.BytesIO()
            Image.fromarray(image).resize((280, 280), Image.Resampling.BILINEAR).save(out, "PNG")
            payloads.append(out.getvalue())
    return payloads


class running_server:
    """``mlplab serve`` in a subprocess on 127.0.0.1 (a free port), with ``server_args``;
    its output kept in ``log_text``; stopped with SIGINT, then killed. ``src``: the mlplab
    to run (default: the same as this script's, a checkout rather than an installed copy)."""

    def __init__(self, run: Path, server_args: list[str], src: Path | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.command = [
            sys.executable, "-m", "mlplab", "serve", str(run), "--host", "127.0.0.1",
            "--port", str(self.port), "--log-level", "warning", *server_args,
        ]  # fmt: skip
        self.src = src or Path(mlplab.__file__).parents[1]

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> running_server:
        path = os.pathsep.join(filter(None, [str(self.src), os.environ.get("PYTHONPATH")]))
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self.command,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=os.environ | {"PYTHONPATH": path},
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with status {self.process.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.__exit__()
        raise SystemExit("the server did not answer /health within 60 s")

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.seek(0)
        self.log_text = self.log.read().decode(errors="replace")
        self.log.close()


async def drive(
    server: running_server, payloads: list[bytes], clients: int, seconds: float
) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    measuring = False
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:

        async def one_client(k: int, stop: float) -> None:
            i = k
            while time.perf_counter() < stop:
                body = payloads[i % len(payloads)]
                i += clients
                start = time.perf_counter()
                try:
                    if body[:1] == b"{":
                        r = await client.post("/predict", content=body, headers={"content-type": "application/json"})  # fmt: skip
                    else:
                        r = await client.post("/predict", files={"file": ("digit.png", body, "image/png")})  # fmt: skip
                    ok = r.status_code == 200 and len(r.json()["predictions"]) == 1
                    problem = "" if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if measuring:
                    latencies.append(time.perf_counter() - start)
                    if problem:
                        failures.append(problem)

        t0 = time.perf_counter()
        tasks = [asyncio.create_task(one_client(k, t0 + WARMUP + seconds)) for k in range(clients)]
        await asyncio.sleep(WARMUP)
        warm = (await client.get("/health")).json()
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        measuring, started = True, time.perf_counter()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
        after = (await client.get("/health")).json()
    passes = after["forward_passes"] - warm["forward_passes"]
    images = after["images"] - warm["images"]
    ms = sorted(1000 * t for t in latencies)
    return {
        "requests": len(latencies),
        "failures": len(failures),
        "failure_examples": failures[:5],
        "seconds": elapsed,
        "requests_per_second": len(latencies) / elapsed,
        "latency_ms": {
            "p50": percentile(ms, 50),
            "p90": percentile(ms, 90),
            "p99": percentile(ms, 99),
            "max": ms[-1] if ms else float("nan"),
        },
        "forward_passes": passes,
        "images_per_forward_pass": images / passes if passes else float("nan"),
        "server_cpu_ms_per_request": 1000 * server_cpu / max(len(latencies), 1),
        "client_cpu_ms_per_request": 1000 * client_cpu / max(len(latencies), 1),
    }


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def report(r: dict) -> None:
    lat = r["latency_ms"]
    print(
        f"requests: {r['requests']:,} in {r['seconds']:.1f} s = {r['requests_per_second']:.0f} requests/s; "
        f"failures: {r['failures']}"
    )
    print(
        f"latency ms: p50 {lat['p50']:.1f}, p90 {lat['p90']:.1f}, p99 {lat['p99']:.1f}, max {lat['max']:.1f}"
    )
    print(
        f"server: {r['forward_passes']:,} forward passes, {r['images_per_forward_pass']:.2f} images each on average; "
        f"CPU per request: server {r['server_cpu_ms_per_request']:.1f} ms, clients {r['client_cpu_ms_per_request']:.1f} ms"
    )
    for example in r["failure_examples"]:
        print(f"  failure: {example}")


def cpu_busy(seconds: float = 2.0) -> float:
    """Fraction of all CPUs busy over the next ``seconds`` (Linux /proc/stat; 0 elsewhere)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


if __name__ == "__main__":
    sys.exit(main())
