"""``python -m mlplab``: the same as the ``mlplab`` command."""

from .cli import entry

entry()
