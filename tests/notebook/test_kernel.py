"""In a real Jupyter kernel (nbclient + ipykernel): train() is detected and shows one output,
updated in place, with nothing printed line by line; a TrainResult shows its card.

Skips with the reason when nbclient, nbformat or ipykernel is not installed.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

MISSING = [m for m in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"a real kernel needs {', '.join(MISSING)} (pip install nbclient ipykernel)",
)
TESTS = Path(__file__).resolve().parents[1]

SETUP = f"""
import os, sys
os.environ.pop("MLPLAB_PROGRESS", None)  # the test's conftest set 0, as CI does
sys.path.insert(0, {str(TESTS)!r})
from conftest import make_dataset
from mlplab import Config, train
config = Config().override({{"model.hidden": [16], "train.epochs": 3, "train.batch_size": 32,
    "train.lr": 0.01, "train.threads": 1, "run.dir": "runs", "run.name": "kernel"}})
data = make_dataset()
"""


def test_train_in_a_real_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from kernels import own_kernel
    from nbclient import NotebookClient

    cells = [SETUP, "result = train(config, dataset=data)", "result"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=60,
        kernel_name=own_kernel(tmp_path, monkeypatch),  # this interpreter
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    assert time.perf_counter() - start < 60  # ~10 s on 2 cores; the bound is for a slow CI
    assert nb.cells[0].outputs == []  # importing mlplab says nothing (tqdm's IProgress note)
    live = nb.cells[1].outputs
    assert [o["output_type"] for o in live] == ["display_data"]  # one output, no stream
    shown = live[0]["data"]["text/html"]
    assert "done: epoch 3/3" in shown and shown.count("<svg") == 2  # updated in place to the end
    assert "epoch 3/3  train loss" in live[0]["data"]["text/plain"]
    card = nb.cells[2].outputs[0]["data"]["text/html"]
    assert "test accuracy" in card and "kernel" in card
