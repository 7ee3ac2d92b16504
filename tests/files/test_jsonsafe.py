"""nan_to_null: what mlplab writes as JSON has no NaN or infinity, at any depth."""

from __future__ import annotations

import json
import math

from mlplab.files.jsonsafe import nan_to_null


def test_every_non_finite_float_becomes_null_at_any_depth() -> None:
    record = {"a": math.nan, "b": [1.5, math.inf, (-math.inf, 2)], "c": {"d": 0.25, "e": "x"}}
    safe = nan_to_null(record)
    assert safe == {"a": None, "b": [1.5, None, [None, 2]], "c": {"d": 0.25, "e": "x"}}
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe
