"""Tables: aligned text (numbers to the right), Markdown and CSV from the same cells."""

from __future__ import annotations

import pytest

from mlplab.errors import ConfigError
from mlplab.tables import format_table, markdown_code, markdown_text

HEADER = ["run", "val", "status"]
ROWS = [["a", "95.20%", "finished"], ["long-name", "-", "empty"]]


def test_text_aligns_numbers_right() -> None:
    assert format_table(HEADER, ROWS) == (
        "run           val  status\na          95.20%  finished\nlong-name       -  empty\n"
    )


def test_markdown_and_csv() -> None:
    assert format_table(HEADER, ROWS, "markdown") == (
        "| run | val | status |\n| --- | ---: | --- |\n"
        "| a | 95.20% | finished |\n| long-name | - | empty |\n"
    )
    assert format_table(["a", "b"], [["x,y", "1"]], "csv") == 'a,b\n"x,y",1\n'


def test_empty_and_bad_style() -> None:
    assert format_table(HEADER, []) == "run  val  status\n"
    with pytest.raises(
        ConfigError, match="table style must be one of text, markdown, csv; got 'html'"
    ):
        format_table(HEADER, ROWS, "html")
    assert issubclass(ConfigError, ValueError)  # callers catching ValueError still do


def test_markdown_escapes_a_pipe_in_a_cell() -> None:
    assert format_table(["a|b"], [["x|y"]], "markdown") == "| a\\|b |\n| --- |\n| x\\|y |\n"


def test_numbers_with_thousands_and_units_align_right() -> None:
    """ "1,234", "12 s" and "-" are numbers; "hidden.0 8x72" is not, so its column stays left."""
    text = format_table(["n", "shape"], [["1,234", "hidden.0 8x72"], ["12 s", "-"]])
    assert text == "    n  shape\n1,234  hidden.0 8x72\n 12 s  -\n"


def test_markdown_shows_markup_in_cells_as_written() -> None:
    """A run or class name holding Markdown is escaped, not rendered: emphasis, entities,
    links, HTML, code and strikethrough (CommonMark backslash escapes)."""
    cells = ["**bold**", "&amp;x", "[a](b)", "<b>", "`c`", "~~s~~", "back\\slash", "$x$", "ok-1.5"]
    row = format_table(["name"] * len(cells), [cells], "markdown").splitlines()[2]
    assert row == (
        r"| \*\*bold\*\* | \&amp;x | \[a\](b) | \<b\> | \`c\` | \~\~s\~\~ | back\\slash | \$x\$ "
        r"| ok-1.5 |"
    )


@pytest.mark.parametrize(
    "text, table, span",
    [
        ("plain", False, "`plain`"),
        ("a`b", False, "``a`b``"),
        ("x``y`", False, "``` x``y` ```"),  # a space inside: it ends in a backtick
        ("a|b", False, "`a|b`"),
        ("a|b", True, r"`a\|b`"),  # GitHub splits table rows before reading code spans
        (" a ", False, "`  a  `"),  # CommonMark would strip the spaces it begins and ends with
    ],
)
def test_a_code_span_is_fenced_past_the_backticks_it_holds(text, table, span) -> None:
    assert markdown_code(text, table=table) == span
    assert markdown_text("a_b") == r"a\_b"
