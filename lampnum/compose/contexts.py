"""Arithmetic contexts: each primitive's algorithm is written once and run in float64, emulated in a format, or in
interval arithmetic (the way mpmath's functions are written against a context).

- :data:`FLOAT64` — plain numpy float64 (the value f(z)).
- :class:`Emulated` (fmt, mode, rng, accumulator) — lampnum's own emulation: ``add sub mul div sqrt`` correctly
  rounded to ``fmt`` from the exact result of their operands, ``exp log tanh erf`` computed in float64 and rounded
  once (:mod:`lampnum.emulate`). Sums along the last axis are recursive (left to right): the first term rounded to
  ``accumulator`` (default ``fmt``), each partial sum rounded to it, the total then rounded to ``fmt``.
- :class:`Intervals` (fmt=None, mode) — the same algorithm on :class:`~lampnum.compose.interval.Interval` values;
  with ``fmt`` every result is enclosed by [RD(lo), RU(hi)] in that format, which contains the emulated result in any
  mode (so the gap between ``Intervals(fmt)`` and ``Intervals()`` at a point bounds f's own rounding error), and
  constants are the float64 values the emulation uses instead of the exact reals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special

from .. import emulate
from ..formats import Format, as_format
from ..rounding import round as round_to_format
from ..rounding.api import resolve_rng
from ..rounding.modes import RoundingMode, as_mode
from .interval import Interval, down, up

__all__ = ["Float64", "Emulated", "Intervals", "FLOAT64", "Constant", "enclose"]


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


class Emulated:
    """``fmt``/``mode`` arithmetic with lampnum's own emulation (module docstring); sums recursive in ``accumulator``."""

    def __init__(self, fmt: Format | str, mode: RoundingMode | str = "rne", rng: Any = None,
                 accumulator: Format | str | None = None) -> None:  # fmt: skip
        self.fmt = as_format(fmt)
        self.mode = as_mode(mode)
        self.accumulator = as_format(accumulator) if accumulator is not None else self.fmt
        self.rng = resolve_rng(rng) if self.mode.stochastic else None

    def const(self, c: Constant | float) -> Any:
        return c.value if isinstance(c, Constant) else c

    def _call(self, op: Any, *operands: Any, fmt: Format | None = None) -> np.ndarray:
        arrays = [np.asarray(x, dtype=np.float64) for x in operands]
        return np.asarray(op(*arrays, fmt or self.fmt, self.mode, rng=self.rng), dtype=np.float64)

    def _round(self, x: Any, fmt: Format) -> np.ndarray:
        return np.asarray(round_to_format(np.ascontiguousarray(x, dtype=np.float64), fmt, self.mode, rng=self.rng))

    def add(self, a: Any, b: Any) -> np.ndarray:
        return self._call(emulate.add, a, b)

    def sub(self, a: Any, b: Any) -> np.ndarray:
        return self._call(emulate.sub, a, b)

    def mul(self, a: Any, b: Any) -> np.ndarray:
        return self._call(emulate.mul, a, b)

    def square(self, a: Any) -> np.ndarray:
        return self.mul(a, a)

    def div(self, a: Any, b: Any) -> np.ndarray:
        return self._call(emulate.div, a, b)

    def sqrt(self, a: Any) -> np.ndarray:
        return self._call(emulate.sqrt, a)

    def exp(self, a: Any) -> np.ndarray:
        return self._call(emulate.exp, a)

    def log(self, a: Any) -> np.ndarray:
        return self._call(emulate.log, a)

    def tanh(self, a: Any) -> np.ndarray:
        return self._call(emulate.tanh, a)

    def erf(self, a: Any) -> np.ndarray:
        return self._call(emulate.erf, a)

    def erfc(self, a: Any) -> np.ndarray:
        raise NotImplementedError("lampnum.emulate has no erfc (the primitives' algorithms use erf)")

    def sum(self, a: Any) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        if a.shape[-1] == 0:
            return np.zeros(a.shape[:-1] + (1,))
        s = self._round(a[..., 0], self.accumulator)
        for k in range(1, a.shape[-1]):
            s = self._call(emulate.add, s, a[..., k], fmt=self.accumulator)
        if self.accumulator != self.fmt:
            s = self._round(s, self.fmt)
        return s[..., None]

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
