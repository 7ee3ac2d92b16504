"""The bounds on input-driven allocation, bounded decompression and escaped names."""

from __future__ import annotations

import gzip
import io

import pytest

from mlplab.errors import ConfigError, FormatError, RunError
from mlplab.files.limits import check_alloc, check_declared, memory_budget, printable, read_bounded


def test_printable_escapes_control_characters_and_keeps_the_rest() -> None:
    assert printable("plain name-1.png") == "plain name-1.png"
    assert printable("café ± ü") == "café ± ü"  # printable non-ASCII stays as it is
    assert printable("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert printable("\x1b[2Jgone") == "\\x1b[2Jgone"  # a terminal escape cannot clear the screen
    assert printable("x\u2028y\x7f") == "x\\u2028y\\x7f"
    assert "\n" not in printable(ValueError("line one\nline two"))


def test_the_budget_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "2")
    assert memory_budget() == 2 * 1024 * 1024
    check_alloc(2 * 1024 * 1024, "an array")  # exactly the budget is allowed
    with pytest.raises(
        FormatError,
        match=r"^x.bin: 1000 x 1000 x 3 would need 2.9 MiB of memory, more than the 2.0 MiB",
    ):
        check_alloc(3_000_000, "x.bin: 1000 x 1000 x 3")
    with pytest.raises(
        RunError, match=r"^model.json would need .* \(set by MLPLAB_MAX_ALLOC_MB\)$"
    ):
        check_alloc(10**12, "model.json", error=RunError)
    for bad in ("lots", "0", "-1", "nan", "inf"):  # refused in one line, not silently ignored
        monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", bad)
        with pytest.raises(
            ConfigError, match=rf"MLPLAB_MAX_ALLOC_MB must be a number of MiB > 0; got '{bad}'"
        ):
            memory_budget()


def test_unset_budget_is_half_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLPLAB_MAX_ALLOC_MB", raising=False)
    monkeypatch.setattr("mlplab.files.limits.available_memory", lambda: 8 * 1024**3)
    assert memory_budget() == 4 * 1024**3
    monkeypatch.setattr("mlplab.files.limits.available_memory", lambda: None)
    assert memory_budget() == 4 * 1024**3


def test_declared_sizes_are_checked_against_the_real_bytes() -> None:
    check_declared(100, 100, "f.idx")
    with pytest.raises(
        FormatError, match=r"^f.idx declares 1.0 KiB of data but only 10 bytes are there"
    ):
        check_declared(1024, 10, "f.idx")


def test_a_decompression_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)  # ~10 KB that inflate to 10 MB
    assert len(bomb) < 20_000
    with (
        gzip.open(io.BytesIO(bomb)) as stream,
        pytest.raises(FormatError, match="decompresses to more than 1.0 MiB"),
    ):
        read_bounded(stream, 1024 * 1024, "bomb.gz")
    with gzip.open(io.BytesIO(gzip.compress(b"ok"))) as stream:
        assert read_bounded(stream, 2, "small.gz") == b"ok"


def test_the_measured_budget_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLPLAB_MAX_ALLOC_MB", raising=False)
    monkeypatch.setattr("mlplab.files.limits.available_memory", lambda: 2 * 1024**2)
    with pytest.raises(
        FormatError, match=r"\(half the memory available now; set MLPLAB_MAX_ALLOC_MB"
    ):
        check_alloc(10**9, "x.npz")
