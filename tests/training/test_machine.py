"""The machine, measured (issue 23, item 1): the CPU's description, torch's GEMM rates at a
run's shapes (cached per machine, torch and shape), the precision and thread count they
suggest and why, the warning for an explicit --threads that runs slower, and a run's summary."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import torch
import yaml

from mlplab import Config, resume, train
from mlplab.cli.main import main
from mlplab.training import machine as machine_module
from mlplab.training.machine import (
    Machine,
    cached_machine,
    describe_cpu,
    device_identity,
    gemm_rate,
    measure_machine,
    measure_step,
    resolve_precision,
    run_shape,
    slow_bf16,
    slow_threads,
    summary_record,
)

SHAPE = (8, 16, 12)  # tiny: measuring it takes milliseconds


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch) -> Path:
    """Each test measures into its own cache folder (never the user's)."""
    monkeypatch.setenv("MLPLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "machine.json"


def machine(fp32: dict[int, float], bf16: dict[int, float], isa: list[str]) -> Machine:
    return Machine("CPU", 2, isa, "AVX512", "2.13", SHAPE, {"fp32": fp32, "bf16": bf16}, "now")


def test_the_cpu_is_described_from_its_flags(monkeypatch) -> None:
    monkeypatch.setattr(machine_module, "cpu_flags", lambda: {"avx2", "avx512f", "amx_bf16", "fpu"})
    cpu = describe_cpu()
    assert cpu["isa"] == ["AVX2", "AVX-512", "AMX-BF16"]  # the ones that matter, in order
    assert cpu["cores"] >= 1 and cpu["model"] and cpu["capability"]


@pytest.mark.parametrize(
    "bf16, isa, expected, why",
    [
        (6.0, ["AVX-512", "AMX-BF16"], "bf16", "bf16 GEMM 6.0x fp32 here (AMX-BF16): pass --precision bf16"),
        (1.4, ["AVX512-BF16"], "fp32", "bf16 only 1.4x fp32 at this shape: bf16 autocast would not pay"),
        (3.0, ["AVX2"], "fp32", "no native bf16: bf16 autocast would not pay"),
    ],
)  # fmt: skip
def test_bf16_is_suggested_only_where_it_is_native_and_measured_faster(
    bf16, isa, expected, why
) -> None:
    chosen, reason = machine({1: 100.0}, {1: 100.0 * bf16}, isa).precision()
    assert chosen == expected and reason.startswith(why)


def test_threads_follow_the_rule_unless_more_were_measured_slower() -> None:
    fast = machine({1: 100.0, 2: 180.0}, {1: 100.0, 2: 180.0}, [])
    assert fast.threads(60e6) == (2, "one thread per 25 MFLOP of a 60 MFLOP step")
    assert fast.threads(20e6)[0] == 1
    noisy = machine({1: 100.0, 2: 80.0}, {1: 100.0, 2: 80.0}, [])  # 1.25x: noise, not slow
    assert noisy.threads(60e6)[0] == 2
    slow = machine({1: 100.0, 2: 12.5}, {1: 100.0, 2: 12.5}, [])
    threads, why = slow.threads(60e6)
    assert threads == 1 and why.startswith("2 threads measured 8.0x slower than 1 here")


def test_rates_are_measured_once_then_read_from_the_cache(cache: Path) -> None:
    first = measure_machine(SHAPE, seconds=0.01)
    assert not first.cached and cache.is_file()
    assert set(first.rates) == {"fp32", "bf16"} and all(
        r > 0 for rates in first.rates.values() for r in rates.values()
    )
    assert 1 in first.rates["fp32"]
    again = measure_machine(SHAPE, seconds=0.01)
    assert again.cached and again == first  # the same record, not a new measurement
    assert cached_machine(SHAPE) == first and cached_machine((9, 9, 9)) is None
    assert not measure_machine(SHAPE, refresh=True, seconds=0.01).cached


def pretend_cpu(monkeypatch, family: str, model: str, flags: str) -> None:
    """This process runs on a CPU named like the VMs here, of the given kind."""
    fields = {"model name": "Intel(R) Xeon(R) Processor @ 2.80GHz", "cpu family": family,
              "model": model, "flags": flags}  # fmt: skip
    monkeypatch.setattr(machine_module, "cpu_field", fields.get)


def test_one_name_on_two_kinds_of_cpu_does_not_share_a_measurement(monkeypatch) -> None:
    # the Xeon VMs here: Sapphire Rapids (AMX) and Ice Lake (no bf16) carry the same name
    pretend_cpu(monkeypatch, "6", "143", "avx2 avx512f avx512_bf16 amx_bf16")
    amx = measure_machine(SHAPE, seconds=0.01)
    assert amx.model == "Intel(R) Xeon(R) Processor @ 2.80GHz" and cached_machine(SHAPE) == amx
    pretend_cpu(monkeypatch, "6", "106", "avx2 avx512f")
    assert cached_machine(SHAPE) is None and not measure_machine(SHAPE, seconds=0.01).cached
    pretend_cpu(monkeypatch, "6", "143", "avx2 avx512f avx512_bf16 amx_bf16")
    assert cached_machine(SHAPE) == amx  # each kind keeps its own
    pretend_cpu(monkeypatch, "6", "207", "avx2 avx512f avx512_bf16 amx_bf16")  # same flags
    assert cached_machine(SHAPE) is None  # Emerald Rapids is not Sapphire Rapids


def test_a_step_timing_on_a_gpu_is_kept_per_gpu_model(monkeypatch) -> None:
    names = {0: "NVIDIA H100 80GB HBM3", 1: "Tesla T4"}
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: names[d.index])
    monkeypatch.setattr(
        torch.cuda, "get_device_capability", lambda d: (9, 0) if d.index == 0 else (7, 5)
    )
    h100, t4 = (device_identity(torch.device("cuda", i)) for i in (0, 1))
    assert h100 == "cuda|NVIDIA H100 80GB HBM3|9.0" and t4 == "cuda|Tesla T4|7.5"
    assert device_identity(torch.device("cpu")) == "cpu"


def test_measuring_a_machine_takes_under_2_seconds() -> None:
    """Issue 23's promise for `mlplab machine`: cheap, under 2 s (two precisions at one
    thread and every core, each a time-bounded loop after one warm-up product), here at
    `best`'s first layer, the largest shape a preset measures."""
    start = time.perf_counter()
    measure_machine((256, 784, 1024), refresh=True)
    assert time.perf_counter() - start < 2.0


def test_a_damaged_cache_is_measured_again(cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert not measure_machine(SHAPE, seconds=0.01).cached
    record = json.loads(cache.read_text())
    (key,) = record
    record[key]["rates"] = "garbage"
    cache.write_text(json.dumps(record))
    assert cached_machine(SHAPE) is None and not measure_machine(SHAPE, seconds=0.01).cached


def test_a_gemm_rate_is_its_flops_over_time(monkeypatch) -> None:
    ticks = iter(x * 0.001 for x in range(10**6))  # each clock read 1 ms later
    monkeypatch.setattr(machine_module.time, "perf_counter", lambda: next(ticks))
    rate = gemm_rate((10, 10, 10), torch.float32, 1, seconds=0.05)
    # the warm-up: 1 ms; each 10-ms slice: start, then reads 1 ms apart: ten products
    assert rate == pytest.approx(2 * 10 * 10 * 10 / 0.001 / 1e9)
    # a warm-up well inside the budget is not a measurement: two reads for it, then five
    # slices of about eleven each (a shortcut at 1 ms would have read the clock twice)
    assert next(ticks) >= 0.001 * (2 + 5 * 10)


def test_a_product_slower_than_a_slice_is_timed_once(monkeypatch) -> None:
    """Emulated bf16 (0.2-0.4 s a product on an AVX2-only EPYC) would make five slices of at
    least one product each take seconds: the warm-up's own time gives the rate."""
    ticks = iter([0.0, 0.5])  # the warm-up product took 0.5 s; no clock read after it
    monkeypatch.setattr(machine_module.time, "perf_counter", lambda: next(ticks))
    rate = gemm_rate((10, 10, 10), torch.bfloat16, 1, seconds=0.15)
    assert rate == pytest.approx(2 * 10 * 10 * 10 / 0.5 / 1e9)


def test_an_explicit_thread_count_that_runs_slower_is_warned_about(
    tiny, quick_config, monkeypatch, caplog
) -> None:
    assert slow_threads(1, SHAPE) is None  # one thread: nothing to compare
    rates = iter([100.0, 80.0, 100.0, 50.0, 100.0, 12.5])  # 1 thread, then 2, three times
    monkeypatch.setattr(machine_module, "gemm_rate", lambda *a, **k: next(rates))
    assert slow_threads(2, SHAPE) is None  # 1.25x slower: a measurement's noise, no warning
    assert slow_threads(2, SHAPE) is not None  # 2x slower (SLOW_WARNS): warned
    line = slow_threads(2, SHAPE)
    assert line == (
        "--threads 2: this run's matrix products measured 8.0x slower at 2 threads than at 1 on "
        "this machine (OpenMP's slow mode: a small step or a busy core); leave --threads out "
        "for the automatic choice, or try OMP_WAIT_POLICY=ACTIVE"
    )
    monkeypatch.setattr(machine_module, "slow_threads", lambda n, shape: f"slow {n} {shape}")
    with caplog.at_level(logging.WARNING, logger="mlplab"):
        train(quick_config.override({"train.threads": 2, "train.epochs": 1}), dataset=tiny)
    features = tiny.image_shape[0] * tiny.image_shape[1] * tiny.image_shape[2]
    assert f"slow 2 (32, {features}, 16)" in caplog.messages
    torch.set_num_threads(1)


def test_an_explicit_bf16_where_it_is_emulated_is_warned_about(
    tiny, quick_config, monkeypatch, caplog
) -> None:
    """A CPU without AVX512-BF16 or AMX (an AVX2-only AMD EPYC: bf16 products 30x slower)."""
    measured: list[tuple] = []

    def rate(shape, dtype, threads, seconds):
        measured.append((shape, dtype, threads))
        return {torch.float32: 90.0, torch.bfloat16: 3.0}[dtype]

    monkeypatch.setattr(machine_module, "gemm_rate", rate)
    monkeypatch.setattr(machine_module, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert slow_bf16((256, 576, 384)) == (
        "--precision bf16: this run's matrix products measured 30x slower in bf16 than in fp32 "
        "on this CPU (no native bf16 such as AVX512-BF16 or AMX); --precision auto chooses "
        "the faster one here, or pass --precision fp32"
    )
    assert measured == [((64, 576, 384), dtype, 1) for dtype in (torch.float32, torch.bfloat16)]
    with caplog.at_level(logging.WARNING, logger="mlplab"):
        train(quick_config.override({"train.precision": "bf16", "train.epochs": 1}), dataset=tiny)
        train(quick_config.override({"train.epochs": 1}), dataset=tiny)  # fp32: not measured
    assert sum("measured 30x slower in bf16" in m for m in caplog.messages) == 1
    assert len(measured) == 4
    # under 3x slower (FAR_SLOWER) is not warned about; native bf16 is not even measured
    monkeypatch.setattr(
        machine_module,
        "gemm_rate",
        lambda shape, dtype, *a: 90.0 / (1.0, 3.1)[dtype == torch.bfloat16],
    )
    assert slow_bf16((256, 576, 384)) is not None  # 3.1x: warned
    monkeypatch.setattr(
        machine_module,
        "gemm_rate",
        lambda shape, dtype, *a: 90.0 / (1.0, 2.9)[dtype == torch.bfloat16],
    )
    assert slow_bf16((256, 576, 384)) is None  # 2.9x: not
    monkeypatch.setattr(machine_module, "gemm_rate", lambda *a: pytest.fail("measured"))
    for flag in ("avx512_bf16", "amx_bf16"):
        monkeypatch.setattr(machine_module, "cpu_flags", lambda flag=flag: {"avx512f", flag})
        assert slow_bf16((256, 576, 384)) is None


def test_auto_stops_after_its_early_steps_where_bf16_is_far_slower(tiny, monkeypatch) -> None:
    """Where bf16 is emulated its early steps decide (a warm-up and two timed of each): the
    five slices would take seconds."""
    from mlplab.model.mlp import MLP

    forwards = []
    forward = MLP.forward
    monkeypatch.setattr(
        MLP, "forward", lambda self, x, **kw: forwards.append(1) or forward(self, x, **kw)
    )
    config = Config().override({"model.hidden": [8], "train.batch_size": 16})
    cpu = torch.device("cpu")
    monkeypatch.setattr(machine_module, "cpu_flags", lambda: {"avx2"})  # bf16 not native
    monkeypatch.setattr(machine_module, "FAR_SLOWER", 0.0)  # any bf16 step is "far slower"
    seconds = measure_step(config, tiny.image_shape, 4, cpu, seconds=0.02)
    assert len(forwards) == 6 and set(seconds) == {"fp32", "bf16"}  # a warm-up, two timed
    forwards.clear()
    monkeypatch.setattr(machine_module, "FAR_SLOWER", float("inf"))  # never: the full timing
    measure_step(config, tiny.image_shape, 4, cpu, seconds=0.02)
    assert len(forwards) >= 6 + 4 + 10
    forwards.clear()  # native bf16: never the early verdict, whatever one step reads
    monkeypatch.setattr(machine_module, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    monkeypatch.setattr(machine_module, "FAR_SLOWER", 0.0)
    measure_step(config, tiny.image_shape, 4, cpu, seconds=0.02)
    assert len(forwards) >= 4 + 10


def test_the_early_verdict_reads_the_slowest_fp32_against_the_fastest_bf16(
    tiny, monkeypatch
) -> None:
    """Noise only adds time, so the cautious reading of two steps each is fp32's slower one
    against bf16's faster one."""
    steps = iter([0.1, 0.1, 1.0, 5.0, 2.0, 3.0])  # warm-up fp32, bf16; then fp32, bf16 twice
    clock = iter(t for step in steps for t in (0.0, step))  # each step reads the clock twice

    class Clock:
        perf_counter = staticmethod(lambda: next(clock))

    monkeypatch.setattr(machine_module, "time", Clock)
    monkeypatch.setattr(machine_module, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(machine_module, "FAR_SLOWER", 1.4)  # 3.0 >= 1.4 x 2.0
    config = Config().override({"model.hidden": [8], "train.batch_size": 16})
    seconds = measure_step(config, tiny.image_shape, 4, torch.device("cpu"))
    assert seconds == {"fp32": 2.0, "bf16": 3.0}


def test_a_run_summary_names_the_cpu_and_the_cached_rates(tiny, quick_config) -> None:
    summary = train(quick_config.override({"train.epochs": 1}), dataset=tiny).summary
    record = summary["machine"]
    assert record["model"] == describe_cpu()["model"] and record["rates"] is None
    assert "mlplab machine" in record["choice"]
    shape = tuple(record["shape"])
    measure_machine(shape, seconds=0.01)
    after = summary_record(shape, 1e6)
    assert after["rates"]["fp32"]["1"] > 0 and after["choice"]["threads"] == 1


def test_the_machine_command(capsys) -> None:
    assert run_shape(Config.preset("tutorial"))[:2] == ((64, 784, 250), 60_160_000)
    assert run_shape(Config().override({"data.dataset": "x.csv"}))[2].endswith(
        "MNIST's 28x28 assumed"
    )
    assert main(["machine", "--preset", "tutorial", "--batch-size", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "cpu", "isa", "shape", "fp32", "bf16", "precision", "threads", "(measured",
    ]  # fmt: skip
    assert lines[2].startswith("shape      8 x 784 @ 784 x 250 (the first layer; mnist)")
    assert main(["machine", "--preset", "tutorial", "--batch-size", "8", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["cached"] and record["shape"] == [8, 784, 250]
    assert set(record["choice"]) == {"precision", "precision_reason", "threads", "threads_reason"}


# ----- train.precision=auto -------------------------------------------------------------------
def fake_step(monkeypatch, fp32: float, bf16: float) -> list[int]:
    """auto's step timing replaced by fixed seconds; returns the list of batch sizes measured."""
    measured: list[int] = []

    def measure(config, image_shape, outputs, device, seconds=0.5, regression=False):
        measured.append(config.train.batch_size)
        return {"fp32": fp32, "bf16": bf16}

    monkeypatch.setattr(machine_module, "measure_step", measure)
    return measured


def test_a_pinned_precision_is_left_as_it_is_and_measures_nothing(tiny, monkeypatch) -> None:
    measured = fake_step(monkeypatch, 2e-3, 1e-3)
    for precision in ("fp32", "bf16"):
        config = Config().override({"train.precision": precision})
        assert resolve_precision(config, tiny, torch.device("cpu")) == (config, None)
    assert measured == []


@pytest.mark.parametrize(
    "fp32, bf16, chosen, why",
    [
        (2.0e-3, 1.0e-3, "bf16", "a whole 32 x 64 step at 1 thread(s) measured 2.00x faster in bf16"),
        (1.1e-3, 1.0e-3, "bf16", "measured 1.10x faster in bf16"),
        (1.05e-3, 1.0e-3, "fp32", "bf16 only 1.05x fp32 on a whole 32 x 64 step at 1 thread(s) (bf16 needs 1.10x)"),
        (1.0e-3, 3.0e-3, "fp32", "bf16 only 0.33x fp32"),
    ],
)  # fmt: skip
def test_auto_chooses_bf16_only_from_1_1x_on_a_whole_step(
    tiny, monkeypatch, fp32, bf16, chosen, why
) -> None:
    fake_step(monkeypatch, fp32, bf16)
    torch.set_num_threads(1)
    config = Config().override({"train.precision": "auto", "train.batch_size": 32})
    resolved, record = resolve_precision(config, tiny, torch.device("cpu"))
    assert resolved.train.precision == chosen and record["chosen"] == chosen
    assert why in record["reason"] and record["asked"] == "auto"
    assert record["step_ms"] == {
        "fp32": pytest.approx(fp32 * 1e3),
        "bf16": pytest.approx(bf16 * 1e3),
    }
    assert resolved.override({"train.precision": "auto"}) == config  # nothing else changed


def test_auto_never_chooses_bf16_where_it_did_not_hold_accuracy(tiny, monkeypatch) -> None:
    fake_step(monkeypatch, 5e-3, 1e-3)
    monkeypatch.setattr(machine_module, "BF16_HOLDS_ACCURACY", False)
    config = Config().override({"train.precision": "auto"})
    resolved, record = resolve_precision(config, tiny, torch.device("cpu"))
    assert resolved.train.precision == "fp32" and "did not hold accuracy" in record["reason"]


def test_auto_measures_once_per_shape_then_reads_the_cache(tiny, monkeypatch, cache) -> None:
    measured = fake_step(monkeypatch, 2e-3, 1e-3)
    config = Config().override({"train.precision": "auto", "train.batch_size": 32})
    cpu = torch.device("cpu")
    first = resolve_precision(config, tiny, cpu)[1]
    again = resolve_precision(config, tiny, cpu)[1]
    assert measured == [32] and not first["cached"] and again["cached"]
    assert again["measured"] == first["measured"] and again["chosen"] == first["chosen"]
    resolve_precision(config.override({"train.batch_size": 16}), tiny, cpu)  # another shape
    resolve_precision(config, tiny, cpu, refresh=True)
    assert measured == [32, 16, 32]
    cache.write_text("{not json")  # a damaged cache is measured again, then rewritten
    assert not resolve_precision(config, tiny, cpu)[1]["cached"] and measured[-1] == 32
    assert len(json.loads(cache.read_text())) == 1
    pretend_cpu(monkeypatch, "25", "1", "avx2")  # same name, another kind: measured anew
    assert not resolve_precision(config, tiny, cpu)[1]["cached"] and measured[-1] == 32


def test_a_whole_step_is_timed_in_both_precisions_without_touching_the_rng(tiny) -> None:
    config = Config().override({"model.hidden": [8], "train.batch_size": 16})
    before = torch.get_rng_state()
    seconds = measure_step(config, tiny.image_shape, 4, torch.device("cpu"), seconds=0.02)
    assert set(seconds) == {"fp32", "bf16"} and all(0 < s < 1 for s in seconds.values())
    assert torch.equal(torch.get_rng_state(), before)


def test_an_auto_run_records_its_choice_and_resumes_with_it(
    tiny, quick_config, monkeypatch
) -> None:
    fake_step(monkeypatch, 2e-3, 1e-3)
    config = quick_config.override({"train.precision": "auto", "train.epochs": 2})
    interrupted = train(config, dataset=tiny, on_epoch=lambda epoch: epoch.record["epoch"] == 1)
    saved = yaml.safe_load((interrupted.run_dir / "config.yaml").read_text())
    assert saved["train"]["precision"] == "bf16"  # what it trained in, not "auto"
    assert interrupted.summary["precision"]["asked"] == "auto"
    assert interrupted.summary["precision"]["chosen"] == "bf16"
    log = (interrupted.run_dir / "train.log").read_text()
    assert "precision auto: bf16 (a whole 32 x 64 step at 1 thread(s) measured 2.00x" in log
    fake_step(monkeypatch, 1e-3, 2e-3)  # the machine would now choose fp32: resume must not
    resumed = resume(interrupted.run_dir, dataset=tiny)
    assert len(resumed.history) == 2
    assert (
        yaml.safe_load((resumed.run_dir / "config.yaml").read_text())["train"]["precision"]
        == "bf16"
    )
    assert resumed.summary["precision"]["chosen"] == "bf16"
    assert Config().override({"train.precision": "auto"}).train.precision == "auto"


def test_every_rank_takes_rank_0s_choice(tiny, monkeypatch) -> None:
    fake_step(monkeypatch, 1e-3, 2e-3)  # this rank alone would choose fp32

    class Rank1:
        size = 2

        def broadcast(self, value):  # rank 0 measured bf16 faster
            return value | {"chosen": "bf16", "reason": "rank 0's"}

    config = Config().override({"train.precision": "auto"})
    resolved, record = resolve_precision(config, tiny, torch.device("cpu"), world=Rank1())
    assert resolved.train.precision == "bf16" and record["reason"] == "rank 0's"


def test_a_product_too_large_to_measure_is_one_line(monkeypatch) -> None:
    """--hidden 100000000: torch's allocation failure was 'internal error'."""
    from mlplab.errors import ConfigError

    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "1024")
    with pytest.raises(ConfigError) as refused:
        machine_module.gemm_rate((64, 64, 100_000_000), torch.float32, 1, 0.01)
    assert str(refused.value) == (
        "measuring the 64x64 @ 64x100000000 product (--batch-size, the first layer's inputs "
        "and --hidden) would need 95.4 GiB of memory, more than the 1.0 GiB mlplab allows one "
        "array (set by MLPLAB_MAX_ALLOC_MB)"
    )
