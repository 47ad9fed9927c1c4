"""A vectorisable float64 ``exp`` for the softmax passes of the LAMP kernels (numpy's float64 ``exp`` is a scalar
libm call per element on processors without AVX-512, about ten times slower than the rest of a pass).

Classic argument reduction (Cody & Waite; Muller, *Elementary Functions*, 3rd ed., §11.2): ``x = k·ln2 + r`` with
``k = round(x/ln2)`` (by the 1.5·2^52 shifter) and ``r = (x − k·ln2_hi) − k·ln2_lo``, ``|r| <= ln2/2 + ε``
(``k·ln2_hi`` is exact: fdlibm's ``ln2_hi`` has 21 trailing zero bits and ``|k| <= 1077``); ``e^r`` by its Taylor
polynomial of degree 13 in Horner form with fused multiply-adds (truncation below 2^-57 relative); then
``2^k`` applied as two exact power-of-two factors ``2^k1·2^(k − k1)``, ``k1`` the integer nearest ``k/2``, so
only a subnormal result is rounded twice. Measured against 60-digit mpmath (tests/lamp/test_fast_exp.py): at most 2 ulp on [-745, 709], and
``exp(−inf) = 0``, ``exp(+inf) = inf``, ``exp(NaN) = NaN``. Faithful, not correctly rounded: the rules compare
indicators with thresholds, and a threshold within 2 ulp of an indicator is a tie the float64 computation could
not decide either.

:func:`fast_exp_reference` is the pure-Python twin, with the same variable names.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..emulate.matmul_split import fma

__all__ = ["fast_exp", "fast_exp_reference", "COEFFICIENTS"]

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # 0x3fe62e42 fee00000
_LN2_LO = 1.90821492927058770002e-10  # 0x3dea39ef 35793c76
_SHIFTER = 6755399441055744.0  # 1.5·2^52: adding it rounds to an integer (to nearest even) in the low bits
_SHIFTER_BITS = np.int64(0x4338000000000000)
_LOWEST, _HIGHEST = -746.0, 710.0  # beyond these exp is 0 and inf; clamping keeps k in [-1077, 1025]
#: 1/n! for n = 13 … 0, highest degree first (Horner order)
COEFFICIENTS = tuple(1.0 / math.factorial(n) for n in range(13, -1, -1))
_C = np.array(COEFFICIENTS)


@njit(cache=True, inline="always")
def fast_exp(x: float) -> float:
    """``e^x`` in float64 to within 2 ulp, branch-free (see the module docstring)."""
    clamped = min(max(x, _LOWEST), _HIGHEST)
    shifted = clamped * _LOG2E + _SHIFTER
    kf = shifted - _SHIFTER
    k = np.float64(shifted).view(np.int64) - _SHIFTER_BITS  # the integer in the low bits (no float-to-int
    r = (clamped - kf * _LN2_HI) - kf * _LN2_LO  # conversion: AVX2 has no packed one for int64)
    p = _C[0]
    for i in range(1, 14):
        p = fma(p, r, _C[i])
    k1 = np.float64(kf * 0.5 + _SHIFTER).view(np.int64) - _SHIFTER_BITS  # about k/2 (no 64-bit arithmetic shift
    k2 = k - k1  # in AVX2 either); k1 + k2 = k, both within the normal exponents
    scale1 = np.int64((k1 + 1023) << 52).view(np.float64)
    scale2 = np.int64((k2 + 1023) << 52).view(np.float64)
    result = (p * scale1) * scale2
    return result if x == x else x


def fast_exp_reference(x: float) -> float:
    """Pure-Python twin of :func:`fast_exp` (Python floats are IEEE binary64; ``math.fma`` needs Python 3.13, so
    the fused multiply-add is done on rationals and rounded once)."""
    from fractions import Fraction

    if x != x:
        return x
    clamped = min(max(x, _LOWEST), _HIGHEST)
    shifted = clamped * _LOG2E + _SHIFTER
    kf = shifted - _SHIFTER
    k = int(kf)
    r = (clamped - kf * _LN2_HI) - kf * _LN2_LO
    p = COEFFICIENTS[0]
    for coefficient in COEFFICIENTS[1:]:
        p = float(Fraction(p) * Fraction(r) + Fraction(coefficient))
    k1 = int(kf * 0.5 + _SHIFTER - _SHIFTER)
    k2 = k - k1
    return (p * 2.0**k1) * 2.0**k2
