"""Exact arithmetic on float64 significands, and the one rounding of an exact result to any format (Numba).

Every correctly rounded operation of :mod:`lampnum.emulate.elementwise` is computed in two steps:

1. **An exact result.** The float64 operands are decoded into integers, ``x = ±M·2^E`` with ``M < 2^53``
   (subnormals included), and the operation is carried out on those integers in 128-bit arithmetic
   (:mod:`lampnum.emulate.wide`), the technique of software floating point (Hauser's SoftFloat; Muller et al.,
   *Handbook of Floating-Point Arithmetic*, 2nd ed. 2018, ch. 7-8). The result is ``|V| = (S + θ)·2^E`` with a
   128-bit integer ``S``, an int64 exponent ``E`` that nothing can overflow or underflow, and the *sticky*
   flag saying whether ``θ ∈ (0, 1)`` is nonzero. Products are exact (``S = Ma·Mb``, at most 106 bits, never
   sticky); sums are exact whenever the operands overlap the 128-bit window, and otherwise the far smaller one
   is shifted out into the sticky flag; quotients and square roots are the integer quotient and integer square
   root to at least 109 bits, sticky when the remainder is nonzero. **Precondition of step 2:** ``sticky``
   implies ``S >= 2^107``.
2. **One rounding.** :func:`round_exact` rounds ``(S + θ)·2^E`` once, with the decisions of
   :func:`lampnum.rounding.kernels._round_up`. With ``S >= 2^107`` the sticky part lies more than 54 bits
   below the last kept bit of any format (``p <= 53``), so the value is, in effect, rounded to odd at
   ``p + 54`` bits first (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
   using rounding to odd", IEEE Trans. Computers 57(4), 2008): that preserves every comparison the modes
   make — exactness, the midpoint, the parity — and also ``floor(remainder·2^53)``, the threshold of
   stochastic rounding, because the 53 random bits resolve the remainder only to ``2^-53`` of a unit. So
   every mode, stochastic rounding included, is decided on the exact value, for every precision
   ``1 <= p <= 53`` and every exponent range, with no double rounding and no scaling.

Variable names follow :func:`lampnum.rounding.reference.round_reference`: ``quantum_exponent`` is the exponent
of the last kept bit, ``kept`` the kept significand, ``remainder``/``half`` the dropped part and half a unit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..rounding.kernels import _overflow, _pow2, _round_up
from .wide import (
    add_128,
    bit_length_64,
    bit_length_128,
    less_128,
    low_mask,
    shift_left,
    shift_right_sticky,
    sub_128,  # fmt: skip
)

__all__ = ["decompose", "exact_sum", "exact_quotient", "exact_sqrt", "round_exact", "STICKY_FLOOR_BITS"]

#: every sticky result has ``S >= 2^STICKY_FLOOR_BITS`` (see the module docstring)
STICKY_FLOOR_BITS = 107

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_SIGN = np.uint64(0x8000000000000000)
_HIDDEN = np.uint64(1 << 52)
_FRACTION = np.uint64((1 << 52) - 1)
# the larger addend is placed with its top bit at _TOP; one bit of headroom stays free for the carry
_TOP = 125
_QUOTIENT_BITS = 110  # S = floor(Ma·2^110 / Mb) with Ma/Mb in (1/2, 2): 2^109 <= S < 2^111
_QUOTIENT_CHUNK = 11  # remainder < 2^53, so remainder·2^11 < 2^64
_SQRT_SHIFT = 164  # S = isqrt(Ma·2^164) with Ma in [2^52, 2^54): 2^108 <= S < 2^109


@njit(cache=True)
def decompose(x: np.float64) -> tuple[bool, np.uint64, int]:
    """``(negative, significand, exponent)`` with ``|x| = significand·2^exponent`` exactly, for finite ``x``
    (``significand < 2^53``; subnormals have exponent -1074; zero has significand 0)."""
    bits = np.float64(x).view(np.uint64)
    negative = (bits & _SIGN) != _U0
    biased_exponent = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    if biased_exponent == 0:
        return negative, bits & _FRACTION, np.int64(-1074)
    return negative, (bits & _FRACTION) | _HIDDEN, biased_exponent - 1075


@njit(cache=True)
def _normalize_53(significand: np.uint64, exponent: int) -> tuple[np.uint64, int]:
    """The same number with its significand in [2^52, 2^53) (a subnormal's exponent drops below -1074)."""
    lift = 53 - bit_length_64(significand)
    return significand << np.uint64(lift), exponent - lift


@njit(cache=True)
def exact_sum(neg_x: bool, x_hi: np.uint64, x_lo: np.uint64, x_exponent: int,
              neg_y: bool, y_hi: np.uint64, y_lo: np.uint64, y_exponent: int):  # fmt: skip
    """``x + y`` for nonzero ``±(hi·2^64+lo)·2^exponent`` of at most 106 bits each (a float64 significand, or
    an exact product of two): returns ``(negative, s_hi, s_lo, exponent, sticky)``.

    The addend with the higher leading bit is placed with its top bit at bit 125 of a 128-bit window; the
    other is aligned to it. When its bits reach below the window they are shifted out into ``sticky``; that
    needs a gap of more than 20 binades between the leading bits, so then ``S > 2^124`` (the precondition of
    :func:`round_exact`). An effective subtraction with sticky takes one more unit off:
    ``x − (y + θ) = (x − y − 1) + (1 − θ)``. A result of ``S = 0`` without sticky is an exact zero; its sign
    is the caller's business (IEEE 754 §6.3)."""
    x_bits = bit_length_128(x_hi, x_lo)
    y_bits = bit_length_128(y_hi, y_lo)
    if y_exponent + y_bits > x_exponent + x_bits:  # y has the higher leading bit: swap
        neg_x, x_hi, x_lo, x_exponent, x_bits, neg_y, y_hi, y_lo, y_exponent, y_bits = (
            neg_y, y_hi, y_lo, y_exponent, y_bits, neg_x, x_hi, x_lo, x_exponent, x_bits)  # fmt: skip
    lift = _TOP + 1 - x_bits
    x_hi, x_lo = shift_left(x_hi, x_lo, lift)
    exponent = x_exponent - lift
    offset = y_exponent - exponent  # where y's last bit lands in the window
    if offset >= 0:
        y_hi, y_lo = shift_left(y_hi, y_lo, offset)
        sticky = False
    else:
        y_hi, y_lo, sticky = shift_right_sticky(y_hi, y_lo, -offset)
    if neg_x == neg_y:
        s_hi, s_lo = add_128(x_hi, x_lo, y_hi, y_lo)
        return neg_x, s_hi, s_lo, exponent, sticky
    if sticky:  # then y < 2^105 < x
        s_hi, s_lo = sub_128(x_hi, x_lo, y_hi, y_lo)
        s_hi, s_lo = sub_128(s_hi, s_lo, _U0, _U1)
        return neg_x, s_hi, s_lo, exponent, True
    if less_128(x_hi, x_lo, y_hi, y_lo):
        s_hi, s_lo = sub_128(y_hi, y_lo, x_hi, x_lo)
        return neg_y, s_hi, s_lo, exponent, False
    s_hi, s_lo = sub_128(x_hi, x_lo, y_hi, y_lo)
    return neg_x, s_hi, s_lo, exponent, False


@njit(cache=True)
def exact_quotient(a_significand: np.uint64, a_exponent: int, b_significand: np.uint64, b_exponent: int):
    """``a / b`` for nonzero ``a = Ma·2^Ea``, ``b = Mb·2^Eb``: returns ``(s_hi, s_lo, exponent, sticky)`` with
    ``S = floor(Ma'·2^110 / Mb')`` for the normalised significands (``2^109 <= S < 2^111``) and ``sticky`` the
    nonzero remainder. Long division in 11-bit digits, each an exact uint64 division."""
    a_significand, a_exponent = _normalize_53(a_significand, a_exponent)
    b_significand, b_exponent = _normalize_53(b_significand, b_exponent)
    digit = a_significand // b_significand  # 0 or 1
    remainder = a_significand - digit * b_significand
    s_hi, s_lo = _U0, digit
    for _ in range(_QUOTIENT_BITS // _QUOTIENT_CHUNK):
        remainder = remainder << np.uint64(_QUOTIENT_CHUNK)
        digit = remainder // b_significand
        remainder -= digit * b_significand
        s_hi, s_lo = shift_left(s_hi, s_lo, _QUOTIENT_CHUNK)
        s_lo |= digit
    return s_hi, s_lo, a_exponent - b_exponent - _QUOTIENT_BITS, remainder != _U0


@njit(cache=True)
def exact_sqrt(significand: np.uint64, exponent: int):
    """``sqrt(M·2^E)`` for ``M > 0``: returns ``(s_hi, s_lo, exponent, sticky)`` with ``S = isqrt(M'·2^164)``
    (``M'·2^E'`` the same number with ``E'`` even and ``M'`` in [2^52, 2^54), so ``2^108 <= S < 2^109``) and
    ``sticky`` whether the square root is inexact.

    The root of ``M'`` (the top 27 bits) is the float64 square root corrected to the integer floor; the
    remaining 82 bits come from the digit-by-digit (restoring) method on zero digit pairs, with the invariant
    ``remainder = N_top − root²``, ``0 <= remainder <= 2·root``."""
    significand, exponent = _normalize_53(significand, exponent)
    if exponent % 2 != 0:
        significand = significand << _U1
        exponent -= 1
    root = np.uint64(
        np.sqrt(np.float64(significand))
    )  # M' < 2^54 has at most 53 significant bits: exact input
    while root * root > significand:
        root -= _U1
    while (root + _U1) * (root + _U1) <= significand:
        root += _U1
    r_hi, r_lo = _U0, significand - root * root  # remainder
    q_hi, q_lo = _U0, root
    for _ in range(_SQRT_SHIFT // 2):
        r_hi, r_lo = shift_left(r_hi, r_lo, 2)  # bring down a pair of zero bits
        t_hi, t_lo = shift_left(q_hi, q_lo, 2)
        t_lo |= _U1  # trial = 4·root + 1
        q_hi, q_lo = shift_left(q_hi, q_lo, 1)
        if not less_128(r_hi, r_lo, t_hi, t_lo):
            r_hi, r_lo = sub_128(r_hi, r_lo, t_hi, t_lo)
            q_lo |= _U1
    return q_hi, q_lo, (exponent - _SQRT_SHIFT) // 2, (r_hi | r_lo) != _U0


@njit(cache=True)
def round_exact(negative: bool, s_hi: np.uint64, s_lo: np.uint64, exponent: int, sticky: bool,
                params, mode: int, random_bits: np.uint64) -> float:  # fmt: skip
    """Round ``±(S + θ)·2^exponent`` (``S > 0``; ``θ ∈ (0, 1)`` iff ``sticky``, and then ``S >= 2^107``) once
    to the format of ``params`` (a :class:`lampnum.formats.FormatParams`) in ``mode``, as ``round_reference``
    rounds the exact value: same quantum, same overflow rule (IEEE 754 §7.4 and the format's policy), same
    zeros."""
    top = exponent + bit_length_128(s_hi, s_lo) - 1  # 2^top <= |V| < 2^(top+1)
    if top > params.emax:  # even the value rounded toward zero exceeds max
        return _overflow(negative, mode, params.max_value, params.overflow_value)
    if top >= params.emin:
        quantum_exponent = top - params.precision + 1
    elif params.subnormals:
        quantum_exponent = params.emin - params.precision + 1
    else:
        quantum_exponent = params.emin
    shift = quantum_exponent - exponent
    if (
        shift <= 0
    ):  # exact at this quantum (then S < 2^p and, by the precondition, no sticky; in fact shift = 0)
        kept = s_lo << np.uint64(-shift)
    elif shift <= 54 and not sticky:  # the remainder fits in one word: the decision of _round_finite
        _, kept, _ = shift_right_sticky(s_hi, s_lo, shift)
        remainder = s_lo & low_mask(shift)
        half = _U1 << np.uint64(shift - 1)
        if _round_up(mode, remainder, half, (kept & _U1) == _U1, negative, random_bits, shift):
            kept += _U1
    else:  # round to odd 54 bits below the quantum, then decide on 54-bit remainders
        r_hi, r_lo, dropped = shift_right_sticky(s_hi, s_lo, shift - 54)
        kept = (r_hi << np.uint64(10)) | (r_lo >> np.uint64(54))
        remainder = r_lo & low_mask(54)
        if dropped or sticky:
            remainder |= _U1
        if _round_up(mode, remainder, _U1 << np.uint64(53), (kept & _U1) == _U1, negative, random_bits, 54):
            kept += _U1
    result = np.float64(kept) * _pow2(
        quantum_exponent
    )  # kept <= 2^p: exact, or inf beyond float64 (an overflow)
    if result > params.max_value:
        return _overflow(negative, mode, params.max_value, params.overflow_value)
    if result == 0.0 and params.unsigned_zero:
        return 0.0
    return -result if negative else result
