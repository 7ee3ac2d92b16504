"""Optional dependencies: import them late, and say which extra to install when one is missing.

The heavy features (the report's figures, ONNX export, the web server, sweeps) live in
extras so that ``pip install mlplab`` stays small; ``require("onnxruntime", "export")``
imports the module or raises :class:`~mlplab.errors.MissingExtraError` naming the install
command.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

__all__ = ["MissingExtraError", "require"]


def require(module: str | tuple[str, ...], extra: str, feature: str | None = None) -> ModuleType:
    """Import ``module`` (or the first of several alternative names that imports), or raise
    MissingExtraError naming ``pip install 'mlplab[extra]'``."""
    names = (module,) if isinstance(module, str) else module
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    what = feature or f"the '{extra}' feature"
    raise MissingExtraError(
        f"{what} needs the Python package '{names[0].split('.')[0].replace('_', '-')}', which is "
        f"not installed; install it with: pip install 'mlplab[{extra}]'"
    ) from None
