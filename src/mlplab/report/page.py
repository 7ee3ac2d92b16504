"""Self-contained HTML pages (report, compare, explore): one file, no network, images inline.

A page is a title, a few header blocks and sections of figures and tables. Figures are
embedded as base64 PNGs so the file works offline and can be mailed or moved on its own;
the same PNGs are also written to ``figures/`` beside it for slides and documents.
"""

from __future__ import annotations

import base64
import html
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..files.atomic import write_bytes_atomic, write_text_atomic

__all__ = ["Figure", "Page", "Section", "cards", "paragraph", "preformatted", "table"]

STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       margin: 0; background: #f6f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; background: #fff; }
h1 { font-size: 1.6em; margin: 0.4em 0 0.1em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.3em; }
.sub { color: #59636e; margin: 0 0 1em; }
nav { font-size: 0.92em; margin: 0.6em 0 1em; }
nav a { margin-right: 1em; color: #0969da; text-decoration: none; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto;
             border: 1px solid #eaeef2; }
figcaption { color: #424a53; font-size: 0.93em; margin-top: 0.4em; }
figcaption b { color: #1f2328; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1em; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eaeef2; text-align: left; }
th { background: #f6f8fa; }
th.n, td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.kv td { text-align: left; }
table.kv td:first-child { color: #59636e; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 0.8em 0; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 14px; min-width: 120px; }
.card .v { font-size: 1.35em; font-weight: 600; }
.card .k { color: #59636e; font-size: 0.85em; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 0.85em; }
.note { color: #59636e; font-style: italic; }
.scroll { max-height: 420px; overflow-y: auto; display: inline-block; }
footer { color: #59636e; font-size: 0.85em; margin-top: 3em; }
"""


@dataclass
class Figure:
    """A PNG with its name (``figures/<name>.png``), title and one-line caption."""

    name: str
    title: str
    caption: str
    png: bytes

    def html(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        return (
            f'<figure id="fig-{html.escape(self.name)}"><img alt="{html.escape(self.title)}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption><b>{html.escape(self.title)}.</b> {html.escape(self.caption)}"
            "</figcaption></figure>"
        )


@dataclass
class Section:
    """A titled part of a page: figures and HTML blocks (tables, notes) in order."""

    title: str
    items: list[Figure | str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(ch if ch.isalnum() else "-" for ch in self.title.lower()).strip("-")

    def html(self) -> str:
        body = "".join(item.html() if isinstance(item, Figure) else item for item in self.items)
        return f'<section id="{self.anchor}"><h2>{html.escape(self.title)}</h2>{body}</section>'


@dataclass
class Page:
    """A whole page: title, subtitle, header HTML, sections; written atomically."""

    title: str
    subtitle: str = ""
    header: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def html(self) -> str:
        nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in self.sections)
        seconds = time.perf_counter() - self.started
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body><main>"
            f'<h1>{html.escape(self.title)}</h1><p class="sub">{html.escape(self.subtitle)}</p>'
            f"<nav>{nav}</nav>{''.join(self.header)}{''.join(s.html() for s in self.sections)}"
            f"<footer>Made by mlplab {__version__} on {time.strftime('%Y-%m-%d %H:%M')} in "
            f"{seconds:.1f} s. Self-contained: the figures are embedded in this file (and also "
            "saved as PNGs in figures/ beside it).</footer></main></body></html>\n"
        )

    def figures(self) -> list[Figure]:
        return [item for s in self.sections for item in s.items if isinstance(item, Figure)]

    def write(self, path: Path) -> Path:
        """Write the page to ``path`` and its figures to ``figures/`` beside it, atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = path.parent / "figures"
        folder.mkdir(exist_ok=True)
        for figure in self.figures():
            write_bytes_atomic(folder / f"{figure.name}.png", figure.png)
        write_text_atomic(path, self.html())
        return path


def table(
    header: Sequence[str] | None,
    rows: Sequence[Sequence[Any]],
    *,
    scroll: bool = False,
    left: int = 1,
) -> str:
    """An HTML table; cells are escaped and shown as given (format numbers before). Columns
    mostly numbers are right-aligned, except the first ``left`` (labels).
    Without a header: a key-value table."""
    if header is None:
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
            for row in rows
        )
        return f'<table class="kv"><tbody>{body}</tbody></table>'
    numeric = [  # most of the column reads as numbers
        i >= left and 2 * sum(_NUMBER.match(str(r[i])) is not None for r in rows) > len(rows)
        for i in range(len(header))
    ]

    def cell(tag: str, i: int, value: Any) -> str:
        style = ' class="n"' if i < len(numeric) and numeric[i] else ""
        return f"<{tag}{style}>{html.escape(str(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    text = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{text}</div>' if scroll else text


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?\s*%?$|^-$")


def cards(items: Sequence[tuple[str, str]]) -> str:
    """A row of big-number cards: (label, value) pairs."""
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="v">{html.escape(v)}</div>'
            f'<div class="k">{html.escape(k)}</div></div>'
            for k, v in items
        )
        + "</div>"
    )


def paragraph(text: str, css: str = "") -> str:
    return f'<p class="{css}">{html.escape(text)}</p>' if css else f"<p>{html.escape(text)}</p>"


def preformatted(text: str, summary: str | None = None) -> str:
    block = f"<pre>{html.escape(text)}</pre>"
    return (
        f"<details><summary>{html.escape(summary)}</summary>{block}</details>" if summary else block
    )
