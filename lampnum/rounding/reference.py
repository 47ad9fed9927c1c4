"""The executable specification of rounding: exact scalar rounding of any rational to any :class:`~lampnum.Format`.

Pure Python on integers and :class:`fractions.Fraction`; slow, obviously correct, and written with the same variable
names as the Numba kernel in :mod:`lampnum.rounding.kernels`, which must agree with it bit for bit.

The rule (IEEE 754-2019 §4.3 and §7.4, extended to the modes of :class:`~lampnum.rounding.modes.RoundingMode`):
write ``|x| = scaled · 2^quantum_exponent`` where ``quantum_exponent = max(exponent, emin) - p + 1`` is the exponent of
the last significand bit at x's binade (``emin`` itself when the format has no subnormals and ``|x| < 2^emin``: then
the only candidates are 0 and 2^emin), keep ``kept = floor(scaled)``, and decide from the ``remainder = scaled - kept``
and the mode whether to add one unit. A result beyond ``max`` is an overflow: modes that round away from zero there
(rne, rna, sr, sr_eq, and rup/rdn on the side of their infinity) give the format's overflow value (inf, max or NaN per
its policy); the others (rtz, rto, rup/rdn on the other side) give ±max.

Stochastic modes consume one 64-bit word of random bits per value: ``uniform = random_bits >> 11`` (53 bits); ``sr``
rounds up iff ``uniform < floor(remainder · 2^53)`` (exactly the probability ``remainder`` whenever at most 53 bits are
discarded, i.e. for every input at or above half the smallest subnormal), ``sr_eq`` iff the top random bit is 1.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ..formats import Format, as_format
from .modes import RoundingMode, as_mode

__all__ = ["round_reference", "floor_log2", "splitmix64_reference", "random_bits_reference", "SR_RANDOM_BITS"]

SR_RANDOM_BITS = 53


_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def splitmix64_reference(state: int) -> int:
    """The SplitMix64 output for ``state`` (Steele, Lea & Flood 2014), on Python integers mod 2^64."""
    z = (state + _GOLDEN_GAMMA) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def random_bits_reference(key: int, index: int) -> int:
    """The random word of flat element ``index`` under ``key``: SplitMix64's (index+1)-th output from ``key``."""
    return splitmix64_reference((key + index * _GOLDEN_GAMMA) & _MASK64)


def floor_log2(magnitude: Fraction) -> int:
    """The exponent e with 2^e <= magnitude < 2^(e+1), for a positive rational, computed exactly."""
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if _pow2(exponent) > magnitude:
        exponent -= 1
    return exponent


def _pow2(exponent: int) -> Fraction:
    return Fraction(1 << exponent) if exponent >= 0 else Fraction(1, 1 << -exponent)


def _round_up(mode: RoundingMode, remainder: Fraction, kept: int, negative: bool, random_bits: int) -> bool:
    """Whether to add one unit in the last place to ``kept``, given ``remainder`` in [0, 1)."""
    if remainder == 0:
        return False
    half = Fraction(1, 2)
    if mode is RoundingMode.RNE:
        return remainder > half or (remainder == half and kept % 2 == 1)
    if mode is RoundingMode.RNA:
        return remainder >= half
    if mode is RoundingMode.RTZ:
        return False
    if mode is RoundingMode.RUP:
        return not negative
    if mode is RoundingMode.RDN:
        return negative
    if mode is RoundingMode.RTO:
        return kept % 2 == 0
    uniform = (random_bits % (1 << 64)) >> (64 - SR_RANDOM_BITS)
    if mode is RoundingMode.SR:
        threshold = math.floor(remainder * (1 << SR_RANDOM_BITS))
        return uniform < threshold
    if mode is RoundingMode.SR_EQ:
        return uniform >> (SR_RANDOM_BITS - 1) == 1
    raise AssertionError(mode)


def _overflows_to_infinity(mode: RoundingMode, negative: bool) -> bool:
    """IEEE 754 §7.4: nearest (and stochastic) modes and the directed mode on its infinity's side overflow to inf."""
    if mode in (RoundingMode.RTZ, RoundingMode.RTO):
        return False
    if mode is RoundingMode.RUP:
        return not negative
    if mode is RoundingMode.RDN:
        return negative
    return True


def round_reference(
    x: int | float | Fraction, fmt: Format | str, mode: RoundingMode | str = "rne", random_bits: int = 0
) -> float:
    """Round the exact value of ``x`` to ``fmt`` in ``mode``; returns the result as a Python float (exact).

    ``random_bits`` (a 64-bit integer) drives the stochastic modes as the module docstring says.

    >>> round_reference(Fraction(1, 3), "bf16")
    0.333984375
    >>> round_reference(464, "e4m3"), round_reference(465, "e4m3")  # a tie to even at the top, then overflow to NaN
    (448.0, nan)
    """
    fmt = as_format(fmt)
    mode = as_mode(mode)
    params = fmt.params()
    if isinstance(x, float):
        if math.isnan(x):
            return math.nan
        if math.isinf(x):
            return math.copysign(params.inf_value, x)
        negative = math.copysign(1.0, x) < 0
    else:
        negative = x < 0
    value = Fraction(x)
    if value == 0:
        return 0.0 if (params.unsigned_zero or not negative) else -0.0
    magnitude = abs(value)
    exponent = floor_log2(magnitude)
    if exponent >= params.emin:
        quantum_exponent = exponent - params.precision + 1
    elif params.subnormals:
        quantum_exponent = params.emin - params.precision + 1
    else:
        quantum_exponent = params.emin
    scaled = magnitude / _pow2(quantum_exponent)
    kept = math.floor(scaled)
    remainder = scaled - kept
    if _round_up(mode, remainder, kept, negative, random_bits):
        kept += 1
    exact_result = kept * _pow2(quantum_exponent)
    if exact_result > Fraction(params.max_value):
        result = params.overflow_value if _overflows_to_infinity(mode, negative) else params.max_value
    else:
        result = float(exact_result)  # exact: every value of a format is a float64 value
    if result == 0 and params.unsigned_zero:
        return 0.0
    return -result if negative else result
