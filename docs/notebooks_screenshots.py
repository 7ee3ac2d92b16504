"""Redraw the screenshots of docs/notebooks.md: a real Jupyter kernel (nbclient + ipykernel)
trains the tutorial preset for 5 epochs on the real MNIST, then headless Chromium
(tests/browser.py) renders each cell's output as a notebook shows it.

    MLPLAB_DATA_DIR=/path/to/datasets python docs/notebooks_screenshots.py
"""

from __future__ import annotations

import html
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "tests"))
from browser import Browser, find_chromium  # noqa: E402

CELLS = [
    "from mlplab import Config, train\n"
    "result = train(Config.preset('tutorial').with_overrides({'train.epochs': 5, 'train.threads': 1}))",
    "result",
    "from mlplab import RunAnalysis\nRunAnalysis(result.run_dir)",
]
SHOTS = [("notebook-live.png", 370), ("notebook-card.png", 540), ("notebook-analysis.png", 810)]
PAGE = """<!doctype html><meta charset=utf-8><body style="margin:0;background:#fff">
<div style="display:flex;font:13px monospace;padding:10px 14px 4px">
<div style="color:#303f9f;width:70px;flex:none">In&nbsp;[{n}]:</div><pre style="margin:0;
background:#f5f5f5;padding:6px;flex:1;border:1px solid #e0e0e0">{code}</pre></div>
<div style="display:flex;padding:4px 14px 14px"><div style="width:70px;flex:none"></div>
<div style="flex:1">{out}</div></div>"""


def main() -> None:
    if not os.environ.get("MLPLAB_DATA_DIR"):
        sys.exit("set MLPLAB_DATA_DIR to the folder holding mnist/")
    os.environ.pop("MLPLAB_PROGRESS", None)  # the kernel inherits it: the live output wanted
    work = Path(tempfile.mkdtemp(prefix="mlplab-notebook-shots-"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    ).execute()
    for n, (cell, (name, height)) in enumerate(zip(nb.cells, SHOTS, strict=True), 1):
        (output,) = cell.outputs  # one output each, nothing streamed
        page = work / f"cell{n}.html"
        code = html.escape(cell.source)
        page.write_text(PAGE.format(n=n, code=code, out=output["data"]["text/html"]))
        with Browser(find_chromium(), width=900, height=height) as browser:
            browser.open(page.as_uri())
            browser.screenshot(DOCS / name, full_page=True)
        print(DOCS / name)


if __name__ == "__main__":
    main()
