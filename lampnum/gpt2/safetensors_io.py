"""A validating reader of the safetensors format, bfloat16 included.

File layout (https://github.com/huggingface/safetensors): an unsigned 64-bit little-endian header length
``N``; ``N`` bytes of UTF-8 JSON mapping each tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional ``"__metadata__"`` string map); then
the byte buffer, offsets relative to its start, little-endian, C order.

Every claim of the header is checked before a byte of data is read: the length fits the file, the JSON is an
object without duplicate names, each dtype is known, each shape is a list of non-negative integers,
``end - begin`` equals ``prod(shape)·itemsize``, and the tensors tile the buffer exactly (no overlap, no hole,
no trailing bytes), as the ``safetensors`` library also requires. A violation raises :class:`SafetensorsError`
naming the file and the tensor.

This reader exists because ``safetensors.numpy`` cannot return bfloat16 (numpy has no such dtype); here BF16
is widened exactly to float32 by a 16-bit shift. The ``safetensors`` library remains the writer, and the tests
check this reader against it.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lampnum.gpt2.errors import SafetensorsError

__all__ = ["FLOAT_DTYPES", "SafetensorsError", "TensorInfo", "read_header", "read_tensors"]

#: Item sizes of the safetensors dtype names (the ones a header may legally contain).
ITEMSIZE = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
#: Floating dtypes this reader returns as numpy arrays (BF16 as float32, exactly).
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
_NUMPY = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8"}
MAX_HEADER = 100_000_000  # the safetensors library's own limit


@dataclass(frozen=True)
class TensorInfo:
    """One validated header entry: ``dtype`` name, ``shape``, absolute byte ``offset``, ``nbytes``."""

    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    d: dict[str, object] = {}
    for k, v in pairs:
        if k in d:
            raise SafetensorsError(f"duplicate name {k!r} in the header")
        d[k] = v
    return d


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _entry(name: str, e: object, data_start: int, data_len: int) -> TensorInfo:
    if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsError(
            f"tensor {name!r}: entry must have exactly dtype, shape, data_offsets; got {e!r}"
        )
    dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
    if dtype not in ITEMSIZE:
        raise SafetensorsError(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_int(n) and n >= 0 for n in shape):
        raise SafetensorsError(
            f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}"
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise SafetensorsError(f"tensor {name!r}: data_offsets must be two integers, got {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end <= data_len:
        raise SafetensorsError(
            f"tensor {name!r}: data_offsets {offsets} outside the data buffer of {data_len} bytes "
            "(the header lies or the file is truncated)"
        )
    nbytes = math.prod(shape) * ITEMSIZE[dtype]
    if end - begin != nbytes:
        raise SafetensorsError(
            f"tensor {name!r}: {dtype} {shape} needs {nbytes} bytes but data_offsets span {end - begin}"
        )
    return TensorInfo(dtype, tuple(shape), data_start + begin, nbytes)


def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Validate the whole header of ``path`` against the file's size; return ``(tensors, metadata)``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise SafetensorsError(f"{path}: {size} bytes, too short for a safetensors file (truncated?)")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER or 8 + n > size:
                raise SafetensorsError(
                    f"{path}: header length field says {n} bytes but the file has {size} "
                    "(truncated, or not safetensors)"
                )
            raw = f.read(n)
    except OSError as e:
        raise SafetensorsError(f"{path}: cannot read: {e}") from None
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except SafetensorsError as e:
        raise SafetensorsError(f"{path}: {e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings, got {metadata!r}")
    data_start = 8 + n
    data_len = size - data_start
    try:
        tensors = {name: _entry(name, e, data_start, data_len) for name, e in header.items()}
    except SafetensorsError as e:
        raise SafetensorsError(f"{path}: {e}") from None
    covered = data_start
    for name, t in sorted(tensors.items(), key=lambda kv: (kv[1].offset, kv[1].nbytes)):
        if t.offset != covered:
            what = "overlaps the tensor before it" if t.offset < covered else "leaves a gap before it"
            raise SafetensorsError(f"{path}: tensor {name!r} at byte {t.offset} {what} (ends at {covered})")
        covered += t.nbytes
    if covered != size:
        raise SafetensorsError(f"{path}: tensors end at byte {covered} but the file has {size} bytes")
    return tensors, metadata


def read_tensors(
    path: str | os.PathLike[str],
    names: Iterable[str] | None = None,
    header: dict[str, TensorInfo] | None = None,
) -> dict[str, np.ndarray]:
    """Read the named tensors (all when ``names`` is None) as owned numpy arrays.

    F16, F32 and F64 keep their type; BF16 is widened exactly to float32. Any other dtype raises
    :class:`SafetensorsError` naming the tensor. ``header``, when given, is ``read_header(path)[0]`` already
    read.
    """
    path = Path(path)
    tensors = read_header(path)[0] if header is None else header
    wanted = list(tensors) if names is None else list(names)
    for name in wanted:
        if name not in tensors:
            raise SafetensorsError(f"{path}: no tensor {name!r}")
        if tensors[name].dtype not in FLOAT_DTYPES:
            raise SafetensorsError(
                f"{path}: tensor {name!r} has dtype {tensors[name].dtype}; expected one of {FLOAT_DTYPES}"
            )
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        for name in wanted:
            t = tensors[name]
            dt = np.dtype(_NUMPY[t.dtype])
            count = t.nbytes // dt.itemsize
            f.seek(t.offset)
            a = np.fromfile(f, dtype=dt, count=count) if count else np.empty(0, dt)
            if a.size != count:
                raise SafetensorsError(f"{path}: tensor {name!r}: file shrank while reading")
            if t.dtype == "BF16":
                a = (a.astype(np.uint32) << 16).view(np.float32)
            out[name] = a.astype(a.dtype.newbyteorder("="), copy=False).reshape(t.shape)
    return out
