"""Numba kernels of the emulated matrix product: the accumulation model of :class:`~lampnum.MatmulSpec`, exactly.

Loop order per output row: for k = 0..K-1 (blocks of ``block`` consecutive k), for n = 0..N-1, so the inner loop runs
over independent output elements and vectorises; rows (times the batch) run in parallel, ``ROW_TILE`` rows at a time
so that each row of B is reused from cache. Every output element still sees its products in increasing k, as the spec
requires. Each rounding is :func:`lampnum.emulate.accumulate.round_sum` (one correct rounding of an exact sum) or
:func:`lampnum.rounding.kernels.round_bits` (one correct rounding of an exact float64 value).

Stochastic rounding: the accumulator rounding of output element ``e`` (flat C index over batch × M × N) at step ``j``
(its j-th accumulator update) uses ``random_bits_at(key_acc, e·steps + j)``; product roundings use ``key_product`` with
index ``e·K + k``. So results depend on the seed and the shapes only, never on threads or tiling.

The pure-Python reference that performs the same sequence on rationals is :mod:`lampnum.emulate.matmul_reference`.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from ..rounding.kernels import _U0, random_bits_at, round_bits
from .accumulate import round_sum, round_sum_normal, round_value_normal

__all__ = ["run_matmul_kernel", "generic_matmul_kernel", "ROW_TILE", "SPECIALISED"]

ROW_TILE = 8


@njit(cache=True)
def _round_value(value, params, mode, random_bits):  # noqa: ANN001, ANN202 - Numba types these
    """Round one exact float64 value with a lowered parameter tuple (precision, emin, subnormals, max_value,
    overflow_value, inf_value, unsigned_zero)."""
    return round_bits(np.float64(value).view(np.uint64), params[0], params[1], params[2], params[3], params[4],
                      params[5], params[6], mode, random_bits)  # fmt: skip


@njit(cache=True)
def _round_sum(x, y, params, mode, random_bits):  # noqa: ANN001, ANN202
    """round(x + y) with a lowered parameter tuple (see ``_round_value``)."""
    return round_sum(x, y, params[0], params[1], params[2], params[3], params[4], params[5], params[6], mode,
                     random_bits, False)  # fmt: skip


@njit(cache=True)
def _products_into(block_sum, b_row, a_value, first_in_block, first_element, depth, k, product_params,
                   block_params, key_product, mode, has_product, block_plain):  # fmt: skip
    """block_sum[n] (+)= round_product(a_value · b_row[n]); the first product of a block starts the sum.
    A function of its own: array arguments let LLVM prove the loop free of aliasing, so it vectorises."""
    stochastic = mode >= 6
    for n in range(b_row.shape[0]):
        product = a_value * b_row[n]
        if has_product:
            bits = random_bits_at(key_product, np.uint64(first_element + n) * np.uint64(depth) + np.uint64(k)) \
                if stochastic else _U0  # fmt: skip
            product = _round_value(product, product_params, mode, bits)
        if first_in_block:
            block_sum[n] = product
        elif block_plain:
            block_sum[n] += product
        else:  # block sums: sequential, round-to-nearest-even in block_precision
            block_sum[n] = _round_sum(block_sum[n], product, block_params, 0, _U0)


@njit(cache=True)
def _acc_bits(key_acc, element, steps, step, stochastic):  # noqa: ANN001, ANN202
    """The random word of an accumulator rounding: element ``element``, accumulation step ``step``."""
    return random_bits_at(key_acc, np.uint64(element) * np.uint64(steps) + np.uint64(step)) if stochastic else _U0


@njit(cache=True)
def _accumulate_scaled(acc_row, addend_row, scale, first_element, steps, step, acc_params, key_acc, mode, scratch):
    """acc_row[n] = round_acc(acc_row[n] + scale·addend_row[n]), the products exact (scale = 1 for block sums).

    First the branch-free fast path for the whole row into ``scratch`` (see ``round_sum_normal``); if any element
    left the format's normal range, the row is redone with the general rounding, from the untouched ``acc_row``."""
    stochastic = mode >= 6
    invalid = 0
    for n in range(acc_row.shape[0]):
        bits = _acc_bits(key_acc, first_element + n, steps, step, stochastic)
        scratch[n], valid = round_sum_normal(acc_row[n], scale * addend_row[n], acc_params[0], acc_params[1],
                                             acc_params[3], mode, bits)  # fmt: skip
        invalid += not valid
    if invalid == 0:
        for n in range(acc_row.shape[0]):
            acc_row[n] = scratch[n]
        return
    for n in range(acc_row.shape[0]):
        bits = _acc_bits(key_acc, first_element + n, steps, step, stochastic)
        acc_row[n] = _round_sum(acc_row[n], scale * addend_row[n], acc_params, mode, bits)


@njit(cache=True)
def _accumulate_into(acc_row, block_sum, first_element, steps, step, acc_params, via_params, key_acc, mode,
                     has_via, acc_plain, scratch):  # fmt: skip
    """acc_row[n] = round_acc(acc_row[n] + block_sum[n]) (through the via register when the spec has one)."""
    if not has_via and not acc_plain:
        _accumulate_scaled(acc_row, block_sum, 1.0, first_element, steps, step, acc_params, key_acc, mode, scratch)
        return
    stochastic = mode >= 6
    for n in range(acc_row.shape[0]):
        if acc_plain and not has_via:
            acc_row[n] += block_sum[n]
            continue
        # an fp32-like register first (round-to-nearest-even), then the accumulator
        register = _round_sum(acc_row[n], block_sum[n], via_params, 0, _U0)
        bits = _acc_bits(key_acc, first_element + n, steps, step, stochastic)
        acc_row[n] = register if acc_plain else _round_value(register, acc_params, mode, bits)


@njit(cache=True)
def _fused_register(acc_row, b_row, a_value, first_element, depth, k, steps, step, product_params, via_params,
                    acc_params, key_acc, key_product, mode, scratch):  # fmt: skip
    """Strict accumulation with rounded products through a register (the LAMP paper's fp32 emulation):
    acc_row[n] = round_acc(round_via(acc_row[n] + round_product(a_value·b_row[n]))). The row runs on the fast path
    first; if any element leaves a format's normal range it is redone with the general roundings."""
    stochastic = mode >= 6
    invalid = 0
    for n in range(acc_row.shape[0]):
        element = np.uint64(first_element + n)
        product_bits = random_bits_at(key_product, element * np.uint64(depth) + np.uint64(k)) if stochastic else _U0
        acc_bits = _acc_bits(key_acc, element, steps, step, stochastic)
        product, product_valid = round_value_normal(a_value * b_row[n], product_params[0], product_params[1],
                                                    product_params[3], mode, product_bits)  # fmt: skip
        register, register_valid = round_sum_normal(acc_row[n], product, via_params[0], via_params[1],
                                                     via_params[3], 0, _U0)  # fmt: skip
        scratch[n], acc_valid = round_value_normal(register, acc_params[0], acc_params[1], acc_params[3], mode,
                                                   acc_bits)  # fmt: skip
        invalid += not (product_valid & register_valid & acc_valid)
    if invalid == 0:
        for n in range(acc_row.shape[0]):
            acc_row[n] = scratch[n]
        return
    for n in range(acc_row.shape[0]):
        element = np.uint64(first_element + n)
        product_bits = random_bits_at(key_product, element * np.uint64(depth) + np.uint64(k)) if stochastic else _U0
        acc_bits = _acc_bits(key_acc, element, steps, step, stochastic)
        product = _round_value(a_value * b_row[n], product_params, mode, product_bits)
        register = _round_sum(acc_row[n], product, via_params, 0, _U0)
        acc_row[n] = _round_value(register, acc_params, mode, acc_bits)


@njit(cache=True)
def _accumulate_tile(a, b, a_index, b_index, out, tile, block, product_params, block_params, acc_params, via_params,
                     key_acc, key_product, mode, has_product, has_via, acc_plain, block_plain):  # fmt: skip
    """Compute ROW_TILE rows of one product (k increasing for every element) into ``out``."""
    n_batch, n_rows, n_cols = out.shape
    tiles_per_matrix = (n_rows + ROW_TILE - 1) // ROW_TILE
    t = tile // tiles_per_matrix
    row_start = (tile % tiles_per_matrix) * ROW_TILE
    row_stop = min(n_rows, row_start + ROW_TILE)
    a_mat = a[a_index[t]]
    b_mat = b[b_index[t]]
    acc = np.zeros((row_stop - row_start, n_cols))
    block_sum = np.zeros(n_cols)
    scratch = np.zeros(n_cols)
    depth = a_mat.shape[1]
    steps = (depth + block - 1) // block
    fused = block == 1 and not has_product and not has_via and not acc_plain
    fused_register = block == 1 and has_product and has_via and not acc_plain
    for step in range(steps):
        k_start = step * block
        k_stop = min(depth, k_start + block)
        for r in range(acc.shape[0]):
            row = row_start + r
            first_element = (t * n_rows + row) * n_cols
            if fused:
                _accumulate_scaled(acc[r], b_mat[k_start], a_mat[row, k_start], first_element, steps, step,
                                   acc_params, key_acc, mode, block_sum)  # fmt: skip
                continue
            if fused_register:
                _fused_register(acc[r], b_mat[k_start], a_mat[row, k_start], first_element, depth, k_start, steps,
                                step, product_params, via_params, acc_params, key_acc, key_product, mode,
                                block_sum)  # fmt: skip
                continue
            for k in range(k_start, k_stop):
                _products_into(block_sum, b_mat[k], a_mat[row, k], k == k_start, first_element, depth, k,
                               product_params, block_params, key_product, mode, has_product, block_plain)  # fmt: skip
            _accumulate_into(acc[r], block_sum, first_element, steps, step, acc_params, via_params, key_acc, mode,
                             has_via, acc_plain, scratch)  # fmt: skip
    out[t, row_start:row_stop] = acc


def _tiles(out: np.ndarray) -> int:
    return out.shape[0] * ((out.shape[1] + ROW_TILE - 1) // ROW_TILE)


@njit(cache=True, parallel=True)
def generic_matmul_kernel(a, b, a_index, b_index, out, block, product_params, block_params, acc_params, via_params,
                          key_acc, key_product, mode, has_product, has_via, acc_plain, block_plain):  # fmt: skip
    """``out[t] = A[a_index[t]] @ B[b_index[t]]`` under the accumulation model, every option a runtime argument
    (one compilation serves every spec; the specialised kernels below are the fast paths)."""
    n_tiles = out.shape[0] * ((out.shape[1] + ROW_TILE - 1) // ROW_TILE)
    for tile in prange(n_tiles):
        _accumulate_tile(a, b, a_index, b_index, out, tile, block, product_params, block_params, acc_params,
                         via_params, key_acc, key_product, mode, has_product, has_via, acc_plain,
                         block_plain)  # fmt: skip


def _make_matmul_kernel(mode: int, has_product: bool, has_via: bool, acc_plain: bool, block_plain: bool):  # noqa: ANN202
    """A parallel driver whose options are closure constants: LLVM inlines the tile function, folds the options and
    unswitches the inner loops, which then vectorise."""

    @njit(cache=True, parallel=True)
    def specialised_matmul_kernel(a, b, a_index, b_index, out, block, product_params, block_params, acc_params,
                                  via_params, key_acc, key_product):  # fmt: skip
        n_tiles = out.shape[0] * ((out.shape[1] + ROW_TILE - 1) // ROW_TILE)
        for tile in prange(n_tiles):
            _accumulate_tile(a, b, a_index, b_index, out, tile, block, product_params, block_params, acc_params,
                             via_params, key_acc, key_product, mode, has_product, has_via, acc_plain,
                             block_plain)  # fmt: skip

    return specialised_matmul_kernel


#: The option combinations that get a specialised kernel (the hot specs): strict or block-FMA accumulation with
#: exact products, and the LAMP paper's fp32-register emulation (rounded products, via fp32), in rne and sr.
SPECIALISED = frozenset(
    (mode, has_product, has_via, False, block_plain)
    for mode in (0, 6)
    for has_product, has_via, block_plain in ((False, False, True), (True, True, True))
)


@functools.cache
def _specialised(options: tuple) -> object:
    return _make_matmul_kernel(*options)


def run_matmul_kernel(a, b, a_index, b_index, out, block, product_params, block_params, acc_params, via_params,
                      key_acc, key_product, mode, has_product, has_via, acc_plain, block_plain) -> None:  # fmt: skip
    """Dispatch to a specialised kernel for the hot option combinations, else to the generic one."""
    options = (mode, has_product, has_via, acc_plain, block_plain)
    if options in SPECIALISED:
        _specialised(options)(a, b, a_index, b_index, out, block, product_params, block_params, acc_params,
                              via_params, key_acc, key_product)  # fmt: skip
    else:
        generic_matmul_kernel(a, b, a_index, b_index, out, block, product_params, block_params, acc_params,
                              via_params, key_acc, key_product, mode, has_product, has_via, acc_plain,
                              block_plain)  # fmt: skip
