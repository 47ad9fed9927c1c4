"""Bit patterns: ``encode`` values of a format to its storage codes and ``decode`` codes back to float64.

The layout is the standard one: sign bit, ``exponent_bits`` exponent field with bias ``1 - emin`` (field 0 holds zero
and subnormals), ``p - 1`` fraction bits. Specials: IEEE formats put ±inf (fraction 0) and NaN (quiet NaN, top fraction
bit set) in the all-ones exponent field; ``fn`` formats use only the all-ones code ``S.1…1.1…1`` for NaN; ``fnuz``
formats use ``0x80…0`` (the would-be -0) for NaN; ``finite`` formats have no special codes. The codes are identical to
ml_dtypes' for the types it has, so ``encode(x, "e4m3").view(ml_dtypes.float8_e4m3fn)`` holds the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..formats import Format, as_format
from .api import round as round_to_format
from .modes import RoundingMode

__all__ = ["encode", "decode", "code_dtype"]


def code_dtype(fmt: Format) -> np.dtype:
    """The smallest unsigned integer dtype that holds the format's codes."""
    bits = _require_bits(fmt)
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if bits <= np.dtype(dtype).itemsize * 8:
            return np.dtype(dtype)
    raise AssertionError(bits)


def _require_bits(fmt: Format) -> int:
    if fmt.bits is None:
        raise ValueError(
            f"{fmt} has no standard storage encoding: its exponent range {fmt.emin}..{fmt.emax} does not fill "
            "an exponent field"
        )
    return fmt.bits


def encode(x: Any, fmt: Format | str, mode: RoundingMode | str = "rne") -> np.ndarray:
    """Round ``x`` to ``fmt`` (in ``mode``) and return the storage codes as unsigned integers of x's shape.

    A NaN raises ``ValueError`` in a format without a NaN code (``finite`` formats, and IEEE formats with p = 1).

    >>> import lampnum as ln
    >>> ln.encode([1.0, -2.0, 448.0], "e4m3")
    array([ 56, 192, 126], dtype=uint8)
    """
    fmt = as_format(fmt)
    bits = _require_bits(fmt)
    values = round_to_format(np.asarray(x, dtype=np.float64), fmt, mode)
    dtype = code_dtype(fmt)
    fraction_bits = fmt.p - 1
    exponent_mask = (1 << fmt.exponent_bits) - 1  # type: ignore[operator]
    negative = np.signbit(values)
    magnitude = np.abs(values)
    nan = np.isnan(values)
    inf = np.isinf(values)
    finite = ~(nan | inf)
    normal = finite & (magnitude >= fmt.tiny)
    # frexp: magnitude = m·2^ex with m in [0.5, 1), so the binade exponent is ex - 1
    _, binade = np.frexp(np.where(normal, magnitude, 1.0))
    exponent = binade.astype(np.int64) - 1
    significand = np.ldexp(np.where(normal, magnitude, 0.0), fraction_bits - exponent).astype(np.uint64)
    subnormal_significand = np.ldexp(np.where(normal | ~finite, 0.0, magnitude), fmt.p - 1 - fmt.emin)
    fraction = np.where(normal, significand - np.uint64(1 << fraction_bits), subnormal_significand.astype(np.uint64))
    exponent_field = np.where(normal, exponent - fmt.emin + 1, 0).astype(np.uint64)
    codes = (exponent_field << np.uint64(fraction_bits)) | fraction
    if inf.any():
        codes[inf] = np.uint64(exponent_mask) << np.uint64(fraction_bits)
    if nan.any():
        if not fmt.has_nan or (fmt.specials == "ieee" and fmt.p == 1):
            raise ValueError(f"{fmt} has no NaN code, and the input holds NaN (or a value that rounds to NaN)")
        if fmt.specials == "ieee":
            nan_code = (exponent_mask << fraction_bits) | (1 << (fraction_bits - 1))
        elif fmt.specials == "fn":
            nan_code = (1 << (bits - 1)) - 1
        else:  # fnuz: the negative-zero code, and no sign
            nan_code = 1 << (bits - 1)
            negative = negative & ~nan
        codes[nan] = np.uint64(nan_code)
    codes = codes | (negative.astype(np.uint64) << np.uint64(bits - 1))
    return codes.astype(dtype)


def decode(codes: Any, fmt: Format | str) -> np.ndarray:
    """The float64 values of the storage codes ``codes`` (unsigned or non-negative integers below 2^bits).

    A subnormal code of a format without subnormals raises ``ValueError`` (such codes are never produced).

    >>> import lampnum as ln
    >>> ln.decode([56, 192, 126, 127], "e4m3")
    array([  1.,  -2., 448.,  nan])
    """
    fmt = as_format(fmt)
    bits = _require_bits(fmt)
    array = np.asarray(codes)
    if array.dtype.kind not in "ui":
        raise TypeError(f"codes must be integers, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or (bits < 64 and array.max() >= (1 << bits))):
        raise ValueError(f"codes must lie in [0, 2^{bits}) for {fmt}")
    code = array.astype(np.uint64)
    fraction_bits = fmt.p - 1
    exponent_mask = (1 << fmt.exponent_bits) - 1  # type: ignore[operator]
    negative = (code >> np.uint64(bits - 1)) & np.uint64(1) == 1
    exponent_field = ((code >> np.uint64(fraction_bits)) & np.uint64(exponent_mask)).astype(np.int64)
    fraction = (code & np.uint64((1 << fraction_bits) - 1)).astype(np.float64)
    subnormal = exponent_field == 0
    if not fmt.subnormals and np.any(subnormal & (fraction != 0)):
        raise ValueError(f"{fmt} has no subnormals, but a code with exponent field 0 and a nonzero fraction was given")
    significand = np.where(subnormal, fraction, fraction + float(1 << fraction_bits))
    exponent = np.where(subnormal, fmt.emin, exponent_field - fmt.bias) - fraction_bits
    values = np.ldexp(significand, exponent.astype(np.int64))
    values = np.where(negative, -values, values)
    top = exponent_field == exponent_mask
    all_ones_fraction = fraction == float((1 << fraction_bits) - 1)
    if fmt.specials == "ieee":
        values = np.where(top & (fraction == 0), np.where(negative, -np.inf, np.inf), values)
        values = np.where(top & (fraction != 0), np.nan, values)
    elif fmt.specials == "fn":
        values = np.where(top & all_ones_fraction, np.nan, values)
    elif fmt.specials == "fnuz":
        values = np.where(code == np.uint64(1 << (bits - 1)), np.nan, values)
    return values
