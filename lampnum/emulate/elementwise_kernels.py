"""Numba kernels of the correctly rounded operations: IEEE 754 special cases, then one exact rounding.

Each ``*_scalar`` function computes one result from float64 operands, in the order IEEE 754-2019 prescribes:
NaN operands give NaN (§6.2); the invalid operations ∞ − ∞, 0 · ∞, 0/0, ∞/∞, sqrt(x < 0) and fma's ∞ − ∞ give
NaN (§7.2); x/0 for finite x ≠ 0 gives ±∞ (§7.3); other infinite results are exact infinities; zeros keep the
signs of §6.3 (the product of signs for ×, ÷; sqrt(−0) = −0; an exact zero sum of nonzero operands, or (+0) +
(−0), is +0 in every mode except ``rdn``, where it is −0). The finite, nonzero cases are computed exactly and
rounded once (:mod:`lampnum.emulate.exact`). A result is then a value of the format: an exact infinity becomes
the format's infinity or, without one, its overflow value (as ``lampnum.round`` maps an infinite input); a
zero becomes +0 in ``fnuz`` formats; NaN stays a float64 NaN (also in ``finite`` formats, which cannot encode
it).

The ``*_array`` drivers loop over flat float64 arrays in parallel chunks; operand ``k`` is read at
``i·k_step`` with ``k_step`` 1 (a full array) or 0 (one value broadcast). Element ``i`` of a stochastic mode
uses the random word ``random_bits_at(key, i)`` (:mod:`lampnum.rounding.kernels`), so results do not depend on
the number of threads. The scalar functions are usable from other Numba code (e.g. an emulated dot product:
``fma_scalar``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..rounding.kernels import RDN, SR, _round_finite, random_bits_at
from .exact import decompose, exact_quotient, exact_sqrt, exact_sum, round_exact
from .wide import mul_64x64

__all__ = ["add_scalar", "mul_scalar", "div_scalar", "sqrt_scalar", "fma_scalar", "add_array", "mul_array",
           "div_array", "sqrt_array", "fma_array"]  # fmt: skip

_U0 = np.uint64(0)
_SIGN = np.uint64(0x8000000000000000)
_CHUNK = 1 << 12


@njit(cache=True)
def _signbit(x: np.float64) -> bool:
    return (np.float64(x).view(np.uint64) & _SIGN) != _U0


@njit(cache=True)
def _zero(negative: bool, params) -> float:
    """A zero result in the format: −0 only where it exists."""
    return -0.0 if (negative and not params.unsigned_zero) else 0.0


@njit(cache=True)
def _infinity(negative: bool, params) -> float:
    """An exact infinite result in the format: ±inf, or what the format makes of an infinity (max or NaN)."""
    return -params.inf_value if negative else params.inf_value


@njit(cache=True)
def _round_value(x: np.float64, params, mode: int, random_bits: np.uint64) -> float:
    """Round one float64 value (an exact result) to the format: the general path of ``lampnum.round``."""
    return _round_finite(
        x, params.precision, params.emin, params.subnormals, params.max_value, params.overflow_value,
        params.inf_value, params.unsigned_zero, mode, random_bits,
    )  # fmt: skip


@njit(cache=True)
def _zero_sum_sign(x_negative: bool, y_negative: bool, mode: int) -> bool:
    """IEEE 754 §6.3: an exact zero x + y is −0 when both are −0, or when their signs differ in rdn."""
    return (x_negative and y_negative) or (x_negative != y_negative and mode == RDN)


@njit(cache=True)
def add_scalar(a: np.float64, b: np.float64, params, mode: int, random_bits: np.uint64) -> float:
    """round(a + b)."""
    if np.isnan(a) or np.isnan(b):
        return np.nan
    a_inf = np.isinf(a)
    b_inf = np.isinf(b)
    if a_inf or b_inf:
        if a_inf and b_inf and _signbit(a) != _signbit(b):
            return np.nan  # ∞ − ∞
        return _infinity(_signbit(a) if a_inf else _signbit(b), params)
    if a == 0.0 and b == 0.0:
        return _zero(_zero_sum_sign(_signbit(a), _signbit(b), mode), params)
    if b == 0.0:
        return _round_value(a, params, mode, random_bits)
    if a == 0.0:
        return _round_value(b, params, mode, random_bits)
    a_negative, a_significand, a_exponent = decompose(a)
    b_negative, b_significand, b_exponent = decompose(b)
    negative, s_hi, s_lo, exponent, sticky = exact_sum(
        a_negative, _U0, a_significand, a_exponent, b_negative, _U0, b_significand, b_exponent
    )
    if s_hi == _U0 and s_lo == _U0 and not sticky:  # x + (−x)
        return _zero(mode == RDN, params)
    return round_exact(negative, s_hi, s_lo, exponent, sticky, params, mode, random_bits)


@njit(cache=True)
def mul_scalar(a: np.float64, b: np.float64, params, mode: int, random_bits: np.uint64) -> float:
    """round(a · b)."""
    if np.isnan(a) or np.isnan(b):
        return np.nan
    negative = _signbit(a) != _signbit(b)
    if np.isinf(a) or np.isinf(b):
        if a == 0.0 or b == 0.0:
            return np.nan  # 0 · ∞
        return _infinity(negative, params)
    if a == 0.0 or b == 0.0:
        return _zero(negative, params)
    _, a_significand, a_exponent = decompose(a)
    _, b_significand, b_exponent = decompose(b)
    s_hi, s_lo = mul_64x64(a_significand, b_significand)
    return round_exact(negative, s_hi, s_lo, a_exponent + b_exponent, False, params, mode, random_bits)


@njit(cache=True)
def div_scalar(a: np.float64, b: np.float64, params, mode: int, random_bits: np.uint64) -> float:
    """round(a / b)."""
    if np.isnan(a) or np.isnan(b):
        return np.nan
    negative = _signbit(a) != _signbit(b)
    if np.isinf(a):
        return np.nan if np.isinf(b) else _infinity(negative, params)
    if np.isinf(b):
        return _zero(negative, params)
    if b == 0.0:
        return np.nan if a == 0.0 else _infinity(negative, params)  # 0/0 invalid; x/0 division by zero
    if a == 0.0:
        return _zero(negative, params)
    _, a_significand, a_exponent = decompose(a)
    _, b_significand, b_exponent = decompose(b)
    s_hi, s_lo, exponent, sticky = exact_quotient(a_significand, a_exponent, b_significand, b_exponent)
    return round_exact(negative, s_hi, s_lo, exponent, sticky, params, mode, random_bits)


@njit(cache=True)
def sqrt_scalar(a: np.float64, params, mode: int, random_bits: np.uint64) -> float:
    """round(sqrt(a))."""
    if np.isnan(a):
        return np.nan
    if a == 0.0:
        return _zero(_signbit(a), params)  # sqrt(±0) = ±0
    if a < 0.0:
        return np.nan
    if np.isinf(a):
        return _infinity(False, params)
    _, significand, exponent = decompose(a)
    s_hi, s_lo, exponent, sticky = exact_sqrt(significand, exponent)
    return round_exact(False, s_hi, s_lo, exponent, sticky, params, mode, random_bits)


@njit(cache=True)
def fma_scalar(a: np.float64, b: np.float64, c: np.float64, params, mode: int,
               random_bits: np.uint64) -> float:  # fmt: skip
    """round(a · b + c), the product exact (a fused multiply-add in the format)."""
    if np.isnan(a) or np.isnan(b) or np.isnan(c):
        return np.nan
    product_negative = _signbit(a) != _signbit(b)
    c_negative = _signbit(c)
    if np.isinf(a) or np.isinf(b):
        if a == 0.0 or b == 0.0:
            return np.nan  # 0 · ∞
        if np.isinf(c) and c_negative != product_negative:
            return np.nan  # ∞ − ∞
        return _infinity(product_negative, params)
    if np.isinf(c):
        return _infinity(c_negative, params)
    if a == 0.0 or b == 0.0:
        if c == 0.0:
            return _zero(_zero_sum_sign(product_negative, c_negative, mode), params)
        return _round_value(c, params, mode, random_bits)
    _, a_significand, a_exponent = decompose(a)
    _, b_significand, b_exponent = decompose(b)
    p_hi, p_lo = mul_64x64(a_significand, b_significand)
    p_exponent = a_exponent + b_exponent
    if c == 0.0:
        return round_exact(product_negative, p_hi, p_lo, p_exponent, False, params, mode, random_bits)
    _, c_significand, c_exponent = decompose(c)
    negative, s_hi, s_lo, exponent, sticky = exact_sum(
        product_negative, p_hi, p_lo, p_exponent, c_negative, _U0, c_significand, c_exponent
    )
    if s_hi == _U0 and s_lo == _U0 and not sticky:  # a·b = −c exactly
        return _zero(mode == RDN, params)
    return round_exact(negative, s_hi, s_lo, exponent, sticky, params, mode, random_bits)


@njit(cache=True)
def _bits(mode: int, key: np.uint64, index: int) -> np.uint64:
    return random_bits_at(key, np.uint64(index)) if mode >= SR else _U0


@njit(cache=True, parallel=True)
def add_array(a, a_step, b, b_step, negate_b, out, params, mode, key):  # noqa: ANN001 - Numba kernel
    """``out[i] = round(a[i·a_step] ± b[i·b_step])`` (``−`` when ``negate_b``: a − b = a + (−b), IEEE 754
    §5.4.1)."""
    n = out.shape[0]
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            y = b[i * b_step]
            out[i] = add_scalar(a[i * a_step], -y if negate_b else y, params, mode, _bits(mode, key, i))


@njit(cache=True, parallel=True)
def mul_array(a, a_step, b, b_step, out, params, mode, key):  # noqa: ANN001 - Numba kernel
    """``out[i] = round(a[i·a_step] · b[i·b_step])``."""
    n = out.shape[0]
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            out[i] = mul_scalar(a[i * a_step], b[i * b_step], params, mode, _bits(mode, key, i))


@njit(cache=True, parallel=True)
def div_array(a, a_step, b, b_step, out, params, mode, key):  # noqa: ANN001 - Numba kernel
    """``out[i] = round(a[i·a_step] / b[i·b_step])``."""
    n = out.shape[0]
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            out[i] = div_scalar(a[i * a_step], b[i * b_step], params, mode, _bits(mode, key, i))


@njit(cache=True, parallel=True)
def sqrt_array(a, a_step, out, params, mode, key):  # noqa: ANN001 - Numba kernel
    """``out[i] = round(sqrt(a[i·a_step]))``."""
    n = out.shape[0]
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            out[i] = sqrt_scalar(a[i * a_step], params, mode, _bits(mode, key, i))


@njit(cache=True, parallel=True)
def fma_array(a, a_step, b, b_step, c, c_step, out, params, mode, key):  # noqa: ANN001 - Numba kernel
    """``out[i] = round(a[i·a_step] · b[i·b_step] + c[i·c_step])``."""
    n = out.shape[0]
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            out[i] = fma_scalar(
                a[i * a_step], b[i * b_step], c[i * c_step], params, mode, _bits(mode, key, i)
            )
