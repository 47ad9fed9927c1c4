"""Componentwise bounds for :func:`lampnum.sum`: recursive, pairwise and blocked summation, exactly as it orders them.

A summation is a tree whose every node (the rounding of each term into the accumulator, and each addition) is one
rounding |fl(x) − x| ≤ u|x| + η (:mod:`lampnum.bounds.constants`). If term x_i passes through d_i roundings on its way
to the root, then (Higham 2002, Ch. 4, with the per-term counts kept and the underflow terms added)

    |ŝ − Σ x_i| ≤ Σ_i ((1 + u)^{d_i} − 1)·|x_i| + η·Σ_nodes (1 + u)^{(roundings above the node)}.

The depths follow ``lampnum.emulate.summation`` (read from its documentation):

- ``recursive``: s_0 = fl(x_0), s_k = fl(s_{k−1} + x_k): d_0 = n, d_i = n − i (i ≥ 1); Higham's γ_{n−1} bound plus
  the rounding of the first term. The underflow part is η·Σ_{j<n}(1 + u)^j.
- ``pairwise``: every term rounded, then adjacent pairs added level by level, an odd last element carried up
  unrounded: d_i = 1 + the number of levels at which i's partial sum is added (≤ 1 + ⌈log2 n⌉; Higham Ch. 4, γ_{⌈log2 n⌉}).
  The underflow part is bounded by η·(2n − 1)·(1 + u)^{max d − 1}.
- ``blocked`` (block b): blocks summed recursively, then the block sums recursively: d_i = (its depth in its block,
  L_B or L_B − j) + (n_b or n_b − B) with n_b = ⌈n/b⌉ blocks (Blanchard, Higham & Mary, SIAM J. Sci. Comput. 42(3)
  (2020) A1541–A1557: γ_{b} + γ_{n/b}).

Probabilistic (``prob=``): each term's (1 + u)^{d_i} − 1 is replaced by the smaller of itself and the γ̃ of
:mod:`lampnum.bounds.growth`, λ chosen so that all n·(number of sums) term bounds hold at once with probability
≥ 1 − prob (stochastic rounding unconditionally; round-to-nearest under Higham & Mary's model; directed modes keep the
deterministic bound). Overflow: every partial sum is at most Σ|x_i| + β, checked against the accumulator's overflow
threshold; sums that may overflow get ``inf`` and a :class:`~lampnum.bounds.BoundOverflowWarning`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..formats import Format
from ..rounding.modes import RoundingMode, as_mode
from .constants import lambda_for, rounding
from .growth import Factor, deterministic_growth, inflate, probabilistic_growth
from .products import _geometric, _power, _random_kinds
from .result import BoundResult, check_finite, report_overflow

__all__ = ["sum", "depths", "ORDERS"]

ORDERS = ("recursive", "pairwise", "blocked")


def depths(n: int, order: str = "recursive", block: int = 32) -> np.ndarray:
    """d_i: the number of accumulator roundings term i passes through in ``lampnum.sum``'s ``order``."""
    if order not in ORDERS:
        raise ValueError(f"unknown summation order {order!r}; expected one of {ORDERS}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    index = np.arange(n)
    if order == "recursive":
        return np.where(index == 0, n, n - index)
    if order == "pairwise":
        d = np.ones(n, dtype=np.int64)
        position = index.copy()  # each term's ancestor's index at the current level
        size = n
        while size > 1:
            carried = (size % 2 == 1) & (position == size - 1)
            d += ~carried
            position = position // 2
            size = size // 2 + size % 2
        return d
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}")
    blocks = -(-n // block)
    b_index, j = index // block, index % block
    length = np.minimum(block, n - b_index * block)
    inner = np.where(j == 0, length, length - j)
    outer = np.where(b_index == 0, blocks, blocks - b_index)
    return inner + outer


def _underflow(n: int, order: str, block: int, u: float, eta: float) -> float:
    if n == 0 or eta == 0.0:
        return 0.0
    if order == "recursive":
        total = eta * _geometric(n, u)
    elif order == "pairwise":
        total = eta * (2 * n - 1) * _power(int(np.max(depths(n, "pairwise"))) - 1, u)
    else:
        blocks = -(-n // block)
        index = np.arange(blocks)
        length = np.minimum(block, n - index * block)
        outer = np.where(index == 0, blocks, blocks - index)
        total = np.sum(eta * _geometric(length, u) * _power(outer, u)) + eta * _geometric(blocks, u)
    return float(inflate(total, 4 * n + 8, 4 * n + 8))


def sum(  # noqa: A001 - mirrors lampnum.sum
    x: Any,
    axis: int = -1,
    accumulator: Format | str = "fp32",
    order: str = "recursive",
    block: int = 32,
    mode: RoundingMode | str = "rne",
    *,
    prob: float | None = None,
    full: bool = False,
) -> np.ndarray | BoundResult:
    """Bound β with |lampnum.sum(x, axis, accumulator, order, block, mode) − Σ x| ≤ β for each reduced entry.

    Arguments mirror :func:`lampnum.sum`; ``prob`` gives the probabilistic bound (module docstring), ``full`` a
    :class:`BoundResult`. Non-finite data raise ``ValueError``.

    >>> import numpy as np
    >>> u, eta = 2.0**-8, 2.0**-134  # bf16, round to nearest
    >>> exact = (1 + u)**4 + (1 + u)**3 + (1 + u)**2 + (1 + u) - 4 + eta * (4 + 6 * u)  # d = 4, 3, 2, 1
    >>> b = float(sum(np.ones(4), accumulator="bf16"))
    >>> bool(exact <= b <= exact * (1 + 1e-10)), depths(4).tolist(), depths(5, "pairwise").tolist()
    (True, [4, 3, 2, 1], [4, 4, 4, 4, 2])
    """
    array = np.asarray(x, dtype=np.float64)
    if array.ndim == 0:
        raise ValueError("a sum needs at least one dimension")
    check_finite("x", array)
    mode = as_mode(mode)
    moved = np.moveaxis(array, axis, -1)
    n = moved.shape[-1]
    d = depths(n, order, block)
    r = rounding(accumulator, mode)
    factors = [Factor(r, d)]
    kappa = deterministic_growth(factors) if n else np.zeros(0)
    probability_value, model = 1.0, "deterministic"
    if prob is not None and n:
        kinds, model = _random_kinds(mode)
        lam = lambda_for(prob, 0.0, events=max(1, n * math.prod(moved.shape[:-1])))
        kappa = probabilistic_growth(factors, lam, kinds)
        probability_value = 1.0 - float(prob)
    magnitude = np.abs(moved)
    arithmetic = inflate(np.sum(magnitude * kappa, axis=-1), n + 2, n)
    under = _underflow(n, order, block, r.u, r.eta)
    bound = inflate(arithmetic + under, 2)
    deterministic = bound if prob is None else inflate(np.sum(magnitude * deterministic_growth(factors), -1) + under, n + 4, n)
    overflow = inflate(np.sum(magnitude, -1) + deterministic, n + 4) >= r.threshold
    bound = report_overflow(np.array(bound, dtype=np.float64), overflow, "lampnum.bounds.sum")
    if full:
        terms = {"arithmetic": arithmetic, "underflow": np.full(bound.shape, under)}
        return BoundResult(bound=bound, overflow=overflow, probability=probability_value, model=model, terms=terms)
    return bound
