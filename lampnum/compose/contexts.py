"""Arithmetic contexts: each primitive's algorithm is written once and run in float64, emulated in a format, or in
interval arithmetic (the way mpmath's functions are written against a context).

- :data:`FLOAT64` — plain numpy float64 (the value f(z)).
- :class:`Emulated` (fmt, mode, rng, accumulator) — every operation is *correctly rounded* to ``fmt`` from its exact
  result: sums, products, quotients and square roots of float64 operands via error-free transformations (TwoSum;
  Dekker's TwoProduct; the exact remainders of division and square root) and float64 round-to-odd, which makes the one
  rounding to a format of p ≤ 51 bits exact (Boldo & Melquiond 2008, Thm 1; the same construction as
  :mod:`lampnum.emulate`); outside Dekker's safe exponent range the exact value is rounded by
  :func:`lampnum.rounding.round_reference` on rationals. ``exp log tanh erf`` are evaluated in float64 and rounded
  once (as :mod:`lampnum.emulate` documents). Sums along the last axis are recursive (left to right), each partial sum
  rounded to ``accumulator`` (default ``fmt``), the total then rounded to ``fmt``.
- :class:`Intervals` (fmt=None, mode) — the same algorithm on :class:`~lampnum.compose.interval.Interval` values;
  with ``fmt`` every result is enclosed by [RD(lo), RU(hi)] in that format, which contains the emulated result in any
  mode (so the gap between ``Intervals(fmt)`` and ``Intervals()`` at a point bounds f's own rounding error), and
  constants are the float64 values the emulation uses instead of the exact reals.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import scipy.special

from ..formats import Format, as_format
from ..rounding import round as round_to_format
from ..rounding.api import resolve_rng
from ..rounding.modes import RoundingMode, as_mode
from ..rounding.reference import round_reference
from .interval import Interval, down, up

__all__ = ["Float64", "Emulated", "Intervals", "FLOAT64", "Constant"]

_SPLIT = 134217729.0  # 2^27 + 1, Veltkamp's splitter


class Constant:
    """A real constant: its float64 value (used by float64 and emulated evaluation) and an enclosure of the exact
    real (used by exact interval evaluation)."""

    def __init__(self, value: float, lo: float | None = None, hi: float | None = None) -> None:
        self.value = float(value)
        self.lo = self.value if lo is None else float(lo)
        self.hi = self.value if hi is None else float(hi)


class Float64:
    """Plain float64 numpy arithmetic."""

    def const(self, c: Constant | float) -> Any:
        return c.value if isinstance(c, Constant) else c

    def add(self, a: Any, b: Any) -> Any:
        return np.add(a, b)

    def sub(self, a: Any, b: Any) -> Any:
        return np.subtract(a, b)

    def mul(self, a: Any, b: Any) -> Any:
        return np.multiply(a, b)

    def div(self, a: Any, b: Any) -> Any:
        with np.errstate(divide="ignore"):
            return np.divide(a, b)

    def square(self, a: Any) -> Any:
        return np.multiply(a, a)

    def sqrt(self, a: Any) -> Any:
        return np.sqrt(a)

    def exp(self, a: Any) -> Any:
        with np.errstate(over="ignore"):
            return np.exp(a)

    def log(self, a: Any) -> Any:
        return np.log(a)

    def tanh(self, a: Any) -> Any:
        return np.tanh(a)

    def erf(self, a: Any) -> Any:
        return scipy.special.erf(a)

    def erfc(self, a: Any) -> Any:
        return scipy.special.erfc(a)

    def sum(self, a: Any) -> Any:
        return np.sum(a, axis=-1, keepdims=True)

    def max(self, a: Any) -> Any:
        return np.max(a, axis=-1, keepdims=True)


FLOAT64 = Float64()


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = a + b
    bv = t - a
    av = t - bv
    return t, (a - av) + (b - bv)


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = _SPLIT * a
    high = c - (c - a)
    return high, a - high


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dekker: p = fl(ab), e = ab − p exactly when the exponents are in the safe range (checked by the caller)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _safe(*arrays: np.ndarray) -> np.ndarray:
    """Exponents where Dekker's TwoProduct and the remainders are exact: no overflow of the split, no underflow."""
    ok = np.ones(np.broadcast_shapes(*(x.shape for x in arrays)), dtype=bool)
    for x in arrays:  # non-finite operands: float64 propagates inf and NaN as IEEE 754 does, then rounding maps them
        ok &= (x == 0) | ((np.abs(x) > 2.0**-450) & (np.abs(x) < 2.0**450)) | ~np.isfinite(x)
    return ok


def _to_odd(value: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The float64 round-to-odd of an exact real that is ``value`` (direction 0) or lies strictly between ``value``
    and its neighbour on ``direction``'s side."""
    bits = value.view(np.uint64)
    even = (bits & np.uint64(1)) == 0
    step = np.nextafter(value, np.where(direction > 0, np.inf, -np.inf))
    return np.where((direction != 0) & even & np.isfinite(value), step, value)


class Emulated:
    """Correctly rounded arithmetic in ``fmt`` (p ≤ 51) and ``mode`` (see the module docstring)."""

    def __init__(self, fmt: Format | str, mode: RoundingMode | str = "rne", rng: Any = None,
                 accumulator: Format | str | None = None) -> None:  # fmt: skip
        self.fmt = as_format(fmt)
        self.mode = as_mode(mode)
        self.accumulator = as_format(accumulator) if accumulator is not None else self.fmt
        for f in (self.fmt, self.accumulator):
            if f.p > 51:
                raise ValueError(f"emulated evaluation needs p <= 51 (round-to-odd needs two spare bits); got {f}")
        self.rng = resolve_rng(rng) if self.mode.stochastic else None

    def _round(self, odd: np.ndarray, fmt: Format | None = None) -> np.ndarray:
        return round_to_format(np.ascontiguousarray(odd, dtype=np.float64), fmt or self.fmt, self.mode, rng=self.rng)

    def const(self, c: Constant | float) -> Any:
        return c.value if isinstance(c, Constant) else c

    def _add(self, a: Any, b: Any, fmt: Format) -> np.ndarray:
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        with np.errstate(invalid="ignore", over="ignore"):
            t, e = _two_sum(a, b)
        return self._round(_to_odd(t, np.where(np.isfinite(t), e, 0.0)), fmt)

    def add(self, a: Any, b: Any) -> np.ndarray:
        return self._add(a, b, self.fmt)

    def sub(self, a: Any, b: Any) -> np.ndarray:
        return self._add(a, -np.asarray(b, dtype=np.float64), self.fmt)

    def mul(self, a: Any, b: Any) -> np.ndarray:
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        with np.errstate(all="ignore"):
            p, e = _two_product(a, b)
        out = self._round(_to_odd(p, np.sign(e)))
        return self._fix_unsafe(out, ~_safe(a, b), lambda i: Fraction(a[i]) * Fraction(b[i]))

    def square(self, a: Any) -> np.ndarray:
        return self.mul(a, a)

    def div(self, a: Any, b: Any) -> np.ndarray:
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        with np.errstate(all="ignore"):
            q = a / b
            p, e = _two_product(q, b)
            remainder = (a - p) - e  # a − q·b, exact: representable, and a − p is exact (Sterbenz)
        out = self._round(_to_odd(q, np.sign(remainder) * np.sign(b)))
        unsafe = ~_safe(a, b, q) & (b != 0) & np.isfinite(a) & np.isfinite(b)
        return self._fix_unsafe(out, unsafe, lambda i: Fraction(a[i]) / Fraction(b[i]))

    def sqrt(self, a: Any) -> np.ndarray:
        """√a: scale a = m·2^(2k) with m in [1/2, 2) (exact), round-to-odd √m from its exact remainder, scale back."""
        a = np.asarray(a, dtype=np.float64)
        m, e = np.frexp(a)
        odd = (e % 2) != 0
        m, e = np.where(odd, 2 * m, m), np.where(odd, e - 1, e)
        with np.errstate(invalid="ignore"):
            s = np.sqrt(m)
            p, err = _two_product(s, s)
            remainder = (m - p) - err
        return self._round(np.ldexp(_to_odd(s, np.sign(remainder)), e // 2))

    def _fix_unsafe(self, out: np.ndarray, unsafe: np.ndarray, exact: Any) -> Any:
        """Round the exact rational values at the positions outside Dekker's safe range with the reference."""
        if not np.any(unsafe):
            return out
        out = np.array(out, dtype=np.float64)
        for i in zip(*np.nonzero(unsafe), strict=True):
            bits = int(self.rng.integers(0, 2**64, dtype=np.uint64)) if self.rng is not None else 0
            out[i] = round_reference(exact(i), self.fmt, self.mode, bits)
        return out

    def _libm(self, function: Any, a: Any) -> np.ndarray:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return self._round(function(np.asarray(a, dtype=np.float64)))

    def exp(self, a: Any) -> np.ndarray:
        return self._libm(np.exp, a)

    def log(self, a: Any) -> np.ndarray:
        return self._libm(np.log, a)

    def tanh(self, a: Any) -> np.ndarray:
        return self._libm(np.tanh, a)

    def erf(self, a: Any) -> np.ndarray:
        return self._libm(scipy.special.erf, a)

    def erfc(self, a: Any) -> np.ndarray:
        return self._libm(scipy.special.erfc, a)

    def sum(self, a: Any) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        s = self._round(a[..., 0], self.accumulator) if a.shape[-1] else np.zeros(a.shape[:-1])
        for k in range(1, a.shape[-1]):
            s = self._add(s, a[..., k], self.accumulator)
        return self._round(s)[..., None] if self.accumulator != self.fmt else s[..., None]

    def max(self, a: Any) -> np.ndarray:
        return np.max(a, axis=-1, keepdims=True)


class Intervals:
    """Interval evaluation, exact (``fmt=None``) or enclosing every emulated result in ``fmt`` (any mode)."""

    def __init__(self, fmt: Format | str | None = None, accumulator: Format | str | None = None) -> None:
        self.fmt = as_format(fmt) if fmt is not None else None
        self.accumulator = as_format(accumulator) if accumulator is not None else self.fmt

    def _r(self, x: Interval, fmt: Format | None = None) -> Interval:
        fmt = fmt or self.fmt
        return x.round_to(fmt) if fmt is not None else x

    @staticmethod
    def _i(x: Any) -> Interval:
        return x if isinstance(x, Interval) else Interval(x)

    def const(self, c: Constant | float) -> Interval:
        if not isinstance(c, Constant):
            return Interval(c)
        return Interval(c.value) if self.fmt is not None else Interval(c.lo, c.hi)

    def add(self, a: Any, b: Any) -> Interval:
        return self._r(self._i(a) + b)

    def sub(self, a: Any, b: Any) -> Interval:
        return self._r(self._i(a) - b)

    def mul(self, a: Any, b: Any) -> Interval:
        return self._r(self._i(a) * b)

    def div(self, a: Any, b: Any) -> Interval:
        return self._r(self._i(a) / b)

    def square(self, a: Any) -> Interval:
        return self._r(self._i(a).square())

    def sqrt(self, a: Any) -> Interval:
        return self._r(self._i(a).sqrt())

    def exp(self, a: Any) -> Interval:
        return self._r(self._i(a).exp())

    def log(self, a: Any) -> Interval:
        return self._r(self._i(a).log())

    def tanh(self, a: Any) -> Interval:
        return self._r(self._i(a).tanh())

    def erf(self, a: Any) -> Interval:
        return self._r(self._i(a).erf())

    def erfc(self, a: Any) -> Interval:
        return self._r(self._i(a).erfc())

    def sum(self, a: Any) -> Interval:
        a = self._i(a)
        if self.fmt is None:
            return a.sum(-1, keepdims=True)
        n = a.shape[-1]
        s = self._r(a[..., 0], self.accumulator) if n else Interval(np.zeros(a.shape[:-1]))
        for k in range(1, n):
            s = self._r(s + a[..., k], self.accumulator)
        s = self._r(s) if self.accumulator != self.fmt else s
        return Interval(s.lo[..., None], s.hi[..., None])

    def max(self, a: Any) -> Interval:
        return self._i(a).max(-1, keepdims=True)


def enclose(value: float, ulps: int = 1) -> Constant:
    """A float64 constant whose exact real lies within ``ulps`` ulps of it."""
    return Constant(value, float(down(value, ulps)), float(up(value, ulps)))
