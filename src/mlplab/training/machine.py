"""The machine a run trains on, measured: the CPU, the instructions its matrix products can
use, torch's fp32 and bf16 GEMM rates at the run's own shapes at 1 thread and at every usable
core, and what mlplab would choose from them (precision, threads), each with its reason.

The rates are measured, not looked up: the same pin of torch brings a 6x matrix engine to an
Intel Xeon with AMX and an emulated bf16 to a CPU without native bf16, and two threads can be
8x slower than one when OpenMP falls into its slow mode (a small step, a busy core). A
measurement takes about a second (:data:`SECONDS` per rate, four rates) and is cached per
machine, torch version and shape in ``<cache>/machine.json`` (the download cache,
``MLPLAB_CACHE_DIR``), so ``mlplab machine`` and a run's summary read it back for free.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ..data.sources.base import cache_dir
from ..errors import ConfigError, WriteError
from ..files.atomic import write_text_atomic
from ..files.limits import check_alloc
from ..progress import logger
from .threads import FLOPS_PER_THREAD, auto_threads

__all__ = [
    "BF16_HOLDS_ACCURACY",
    "BF16_PAYS",
    "FAR_SLOWER",
    "ISA",
    "SECONDS",
    "SLOW_WARNS",
    "STEP_PAYS",
    "Machine",
    "cached_machine",
    "cpu_field",
    "cpu_flags",
    "cpu_identity",
    "cpu_model",
    "describe_cpu",
    "device_identity",
    "measure_machine",
    "measure_step",
    "measured_slower",
    "native_bf16",
    "resolve_precision",
    "slow_bf16",
    "slow_threads",
    "summary_record",
    "usable_cores",
    "warn_if_slow",
]

# The instruction sets that decide how fast a matrix product runs: /proc/cpuinfo flag -> name.
ISA = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_bf16": "AVX512-BF16",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}
# bf16 is worth suggesting when its GEMM is at least this much faster than fp32 at the run's
# first layer on one thread (below it, autocast's casts eat the gain: docs/config.md).
BF16_PAYS = 1.5
SECONDS = 0.15  # measuring time per rate (after a warm-up product)
# train.precision=auto picks bf16 when a whole training step at the run's shapes and threads
# is at least this much faster in bf16 than in fp32 (docs/config.md, "The rule for auto").
STEP_PAYS = 1.10
STEP_SECONDS = 0.5  # measuring time of auto's step timing, both precisions together
# An explicit thread count is warned about when its product measures at least this much slower
# than one thread: the slow mode is 8-37x; a 0.05 s measurement of a healthy 2-thread product
# can read 1.2x slower on a quiet Intel AMX VM whose epochs run 1.3x faster at 2 threads.
SLOW_WARNS = 2.0
# Where bf16 is not native, auto's step timing stops after its early steps (one of warm-up,
# two timed, of each precision) when bf16's faster one takes this many times fp32's slower
# one (emulated bf16: 6-17x a whole step on the AVX2-only EPYC); an explicit bf16
# is warned about when its products measure this many times slower than fp32's
FAR_SLOWER = 3.0
# Whether bf16 autocast held accuracy on the tutorial recipe (seeds 0-2, validation split,
# the rule in docs/config.md): if it had not, auto would always choose fp32.
BF16_HOLDS_ACCURACY = True
CACHE_FILE = "machine.json"


@functools.cache
def _first_cpu() -> dict[str, str]:
    """The first CPU's fields in /proc/cpuinfo, read once a process (the file lists every
    core, and is long on a large host); empty where there is no such file."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if not line.strip():
                break  # the end of the first CPU's block
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_field(name: str) -> str | None:
    """One field of the first CPU in /proc/cpuinfo ("model name", "cpu family", "model",
    "flags"); None where there is no such file or field."""
    return _first_cpu().get(name)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module knows."""
    return cpu_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The first CPU's feature flags (Linux); empty elsewhere."""
    return set((cpu_field("flags") or "").split())


def cpu_identity(cpu: dict[str, Any]) -> str:
    """What the cached measurements are keyed by: the model name, the family and model
    numbers, the instruction sets that matter and torch's kernels. Hypervisors give one name
    to several generations ("AMD EPYC" to Zen 3 and Zen 4, "Intel(R) Xeon(R) Processor" to
    Xeons with and without AMX), so a cache shared between such machines (a home folder on a
    network disk) must not hand one kind's timings to another."""
    family, model = cpu_field("cpu family"), cpu_field("model")
    generation = f"{family}.{model}" if family and model else "?"
    return f"{cpu['model']}|{generation}|{'+'.join(cpu['isa'])}|{cpu['capability']}"


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16, from its flags;
    False where the flags cannot be read: callers then measure)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def usable_cores() -> int:
    """The cores this process may run on (its affinity, which a container or taskset sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def describe_cpu() -> dict[str, Any]:
    """What a run's summary records about the CPU without measuring anything."""
    flags = cpu_flags()
    return {
        "model": cpu_model(),
        "cores": usable_cores(),
        "isa": [name for flag, name in ISA.items() if flag in flags],
        "capability": torch.backends.cpu.get_cpu_capability(),
    }


@dataclass
class Machine:
    """The CPU, and torch's GEMM rates in GFLOP/s at ``shape`` = (batch, inputs, outputs)
    of the run's first layer: ``rates[dtype][threads]``."""

    model: str
    cores: int
    isa: list[str]
    capability: str
    torch: str
    shape: tuple[int, int, int]
    rates: dict[str, dict[int, float]]
    measured: str
    cached: bool = field(default=False, compare=False)

    @property
    def bf16_speedup(self) -> float:
        """bf16 GEMM rate over fp32's, one thread, the run's shape."""
        return self.rates["bf16"][1] / self.rates["fp32"][1]

    def precision(self) -> tuple[str, str]:
        """The precision mlplab would suggest for this shape, and why."""
        native = {"AVX512-BF16", "AMX-BF16"} & set(self.isa)
        ratio = self.bf16_speedup
        if ratio >= BF16_PAYS and native:
            return "bf16", (
                f"bf16 GEMM {ratio:.1f}x fp32 here ({', '.join(sorted(native))}): pass "
                "--precision bf16, or --precision auto to time a whole step first (fp32 stays "
                "the default; the fast and record presets ask for auto)"
            )
        why = "no native bf16" if not native else f"bf16 only {ratio:.1f}x fp32 at this shape"
        return "fp32", f"{why}: bf16 autocast would not pay"

    def threads(self, step_flops: float, busy: float = 0.0) -> tuple[int, str]:
        """The automatic thread count for a step of ``step_flops`` (training.threads'
        rule), and why; the measured rates say when more threads would be slower (from
        :data:`SLOW_WARNS` times slower: a smaller gap is a short measurement's noise)."""
        chosen = auto_threads(step_flops, self.cores, busy)
        most = max(self.rates["fp32"])
        if chosen == 1:
            why = f"a {step_flops / 1e6:.0f} MFLOP step is below {2 * FLOPS_PER_THREAD / 1e6:.0f}"
            why += " MFLOP (one thread per 25 MFLOP)"
            if most > 1 and measured_slower(self.rates["fp32"][most], self.rates["fp32"][1]):
                why += f"; {most} threads measured slower than 1 here"
            return 1, why
        measured = self.rates["fp32"].get(chosen)
        if measured is not None and measured_slower(measured, self.rates["fp32"][1]):
            return 1, (
                f"{chosen} threads measured {self.rates['fp32'][1] / measured:.1f}x slower than 1 "
                "here (OpenMP's slow mode, or busy cores), though the step's "
                f"{step_flops / 1e6:.0f} MFLOP would share"
            )
        return chosen, f"one thread per 25 MFLOP of a {step_flops / 1e6:.0f} MFLOP step"

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("cached")
        record["rates"] = {d: {str(t): r for t, r in v.items()} for d, v in self.rates.items()}
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Machine:
        rates = {d: {int(t): float(r) for t, r in v.items()} for d, v in record["rates"].items()}
        return cls(**{**record, "shape": tuple(record["shape"]), "rates": rates, "cached": True})


def gemm_rate(
    shape: tuple[int, int, int], dtype: torch.dtype, threads: int, seconds: float
) -> float:
    """GFLOP/s of ``(batch, inputs) @ (inputs, outputs)`` in ``dtype`` at ``threads``: the
    median of five slices of ``seconds / 5`` each after a warm-up product. Where the warm-up
    alone took all of ``seconds`` (bf16 emulated on a CPU without native bf16: 0.2-0.4 s a
    product at `best`'s first layer on an AVX2-only EPYC), that product's rate: the one-time
    costs a warm-up pays (packing, the thread pool, kernel generation: 10-20 ms) are lost
    in it, and five more products would take seconds."""
    batch, inputs, outputs = shape
    # float32 operands (drawn in float32 before the cast) and the product: a --hidden or
    # --batch-size of 10^8 is one line, not torch's allocation failure
    check_alloc(
        4 * 2 * (batch * inputs + inputs * outputs + batch * outputs),
        f"measuring the {batch}x{inputs} @ {inputs}x{outputs} product (--batch-size, the "
        "first layer's inputs and --hidden)",
        error=ConfigError,
    )
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(batch, inputs, generator=generator).to(dtype)
    b = torch.randn(inputs, outputs, generator=generator).to(dtype)
    with _threads(threads):
        start = time.perf_counter()
        a @ b  # warm-up: packing, the thread pool
        if (elapsed := time.perf_counter() - start) >= seconds:
            return 2 * batch * inputs * outputs / elapsed / 1e9
        rates = []
        for _ in range(5):
            count, start = 0, time.perf_counter()
            while True:  # one product at least, however slow
                a @ b
                count += 1
                if (elapsed := time.perf_counter() - start) >= seconds / 5:
                    break
            rates.append(2 * batch * inputs * outputs * count / elapsed / 1e9)
    return sorted(rates)[2]


def measure_machine(
    shape: tuple[int, int, int], refresh: bool = False, seconds: float = SECONDS
) -> Machine:
    """The machine's record for ``shape``: from the cache unless ``refresh`` (or none is
    cached for this CPU, core count, torch and shape), else measured and cached."""
    cpu = describe_cpu()
    key = _shape_key(cpu, shape)
    cache = _read_cache()
    if not refresh and key in cache:
        with contextlib.suppress(AttributeError, KeyError, TypeError, ValueError):
            return Machine.from_json(cache[key])
    counts = sorted({1, cpu["cores"]})
    rates = {
        name: {n: gemm_rate(shape, dtype, n, seconds) for n in counts}
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    machine = Machine(
        **cpu,
        torch=torch.__version__,
        shape=tuple(shape),
        rates=rates,
        measured=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    cache[key] = machine.to_json()
    with contextlib.suppress(
        OSError, WriteError
    ):  # a read-only cache costs a second next time, no more
        path = cache_dir() / CACHE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(cache, indent=1) + "\n")
    return machine


def cached_machine(shape: tuple[int, int, int]) -> Machine | None:
    """The cached record for this CPU, core count, torch and ``shape``; None when there is none
    (nothing is measured)."""
    record = _read_cache().get(_shape_key(describe_cpu(), shape))
    try:
        return Machine.from_json(record) if record else None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def summary_record(shape: tuple[int, int, int], step_flops: float) -> dict[str, Any]:
    """What a run's summary says about the machine: the CPU always; torch's GEMM rates and
    the choices they make when ``mlplab machine`` has measured this shape here (a run never
    spends a second measuring: ``rates`` is null until then)."""
    machine = cached_machine(shape)
    record: dict[str, Any] = describe_cpu() | {"shape": list(shape), "rates": None}
    if machine is None:
        return record | {"choice": "not measured: `mlplab machine` measures and caches it"}
    precision, why_precision = machine.precision()
    threads, why_threads = machine.threads(step_flops)
    return record | {
        "rates": machine.to_json()["rates"],
        "measured": machine.measured,
        "choice": {
            "precision": precision,
            "precision_reason": why_precision,
            "threads": threads,
            "threads_reason": why_threads,
        },
    }


def measured_slower(many: float, one: float) -> bool:
    """Whether a rate at more threads (``many``) is slower than one thread's (``one``) by
    :data:`SLOW_WARNS` or more: the one test of the warning and of the thread suggestion."""
    return many * SLOW_WARNS <= one


def slow_threads(threads: int, shape: tuple[int, int, int], seconds: float = 0.05) -> str | None:
    """One line when ``threads`` (> 1, asked for explicitly) runs this shape's product at least
    :data:`SLOW_WARNS` times slower than one thread here (OpenMP's slow mode: a small step, a
    busy core), else None."""
    if threads <= 1:
        return None
    one = gemm_rate(shape, torch.float32, 1, seconds)
    many = gemm_rate(shape, torch.float32, threads, seconds)
    if not measured_slower(many, one):
        return None
    return (
        f"--threads {threads}: this run's matrix products measured {one / many:.1f}x slower "
        f"at {threads} threads than at 1 on this machine (OpenMP's slow mode: a small step "
        "or a busy core); leave --threads out for the automatic choice, or try "
        "OMP_WAIT_POLICY=ACTIVE"
    )


def slow_bf16(shape: tuple[int, int, int], seconds: float = 0.05) -> str | None:
    """One line when this CPU has no native bf16 (AVX512-BF16, AMX-BF16) and a bf16 product
    of ``shape`` (at most 64 rows: the rate, not the batch, is what is measured) runs at
    least :data:`FAR_SLOWER` times slower than fp32's at 1 thread, else None. Measures only
    where bf16 is not native."""
    if native_bf16():
        return None
    small = (min(shape[0], 64), shape[1], shape[2])
    fp32 = gemm_rate(small, torch.float32, 1, seconds)
    bf16 = gemm_rate(small, torch.bfloat16, 1, seconds)
    if bf16 * FAR_SLOWER > fp32:
        return None
    return (
        f"--precision bf16: this run's matrix products measured {fp32 / bf16:.0f}x slower in "
        "bf16 than in fp32 on this CPU (no native bf16 such as AVX512-BF16 or AMX); "
        "--precision auto chooses the faster one here, or pass --precision fp32"
    )


def warn_if_slow(config: Any, data: Any, device: torch.device) -> None:
    """One warning for each setting asked for that runs this run's first layer much slower
    than the alternative here: ``train.threads`` above one when OpenMP's slow mode makes it
    slower than one thread (8x on an Intel VM, 30-50x beside a busy process), and
    ``train.precision: bf16`` where bf16 is emulated (its products 3-76x slower on the VMs
    measured). Measures only when such a
    setting is asked for (about 0.1 s; up to 0.4 s for bf16 on a CPU without it)."""
    from ..model.mlp import input_features

    if device.type != "cpu":
        return
    features = input_features(data.image_shape, config.model.crop)
    hidden = config.model.hidden
    first = hidden[0] if hidden else (1 if data.task == "regression" else len(data.classes))
    shape = (config.train.batch_size, features, first)
    threads = config.train.threads
    line = slow_threads(threads, shape) if threads > 1 else None
    if line:
        logger.warning(line)
    line = slow_bf16(shape) if config.train.precision == "bf16" else None
    if line:
        logger.warning(line)


def device_identity(device: torch.device) -> str:
    """The device a step timing was taken on: a GPU by its name and compute capability (the
    nodes of one cluster often share a CPU but not their GPUs), the CPU by its type alone
    (:func:`cpu_identity` is part of every key)."""
    if device.type != "cuda":
        return device.type
    major, minor = torch.cuda.get_device_capability(device)
    return f"cuda|{torch.cuda.get_device_name(device)}|{major}.{minor}"


def _key(cpu: dict[str, Any], what: str) -> str:
    """The cache key of a measurement of ``what`` (a shape, a step's spec) on this CPU kind,
    core count and torch."""
    return f"{cpu_identity(cpu)}|{cpu['cores']}|{torch.__version__}|{what}"


def _shape_key(cpu: dict[str, Any], shape: tuple[int, int, int]) -> str:
    return _key(cpu, "x".join(map(str, shape)))


def _read_cache() -> dict[str, Any]:
    try:
        cache = json.loads((cache_dir() / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# The input shape of the registered datasets, so `mlplab machine` needs no data to measure
# at a run's shapes; a dataset given as a path is measured at MNIST's (and says so).
SHAPES = {
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
    "usps": (1, 16, 16),
    "cifar10": (3, 32, 32),
    "digits": (1, 8, 8),
    "make-regression": (20,),
}


def run_shape(config: Any) -> tuple[tuple[int, int, int], int, str]:
    """(batch, inputs, outputs) of a config's first layer, its training step's FLOPs, and
    what the shape was taken from."""
    from ..model.mlp import input_features
    from .threads import step_flops

    name = config.data.dataset
    image = SHAPES.get(name, (1, 28, 28))
    source = name if name in SHAPES else f"{name}: not a registered dataset, MNIST's 28x28 assumed"
    inputs = input_features(image, config.model.crop)
    classes = 1 if name == "make-regression" else 10
    first = config.model.hidden[0] if config.model.hidden else classes
    batch = config.train.batch_size
    return (batch, inputs, first), step_flops(inputs, config.model.hidden, classes, batch), source


# ----- train.precision=auto: a whole training step, fp32 against bf16 ---------------------------
def measure_step(
    config: Any,
    image_shape: tuple[int, ...],
    outputs: int,
    device: torch.device,
    seconds: float = STEP_SECONDS,
    regression: bool = False,
) -> dict[str, float]:
    """Seconds of one whole training step (forward, loss, backward, the optimizer's update)
    of ``config``'s model, batch and optimizer on random inputs, in ``fp32`` and under
    ``bf16`` autocast, timed alternately at the current thread count: the medians, or, where
    bf16 is not native and its early steps are :data:`FAR_SLOWER`, the slowest fp32 and the
    fastest bf16 step. The caller's RNG state is left as it was."""
    from ..model.heads import loss_fn
    from ..model.mlp import MLP
    from .optim import make_optimizer
    from .session import aligns_once

    tc = config.train
    prepared = aligns_once(config)  # training aligns its images once, not in the step
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        model = MLP.from_config(config.model, image_shape, outputs).to(device).train()
        optimizer = make_optimizer(model.parameters(), tc, device)
        criterion = loss_fn(model.head, tc.loss if regression else None, tc.label_smoothing)
        x = torch.rand(tc.batch_size, *image_shape, device=device)
        if prepared:  # what the step sees
            x = model.prepare(x)
        y = (
            torch.randn(tc.batch_size, 1, device=device)
            if regression
            else torch.randint(0, outputs, (tc.batch_size,), device=device)
        )
        parameters = list(model.parameters())

        def steps(bf16: bool, count: int) -> float:
            start = time.perf_counter()
            for _ in range(count):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = criterion(model(x, prepared=prepared).float(), y)
                for p in parameters:
                    p.grad = None
                loss.backward()
                optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return (time.perf_counter() - start) / count

        # On a CPU without native bf16 (no AVX512-BF16 or AMX) its step is 5-40x fp32's and
        # the five slices below would take seconds: after one step of warm-up, two steps of
        # each decide when bf16's fastest is FAR_SLOWER times fp32's slowest (noise only adds
        # time, so the slowest fp32 and the fastest bf16 are the cautious reading). Where
        # bf16 is native, or on a GPU, the full timing always runs.
        if device.type == "cpu" and not native_bf16():
            steps(False, 1), steps(True, 1)
            pairs = [(steps(False, 1), steps(True, 1)) for _ in range(2)]
            fp32, bf16 = max(f for f, _ in pairs), min(b for _, b in pairs)
            if bf16 >= FAR_SLOWER * fp32:
                return {"fp32": fp32, "bf16": bf16}
        # warm-up (packing, the thread pool, autocast's kernels), then a count of steps that
        # fills a slice of ``seconds``: five slices of each precision, alternating
        first = max(steps(False, 2), steps(True, 2))
        count = max(1, int(seconds / 10 / max(first, 1e-6)))
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(5):
            times["fp32"].append(steps(False, count))
            times["bf16"].append(steps(True, count))
    return {name: sorted(values)[2] for name, values in times.items()}


def resolve_precision(
    config: Any, data: Any, device: torch.device, refresh: bool = False, world: Any = None
) -> tuple[Any, dict[str, Any] | None]:
    """``config`` with ``train.precision: auto`` replaced by the precision measured faster
    here (a whole step at the run's shapes and thread count; bf16 only at :data:`STEP_PAYS`
    or more), and the record of the choice for the run's summary; any other precision is
    returned as it is, with None. The step timing is cached like the machine's rates. With
    several ranks (``world``), every rank takes rank 0's record, so all train alike."""
    if config.train.precision != "auto":
        return config, None
    from ..model.mlp import input_features
    from .session import aligns_once

    regression = data.task == "regression"
    outputs = 1 if regression else len(data.classes)
    threads = torch.get_num_threads()
    cpu = describe_cpu()
    model = json.dumps(asdict(config.model), sort_keys=True, default=str)
    spec = (
        f"{device_identity(device)}|{tuple(data.image_shape)}|{model}|{outputs}|"
        f"{config.train.optimizer}|{config.train.batch_size}|{threads}"
        + ("|aligned once" if aligns_once(config) else "")
    )
    key = "step|" + _key(cpu, spec)
    cache = _read_cache()
    record = cache.get(key)
    cached = isinstance(record, dict) and not refresh
    if not cached or not {"fp32", "bf16", "measured"} <= set(record):  # type: ignore[arg-type]
        seconds = measure_step(config, data.image_shape, outputs, device, regression=regression)
        record = seconds | {"measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        cache[key] = record
        with contextlib.suppress(OSError, WriteError):  # read-only: measured again next time
            path = cache_dir() / CACHE_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps(cache, indent=1) + "\n")
        cached = False
    speedup = record["fp32"] / record["bf16"]  # type: ignore[index]
    features = input_features(data.image_shape, config.model.crop)
    step = f"{config.train.batch_size} x {features} step at {threads} thread(s)"
    if not BF16_HOLDS_ACCURACY:
        chosen, why = "fp32", "bf16 did not hold accuracy on the tutorial recipe (docs/config.md)"
    elif speedup >= STEP_PAYS:
        chosen, why = "bf16", f"a whole {step} measured {speedup:.2f}x faster in bf16"
    else:
        chosen = "fp32"
        why = f"bf16 only {speedup:.2f}x fp32 on a whole {step} (bf16 needs {STEP_PAYS:.2f}x)"
    choice = {
        "asked": "auto",
        "chosen": chosen,
        "reason": why,
        "step_ms": {"fp32": record["fp32"] * 1e3, "bf16": record["bf16"] * 1e3},  # type: ignore[index]
        "speedup": speedup,
        "threads": threads,
        "measured": record["measured"],  # type: ignore[index]
        "cached": cached,
    }
    if world is not None and world.size > 1:
        choice = world.broadcast(choice)  # type: ignore[assignment]
    return config.override(
        {"train.precision": choice["chosen"]}, source="train.precision=auto"
    ), choice
