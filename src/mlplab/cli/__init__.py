"""The ``mlplab`` command: a thin shell over the Python API.

- :mod:`.main`: :func:`main`, the entry point: parse, dispatch, errors -> one line and an
  exit code; :func:`entry`, the program (``main`` and exit);
- :mod:`.parser`: :func:`build_parser`, one ``add_<command>`` per command, the config flags
  generated from the config table;
- :mod:`.commands`: one ``cmd_<command>`` per command: arguments in, one API call, print.
"""

from .main import entry, main
from .parser import build_parser

__all__ = ["build_parser", "entry", "main"]
