"""HDF5 files (h5py): image and label datasets, at the top level or in train/ and test/ groups.

The keys are found by :func:`mlplab.data.raw.find_layout` (``train/data`` +
``train/target`` as in the widely shared ``usps.h5``, ``x_train``/``y_train``,
``images``/``labels``), or named with ``images_key`` and ``labels_key``. Images may be
``(N, H, W)``, ``(N, C, H, W)``, ``(N, H, W, C)`` or flat ``(N, D)``; uint8 or 0-1 floats.

An HDF5 file can point outside itself: a dataset may keep its bytes in *external storage*
(any file on the reader's machine, read as if it were the dataset), a *virtual dataset*
maps other datasets (in other files), and an *external link* opens another file. A file
from someone else could use these to make mlplab read local files as pixels (and show
them in a shared report), so every dataset is checked before any data is read:

- external links (also behind soft links), external storage and virtual datasets are
  refused; only data stored in the file itself is read;
- the type must be plain numbers (no strings, compound records, references, variable-length
  or opaque data);
- the declared shape x type must fit the memory budget (:func:`mlplab.files.limits.check_alloc`)
  and be really stored: all of a contiguous dataset, every chunk of a chunked one, each
  chunk no larger than its data and within the file;
- chunks may be compressed only with HDF5's built-in gzip (deflate) or h5py's lzf, with
  shuffle and fletcher32 (no filter plugins: a file cannot make HDF5 load a library); a
  gzip chunk is inflated first with its declared size as the bound, so a chunk that
  inflates past its data (a decompression bomb) is refused before HDF5 decompresses it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError
from ..files.limits import check_alloc, check_declared, check_regular, printable
from .raw import RawSplits, find_layout, from_arrays

__all__ = ["HDF5_MAGIC", "read_hdf5", "read_usps"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

_MAX_LINKS = 1_000_000  # names walked in one file: far beyond any image dataset's layout
_MAX_HOPS = 32  # soft links followed for one name (HDF5's own nesting limit is 16)
_DEFLATE, _SHUFFLE, _FLETCHER32, _LZF = 1, 2, 3, 32000
_FILTERS = {_DEFLATE: "gzip", _SHUFFLE: "shuffle", _FLETCHER32: "fletcher32", _LZF: "lzf"}
_LZF_RATIO = 88  # the most LZF can inflate: a 3-byte back-reference copies up to 264 bytes
_CHUNK_SLACK = 64  # bytes a compressed chunk may exceed its data by (headers, a checksum)


def read_hdf5(
    path: str | Path,
    *,
    images_key: str | None = None,
    labels_key: str | None = None,
    image_shape: str | Sequence[int] | None = None,
    pixel_scale: str = "auto",
    classes: Sequence[str] | None = None,
) -> RawSplits:
    """Read the train (and test, when present) images and labels of an HDF5 file."""
    import h5py  # a compiled extension: imported only when an HDF5 file is read

    path = Path(path)
    source = printable(path)
    file_size = check_regular(path).st_size  # a FIFO would block HDF5's open forever
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{source}: not a readable HDF5 file ({printable(exc)})") from None
    with handle:
        try:
            names = _dataset_names(handle, source)
        except FormatError:
            raise
        except Exception as exc:  # h5py fails on a damaged file in many ways; each means this
            raise FormatError(f"{source}: a damaged HDF5 file ({_describe(exc)})") from None
        layout = find_layout(
            names,
            source,
            printable(images_key) if images_key else None,
            printable(labels_key) if labels_key else None,
        )
        keys = [k for pair in filter(None, layout) for k in pair]
        # every dataset is checked before any is read: a refusal reads nothing at all
        checked = {k: _checked_dataset(handle, names[k], source, k, file_size) for k in keys}
        total = sum(d.size * d.dtype.itemsize for d in checked.values())
        check_alloc(total, f"{source}: the datasets {', '.join(keys)} together")

        def get(key: str) -> np.ndarray:
            try:
                return np.asarray(checked[key][()])
            except Exception as exc:  # a damaged chunk or header fails inside HDF5's read
                raise FormatError(
                    f"{source}: cannot read dataset '{key}' ({_describe(exc)})"
                ) from None

        return from_arrays(
            source,
            "hdf5",
            get,
            layout,
            image_shape=image_shape,
            pixel_scale=pixel_scale,
            classes=classes,
        )


def read_usps(path: str | Path) -> RawSplits:
    """The USPS digits file ``usps.h5``: 16x16 gray images, classes "0".."9", train and test."""
    raw = read_hdf5(path, classes=[str(d) for d in range(10)])
    if raw.image_shape != (1, 16, 16) or raw.test is None:
        test = "no test split" if raw.test is None else "a test split"
        raise FormatError(
            f"{printable(path)}: images of {'x'.join(map(str, raw.image_shape))} and {test}; "
            "usps.h5 holds 16x16 gray digits in train/ and test/ groups"
        )
    return raw


def _describe(exc: BaseException) -> str:
    text = printable(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"


def _dataset_names(handle: Any, source: str) -> dict[str, str]:
    """Every name that may hold a dataset, as shown in messages -> its path in the file.

    The file is walked through its links without following soft or external ones (hard
    links that loop are walked once): hard-linked datasets and every soft or external
    link are names; which of those may be read is decided by :func:`_resolve`.
    """
    import h5py

    names: dict[str, str] = {}
    seen: list[Any] = [handle.id]
    pending: list[tuple[str, Any]] = [("", handle)]
    walked = 0
    while pending:
        prefix, group = pending.pop()
        for name in group:
            walked += 1
            if walked > _MAX_LINKS:
                raise FormatError(
                    f"{source}: more than {_MAX_LINKS:,} names in the file; mlplab reads files "
                    "of image and label datasets"
                )
            full = f"{prefix}{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.HardLink):
                obj = group.get(name)
                if isinstance(obj, h5py.Group):
                    if not any(obj.id == other for other in seen):
                        seen.append(obj.id)
                        pending.append((f"{full}/", obj))
                    continue
                if not isinstance(obj, h5py.Dataset):
                    continue  # a committed datatype
            names.setdefault(printable(full), full)
    return names


def _resolve(handle: Any, path: str, source: str, key: str) -> Any:
    """The dataset at ``path``, following soft links inside the file and never leaving it."""
    import h5py

    hops, wanted = 0, path  # wanted: the path last asked for, named when it is missing
    group, parts = handle, [p for p in path.split("/") if p and p != "."]
    while parts:
        name = parts.pop(0)
        link = group.get(name, getlink=True)
        if link is None:
            raise FormatError(
                f"{source}: '{key}' leads nowhere (a link to '{printable(wanted)}', which is missing)"
            )
        if isinstance(link, h5py.ExternalLink):
            raise FormatError(
                f"{source}: '{key}' is an external link to {printable(link.filename)}:"
                f"{printable(link.path)}; mlplab reads only data stored in the file itself, "
                "never another file it names"
            )
        if isinstance(link, h5py.SoftLink):
            hops += 1
            if hops > _MAX_HOPS:
                raise FormatError(
                    f"{source}: '{key}': more than {_MAX_HOPS} soft links in a row (a loop?)"
                )
            wanted = link.path
            target = [p for p in link.path.split("/") if p and p != "."]
            if link.path.startswith("/"):
                group = handle
            parts = target + parts
            continue
        obj = group.get(name)
        if parts:
            if not isinstance(obj, h5py.Group):
                raise FormatError(f"{source}: '{key}': '{printable(name)}' is not a group")
            group = obj
        elif not isinstance(obj, h5py.Dataset):
            raise FormatError(f"{source}: '{key}' is not a dataset (a group or a datatype)")
        else:
            return obj
    raise FormatError(f"{source}: '{key}' is the file's root group, not a dataset")


def _checked_dataset(handle: Any, path: str, source: str, key: str, file_size: int) -> Any:
    """The dataset at ``path``, once everything it would make HDF5 read or allocate is checked."""
    try:
        dataset = _resolve(handle, path, source, key)
        where = f"{source}: dataset '{key}'"
        _check_storage_kind(dataset, where)
        nbytes = _check_type_and_shape(dataset, where)
        _check_stored(dataset, where, nbytes, file_size)
    except FormatError:
        raise
    except Exception as exc:  # h5py fails on a damaged header in many ways; each means this
        raise FormatError(f"{source}: cannot read dataset '{key}' ({_describe(exc)})") from None
    return dataset


def _check_storage_kind(dataset: Any, where: str) -> None:
    import h5py

    dcpl = dataset.id.get_create_plist()
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        files = {dcpl.get_virtual_filename(i) for i in range(dcpl.get_virtual_count())}
        elsewhere = sorted(printable(f) for f in files if f != ".")
        mapped = f"other files ({', '.join(elsewhere[:3])})" if elsewhere else "other datasets"
        raise FormatError(
            f"{where} is a virtual dataset mapping {mapped}; mlplab reads only data stored in "
            "the dataset itself: copy it into a regular dataset"
        )
    if dcpl.get_external_count() > 0:
        other = printable(dcpl.get_external(0)[0].decode("utf-8", errors="replace"))
        raise FormatError(
            f"{where} keeps its data in another file ({other}, external storage); mlplab reads "
            "only data stored in the HDF5 file itself"
        )


def _check_type_and_shape(dataset: Any, where: str) -> int:
    """Refuse anything but plain numbers, and shapes larger than the memory budget; -> bytes."""
    import h5py

    accepted = "images and labels must be numbers (integers or floats)"
    dtype = dataset.dtype
    what = None
    if h5py.check_string_dtype(dtype) is not None or dtype.kind in "SU":
        what = "text (strings)"
    elif h5py.check_vlen_dtype(dtype) is not None:
        what = "variable-length sequences"
    elif h5py.check_ref_dtype(dtype) is not None:
        what = "object references"
    elif dtype.names:
        what = f"compound records (fields {', '.join(printable(n) for n in dtype.names[:5])})"
    elif dtype.subdtype is not None:
        what = f"arrays of {dtype.subdtype[0]} {dtype.subdtype[1]} per element"
    elif dtype.kind == "c":
        what = "complex numbers"
    elif dtype.kind not in "uifb":
        what = f"values of type {dtype} (opaque or objects)"
    if what is not None:
        raise FormatError(f"{where} holds {what}; {accepted}")
    if dataset.shape is None:
        raise FormatError(f"{where} holds no data (an empty dataspace); {accepted}")
    nbytes = math.prod(dataset.shape) * dtype.itemsize
    shape = "x".join(str(d) for d in dataset.shape) or "scalar"
    check_alloc(nbytes, f"{where} ({shape} {dtype})")
    return nbytes


def _check_stored(dataset: Any, where: str, nbytes: int, file_size: int) -> None:
    """The data the shape declares is really in the file, and decompresses to no more."""
    import h5py

    dcpl = dataset.id.get_create_plist()
    layout = dcpl.get_layout()
    if layout == h5py.h5d.COMPACT or nbytes == 0:
        return  # compact data lives in the object header, whose size HDF5 bounds (64 KiB)
    if layout == h5py.h5d.CONTIGUOUS:
        stored = dataset.id.get_storage_size()
        if stored < nbytes:
            raise FormatError(
                f"{where} declares {nbytes:,} bytes of data but stores {stored:,} (never written, "
                "or the file is damaged)"
            )
        offset = dataset.id.get_offset()
        check_declared((offset or 0) + nbytes, file_size, f"{where} (at byte {offset or 0:,})")
        return
    if layout != h5py.h5d.CHUNKED:
        raise FormatError(f"{where} has an HDF5 storage layout mlplab does not read ({layout})")
    _check_chunks(dataset, dcpl, where, file_size)


def _check_chunks(dataset: Any, dcpl: Any, where: str, file_size: int) -> None:
    pipeline = [dcpl.get_filter(i) for i in range(dcpl.get_nfilters())]
    for code, _flags, _values, name in pipeline:
        if code not in _FILTERS:
            label = printable(name.decode("utf-8", errors="replace")) if name else "unnamed"
            raise FormatError(
                f"{where} is compressed with HDF5 filter {code} ({label}); mlplab reads datasets "
                "stored plain or with gzip or lzf (and shuffle, fletcher32)"
            )
    chunk = tuple(dataset.chunks)
    chunk_bytes = math.prod(chunk) * dataset.dtype.itemsize
    needed = math.prod(-(-n // c) for n, c in zip(dataset.shape, chunk, strict=True))
    for code, _flags, values, _name in pipeline:
        if code == _LZF and len(values) >= 3 and values[2] > chunk_bytes:
            raise FormatError(
                f"{where}: its lzf filter asks for {values[2]:,}-byte buffers for chunks of "
                f"{chunk_bytes:,} bytes; the file is damaged or hostile"
            )
    chunks = _stored_chunks(dataset)
    if len(chunks) != needed:
        raise FormatError(
            f"{where} stores {len(chunks):,} of the {needed:,} chunks its shape needs (never "
            "fully written, or the file is damaged)"
        )
    for offset, mask, address, size in chunks:
        at = f"{where}: chunk at {tuple(offset)}"
        if size > chunk_bytes + chunk_bytes // 16 + _CHUNK_SLACK:
            raise FormatError(
                f"{at} is stored in {size:,} bytes, more than its {chunk_bytes:,} bytes of data; "
                "the file is damaged or hostile"
            )
        check_declared((address or 0) + size, file_size, at)
        active = [f for j, f in enumerate(pipeline) if not mask & (1 << j)]
        codes = [f[0] for f in active]
        if _LZF in codes:  # HDF5 inflates lzf itself: bound what it could produce
            check_alloc(size * _LZF_RATIO, f"{at} (lzf, which may inflate {_LZF_RATIO}x)")
        if _DEFLATE in codes:
            _check_inflate(dataset, offset, codes, chunk_bytes, at)


def _stored_chunks(dataset: Any) -> list[tuple[tuple[int, ...], int, int, int]]:
    """(offset, filter mask, file address, stored size) of every chunk written."""
    found: list[tuple[tuple[int, ...], int, int, int]] = []
    dsid = dataset.id
    if hasattr(dsid, "chunk_iter"):
        try:
            dsid.chunk_iter(
                lambda s: found.append((s.chunk_offset, s.filter_mask, s.byte_offset, s.size))
            )
            return found
        except (AttributeError, NotImplementedError, RuntimeError):
            found.clear()  # an HDF5 older than 1.12.3: ask chunk by chunk instead
    for i in range(dsid.get_num_chunks()):
        s = dsid.get_chunk_info(i)
        found.append((s.chunk_offset, s.filter_mask, s.byte_offset, s.size))
    return found


def _check_inflate(
    dataset: Any, offset: tuple[int, ...], codes: list[int], chunk_bytes: int, at: str
) -> None:
    """Inflate one gzip chunk, keeping nothing, and refuse it when it passes its data's size."""
    _mask, raw = dataset.id.read_direct_chunk(offset)
    order = codes[codes.index(_DEFLATE) + 1 :]  # filters applied after gzip, undone first
    if _LZF in order:
        return  # gzip inside lzf: bounded by the lzf check and HDF5's own sizes
    if _FLETCHER32 in order:
        raw = raw[:-4]  # the checksum fletcher32 appends
    inflater = zlib.decompressobj()
    produced, data = 0, raw
    try:
        while data and produced <= chunk_bytes:
            out = inflater.decompress(data, chunk_bytes + 1 - produced)
            produced += len(out)
            data = inflater.unconsumed_tail
            if not out:
                break
    except zlib.error as exc:
        raise FormatError(f"{at} is not valid gzip data ({exc})") from None
    if produced > chunk_bytes:
        raise FormatError(
            f"{at} inflates to more than its {chunk_bytes:,} bytes of data (a decompression bomb, "
            "or a damaged file)"
        )
