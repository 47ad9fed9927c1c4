"""Strict round-to-nearest-even accumulation of exact products on *float32* vector lanes: twice the lanes of
:func:`lampnum.emulate.matmul_split.strict_rne_kernel`, for accumulators of at most 22 bits (bf16, fp16, fp8, the
paper's m-bit registers) and operands that are float32 values.

One update ``s = RNE_p(s + a·b)`` (``s``, ``a``, ``b`` float32 values, the product exact) is computed as

- ``t = fma32(a, b, s) = RN24(s + a·b)``: a float32 fused multiply-add rounds the exact sum once;
- ``hi = g - (g - t)`` with ``g = RN24(C·t)``, ``C = 2^(24-p) + 1``: Veltkamp's splitting in float32 (radix 2,
  precision 24, ``2 <= 24 - p <= 22``, no overflow of ``C·t``) gives *a* rounding to nearest of ``t`` on p bits
  (Dekker 1971; Boldo, "Pitfalls of a full floating-point proof", IJCAR 2006);
- ``RNE_p(t) = RNE_p(s + a·b)`` unless ``t`` is a midpoint of p-bit numbers: the rounding to float32 is monotone and
  leaves float32 numbers fixed, and every p-bit midpoint of the accumulator's normal range is a float32 number
  (``p + 1 <= 24`` bits, exponent at least -126), so ``s + a·b`` and ``t`` lie on the same side of every midpoint
  unless ``t`` is one. A midpoint has its dropped ``24 - p`` bits equal to ``100…0``, one integer test.

With only 24 - p dropped bits a midpoint is common (probability about 2^(p-24) per update: a few per k-step of a
tile for bf16), so a hit cannot send the tile back, as the float64 kernel does. Instead the tile's accumulators are
*double-buffered*: step k reads the old values from one buffer and writes the new ones to the other, and one unsigned
minimum over the step says whether any update hit a midpoint. If one did, the step's updates are scanned again and
each midpoint is redone from its old value, still in the other buffer, by
:func:`lampnum.emulate.accumulate.round_sum` (exact, in float64). The loop is four floating-point and two integer
vector operations per update on eight float32 lanes (AVX2 width), against four lanes for the float64 kernel.

The *certificate* (:func:`lanes32_certified`) is that of :func:`lampnum.emulate.matmul_split.range_certificate` with
float32 in place of float64: operands finite and float32 values, every nonzero partial sum at least ``2^emin`` with
``emin >= -126`` (so ``t`` is a normal float32 number and carries 24 bits), and the bound on every partial sum below
the accumulator's largest value and ``C·bound`` below float32's. Without it (fp16 accumulators of typical float32
data, whose partial sums can cancel into fp16's subnormal range; overflow) the *checked* loop runs on any finite
float32 operands (:func:`lanes32_eligible`): per group of rows it also tracks the smallest nonzero ``|t|`` and the
largest ``|hi|`` (integer minimum and maximum of their encodings), so that ``0 < |t| < 2^emin`` (where ``t`` may be
a float32 subnormal) and ``|hi| > max`` (overflow to inf, NaN or saturation; ``C·t`` overflowing makes ``hi`` NaN)
are redone exactly as midpoints are. A NaN or infinite accumulator stays flagged and is carried by ``round_sum``.

Loop order: each element is accumulated with k increasing, as everywhere, so the result does not depend on the tile
order; here tiles sharing a column panel of B are consecutive, so each thread keeps its panel in L2. Pure-Python
twin of one update: :func:`lanes32_update_reference`.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from ..formats import FORMATS, Format
from ..rounding.reference import round_reference
from .accumulate import round_sum
from .bits import lowest_set_byte
from .matmul_split import _sum_bound
from .operand_stats import OperandStats

__all__ = ["fma32", "lanes32_update_reference", "lanes32_eligible", "lanes32_certified", "strict_rne_lanes32_kernel",
           "MAX_LANES32_P", "float32_rows"]  # fmt: skip

MAX_LANES32_P = 22
_F32_MAX = float(np.finfo(np.float32).max)
_FP32 = FORMATS["fp32"]
CHECKED_GROUP32 = 2  # rows per flag test in the checked loop (fp16 midpoints hit a 16-row step 40 % of the time;
# measured 1, 2, 4, 8, 16: 135, 131, 146, 159, 197 ms for fp16 at the qkv shape)
ROWS32 = 16  # a tile: 16 rows x 256 columns, two float32 buffers of 16 KB each (L1); measured best of
COLS32 = 256  # 8x256, 16x128, 16x256, 32x128 and 8x512 at the GPT-2 shapes


@intrinsic
def fma32(typingctx, x, y, z):  # noqa: ANN001, ANN201, ARG001 - a Numba intrinsic
    """``fma32(x, y, z) = RN24(x·y + z)`` for float32, LLVM's ``llvm.fma.f32`` (one hardware instruction where the
    CPU has FMA)."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202, ARG001
        return builder.fma(*args)

    return sig, codegen


def lanes32_update_reference(s: float, a: float, b: float, precision: int) -> tuple[float, bool]:
    """Pure-Python twin of one update of :func:`strict_rne_lanes32_kernel` on float32 values ``s``, ``a``, ``b``:
    (Veltkamp's ``hi`` of ``t = RN24(s + a·b)``, whether ``t`` is a midpoint of p-bit numbers). The exact sum is a
    Fraction rounded to float32 by :func:`lampnum.rounding.reference.round_reference` (the fused multiply-add),
    Veltkamp's steps are numpy float32 operations and the midpoint test reads the float32 encoding."""
    t = np.float32(round_reference(Fraction(s) + Fraction(a) * Fraction(b), _FP32, "rne"))
    splitter = np.float32(2 ** (24 - precision) + 1)
    g = np.float32(t * splitter)
    hi = np.float32(g - np.float32(g - t))
    bits = int(t.view(np.uint32))
    low = (1 << (24 - precision)) - 1
    half = 1 << (23 - precision)
    return float(hi), (bits & low) == half


def lanes32_eligible(a_stats: OperandStats, b_stats: OperandStats, accumulator: Format) -> bool:
    """Whether :func:`strict_rne_lanes32_kernel` can run at all (its checked loop), for operands that are float32
    values: finite operands, ``2 <= p <= 22`` (Veltkamp's range in float32) and an exponent range inside float32's
    normal range (its midpoints and its largest value are normal float32 numbers)."""
    return bool(2 <= accumulator.p <= MAX_LANES32_P and accumulator.emin >= -126 and accumulator.emax <= 127
                and a_stats.finite and b_stats.finite)  # fmt: skip


def lanes32_certified(a_stats: OperandStats, b_stats: OperandStats, a_row_sum: float, b_col_sum: float, depth: int,
                      accumulator: Format) -> bool:  # fmt: skip
    """The float32-lane certificate (module docstring) for strict rne accumulation of exact products of operands A
    (…, M, K) and B (…, K, N) that are float32 values, from their
    :class:`~lampnum.emulate.operand_stats.OperandStats`, the largest ``sum_k |a_ik|`` and ``sum_k |b_kj|`` and
    K = ``depth``: every partial sum normal in float32 and in the accumulator, nothing above its largest value, and
    Veltkamp's ``C·t`` finite in float32."""
    if not lanes32_eligible(a_stats, b_stats, accumulator):
        return False
    if a_stats.count == 0 or b_stats.count == 0:
        return True  # every product is zero
    growth = math.exp(depth * 2.0 ** (1 - accumulator.p) * (1 + 2.0**-20))
    bound = _sum_bound(a_stats, b_stats, a_row_sum, b_col_sum) * growth
    splitter = 2.0 ** (24 - accumulator.p) + 1
    normal = a_stats.lsb + b_stats.lsb >= accumulator.emin
    return bool(bound < float(accumulator.max) and bound * splitter < _F32_MAX / 2 and normal)


@njit(cache=True, inline="always")
def _update(a_value, b_value, old, splitter):  # noqa: ANN001, ANN202
    """One update on float32 lanes: ``t = RN24(old + a·b)`` and Veltkamp's ``hi``, with their encodings."""
    t = fma32(a_value, b_value, old)
    g = t * splitter
    hi = g - (g - t)
    return hi, np.float32(t).view(np.uint32), np.float32(hi).view(np.uint32)


@njit(cache=True, inline="always")
def _flagged(t_bits, hi_bits, low, half, min_normal_bits, max_bits):  # noqa: ANN001, ANN202
    """Whether an update must be redone: ``t`` a midpoint of p-bit numbers, in (0, 2^emin), or ``hi`` above the
    accumulator's largest value (or infinite, or NaN: their magnitudes encode above every finite one)."""
    magnitude = np.uint32(t_bits & np.uint32(0x7FFFFFFF))
    return (np.uint32(t_bits & low) == half) | ((magnitude != 0) & (magnitude < min_normal_bits)) | (
        np.uint32(hi_bits & np.uint32(0x7FFFFFFF)) > max_bits)  # fmt: skip


@njit(cache=True)
def _redo_flagged(a_mat, b_panel, k, row_start, rows, cols, old, new, splitter, low, half, min_normal_bits, max_bits,
                  acc_params, flags):  # noqa: ANN001, ANN202  # fmt: skip
    """Step k of a tile again: every flagged update (:func:`_flagged`) is redone exactly from its old value by
    :func:`~lampnum.emulate.accumulate.round_sum`. The flags of a row are computed on vector lanes into ``flags``
    (one byte each, at least ``cols`` rounded up to 8 of them, zero past ``cols``) and read eight at a time, so a
    row with one flagged update (the usual hit) costs two vector passes, not a walk element by element (measured:
    fp16 strict accumulation, a midpoint in 6 % of the steps of two rows, ran at half the speed of bf16 with the
    walk)."""
    words = flags.view(np.uint64)
    for r in range(rows):
        a_value = a_mat[row_start + r, k]
        old_row, new_row = old[r], new[r]
        for n in range(cols):
            hi, t_bits, hi_bits = _update(a_value, b_panel[n], old_row[n], splitter)
            flags[n] = np.uint8(_flagged(t_bits, hi_bits, low, half, min_normal_bits, max_bits))
        for w in range((cols + 7) // 8):
            word = words[w]
            while word != 0:
                byte, word = lowest_set_byte(word)
                n = w * 8 + byte
                exact = round_sum(np.float64(old_row[n]), np.float64(a_value) * np.float64(b_panel[n]), acc_params[0],
                                  acc_params[1], acc_params[2], acc_params[3], acc_params[4], acc_params[5],
                                  acc_params[6], 0, np.uint64(0), False)  # fmt: skip
                new_row[n] = np.float32(exact)


@njit(cache=True)
def _lanes32_tile(a_mat, b_mat, row_start, rows, col_start, cols, acc, splitter, low, half, min_normal_bits,
                  max_bits, acc_params, flags):  # noqa: ANN001, ANN202  # fmt: skip
    """One certified tile, double-buffered in ``acc`` (2 × ROWS32 × COLS32 float32): only midpoints can occur,
    found by one unsigned minimum per vector. Returns the buffer holding the result and the number of k-steps
    that were scanned again."""
    for r in range(rows):
        for n in range(cols):
            acc[0, r, n] = np.float32(0.0)
    scanned = 0
    for k in range(a_mat.shape[1]):
        b_panel = b_mat[k, col_start:col_start + cols]
        old, new = acc[k & 1], acc[(k + 1) & 1]
        closest = np.uint32(0xFFFFFFFF)
        for r in range(rows):
            a_value = a_mat[row_start + r, k]
            old_row, new_row = old[r], new[r]
            for n in range(cols):
                hi, t_bits, _ = _update(a_value, b_panel[n], old_row[n], splitter)
                new_row[n] = hi
                # (dropped bits) ^ half is 0 exactly at a midpoint
                closest = min(closest, np.uint32(np.uint32(t_bits & low) ^ half))
        if closest == 0:
            _redo_flagged(a_mat, b_panel, k, row_start, rows, cols, old, new, splitter, low, half, min_normal_bits,
                          max_bits, acc_params, flags)  # fmt: skip
            scanned += 1
    return a_mat.shape[1] & 1, scanned


@njit(cache=True)
def _lanes32_checked_tile(a_mat, b_mat, row_start, rows, col_start, cols, acc, splitter, low, half, min_normal_bits,
                          max_bits, acc_params, flags):  # noqa: ANN001, ANN202  # fmt: skip
    """One tile without a certificate: as :func:`_lanes32_tile`, and every step also tracks the smallest nonzero
    magnitude of ``t`` (an unsigned minimum of ``|t| - 1``, where zero wraps to the top) and the largest of ``hi``,
    so that the subnormal range and overflow send the step to :func:`_redo_flagged` too. The tests are made per
    group of ``CHECKED_GROUP32`` rows, so a flag (frequent for fp16: a midpoint every 2^13 updates or so) redoes
    that group only."""
    for r in range(rows):
        for n in range(cols):
            acc[0, r, n] = np.float32(0.0)
    scanned = 0
    magnitude_mask = np.uint32(0x7FFFFFFF)
    for k in range(a_mat.shape[1]):
        b_panel = b_mat[k, col_start:col_start + cols]
        old, new = acc[k & 1], acc[(k + 1) & 1]
        for first in range(0, rows, CHECKED_GROUP32):  # flags are frequent here: a hit redoes a group of rows
            group = min(CHECKED_GROUP32, rows - first)
            closest = np.uint32(0xFFFFFFFF)
            smallest = np.uint32(0xFFFFFFFF)
            largest = np.uint32(0)
            for r in range(first, first + group):
                a_value = a_mat[row_start + r, k]
                old_row, new_row = old[r], new[r]
                for n in range(cols):
                    hi, t_bits, hi_bits = _update(a_value, b_panel[n], old_row[n], splitter)
                    new_row[n] = hi
                    closest = min(closest, np.uint32(np.uint32(t_bits & low) ^ half))
                    smallest = min(smallest, np.uint32(np.uint32(t_bits & magnitude_mask) - np.uint32(1)))
                    largest = max(largest, np.uint32(hi_bits & magnitude_mask))
            if closest == 0 or smallest < np.uint32(min_normal_bits - np.uint32(1)) or largest > max_bits:
                _redo_flagged(a_mat, b_panel, k, row_start + first, group, cols, old[first:], new[first:], splitter,
                              low, half, min_normal_bits, max_bits, acc_params, flags)  # fmt: skip
                scanned += 1
    return a_mat.shape[1] & 1, scanned


@njit(cache=True, parallel=True)
def strict_rne_lanes32_kernel(a, b, a_index, b_index, out, acc_params, lower, certified):  # noqa: ANN001, ANN201
    """``out[t] = A[a_index[t]] @ B[b_index[t]]`` for finite float32 operands: exact products, strict accumulation
    in rne into the accumulator of ``acc_params`` (:func:`lampnum.emulate.matmul.lowered`; :func:`lanes32_eligible`)
    on float32 lanes. ``certified``: the operands hold the certificate of :func:`lanes32_certified` (the loop then
    tests midpoints only). ``out`` float64 or float32 (both hold the accumulator exactly). Returns the number of
    k-steps of tiles that were scanned again.

    Only entries with ``j − i <= lower`` are computed (the band of a causal product), the others are written 0;
    ``lower >= n_cols − 1`` is the full product."""
    n_rows, n_cols = out.shape[1], out.shape[2]
    row_tiles = (n_rows + ROWS32 - 1) // ROWS32
    col_tiles = (n_cols + COLS32 - 1) // COLS32
    precision = acc_params[0]
    splitter = np.float32(2 ** (24 - precision) + 1)
    low = np.uint32((1 << (24 - precision)) - 1)
    half = np.uint32(1 << (23 - precision))
    min_normal_bits = np.float32(2.0 ** acc_params[1]).view(np.uint32)
    max_bits = np.float32(acc_params[3]).view(np.uint32)
    scanned = 0
    for tile in prange(out.shape[0] * row_tiles * col_tiles):
        t = tile // (row_tiles * col_tiles)
        rest = tile % (row_tiles * col_tiles)
        row_start = (rest % row_tiles) * ROWS32  # row tiles innermost: consecutive tiles share B's column panel
        col_start = (rest // row_tiles) * COLS32
        row_stop, col_stop = min(n_rows, row_start + ROWS32), min(n_cols, col_start + COLS32)
        rows = row_stop - row_start
        band_stop = max(col_start, min(col_stop, row_stop + lower))  # j < row_stop + lower: the last row's band
        cols = band_stop - col_start
        if cols == 0:
            out[t, row_start:row_stop, col_start:col_stop] = 0.0
            continue
        acc = np.empty((2, ROWS32, COLS32), dtype=np.float32)
        flags = np.zeros(COLS32, dtype=np.uint8)  # COLS32 is a multiple of 8; only the first cols are written
        if certified:
            final, tile_scanned = _lanes32_tile(a[a_index[t]], b[b_index[t]], row_start, rows, col_start, cols, acc,
                                                splitter, low, half, min_normal_bits, max_bits, acc_params,
                                                flags)  # fmt: skip
        else:
            final, tile_scanned = _lanes32_checked_tile(a[a_index[t]], b[b_index[t]], row_start, rows, col_start, cols,
                                                        acc, splitter, low, half, min_normal_bits, max_bits,
                                                        acc_params, flags)  # fmt: skip
        scanned += tile_scanned
        result = acc[final]
        for r in range(rows):
            edge = row_start + r + lower  # the row's last column in the band
            for n in range(col_stop - col_start):
                out[t, row_start + r, col_start + n] = result[r, n] if col_start + n <= edge else 0.0
    return scanned


_BLOCK = 64  # a 64 × 64 block of float32 (16 KB) is read and written while it is in L1


@njit(cache=True, parallel=True)
def _blocked_copy(x, out):  # noqa: ANN001, ANN202
    """``out[...] = x`` for 3-D arrays (float64 holding float32 values into float32: exact), block by block: an
    array whose last two axes are swapped, such as the transposed weight of a logits product, is then read a
    cache line at a time instead of one value per line."""
    rows, cols = x.shape[1], x.shape[2]
    row_blocks = (rows + _BLOCK - 1) // _BLOCK
    col_blocks = (cols + _BLOCK - 1) // _BLOCK
    for item in prange(x.shape[0] * row_blocks * col_blocks):
        t = item // (row_blocks * col_blocks)
        i0 = (item // col_blocks) % row_blocks * _BLOCK
        j0 = item % col_blocks * _BLOCK
        for i in range(i0, min(rows, i0 + _BLOCK)):
            for j in range(j0, min(cols, j0 + _BLOCK)):
                out[t, i, j] = x[t, i, j]


def float32_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (3-D, float32 or float64 holding float32 values) as a C-contiguous float32 array: itself when it is
    one, else a blocked parallel copy (numpy's copy of a transposed array walks it one cache line per value)."""
    if x.dtype == np.float32 and x.flags.c_contiguous:
        return x
    if x.flags.c_contiguous or x.size < (1 << 16):
        return np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty(x.shape, dtype=np.float32)
    _blocked_copy(x, out)
    return out
