"""Vectorised kernels for the hottest specs, built on a *range certificate*: a cheap test on the operands that proves
no partial sum of the product can leave the accumulator's normal range, so the inner loop needs no range checks.

**Strict round-to-nearest-even with exact products** (``block=1``, accumulator ``2 <= p <= 51``). With ``s`` the
accumulator, ``t = fma(a, b, s)`` is ``RN53(s + a·b)`` (the product is exact, so a fused multiply-add rounds the
same exact sum once). ``t`` is rounded to p bits by Veltkamp's splitting with ``C = 2^(53-p) + 1``:
``g = RN(C·t)``, ``hi = RN(g - RN(g - t))``: ``hi`` is *a* rounding to nearest of ``t`` on p bits (Dekker 1971;
Boldo, "Pitfalls of a full floating-point proof", IJCAR 2006, for radix 2 and ``2 <= 53 - p <= 51``, with no overflow
of ``C·t``), so it is the nearest p-bit number whenever ``t`` is not a midpoint. By the boundary argument of
:mod:`lampnum.emulate.matmul_fast` (a midpoint strictly between ``s + a·b`` and ``t = RN53(s + a·b)`` would be a
float64 number closer to the sum than ``t``), ``RNE_p(t) = RNE_p(s + a·b)`` unless ``t`` is itself a midpoint: its
dropped ``53 - p`` bits are ``100…0``, one integer test. The loop is four floating-point operations and two integer
ones per update on full vector lanes.

- *Certified range* (:func:`range_certificate`): midpoints are the only exceptional event. A tile runs
  optimistically; if any update of the tile hits a midpoint, the tile is recomputed by the checked loop below
  (a midpoint needs the accumulator value before the update, which the optimistic loop overwrites). Midpoints are
  rare for generic data (probability about 2^(p-53) per update) and frequent for integer-valued data, whose tiles
  then cost one optimistic pass more.
- *Checked*: every update also tests ``0 < |t| < 2^emin`` (the format's subnormal range) and ``not |hi| <= max``
  (overflow, and NaN once an accumulator has become infinite); a flagged
  element keeps its old value and is redone by :func:`lampnum.emulate.accumulate.round_sum` (TwoSum, round-to-odd,
  Boldo & Melquiond 2008) in a second pass over the row. This runs when the certificate fails on the subnormal range
  only (fp16 accumulators of typical data: partial sums can cancel below 2^-14).

**The LAMP paper's fp32 register** (``product="fp32"``, ``via="fp32"``, rne, accumulator ``p <= 24`` in fp32's
exponent range, float32 operands): the float32 hardware product and sum (IEEE-correct; Numba compiles without fastmath,
so nothing is contracted or flushed), then the register's rounding to p bits by integer operations on its float32
encoding (round-to-nearest-even on the significand, a carry landing in the exponent field). With a certified range
(products normal, registers within the accumulator's normal range, no overflow) nothing is exceptional: the loop has
no test at all, on eight float32 lanes per AVX2 register. Without the certificate the checking kernel of
:mod:`lampnum.emulate.matmul_fast` runs.

The range certificate (sufficient conditions, each an O(MK + KN) pass):

- operands finite;
- overflow: every partial sum is at most ``(1 + 2^(1-p))^K · Σ_k |a_ik b_kj|`` in magnitude (each rounding grows a
  sum by at most a factor ``1 + u``; Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1), and
  ``Σ_k |a_ik b_kj| <= min(max_i ‖a_i‖₁ · max|B|, max|A| · max_j ‖b_j‖₁)``; that bound (with a margin for its own
  rounding) must stay below the accumulator's largest finite value (and ``C·t`` below float64's);
- subnormal range: every product is a multiple of ``2^L`` with ``L = lsb(A) + lsb(B)`` (``lsb``: the exponent of the
  least significant bit over the nonzero entries), and sums and roundings of multiples of ``2^L`` are multiples of
  ``2^L`` (a rounding to a coarser grid lands on a multiple of a larger power of two; otherwise it is exact), so a
  nonzero partial sum is at least ``2^L``: ``L >= emin`` rules the subnormal range out. For the register path, a
  float32 product ``RN32(a·b)`` is a multiple of ``2^(e(a) + e(b) - 23)`` and must itself be normal.

Loop order and tiles are those of :mod:`lampnum.emulate.matmul_fast` (``ROWS`` × ``COLS``, k increasing for every
element), so results do not depend on tiling or threads. Pure-Python twins: :func:`veltkamp_round_reference`,
:func:`register_bits_reference`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from ..formats import Format
from .accumulate import round_sum
from .matmul_fast import COLS, ROWS, _tile_bounds, n_tiles_of
from .operand_stats import OperandStats

__all__ = ["fma", "veltkamp_round", "veltkamp_round_reference", "register_bits", "register_bits_reference",
           "RangeCertificate", "range_certificate", "register_certificate", "strict_rne_kernel", "block_rne_kernel",
           "register_split_kernel"]  # fmt: skip

_F32_TINY = float(np.finfo(np.float32).tiny)
_F32_MAX = float(np.finfo(np.float32).max)
_SAFE_SCALE = 2.0**1020


@intrinsic
def fma(typingctx, x, y, z):  # noqa: ANN001, ANN201, ARG001 - a Numba intrinsic
    """``fma(x, y, z) = RN(x·y + z)`` for float64, LLVM's ``llvm.fma`` (one hardware instruction where the CPU has
    FMA; a correctly rounded library call where it has not)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202, ARG001
        return builder.fma(*args)

    return sig, codegen


@njit(cache=True, inline="always")
def veltkamp_round(t: float, splitter: float) -> float:
    """Veltkamp's splitting: a rounding to nearest of ``t`` on p bits (``splitter = 2^(53-p) + 1``); the nearest one
    unless ``t`` is a midpoint (then either neighbour)."""
    g = t * splitter
    return g - (g - t)


def veltkamp_round_reference(t: float, precision: int) -> tuple[float, bool]:
    """Pure-Python twin of one update's rounding: (Veltkamp's ``hi``, whether ``t`` is a midpoint of p-bit
    numbers), on Python floats (IEEE binary64, round-to-nearest-even) and Python integers."""
    splitter = float(2 ** (53 - precision) + 1)
    g = t * splitter
    hi = g - (g - t)
    bits = int(np.float64(t).view(np.int64))
    low = (1 << (53 - precision)) - 1
    half = 1 << (52 - precision)
    return hi, (bits & low) == half


@njit(cache=True)
def _optimistic_tile(a_mat, b_mat, row_start, rows, col_start, cols, acc, splitter, low, half):  # noqa: ANN001, ANN202
    """The certified-range loop; False as soon as an update hits a midpoint (the tile is then redone)."""
    for r in range(rows):
        for n in range(cols):
            acc[r, n] = 0.0
    low_bits, half_bits = np.uint64(low), np.uint64(half)
    for k in range(a_mat.shape[1]):
        b_panel = b_mat[k, col_start:col_start + cols]
        closest = np.uint64(0xFFFFFFFFFFFFFFFF)
        for r in range(rows):
            a_value = a_mat[row_start + r, k]
            acc_row = acc[r]
            for n in range(cols):
                t = fma(a_value, b_panel[n], acc_row[n])
                g = t * splitter
                acc_row[n] = g - (g - t)
                # (dropped bits) ^ half is 0 exactly at a midpoint: an unsigned minimum (one vector instruction
                # beside one ternary-logic one, no boolean packing) says whether any update hit a midpoint
                closest = min(closest, (np.float64(t).view(np.uint64) & low_bits) ^ half_bits)
        if closest == 0:
            return False
    return True


@njit(cache=True, inline="always")
def _checked_split(t, splitter, low, half, min_normal, max_value):  # noqa: ANN001, ANN202
    """Veltkamp's ``hi`` of the float64 sum ``t`` and whether it may be wrong: ``t`` a midpoint of p-bit
    numbers (its dropped bits ``100…0``), in the format's subnormal range, or ``hi`` beyond its largest value
    (overflow, or NaN once a sum has become infinite). Flagged updates are redone exactly by the caller."""
    g = t * splitter
    hi = g - (g - t)
    bad = ((np.float64(t).view(np.int64) & low) == half) | ((abs(t) < min_normal) & (t != 0.0)) | (
        not abs(hi) <= max_value)  # fmt: skip
    return hi, bad


@njit(cache=True)
def _checked_tile(a_mat, b_mat, row_start, rows, col_start, cols, acc, flags, splitter, low, half, min_normal,
                  max_value, one, acc_params):  # noqa: ANN001, ANN202  # fmt: skip
    """Every update checked: midpoints, the subnormal range and overflow keep the old value and are redone exactly.
    ``one`` is 1.0 passed at run time: ``old·one`` is the old value, and it keeps LLVM from turning the select into a
    masked store (slow on AMD processors)."""
    for r in range(rows):
        for n in range(cols):
            acc[r, n] = 0.0
    for k in range(a_mat.shape[1]):
        b_panel = b_mat[k, col_start:col_start + cols]
        for r in range(rows):
            a_value = a_mat[row_start + r, k]
            acc_row = acc[r]
            hit = False
            for n in range(cols):
                old = acc_row[n]
                hi, bad = _checked_split(fma(a_value, b_panel[n], old), splitter, low, half, min_normal, max_value)
                flags[n] = bad
                hit |= bad
                acc_row[n] = old * one if bad else hi
            if hit:
                for n in range(cols):
                    if flags[n]:
                        acc_row[n] = round_sum(acc_row[n], a_value * b_panel[n], acc_params[0], acc_params[1],
                                               acc_params[2], acc_params[3], acc_params[4], acc_params[5],
                                               acc_params[6], 0, np.uint64(0), False)  # fmt: skip


@njit(cache=True, parallel=True)
def strict_rne_kernel(a, b, a_index, b_index, out, precision, min_normal, max_value, acc_params, certified,
                      one, lower):  # noqa: ANN001, ANN201  # fmt: skip
    """``out[t] = A[a_index[t]] @ B[b_index[t]]``, exact products, strict accumulation in rne to p = ``precision``
    bits; ``certified``: the operands hold a range certificate (see the module docstring). Returns the number of
    tiles that were redone after a midpoint.

    Only entries with ``j − i <= lower`` are computed (the band of a causal product), the others are written 0,
    as in :func:`register_split_kernel`; ``lower >= n_cols − 1`` is the full product."""
    n_rows, n_cols = out.shape[1], out.shape[2]
    splitter = float(2 ** (53 - precision) + 1)
    low = np.int64((1 << (53 - precision)) - 1)
    half = np.int64(1 << (52 - precision))
    redone = 0
    for tile in prange(n_tiles_of(out)):
        t, row_start, row_stop, col_start, col_stop = _tile_bounds(tile, n_rows, n_cols)
        a_mat = a[a_index[t]]
        b_mat = b[b_index[t]]
        rows = row_stop - row_start
        band_stop = max(col_start, min(col_stop, row_stop + lower))  # j < row_stop + lower: the last row's band
        cols = band_stop - col_start
        acc = np.empty((ROWS, COLS))
        if cols == 0:
            out[t, row_start:row_stop, col_start:col_stop] = 0.0
            continue
        done = False
        if certified:
            done = _optimistic_tile(a_mat, b_mat, row_start, rows, col_start, cols, acc, splitter, low, half)
        if not done:
            flags = np.empty(COLS, dtype=np.bool_)
            _checked_tile(a_mat, b_mat, row_start, rows, col_start, cols, acc, flags, splitter, low, half,
                          min_normal, max_value, one, acc_params)  # fmt: skip
            redone += certified
        for r in range(rows):
            edge = row_start + r + lower  # the row's last column in the band
            for n in range(col_stop - col_start):
                out[t, row_start + r, col_start + n] = acc[r, n] if col_start + n <= edge else 0.0
    return redone


@njit(cache=True)
def _block_tile(a_mat, b_mat, row_start, rows, col_start, cols, block, acc, sums, flags, splitter, low, half,
                min_normal, max_value, acc_params):  # noqa: ANN001, ANN202  # fmt: skip
    """One tile of :func:`block_rne_kernel`: per block, the float64 block sums by FMA (k innermost but one, all
    columns of a row on vector lanes), then one checked update of the accumulator per element."""
    for r in range(rows):
        for n in range(cols):
            acc[r, n] = 0.0
    depth = a_mat.shape[1]
    for k_start in range(0, depth, block):
        k_stop = min(depth, k_start + block)
        b_panel = b_mat[k_start, col_start:col_start + cols]
        for r in range(rows):  # the block's first product starts its sum (the spec's t = a_k·b_k, signed zero kept)
            a_value = a_mat[row_start + r, k_start]
            for n in range(cols):
                sums[r, n] = a_value * b_panel[n]
        for k in range(k_start + 1, k_stop):
            b_panel = b_mat[k, col_start:col_start + cols]
            for r in range(rows):
                a_value = a_mat[row_start + r, k]
                sum_row = sums[r]
                for n in range(cols):
                    sum_row[n] = fma(a_value, b_panel[n], sum_row[n])  # RN(t + a·b), the product exact
        for r in range(rows):
            acc_row, sum_row = acc[r], sums[r]
            hit = False
            for n in range(cols):
                old = acc_row[n]
                hi, bad = _checked_split(old + sum_row[n], splitter, low, half, min_normal, max_value)
                flags[n] = bad
                hit |= bad
                acc_row[n] = old if bad else hi + 0.0  # + 0.0: an exact zero sum is +0, as the reference's
            if hit:
                for n in range(cols):
                    if flags[n]:
                        acc_row[n] = round_sum(acc_row[n], sum_row[n], acc_params[0], acc_params[1],
                                               acc_params[2], acc_params[3], acc_params[4], acc_params[5],
                                               acc_params[6], 0, np.uint64(0), False)  # fmt: skip


@njit(cache=True, parallel=True)
def block_rne_kernel(a, b, a_index, b_index, out, block, precision, min_normal, max_value,
                     acc_params):  # noqa: ANN001, ANN201  # fmt: skip
    """``out[t] = A[a_index[t]] @ B[b_index[t]]`` under block FMA (``block = b > 1``, float64 block sums,
    exact products), rne into an accumulator of ``precision`` = p <= 51 bits, finite operands.

    The spec's block sum ``t`` (the block's exact products added in order, each addition rounded to float64) is
    what a chain of fused multiply-adds computes, ``t = RN(t + a·b)``, the product being exact. The update
    ``s = RNE_p(s + t)`` is ``y = RN(s + t)`` rounded by Veltkamp's splitting, right unless ``y`` is a midpoint
    (the argument of the module docstring; at a midpoint that is the exact sum, Veltkamp's ``hi`` is the even
    neighbour, but the test does not tell the two cases apart), ``y`` is in the subnormal range or the result
    overflows: those elements (tested on every update, which happens once per b products) keep the old value
    and are redone by :func:`lampnum.emulate.accumulate.round_sum`. One FMA per product on full vector lanes,
    the rounding amortised over the block."""
    n_rows, n_cols = out.shape[1], out.shape[2]
    splitter = float(2 ** (53 - precision) + 1)
    low = np.int64((1 << (53 - precision)) - 1)
    half = np.int64(1 << (52 - precision))
    for tile in prange(n_tiles_of(out)):
        t, row_start, row_stop, col_start, col_stop = _tile_bounds(tile, n_rows, n_cols)
        rows = row_stop - row_start
        cols = col_stop - col_start
        acc = np.empty((ROWS, COLS))
        sums = np.empty((ROWS, COLS))
        flags = np.empty(COLS, dtype=np.bool_)
        _block_tile(a[a_index[t]], b[b_index[t]], row_start, rows, col_start, cols, block, acc, sums, flags,
                    splitter, low, half, min_normal, max_value, acc_params)  # fmt: skip
        out[t, row_start:row_stop, col_start:col_stop] = acc[:rows, :cols]


@njit(cache=True, inline="always")
def register_bits(register: np.float32, unit: np.uint32, low: np.uint32, half_minus_one: np.uint32) -> np.float32:
    """The float32 ``register`` rounded to nearest-even on p bits by integer operations on its encoding (normal
    values; ``unit = 2^(24-p)`` is the last kept bit, ``low = ~(unit - 1)`` the mask of the kept bits, ``p <= 23``; a
    carry into the exponent field is the step to the next binade)."""
    bits = np.float32(register).view(np.uint32)
    magnitude = np.uint32(bits & np.uint32(0x7FFFFFFF))  # every step cast back to 32 bits, or Numba widens to 64
    kept_odd = np.uint32((magnitude & unit) != np.uint32(0))  # the last kept bit (no shift: Numba widens those)
    rounded = np.uint32(np.uint32(np.uint32(magnitude + half_minus_one) + kept_odd) & low)
    return np.uint32(rounded | np.uint32(bits & np.uint32(0x80000000))).view(np.float32)


def register_bits_reference(register: float, precision: int) -> float:
    """Pure-Python twin of :func:`register_bits` (``register`` a Python float holding a normal float32 value,
    ``precision <= 23``)."""
    bits = int(np.float32(register).view(np.uint32))
    shift = 24 - precision
    low = (1 << shift) - 1
    half_minus_one = (1 << (shift - 1)) - 1
    magnitude = bits & 0x7FFFFFFF
    kept_odd = (magnitude >> shift) & 1
    rounded = (magnitude + half_minus_one + kept_odd) & ~low
    return float(np.uint32(rounded | (bits & 0x80000000)).view(np.float32))


@njit(cache=True, parallel=True)
def register_split_kernel(a, b, a_index, b_index, out, precision, lower):  # noqa: ANN001, ANN201
    """The LAMP paper's fp32-register accumulation, rne, on float32 operands holding a register certificate
    (:func:`register_certificate`): ``s = round_p(RN32(s + RN32(a·b)))`` for ``precision <= 23``; ``out``
    float64 or float32 (both hold the register exactly).

    Only entries with ``j − i <= lower`` are computed (the band of a causal product); the others are written 0.
    A tile accumulates its columns up to the band edge of its last row, so a causal 512 × 512 product costs
    about half the full one; ``lower >= n_cols − 1`` is the full product."""
    n_rows, n_cols = out.shape[1], out.shape[2]
    unit = np.uint32(1 << (24 - precision))
    low = np.uint32(0xFFFFFFFF ^ ((1 << (24 - precision)) - 1))
    half_minus_one = np.uint32((1 << (23 - precision)) - 1)
    for tile in prange(n_tiles_of(out)):
        t, row_start, row_stop, col_start, col_stop = _tile_bounds(tile, n_rows, n_cols)
        a_mat = a[a_index[t]]
        b_mat = b[b_index[t]]
        rows = row_stop - row_start
        band_stop = max(col_start, min(col_stop, row_stop + lower))  # j < row_stop + lower: the last row's band
        cols = band_stop - col_start
        acc = np.zeros((ROWS, COLS), dtype=np.float32)
        for k in range(a_mat.shape[1] if cols > 0 else 0):
            b_panel = b_mat[k, col_start:band_stop]
            for r in range(rows):
                a_value = a_mat[row_start + r, k]
                acc_row = acc[r]
                for n in range(cols):
                    acc_row[n] = register_bits(acc_row[n] + a_value * b_panel[n], unit, low, half_minus_one)
        for r in range(rows):
            edge = row_start + r + lower  # the row's last column in the band
            for n in range(col_stop - col_start):
                out[t, row_start + r, col_start + n] = acc[r, n] if col_start + n <= edge else 0.0


@dataclass(frozen=True)
class RangeCertificate:
    """What :func:`range_certificate` proved: ``splittable`` (operands finite and Veltkamp's ``C·t`` finite for
    every partial sum: the checked loop is exact) and ``certified`` (also no partial sum above the accumulator's
    largest value or in its subnormal range: the optimistic loop is exact up to midpoints)."""

    splittable: bool
    certified: bool


def _sum_bound(a_stats: OperandStats, b_stats: OperandStats, a_row_sum: float, b_col_sum: float) -> float:
    """An upper bound on max over (batch, i, j) of sum_k |a_ik b_kj|, with a margin for the float64 roundings of the
    row and column sums (relative error below K·2^-53)."""
    return min(a_row_sum * b_stats.max_abs, a_stats.max_abs * b_col_sum) * (1 + 2.0**-20)


def range_certificate(a_stats: OperandStats, b_stats: OperandStats, a_row_sum: float, b_col_sum: float, depth: int,
                      accumulator: Format) -> RangeCertificate:  # fmt: skip
    """Decide the range certificate for strict accumulation of exact products of operands A (…, M, K) and B
    (…, K, N) into ``accumulator``, from their :class:`~lampnum.emulate.operand_stats.OperandStats`, the largest
    ``sum_k |a_ik|`` and ``sum_k |b_kj|``, and K = ``depth`` (see the module docstring for the argument)."""
    if not (a_stats.finite and b_stats.finite):
        return RangeCertificate(False, False)
    if a_stats.count == 0 or b_stats.count == 0:
        return RangeCertificate(True, True)  # every product is zero
    growth = math.exp(depth * 2.0 ** (1 - accumulator.p) * (1 + 2.0**-20))
    bound = _sum_bound(a_stats, b_stats, a_row_sum, b_col_sum) * growth
    splitter = 2.0 ** (53 - accumulator.p) + 1
    splittable = bound * splitter < _SAFE_SCALE
    normal = a_stats.lsb + b_stats.lsb >= accumulator.emin
    return RangeCertificate(bool(splittable), bool(splittable and bound < float(accumulator.max) and normal))


def register_certificate(a_stats: OperandStats, b_stats: OperandStats, a_row_sum: float, b_col_sum: float,
                         depth: int, accumulator: Format) -> bool:  # fmt: skip
    """True when the fp32-register path on float32-valued operands can meet nothing exceptional: finite operands,
    every nonzero float32 product normal, every partial register and its rounding within the accumulator's normal
    range and below fp32's and the accumulator's largest values (see the module docstring)."""
    if not (a_stats.finite and b_stats.finite):
        return False
    if a_stats.count == 0 or b_stats.count == 0:
        return True  # every product is zero
    products_normal = 2.0 ** (a_stats.min_exponent + b_stats.min_exponent) >= _F32_TINY
    products_finite = 2.0 ** (a_stats.max_exponent + b_stats.max_exponent + 2) <= _F32_MAX
    lsb = a_stats.min_exponent + b_stats.min_exponent - 23  # every nonzero RN32(a·b) is a multiple of 2^lsb
    growth = math.exp(depth * (2.0**-23 + 2.0 ** (1 - accumulator.p)) * (1 + 2.0**-20))
    bound = _sum_bound(a_stats, b_stats, a_row_sum, b_col_sum) * (1 + 2.0**-23) * growth
    in_range = bound < min(float(accumulator.max), _F32_MAX) and lsb >= accumulator.emin
    return bool(products_normal and products_finite and in_range)
