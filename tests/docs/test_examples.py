"""Every fenced block of README.md and docs/*.md runs as written (issue 24, item 1).

Shell and console blocks run against a tiny world built once per session: MNIST and
Fashion-MNIST stand-ins (scikit-learn's 8x8 digits drawn at MNIST's 28x28, written as the
four IDX files each, so ``mlplab train --preset tutorial`` runs unchanged in a second) and
one tutorial run, copied wherever a block names a run that does not exist yet. The blocks
of one page run in order in one folder, as a reader following the page would; ``mlplab``
commands run in this process (``mlplab.cli.main``: the same code, without a second of
imports each), Python blocks in a fresh interpreter. A command passes when it exits as the
page shows (0, or non-zero under a shown ``mlplab: error``) and every line it shows still
appears, numbers, paths and spacing aside. Markers (``<!-- doc: ... -->``, see
docs/architecture.md, "Writing docs") skip a block with its reason, bound a long one, or
mark it as failing today.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from doc_blocks import DOCS, MARKER_KEYS, ROOT, Block, argv, missing_lines, read_blocks
from shipping import digit_font, drawn_digit
from standins import trust_stand_ins, write_idx_stand_in

BLOCKS = [block for path in DOCS for block in read_blocks(path)]
RUNNABLE = [block for block in BLOCKS if block.kind != "text"]
# Commands long enough that a `bound` marker's flags are appended to them.
LONG = re.compile(r"^(mlplab|python -m mlplab) (train|demo|lr-find|report|sweep(?! report))\b")
STAMPED = re.compile(r"(?P<path>(?:[\w.~-]+/)*?(?P<dir>[\w.~-]+)/\d{8}-\d{6}-(?P<name>[\w-]+))")
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PYTHON_TIMEOUT = 300  # s: a hang guard; a Python block trains seconds on the tiny world
SERVE_TIMEOUT = 90  # s: `mlplab serve` loads its model and says so within seconds
DOCS_PORT = re.compile(r"(?<=localhost:)8000\b|(?<=127\.0\.0\.1:)8000\b|(?<=--port )8000\b")
STARTED = "Application startup complete"


# --- the world: tiny stand-ins for the datasets, one trained run -----------------------------


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-in datasets and one tutorial run (2 epochs on the stand-in MNIST)."""
    from mlplab import Config, load_dataset, train
    from mlplab.data.sources.idx import FASHION_MNIST_SOURCE, MNIST_SOURCE

    root = tmp_path_factory.mktemp("world")
    write_idx_stand_in(root / "data" / "mnist", 900, 300, seed=0)
    write_idx_stand_in(root / "data" / "fashion-mnist", 600, 200, seed=1)
    trust_stand_ins(root / "data", root / "cache", [MNIST_SOURCE, FASHION_MNIST_SOURCE])
    with _environment(root / "data", root / "cache"):
        config = Config.preset("tutorial").override(
            {"train.epochs": 2, "run.dir": str(root / "runs")}
        )
        train(config, dataset=load_dataset("mnist", root / "data", download=False))
    return root


@contextlib.contextmanager
def _environment(data_dir: Path, cache: Path) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(
        MLPLAB_DATA_DIR=str(data_dir),
        MLPLAB_CACHE_DIR=str(cache),
        MLPLAB_PROGRESS="0",
        MLPLAB_THREADS="1",
        BROWSER="true",  # `--open` opens nothing here
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def pages(world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    """One folder per page, holding every ``file=`` block of every page."""
    files = {b.marker["file"]: b.text for b in BLOCKS if "file" in b.marker}
    folders = {}
    for path in DOCS:
        folder = tmp_path_factory.mktemp(path.stem)
        for name, text in files.items():
            (folder / name).write_text(text)
        folders[path] = folder
    return folders


# --- servers: `mlplab serve` in a process of its own, stopped once it has started -----------


def _start_server(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], list[str], bool]:
    """``python -m mlplab ARGS`` and its output lines so far; True once uvicorn has started
    (False: it exited first, or did not start within SERVE_TIMEOUT)."""
    script = Path(sys.executable).parent / "mlplab"  # as a reader starts it (ps shows that)
    program = (
        [sys.executable, str(script)] if script.is_file() else [sys.executable, "-m", "mlplab"]
    )
    proc = subprocess.Popen(
        [*program, *args], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**os.environ, "MLPLAB_THREADS": "1"},
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if any(STARTED in line for line in lines):
            return proc, lines, True
        time.sleep(0.05)
    reader.join(5)
    return proc, lines, False


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # as Ctrl-C: uvicorn shuts down cleanly
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


SERVER: dict[str, object] = {}  # the pages' server on "port 8000", started when first named


@pytest.fixture(scope="session", autouse=True)
def _stop_the_pages_server() -> Iterator[None]:
    yield
    if "proc" in SERVER:
        _stop(SERVER["proc"])  # type: ignore[arg-type]


def _docs_port(world: Path) -> int:
    """The port the pages' 8000 stands for: a free one, where the world's run is served
    (``mlplab serve``, as a reader would have it running) from the first command naming it."""
    if "port" not in SERVER:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        run = next((world / "runs").iterdir())
        proc, lines, started = _start_server(["serve", str(run), "--port", str(port)], world)
        if not started:
            _stop(proc)
            raise AssertionError("the pages' server did not start:\n" + "".join(lines))
        SERVER.update(port=port, proc=proc)
    return SERVER["port"]  # type: ignore[return-value]


def _run_serve(words: list[str], folder: Path) -> tuple[int, str]:
    """``mlplab serve ...``: 0 and its output once it has started (then stopped, as with
    Ctrl-C), or its exit code and output when it stops before; port 0 unless it names one."""
    args = words[1:] if "--port" in words else [*words[1:], "--port", "0"]
    proc, lines, started = _start_server(args, folder)
    _stop(proc)
    code = 0 if started else proc.returncode
    if code is None:
        code = 124  # neither started nor exited: as `timeout` says
    return code, "".join(lines)


# --- running one command ---------------------------------------------------------------------


def _prepare(command: str, folder: Path, world: Path) -> str:
    """The command with placeholders filled, /tmp moved into the page's folder, and every
    run it names present (an earlier block's run of that name, or a copy of the world's)."""
    command = re.sub(r"\bRUN(_[AB])?\b|runs/<\w+>", "runs/20000101-000000-tutorial", command)
    command = command.replace("/tmp/", f"{folder}/tmp/")
    if DOCS_PORT.search(command):
        command = DOCS_PORT.sub(str(_docs_port(world)), command)
    for match in STAMPED.finditer(command):
        path = folder / match["path"] if not match["path"].startswith("/") else Path(match["path"])
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        made = sorted(path.parent.glob(f"*-{match['name']}"), key=lambda p: p.stat().st_mtime)
        if made:
            path.symlink_to(made[-1].resolve())
        elif match["dir"] == "sweeps":
            raise AssertionError(f"{match['path']}: no earlier block of this page made a sweep")
        else:
            shutil.copytree(next((world / "runs").iterdir()), path)
    return command


def _draw_inputs(words: list[str], folder: Path) -> None:
    """Image files a ``predict`` (or a ``curl -F file=@...``) names and nobody made: a digit if
    the name says one (seven.jpg), a face if it says so (face.png), blank paper otherwise."""
    if words[:2] == ["mlplab", "predict"]:
        named = [w for b, w in itertools.pairwise(words[2:]) if not b.startswith("-")]
    elif words[0] == "curl":
        named = [w.partition("=@")[2] for w in words if w.startswith("file=@")]
    else:
        return
    for word in named:
        path = folder / word
        if path.exists() or Path(word).suffix not in (".jpg", ".png"):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        _drawing(Path(word).stem).save(path)


def _drawing(stem: str) -> object:
    from PIL import Image, ImageDraw

    if stem in DIGITS:
        font, _ = digit_font(200)
        return drawn_digit(DIGITS.index(stem), font)
    image = Image.new("RGB", (360, 300), (238, 232, 215))
    if stem == "face":  # a smiley: a circle, two eyes, a mouth
        draw, ink = ImageDraw.Draw(image), (25, 25, 60)
        draw.ellipse((80, 50, 280, 250), outline=ink, width=12)
        draw.ellipse((135, 105, 160, 130), fill=ink)
        draw.ellipse((200, 105, 225, 130), fill=ink)
        draw.arc((125, 130, 235, 215), 20, 160, fill=ink, width=12)
    return image


def _run_mlplab(args: list[str]) -> tuple[int, str]:
    from mlplab.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue()


def run_command(command: str, folder: Path, world: Path, bound: str = "") -> tuple[int, str]:
    """Run one command of a page in its folder; (exit code, stdout and stderr together)."""
    if bound and LONG.match(command.strip()):
        command = command.split("  #")[0].rstrip() + " " + bound
    command = _prepare(command, folder, world)
    env, words, target = argv(command)
    _draw_inputs(words, folder)
    if words[:3] == ["python", "-m", "mlplab"]:
        words = ["mlplab", *words[3:]]
    if words[:2] == ["mlplab", "serve"]:
        code, output = _run_serve(words, folder)
    elif words[0] == "mlplab" and not env:
        code, output = _run_mlplab(words[1:])
    elif words[0] == "torchrun":  # as the `torchrun` script does, with this interpreter
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", *words[1:]], cwd=folder,
            capture_output=True, text=True, env={**os.environ, **env}, timeout=PYTHON_TIMEOUT,
        )  # fmt: skip
        code, output = proc.returncode, proc.stdout + proc.stderr
    elif words[0] == "curl":
        proc = subprocess.run(words, cwd=folder, capture_output=True, text=True, timeout=60)
        code, output = proc.returncode, proc.stdout + proc.stderr
    elif words[0] == "python":
        proc = subprocess.run(
            [sys.executable, *words[1:]], cwd=folder, capture_output=True, text=True,
            env={**os.environ, **env}, timeout=PYTHON_TIMEOUT,
        )  # fmt: skip
        code, output = proc.returncode, proc.stdout + proc.stderr
    else:
        raise AssertionError(
            f'cannot run {words[0]!r} here: mark the block <!-- doc: skip="why" -->'
        )
    if target:
        (folder / target).write_text(output)
    return code, output


def run_setup(block: Block, folder: Path) -> None:
    """The block's ``setup`` line, in bash in the page's folder: files the block assumes
    (``python -m sample_files NAME``: tests/docs/sample_files.py)."""
    if "setup" not in block.marker:
        return
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run(  # with this interpreter's `python` and `mlplab` first on PATH
        ["bash", "-c", block.marker["setup"]], cwd=folder, check=True,
        env={**os.environ, "PATH": path, "PYTHONPATH": f"{Path(__file__).parent}{os.pathsep}{ROOT / 'tests'}",
             "MLPLAB_THREADS": "1"},
    )  # fmt: skip


def check_block(block: Block, folder: Path, world: Path) -> None:
    """Run a shell/console block's commands in order; fail naming the first that breaks."""
    for command in block.commands():
        code, output = run_command(command.line, folder, world, block.marker.get("bound", ""))
        said = f"{block.name}: `{command.line}` exited {code}; its output:\n{output}"
        if command.expects_error:
            assert code != 0, said
        else:
            assert code == 0, said
        if block.marker.get("output") != "unchecked":
            missing = missing_lines(command.shown, output)
            assert not missing, f"{block.name}: `{command.line}`: lines not in the output:\n" + (
                "\n".join(missing) + f"\n--- output:\n{output}"
            )


def check_python(block: Block, folder: Path) -> None:
    script = folder / f"block_{block.line}.py"
    script.write_text(block.text)
    proc = subprocess.run(
        [sys.executable, script.name], cwd=folder, capture_output=True, text=True,
        timeout=PYTHON_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, f"{block.name} exited {proc.returncode}:\n{proc.stderr[-3000:]}"


def _case(block: Block) -> object:
    """A block as a test case: skipped at collection where its page's marker says why."""
    if "skip" not in block.marker:
        return pytest.param(block, id=block.name)
    why = pytest.mark.skip(reason=f"the page's marker says why: {block.marker['skip']}")
    return pytest.param(block, id=block.name, marks=why)


@pytest.mark.parametrize("block", [_case(block) for block in RUNNABLE])
def test_block_runs_as_written(
    block: Block, world: Path, pages: dict[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = pages[block.path]
    monkeypatch.chdir(folder)
    for key, value in {
        "MLPLAB_DATA_DIR": str(world / "data"),
        "MLPLAB_CACHE_DIR": str(world / "cache"),
        "BROWSER": "true",
    }.items():
        monkeypatch.setenv(key, value)
    try:
        run_setup(block, folder)
        if block.kind == "python":
            check_python(block, folder)
        else:
            check_block(block, folder, world)
    except AssertionError:
        if "xfail" in block.marker:
            pytest.xfail(block.marker["xfail"])
        raise
    if "xfail" in block.marker:
        pytest.fail(f"{block.name} passes now: remove its xfail marker ({block.marker['xfail']})")


def test_every_marker_is_known_and_every_skip_says_why() -> None:
    for block in BLOCKS:
        for key in ("skip", "xfail"):
            if key in block.marker:
                assert block.marker[key].strip(), f"{block.name}: {key} needs a reason"
        assert set(block.marker) <= set(MARKER_KEYS), block.name


def test_the_harness_sees_every_kind() -> None:
    kinds = {block.kind for block in BLOCKS}
    assert {"python", "console", "shell", "text"} <= kinds
    assert len(RUNNABLE) > 40  # the README and docs hold dozens: a parser bug would drop them
    assert ROOT / "README.md" in {block.path for block in RUNNABLE}
