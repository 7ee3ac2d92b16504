"""The device: how busy the machine's cores are, read from the kernel's counters."""

from __future__ import annotations

import os

from mlplab.training import device


def test_busy_cores_reads_the_kernels_counters(tmp_path, monkeypatch) -> None:
    assert 0.0 <= device.busy_cores(window=0.01) <= (os.cpu_count() or 1)
    stat = tmp_path / "stat"
    # user nice system idle iowait per CPU; between the reads cpu0 works 200 of 300 ticks,
    # cpu1 none of 300, cpu2 all 300 (a CPU this process may not use)
    reads = iter(
        [
            "cpu  0 0 0 300 0\ncpu0 0 0 0 100 0\ncpu1 0 0 0 100 0\ncpu2 0 0 0 100 0\nintr 5\n",
            "cpu  0 0 0 900 0\ncpu0 150 0 50 200 0\ncpu1 0 0 0 400 0\ncpu2 300 0 0 100 0\nintr 9\n",
        ]
    )
    monkeypatch.setattr(device.time, "sleep", lambda s: stat.write_text(next(reads)))
    monkeypatch.setattr(device, "_cpu_seconds", lambda: 0.0)  # this process: idle
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    stat.write_text(next(reads))
    assert device.busy_cores(stat=stat) == 2 * 200 / 600  # 1/3 of the allowed ticks, on 2 CPUs
    assert device.busy_cores(stat=tmp_path / "missing") == 0.0


def test_an_unknown_device_is_one_config_error() -> None:
    """torch.device('bogus') is a RuntimeError naming torch's backends: 'internal error'."""
    import pytest

    from mlplab.errors import ConfigError

    for name in ("bogus", "cuda:x", "cuda:²", "gpu"):
        with pytest.raises(ConfigError) as refused:
            device.select_device(name)
        assert str(refused.value) == (
            f"device must be one of auto, cpu, cuda, cuda:N, mps (--device ...); got {name!r}"
        )
    assert device.select_device("cpu").type == "cpu"
