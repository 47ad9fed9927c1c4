"""An independent fp16 oracle: the exact result located in the enumerated table of fp16 values, modes applied
by their definitions.

Nothing here shares code with lampnum (nor with its reference): every non-negative finite fp16 value is an
integer number of units of 2^-24, listed by code (so the parity of the index is the parity of the last
significand bit), followed by 2^16, the first point of the unbounded grid beyond max (code 0x7C00, even). An
exact result is located between two table entries by binary search with exact comparisons: rationals as
Fractions, square roots by comparing squares of integers (``math.isqrt`` for the stochastic threshold).
Special values come from numpy's IEEE float64 arithmetic (every fp16 operation with an infinite or NaN result
is exactly the float64 one), and the sign of an exact zero is float64's, except the one mode-dependent rule of
IEEE 754 §6.3: in rdn an exact zero sum is −0 unless both addends are +0.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

UNIT = 2**24  # fp16 values are multiples of 2^-24
MAX_UNITS = 65504 * UNIT
BEYOND_UNITS = 65536 * UNIT


def _magnitude_units(code: int) -> int:
    exponent_field, fraction = code >> 10, code & 0x3FF
    if exponent_field == 0:
        return fraction
    return (1024 + fraction) << (exponent_field - 1)


TABLE = [_magnitude_units(code) for code in range(0x7C00)] + [BEYOND_UNITS]


class Rational:
    """An exact magnitude ``m`` (a Fraction, in units of 2^-24)."""

    def __init__(self, units: Fraction) -> None:
        self.units = units

    def compare(self, t: int) -> int:
        return (self.units > t) - (self.units < t)

    def compare_double(self, s: int) -> int:  # sign of 2m − s
        return (2 * self.units > s) - (2 * self.units < s)

    def sr_threshold(self, lo: int, hi: int) -> int:  # floor((m − lo)/(hi − lo) · 2^53)
        return math.floor((self.units - lo) * 2**53 / (hi - lo))


class SquareRoot:
    """The magnitude ``sqrt(X)`` units for an integer ``X`` (units²)."""

    def __init__(self, squared_units: int) -> None:
        self.x = squared_units

    def compare(self, t: int) -> int:
        return (self.x > t * t) - (self.x < t * t)

    def compare_double(self, s: int) -> int:
        return (4 * self.x > s * s) - (4 * self.x < s * s)

    def sr_threshold(self, lo: int, hi: int) -> int:
        return (math.isqrt(self.x << 106) - (lo << 53)) // (hi - lo)


def locate(exact: Rational | SquareRoot) -> tuple[int, int] | None:
    """Indices ``(lo, hi)`` of the table entries around the exact magnitude (equal when it is one of them), or
    None when it lies beyond 2^16, the last entry."""
    if exact.compare(BEYOND_UNITS) > 0:
        return None
    low, high = 0, len(TABLE) - 1  # the smallest index with TABLE[index] >= m
    while low < high:
        middle = (low + high) // 2
        if exact.compare(TABLE[middle]) <= 0:
            high = middle
        else:
            low = middle + 1
    return (low, low) if exact.compare(TABLE[low]) == 0 else (low - 1, low)


def round_located(exact: Rational | SquareRoot, where: tuple[int, int] | None, negative: bool, mode: str,
                  random_bits: int) -> float:  # fmt: skip
    """Round a nonzero exact value with the given sign to fp16 in ``mode`` by the definitions of the modes."""
    if where is None:
        chosen = None
    elif where[0] == where[1]:
        chosen = where[0]
    else:
        lo_index, hi_index = where
        lo, hi = TABLE[lo_index], TABLE[hi_index]
        if mode == "rne":
            side = exact.compare_double(lo + hi)
            toward_hi = side > 0 or (side == 0 and lo_index % 2 == 1)
        elif mode == "rna":
            toward_hi = exact.compare_double(lo + hi) >= 0
        elif mode == "sr":
            toward_hi = (random_bits >> 11) < exact.sr_threshold(lo, hi)
        else:
            toward_hi = {"rtz": False, "rup": not negative, "rdn": negative, "rto": lo_index % 2 == 0,
                         "sr_eq": (random_bits >> 63) == 1}[mode]  # fmt: skip
        chosen = hi_index if toward_hi else lo_index
    if chosen is None or TABLE[chosen] > MAX_UNITS:
        to_max = mode in ("rtz", "rto") or (mode == "rup" and negative) or (mode == "rdn" and not negative)
        magnitude = 65504.0 if to_max else math.inf
    else:
        magnitude = TABLE[chosen] / UNIT  # exact: an fp16 value
    return -magnitude if negative else magnitude


def exact_value(name: str, operands: tuple[float, ...]) -> Rational | SquareRoot | Fraction:
    """The exact result: a Fraction for the rational operations (possibly 0), or a SquareRoot of a positive
    value."""
    a = Fraction(operands[0])
    if name == "sqrt":
        return SquareRoot(int(a * UNIT * UNIT))  # a·2^48 is an integer for fp16 a
    b = Fraction(operands[1])
    if name == "fma":
        return a * b + Fraction(operands[2])
    if name == "add":
        return a + b
    if name == "sub":
        return a - b
    return a * b if name == "mul" else a / b


def float64_result(name: str, operands: tuple[float, ...]) -> float:
    x = [np.float64(v) for v in operands]
    with np.errstate(all="ignore"):
        result = {
            "add": lambda: x[0] + x[1],
            "sub": lambda: x[0] - x[1],
            "mul": lambda: x[0] * x[1],
            "div": lambda: x[0] / x[1],
            "sqrt": lambda: np.sqrt(x[0]),
            "fma": lambda: x[0] * x[1] + x[2],  # fp16 products are exact in float64
        }[name]()
    return float(result)


def _addends(name: str, operands: tuple[float, ...]) -> tuple[float, float] | None:
    if name == "add":
        return operands[0], operands[1]
    if name == "sub":
        return operands[0], -operands[1]
    if name == "fma":
        return operands[0] * operands[1], operands[2]
    return None


def oracle(name: str, operands: tuple[float, ...], modes: list[str], random_bits: int) -> dict[str, float]:
    """The fp16 result of ``name`` on fp16 ``operands`` in each of ``modes`` (one random word for
    sr/sr_eq)."""
    approximate = float64_result(name, operands)
    if not all(math.isfinite(v) for v in operands) or not math.isfinite(approximate):
        return {mode: approximate for mode in modes}  # NaN, or an exact infinity: fp16 holds both
    exact = exact_value(name, operands)
    if isinstance(exact, Fraction) and exact == 0 or isinstance(exact, SquareRoot) and exact.x == 0:
        addends = _addends(name, operands)
        results = {}
        for mode in modes:
            both_plus_zero = addends is not None and all(v == 0 and math.copysign(1, v) > 0 for v in addends)
            rdn_rule = addends is not None and mode == "rdn" and not both_plus_zero
            results[mode] = -0.0 if rdn_rule else approximate
        return results
    if isinstance(exact, Fraction):
        negative = exact < 0
        exact = Rational(abs(exact) * UNIT)
    else:
        negative = False
    where = locate(exact)
    return {mode: round_located(exact, where, negative, mode, random_bits) for mode in modes}
