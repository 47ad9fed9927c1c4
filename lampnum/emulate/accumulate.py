"""The one primitive of emulated accumulation: round the exact sum of two float64 values once, to any format.

``round_sum(x, y, ...)`` returns ``round_F(x + y)`` for a format F with p <= 51, correctly, in every mode:

1. ``t = fl(x + y)`` and its exact error ``e = (x + y) - t`` by TwoSum (Knuth; Muller et al., *Handbook of
   Floating-Point Arithmetic*, 2nd ed., Alg. 4.4), so ``x + y = t + e`` exactly (barring float64 overflow);
2. the float64 round-to-odd of ``t + e``: ``t`` itself when ``e = 0`` or ``t``'s last bit is odd, else ``t``'s neighbour
   on ``e``'s side (which is odd);
3. that value, which carries 53 >= p + 2 bits, rounded to F in the mode: rounding to odd with two extra bits and then
   rounding to p bits equals rounding once (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved
   algorithms using rounding to odd", IEEE Trans. Computers 57(4), 2008, Theorem 1) — for the nearest and directed
   modes. For stochastic rounding the probability is computed from the round-to-odd value, so it is exact to within
   2^(p-52) (and E[round(x+y)] = x + y to within one float64 ulp).

Signed zeros follow float64 addition (an exact zero sum of opposite signs is +0), and a float64 overflow of ``x + y``
(|x + y| > 1.8e308) becomes an infinite input to step 3. For ``p >= 52`` only round-to-nearest-even into fp64 itself is
exact (``t``); :func:`check_sum_format` refuses the rest.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..formats import Format
from ..rounding.kernels import _U0, _U1, _round_up, round_bits
from ..rounding.modes import RoundingMode

__all__ = ["two_sum", "round_to_odd_sum", "round_sum", "round_sum_normal", "round_value_normal", "check_sum_format", "MAX_SUM_PRECISION"]

MAX_SUM_PRECISION = 51
_FP64 = Format(p=53, emax=1023)


def check_sum_format(fmt: Format, mode: RoundingMode, role: str) -> bool:
    """Validate a format that sums are rounded into; returns True when it is fp64 in rne (plain float64 addition)."""
    if fmt.p <= MAX_SUM_PRECISION:
        return False
    if fmt == _FP64 and mode is RoundingMode.RNE:
        return True
    raise ValueError(
        f"{role} {fmt} with p={fmt.p} in mode {mode.value!r} is not supported: correctly rounded sums are emulated for "
        f"p <= {MAX_SUM_PRECISION} (any mode) and for fp64 itself in 'rne'"
    )


@njit(cache=True, inline="always")
def two_sum(x: float, y: float) -> tuple[float, float]:
    """TwoSum: (t, e) with t = fl(x + y) and t + e = x + y exactly (no branch, no magnitude test)."""
    t = x + y
    y_virtual = t - x
    x_virtual = t - y_virtual
    e = (x - x_virtual) + (y - y_virtual)
    return t, e


@njit(cache=True, inline="always")
def round_to_odd_sum(x: float, y: float) -> float:
    """The float64 round-to-odd of the exact x + y (x + y itself when exact; inf/NaN when fl(x + y) is)."""
    t, e = two_sum(x, y)
    t_bits = np.float64(t).view(np.uint64)
    inexact = (e != 0.0) & np.isfinite(t)
    even = (t_bits & _U1) == _U0
    away_from_zero = (e > 0.0) == (t > 0.0)  # e pushes the magnitude up: the neighbour of larger magnitude
    step = _U1 if away_from_zero else np.uint64(0xFFFFFFFFFFFFFFFF)  # +1 or -1 in two's complement
    odd_bits = t_bits + step if (inexact & even) else t_bits
    return np.uint64(odd_bits).view(np.float64)


@njit(cache=True)
def round_sum(
    x: float,
    y: float,
    precision: int,
    emin: int,
    subnormals: bool,
    max_value: float,
    overflow_value: float,
    inf_value: float,
    unsigned_zero: bool,
    mode: int,
    random_bits: np.uint64,
    plain_float64: bool,
) -> float:
    """round_F(x + y) for the format whose lowered parameters are given (see the module docstring)."""
    if plain_float64:
        return x + y
    odd = round_to_odd_sum(x, y)
    return round_bits(np.float64(odd).view(np.uint64), precision, emin, subnormals, max_value, overflow_value,
                      inf_value, unsigned_zero, mode, random_bits)  # fmt: skip


_SIGN = np.uint64(0x8000000000000000)
_ABS = np.uint64(0x7FFFFFFFFFFFFFFF)


@njit(cache=True, inline="always")
def round_value_normal(value: float, precision: int, emin: int, max_value: float, mode: int,
                       random_bits: np.uint64) -> tuple[float, bool]:  # fmt: skip
    """The fast path of rounding one float64 value: (result, valid). Valid when ``value`` lies in a normal binade of
    the format and its rounding does not exceed ``max_value``; then the last ``53 - p`` bits of its IEEE encoding are
    dropped with the same decision as ``round_bits`` (a carry lands in the exponent field, the next binade), which
    gives the same result. Branch-free, so loops over it vectorise; callers redo invalid elements with the general
    rounding."""
    bits = np.float64(value).view(np.uint64)
    negative = (bits & _SIGN) != _U0
    magnitude_bits = bits & _ABS
    shift = 53 - precision
    unit = _U1 << np.uint64(shift)
    remainder = magnitude_bits & (unit - _U1)
    kept_bits = magnitude_bits & ~(unit - _U1)
    kept_odd = ((kept_bits & unit) != _U0) | (shift == 52)  # p = 1: the hidden bit is the last bit
    round_up = _round_up(mode, remainder, unit >> _U1, kept_odd, negative, random_bits, shift)
    rounded_bits = kept_bits + (np.uint64(round_up) << np.uint64(shift))
    exponent = np.int64(magnitude_bits >> np.uint64(52)) - 1023
    valid = (exponent >= emin) & (rounded_bits <= np.float64(max_value).view(np.uint64))
    return np.uint64(rounded_bits | (bits & _SIGN)).view(np.float64), valid


@njit(cache=True, inline="always")
def round_sum_normal(x: float, y: float, precision: int, emin: int, max_value: float, mode: int,
                     random_bits: np.uint64) -> tuple[float, bool]:  # fmt: skip
    """The fast path of :func:`round_sum`: ``round_value_normal`` of the round-to-odd sum (valid when that sum is in
    the format's normal range); callers redo invalid elements with :func:`round_sum`."""
    return round_value_normal(round_to_odd_sum(x, y), precision, emin, max_value, mode, random_bits)
