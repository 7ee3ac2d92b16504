"""The configuration of a training run: one typed tree, validated once, saved with the run.

- :mod:`.sections`: the dataclass tree (:class:`Config` and its sections), every default
  with its meaning and unit, and each key's row of the validation table;
- :mod:`.rules`: the checks: the table's, the cross-key ones, and those against the data;
- :mod:`.presets`: the named recipes of the classic tutorials;
- :mod:`.parse`: YAML files, ``section.key`` overrides and ``--set key=value`` strings.

The choice lists the table validates against live in :mod:`mlplab.vocab`.
"""

from ..vocab import OPTIMIZERS, SCHEDULERS
from .parse import MAX_CONFIG_BYTES, dump_yaml, load_yaml, read_yaml, yaml_problem
from .presets import PRESETS
from .rules import check_against_data, check_tta
from .sections import (
    MAX_THREADS,
    SECTIONS,
    AugmentConfig,
    Config,
    DataConfig,
    Key,
    ModelConfig,
    RunConfig,
    TrainConfig,
    describe,
    selection_score,
)

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_THREADS",
    "OPTIMIZERS",
    "PRESETS",
    "SCHEDULERS",
    "SECTIONS",
    "AugmentConfig",
    "Config",
    "DataConfig",
    "Key",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "check_against_data",
    "check_tta",
    "describe",
    "dump_yaml",
    "load_yaml",
    "read_yaml",
    "selection_score",
    "yaml_problem",
]
