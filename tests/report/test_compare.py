"""Comparing runs: the table, the weight statistics side by side, the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import make_images, quick

from mlplab import train
from mlplab.analysis import layer_weights
from mlplab.errors import ConfigError
from mlplab.report.compare import compare, compare_runs
from mlplab.tables import format_table


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two runs of different depth on the same (in-memory) data: compare needs no data."""
    root = tmp_path_factory.mktemp("compare")
    data = make_images(classes=3, channels=3, height=4, width=6)
    return [
        train(quick(root, **{"model.hidden": hidden, "run.name": name}), dataset=data).run_dir
        for name, hidden in (("small", [8]), ("deep", [16, 8]))
    ]


def test_compare_rows_and_weight_statistics(two_runs: list[Path]) -> None:
    c = compare_runs(two_runs)
    assert c.names == tuple(p.name for p in two_runs)
    small, deep = c.rows
    assert small["model"] == "72-8-3 relu" and deep["model"] == "72-16-8-3 relu"
    assert small["parameters"] == 72 * 8 + 8 + 8 * 3 + 3
    assert [len(v) for v in c.weights.values()] == [2, 3]
    from mlplab import Run

    model, _, _ = Run.open(two_runs[1]).load_model()
    expected = layer_weights(model)
    assert [w.l2 for w in c.weights[c.names[1]]] == [w.l2 for w in expected]

    table = c.table().splitlines()
    assert table[0].split()[:3] == ["run", "dataset", "model"] and len(table) == 3
    header, rows = c.weight_statistics()
    assert header == ["layer", *c.names]
    assert rows[0] == ["layer 1", "hidden.0 8x72", "hidden.0 16x72"]
    assert rows[-6] == ["layer 3", "-", "output 3x8"]  # the small run has 2 layers
    assert f"{expected[0].l2:.3f}" in c.weight_table()
    # one table formatter for the whole package: text left, numbers right
    assert c.table() + "\n" == format_table(*c.results())
    assert c.weight_table() + "\n" == format_table(*c.weight_statistics())
    header, first = c.table().splitlines()[:2]
    params = f"{small['parameters']:,}"
    assert header.index("params") + len("params") == first.index(params) + len(params)  # right
    assert first.index("shapes") == header.index("dataset")  # text starts under its header


def test_compare_page(two_runs: list[Path], tmp_path: Path) -> None:
    path = compare(two_runs, tmp_path / "out")
    assert path == tmp_path / "out" / "compare.html"
    html = path.read_text()
    assert html.count("data:image/png;base64,") == 2 and "Results" in html and "L2" in html
    for name in ("compare-curves", "compare-weights"):
        assert (tmp_path / "out" / "figures" / f"{name}.png").is_file()


def test_compare_needs_a_run() -> None:
    with pytest.raises(ConfigError, match="at least one run directory"):
        compare_runs([])


def test_the_model_column_says_when_a_model_aligns_its_inputs(tmp_path: Path) -> None:
    data = make_images(classes=3, channels=1, height=6, width=6)
    config = quick(tmp_path, **{"model.hidden": [8], "model.deskew": True, "model.center": True,
                                "model.tta": ["flip"]})  # fmt: skip
    run = train(config, dataset=data).run_dir
    assert compare_runs([run]).rows[0]["model"] == "36-8-3 relu deskew center tta flip"
