"""ServeSettings: every default in one place, checked when made, the CLI's units both ways."""

from __future__ import annotations

import dataclasses

import pytest

from mlplab.errors import ConfigError
from mlplab.serve.settings import MEGAPIXEL, MIB, ServeSettings

FLAGS = {  # `mlplab serve`'s defaults, in its units
    "host": "127.0.0.1",
    "port": 8000,
    "log_level": "info",
    "threads": 1,
    "max_upload_mb": 4.0,
    "max_batch": 64,
    "batch_wait_ms": 2.0,
    "max_megapixels": 12.0,
    "max_request_megapixels": 24.0,
    "max_memory_mb": 1024.0,
    "request_timeout": 15.0,
    "max_connections": 512,
}


def test_defaults_with_their_units() -> None:
    s = ServeSettings()
    assert (s.host, s.port, s.threads, s.max_batch, s.max_connections) == (
        "127.0.0.1",
        8000,
        1,
        64,
        512,
    )
    assert s.max_upload_bytes == 4 * 1024 * 1024 and s.max_memory_bytes == 1 << 30
    assert s.max_pixels == 12_000_000 and s.max_request_pixels == 24_000_000
    assert (s.max_wait_ms, s.request_timeout, s.timeout_keep_alive) == (2.0, 15.0, 5)
    assert s.body_budget == (1 << 30) // 4 and s.body_budget + s.decode_budget == 1 << 30
    assert s.reject is True  # the run's rejection of unfamiliar inputs, when it has one


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ServeSettings().port = 1  # type: ignore[misc]


def test_flag_units_both_ways() -> None:
    assert ServeSettings.from_flags(**FLAGS) == ServeSettings()
    sizes = ServeSettings().flag_values()
    assert sizes == {k: FLAGS[k] for k in sizes}
    s = ServeSettings.from_flags(**{**FLAGS, "max_upload_mb": 0.5, "max_megapixels": 2.5})
    assert s.max_upload_bytes == MIB // 2 and s.max_pixels == 2.5 * MEGAPIXEL
    assert ServeSettings.from_flags(**FLAGS, reject=False) == ServeSettings(reject=False)


@pytest.mark.parametrize(
    "flag, value, message",
    [
        (
            "max_batch",
            0,
            "--max-upload-mb must be in (0, 1,000,000], --max-batch >= 1, --batch-wait-ms >= 0 "
            "and --threads in [0, 512]; got 4, 0, 2, 1",
        ),
        ("threads", -1, "--threads in [0, 512]; got 4, 64, 2, -1"),
        ("threads", 100_000, "--threads in [0, 512]; got 4, 64, 2, 100000"),  # it crashed torch
        ("max_upload_mb", 1e9, "--max-upload-mb must be in (0, 1,000,000]"),
        (
            "max_memory_mb",
            2e6,
            "--max-memory-mb and --request-timeout must be in (0, 1,000,000], "
            "--max-connections >= 1; got 12, 24, 2e+06, 15 and 512",
        ),
        ("max_megapixels", 1e-9, "--max-megapixels must be at least 1e-06 (one pixel); got 1e-09"),
        ("max_memory_mb", 1e-9, "--max-memory-mb must be at least 9.54e-07 (one byte); got 1e-09"),
        ("max_connections", 0, "--max-connections >= 1; got 12, 24, 1024, 15 and 0"),
        ("request_timeout", 0, "got 12, 24, 1024, 0 and 512"),
    ],
)
def test_bad_flags_are_named_as_typed(flag: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError, match="^--max-") as caught:
        ServeSettings.from_flags(**{**FLAGS, flag: value})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"timeout_keep_alive": 0},
            "timeout_keep_alive must be >= 1, request_timeout > 0 and "
            "max_connections >= 1; got 0, 15 and 512",
        ),
        (
            {"max_pixels": 0},
            "max_upload_bytes, max_pixels and max_request_pixels must be >= 1; "
            "got 4194304, 0 and 24000000",
        ),
        (
            {"max_memory_bytes": 64 * MIB},
            "an image of max_pixels (12,000,000; --max-megapixels) takes 275 MiB to decode, "
            "more than the 48 MiB of the memory budget for decoding (three quarters of "
            "max_memory_bytes; --max-memory-mb)",
        ),
        (
            {"max_memory_bytes": 40, "max_pixels": 1, "max_upload_bytes": 1},
            "an image of max_pixels (1; --max-megapixels) takes 6.1e-05 MiB to decode, more "
            "than the 2.86e-05 MiB",  # not "0 MiB"
        ),
        (
            {"max_upload_bytes": 100 * MIB},
            "a body of max_upload_bytes (104,857,600; --max-upload-mb) is held 4 "
            "times while parsed, more than the 256 MiB",
        ),
        ({"threads": 513}, "threads (--threads) must be in [0, 512] (0: torch's default); got 513"),
    ],
)
def test_settings_are_checked_when_made(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ServeSettings(**changes)
    assert str(caught.value).startswith(message)
    with pytest.raises(ConfigError):
        ServeSettings().replace(**changes)  # a copy is checked too


def test_an_unknown_setting_says_which_are_known() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^unknown serve setting 'max_batches' \(did you mean 'max_batch'\?\); the settings are host, port, ",
    ):
        ServeSettings().replace(max_batches=8)
