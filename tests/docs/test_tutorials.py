"""The tutorials (docs/tutorials/*.ipynb) run end to end in a real Jupyter kernel.

Each notebook runs with nbclient in a kernel of this interpreter (ipykernel in the project's
environment), in the test's empty folder (runs are written there, never into the repository),
with ``MLPLAB_TUTORIAL_SMALL=1`` (seconds per notebook), ``MLPLAB_PROGRESS=0`` and one torch
thread. ``MLPLAB_TUTORIALS=full`` runs them as a reader would instead: the real presets,
minutes each. A notebook that needs MNIST skips with the reason when the real files are absent.

The stored notebooks must be clean (no outputs, no execution counts) and exactly what
``docs/tutorials/build.py`` writes, so the two never drift apart.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest
from kernels import own_kernel

TUTORIALS = Path(__file__).resolve().parents[2] / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
NO_MNIST = {"04-your-own-data"}  # writes its own data
FULL = os.environ.get("MLPLAB_TUTORIALS") == "full"
CELL_TIMEOUT = None if FULL else 120  # seconds per cell (small mode takes a few)
NOTEBOOK_BOUND = 180  # seconds for a whole small notebook; each takes 8-25 s on 2 busy cores


def test_there_are_tutorials() -> None:
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: cell {cell['id']} has outputs"
            assert cell["execution_count"] is None, f"{path.name}: cell {cell['id']} was run"
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith("# ") and "**Time**" in first, "first cell: what it teaches, how long"
    assert any("SMALL" in "".join(c["source"]) for c in nb["cells"][1:3]), "a parameters cell"


def test_notebooks_are_what_build_writes() -> None:
    pytest.importorskip("nbformat", reason="nbformat not installed (pip install -e '.[dev]')")
    spec = importlib.util.spec_from_file_location("tutorials_build", TUTORIALS / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert sorted(build.NOTEBOOKS) == [p.stem for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        assert path.read_text(encoding="utf-8") == build.render(path.stem), (
            f"{path.name} differs from docs/tutorials/build.py: run python docs/tutorials/build.py"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tutorial_runs(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    why = "nbclient, nbformat and ipykernel run the tutorials: pip install -e '.[dev]'"
    nbclient = pytest.importorskip("nbclient", reason=why)
    nbformat = pytest.importorskip("nbformat", reason=why)
    pytest.importorskip("ipykernel", reason=why)
    if path.stem not in NO_MNIST:
        monkeypatch.setenv("MLPLAB_DATA_DIR", str(request.getfixturevalue("mnist_dir")))
    if not FULL:
        monkeypatch.setenv("MLPLAB_TUTORIAL_SMALL", "1")
    monkeypatch.setenv("MLPLAB_PROGRESS", "0")
    monkeypatch.setenv("MLPLAB_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torch in the kernel: one thread
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # the kernel is this interpreter (its environment has mlplab), whatever python3 kernel the
    # user's Jupyter folders hold
    kernel = own_kernel(tmp_path, monkeypatch)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working folder
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell and the traceback
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f} s")
    assert any((tmp_path / "runs").iterdir()), "the notebook's runs are written in its folder"
    if not FULL:
        assert seconds < NOTEBOOK_BOUND, f"{path.name} took {seconds:.0f} s in small mode"
