"""One parallel pass over a matmul operand for every fact the kernels' exactness conditions and range certificates
need: finiteness, magnitudes, exponents, significant bits and the least significant set bit, read off the IEEE
encoding with integer operations (so the facts are exact).

For a finite nonzero float64 ``x`` with ``|x| = significand · 2^q`` (``significand`` odd): ``exponent = floor(log2
|x|)``, ``significant_bits = exponent - q + 1`` and ``lsb = q``. :func:`operand_stats_reference` is the pure-Python
twin (``math.frexp`` and Python integers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

__all__ = ["OperandStats", "operand_stats", "operand_stats_reference", "max_abs_row_sum", "max_abs_col_sum"]

_CHUNKS = 64
_BIG = 1 << 30
_U0, _U1, _U52 = np.uint64(0), np.uint64(1), np.uint64(52)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_MAGNITUDE = np.uint64(0x7FFFFFFFFFFFFFFF)
_FRACTION = np.uint64(0xFFFFFFFFFFFFF)
_LARGEST_FINITE = np.uint64(0x7FEFFFFFFFFFFFFF)  # the encoding of float64's max
_INF_BITS = np.uint64(0x7FF0000000000000)


@dataclass(frozen=True)
class OperandStats:
    """Facts about an operand, over its finite nonzero entries (``count`` of them; the exponent fields are 0 and
    ``min_abs``/``max_abs`` inf/0 when there is none)."""

    finite: bool
    count: int
    max_significant_bits: int
    min_exponent: int
    max_exponent: int
    lsb: int
    min_abs: float
    max_abs: float


@njit(cache=True)
def _element_facts(bits: np.uint64) -> tuple[int, int, int]:
    """(exponent, significant bits, lsb) of a finite nonzero float64 encoding."""
    field = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    mantissa = bits & np.uint64(0xFFFFFFFFFFFFF)
    if field == 0:  # subnormal: |x| = mantissa · 2^-1074
        top = 63 - np.int64(leading_zeros(mantissa))
        low = np.int64(trailing_zeros(mantissa))
        return top - 1074, top - low + 1, low - 1074
    significand = mantissa | np.uint64(1 << 52)
    low = np.int64(trailing_zeros(significand))
    return field - 1023, 53 - low, field - 1075 + low


@njit(cache=True, parallel=True)
def _stats_kernel(flat):  # noqa: ANN001, ANN202 - Numba types these
    """Branch-free integer reductions (they run on vector lanes), per chunk: the largest magnitude encoding over all
    entries (finiteness), and over the finite nonzero ones their count, smallest and largest magnitude encodings,
    least significant bit and most significant bits. A trailing-zero count is the exponent of the lowest set bit
    converted to float64 (exact: a power of two), the top bit that of the significand (exact: below 2^53)."""
    size = flat.shape[0]
    top = np.zeros(_CHUNKS, dtype=np.uint64)
    count = np.zeros(_CHUNKS, dtype=np.int64)
    max_bits = np.zeros(_CHUNKS, dtype=np.int64)
    lsb = np.full(_CHUNKS, _BIG, dtype=np.int64)
    smallest = np.zeros(_CHUNKS, dtype=np.uint64)
    largest = np.zeros(_CHUNKS, dtype=np.uint64)
    for chunk in prange(_CHUNKS):
        start = size * chunk // _CHUNKS
        stop = size * (chunk + 1) // _CHUNKS
        chunk_top, chunk_count, chunk_bits, chunk_lsb = _U0, 0, 0, _BIG
        chunk_smallest, chunk_largest = _ALL, _U0
        for i in range(start, stop):
            magnitude = np.float64(flat[i]).view(np.uint64) & _MAGNITUDE
            nonzero_finite = (magnitude - _U1) < _LARGEST_FINITE  # zero wraps to the top
            field = np.int64(magnitude >> _U52)
            significand = (magnitude & _FRACTION) | (np.uint64(field != 0) << _U52)
            lowest = significand & (~significand + _U1)
            low = np.int64(np.float64(np.int64(lowest)).view(np.uint64) >> _U52) - 1023
            high = np.int64(np.float64(np.int64(significand)).view(np.uint64) >> _U52) - 1023
            chunk_top = max(chunk_top, magnitude)
            chunk_count += nonzero_finite
            chunk_largest = max(chunk_largest, magnitude if nonzero_finite else _U0)
            chunk_smallest = min(chunk_smallest, magnitude if nonzero_finite else _ALL)
            chunk_lsb = min(chunk_lsb, max(field, 1) - 1075 + low if nonzero_finite else _BIG)
            chunk_bits = max(chunk_bits, high - low + 1 if nonzero_finite else 0)
        top[chunk], count[chunk], max_bits[chunk], lsb[chunk] = chunk_top, chunk_count, chunk_bits, chunk_lsb
        smallest[chunk], largest[chunk] = chunk_smallest, chunk_largest
    return top.max(), count.sum(), max_bits.max(), lsb.min(), smallest.min(), largest.max()


def operand_stats(x: np.ndarray) -> OperandStats:
    """The :class:`OperandStats` of a float32 or float64 array (one parallel Numba pass)."""
    flat = np.ravel(x, order="K")  # a view for any contiguous layout (a transposed operand is not copied): the
    # facts do not depend on the order
    if flat.size == 0:
        return OperandStats(True, 0, 0, 0, 0, 0, math.inf, 0.0)
    top, count, bits, lsb, smallest, largest = _stats_kernel(flat)
    finite = top < _INF_BITS
    if count == 0:
        return OperandStats(bool(finite), 0, 0, 0, 0, 0, math.inf, 0.0)
    min_exp = _element_facts(np.uint64(smallest))[0]  # the exponent grows with the magnitude's encoding
    max_exp = _element_facts(np.uint64(largest))[0]
    return OperandStats(bool(finite), int(count), int(bits), int(min_exp), int(max_exp), int(lsb),
                        float(np.uint64(smallest).view(np.float64)), float(np.uint64(largest).view(np.float64)))


def operand_stats_reference(values: list[float]) -> OperandStats:
    """Pure-Python twin of :func:`operand_stats` on a list of floats (``math.frexp``, Python integers)."""
    finite = all(math.isfinite(v) for v in values)
    facts = []
    for value in values:
        if not math.isfinite(value) or value == 0:
            continue
        mantissa, exp2 = math.frexp(abs(value))  # |value| = mantissa · 2^exp2, 0.5 <= mantissa < 1
        significand, q = int(mantissa * 2**53), exp2 - 53
        while significand % 2 == 0:
            significand //= 2
            q += 1
        exponent = exp2 - 1
        facts.append((exponent, exponent - q + 1, q, abs(value)))
    if not facts:
        return OperandStats(finite, 0, 0, 0, 0, 0, math.inf, 0.0)
    return OperandStats(finite, len(facts), max(f[1] for f in facts), min(f[0] for f in facts),
                        max(f[0] for f in facts), min(f[2] for f in facts), min(f[3] for f in facts),
                        max(f[3] for f in facts))  # fmt: skip


@njit(cache=True, parallel=True)
def max_abs_row_sum(a):  # noqa: ANN001, ANN201
    """max over (batch, i) of sum_k |a[batch, i, k]| for a 3-D array (float64 sums, rounded to nearest)."""
    rows = a.shape[0] * a.shape[1]
    sums = np.zeros(rows)
    for row in prange(rows):
        t, i = row // a.shape[1], row % a.shape[1]
        total = 0.0
        for k in range(a.shape[2]):
            total += abs(np.float64(a[t, i, k]))
        sums[row] = total
    return sums.max() if rows else 0.0


@njit(cache=True, parallel=True)
def max_abs_col_sum(b):  # noqa: ANN001, ANN201
    """max over (batch, j) of sum_k |b[batch, k, j]| for a 3-D array (float64 sums, rounded to nearest)."""
    sums = np.zeros((b.shape[0], b.shape[2]))
    for t in prange(b.shape[0]):
        for k in range(b.shape[1]):
            for j in range(b.shape[2]):
                sums[t, j] += abs(np.float64(b[t, k, j]))
    return sums.max() if sums.size else 0.0
