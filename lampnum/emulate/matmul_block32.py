"""Block FMA (``block = b > 1``, float64 block sums, rne) on *float32* vector lanes, every accumulator update
certified from an error bound or redone exactly: the block=32 kernel for bf16, fp16 and fp8 accumulators.

The spec (ARCHITECTURE.md, "Accumulation semantics of matmul"): the b exact products of a block are summed
sequentially in float64 into ``t``, then ``s = RNE_p(s + t)``. Here each block sum is first computed as ``T``, in
float32 on sixteen lanes, six rows at a time with the products' ``b`` values shared (a register-blocked loop; no sum
is stored between the k steps of a group of four): two chains of fused multiply-adds from 0 (k increasing), over the
block's first ``split`` products and over the rest (:func:`chain_split`: half of 32; one chain for a short block),
then ``T = RN24(T1 + T2)``. Both ``T`` and ``t`` differ from the exact block sum ``σ`` by a bound the kernel can
afford to evaluate. A chain's steps ``T_k = RN24(T_(k-1) + a_k b_k)`` each err by at most ``2^-24·|T_k|`` (round to
nearest, relative to the result) or, in the subnormal range, by at most ``2^-126`` (gradual underflow or flushed to
zero), and ``|T_k| <= (1 + 2^-24)^k Σ_(i<=k) |a_i b_i|``; summing a chain's step errors counts ``|a_i b_i|`` once
for every later step of its chain, ``L - i + 1`` times in a chain of L, and the final addition once more (``|T| <=
(1 + 2^-24)(|T1| + |T2|)``; it is exact when a chain is empty), so ``|T - σ| <= 2^-24 (1 + 2^-24)^b Σ w_i |a_i b_i|
+ (b + 1)·2^-126`` with ``w_i = L - i + 2`` (the longest chain plus one is at most b). Two chains make the weights
about half as large as one chain's ``b - i + 1``, and the redone updates as many times fewer (measured at the qkv
shape: 0.52 % to 0.31 % for bf16, 3.1 % to 1.9 % for fp16), for one more addition per update. The spec's float64
sum has ``|t - σ| <= γ_(b-1)(2^-53) Σ |a_i b_i|`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
§3.1), and ``w_i >= 1``. By Cauchy–Schwarz, ``Σ w_i |a_i b_i| <= ‖w ⊙ a_block‖₂ ‖b_block‖₂``, so ``|t - T| <= e =
c·‖w ⊙ a‖₂‖b‖₂ + (b + 1)·2^-126`` with ``c`` of :func:`chain_error_factor`: one weighted norm per row and block of
A, one norm per column and block of B, computed once.

One update, in float32 (:func:`certified_update32_reference` is its pure-Python twin, same names):

- ``y = RN24(s + T)``, so the exact ``v = s + t`` has ``|v - y| <= e + 2^-24·|y|`` (``|y|`` normal; a subnormal
  float32 ``y`` is never certified);
- ``radius = RN24(norm_a·scaled_norm_b + RN24(2^-24(1 + 2^-20)·|y| + absolute))`` (two fused multiply-adds) with
  ``norm_a >= ‖w ⊙ a_block‖₂``, ``scaled_norm_b >= ‖b_block‖₂·c·(1 + 2^-20)`` and ``absolute >=
  (b + 1)·2^-126·(1 + 2^-20)`` float32 values computed once (:func:`scaled_bounds`). Each fused multiply-add loses at
  most a relative 2^-24 (its result is normal, ``absolute >= 2^-125``), and ``(1 + 2^-20)(1 - 2^-24)^2 >= 1``, so
  ``radius >= e + 2^-24·|y|``;
- ``q`` is ``y`` rounded to p bits by Veltkamp's splitting in float32 (``C = 2^(24-p) + 1``; *a* nearest p-bit
  number, Dekker 1971, Boldo IJCAR 2006, ``2 <= 24 - p <= 22``) and ``excess = |y| - |q|``, exact (both are
  multiples of the float32 ulp of ``y`` and differ by at most half a p-bit ulp);
- ``half_gap = 2^(E - p)`` for ``|q|`` in the binade ``[2^E, 2^(E+1))``, half the distance to the p-bit neighbour
  away from zero; ``half_gap_below``, the same from the binade of the float32 number just below ``|q|``, half the
  distance to the neighbour toward zero (a quarter of ``2^(E-p+1)`` when ``|q| = 2^E``): integer operations on the
  encoding;
- certified when ``RN24(radius + excess) < half_gap``, ``RN24(radius - excess) < half_gap_below`` (then the exact
  sums are below too: rounding is monotone and the half gaps are float32 numbers), ``|q| > threshold = max(2^emin,
  2^(p-125))`` (``q`` normal in the format, its half gaps normal float32 numbers) and ``|q| <= max``. Then ``|v|``,
  within ``radius`` of ``|y| = |q| + excess`` (``v`` and ``y`` have one sign: ``radius < |q|``), lies strictly
  between the midpoints on either side of ``|q|``: ``RNE_p(v) = q``, no tie (at ``|q| = max``, ``|v| < max +
  half_gap`` rounds to ``max`` too). An overflow of ``C·y`` gives NaN, which is never certified.

An update that is not certified (``v`` within the radius of a rounding boundary, the subnormal range, overflow;
0.3 % to 1.2 % of the updates for standard normal data at bf16 and GPT-2 shapes) keeps the old value, is flagged, and
is redone from the spec: the sequential float64 block sum ``t`` of the exact products, then Veltkamp's splitting of
``RN53(s + t)`` where that is exact, else ``round_sum(s, t)`` (TwoSum and round-to-odd). So the result is bit for bit
the spec's, whatever the data; hard data only costs recomputations.

Eligible (:func:`block32_eligible`): ``2 <= p <= 22`` and an exponent range within float32's normal range (every
accumulator value, subnormals included, is a float32 value, and its normal numbers are normal float32 numbers),
operands that are float32 values, finite and normal (no subnormal entries: a processor flag that treats subnormal
*inputs* as zero would break the bound), and no float32 overflow of a block sum (``max|A|·max|B|·b·2 <
float32 max``).

Tiles: six rows × ``PANEL`` = 128 columns of one matrix; B is packed once into column panels (k-major, zero
padded), so the loop's 32 streams of ``b`` values share one base pointer and the compiler vectorises it. A work item
is ``CHUNK`` tiles of one panel, run block by block (the panel's block stays in cache for all of them) with no array
slice taken per tile (a slice counts references with atomic operations on the shared operand's meminfo). This order,
the certificate above and the redo loop's layout together measured 7 to 12 % faster than a first version that ran
tile by tile (the effects were not separated).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import njit, prange

from ..formats import Format
from ..rounding.reference import round_reference
from .accumulate import round_sum
from .bits import lowest_set_byte
from .matmul_blocked import block_error_factor
from .matmul_lanes32 import fma32
from .matmul_split import _checked_split
from .operand_stats import OperandStats

__all__ = ["PANEL", "block32_eligible", "block32_matmul", "certified_update32_reference", "pack_panels"]

PANEL = 128  # columns per tile (measured 64, 128 and 256 at the qkv shape: 128 best)
GROUP = 6  # rows per tile: the b value of a step is shared by six fused multiply-adds
CHUNK = 11  # groups of rows per work item, sharing its buffers (4 to 22 measured at the qkv shape: all alike)
_STEPS = 4  # k steps kept in registers between loads and stores of the block sums (measured: 6 rows x 4
# steps 8.5 ms, 4 x 8 13.1 ms, 6 x 8 11.4 ms, 8 x 4 9.4 ms at the qkv shape, against 7.8 ms for numpy's float32 @)
_F32_MAX = float(np.finfo(np.float32).max)
_MARGIN = 1 + 2.0**-20  # covers the float32 roundings of the radius (module docstring)
_Y_TERM = np.float32(2.0**-24 * _MARGIN)  # exact in float32
_EXPONENT_MASK = np.uint32(0x7F800000)
_FP32 = Format(p=24, emax=127)


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
    """``c`` with ``|t - T| <= c·‖w ⊙ a‖₂‖b‖₂ + (block + 1)·2^-126`` (module docstring): ``2^-24·(1 + 2^-24)^block``
    for the float32 chains plus ``γ_(block-1)`` of float64 for the spec's sum, inflated by 2^-20 for their own
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
    one shorter), weighted by ``w_k = stop - k + 1`` for the k-th entry of a slice, ``stop`` the end of its chain
    (:func:`chain_split`; module docstring)."""
    batches, rows, depth = a.shape
    n_blocks = (depth + block - 1) // block
    norms = np.zeros((batches, rows, n_blocks))
    for row in prange(batches * rows):
        t, i = row // rows, row % rows
        for j in range(n_blocks):
            total = 0.0
            k_start = j * block
            k_stop = min(depth, k_start + block)
            split = k_start + chain_split(k_stop - k_start)
            for k in range(k_start, k_stop):
                value = np.float64(a[t, i, k]) * ((split if k < split else k_stop) - k + 1)
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
def chain_split(count: int) -> int:
    """Where a block of ``count`` products starts its second chain (module docstring): about half way, a multiple of
    the register-blocked steps; 0 (one chain) for a block too short to split."""
    return (count // 2) // _STEPS * _STEPS


@njit(cache=True, inline="always")
def _chain_steps(a_pack, panel, k, chain):  # noqa: ANN001, ANN202
    """Steps ``k .. k + _STEPS - 1`` of the six chains ``chain[r·PANEL + n]`` (rows ``a_pack[GROUP·k + r]``, columns
    ``panel[k·PANEL + n]``), kept in registers (the compiler unrolls the constant trip count and vectorises over n)."""
    for n in range(PANEL):
        t0, t1, t2 = chain[n], chain[PANEL + n], chain[2 * PANEL + n]
        t3, t4, t5 = chain[3 * PANEL + n], chain[4 * PANEL + n], chain[5 * PANEL + n]
        for step in range(_STEPS):
            b_value = panel[(k + step) * PANEL + n]
            base = GROUP * (k + step)
            t0 = fma32(a_pack[base], b_value, t0)
            t1 = fma32(a_pack[base + 1], b_value, t1)
            t2 = fma32(a_pack[base + 2], b_value, t2)
            t3 = fma32(a_pack[base + 3], b_value, t3)
            t4 = fma32(a_pack[base + 4], b_value, t4)
            t5 = fma32(a_pack[base + 5], b_value, t5)
        chain[n], chain[PANEL + n], chain[2 * PANEL + n] = t0, t1, t2
        chain[3 * PANEL + n], chain[4 * PANEL + n], chain[5 * PANEL + n] = t3, t4, t5


@njit(cache=True)
def _block_sums(a_pack, panel, count, split, first, second):  # noqa: ANN001, ANN202
    """The block's two float32 fused multiply-add chains from 0 for the tile's six rows and the panel's columns:
    steps ``k < split`` into ``first``, the rest into ``second`` (all of them when ``split`` is 0); ``T = RN24(first +
    second)`` is the block sum (module docstring)."""
    for e in range(GROUP * PANEL):
        first[e] = np.float32(0.0)
        second[e] = np.float32(0.0)
    k = 0
    while k + _STEPS <= count:  # split is a multiple of _STEPS
        _chain_steps(a_pack, panel, k, first if k < split else second)
        k += _STEPS
    while k < count:  # past split: the last steps are in the second chain
        base = GROUP * k
        for n in range(PANEL):
            b_value = panel[k * PANEL + n]
            for r in range(GROUP):
                second[r * PANEL + n] = fma32(a_pack[base + r], b_value, second[r * PANEL + n])
        k += 1


def scaled_bounds(norms_b: np.ndarray, block: int) -> tuple[np.ndarray, np.float32]:
    """The float32 constants of the radius (module docstring): ``scaled_norm_b`` (at least
    ``norms_b·c·(1 + 2^-20)``, elementwise) and ``absolute`` (at least ``(block + 1)·2^-126·(1 + 2^-20)``)."""
    factor = chain_error_factor(block) * _MARGIN * (1 + 2.0**-50)  # the float64 products' own roundings
    scaled = _round_up32(np.asarray(norms_b, dtype=np.float64) * factor)
    absolute = _round_up32(np.array([(block + 1) * 2.0**-126 * _MARGIN]))[0]
    return scaled, absolute


@njit(cache=True, inline="always")
def _certified_update(s, block_sum, norm_a, scaled_norm_b, absolute, splitter, exponent_shift, threshold,
                      max_value):  # noqa: ANN001, ANN202  # fmt: skip
    """One update on float32 lanes (module docstring): (``RNE_p(s + t)`` when certified, certified)."""
    y = s + block_sum
    radius = fma32(norm_a, scaled_norm_b, fma32(_Y_TERM, abs(y), absolute))
    g = y * splitter
    q = g - (g - y)
    magnitude = abs(q)
    excess = abs(y) - magnitude  # exact
    bits = np.float32(magnitude).view(np.uint32)
    half_gap = np.uint32(np.uint32(bits & _EXPONENT_MASK) - exponent_shift).view(np.float32)
    half_gap_below = np.uint32(np.uint32(np.uint32(bits - np.uint32(1)) & _EXPONENT_MASK) - exponent_shift).view(
        np.float32)  # fmt: skip
    good = (radius + excess < half_gap) & (radius - excess < half_gap_below) & (magnitude > threshold) & (
        magnitude <= max_value)  # fmt: skip
    return q, good


def certified_update32_reference(s: float, block_sum: float, norm_a: float, norm_b: float, block: int,
                                 precision: int, emin: int, max_value: float) -> tuple[float, bool]:  # fmt: skip
    """Pure-Python twin of one update (numpy float32 scalars, the kernel's names, integers for the encodings):
    (``q``, certified), for a block of ``block`` products and the float64 norms ``norm_a``, ``norm_b``."""
    f32 = np.float32
    scaled, absolute = scaled_bounds(np.array([norm_b]), block)
    s, block_sum, norm_a, scaled_norm_b = f32(s), f32(block_sum), _round_up32(np.array([norm_a]))[0], scaled[0]

    def fused(first: np.float32, second: np.float32, addend: np.float32) -> np.float32:  # one rounding, as an FMA
        exact = Fraction(float(first)) * Fraction(float(second)) + Fraction(float(addend))
        return f32(round_reference(exact, _FP32, "rne"))

    splitter = f32(2 ** (24 - precision) + 1)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a NaN q, never certified
        y = f32(s + block_sum)
        g = f32(y * splitter)
        q = f32(g - f32(g - y))
    magnitude = abs(q)
    threshold = max(2.0**emin, 2.0 ** (precision - 125))
    if not (np.isfinite(magnitude) and threshold < magnitude <= f32(max_value)):
        return float(q), False
    excess = f32(abs(y) - magnitude)
    inner = fused(_Y_TERM, abs(y), absolute)
    radius = fused(norm_a, scaled_norm_b, inner)
    bits = int(magnitude.view(np.uint32))
    half_gap = float(np.uint32((bits & 0x7F800000) - (precision << 23)).view(np.float32))
    half_gap_below = float(np.uint32(((bits - 1) & 0x7F800000) - (precision << 23)).view(np.float32))
    good = bool(f32(radius + excess) < half_gap and f32(radius - excess) < half_gap_below)
    return float(q), good


@njit(cache=True)
def _update_tile(acc, sums, second, flags, row_hits, a_norms, scaled_norms_b, absolute, splitter, exponent_shift,
                 threshold, max_value):  # noqa: ANN001, ANN202  # fmt: skip
    """Every element's update of one block (``a_norms[r]``, ``scaled_norms_b[n]``); those not certified keep their
    value and are flagged 1, ``row_hits[r]`` says whether row r has any. Returns whether any row has."""
    hit = np.uint8(0)
    for r in range(GROUP):
        norm_a = a_norms[r]
        for n in range(PANEL):
            e = r * PANEL + n
            old = acc[e]
            value, good = _certified_update(old, sums[e] + second[e], norm_a, scaled_norms_b[n], absolute, splitter,
                                            exponent_shift, threshold, max_value)  # fmt: skip
            flags[e] = np.uint8(not good)
            acc[e] = value if good else old
        row_hit = np.uint8(0)
        for n in range(PANEL):  # a separate reduction: counting in the loop above halves its vector width
            row_hit |= flags[r * PANEL + n]
        row_hits[r] = row_hit
        hit |= row_hit
    return hit != 0


@njit(cache=True, inline="always")
def _finish_redo(acc, e, sum_t, splitter, low, half, min_normal, max_value):  # noqa: ANN001, ANN202
    """``acc[e] = RNE_p(acc[e] + t)`` by Veltkamp's splitting of ``RN53(s + t)``, unless that is a midpoint, in the
    subnormal range or above the largest value: then ``acc[e]`` is left and True returned."""
    value, bad = _checked_split(np.float64(acc[e]) + sum_t, splitter, low, half, min_normal, max_value)
    if not bad:
        acc[e] = np.float32(value + 0.0)  # + 0.0: an exact zero sum is +0, as the spec's
    return bad


@njit(cache=True)
def _block_sum64(a_pack, panel, count, e):  # noqa: ANN001, ANN202
    """The spec's block sum ``t`` of element ``e``: its exact products added in order in float64, from the first
    (a signed zero kept)."""
    r, n = e // PANEL, e % PANEL
    total = np.float64(a_pack[r]) * np.float64(panel[n])
    for k in range(1, count):
        total = total + np.float64(a_pack[GROUP * k + r]) * np.float64(panel[k * PANEL + n])
    return total


@njit(cache=True)
def _redo(acc, flags, row_hits, a_pack, panel, count, rows, cols, positions, acc_params):  # noqa: ANN001, ANN202
    """The flagged updates of one block, from the spec: the sequential float64 sum ``t`` of the exact products (it
    starts at the first product, a signed zero kept), then :func:`_finish_redo`. Four sums run side by side in
    registers, so that their dependent chains of additions overlap (the last element pads the last four: the same
    work, the same result). The rare updates that Veltkamp's splitting cannot round (midpoints, the subnormal range,
    overflow) go last to :func:`~lampnum.emulate.accumulate.round_sum`, out of the loop. Returns the count."""
    flagged = 0
    words = flags.view(np.uint64)  # eight flags a word: zero words (almost all) are skipped at once
    for r in range(rows):
        if row_hits[r] == 0:
            continue
        for w in range(r * (PANEL // 8), (r + 1) * (PANEL // 8)):
            word = words[w]
            while word != 0:
                byte, word = lowest_set_byte(word)
                e = w * 8 + byte
                if e % PANEL < cols:
                    positions[flagged] = e
                    flagged += 1
    precision, min_normal, max_value = acc_params[0], 2.0 ** acc_params[1], acc_params[3]
    splitter = float(2 ** (53 - precision) + 1)
    low = np.int64((1 << (53 - precision)) - 1)
    half = np.int64(1 << (52 - precision))
    hard = 0  # hard cases are written over positions already read
    for start in range(0, flagged, 4):
        last = flagged - 1
        e0, e1 = positions[start], positions[min(start + 1, last)]
        e2, e3 = positions[min(start + 2, last)], positions[min(start + 3, last)]
        r0, r1, r2, r3 = e0 // PANEL, e1 // PANEL, e2 // PANEL, e3 // PANEL
        n0, n1, n2, n3 = e0 % PANEL, e1 % PANEL, e2 % PANEL, e3 % PANEL
        t0 = np.float64(a_pack[r0]) * np.float64(panel[n0])
        t1 = np.float64(a_pack[r1]) * np.float64(panel[n1])
        t2 = np.float64(a_pack[r2]) * np.float64(panel[n2])
        t3 = np.float64(a_pack[r3]) * np.float64(panel[n3])
        for k in range(1, count):
            a_row, b_row = GROUP * k, k * PANEL
            t0 = t0 + np.float64(a_pack[a_row + r0]) * np.float64(panel[b_row + n0])
            t1 = t1 + np.float64(a_pack[a_row + r1]) * np.float64(panel[b_row + n1])
            t2 = t2 + np.float64(a_pack[a_row + r2]) * np.float64(panel[b_row + n2])
            t3 = t3 + np.float64(a_pack[a_row + r3]) * np.float64(panel[b_row + n3])
        if _finish_redo(acc, e0, t0, splitter, low, half, min_normal, max_value):
            positions[hard] = e0
            hard += 1
        if start + 1 < flagged and _finish_redo(acc, e1, t1, splitter, low, half, min_normal, max_value):
            positions[hard] = e1
            hard += 1
        if start + 2 < flagged and _finish_redo(acc, e2, t2, splitter, low, half, min_normal, max_value):
            positions[hard] = e2
            hard += 1
        if start + 3 < flagged and _finish_redo(acc, e3, t3, splitter, low, half, min_normal, max_value):
            positions[hard] = e3
            hard += 1
    for h in range(hard):  # round_sum keeps the sign of a value that rounds to zero
        e = positions[h]
        acc[e] = np.float32(round_sum(np.float64(acc[e]), _block_sum64(a_pack, panel, count, e), acc_params[0],
                                      acc_params[1], acc_params[2], acc_params[3], acc_params[4], acc_params[5],
                                      acc_params[6], 0, np.uint64(0), False))  # fmt: skip
    return flagged


@njit(cache=True)
def _chunk(a_mat, row_start, row_stop, panel_all, a_norms, scaled_norms_b, out_rows, cols, block, absolute, splitter,
           exponent_shift, threshold, max_value, acc_params, acc_all, sums, second, flags, row_hits, a_pack,
           a_block_norms, positions):  # noqa: ANN001, ANN202  # fmt: skip
    """Rows ``row_start:row_stop`` (at most ``CHUNK`` groups of ``GROUP``) of one panel, of which ``cols`` columns are
    real: block by block, every group's sums, certified updates and exact redos, the result written to
    ``out_rows``. Returns the redo count. Blocks outermost: the panel's block (``block·PANEL`` values) stays in cache
    for all groups, and each slice is taken once per block, not once per group (a slice counts references with
    atomic operations on the shared operand's meminfo)."""
    depth = a_mat.shape[1]
    n_groups = (row_stop - row_start + GROUP - 1) // GROUP
    acc_all[:] = 0.0
    redone = 0
    for j in range((depth + block - 1) // block):
        k_start = j * block
        count = min(block, depth - k_start)
        panel = panel_all[k_start * PANEL:(k_start + count) * PANEL]
        split = chain_split(count)
        block_norms_b = scaled_norms_b[j]
        for group in range(n_groups):
            first = row_start + group * GROUP
            rows = min(GROUP, row_stop - first)
            if rows < GROUP:
                a_pack[:] = 0.0  # rows past the matrix contribute zero sums (their results are not written)
                a_block_norms[:] = 0.0
            for k in range(count):
                for r in range(rows):
                    a_pack[GROUP * k + r] = a_mat[first + r, k_start + k]
            for r in range(rows):
                a_block_norms[r] = a_norms[first + r, j]
            acc = acc_all[group * GROUP * PANEL:(group + 1) * GROUP * PANEL]  # a private buffer: no contention
            _block_sums(a_pack, panel, count, split, sums, second)
            if _update_tile(acc, sums, second, flags, row_hits, a_block_norms, block_norms_b, absolute, splitter,
                            exponent_shift, threshold, max_value):  # fmt: skip
                redone += _redo(acc, flags, row_hits, a_pack, panel, count, rows, cols, positions, acc_params)
    for group in range(n_groups):
        first = row_start + group * GROUP
        for r in range(min(GROUP, row_stop - first)):
            for n in range(cols):
                out_rows[first + r, n] = acc_all[(group * GROUP + r) * PANEL + n]
    return redone


@njit(cache=True, parallel=True)
def _block32_kernel(a, packed, a_index, b_index, a_norms, scaled_norms_b, out, block, absolute, precision,
                    acc_params):  # noqa: ANN001, ANN201  # fmt: skip
    """``out[t] = A[a_index[t]] @ B[b_index[t]]`` (``packed``: B's panels, ``(batches·panels, K·PANEL)``); returns
    the number of element updates that were redone exactly. Work items are ``CHUNK`` groups of rows of one panel."""
    n_rows = a.shape[1]
    n_cols = out.shape[2]
    n_panels = -(-n_cols // PANEL)
    rows_per_item = CHUNK * GROUP
    n_chunks = (n_rows + rows_per_item - 1) // rows_per_item
    splitter = np.float32(2 ** (24 - precision) + 1)
    exponent_shift = np.uint32(precision << 23)
    threshold = np.float32(max(2.0 ** acc_params[1], 2.0 ** (precision - 125)))
    max_value = np.float32(acc_params[3])
    items = out.shape[0] * n_panels * n_chunks
    redone = np.zeros(items, dtype=np.int64)
    for item in prange(items):
        t = item // (n_panels * n_chunks)
        p = (item // n_chunks) % n_panels
        chunk = item % n_chunks
        cols = min(PANEL, n_cols - p * PANEL)
        acc_all = np.empty(CHUNK * GROUP * PANEL, dtype=np.float32)
        sums = np.empty(GROUP * PANEL, dtype=np.float32)
        second = np.empty(GROUP * PANEL, dtype=np.float32)
        flags = np.empty(GROUP * PANEL, dtype=np.uint8)
        row_hits = np.zeros(GROUP, dtype=np.uint8)
        a_pack = np.zeros(GROUP * block, dtype=np.float32)
        a_block_norms = np.zeros(GROUP, dtype=np.float32)
        positions = np.empty(GROUP * PANEL, dtype=np.int64)
        row_start = chunk * rows_per_item
        redone[item] = _chunk(a[a_index[t]], row_start, min(n_rows, row_start + rows_per_item),
                              packed[b_index[t] * n_panels + p], a_norms[a_index[t]],
                              scaled_norms_b[b_index[t] * n_panels + p], out[t, :, p * PANEL:p * PANEL + cols], cols,
                              block, absolute, splitter, exponent_shift, threshold, max_value, acc_params, acc_all,
                              sums, second, flags, row_hits, a_pack, a_block_norms, positions)  # fmt: skip
    return redone.sum()


def block32_matmul(a: np.ndarray, b: np.ndarray, a_index: np.ndarray, b_index: np.ndarray, out: np.ndarray,
                   block: int, accumulator: Format, acc_params: tuple) -> int:  # fmt: skip
    """``out[t] = A[a_index[t]] @ B[b_index[t]]`` under block FMA with float64 block sums and rne, for 3-D operands
    holding float32 values (:func:`block32_eligible`). Returns the number of element updates redone exactly."""
    a32 = np.ascontiguousarray(a, dtype=np.float32)
    b32 = np.ascontiguousarray(b, dtype=np.float32)
    packed = np.stack([pack_panels(b_mat) for b_mat in b32])
    a_norms = _round_up32(_row_block_norms(a32, block) * (1 + 2.0**-30))  # the float64 sums' own error
    b_norms = _col_block_norms(packed.reshape(-1, *packed.shape[2:]), block) * (1 + 2.0**-30)
    scaled_norms_b, absolute = scaled_bounds(b_norms, block)
    panels = packed.reshape(packed.shape[0] * packed.shape[1], -1)
    return int(_block32_kernel(a32, panels, a_index, b_index, a_norms, scaled_norms_b, out, block, absolute,
                               accumulator.p, acc_params))  # fmt: skip
