"""Block FMA (``block = b > 1``, float64 block sums, rne) on *float32* vector lanes, every accumulator update
certified from an error bound or redone exactly: the block=32 kernel for bf16, fp16 and fp8 accumulators.

The spec (ARCHITECTURE.md, "Accumulation semantics of matmul"): the b exact products of a block are summed
sequentially in float64 into ``t``, then ``s = RNE_p(s + t)``. Here each block sum is first computed as ``T``, a
chain of float32 fused multiply-adds from 0 (k increasing), on sixteen float32 lanes, six rows at a time with the
products' ``b`` values shared (a register-blocked loop; no ``T`` is stored between the k steps of a group of
four). Both differ from the exact block sum ``σ`` by a bound the kernel can afford to evaluate. The chain's
steps ``T_k = RN24(T_(k-1) + a_k b_k)`` (``T_0 = 0``) each err by at most ``2^-24·|T_k|`` (round to nearest,
relative to the result) or, in the subnormal range, by at most ``2^-126`` (gradual underflow or flushed to zero),
and ``|T_k| <= (1 + 2^-24)^k Σ_(i<=k) |a_i b_i|``; summing the steps' errors counts ``|a_i b_i|`` once for every
later step, ``w_i = count - i + 1`` times, so ``|T - σ| <= 2^-24 (1 + 2^-24)^b Σ w_i |a_i b_i| + b·2^-126``. The
spec's float64 sum has ``|t - σ| <= γ_(b-1)(2^-53) Σ |a_i b_i|`` (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., §3.1), and ``w_i >= 1``. By Cauchy–Schwarz, ``Σ w_i |a_i b_i| <= ‖w ⊙ a_block‖₂ ‖b_block‖₂``,
so ``|t - T| <= e = c·‖w ⊙ a‖₂‖b‖₂ + b·2^-126`` with ``c`` of :func:`chain_error_factor`: one weighted norm per
row and block of A, one norm per column and block of B, computed once (the weights make the bound about 1.7 times
smaller than ``b·2^-24·‖a‖‖b‖`` for data of even magnitude, and the redone updates as many times fewer).

One update, in float32 (:func:`certified_update32_reference` is its pure-Python twin, same names):

- ``y = RN24(s + T)``, so the exact ``v = s + t`` has ``|v - y| <= e + 2^-24·|y|``;
- ``radius = RN24(RN24(RN24(norm_a·norm_b)·factor) + absolute + 2^-22·|y|)·(1 + 2^-20)`` with ``norm_a``,
  ``norm_b`` float32 values at least ``‖w ⊙ a_block‖₂`` and ``‖b_block‖₂``, ``factor >= c`` and
  ``absolute >= b·2^-126``. Each of its six float32 operations loses at most a relative 2^-24 or an absolute
  2^-150, which the ``1 + 2^-20`` covers (``absolute >= 2^-125``), so ``radius >= (e + 2^-22·|y|)(1 + 2^-21)``;
- ``low = RN24(y - radius)`` and ``high = RN24(y + radius)`` then satisfy ``low < v < high``: rounding
  ``y - radius`` moves it by at most ``2^-24(|y| + radius)``, and ``low < y - e - 2^-24|y|`` holds when
  ``radius·(1 - 2^-24) > e + 2·2^-24|y|``, which the ``2^-22|y|`` term (four times ``2^-24|y|``) and the
  ``2^-21·e`` margin give (``e > 0``);
- both ends are rounded to p bits by Veltkamp's splitting in float32 (``C = 2^(24-p) + 1``; *a* nearest p-bit
  number, Dekker 1971, Boldo IJCAR 2006, ``2 <= 24 - p <= 22``). If both give the same ``q``, both ends lie in the
  closed interval of numbers that have ``q`` as a nearest p-bit neighbour, and ``v``, strictly between them, lies
  in its interior, where ``q`` is *the* rounding: ``RNE_p(v) = q``. The update is certified when, in addition, both
  ends lie on one side of zero at least ``2^emin`` away (``q`` normal) and ``|q| <= max``; an overflow of ``C·x``
  gives NaN, which is never certified.

An update that is not certified (``v`` within the radius of a rounding boundary, the subnormal range, overflow;
0.4 % of the updates for standard normal data at bf16) keeps the old value, is flagged, and is redone from the spec: the
sequential float64 block sum ``t`` of the exact products, then ``round_sum(s, t)`` (TwoSum and round-to-odd, exact).
So the result is bit for bit the spec's, whatever the data; hard data only costs recomputations.

Eligible (:func:`block32_eligible`): ``2 <= p <= 22`` and an exponent range within float32's normal range (every
accumulator value, subnormals included, is a float32 value, and its normal numbers are normal float32 numbers),
operands that are float32 values, finite and normal (no subnormal entries: a processor flag that treats subnormal
*inputs* as zero would break the bound), and no float32 overflow of a block sum (``max|A|·max|B|·b·2 <
float32 max``).

Tiles: six rows × ``PANEL`` = 128 columns of one matrix; B is packed once into column panels (k-major, zero
padded), so the loop's 32 streams of ``b`` values share one base pointer and the compiler vectorises it. Tiles
sharing a panel are consecutive, so each thread keeps its panel in cache.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from ..formats import Format
from .accumulate import round_sum
from .matmul_blocked import block_error_factor
from .matmul_lanes32 import fma32
from .matmul_split import _checked_split
from .operand_stats import OperandStats

__all__ = ["PANEL", "block32_eligible", "block32_matmul", "certified_update32_reference", "pack_panels"]

PANEL = 128  # columns per tile (measured 64, 128 and 256 at the qkv shape: 128 best)
GROUP = 6  # rows per tile: the b value of a step is shared by six fused multiply-adds
_LANES = 8  # flagged updates redone side by side
CHUNK = 11  # groups of rows per work item (they share buffers)
_STEPS = 4  # k steps kept in registers between loads and stores of the block sums (measured: 6 rows x 4
# steps 8.5 ms, 4 x 8 13.1 ms, 6 x 8 11.4 ms, 8 x 4 9.4 ms at the qkv shape, against 7.8 ms for numpy's float32 @)
_F32_MAX = float(np.finfo(np.float32).max)
_MARGIN = np.float32(1 + 2.0**-20)
_Y_TERM = np.float32(2.0**-22)


def block32_eligible(a_stats: OperandStats, b_stats: OperandStats, block: int, accumulator: Format) -> bool:
    """Whether :func:`block32_matmul` applies (module docstring), for operands already known to be float32 values."""
    fmt = accumulator
    if not (2 <= fmt.p <= 22 and fmt.emin >= -126 and fmt.emax <= 127 and block > 1):
        return False
    if not (a_stats.finite and b_stats.finite):
        return False
    for stats in (a_stats, b_stats):
        if stats.count and stats.min_exponent < -126:  # a subnormal float32 entry
            return False
    return a_stats.max_abs * b_stats.max_abs * block * 2 < _F32_MAX


def chain_error_factor(block: int) -> float:
    """``c`` with ``|t - T| <= c·‖w ⊙ a‖₂‖b‖₂ + block·2^-126`` (module docstring): ``2^-24·(1 + 2^-24)^block`` for
    the float32 chain plus ``γ_(block-1)`` of float64 for the spec's sum, inflated by 2^-20 for their own
    roundings."""
    unit = 2.0**-24
    chain = unit * math.exp(block * unit * (1 + 2.0**-20))
    return (chain + block_error_factor(block, 2.0**-53) / (1 + 2.0**-20)) * (1 + 2.0**-20)


def _round_up32(x: np.ndarray) -> np.ndarray:
    """Float32 values at least the nonnegative finite float64 ``x``."""
    return np.nextafter(x.astype(np.float32), np.float32(np.inf))  # one step up from the nearest: at least x


def pack_panels(b_mat: np.ndarray) -> np.ndarray:
    """A (K, N) float32 matrix as column panels ``(panels, K, PANEL)``, zero padded on the right."""
    depth, cols = b_mat.shape
    panels = -(-cols // PANEL)
    packed = np.zeros((panels, depth, PANEL), dtype=np.float32)
    for p in range(panels):
        width = min(PANEL, cols - p * PANEL)
        packed[p, :, :width] = b_mat[:, p * PANEL:p * PANEL + width]
    return packed


@njit(cache=True, parallel=True)
def _row_block_norms(a, block):  # noqa: ANN001, ANN202
    """Float64 norms ``‖w ⊙ a_block‖₂`` of the ``block``-long slices of each row of the 3-D float32 ``a`` (the last
    one shorter), weighted by ``w_k = count - k`` for the slice's k-th of ``count`` entries (module docstring)."""
    batches, rows, depth = a.shape
    n_blocks = (depth + block - 1) // block
    norms = np.zeros((batches, rows, n_blocks))
    for row in prange(batches * rows):
        t, i = row // rows, row % rows
        for j in range(n_blocks):
            total = 0.0
            k_start = j * block
            k_stop = min(depth, k_start + block)
            for k in range(k_start, k_stop):
                value = np.float64(a[t, i, k]) * (k_stop - k)
                total += value * value
            norms[t, i, j] = np.sqrt(total)
    return norms


@njit(cache=True, parallel=True)
def _col_block_norms(packed, block):  # noqa: ANN001, ANN202
    """Float64 norms of the ``block``-long slices of each column of packed panels ``(batch·panels, K, PANEL)``."""
    panels, depth, width = packed.shape
    n_blocks = (depth + block - 1) // block
    norms = np.zeros((panels, n_blocks, width))
    for p in prange(panels):
        for j in range(n_blocks):
            for k in range(j * block, min(depth, (j + 1) * block)):
                for n in range(width):
                    value = np.float64(packed[p, k, n])
                    norms[p, j, n] += value * value
    return np.sqrt(norms)


@njit(cache=True)
def _block_sums(a_pack, panel, count, sums):  # noqa: ANN001, ANN202
    """``sums[r·PANEL + n] = T``, the float32 fused multiply-add chain from 0 over the block's ``count`` steps, for the
    tile's six rows (``a_pack[GROUP·k + r]``) and the panel's columns (``panel[k·PANEL + n]``). Groups of four steps
    keep the six sums in registers (the compiler unrolls the constant trip count and vectorises over n)."""
    for e in range(GROUP * PANEL):
        sums[e] = np.float32(0.0)
    k = 0
    while k + _STEPS <= count:
        for n in range(PANEL):
            t0, t1, t2 = sums[n], sums[PANEL + n], sums[2 * PANEL + n]
            t3, t4, t5 = sums[3 * PANEL + n], sums[4 * PANEL + n], sums[5 * PANEL + n]
            for step in range(_STEPS):
                b_value = panel[(k + step) * PANEL + n]
                base = GROUP * (k + step)
                t0 = fma32(a_pack[base], b_value, t0)
                t1 = fma32(a_pack[base + 1], b_value, t1)
                t2 = fma32(a_pack[base + 2], b_value, t2)
                t3 = fma32(a_pack[base + 3], b_value, t3)
                t4 = fma32(a_pack[base + 4], b_value, t4)
                t5 = fma32(a_pack[base + 5], b_value, t5)
            sums[n], sums[PANEL + n], sums[2 * PANEL + n] = t0, t1, t2
            sums[3 * PANEL + n], sums[4 * PANEL + n], sums[5 * PANEL + n] = t3, t4, t5
        k += _STEPS
    while k < count:
        base = GROUP * k
        for n in range(PANEL):
            b_value = panel[k * PANEL + n]
            for r in range(GROUP):
                sums[r * PANEL + n] = fma32(a_pack[base + r], b_value, sums[r * PANEL + n])
        k += 1


@njit(cache=True, inline="always")
def _certified_update(s, block_sum, norm_a, norm_b, factor, absolute, splitter, tiny, max_value):  # noqa: ANN001, ANN202
    """One update on float32 lanes (module docstring): (``RNE_p(s + t)`` when certified, certified)."""
    y = s + block_sum
    radius = (norm_a * norm_b * factor + absolute + _Y_TERM * abs(y)) * _MARGIN
    low = y - radius
    high = y + radius
    g = low * splitter
    low_value = g - (g - low)
    g = high * splitter
    high_value = g - (g - high)
    good = (low_value == high_value) & ((low >= tiny) | (high <= -tiny)) & (abs(low_value) <= max_value)
    return low_value, good


def certified_update32_reference(s: float, block_sum: float, norm_a: float, norm_b: float, factor: float,
                                 absolute: float, precision: int, emin: int,
                                 max_value: float) -> tuple[float, bool]:  # fmt: skip
    """Pure-Python twin of one update (numpy float32 scalars, the kernel's names): (``q``, certified)."""
    f32 = np.float32
    s, block_sum, norm_a, norm_b = f32(s), f32(block_sum), f32(norm_a), f32(norm_b)
    y = f32(s + block_sum)
    radius = f32(f32(f32(f32(f32(norm_a * norm_b) * f32(factor)) + f32(absolute)) + f32(_Y_TERM * abs(y))) * _MARGIN)
    low, high = f32(y - radius), f32(y + radius)
    splitter = f32(2 ** (24 - precision) + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        g = f32(low * splitter)
        low_value = f32(g - f32(g - low))
        g = f32(high * splitter)
        high_value = f32(g - f32(g - high))
    tiny = f32(2.0**emin)
    good = bool(low_value == high_value and (low >= tiny or high <= -tiny) and abs(low_value) <= f32(max_value))
    return float(low_value), good


@njit(cache=True)
def _update_tile(acc, sums, flags, a_norms, b_norms, factor, absolute, splitter, tiny, max_value):  # noqa: ANN001, ANN202
    """Every element's update of one block (``a_norms[r]``, ``b_norms[n]``); returns whether any was not certified
    (those keep their value, flagged 1)."""
    for r in range(GROUP):
        norm_a = a_norms[r]
        for n in range(PANEL):
            e = r * PANEL + n
            old = acc[e]
            value, good = _certified_update(old, sums[e], norm_a, b_norms[n], factor, absolute, splitter, tiny,
                                            max_value)  # fmt: skip
            flags[e] = np.uint8(not good)
            acc[e] = value if good else old
    hit = np.uint8(0)
    for e in range(GROUP * PANEL):  # a separate reduction: counting in the loop above halves its vector width
        hit |= flags[e]
    return hit != 0


@njit(cache=True)
def _redo(acc, flags, a_pack, panel, count, rows, cols, lanes, acc_params):  # noqa: ANN001, ANN202
    """The flagged updates of one block, from the spec: the sequential float64 sum ``t`` of the exact products, then
    ``RNE_p(s + t)`` by Veltkamp's splitting of ``RN53(s + t)`` (right unless that is a midpoint, in the subnormal
    range or above the largest value: those go to :func:`~lampnum.emulate.accumulate.round_sum`). The sums run
    ``_LANES`` elements at a time, so that their dependent chains of additions overlap. Returns the count."""
    positions, row_of, col_of = lanes[0], lanes[1], lanes[2]
    flagged = 0
    words = flags.view(np.uint64)  # eight flags a word: zero words (almost all) are skipped at once
    for w in range(words.shape[0]):
        word = words[w]
        while word != 0:
            e = w * 8 + np.int64(trailing_zeros(word)) // 8
            word &= word - np.uint64(1)  # the flag is 1: its byte's lowest bit is the only one set
            r, n = e // PANEL, e % PANEL
            if r < rows and n < cols:
                positions[flagged], row_of[flagged], col_of[flagged] = e, r, n
                flagged += 1
    last = max(flagged - 1, 0)
    for extra in range(flagged, flagged + _LANES):  # pad with the last element: the same work, the same result
        positions[extra], row_of[extra], col_of[extra] = positions[last], row_of[last], col_of[last]
    precision, min_normal, max_value = acc_params[0], 2.0 ** acc_params[1], acc_params[3]
    splitter = float(2 ** (53 - precision) + 1)
    low = np.int64((1 << (53 - precision)) - 1)
    half = np.int64(1 << (52 - precision))
    sums = np.empty(_LANES)
    for start in range(0, flagged, _LANES):
        for lane in range(_LANES):  # the spec's t starts at the first product (a signed zero kept)
            sums[lane] = np.float64(a_pack[row_of[start + lane]]) * np.float64(panel[col_of[start + lane]])
        for k in range(1, count):
            for lane in range(_LANES):
                product = np.float64(a_pack[GROUP * k + row_of[start + lane]]) * np.float64(
                    panel[k * PANEL + col_of[start + lane]])  # fmt: skip
                sums[lane] = sums[lane] + product
        for lane in range(min(_LANES, flagged - start)):
            e = positions[start + lane]
            old = np.float64(acc[e])
            value, bad = _checked_split(old + sums[lane], splitter, low, half, min_normal, max_value)
            if bad:  # round_sum keeps the sign of a value that rounds to zero
                value = round_sum(old, sums[lane], acc_params[0], acc_params[1], acc_params[2], acc_params[3],
                                  acc_params[4], acc_params[5], acc_params[6], 0, np.uint64(0), False)  # fmt: skip
            else:
                value = value + 0.0  # an exact zero sum is +0, as the spec's
            acc[e] = np.float32(value)
    return flagged


@njit(cache=True)
def _tile(a_mat, row_start, rows, panel_all, a_norms, b_norms, out_rows, cols, block, factor, absolute, splitter,
          tiny, max_value, acc_params, acc, sums, flags, a_pack, a_block_norms, lanes):  # noqa: ANN001, ANN202  # fmt: skip
    """One tile (``rows <= GROUP`` rows from ``row_start``, one panel of which ``cols`` columns are real): every
    block's sums, certified updates and exact redos, the result written to ``out_rows``. Returns the redo count."""
    depth = a_mat.shape[1]
    acc[:] = 0.0
    if rows < GROUP:
        a_pack[:] = 0.0  # rows past the matrix contribute zero sums (their results are not written)
        a_block_norms[:] = 0.0
    redone = 0
    for j in range((depth + block - 1) // block):
        k_start = j * block
        count = min(block, depth - k_start)
        for k in range(count):
            for r in range(rows):
                a_pack[GROUP * k + r] = a_mat[row_start + r, k_start + k]
        for r in range(rows):
            a_block_norms[r] = a_norms[row_start + r, j]
        _block_sums(a_pack, panel_all[k_start * PANEL:(k_start + count) * PANEL], count, sums)
        if not _update_tile(acc, sums, flags, a_block_norms, b_norms[j], factor, absolute, splitter, tiny, max_value):
            continue
        redone += _redo(acc, flags, a_pack, panel_all[k_start * PANEL:(k_start + count) * PANEL], count, rows, cols,
                        lanes, acc_params)  # fmt: skip
    for r in range(rows):
        for n in range(cols):
            out_rows[row_start + r, n] = acc[r * PANEL + n]
    return redone


@njit(cache=True, parallel=True)
def _block32_kernel(a, packed, a_index, b_index, a_norms, b_norms, out, block, factor, absolute, precision,
                    acc_params):  # noqa: ANN001, ANN201  # fmt: skip
    """``out[t] = A[a_index[t]] @ B[b_index[t]]`` (``packed``: B's panels, ``(batches·panels, K·PANEL)``); returns
    the number of element updates that were redone exactly. Work items are ``CHUNK`` groups of rows of one panel,
    which share their buffers."""
    n_rows = a.shape[1]
    n_cols = out.shape[2]
    n_panels = -(-n_cols // PANEL)
    n_groups = (n_rows + GROUP - 1) // GROUP
    n_chunks = (n_groups + CHUNK - 1) // CHUNK
    splitter = np.float32(2 ** (24 - precision) + 1)
    tiny = np.float32(2.0 ** acc_params[1])
    max_value = np.float32(acc_params[3])
    factor32 = np.float32(factor)
    absolute32 = np.float32(absolute)
    items = out.shape[0] * n_panels * n_chunks
    redone = np.zeros(items, dtype=np.int64)
    for item in prange(items):
        t = item // (n_panels * n_chunks)
        p = (item // n_chunks) % n_panels
        chunk = item % n_chunks
        a_mat = a[a_index[t]]
        panel_all = packed[b_index[t] * n_panels + p]
        panel_norms = b_norms[b_index[t] * n_panels + p]
        cols = min(PANEL, n_cols - p * PANEL)
        out_rows = out[t, :, p * PANEL:p * PANEL + cols]
        acc = np.empty(GROUP * PANEL, dtype=np.float32)
        sums = np.empty(GROUP * PANEL, dtype=np.float32)
        flags = np.empty(GROUP * PANEL, dtype=np.uint8)
        a_pack = np.zeros(GROUP * block, dtype=np.float32)
        a_block_norms = np.zeros(GROUP, dtype=np.float32)
        lanes = np.empty((3, GROUP * PANEL + _LANES), dtype=np.int64)
        for group in range(chunk * CHUNK, min(n_groups, (chunk + 1) * CHUNK)):
            row_start = group * GROUP
            redone[item] += _tile(a_mat, row_start, min(GROUP, n_rows - row_start), panel_all, a_norms[a_index[t]],
                                  panel_norms, out_rows, cols, block, factor32, absolute32, splitter, tiny,
                                  max_value, acc_params, acc, sums, flags, a_pack, a_block_norms, lanes)  # fmt: skip
    return redone.sum()


def block32_matmul(a: np.ndarray, b: np.ndarray, a_index: np.ndarray, b_index: np.ndarray, out: np.ndarray,
                   block: int, accumulator: Format, acc_params: tuple) -> int:  # fmt: skip
    """``out[t] = A[a_index[t]] @ B[b_index[t]]`` under block FMA with float64 block sums and rne, for 3-D operands
    holding float32 values (:func:`block32_eligible`). Returns the number of element updates redone exactly."""
    a32 = np.ascontiguousarray(a, dtype=np.float32)
    b32 = np.ascontiguousarray(b, dtype=np.float32)
    packed = np.stack([pack_panels(b_mat) for b_mat in b32])
    a_norms = _round_up32(_row_block_norms(a32, block) * (1 + 2.0**-30))  # the float64 sums' own error
    b_norms = _round_up32(_col_block_norms(packed.reshape(-1, *packed.shape[2:]), block) * (1 + 2.0**-30))
    factor = float(_round_up32(np.array([chain_error_factor(block)]))[0])
    absolute = block * 2.0**-126
    panels = packed.reshape(packed.shape[0] * packed.shape[1], -1)
    return int(_block32_kernel(a32, panels, a_index, b_index, a_norms, b_norms, out, block, factor, absolute,
                               accumulator.p, acc_params))  # fmt: skip
