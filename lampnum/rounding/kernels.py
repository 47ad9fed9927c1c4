"""Numba kernels that round float64 and float32 arrays to a format, correctly, in parallel over elements.

The arithmetic is the integer arithmetic of :func:`lampnum.rounding.reference.round_reference`, with the same variable
names, on the bits of the input: ``|x| = significand · 2^lsb_exponent`` exactly. float32 inputs are first widened to
float64, which is exact, so every value is rounded once from its exact value; nothing passes through a narrower float.

Two paths share one decision function (:func:`_round_up`):

- the *fast path*, for inputs whose binade is a normal binade of the target (``emin <= exponent <= emax``): the last
  ``53 - p`` bits of the float64 significand are dropped on the IEEE bits themselves, a carry rippling into the exponent
  field (which is exactly the next binade); written branch-free so the loop vectorises;
- the *general path* (:func:`_round_finite`) for zero, subnormal-range, out-of-range and special inputs, the line-by-line
  twin of the reference.

Kernels take the plain parameters of :class:`lampnum.formats.FormatParams` and a mode code; they compile lazily on first
call and are cached on disk (``cache=True``).

Random bits for the stochastic modes: element ``i`` (flat C-order index) uses ``splitmix64(key + (i + 1)·γ)``, the
(i+1)-th output of the SplitMix64 generator started at ``key`` (Steele, Lea & Flood 2014). This counter-based scheme gives
the same result for any number of threads; the 64-bit ``key`` is drawn from the caller's ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["ROUND_KERNELS", "splitmix64", "random_bits_at", "MODE_CODES"]

# mode codes, in the order of lampnum.rounding.modes.RoundingMode
RNE, RNA, RTZ, RUP, RDN, RTO, SR, SR_EQ = range(8)
MODE_CODES = {"rne": RNE, "rna": RNA, "rtz": RTZ, "rup": RUP, "rdn": RDN, "rto": RTO, "sr": SR, "sr_eq": SR_EQ}

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_SIGN = np.uint64(0x8000000000000000)
_ABS = np.uint64(0x7FFFFFFFFFFFFFFF)
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SR_RANDOM_BITS = 53
_CHUNK = 1 << 14


@njit(cache=True)
def splitmix64(state: np.uint64) -> np.uint64:
    """The SplitMix64 output function for ``state`` (a bijective 64-bit mix)."""
    z = state + _GOLDEN_GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def random_bits_at(key: np.uint64, index: np.uint64) -> np.uint64:
    """The 64 random bits of element ``index``: SplitMix64's (index+1)-th output from state ``key``."""
    return splitmix64(key + index * _GOLDEN_GAMMA)


@njit(cache=True)
def _pow2(exponent: np.int64) -> np.float64:
    """2^exponent as a float64 for -1074 <= exponent <= 1023, built from bits (exact)."""
    if exponent >= -1022:
        return np.uint64((exponent + 1023) << 52).view(np.float64)
    return np.uint64(_U1 << np.uint64(exponent + 1074)).view(np.float64)


@njit(cache=True)
def _floor_log2_int(significand: np.uint64) -> np.int64:
    """floor(log2(n)) for 0 < n < 2^53, read off the exponent of float64(n) (an exact conversion)."""
    return np.int64((np.float64(significand).view(np.uint64) >> np.uint64(52)) & np.uint64(0x7FF)) - 1023


@njit(cache=True)
def _round_up(
    mode: np.int64,
    remainder: np.uint64,
    half: np.uint64,
    kept_odd: bool,
    negative: bool,
    random_bits: np.uint64,
    shift: np.int64,
) -> bool:
    """Whether to add one unit to ``kept``: the decision of the reference's ``_round_up``, on integers.

    ``remainder`` and ``half`` are in units of 2^lsb_exponent (``remainder < 2·half``); ``shift`` is the true number of
    dropped bits (the SR threshold needs it even when ``remainder``/``half`` were computed from a clamped shift).
    Branch-free within each mode, so the fast path vectorises."""
    inexact = remainder != _U0
    if mode == RNE:
        return (remainder > half) | ((remainder == half) & kept_odd)
    if mode == RNA:
        return remainder >= half
    if mode == RTZ:
        return False
    if mode == RUP:
        return inexact & (not negative)
    if mode == RDN:
        return inexact & negative
    if mode == RTO:
        return inexact & (not kept_odd)
    if mode == SR:
        uniform = random_bits >> np.uint64(64 - _SR_RANDOM_BITS)
        if shift <= _SR_RANDOM_BITS:
            threshold = remainder << np.uint64(_SR_RANDOM_BITS - shift)
        elif shift - _SR_RANDOM_BITS < 64:
            threshold = remainder >> np.uint64(shift - _SR_RANDOM_BITS)
        else:
            threshold = _U0
        return uniform < threshold
    return inexact & ((random_bits >> np.uint64(63)) == _U1)


@njit(cache=True)
def _overflow(negative: bool, mode: np.int64, max_value: np.float64, overflow_value: np.float64) -> np.float64:
    """The signed result of an overflow: IEEE 754 §7.4 (rtz, rto and the directed mode away from its infinity give
    ±max) and otherwise the format's overflow value (inf, max or NaN)."""
    if mode == RTZ or mode == RTO or (mode == RUP and negative) or (mode == RDN and not negative):
        result = max_value
    else:
        result = overflow_value
    return -result if negative else result


@njit(cache=True)
def _round_normal_bits(
    magnitude_bits: np.uint64, shift: np.int64, negative: bool, mode: np.int64, random_bits: np.uint64
) -> np.uint64:
    """Fast path: round a magnitude lying in a normal binade of the target by dropping ``shift`` bits of its IEEE
    encoding; a carry out of the significand lands in the exponent field, i.e. on 2^(exponent+1)."""
    if shift <= 0:
        return magnitude_bits
    unit = _U1 << np.uint64(shift)
    mask = unit - _U1
    remainder = magnitude_bits & mask
    kept_bits = magnitude_bits & ~mask
    kept_odd = (kept_bits & unit) != _U0
    round_up = _round_up(mode, remainder, unit >> _U1, kept_odd, negative, random_bits, shift)
    return kept_bits + (np.uint64(round_up) << np.uint64(shift))


@njit(cache=True)
def _round_finite(
    value: np.float64,
    precision: np.int64,
    emin: np.int64,
    subnormals: bool,
    max_value: np.float64,
    overflow_value: np.float64,
    inf_value: np.float64,
    unsigned_zero: bool,
    mode: np.int64,
    random_bits: np.uint64,
) -> np.float64:
    """General path, the twin of ``round_reference``: zero, NaN, inf, and magnitudes outside the normal binades."""
    bits = np.float64(value).view(np.uint64)
    negative = (bits & _SIGN) != _U0
    biased_exponent = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    fraction = bits & np.uint64(0xFFFFFFFFFFFFF)
    if biased_exponent == 0x7FF:
        if fraction != _U0:
            return np.nan
        return -inf_value if negative else inf_value
    if biased_exponent == 0:
        if fraction == _U0:
            return 0.0 if (unsigned_zero or not negative) else -0.0
        significand = fraction
        lsb_exponent = np.int64(-1074)
        exponent = lsb_exponent + _floor_log2_int(significand)
    else:
        significand = fraction | np.uint64(1 << 52)
        lsb_exponent = biased_exponent - 1075
        exponent = biased_exponent - 1023
    if exponent >= emin:
        quantum_exponent = exponent - precision + 1
    elif subnormals:
        quantum_exponent = emin - precision + 1
    else:
        quantum_exponent = emin
    shift = quantum_exponent - lsb_exponent
    if shift <= 0:
        result = abs(value)  # representable at this binade (it may still exceed max)
    else:
        clamped = shift if shift < 54 else 54  # past 54 dropped bits: kept = 0 and remainder < half all the same
        kept = significand >> np.uint64(clamped)
        remainder = significand & ((_U1 << np.uint64(clamped)) - _U1)
        half = _U1 << np.uint64(clamped - 1)
        if _round_up(mode, remainder, half, (kept & _U1) == _U1, negative, random_bits, shift):
            kept += _U1
        result = np.float64(kept) * _pow2(quantum_exponent)
    if result > max_value:
        return _overflow(negative, mode, max_value, overflow_value)
    if result == 0.0 and unsigned_zero:
        return 0.0
    return -result if negative else result


def _make_round_kernel(mode: int):  # noqa: ANN202 - returns a Numba dispatcher
    """Compile-time specialisation on the rounding mode (a closure constant), so that the mode's branches fold away
    and the fast path vectorises; Numba caches each closure separately."""

    @njit(cache=True)
    def round_chunk(start, stop, x, out, precision, emin, emax, subnormals, max_value, overflow_value, inf_value,
                    unsigned_zero, key):  # fmt: skip
        """Round ``x[start:stop]`` into ``out[start:stop]`` (serial; the loop the parallel driver splits)."""
        shift = 53 - precision
        max_bits = np.float64(max_value).view(np.uint64)
        # pass 1, branch-free so that it vectorises: the fast path for every element, counting those it cannot take
        # (outside the normal binades, or overflowing)
        irregular = 0
        for i in range(start, stop):
            bits = np.float64(x[i]).view(np.uint64)  # float32 -> float64 is exact
            negative = (bits & _SIGN) != _U0
            magnitude_bits = bits & _ABS
            exponent = np.int64(magnitude_bits >> np.uint64(52)) - 1023
            random_bits = random_bits_at(key, np.uint64(i)) if mode >= SR else _U0
            rounded_bits = _round_normal_bits(magnitude_bits, shift, negative, mode, random_bits)
            irregular += (exponent < emin) | (exponent > emax) | (rounded_bits > max_bits)
            out[i] = np.uint64(rounded_bits | (bits & _SIGN)).view(np.float64)
        if irregular == 0:
            return
        # pass 2: the general path (the reference's twin) for the elements pass 1 could not take
        for i in range(start, stop):
            value = np.float64(x[i])
            bits = value.view(np.uint64)
            magnitude_bits = bits & _ABS
            exponent = np.int64(magnitude_bits >> np.uint64(52)) - 1023
            if exponent < emin or exponent > emax or np.abs(value) > max_value:
                random_bits = random_bits_at(key, np.uint64(i)) if mode >= SR else _U0
                out[i] = _round_finite(value, precision, emin, subnormals, max_value, overflow_value, inf_value,
                                       unsigned_zero, mode, random_bits)  # fmt: skip

    @njit(cache=True, parallel=True)
    def round_array(x, out, precision, emin, emax, subnormals, max_value, overflow_value, inf_value, unsigned_zero,
                    key):  # fmt: skip
        """Round the 1-D float64 or float32 array ``x`` into ``out`` (1-D, float64, or float32 when the format is
        contained in fp32 so that every result is a float32 value), in parallel over chunks of elements."""
        n = x.shape[0]
        for chunk in prange((n + _CHUNK - 1) // _CHUNK):
            round_chunk(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK), x, out, precision, emin, emax, subnormals,
                        max_value, overflow_value, inf_value, unsigned_zero, key)  # fmt: skip

    return round_array


#: ``ROUND_KERNELS[mode_code](x, out, precision, emin, emax, subnormals, max_value, overflow_value, inf_value,
#: unsigned_zero, key)`` rounds the 1-D array ``x`` into ``out``; compiled on first use of each mode.
ROUND_KERNELS = tuple(_make_round_kernel(code) for code in range(len(MODE_CODES)))
