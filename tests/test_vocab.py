"""mlplab.vocab is a leaf, and every registry that maps a name to code names exactly its list."""

from __future__ import annotations

import ast
from pathlib import Path

from mlplab import vocab

VOCAB = Path(vocab.__file__)


def _imported_modules(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def test_vocab_imports_nothing_from_mlplab() -> None:
    imported = _imported_modules(ast.parse(VOCAB.read_text()))
    assert [m for m in imported if m.startswith((".", "mlplab"))] == []


def test_the_leaf_check_can_fail() -> None:
    tree = ast.parse("from .errors import ConfigError\nimport mlplab.data\nimport os\n")
    assert _imported_modules(tree) == [".errors", "mlplab.data", "os"]


def test_every_list_is_a_tuple_of_distinct_names() -> None:
    for name in vocab.__all__:
        names = getattr(vocab, name)
        assert isinstance(names, tuple) and len(set(names)) == len(names) > 0, name
        assert all(isinstance(n, str) and n for n in names), name


def test_the_registries_name_exactly_the_vocabulary() -> None:
    from mlplab.data.formats import FORMATS
    from mlplab.data.raw import PIXEL_SCALES
    from mlplab.data.sources import DATASETS
    from mlplab.model import mlp, views
    from mlplab.training.augment import Augmentation
    from mlplab.training.optim import OPTIMIZERS, SCHEDULES

    assert tuple(mlp._ACTIVATIONS) == vocab.ACTIVATIONS
    assert tuple(views._VIEW_COUNTS) == vocab.TTA_VIEWS
    assert (mlp.ACTIVATIONS, mlp.HEADS, mlp.INITS, mlp.TTA_VIEWS) == (
        vocab.ACTIVATIONS,
        vocab.HEADS,
        vocab.INITS,
        vocab.TTA_VIEWS,
    )
    assert tuple(OPTIMIZERS) == vocab.OPTIMIZERS
    assert tuple(SCHEDULES) == vocab.SCHEDULERS
    assert ("auto", *FORMATS) == vocab.FORMATS
    assert PIXEL_SCALES == vocab.PIXEL_SCALES
    assert tuple(DATASETS) == vocab.DATASETS
    assert Augmentation.SWITCHES == vocab.AUGMENTATIONS


def test_the_config_validates_against_the_vocabulary() -> None:
    from mlplab.config import describe

    choices = {key.key: key.choices for key in describe() if key.choices is not None}
    assert choices == {
        "data.format": vocab.FORMATS,
        "data.pixel_scale": vocab.PIXEL_SCALES,
        "data.normalize": vocab.NORMALIZATIONS,
        "model.task": vocab.TASKS,
        "model.activation": vocab.ACTIVATIONS,
        "model.head": vocab.HEADS,
        "model.init": vocab.INITS,
        "model.tta": vocab.TTA_VIEWS,
        "train.optimizer": vocab.OPTIMIZERS,
        "train.loss": vocab.REGRESSION_LOSSES,
        "train.scheduler": vocab.SCHEDULERS,
        "train.precision": vocab.PRECISIONS,
        "train.select": vocab.SELECTIONS,
        "track.to": vocab.TRACKERS,
    }
