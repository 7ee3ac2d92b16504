"""The server's settings: one frozen object holding every default, each with its unit.

:func:`~mlplab.serve.create_app`, :func:`~mlplab.serve.serve` and the flags of
``mlplab serve`` all take their defaults from :class:`ServeSettings`. The API speaks bytes,
pixels and seconds; the command line speaks MiB and megapixels: :data:`FLAG_UNITS` is the
one table between the two, used both ways (:meth:`ServeSettings.flag_values` for the flags'
defaults, :meth:`ServeSettings.from_flags` for their values).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import MAX_THREADS
from ..errors import ConfigError, did_you_mean
from ..inference.images import decode_bytes

MIB = 1024 * 1024  # bytes
MEGAPIXEL = 1_000_000  # pixels
BODY_SHARE = 0.25  # of max_memory_bytes, for request bodies; the rest for decoding images
# A body is held about four times while it is read and parsed (the bytes read, the bytes
# handed on, the multipart parser's copy of each part, each part read back).
BODY_COPIES = 4
MAX_FLAG_SIZE = 1e6  # the largest megapixels, MiB or seconds a flag takes: converted to int
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ServeSettings:
    """How the server listens and what it accepts; checked when made (ConfigError, one line)."""

    host: str = "127.0.0.1"  # address to listen on; anything but loopback exposes the server
    port: int = 8000  # TCP port; 0: any free port
    log_level: str = "info"  # uvicorn's log level; info logs every request
    threads: int = 1  # torch CPU threads; 0: torch's default
    style: str = "auto"  # preprocessing of uploads, as `mlplab predict --preprocess`
    reject: bool = True  # the run's rejection of unfamiliar inputs (when it has one); --no-reject
    max_upload_bytes: int = 4 * MIB  # whole request body, bytes
    max_batch: int = 64  # images per request and per forward pass
    max_wait_ms: float = 2.0  # how long the first request of a batch waits for others, ms
    max_pixels: int = 12 * MEGAPIXEL  # one upload, once decoded (a 4000x3000 photo), pixels
    max_request_pixels: int = 24 * MEGAPIXEL  # all the uploads of one request, pixels
    max_memory_bytes: int = 1024 * MIB  # what requests may make the server hold at once, bytes
    request_timeout: float = 15.0  # s for a request's head, and again for its body, to arrive
    timeout_keep_alive: int = 5  # s an idle keep-alive connection stays open (uvicorn's default)
    max_connections: int = 512  # open connections (and requests) before new ones get 503

    def __post_init__(self) -> None:
        if self.timeout_keep_alive < 1 or self.request_timeout <= 0 or self.max_connections < 1:
            raise ConfigError(
                "timeout_keep_alive must be >= 1, request_timeout > 0 and max_connections >= 1; "
                f"got {self.timeout_keep_alive}, {self.request_timeout:g} and "
                f"{self.max_connections}"
            )
        if not 0 <= self.threads <= MAX_THREADS:  # 100,000 threads crashed torch (SIGSEGV)
            raise ConfigError(
                f"threads (--threads) must be in [0, {MAX_THREADS}] (0: torch's default); "
                f"got {self.threads}"
            )
        self._check_memory()

    @property
    def body_budget(self) -> int:
        """Bytes of the memory budget for request bodies."""
        return int(self.max_memory_bytes * BODY_SHARE)

    @property
    def decode_budget(self) -> int:
        """Bytes of the memory budget for decoding images: the rest."""
        return self.max_memory_bytes - self.body_budget

    def _check_memory(self) -> None:
        """ConfigError unless one request of each kind at its limits fits in the memory budget."""
        sizes = self.max_upload_bytes, self.max_pixels, self.max_request_pixels
        if min(sizes) < 1:
            raise ConfigError(
                "max_upload_bytes, max_pixels and max_request_pixels must be >= 1; got "
                f"{sizes[0]}, {sizes[1]} and {sizes[2]}"
            )
        if decode_bytes(self.max_pixels, 1) > self.decode_budget:
            raise ConfigError(
                f"an image of max_pixels ({self.max_pixels:,}; --max-megapixels) takes "
                f"{_mib(decode_bytes(self.max_pixels, 1))} MiB to decode, more than the "
                f"{_mib(self.decode_budget)} MiB of the memory budget for decoding (three "
                "quarters of max_memory_bytes; --max-memory-mb): raise the budget or lower "
                "max_pixels"
            )
        if BODY_COPIES * self.max_upload_bytes > self.body_budget:
            raise ConfigError(
                f"a body of max_upload_bytes ({self.max_upload_bytes:,}; --max-upload-mb) is "
                f"held {BODY_COPIES} times while parsed, more than the {_mib(self.body_budget)} "
                "MiB of the memory budget for bodies (a quarter of max_memory_bytes; "
                "--max-memory-mb): raise the budget or lower max_upload_bytes"
            )

    def replace(self, **changes: object) -> ServeSettings:
        """A copy with ``changes``; ConfigError for a name that is not a setting."""
        names = [f.name for f in dataclasses.fields(self)]
        for name in changes:
            if name not in names:
                raise ConfigError(
                    f"unknown serve setting '{name}'{did_you_mean(name, names)}; the settings "
                    f"are {', '.join(names)}"
                )
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def flag_values(self) -> dict[str, float]:
        """The sizes of :data:`FLAG_UNITS` in the units of ``mlplab serve``'s flags."""
        return {flag: getattr(self, name) / unit for flag, (name, unit) in FLAG_UNITS.items()}

    @classmethod
    def from_flags(
        cls,
        *,
        host: str,
        port: int,
        log_level: str,
        threads: int,
        max_upload_mb: float,
        max_batch: int,
        batch_wait_ms: float,
        max_megapixels: float,
        max_request_megapixels: float,
        max_memory_mb: float,
        request_timeout: float,
        max_connections: int,
        reject: bool = True,
    ) -> ServeSettings:
        """The settings from ``mlplab serve``'s flags, sizes in the flags' units.

        The flags are checked first, so that a bad value is named as the user typed it (and
        before a size is converted to a whole number of bytes or pixels).
        """
        if (
            not 0 < max_upload_mb <= MAX_FLAG_SIZE
            or max_batch < 1
            or batch_wait_ms < 0
            or not 0 <= threads <= MAX_THREADS
        ):
            raise ConfigError(
                f"--max-upload-mb must be in (0, {MAX_FLAG_SIZE:,.0f}], --max-batch >= 1, "
                f"--batch-wait-ms >= 0 and --threads in [0, {MAX_THREADS}]; got "
                f"{max_upload_mb:g}, {max_batch}, {batch_wait_ms:g}, {threads}"
            )
        sizes = (max_megapixels, max_request_megapixels, max_memory_mb, request_timeout)
        if not all(0 < x <= MAX_FLAG_SIZE for x in sizes) or max_connections < 1:
            raise ConfigError(
                "--max-megapixels, --max-request-megapixels, --max-memory-mb and "
                f"--request-timeout must be in (0, {MAX_FLAG_SIZE:,.0f}], --max-connections >= 1; "
                f"got {', '.join(f'{x:g}' for x in sizes)} and {max_connections}"
            )
        flags = {
            "max_upload_mb": max_upload_mb,
            "max_megapixels": max_megapixels,
            "max_request_megapixels": max_request_megapixels,
            "max_memory_mb": max_memory_mb,
        }
        for flag, value in flags.items():  # a size that would round to 0 bytes or pixels
            unit = FLAG_UNITS[flag][1]
            if int(value * unit) < 1:
                one = "pixel" if unit == MEGAPIXEL else "byte"
                raise ConfigError(
                    f"--{flag.replace('_', '-')} must be at least {1 / unit:.3g} (one {one}); "
                    f"got {value:g}"
                )
        return cls(
            host=host,
            port=port,
            log_level=log_level,
            threads=threads,
            max_batch=max_batch,
            max_wait_ms=batch_wait_ms,
            request_timeout=request_timeout,
            max_connections=max_connections,
            reject=reject,
            **{
                FLAG_UNITS[flag][0]: int(value * FLAG_UNITS[flag][1])
                for flag, value in flags.items()
            },
        )


def _mib(nbytes: float) -> str:
    """Bytes in MiB as messages show them: whole above 10 MiB, three digits below."""
    return f"{nbytes / MIB:,.0f}" if nbytes >= 10 * MIB else f"{nbytes / MIB:.3g}"


# flag dest -> (setting, the setting's units in one of the flag's): the command line speaks
# MiB and megapixels, the API bytes and pixels
FLAG_UNITS: dict[str, tuple[str, int]] = {
    "max_upload_mb": ("max_upload_bytes", MIB),
    "max_megapixels": ("max_pixels", MEGAPIXEL),
    "max_request_megapixels": ("max_request_pixels", MEGAPIXEL),
    "max_memory_mb": ("max_memory_bytes", MIB),
}
