"""Optional extras: heavy dependencies imported only when a feature needs them.

``require("matplotlib", "report")`` imports and returns the module, or raises
:class:`MissingExtraError` naming the ``pip install 'mlplab[extra]'`` command.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

__all__ = ["MissingExtraError", "require"]


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import ``module`` or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        what = feature or f"mlplab's {extra} features"
        raise MissingExtraError(
            f"{what} need {module.split('.')[0]}, which is not installed; "
            f"install it with: pip install 'mlplab[{extra}]'"
        ) from None
