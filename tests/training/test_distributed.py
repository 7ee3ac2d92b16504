"""Data-parallel training on torchrun: 2 ranks over loopback give the weights of 1 process
with the same global batch; a killed rank makes the other fail with one line; resume works."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mlplab.training.distributed import World, shard

RECIPE = shlex.split("--dataset digits --hidden 32 --batch-size 30 --lr 0.01 --threads 1 -q")


def env() -> dict[str, str]:
    return {**os.environ, "MLPLAB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd = [*launcher, f"--nproc-per-node={nproc}", "-m", "mlplab", *args]
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)


def alone(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mlplab", *args]
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


def test_shards_cover_the_batch_once() -> None:
    batch = torch.arange(7)
    parts = [shard(batch, World(rank, 3, "gloo")) for rank in range(3)]
    assert torch.cat(parts).tolist() == list(range(7)) and [len(p) for p in parts] == [3, 2, 2]
    assert shard(batch, World()) is batch


def test_two_ranks_give_the_weights_of_one_process(tmp_path: Path) -> None:
    two = torchrun("train", *RECIPE, "--epochs", "2", "--runs-dir", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    one = alone("train", *RECIPE, "--epochs", "2", "--runs-dir", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    run_two, run_one = Path(two.stdout.strip()), Path(one.stdout.strip())
    assert two.stdout.strip().count("\n") == 0, "only rank 0 prints"
    a, b = weights(run_one), weights(run_two)
    for key in a:  # a batch of 30 (not a multiple of 4: shares of 15) in either case
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-5)
    summary = json.loads((run_two / "summary.json").read_text())
    assert (summary["world_size"], summary["backend"]) == (2, "gloo")
    assert summary["samples"] == json.loads((run_one / "summary.json").read_text())["samples"]
    assert len(list((tmp_path / "two").iterdir())) == 1, "only rank 0 writes a run directory"

    # resume works for a data-parallel run too: extend it to 3 epochs on 2 ranks
    more = torchrun("train", "--resume", str(run_two), "--epochs", "3")
    assert more.returncode == 0, more.stderr
    lines = (run_two / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_killed_rank_makes_the_other_fail_with_one_line(tmp_path: Path) -> None:
    port, runs = str(free_port()), tmp_path / "runs"
    ranks = []
    for rank in (0, 1):  # as torchrun would start them, without its agent in the way
        rank_env = {
            **env(),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
        }
        flags = shlex.split(f"--batch-size 4 --epochs 50 --dist-timeout 60 --runs-dir {runs}")
        cmd = [sys.executable, "-m", "mlplab", "train", *RECIPE[:-1], *flags]
        ranks.append(
            subprocess.Popen(
                cmd, env=rank_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    deadline = time.monotonic() + 120
    while not list(runs.glob("*/metrics.jsonl")):
        assert time.monotonic() < deadline and ranks[0].poll() is None, ranks[0].communicate()
        time.sleep(0.05)
    ranks[1].send_signal(signal.SIGKILL)
    started = time.monotonic()
    _, err = ranks[0].communicate(timeout=90)
    ranks[1].wait()
    assert ranks[0].returncode == 1, err
    assert time.monotonic() - started < 60, "rank 0 must not hang"
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "mlplab: error: rank 0 of 2: training stopped because the process group failed ("
    )
    assert "another rank has probably died or been killed" in last and "Traceback" not in err


def test_a_global_batch_smaller_than_the_world_is_refused(monkeypatch) -> None:
    from mlplab import Config, ConfigError
    from mlplab.training.loop import _process_settings

    monkeypatch.setenv("WORLD_SIZE", "3")
    config = Config().override({"train.batch_size": 2})
    with (
        pytest.raises(
            ConfigError,
            match="train.batch_size=2 is the global batch: "
            "it needs at least one sample for each of the 3 ranks",
        ),
        _process_settings(config.train),
    ):
        pass
