"""128-bit unsigned integer arithmetic on pairs of ``uint64`` words, for Numba kernels.

A 128-bit number is the pair ``(hi, lo)`` meaning ``hi·2^64 + lo``. These are the few operations the exact
elementwise kernels need (:mod:`lampnum.emulate.exact`): the full product of two 64-bit words, shifts (right
shifts report whether any 1 bit fell off, the *sticky* bit), addition, subtraction, comparison and the bit
length. Arithmetic wraps modulo 2^128 as C unsigned arithmetic does; callers keep their numbers below 2^128.

Every shift amount is checked against the word width before shifting: LLVM (and so Numba) leaves ``x << 64``
undefined. All constants are ``np.uint64`` so that Numba never mixes signed and unsigned words (which it would
type as float64).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["mul_64x64", "shift_left", "shift_right_sticky", "add_128", "sub_128", "less_128", "bit_length_64",
           "bit_length_128", "low_mask"]  # fmt: skip

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U32 = np.uint64(32)
_MASK32 = np.uint64(0xFFFFFFFF)


@njit(cache=True)
def low_mask(count: int) -> np.uint64:
    """2^count − 1 for 0 <= count <= 64 (the mask of the ``count`` low bits)."""
    if count >= 64:
        return ~_U0
    if count <= 0:
        return _U0
    return (_U1 << np.uint64(count)) - _U1


@njit(cache=True)
def mul_64x64(x: np.uint64, y: np.uint64) -> tuple[np.uint64, np.uint64]:
    """The exact 128-bit product ``x·y`` as ``(hi, lo)``, by 32-bit limbs (schoolbook; no carry is lost:
    ``middle < 3·2^32``)."""
    x0 = x & _MASK32
    x1 = x >> _U32
    y0 = y & _MASK32
    y1 = y >> _U32
    p00 = x0 * y0
    p01 = x0 * y1
    p10 = x1 * y0
    p11 = x1 * y1
    middle = (p00 >> _U32) + (p01 & _MASK32) + (p10 & _MASK32)
    lo = (p00 & _MASK32) | (middle << _U32)
    hi = p11 + (p01 >> _U32) + (p10 >> _U32) + (middle >> _U32)
    return hi, lo


@njit(cache=True)
def shift_left(hi: np.uint64, lo: np.uint64, count: int) -> tuple[np.uint64, np.uint64]:
    """``(hi, lo) · 2^count`` modulo 2^128, for 0 <= count < 128."""
    if count <= 0:
        return hi, lo
    if count >= 64:
        return lo << np.uint64(count - 64), _U0
    return (hi << np.uint64(count)) | (lo >> np.uint64(64 - count)), lo << np.uint64(count)


@njit(cache=True)
def shift_right_sticky(hi: np.uint64, lo: np.uint64, count: int) -> tuple[np.uint64, np.uint64, bool]:
    """``floor((hi, lo) / 2^count)`` for any ``count >= 0``, and whether the dropped bits were nonzero
    (sticky)."""
    if count <= 0:
        return hi, lo, False
    if count >= 128:
        return _U0, _U0, (hi | lo) != _U0
    if count >= 64:
        sticky = lo != _U0 or (hi & low_mask(count - 64)) != _U0
        return _U0, hi >> np.uint64(count - 64), sticky
    sticky = (lo & low_mask(count)) != _U0
    return hi >> np.uint64(count), (lo >> np.uint64(count)) | (hi << np.uint64(64 - count)), sticky


@njit(cache=True)
def add_128(
    x_hi: np.uint64, x_lo: np.uint64, y_hi: np.uint64, y_lo: np.uint64
) -> tuple[np.uint64, np.uint64]:
    """``x + y`` modulo 2^128."""
    lo = x_lo + y_lo
    carry = _U1 if lo < x_lo else _U0
    return x_hi + y_hi + carry, lo


@njit(cache=True)
def sub_128(
    x_hi: np.uint64, x_lo: np.uint64, y_hi: np.uint64, y_lo: np.uint64
) -> tuple[np.uint64, np.uint64]:
    """``x − y`` modulo 2^128 (the true difference when ``x >= y``)."""
    borrow = _U1 if x_lo < y_lo else _U0
    return x_hi - y_hi - borrow, x_lo - y_lo


@njit(cache=True)
def less_128(x_hi: np.uint64, x_lo: np.uint64, y_hi: np.uint64, y_lo: np.uint64) -> bool:
    """``x < y``."""
    return bool(x_hi < y_hi or (x_hi == y_hi and x_lo < y_lo))


@njit(cache=True)
def _bit_length_32(x: np.uint64) -> int:
    """Bit length of ``x < 2^32``, read off the exponent of float64(x) (an exact conversion); 0 for x = 0."""
    if x == _U0:
        return np.int64(0)
    return np.int64((np.float64(x).view(np.uint64) >> np.uint64(52)) & np.uint64(0x7FF)) - 1022


@njit(cache=True)
def bit_length_64(x: np.uint64) -> int:
    """The number of bits of ``x`` (0 for 0), as Python's ``int.bit_length``."""
    top = x >> _U32
    if top != _U0:
        return 32 + _bit_length_32(top)
    return _bit_length_32(x)


@njit(cache=True)
def bit_length_128(hi: np.uint64, lo: np.uint64) -> int:
    """The number of bits of ``hi·2^64 + lo`` (0 for 0)."""
    if hi != _U0:
        return 64 + bit_length_64(hi)
    return bit_length_64(lo)
