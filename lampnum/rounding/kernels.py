"""Numba kernels that round float64 and float32 arrays to a format, correctly, in parallel over elements.

The arithmetic is the integer arithmetic of :func:`lampnum.rounding.reference.round_reference`, with the same variable
names, on the bits of the input: ``|x| = significand · 2^lsb_exponent`` exactly. float32 inputs are first widened to
float64, which is exact, so every value is rounded once from its exact value; nothing passes through a narrower float.

One function, :func:`round_bits`, rounds any float64 (zero, subnormal, normal, NaN, inf) with the same instructions:
the special cases are selected at the end rather than branched to, and the rounding mode is a compile-time constant of
each kernel, so the loop vectorises whatever the mix of magnitudes.

Kernels take the plain parameters of :class:`lampnum.formats.FormatParams` and a mode code; they compile lazily on first
call and are cached on disk (``cache=True``).

Random bits for the stochastic modes: element ``i`` (flat C-order index) uses ``splitmix64(key + (i + 1)·γ)``, the
(i+1)-th output of the SplitMix64 generator started at ``key`` (Steele, Lea & Flood 2014). This counter-based scheme gives
the same result for any number of threads; the 64-bit ``key`` is drawn from the caller's ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["ROUND_KERNELS", "round_bits", "round_value", "splitmix64", "random_bits_at", "MODE_CODES"]

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


@njit(cache=True, inline="always")
def splitmix64(state: np.uint64) -> np.uint64:
    """The SplitMix64 output function for ``state`` (a bijective 64-bit mix)."""
    z = state + _GOLDEN_GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def random_bits_at(key: np.uint64, index: np.uint64) -> np.uint64:
    """The 64 random bits of element ``index``: SplitMix64's (index+1)-th output from state ``key``."""
    return splitmix64(key + index * _GOLDEN_GAMMA)


@njit(cache=True)
def _scale_by_pow2(value: np.float64, exponent: np.int64) -> np.float64:
    """value · 2^exponent for -1074 <= exponent <= 1023 and |value| < 2^54, exact when the result is representable:
    two multiplications by normal powers of two built from bits (branch-free, so it vectorises)."""
    half_exponent = exponent >> 1
    first = np.uint64((half_exponent + 1023) << 52).view(np.float64)
    second = np.uint64((exponent - half_exponent + 1023) << 52).view(np.float64)
    return (value * first) * second


@njit(cache=True, inline="always")
def _overflows_to_infinity(negative: bool, mode: np.int64) -> bool:
    """IEEE 754 §7.4: rtz, rto and the directed mode away from its infinity give ±max; the others go to infinity
    (then to the format's overflow value: inf, max or NaN)."""
    return not (mode == RTZ or mode == RTO or (mode == RUP and negative) or (mode == RDN and not negative))


@njit(cache=True)
def _overflow(negative: bool, mode: np.int64, max_value: np.float64, overflow_value: np.float64) -> np.float64:
    """The signed result of an overflow (see ``_overflows_to_infinity``)."""
    result = overflow_value if _overflows_to_infinity(negative, mode) else max_value
    return -result if negative else result


@njit(cache=True)
def _pow2(exponent: np.int64) -> np.float64:
    """2^exponent for exponent >= -1074 (exact up to 1023, inf beyond)."""
    if exponent > 1023:
        return np.inf
    return _scale_by_pow2(1.0, exponent)


@njit(cache=True, inline="always")
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

    ``remainder`` and ``half`` are in units of 2^lsb_exponent (``remainder < 2·half`` when anything was dropped);
    ``shift`` is the true number of dropped bits (the SR threshold needs it when ``remainder``/``half`` come from a
    clamped shift). Branch-free within each mode (the mode is a compile-time constant), so the loop vectorises."""
    inexact = remainder != _U0
    if mode == RNE:
        return inexact & ((remainder > half) | ((remainder == half) & kept_odd))
    if mode == RNA:
        return inexact & (remainder >= half)
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
        up_shift = np.uint64(min(max(_SR_RANDOM_BITS - shift, 0), 63))
        down_shift = np.uint64(min(max(shift - _SR_RANDOM_BITS, 0), 63))
        threshold_up = remainder << up_shift
        threshold_down = remainder >> down_shift
        threshold = threshold_up if shift <= _SR_RANDOM_BITS else threshold_down
        threshold = threshold if shift - _SR_RANDOM_BITS < 64 else _U0
        return uniform < threshold
    return inexact & ((random_bits >> np.uint64(63)) == _U1)


@njit(cache=True)
def round_bits(
    bits: np.uint64,
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
    """Round the float64 whose IEEE bits are ``bits`` to the format: the twin of ``round_reference``.

    Written with selects rather than branches, so that a loop over it vectorises: every input (zero, subnormal,
    normal, NaN, inf) runs the same instructions and the special cases are chosen at the end."""
    negative = (bits & _SIGN) != _U0
    biased_exponent = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    fraction = bits & np.uint64(0xFFFFFFFFFFFFF)
    normal_input = biased_exponent != 0
    # |x| = significand · 2^lsb_exponent exactly; a float64 subnormal has no hidden bit and lsb exponent -1074, and
    # lies below every format's emin, so its binade exponent only needs to be small (-1023) to pick the quantum
    significand = fraction | (np.uint64(normal_input) << np.uint64(52))
    lsb_exponent = (biased_exponent if normal_input else np.int64(1)) - 1075
    exponent = biased_exponent - 1023
    below_range_quantum = emin - precision + 1 if subnormals else emin  # without subnormals: 0 or 2^emin
    quantum_exponent = exponent - precision + 1 if exponent >= emin else below_range_quantum
    shift = quantum_exponent - lsb_exponent  # >= 0: the number of dropped bits
    clamped = min(shift, 54)  # past 54 dropped bits, kept = 0 and remainder < half all the same
    kept = significand >> np.uint64(clamped)
    remainder = significand & ((_U1 << np.uint64(clamped)) - _U1)
    half = (_U1 << np.uint64(clamped)) >> _U1
    kept_odd = (kept & _U1) == _U1
    kept += np.uint64(_round_up(mode, remainder, half, kept_odd, negative, random_bits, shift))
    result = _scale_by_pow2(np.float64(kept), min(quantum_exponent, 1023))
    overflow_magnitude = overflow_value if _overflows_to_infinity(negative, mode) else max_value
    result = overflow_magnitude if result > max_value else result
    special_result = np.nan if fraction != _U0 else inf_value
    result = special_result if biased_exponent == 0x7FF else result
    result = -result if negative else result
    return 0.0 if (unsigned_zero and result == 0.0) else result


@njit(cache=True)
def round_value(value, precision, emin, subnormals, max_value, overflow_value, inf_value, unsigned_zero, mode,
                random_bits):  # noqa: ANN001, ANN201 - Numba types these  # fmt: skip
    """``round_bits`` of a float64 value (for kernels that hold values rather than bits)."""
    return round_bits(np.float64(value).view(np.uint64), precision, emin, subnormals, max_value, overflow_value,
                      inf_value, unsigned_zero, mode, random_bits)  # fmt: skip


_round_finite = round_value  # the name the elementwise kernels use


def _make_round_kernel(mode: int):  # noqa: ANN202 - returns a Numba dispatcher
    """Compile-time specialisation on the rounding mode (a closure constant), so that the mode's branches fold away
    and the loop vectorises; Numba caches each closure separately."""

    @njit(cache=True)
    def round_chunk(start, stop, x, out, precision, emin, subnormals, max_value, overflow_value, inf_value,
                    unsigned_zero, key):  # fmt: skip
        """Round ``x[start:stop]`` into ``out[start:stop]`` (serial; the loop the parallel driver splits)."""
        x_chunk = x[start:stop]  # slices, so that indices are provably non-negative and the loop vectorises
        out_chunk = out[start:stop]
        for i in range(x_chunk.shape[0]):
            bits = np.float64(x_chunk[i]).view(np.uint64)  # float32 -> float64 is exact
            random_bits = random_bits_at(key, np.uint64(start + i)) if mode >= SR else _U0
            out_chunk[i] = round_bits(bits, precision, emin, subnormals, max_value, overflow_value, inf_value,
                                      unsigned_zero, mode, random_bits)  # fmt: skip

    @njit(cache=True, parallel=True)
    def round_array(x, out, precision, emin, subnormals, max_value, overflow_value, inf_value, unsigned_zero,
                    key):  # fmt: skip
        """Round the 1-D float64 or float32 array ``x`` into ``out`` (1-D, float64, or float32 when the format is
        contained in fp32 so that every result is a float32 value), in parallel over chunks of elements."""
        n = x.shape[0]
        for chunk in prange((n + _CHUNK - 1) // _CHUNK):
            round_chunk(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK), x, out, precision, emin, subnormals,
                        max_value, overflow_value, inf_value, unsigned_zero, key)  # fmt: skip

    return round_array


#: ``ROUND_KERNELS[mode_code](x, out, precision, emin, subnormals, max_value, overflow_value, inf_value,
#: unsigned_zero, key)`` rounds the 1-D array ``x`` into ``out``; compiled on first use of each mode.
ROUND_KERNELS = tuple(_make_round_kernel(code) for code in range(len(MODE_CODES)))
