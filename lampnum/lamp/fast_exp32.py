"""A vectorisable float32 ``exp`` on ``[-80, 0]`` with a verified relative error bound, for the LAMP rules' float32
screening pass (:func:`lampnum.lamp.kernels._decide_row32`).

The screening pass decides most entries of a row from float32 exponentials (eight SIMD lanes where float64 has
four, and half the memory traffic) and proves each decision against the float64 computation with an error bound;
an entry it cannot prove sends the row to the float64 path. So the bound must hold for every input, and it is
checked for every one: ``tests/lamp/test_fast_exp32.py`` runs all float32 ``x`` in ``[-80, -2^-30]`` against the
float64 ``math.exp`` (the platform's libm; within an ulp of float64, 2^-52, far below what is measured) and finds
the relative error at most :data:`EXP32_ERROR` (2^-22, about 2.4e-7: two float32 ulp at most). For ``-2^-30 < x
<= 0`` the reduction gives ``k = 0`` and ``r = x`` exactly, and the polynomial rounds ``1 + x + …`` to 1 or to the
float32 number just below it, within ``|x| + 2^-24`` of ``e^x`` relative; the test samples that range too.

The algorithm (Cody & Waite reduction, as :mod:`lampnum.lamp.fast_exp` in float64; Muller, *Elementary Functions*,
3rd ed., §11.2), all float32 operations with fused multiply-adds (:func:`lampnum.emulate.matmul_lanes32.fma32`):
``k = round(x·log2 e)`` by the 1.5·2^23 shifter; ``r = (x − k·ln2_hi) − k·ln2_lo`` with ``ln2_hi`` of 16
significant bits, so ``k·ln2_hi`` is exact for ``|k| <= 116``; ``e^r`` by its Taylor polynomial of degree 7 in
Horner form (truncation below 2^-27 relative for ``|r| <= 0.35``); then ``e^x = e^r·2^k``, an exact scaling
because ``2^k >= 2^-116`` keeps the result a normal float32 number. Inputs below -80 are clamped to -80 (the
callers treat those entries apart: ``e^x < 2^-115`` there); NaN is not an input (the callers pass finite scores or
``-inf``, which is clamped).

:func:`exp32_reference` is the pure-Python twin, with the same variable names (numpy float32 scalars; each fused
multiply-add done on rationals and rounded once).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..emulate.matmul_lanes32 import fma32

__all__ = ["exp32", "exp32_reference", "EXP32_ERROR", "EXP32_LOWEST", "COEFFICIENTS32"]

#: Verified bound on ``|exp32(x) − e^x| / e^x`` over float32 ``x`` in ``[-80, 0]`` (see the module docstring).
EXP32_ERROR = 2.0**-22
#: Inputs are clamped to this; ``e^x < 2^-115`` below it.
EXP32_LOWEST = -80.0

_LOWEST = np.float32(EXP32_LOWEST)
_LOG2E = np.float32(1.4426950408889634)
_SHIFTER = np.float32(12582912.0)  # 1.5·2^23: adding it rounds to an integer (to nearest even) in the low bits
_SHIFTER_BITS = np.int32(0x4B400000)
_LN2_HI = np.float32(0.693145751953125)  # 0x3f317200: 16 significant bits
_LN2_LO = np.float32(1.428606765330187e-06)  # 0x35bfbe8e: ln 2 − ln2_hi, rounded
_ONE = np.float32(1.0)
_EXPONENT_BIAS = np.int32(127)
#: 1/n! for n = 7 … 0 as float32, highest degree first (Horner order)
COEFFICIENTS32 = tuple(np.float32(1.0 / f) for f in (5040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0))
_C7, _C6, _C5, _C4, _C3, _C2, _C1, _C0 = COEFFICIENTS32


@njit(cache=True, inline="always")
def exp32(x: np.float32) -> np.float32:
    """``e^x`` for float32 ``x`` in ``[-80, 0]`` to within :data:`EXP32_ERROR` relative, branch-free (see the module
    docstring); smaller ``x`` (``-inf`` included) gives ``exp32(-80)``."""
    clamped = max(x, _LOWEST)
    shifted = fma32(clamped, _LOG2E, _SHIFTER)
    kf = shifted - _SHIFTER
    k = np.float32(shifted).view(np.int32) - _SHIFTER_BITS
    r = fma32(-kf, _LN2_HI, clamped)  # exact product; one rounding
    r = fma32(-kf, _LN2_LO, r)
    p = fma32(_C7, r, _C6)
    p = fma32(p, r, _C5)
    p = fma32(p, r, _C4)
    p = fma32(p, r, _C3)
    p = fma32(p, r, _C2)
    p = fma32(p, r, _C1)
    p = fma32(p, r, _C0)
    scale = np.int32((k + _EXPONENT_BIAS) << 23).view(np.float32)
    return p * scale


def _fma32_reference(x: np.float32, y: np.float32, z: np.float32) -> np.float32:
    """``RN24(x·y + z)`` from the exact rational value (binary64 holds float32 values exactly; the one rounding
    is done by :func:`lampnum.rounding.reference.round_reference`)."""
    from fractions import Fraction

    from ..formats import FORMATS
    from ..rounding.reference import round_reference

    exact = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
    return np.float32(round_reference(exact, FORMATS["fp32"], "rne"))


def exp32_reference(x: float) -> np.float32:
    """Pure-Python twin of :func:`exp32`."""
    clamped = max(np.float32(x), _LOWEST)
    shifted = _fma32_reference(clamped, _LOG2E, _SHIFTER)
    kf = np.float32(shifted - _SHIFTER)
    k = int(shifted.view(np.int32)) - int(_SHIFTER_BITS)
    r = _fma32_reference(-kf, _LN2_HI, clamped)
    r = _fma32_reference(-kf, _LN2_LO, r)
    p = _fma32_reference(_C7, r, _C6)
    for coefficient in (_C5, _C4, _C3, _C2, _C1, _C0):
        p = _fma32_reference(p, r, coefficient)
    scale = np.int32((k + 127) << 23).view(np.float32)
    return np.float32(p * scale)
