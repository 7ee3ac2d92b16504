"""The config package: the tree moved to sections.py (being split into sections, rules, presets, parse)."""

from .sections import *  # noqa: F403
from .sections import MAX_CONFIG_BYTES, MAX_THREADS, OPTIMIZERS, SCHEDULERS, SECTIONS, describe, load_yaml, selection_score, yaml_problem  # noqa: F401
