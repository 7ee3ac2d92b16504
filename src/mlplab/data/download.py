"""Download dataset files from a list of mirrors, checking each file's content.

A file is fetched into a temporary file beside its destination and renamed into place
only when complete and its content (decompressed, when gzip) has the known SHA-256, so an
interrupted or corrupted download never leaves a file behind that looks usable. Archives
whose publishers give only the MD5 of the archive itself are checked with a digest
written ``"md5:<hex>"``. Mirrors are tried in order; the error names every URL tried and
why it failed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

from ..errors import DownloadError, FormatError
from ..files.atomic import temporary_sibling, write_text_atomic
from ..progress import progress_bar

__all__ = ["content_sha256", "digest_of", "download_file", "file_md5", "verify_local"]

_CHUNK = 1 << 16
TIMEOUT_SECONDS = 30.0  # per network operation, not per file


class _ChecksumMismatch(Exception):
    pass


def content_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content: of the decompressed bytes when the file is gzip."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as probe:
        is_gzip = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if is_gzip else open
    with opener(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_md5(path: str | Path) -> str:
    """MD5 of a file's bytes as stored: what archive publishers give."""
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def digest_of(path: str | Path, digest: str) -> tuple[str, str, str]:
    """(what, actual, expected) for a digest written as bare SHA-256 hex (of the content,
    decompressed when gzip) or ``"md5:<hex>"`` (of the file as stored). Raises OSError,
    EOFError or zlib.error for a file that cannot be read to the end."""
    if digest.startswith("md5:"):
        return "MD5", file_md5(path), digest[4:]
    return "content SHA-256", content_sha256(path), digest


def verify_local(path: Path, digest: str, dataset: str, memo_file: Path) -> None:
    """Check a local copy of a known dataset's file against its published digest, once: the
    result is remembered in ``memo_file`` (by path, size and modification time)."""
    stat = path.stat()
    key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns, digest]
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if memo.get(key) == stamp:
        return
    try:
        what, actual, expected = digest_of(path, digest)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise FormatError(
            f"{path}: cannot read it as the {dataset} file it is named after ({exc})"
        ) from None
    if actual != expected:
        raise FormatError(
            f"{path}: {what} {actual[:12]}… is not {dataset}'s published {expected[:12]}…; "
            f"the file is damaged or from another dataset: delete it to download it again, "
            f"or pass --no-verify to use it anyway"
        )
    memo[key] = stamp
    try:  # remembering is a convenience: a read-only cache only costs a re-check next time
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(memo_file, json.dumps(memo, indent=1))
    except OSError:
        pass


def download_file(
    filename: str,
    digest: str,
    dest_dir: str | Path,
    mirrors: Sequence[str],
    *,
    timeout: float = TIMEOUT_SECONDS,
) -> Path:
    """Fetch ``filename`` from the first mirror that serves it intact; return its path.

    ``digest`` is the SHA-256 of the content (decompressed when gzip) as bare hex, or
    ``"md5:<hex>"``: the MD5 of the file exactly as served (what archives publish).
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / filename
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            _fetch_verified(url, dest, digest, timeout)
            return dest
        except urllib.error.HTTPError as exc:
            failures.append(f"{url} (HTTP {exc.code} {exc.reason})")
        except urllib.error.URLError as exc:
            failures.append(f"{url} ({exc.reason})")
        except _ChecksumMismatch as exc:
            failures.append(f"{url} ({exc})")
        except (http.client.HTTPException, OSError) as exc:
            failures.append(f"{url} (connection broke: {exc or type(exc).__name__})")
    raise DownloadError(f"could not download {filename}: tried " + "; ".join(failures))


def _fetch_verified(url: str, dest: Path, digest: str, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "mlplab"})
    tmp = temporary_sibling(dest, ".part")
    try:
        with open(tmp, "xb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            total = response.length  # None when the server sends no Content-Length
            with progress_bar(total=total, desc=dest.name, unit="B", unit_scale=True) as bar:
                received = 0
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received < total:
                raise http.client.IncompleteRead(b"", total - received)
        try:
            what, actual, expected = digest_of(tmp, digest)
        except (EOFError, OSError, zlib.error) as exc:
            raise _ChecksumMismatch(f"not a complete gzip file: {exc}") from None
        if actual != expected:
            raise _ChecksumMismatch(
                f"{what} {actual[:12]}… does not match the expected {expected[:12]}…"
            )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
