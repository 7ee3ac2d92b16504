"""Tables of text cells in three styles: aligned text (the terminal), Markdown and CSV.

One function, so the runs table, a sweep's trials table and an ablation table print,
save and diff the same way. Cells are strings already formatted by the caller; numbers
(cells that parse as one, or end in %) are right-aligned in text and Markdown.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from .errors import ConfigError

__all__ = ["STYLES", "format_table", "markdown_code", "markdown_text"]

STYLES = ("text", "markdown", "csv")
# What Markdown (CommonMark, GitHub's tables) could read as markup in text from data: code,
# emphasis, links and images, HTML and entities, table cells, strikethrough, headings, and
# GitHub's $math$
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&#!$])")


def markdown_text(text: str) -> str:
    """``text`` (a class name, a path, a run name) as literal Markdown: every character that
    could start markup backslash-escaped, so ``**x**`` shows its asterisks and ``&amp;``
    its ampersand."""
    return _MARKUP.sub(r"\\\1", text)


def markdown_code(text: str, table: bool = False) -> str:
    """``text`` as one code span: fenced by one backtick more than its longest run of them,
    with a space inside the fence when it begins or ends with one, or begins and ends with a
    space (CommonMark strips one space from each side then). In a table (``table``) a ``|``
    is escaped as well: GitHub splits a row on it before reading code spans."""
    fence = "`" * (max(map(len, re.findall(r"`+", text)), default=0) + 1)
    spaced = text[:1] == " " and text[-1:] == " " and text.strip(" ") != ""
    pad = " " if text.startswith("`") or text.endswith("`") or spaced else ""
    return fence + pad + (text.replace("|", "\\|") if table else text) + pad + fence


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], style: str = "text") -> str:
    """The table as one string (ending in a newline): ``text`` columns padded to their
    widest cell and two spaces apart, ``markdown`` a pipe table, ``csv`` RFC 4180."""
    if style == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()
    columns = list(zip(header, *rows, strict=True)) if rows else [(h,) for h in header]
    right = [all(_numeric(c) for c in col[1:]) and len(col) > 1 for col in columns]
    if style == "markdown":
        rule = ["---:" if r else "---" for r in right]
        lines = [_pipe_row(header), "| " + " | ".join(rule) + " |", *map(_pipe_row, rows)]
        return "\n".join(lines) + "\n"
    if style != "text":
        raise ConfigError(f"table style must be one of {', '.join(STYLES)}; got {style!r}")
    widths = [max(len(c) for c in col) for col in columns]
    lines = []
    for row in [list(header), *map(list, rows)]:
        cells = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _pipe_row(cells: Sequence[str]) -> str:
    """One Markdown table row, each cell's markup characters escaped (a ``|`` included)."""
    return "| " + " | ".join(map(markdown_text, cells)) + " |"


def _numeric(cell: str) -> bool:
    text = cell.strip().rstrip("%").replace(",", "").split(" ")[0]
    if text in ("", "-"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True
