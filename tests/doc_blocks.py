"""The fenced blocks of README.md and docs/*.md, read the way tests/docs/test_examples.py runs them.

A block's kind comes from its fence and its lines:

- ``python``: a script, run in a fresh interpreter;
- ``console`` (or an untagged block with ``$ `` prompts): ``$ CMD`` lines are commands, the
  lines after each its shown output, ``...`` an elision; ``machine-a$ `` prompts count too;
- ``bash``/``sh`` (or an untagged block whose every line starts with a known program such
  as ``mlplab``): every line a command (comments after ``#`` are notes, not output);
- anything else (``yaml``, diagrams, bare error lines): text, not run.

A marker, an HTML comment on the line just before the fence, says what the harness should
do differently (docs/architecture.md, "Writing docs"): ``<!-- doc: KEY="VALUE" ... -->`` (or ``KEY='VALUE'``,
for a value holding double quotes).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The programs a prompt-less block may start its lines with to count as commands.
PROGRAMS = ("mlplab", "make", "python", "pip", "torchrun", "curl")
# What a marker may say, and what each key means (the one list the docs section repeats).
MARKER_KEYS = {
    "skip": "do not run the block; the value is the reason, shown when the test skips",
    "xfail": "run it and expect it to fail today; the value names the bug (strict: a pass fails)",
    "bound": "flags appended to each long command (train, sweep, lr-find, demo, report) to bound it",
    "setup": "a bash line run in the block's folder first (files the block assumes)",
    "file": "the block's text is a file of this name, written before the page's blocks run",
    "output": "'unchecked': run the commands, but the shown lines depend on the real data",
}
MARKER = re.compile(r"^\s*<!--\s*doc:(?P<body>.*?)-->\s*$")
PAIR = re.compile(r"""(\w+)=(?:"([^"]*)"|'([^']*)')""")  # KEY="VALUE" or KEY='VALUE'
PROMPT = re.compile(r"^\s*(?:[\w-]+)?\$ (?P<cmd>.*)$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")


@dataclass(frozen=True)
class Command:
    """One shell command of a block and the output lines the doc shows after it."""

    line: str
    shown: tuple[str, ...] = ()

    @property
    def expects_error(self) -> bool:
        """The doc shows it failing (``mlplab: error: ...``), so a non-zero exit is right."""
        return any(re.match(r"\s*mlplab( [\w-]+)?: (error|interrupted)", s) for s in self.shown)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its fence language, its text and its marker."""

    path: Path
    line: int  # the fence's line number, 1-based
    lang: str
    text: str
    marker: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str:
        """python, console, shell or text."""
        if self.lang == "python":
            return "python"
        lines = [s for s in self.text.splitlines() if s.strip() and not s.lstrip().startswith("#")]
        if self.lang == "console" or (
            self.lang in ("", "bash", "sh", "shell") and any(PROMPT.match(s) for s in lines)
        ):
            return "console"
        if self.lang in ("bash", "sh", "shell"):
            return "shell"
        if self.lang == "" and lines and all(s.split()[0] in PROGRAMS for s in lines):
            return "shell"
        return "text"

    def commands(self) -> list[Command]:
        """The block's commands, each with the output lines shown after it."""
        if self.kind == "shell":
            return [Command(line) for line in _joined(self.text.splitlines()) if line.strip()]
        commands: list[Command] = []
        lines = self.text.splitlines()
        i = 0
        while i < len(lines):
            match = PROMPT.match(lines[i])
            if not match:
                i += 1  # text before the first prompt: a note, not output
                continue
            cmd = match["cmd"]
            while cmd.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd.rstrip()[:-1] + " " + lines[i].strip()
            shown = []
            i += 1
            while i < len(lines) and not PROMPT.match(lines[i]):
                shown.append(lines[i])
                i += 1
            commands.append(Command(cmd, tuple(shown)))
        return commands


def _joined(lines: list[str]) -> list[str]:
    """Lines with ``\\`` continuations joined, comment-only lines dropped."""
    out: list[str] = []
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        if out and out[-1].rstrip().endswith("\\"):
            out[-1] = out[-1].rstrip()[:-1] + " " + line.strip()
        else:
            out.append(line)
    return out


def parse_marker(line: str) -> dict[str, str] | None:
    """The keys of a ``<!-- doc: ... -->`` line, or None when the line is not a marker."""
    match = MARKER.match(line)
    if not match:
        return None
    body = match["body"]
    pairs = {key: double or single for key, double, single in PAIR.findall(body)}
    rest = PAIR.sub("", body).strip()
    if rest:
        raise ValueError(f'marker {line.strip()!r}: {rest!r} is not KEY="VALUE"')
    unknown = set(pairs) - set(MARKER_KEYS)
    if unknown:
        raise ValueError(
            f"marker {line.strip()!r}: unknown key {sorted(unknown)}; keys are {sorted(MARKER_KEYS)}"
        )
    return pairs


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of one Markdown file, with the marker on the line before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, start = fence["indent"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^{indent}```\s*$", lines[i]):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        marker = parse_marker(lines[start - 1]) if start else None
        text = "\n".join(body) + "\n"
        blocks.append(Block(path, start + 1, fence["lang"], text, marker or {}))
        i += 1
    return blocks


# --- comparing shown output with real output, numbers aside ---------------------------------

NUMBER = re.compile(r"[-+]?(?:\d[\d,]*)?\.?\d+(?:e[-+]?\d+)?")
PATH = re.compile(r"\S*/\S*")
NOTE = re.compile(r"\s{2,}#\s.*$")  # `  # a note the doc adds to a shown line`


def normalise(line: str) -> str:
    """A line with paths, numbers and spacing made uniform: what stays is the wording."""
    line = NOTE.sub("", line)
    line = PATH.sub("<path>", line)
    line = NUMBER.sub("#", line)
    return " ".join(line.split())


def missing_lines(shown: tuple[str, ...], actual: str) -> list[str]:
    """The shown lines (``...`` aside, which stands for anything) absent from ``actual``."""
    have = [normalise(s) for s in actual.splitlines()]
    missing = []
    for line in shown:
        want = normalise(line)
        if not want or want == "..." or line.lstrip().startswith("#"):
            continue
        pieces = [p.strip() for p in want.split("...") if p.strip()]
        if not any(_in_order(pieces, h) for h in have):
            missing.append(line)
    return missing


def _in_order(pieces: list[str], line: str) -> bool:
    at = 0
    for piece in pieces:
        found = line.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def argv(command: str) -> tuple[dict[str, str], list[str], str | None]:
    """(environment assignments, words, file the output is redirected to) of one command."""
    words = shlex.split(command, comments=True)
    env: dict[str, str] = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    target = None
    if ">" in words:
        at = words.index(">")
        target, words = words[at + 1], words[:at]
    return env, words, target
