"""The typed config tree: defaults, the YAML round trip, the table as docs/config.md shows it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mlplab import PRESETS, Config
from mlplab.config import SECTIONS, describe


def test_defaults_round_trip_through_yaml(tmp_path: Path) -> None:
    config = Config.preset("tutorial").override({"model.dropout": 0.25, "data.limit": 100})
    config.save(tmp_path / "c.yaml")
    again = Config.load(tmp_path / "c.yaml")
    assert again == config
    assert again.to_yaml() == config.to_yaml()


def test_docs_list_every_key_with_its_default() -> None:
    """docs/config.md's table is the validation table: it must not drift from the code."""
    from mlplab.config import describe

    text = (Path(__file__).parents[2] / "docs" / "config.md").read_text()
    for k in describe():
        assert f"| `{k.key}` | `{k.default}` | {k.help} |" in text, k.key


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips_to_an_identical_object(name: str, tmp_path: Path) -> None:
    config = Config.preset(name)
    config.save(tmp_path / "c.yaml")
    assert Config.load(tmp_path / "c.yaml") == config
    assert Config.from_dict(config.to_dict()) == config


def test_every_key_has_a_meaning_and_its_default() -> None:
    keys = describe()
    assert keys[0].key == "data.dataset"
    assert {k.key.split(".")[0] for k in keys} == set(SECTIONS)
    config = Config()
    for k in keys:
        section, name = k.key.split(".")
        assert k.help and getattr(getattr(config, section), name) == k.default, k.key
    lists = {k.key: k.default for k in keys if isinstance(k.default, list)}
    assert lists == {"model.hidden": [250, 100], "model.tta": []}
    Config().model.hidden.append(1)  # a list default is each config's own
    assert Config().model.hidden == [250, 100]


def test_task_and_summary() -> None:
    assert Config().task == "classification"
    assert Config().override({"data.target": "y", "data.dataset": "t.csv"}).task == "regression"
    assert Config().override({"model.task": "regression"}).task == "regression"
    lines = Config().summary().splitlines()
    assert [line.split(":")[0] for line in lines] == list(SECTIONS)
    assert "epochs=10" in lines[3] and "hidden=[250, 100]" in lines[2]


def test_the_summary_leaves_out_the_keys_of_the_other_task() -> None:
    """Each key's field says which task uses it (none: both); the summary shows a config's
    keys for its task, so a classifier's first line no longer reads loss=mse."""
    tasks = {
        f"{name}.{f.name}": f.metadata["task"]
        for name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
        if "task" in f.metadata
    }
    assert tasks == {
        "data.target": "regression",
        "model.head": "classification",
        "model.tta": "classification",
        "train.label_smoothing": "classification",
        "train.loss": "regression",
        "train.accept": "classification",
    }
    shown = {
        task: {pair.split("=")[0] for pair in Config().summary(task).split() if "=" in pair}
        for task in (None, "classification", "regression")
    }
    assert shown[None] == shown["classification"]  # Config().task
    assert {"loss", "target"} & shown["classification"] == set()
    assert {"head", "tta", "label_smoothing", "accept"} & shown["regression"] == set()
    assert {"loss", "target"} < shown["regression"] and "head" in shown["classification"]
    regression = Config().override({"data.target": "y", "data.dataset": "t.csv"})
    assert "loss=mse" in regression.summary() and "head=" not in regression.summary()


def test_the_config_package_imports_only_errors_vocab_and_files() -> None:
    """Config sits low: it takes its choice lists from vocab, not from the packages above it
    (the data checks name the Dataset type only for the type checker)."""
    import ast
    import sys

    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "benchmarks"))
    from code_shape import top_level_imports

    allowed = ("mlplab.errors", "mlplab.vocab", "mlplab.files", "mlplab.config")
    for path in sorted((root / "src" / "mlplab" / "config").glob("*.py")):
        name = f"mlplab.config.{path.stem}"
        tree = ast.parse(path.read_text())
        imported = top_level_imports(tree, name, path.name == "__init__.py", deferred=True)
        ours = {m for m in imported if m.startswith("mlplab.")}
        assert all(m.startswith(allowed) for m in ours), (path.name, sorted(ours))
