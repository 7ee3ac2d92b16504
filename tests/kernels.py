"""A Jupyter kernel of this interpreter for the tests that run notebooks (nbclient).

"python3" names whatever kernel the user's Jupyter folders hold first (often another
environment, without mlplab), so these tests write a kernel spec of their own and put it
first on ``JUPYTER_PATH``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NAME = "mlplab-test"


def own_kernel(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Write the spec of a kernel running ``sys.executable`` under ``folder``; its name."""
    spec = folder / "jupyter" / "kernels" / NAME
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(folder / "jupyter"))
    return NAME
