"""JSON has no NaN or infinity, and its readers reject them: what mlplab writes as JSON
(analysis.json, robustness.json) goes through :func:`nan_to_null` first."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["nan_to_null"]


def nan_to_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float, at any depth of dicts, lists and tuples,
    replaced by None (a diverged run's loss, an accuracy on no accepted inputs)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: nan_to_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nan_to_null(v) for v in value]
    return value
