"""``lampnum.sum``: sums in an accumulator format, in a chosen order, each partial sum rounded once.

Orders (n terms x_0 … x_{n-1} of one reduction; every addition is ``round_acc(a + b)`` of the exact sum, see
:mod:`lampnum.emulate.accumulate`):

``"recursive"``  s_0 = round(x_0), s_k = round(s_{k-1} + x_k): n - 1 additions in sequence (Higham, *Accuracy and
                 Stability of Numerical Algorithms*, 2nd ed., §4.2, recursive summation); the first term is rounded
                 to the accumulator too.
``"pairwise"``   level by level: the terms (rounded to the accumulator) are added in adjacent pairs,
                 y_i = round(x_{2i} + x_{2i+1}), an odd last term is carried up unchanged, until one value remains:
                 ⌈log2 n⌉ levels (Higham §4.2, pairwise or cascade summation).
``"blocked"``    blocks of ``block`` consecutive terms are summed recursively, then the block sums are summed
                 recursively (Higham §4.2, blocked summation; Blanchard, Higham & Mary 2020).

Stochastic rounding: the j-th rounding (in the order above) of reduction r uses the random word of index
``r·n + j`` under the call's key. The result is a float64 array (the reduced axis removed) holding the emulated sums;
an empty reduction gives 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from ..formats import Format, as_format
from ..rounding.api import stochastic_key
from ..rounding.kernels import _U0, random_bits_at
from ..rounding.modes import RoundingMode, as_mode
from .accumulate import check_sum_format, round_sum
from .matmul import lowered

__all__ = ["sum", "ORDERS"]

ORDERS = ("recursive", "pairwise", "blocked")


@njit(cache=True)
def _add(x, y, params, plain, mode, key, index):  # noqa: ANN001, ANN202
    bits = random_bits_at(key, np.uint64(index)) if mode >= 6 else _U0
    return round_sum(x, y, params[0], params[1], params[2], params[3], params[4], params[5], params[6], mode, bits,
                     plain)  # fmt: skip


@njit(cache=True)
def _recursive(values, start, stop, params, plain, mode, key, counter):  # noqa: ANN001, ANN202
    """round-recursive sum of values[start:stop] (start < stop); returns (sum, next counter)."""
    total = _add(0.0, values[start], params, plain, mode, key, counter)
    counter += 1
    for k in range(start + 1, stop):
        total = _add(total, values[k], params, plain, mode, key, counter)
        counter += 1
    return total, counter


@njit(cache=True, parallel=True)
def _sum_rows(x, out, order, block, params, plain, mode, key):  # noqa: ANN001, ANN202
    n_rows, n = x.shape
    for row in prange(n_rows):
        values = x[row]
        counter = row * n
        if n == 0:
            out[row] = 0.0
        elif order == 0:
            out[row], _ = _recursive(values, 0, n, params, plain, mode, key, counter)
        elif order == 1:
            level = np.empty(n)
            for k in range(n):  # the terms enter the tree rounded to the accumulator
                level[k] = _add(0.0, values[k], params, plain, mode, key, counter)
                counter += 1
            size = n
            while size > 1:
                half = size // 2
                for i in range(half):
                    level[i] = _add(level[2 * i], level[2 * i + 1], params, plain, mode, key, counter)
                    counter += 1
                if size % 2 == 1:
                    level[half] = level[size - 1]
                size = half + size % 2
            out[row] = level[0]
        else:
            n_blocks = (n + block - 1) // block
            partial = np.empty(n_blocks)
            for j in range(n_blocks):
                partial[j], counter = _recursive(values, j * block, min(n, (j + 1) * block), params, plain, mode,
                                                 key, counter)  # fmt: skip
            out[row], _ = _recursive(partial, 0, n_blocks, params, plain, mode, key, counter)


def sum(  # noqa: A001 - the contract's name, as numpy.sum
    x: Any,
    axis: int = -1,
    accumulator: Format | str = "fp32",
    order: str = "recursive",
    block: int = 32,
    mode: RoundingMode | str = "rne",
    *,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Sum ``x`` along ``axis`` in the ``accumulator`` format, in ``order`` (see the module docstring).

    >>> import lampnum as ln, numpy as np
    >>> float(ln.sum(np.ones(4096), accumulator="bf16")), float(ln.sum(np.ones(4096), accumulator="bf16", order="pairwise"))
    (256.0, 4096.0)
    """
    fmt = as_format(accumulator)
    mode = as_mode(mode)
    if order not in ORDERS:
        raise ValueError(f"unknown summation order {order!r}; expected one of {ORDERS}")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}")
    array = np.asarray(x)
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"lampnum.sum takes float32 or float64 arrays, got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError("lampnum.sum needs at least one dimension")
    plain = check_sum_format(fmt, mode, "accumulator")
    moved = np.moveaxis(array, axis, -1)
    if moved.shape[-1] == 0:
        return np.zeros(moved.shape[:-1])
    rows = np.ascontiguousarray(moved.reshape(-1, moved.shape[-1]), dtype=np.float64)
    out = np.empty(rows.shape[0])
    key = stochastic_key(mode, rng)
    _sum_rows(rows, out, ORDERS.index(order), block, lowered(fmt), plain, mode.code, np.uint64(key))
    return out.reshape(moved.shape[:-1])

