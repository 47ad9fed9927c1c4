"""The executable specification of the correctly rounded operations: exact rationals, then
``round_reference``.

Pure Python, one scalar at a time, with the IEEE 754 special cases of
:mod:`lampnum.emulate.elementwise_kernels` written out again; the finite cases form the exact value as a
:class:`fractions.Fraction` and round it once with :func:`lampnum.rounding.reference.round_reference`. The
square root of a rational is irrational in general; it is replaced by a rational that rounds identically in
every mode (:func:`sqrt_proxy`), found with ``math.isqrt``. Nothing here shares code with the Numba kernels,
which must agree with it bit for bit.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ..formats import Format, as_format
from ..rounding.modes import RoundingMode, as_mode
from ..rounding.reference import round_reference

__all__ = [
    "add_reference", "sub_reference", "mul_reference", "div_reference", "sqrt_reference", "fma_reference",
    "sqrt_proxy", "SQRT_PROXY_BITS",
]  # fmt: skip

#: the proxy of sqrt(x) lies in the same open interval of width 2^-SQRT_PROXY_BITS as sqrt(x)
SQRT_PROXY_BITS = 1300


def _negative(x: float) -> bool:
    return math.copysign(1.0, x) < 0


def _zero(negative: bool, fmt: Format) -> float:
    return -0.0 if negative and fmt.has_negative_zero else 0.0


def _infinity(negative: bool, fmt: Format) -> float:
    return round_reference(-math.inf if negative else math.inf, fmt)


def _finish(value: Fraction, zero_negative: bool, fmt: Format, mode: RoundingMode, random_bits: int) -> float:
    """Round an exact finite value; an exact zero takes the sign IEEE 754 gives it (``zero_negative``)."""
    if value == 0:
        return _zero(zero_negative, fmt)
    return round_reference(value, fmt, mode, random_bits)


def _zero_sum_negative(x_negative: bool, y_negative: bool, mode: RoundingMode) -> bool:
    return (x_negative and y_negative) or (x_negative != y_negative and mode is RoundingMode.RDN)


def add_reference(
    a: float, b: float, fmt: Format | str, mode: RoundingMode | str = "rne", random_bits: int = 0
) -> float:
    """round(a + b) in ``fmt``/``mode``; ``random_bits`` drives the stochastic modes as in
    ``round_reference``."""
    fmt, mode = as_format(fmt), as_mode(mode)
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if math.isinf(a) and math.isinf(b) and _negative(a) != _negative(b):
        return math.nan
    if math.isinf(a) or math.isinf(b):
        return _infinity(_negative(a) if math.isinf(a) else _negative(b), fmt)
    value = Fraction(a) + Fraction(b)
    if a == 0 and b == 0:
        zero_negative = _zero_sum_negative(_negative(a), _negative(b), mode)
    else:
        zero_negative = mode is RoundingMode.RDN
    return _finish(value, zero_negative, fmt, mode, random_bits)


def sub_reference(
    a: float, b: float, fmt: Format | str, mode: RoundingMode | str = "rne", random_bits: int = 0
) -> float:
    """round(a − b) = round(a + (−b))."""
    return add_reference(a, -b, fmt, mode, random_bits)


def mul_reference(
    a: float, b: float, fmt: Format | str, mode: RoundingMode | str = "rne", random_bits: int = 0
) -> float:
    """round(a · b)."""
    fmt, mode = as_format(fmt), as_mode(mode)
    if math.isnan(a) or math.isnan(b):
        return math.nan
    negative = _negative(a) != _negative(b)
    if math.isinf(a) or math.isinf(b):
        return math.nan if a == 0 or b == 0 else _infinity(negative, fmt)
    return _finish(Fraction(a) * Fraction(b), negative, fmt, mode, random_bits)


def div_reference(
    a: float, b: float, fmt: Format | str, mode: RoundingMode | str = "rne", random_bits: int = 0
) -> float:
    """round(a / b)."""
    fmt, mode = as_format(fmt), as_mode(mode)
    if math.isnan(a) or math.isnan(b):
        return math.nan
    negative = _negative(a) != _negative(b)
    if math.isinf(a):
        return math.nan if math.isinf(b) else _infinity(negative, fmt)
    if math.isinf(b):
        return _zero(negative, fmt)
    if b == 0:
        return math.nan if a == 0 else _infinity(negative, fmt)
    return _finish(Fraction(a) / Fraction(b), negative, fmt, mode, random_bits)


def sqrt_proxy(x: Fraction) -> Fraction:
    """A rational that every mode rounds as it rounds ``sqrt(x)``, for ``x > 0``.

    With ``n = floor(sqrt(x)·2^K)`` (``K = SQRT_PROXY_BITS``; exactly ``isqrt(floor(x·2^(2K)))``), the root is
    ``n·2^-K`` when that squares to ``x``, and otherwise lies strictly inside ``(n, n+1)·2^-K``; so does the
    midpoint ``(n + 1/2)·2^-K``. Every point a rounding decision looks at (format numbers, midpoints, and the
    2^-53 steps of the stochastic threshold) is a multiple of 2^(-1074-53) > 2^-K, so no such point separates
    the two.
    """
    scale = 1 << (2 * SQRT_PROXY_BITS)
    n = math.isqrt(x.numerator * scale // x.denominator)
    root = Fraction(n, 1 << SQRT_PROXY_BITS)
    if root * root == x:
        return root
    return Fraction(2 * n + 1, 1 << (SQRT_PROXY_BITS + 1))


def sqrt_reference(
    a: float, fmt: Format | str, mode: RoundingMode | str = "rne", random_bits: int = 0
) -> float:
    """round(sqrt(a)); sqrt(−0) = −0, sqrt(x < 0) = NaN."""
    fmt, mode = as_format(fmt), as_mode(mode)
    if math.isnan(a) or a < 0:
        return math.nan
    if a == 0:
        return _zero(_negative(a), fmt)
    if math.isinf(a):
        return _infinity(False, fmt)
    return round_reference(sqrt_proxy(Fraction(a)), fmt, mode, random_bits)


def fma_reference(
    a: float, b: float, c: float, fmt: Format | str, mode: RoundingMode | str = "rne", random_bits: int = 0
) -> float:
    """round(a · b + c) with the product exact."""
    fmt, mode = as_format(fmt), as_mode(mode)
    if math.isnan(a) or math.isnan(b) or math.isnan(c):
        return math.nan
    product_negative = _negative(a) != _negative(b)
    if math.isinf(a) or math.isinf(b):
        if a == 0 or b == 0:
            return math.nan
        if math.isinf(c) and _negative(c) != product_negative:
            return math.nan
        return _infinity(product_negative, fmt)
    if math.isinf(c):
        return _infinity(_negative(c), fmt)
    value = Fraction(a) * Fraction(b) + Fraction(c)
    if (a == 0 or b == 0) and c == 0:
        zero_negative = _zero_sum_negative(product_negative, _negative(c), mode)
    else:
        zero_negative = mode is RoundingMode.RDN
    return _finish(value, zero_negative, fmt, mode, random_bits)
