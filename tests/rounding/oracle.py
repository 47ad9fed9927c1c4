"""An independent rounding oracle for the tests: rounding as the choice of a neighbour in an enumerated value set.

Nothing here shares code with lampnum's rounding: the format's non-negative values are enumerated from integers
(significand · 2^(exponent - p + 1)), and a mode is applied by its definition as a choice between the two neighbours
``lo <= |x| <= hi`` found by binary search, vectorised with numpy. Used for exhaustive checks of small formats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """The non-negative finite values of a format (ascending), each significand's parity, and the first grid point
    beyond ``max`` on the unbounded-exponent grid (the value that overflows)."""

    values: np.ndarray  # float64, ascending, starts at 0
    odd: np.ndarray  # bool: last significand bit of each value
    beyond: float  # next point of the grid above max
    beyond_odd: bool
    max: float


def enumerate_grid(p: int, emin: int, emax: int, subnormals: bool, top_significand: int) -> Grid:
    """Enumerate a format's non-negative values from integers; ``top_significand`` is the largest significand at
    emax (2^p - 1, or 2^p - 2 when the all-ones code is NaN)."""
    values: list[float] = [0.0]
    odd: list[bool] = [False]
    if subnormals:
        for significand in range(1, 1 << (p - 1)):
            values.append(math.ldexp(significand, emin - p + 1))
            odd.append(significand % 2 == 1)
    for exponent in range(emin, emax + 1):
        last = top_significand if exponent == emax else (1 << p) - 1
        for significand in range(1 << (p - 1), last + 1):
            values.append(math.ldexp(significand, exponent - p + 1))
            odd.append(significand % 2 == 1)
    maximum = values[-1]
    next_significand = top_significand + 1
    if next_significand == 1 << p:  # the next point is 2^(emax+1), significand 2^(p-1) at emax+1
        beyond, beyond_odd = math.ldexp(1.0, emax + 1), p == 1
    else:
        beyond, beyond_odd = math.ldexp(next_significand, emax - p + 1), next_significand % 2 == 1
    return Grid(np.array(values), np.array(odd), beyond, beyond_odd, maximum)


def grid_of(fmt) -> Grid:  # noqa: ANN001 - a lampnum.Format, read through its public fields only
    top = (1 << fmt.p) - (2 if fmt.specials == "fn" else 1)
    return enumerate_grid(fmt.p, fmt.emin, fmt.emax, fmt.subnormals, top)


def oracle_round(x: np.ndarray, grid: Grid, mode: str, fmt) -> np.ndarray:  # noqa: ANN001
    """Round finite or special float64 ``x`` to the grid's format in a deterministic ``mode``, by definition."""
    x = np.asarray(x, dtype=np.float64)
    values = np.append(grid.values, grid.beyond)
    odd = np.append(grid.odd, grid.beyond_odd)
    magnitude = np.abs(x)
    finite = np.isfinite(x)
    safe = np.where(finite, magnitude, 0.0)
    index_hi = np.clip(np.searchsorted(values, safe, side="left"), 0, len(values) - 1)
    exact = values[index_hi] == safe
    index_lo = np.where(exact, index_hi, index_hi - 1)
    beyond_all = safe > grid.beyond  # far beyond max: both neighbours are "overflow"
    index_lo = np.clip(index_lo, 0, len(values) - 1)
    lo, hi = values[index_lo], values[index_hi]
    negative = np.signbit(x)
    if mode == "rne":
        mid = (lo + hi) / 2  # exact: neighbours differ by a power of two times an integer
        pick_hi = (safe > mid) | ((safe == mid) & odd[index_lo])
    elif mode == "rna":
        pick_hi = safe >= (lo + hi) / 2
    elif mode == "rtz":
        pick_hi = np.zeros_like(exact)
    elif mode == "rup":
        pick_hi = ~negative
    elif mode == "rdn":
        pick_hi = negative.copy()
    elif mode == "rto":
        pick_hi = ~odd[index_lo]
    else:
        raise ValueError(mode)
    pick_hi = pick_hi & ~exact
    result = np.where(pick_hi, hi, lo)
    result = np.where(exact, safe, result)
    # overflow: the chosen point lies beyond max
    toward_infinity = {"rne": True, "rna": True, "rtz": False, "rto": False}.get(mode)
    if toward_infinity is None:
        toward_infinity_mask = ~negative if mode == "rup" else negative
    else:
        toward_infinity_mask = np.full(x.shape, toward_infinity)
    over = (result > grid.max) | beyond_all
    overflow_value = {"inf": np.inf, "saturate": grid.max, "nan": np.nan}[fmt.overflow]
    result = np.where(over, np.where(toward_infinity_mask, overflow_value, grid.max), result)
    result = np.where(negative, -result, result)
    if fmt.specials == "fnuz":
        result = np.where(result == 0, 0.0, result)
    result = np.where(np.isnan(x), np.nan, result)
    infinite = np.isinf(x)
    inf_value = overflow_value
    result = np.where(infinite, np.where(negative, -inf_value, inf_value), result)
    return result


def exhaustive_inputs(grid: Grid, dtype: type = np.float64) -> np.ndarray:
    """Every value, every midpoint of neighbours (beyond max too), and one ulp of ``dtype`` either side of each
    midpoint, with both signs, plus zeros, infinities and NaN."""
    values = np.append(grid.values, grid.beyond).astype(np.float64)
    midpoints = (values[:-1] + values[1:]) / 2
    mids = midpoints.astype(dtype)
    assert np.array_equal(mids.astype(np.float64), midpoints), "midpoints must be exact in the input dtype"
    far = np.array([grid.beyond * 2, grid.beyond * 1.5])
    far = far[far <= np.finfo(dtype).max].astype(dtype)
    representable = values[values <= np.finfo(dtype).max].astype(dtype)
    pieces = [representable, mids, np.nextafter(mids, dtype(np.inf)), np.nextafter(mids, dtype(0)), far]
    positive = np.concatenate(pieces)
    positive = positive[np.isfinite(positive)]
    special = np.array([0.0, np.inf, np.nan], dtype=dtype)
    return np.concatenate([positive, -positive, special, -special])
