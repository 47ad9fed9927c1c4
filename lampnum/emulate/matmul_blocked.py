"""Block FMA (``block = b > 1``, float64 block sums) at BLAS speed: the block sums come from a BLAS product, and each
accumulator update is *certified* from an error bound, or redone exactly.

The spec (ARCHITECTURE.md, "Accumulation semantics of matmul"): the b exact products of a block are summed
sequentially in float64 into ``t``, then ``s = round_acc(s + t)``, the exact sum rounded once. Per block, a BLAS
product of the operands' block slices gives ``T``, the same sum in an unknown order (blocking, FMA), in float32 when
the operands are float32 values and in float64 otherwise. Both are within a classical bound of the exact block sum
``σ`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1, any order, fused or not):
``|t - σ| <= γ_(b-1) Σ|a_k b_k|`` in float64 and ``|T - σ| <= γ_b Σ|a_k b_k|`` in the BLAS precision (plus ``b``
times float32's subnormal spacing for underflow, flush-to-zero included), with ``γ_n = n·u / (1 - n·u)``, and
``Σ|a_k b_k| <= ‖a_block‖₂ ‖b_block‖₂`` (Cauchy–Schwarz). So the exact ``s + t`` lies in
``[y - E, y + E]`` with ``y = fl(s + T)`` and ``E`` that bound plus ``y``'s own rounding (inflated by 2^-50 relative
for the roundings of ``E`` and of the endpoints). A rounding is monotone, so when both endpoints round to the same
normal accumulator value, ``round_acc(s + t)`` is that value. Otherwise (rare: ``s + t`` near a rounding boundary of
the accumulator, the subnormal range, overflow, zero) the element's block sum is recomputed sequentially and
:func:`lampnum.emulate.accumulate.round_sum` rounds ``s + t`` exactly.

Eligible specs (:func:`blocked_eligible`): ``block > 1``, ``block_precision`` fp64, exact products (or fp64 products in
rne), no via, a deterministic mode, accumulator ``p <= 51``; finite operands, and (float32 BLAS) no float32 overflow.
All BLAS products of a call run before all certified passes: switching between the BLAS thread pool and Numba's
(each spins for a while after its work) cost more than the passes themselves on two cores.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from ..formats import Format
from .accumulate import round_sum
from .matmul_fast import fast_round
from .operand_stats import OperandStats

__all__ = ["blocked_matmul", "blocked_eligible", "block_error_factor", "certified_update_reference"]

_F32_MAX = float(np.finfo(np.float32).max)
_F32_SUBNORMAL = 2.0**-149


def block_error_factor(block: int, blas_unit_roundoff: float) -> float:
    """The factor ``c`` with ``|t - T| <= c·‖a‖₂‖b‖₂`` (see the module docstring): ``γ_b`` of the BLAS precision plus
    ``γ_(b-1)`` of float64, inflated by 2^-20 for the float64 roundings of the norms."""
    def gamma(n: int, unit: float) -> float:
        return n * unit / (1 - n * unit)

    return (gamma(block, blas_unit_roundoff) + gamma(block - 1, 2.0**-53)) * (1 + 2.0**-20)


def certified_update_reference(s: float, blas_sum: float, error: float) -> tuple[float, float]:
    """Pure-Python twin of one update's enclosure (floats are IEEE binary64): ``(y - E, y + E)`` with ``y = fl(s +
    T)`` and ``E = error + |y|·2^-51``, inflated by 2^-50 relative; the kernel certifies when both round alike."""
    y = s + blas_sum
    radius = (error + abs(y) * 2.0**-51) * (1 + 2.0**-50)
    return y - radius, y + radius


@njit(cache=True, inline="always")
def _enclosure_rounds(low_end, high_end, splitter, tiny, acc_params, max_bits, mode):  # noqa: ANN001, ANN202
    """(round_acc of the enclosure, whether both ends round alike inside the normal range): rne by Veltkamp's
    splitting and floating-point tests only, so the loop vectorises; other modes by :func:`fast_round`."""
    if mode == 0:
        low_value = low_end * splitter
        low_value = low_value - (low_value - low_end)
        high_value = high_end * splitter
        high_value = high_value - (high_value - high_end)
        # each end is a nearest p-bit number of its end (either one at a midpoint); the exact value lies strictly
        # inside, so equal ends determine its rounding
        good = (low_value == high_value) & ((low_end >= tiny) | (high_end <= -tiny)) & (abs(low_value) <= acc_params[3])
        return low_value, good
    low_value, low_ok = fast_round(low_end, acc_params[0], acc_params[1], max_bits, acc_params[6], mode)
    high_value, high_ok = fast_round(high_end, acc_params[0], acc_params[1], max_bits, acc_params[6], mode)
    return low_value, low_ok & high_ok & (low_value == high_value) & ((low_end > 0.0) | (high_end < 0.0))


def _make_certified_pass(mode: int):  # noqa: ANN202 - returns a Numba dispatcher
    @njit(cache=True, parallel=True)
    def certified_pass(acc, sums, a_norms, b_norms, a_mat, b_columns, row_start, block, factor, absolute,
                       acc_params, max_bits, one):  # noqa: ANN001, ANN202  # fmt: skip
        """acc[i, n] = round_acc(acc[i, n] + t) for every block, with t the sequential float64 sum of the block's
        exact products, certified from the BLAS sums ``sums[block index, i, n]`` or recomputed (``b_columns``: B
        transposed, so that a recomputation reads contiguous memory). Returns the number of recomputed element
        updates."""
        rows, cols = acc.shape
        n_blocks = sums.shape[0]
        depth = a_mat.shape[1]
        splitter = float(2 ** (53 - acc_params[0]) + 1)
        tiny = 2.0 ** acc_params[1]
        recomputed = np.zeros(rows, dtype=np.int64)
        for i in prange(rows):
            acc_row = acc[i]
            flags = np.empty(cols, dtype=np.bool_)
            for j in range(n_blocks):
                scale = factor * a_norms[row_start + i, j]
                block_row = sums[j, i]
                norms = b_norms[j]
                hit = False
                for n in range(cols):
                    old = acc_row[n]
                    y = old + np.float64(block_row[n])
                    radius = (scale * norms[n] + absolute + abs(y) * 2.0**-51) * (1 + 2.0**-50)
                    value, good = _enclosure_rounds(y - radius, y + radius, splitter, tiny, acc_params, max_bits, mode)
                    flags[n] = not good
                    hit |= not good
                    acc_row[n] = value if good else old * one
                if hit:
                    k_start = j * block
                    k_stop = min(depth, k_start + block)
                    for n in range(cols):
                        if flags[n]:
                            t = 0.0
                            for k in range(k_start, k_stop):  # the spec's sequential float64 block sum
                                product = a_mat[row_start + i, k] * b_columns[n, k]
                                t = product if k == k_start else t + product
                            acc_row[n] = round_sum(acc_row[n], t, acc_params[0], acc_params[1], acc_params[2],
                                                   acc_params[3], acc_params[4], acc_params[5], acc_params[6], mode,
                                                   np.uint64(0), False)  # fmt: skip
                            recomputed[i] += 1
        return recomputed.sum()

    return certified_pass


@functools.cache
def certified_pass(mode: int) -> object:
    """The certified accumulation pass for a deterministic mode code (0..5), compiled on first use."""
    return _make_certified_pass(mode)


def _block_norms(x: np.ndarray, block: int, axis: int) -> np.ndarray:
    """Euclidean norms of consecutive ``block``-long slices of a 2-D array along ``axis`` (the last slice may be
    shorter), as (rows, blocks) for axis 1 and (blocks, cols) for axis 0."""
    depth = x.shape[axis]
    n_blocks = -(-depth // block)
    pad = n_blocks * block - depth
    squares = np.square(x, dtype=np.float64)
    if axis == 1:
        squares = np.pad(squares, ((0, 0), (0, pad))).reshape(x.shape[0], n_blocks, block)
        return np.sqrt(squares.sum(axis=2))
    squares = np.pad(squares, ((0, pad), (0, 0))).reshape(n_blocks, block, x.shape[1])
    return np.sqrt(squares.sum(axis=1))


def blocked_eligible(a_stats: OperandStats, b_stats: OperandStats, block: int, float32_blas: bool) -> bool:
    """Whether operands with these statistics can take the certified path: finite, and (float32 BLAS) no float32
    overflow in a block sum (the float64 case is covered by the exact-products check)."""
    if not (a_stats.finite and b_stats.finite):
        return False
    if not float32_blas:
        return True
    return a_stats.max_abs * b_stats.max_abs * block * 2 < _F32_MAX


def blocked_matmul(a: np.ndarray, b: np.ndarray, a_index: np.ndarray, b_index: np.ndarray, out: np.ndarray,
                   block: int, accumulator: Format, acc_params: tuple, mode: int,
                   float32_blas: bool) -> int:  # fmt: skip
    """``out[t] = A[a_index[t]] @ B[b_index[t]]`` under block FMA with float64 block sums, certified from BLAS block
    sums (``float32_blas``: the operands are float32 values and the BLAS runs in float32). Returns the number of
    element updates that were recomputed exactly."""
    blas_dtype = np.float32 if float32_blas else np.float64
    unit = 2.0**-24 if float32_blas else 2.0**-53
    factor = block_error_factor(block, unit)
    absolute = block * 2.0 * _F32_SUBNORMAL * 2.0**23 if float32_blas else 0.0  # b·2^-126: flush-to-zero included
    max_bits = np.float64(accumulator.max).view(np.uint64)
    depth = a.shape[2]
    n_blocks = -(-depth // block)
    pad = n_blocks * block - depth
    # every BLAS call first, then every certified pass: alternating between BLAS threads and Numba's threads (each
    # pool spins for a while after its work) costs more than the passes themselves
    sums = []
    for t in range(out.shape[0]):
        a_blas = np.pad(a[a_index[t]].astype(blas_dtype), ((0, 0), (0, pad)))
        b_blocks = np.pad(b[b_index[t]].astype(blas_dtype), ((0, pad), (0, 0))).reshape(n_blocks, block, -1)
        panel = a_blas.reshape(a.shape[1], n_blocks, block).transpose(1, 0, 2)
        sums.append(np.matmul(panel, b_blocks))  # (blocks, rows, cols): one BLAS product per block, in one call
    recomputed = 0
    for t in range(out.shape[0]):
        a_mat, b_mat = a[a_index[t]], b[b_index[t]]
        acc = np.zeros((a_mat.shape[0], b_mat.shape[1]))
        recomputed += certified_pass(mode)(acc, sums[t], _block_norms(a_mat, block, 1), _block_norms(b_mat, block, 0),
                                           a_mat, np.ascontiguousarray(b_mat.T), 0, block, factor, absolute,
                                           acc_params, max_bits, 1.0)  # fmt: skip
        out[t] = acc
    return int(recomputed)

