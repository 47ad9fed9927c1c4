"""Fast kernels of the emulated matrix product for the hot specs: one float64 (or float32) operation per update and a
rounding by integer operations on its IEEE encoding, with a certified test for the rare elements that need more.

**Exact products, one accumulator rounding per step** (strict ``block=1``; deterministic modes rne, rna, rtz, rup,
rdn, rto; accumulator ``2 <= p <= 51``). With ``s`` the accumulator and ``d``
the addend (an exact product), the update is ``round_p(x)`` with ``x = s + d`` exact. The kernel
computes ``t = fl(s + d) = RN53(x)`` with one float64 addition and rounds ``t`` instead of ``x``. That is the same
result unless a *boundary* of the p-bit rounding lies between ``x`` and ``t`` or at ``t``: the boundaries are the
midpoints of consecutive p-bit numbers for the nearest modes and the p-bit numbers themselves for the directed modes
and round-to-odd, and all of them are float64 numbers (``p + 1 <= 53`` bits). A boundary ``m`` strictly between
``x`` and ``t`` would be a float64 number closer to ``x`` than ``t = RN53(x)``, impossible; and ``x`` on a boundary is
a float64 number, so ``t = x``. Hence ``round_p(t) = round_p(x)`` whenever ``t`` is not itself on a boundary — its
dropped ``53 - p`` bits are not exactly ``100…0`` (nearest) or ``000…0`` (directed, rto) — and ``t`` lies in the
format's normal range (there the p-bit rounding is a rounding of ``t``'s significand field, a carry landing in the
exponent field; see :func:`lampnum.emulate.accumulate.round_value_normal`). ``t = 0`` is exact (a nonzero sum of
float64 numbers is at least 2^-1074), so it is committed as it is. Every other element is *flagged* and redone with
:func:`lampnum.emulate.accumulate.round_sum` (TwoSum, round-to-odd, rounding: Boldo & Melquiond 2008) from its
unchanged accumulator. Stochastic modes stay on :mod:`~lampnum.emulate.matmul_kernels` (their probabilities need the
exact remainder).

**The LAMP paper's fp32 register** (``product="fp32"``, ``via="fp32"``, rne, accumulator ``p <= 24`` inside fp32's
exponent range, float32-valued operands): ``RN32(a·b)`` is the float32 hardware product and ``RN32(s + product)``
the float32 hardware addition (IEEE 754 correct rounding; Numba compiles without fastmath, so nothing is contracted
into an FMA or flushed to zero), then the rounding of the register to p bits is a deliberate second rounding of an
exact float32 value, done on its encoding. Products or registers that are subnormal, overflow, inf or NaN (and a
zero product of nonzero operands) are flagged and redone with the general roundings.

Loop order: the output is cut into tiles of ``ROWS`` rows × ``COLS`` columns (accumulators stay in L1
while a row of B's column panel is reused for every row of the tile); tiles run in parallel. Each element still sees
its k in increasing order, so the results do not depend on tiling or threads.

Block FMA (``block > 1``) stays on :mod:`~lampnum.emulate.matmul_kernels`: a version of this kernel with fp64 block
sums (same certified accumulator rounding) measured 2-3x *slower* than the existing block kernel there, whose cost is
the block-sum loop, not the rounding.

Pure-Python twins of the rounding decisions, with the same variable names: :func:`fast_round_reference` and
:func:`register_round_reference`.
"""

from __future__ import annotations

import functools
import struct

import numpy as np
from numba import njit, prange

from ..rounding.kernels import _U0, _U1, RNA, RNE, RTO, RTZ, RUP, round_bits
from .accumulate import round_sum

__all__ = ["ROWS", "COLS", "fast_round", "fast_round_reference", "register_round", "register_round_reference",
           "exact_product_kernel", "register_kernel"]  # fmt: skip

ROWS = 8
COLS = 256
_SIGN = np.uint64(0x8000000000000000)
_ABS = np.uint64(0x7FFFFFFFFFFFFFFF)
_F32_ABS = np.uint32(0x7FFFFFFF)
_F32_MIN_NORMAL_BITS = np.uint32(0x00800000)
_F32_INF_BITS = np.uint32(0x7F800000)


@njit(cache=True, inline="always")
def fast_round(t: float, precision: int, emin: int, max_bits: np.uint64, unsigned_zero: bool,
               mode: int) -> tuple[float, bool]:  # fmt: skip
    """(round_p(t), ok): the rounding of the float64 ``t = fl(s + d)`` by bit operations, and whether it is certified
    to equal round_p(s + d) (see the module docstring). Branch-free; ``mode`` is a compile-time constant."""
    bits = np.float64(t).view(np.uint64)
    sign = bits & _SIGN
    magnitude = bits & _ABS
    shift = np.uint64(53 - precision)
    unit = _U1 << shift
    low = unit - _U1
    half = unit >> _U1
    remainder = magnitude & low
    kept_bits = magnitude & ~low
    kept_odd = (magnitude >> shift) & _U1
    if mode == RNE:
        rounded_bits = (magnitude + (half - _U1) + kept_odd) & ~low
    elif mode == RNA:
        rounded_bits = (magnitude + half) & ~low
    elif mode == RTZ:
        rounded_bits = kept_bits
    elif mode == RUP:
        rounded_bits = kept_bits if sign != _U0 else (magnitude + low) & ~low
    elif mode == RTO:
        rounded_bits = kept_bits | (unit if remainder != _U0 else _U0)
    else:  # RDN
        rounded_bits = (magnitude + low) & ~low if sign != _U0 else kept_bits
    on_boundary = remainder == half if (mode == RNE or mode == RNA) else remainder == _U0
    normal = np.int64(magnitude >> np.uint64(52)) >= emin + 1023
    zero = magnitude == _U0
    ok = zero | (normal & (rounded_bits <= max_bits) & (not on_boundary))
    result_bits = (_U0 if unsigned_zero else sign) if zero else rounded_bits | sign
    return np.uint64(result_bits).view(np.float64), ok


def fast_round_reference(t: float, precision: int, emin: int, max_value: float, unsigned_zero: bool,
                         mode: str) -> tuple[float, bool]:  # fmt: skip
    """Pure-Python twin of :func:`fast_round` (mode a name: rne rna rtz rup rdn rto), on Python integers."""
    bits = struct.unpack("<Q", struct.pack("<d", t))[0]
    sign = bits & (1 << 63)
    magnitude = bits & ((1 << 63) - 1)
    max_bits = struct.unpack("<Q", struct.pack("<d", max_value))[0]
    shift = 53 - precision
    unit = 1 << shift
    low = unit - 1
    half = unit >> 1
    remainder = magnitude & low
    kept_bits = magnitude & ~low
    kept_odd = (magnitude >> shift) & 1
    rounded_bits = {
        "rne": (magnitude + (half - 1) + kept_odd) & ~low,
        "rna": (magnitude + half) & ~low,
        "rtz": kept_bits,
        "rup": kept_bits if sign else (magnitude + low) & ~low,
        "rdn": (magnitude + low) & ~low if sign else kept_bits,
        "rto": kept_bits | (unit if remainder else 0),
    }[mode]
    on_boundary = remainder == half if mode in ("rne", "rna") else remainder == 0
    normal = (magnitude >> 52) >= emin + 1023
    zero = magnitude == 0
    ok = zero or (normal and rounded_bits <= max_bits and not on_boundary)
    result_bits = (0 if unsigned_zero else sign) if zero else rounded_bits | sign
    return struct.unpack("<d", struct.pack("<Q", result_bits))[0], ok


@njit(cache=True, inline="always")
def register_round(register: np.float32, precision: int, emin: int, max_bits: np.uint64,
                   unsigned_zero: bool) -> tuple[np.float32, bool]:  # fmt: skip
    """(round_p(register) in rne, ok) for an exact float32 register value: ok when the register is zero or lies in
    the accumulator's normal range and its rounding does not exceed the accumulator's max (``max_bits``: float64
    encoding). The rounding is on the float64 encoding (float32 -> float64 is exact)."""
    wide = np.float64(register)
    bits = wide.view(np.uint64)
    sign = bits & _SIGN
    magnitude = bits & _ABS
    shift = np.uint64(53 - precision)
    low = (_U1 << shift) - _U1
    half = (_U1 << shift) >> _U1
    kept_odd = (magnitude >> shift) & _U1
    rounded_bits = (magnitude + (half - _U1) + kept_odd) & ~low
    normal = np.int64(magnitude >> np.uint64(52)) >= emin + 1023
    zero = magnitude == _U0
    ok = zero | (normal & (rounded_bits <= max_bits))
    result_bits = (_U0 if unsigned_zero else sign) if zero else rounded_bits | sign
    return np.float32(np.uint64(result_bits).view(np.float64)), ok


def register_round_reference(register: float, precision: int, emin: int, max_value: float,
                             unsigned_zero: bool) -> tuple[float, bool]:  # fmt: skip
    """Pure-Python twin of :func:`register_round` (the register a Python float holding a float32 value): the rne
    rounding of :func:`fast_round_reference`, but midpoints are committed too (the register's double rounding is the
    spec, not an approximation of an exact sum)."""
    result, ok = fast_round_reference(register, precision, emin, max_value, unsigned_zero, "rne")
    shift = 53 - precision
    magnitude = struct.unpack("<Q", struct.pack("<d", register))[0] & ((1 << 63) - 1)
    midpoint = magnitude & ((1 << shift) - 1) == 1 << (shift - 1)
    if midpoint and not ok:  # a midpoint in the normal range is committed when its rounding stays <= max
        max_bits = struct.unpack("<Q", struct.pack("<d", max_value))[0]
        rounded = struct.unpack("<Q", struct.pack("<d", abs(result)))[0]
        ok = (magnitude >> 52) >= emin + 1023 and rounded <= max_bits
    return result, ok


@njit(cache=True)
def _round_sum_params(x, y, params, mode):  # noqa: ANN001, ANN202 - Numba types these
    """round_sum(x, y) with a lowered parameter tuple (precision, emin, subnormals, max, overflow, inf, zero)."""
    return round_sum(x, y, params[0], params[1], params[2], params[3], params[4], params[5], params[6], mode, _U0,
                     False)  # fmt: skip


@njit(cache=True)
def _round_value_params(value, params):  # noqa: ANN001, ANN202
    """round_bits of a float64 value in rne with a lowered parameter tuple."""
    return round_bits(np.float64(value).view(np.uint64), params[0], params[1], params[2], params[3], params[4],
                      params[5], params[6], RNE, _U0)  # fmt: skip


@njit(cache=True)
def _update_row(acc_row, addend_row, scale, flags, acc_params, max_bits, mode):  # noqa: ANN001, ANN202
    """acc_row[n] = round_acc(acc_row[n] + scale·addend_row[n]) for every n (the products exact): the fast pass commits
    certified elements, then the flagged ones are redone with ``round_sum``."""
    flagged = 0
    for n in range(acc_row.shape[0]):
        old = acc_row[n]
        result, ok = fast_round(old + scale * addend_row[n], acc_params[0], acc_params[1], max_bits, acc_params[6],
                                mode)  # fmt: skip
        acc_row[n] = result if ok else old
        flags[n] = not ok
        flagged += not ok
    if flagged == 0:
        return
    for n in range(acc_row.shape[0]):
        if flags[n]:
            acc_row[n] = _round_sum_params(acc_row[n], scale * addend_row[n], acc_params, mode)


@njit(cache=True)
def _tile_bounds(tile, n_rows, n_cols):  # noqa: ANN001, ANN202
    """(matrix, first row, last row, first column, last column) of a tile: matrices × row tiles × column tiles."""
    row_tiles = (n_rows + ROWS - 1) // ROWS
    col_tiles = (n_cols + COLS - 1) // COLS
    t = tile // (row_tiles * col_tiles)
    rest = tile % (row_tiles * col_tiles)
    row_start = (rest // col_tiles) * ROWS
    col_start = (rest % col_tiles) * COLS
    return t, row_start, min(n_rows, row_start + ROWS), col_start, min(n_cols, col_start + COLS)


def _make_exact_product_kernel(mode: int):  # noqa: ANN202 - returns a Numba dispatcher
    @njit(cache=True, parallel=True)
    def exact_product_kernel(a, b, a_index, b_index, out, acc_params, max_bits):  # noqa: ANN001, ANN202
        """``out[t] = A[a_index[t]] @ B[b_index[t]]``, exact products, strict (block = 1), the accumulator rounded
        in ``mode`` (a closure constant)."""
        n_rows, n_cols = out.shape[1], out.shape[2]
        depth = a.shape[2]
        for tile in prange(n_tiles_of(out)):
            t, row_start, row_stop, col_start, col_stop = _tile_bounds(tile, n_rows, n_cols)
            a_mat = a[a_index[t]]
            b_mat = b[b_index[t]]
            rows = row_stop - row_start
            acc = np.zeros((rows, col_stop - col_start))
            flags = np.empty(col_stop - col_start, dtype=np.bool_)
            for k in range(depth):
                b_panel = b_mat[k, col_start:col_stop]
                for r in range(rows):
                    _update_row(acc[r], b_panel, a_mat[row_start + r, k], flags, acc_params, max_bits, mode)
            out[t, row_start:row_stop, col_start:col_stop] = acc

    return exact_product_kernel


@njit(cache=True)
def n_tiles_of(out):  # noqa: ANN001, ANN201
    """:func:`n_tiles` inside the kernels."""
    return out.shape[0] * ((out.shape[1] + ROWS - 1) // ROWS) * ((out.shape[2] + COLS - 1) // COLS)


@functools.cache
def exact_product_kernel(mode: int) -> object:
    """The exact-product kernel for a deterministic mode code (0..5), compiled on first use."""
    return _make_exact_product_kernel(mode)


@njit(cache=True)
def _register_row(acc_row, b_panel, a_value, flags, product_params, via_params, acc_params, max_bits):  # noqa: ANN001, ANN202
    """acc_row[n] = round_acc(RN32(acc_row[n] + RN32(a·b[n]))) in float32 lanes; flagged elements are redone with
    the general roundings in float64."""
    flagged = 0
    a_zero = a_value == 0
    for n in range(acc_row.shape[0]):
        old = acc_row[n]
        product = a_value * b_panel[n]
        product_magnitude = np.float32(product).view(np.uint32) & _F32_ABS
        product_ok = ((product_magnitude >= _F32_MIN_NORMAL_BITS) & (product_magnitude < _F32_INF_BITS)) | (
            (product_magnitude == 0) & (a_zero | (b_panel[n] == 0)))  # fmt: skip
        result, ok = register_round(np.float32(old + product), acc_params[0], acc_params[1], max_bits, acc_params[6])
        ok = ok & product_ok
        acc_row[n] = result if ok else old
        flags[n] = not ok
        flagged += not ok
    if flagged == 0:
        return
    for n in range(acc_row.shape[0]):
        if flags[n]:
            product = _round_value_params(np.float64(a_value) * np.float64(b_panel[n]), product_params)
            register = _round_sum_params(np.float64(acc_row[n]), product, via_params, RNE)
            acc_row[n] = np.float32(_round_value_params(register, acc_params))


@njit(cache=True, parallel=True)
def register_kernel(a, b, a_index, b_index, out, product_params, via_params, acc_params, max_bits):  # noqa: ANN001, ANN201
    """The LAMP paper's fp32-register accumulation (rne) on float32 operands ``a``, ``b``; ``out`` float64."""
    n_rows, n_cols = out.shape[1], out.shape[2]
    depth = a.shape[2]
    for tile in prange(n_tiles_of(out)):
        t, row_start, row_stop, col_start, col_stop = _tile_bounds(tile, n_rows, n_cols)
        a_mat = a[a_index[t]]
        b_mat = b[b_index[t]]
        rows = row_stop - row_start
        acc = np.zeros((rows, col_stop - col_start), dtype=np.float32)
        flags = np.empty(col_stop - col_start, dtype=np.bool_)
        for k in range(depth):
            b_panel = b_mat[k, col_start:col_stop]
            for r in range(rows):
                _register_row(acc[r], b_panel, a_mat[row_start + r, k], flags, product_params, via_params,
                              acc_params, max_bits)  # fmt: skip
        for r in range(rows):
            for n in range(col_stop - col_start):
                out[t, row_start + r, col_start + n] = np.float64(acc[r, n])
