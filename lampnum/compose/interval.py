"""Outward-rounded interval arithmetic on numpy arrays: rigorous enclosures for the composition bounds.

An :class:`Interval` holds float64 arrays ``lo <= hi``; every operation returns an interval that contains every exact
result of the operation applied to points of its operands (Moore's inclusion property). Rounding control:

- ``+ − × ÷ √`` are correctly rounded in IEEE float64, so moving each computed endpoint one ulp outward
  (``np.nextafter``) encloses the exact result;
- sums along an axis use numpy's summation (any order): the computed sum of n terms errs by at most
  γ_{n−1}·Σ|x_i| (Higham 2002, Ch. 4), so that much is added outward;
- ``exp log log1p expm1 tanh erf erfc`` come from numpy/scipy, which are not correctly rounded; their endpoints are moved
  outward by ``LIBM_ULPS[name]`` ulps (4 for numpy's exp, expm1, log, log1p, tanh: glibc and SVML document errors
  below 4 ulps; 8 for scipy's erf, measured below 2.5), and scipy's erfc, measured up to ~500 ulps far in its tail,
  by a relative 2^-40 plus an absolute 2^-1000 (its subnormal results). These are *assumptions* about the math
  libraries, checked against 200-bit mpmath in the test suite, not proofs. Monotonicity gives the enclosure of a
  monotone function from its endpoints.

For small cases ``mpmath.iv`` provides assumption-free intervals; the tests use it as a cross-check.

:meth:`Interval.round_to` encloses the rounding of every point of the interval to a format in *any* mode (including
stochastic ones): rounding is monotone and always returns one of the two neighbours, so fl(x) ∈ [RD(lo), RU(hi)].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special

from ..formats import Format
from ..rounding import round as round_to_format

__all__ = ["Interval", "LIBM_ULPS", "down", "up"]

LIBM_ULPS = {"exp": 4, "expm1": 4, "log": 4, "log1p": 4, "tanh": 4, "erf": 8}
_U64 = 2.0**-53


def down(x: Any, steps: int = 1) -> np.ndarray:
    out = np.asarray(x, dtype=np.float64)
    for _ in range(steps):
        out = np.nextafter(out, -np.inf)
    return out


def up(x: Any, steps: int = 1) -> np.ndarray:
    out = np.asarray(x, dtype=np.float64)
    for _ in range(steps):
        out = np.nextafter(out, np.inf)
    return out


def _quiet(method: Any) -> Any:
    """Overflow to ±inf is a valid (if useless) enclosure: interval methods run without float64 warnings."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return method(*args, **kwargs)

    wrapped.__name__, wrapped.__doc__ = method.__name__, method.__doc__
    return wrapped


def _nan_to(x: np.ndarray, value: float) -> np.ndarray:
    return np.where(np.isnan(x), value, x)


class Interval:
    """Arrays of closed intervals [lo, hi] with outward-rounded arithmetic (see the module docstring)."""

    __slots__ = ("lo", "hi")
    __array_priority__ = 1000  # so ndarray ∘ Interval dispatches to Interval's reflected operators

    def __init__(self, lo: Any, hi: Any = None) -> None:
        self.lo = np.asarray(lo, dtype=np.float64)
        self.hi = self.lo if hi is None else np.asarray(hi, dtype=np.float64)

    # ----- construction and inspection ------------------------------------------------------------------------
    @classmethod
    def around(cls, center: Any, radius: Any) -> Interval:
        """[center − radius, center + radius], rounded outward."""
        center = np.asarray(center, dtype=np.float64)
        return cls(down(center - radius), up(center + radius))

    @property
    def shape(self) -> tuple[int, ...]:
        return np.broadcast_shapes(self.lo.shape, self.hi.shape)

    def __getitem__(self, index: Any) -> Interval:
        return Interval(np.broadcast_to(self.lo, self.shape)[index], np.broadcast_to(self.hi, self.shape)[index])

    def __repr__(self) -> str:
        return f"Interval(lo={self.lo!r}, hi={self.hi!r})"

    def magnitude(self) -> np.ndarray:
        """max |x| over the interval."""
        return np.maximum(np.abs(self.lo), np.abs(self.hi))

    def distance_from(self, center: Interval) -> np.ndarray:
        """An upper bound on |x − c| for every x in self and c in center (rounded up; inf where either is poisoned)."""
        with np.errstate(invalid="ignore"):
            distance = np.maximum(up(self.hi - center.lo), up(center.hi - self.lo)).clip(min=0.0)
        return np.where(np.isnan(distance), np.inf, distance)

    def contains(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return (self.lo <= x) & (x <= self.hi)

    # ----- arithmetic -------------------------------------------------------------------------------------------
    @staticmethod
    def _wrap(x: Any) -> Interval:
        return x if isinstance(x, Interval) else Interval(x)

    def __neg__(self) -> Interval:
        return Interval(-self.hi, -self.lo)

    @_quiet
    def __add__(self, other: Any) -> Interval:
        other = self._wrap(other)
        lo = down(self.lo + other.lo)
        return Interval(np.where((self.lo >= 0) & (other.lo >= 0), np.maximum(lo, 0.0), lo), up(self.hi + other.hi))

    __radd__ = __add__

    @_quiet
    def __sub__(self, other: Any) -> Interval:
        other = self._wrap(other)
        return Interval(down(self.lo - other.hi), up(self.hi - other.lo))

    def __rsub__(self, other: Any) -> Interval:
        return self._wrap(other) - self

    @_quiet
    def __mul__(self, other: Any) -> Interval:
        other = self._wrap(other)
        pairs = [(self.lo, other.lo), (self.lo, other.hi), (self.hi, other.lo), (self.hi, other.hi)]
        with np.errstate(invalid="ignore"):  # 0·inf: the interval product holds 0 there; NaN (poison) stays NaN
            candidates = [np.where(np.isnan(x * y) & ~np.isnan(x) & ~np.isnan(y), 0.0, x * y) for x, y in pairs]
        lo = down(np.minimum.reduce(candidates))
        nonnegative = (self.lo >= 0) & (other.lo >= 0)  # keep the sign: outward rounding must not cross 0
        return Interval(np.where(nonnegative, np.maximum(lo, 0.0), lo), up(np.maximum.reduce(candidates)))

    __rmul__ = __mul__

    @_quiet
    def reciprocal(self) -> Interval:
        """1/x; the whole line when the interval contains 0."""
        straddles = (self.lo <= 0) & (self.hi >= 0)
        with np.errstate(divide="ignore"):
            lo, hi = down(1.0 / self.hi), up(1.0 / self.lo)
        return Interval(np.where(straddles, -np.inf, lo), np.where(straddles, np.inf, hi))

    def __truediv__(self, other: Any) -> Interval:
        return self * self._wrap(other).reciprocal()

    def __rtruediv__(self, other: Any) -> Interval:
        return self._wrap(other) * self.reciprocal()

    @_quiet
    def square(self) -> Interval:
        """x² with the dependency kept (a plain product would allow negative values)."""
        low, high = np.abs(self.lo), np.abs(self.hi)
        straddles = (self.lo <= 0) & (self.hi >= 0)
        lo = np.where(straddles, 0.0, down(np.minimum(low, high) ** 2))
        return Interval(np.maximum(lo, 0.0), up(np.maximum(low, high) ** 2))

    @_quiet
    def cube(self) -> Interval:
        """x³ (monotone; two roundings per end, so two ulps outward)."""
        return Interval(down(self.lo * self.lo * self.lo, 2), up(self.hi * self.hi * self.hi, 2))

    @_quiet
    def sqrt(self) -> Interval:
        return Interval(down(np.sqrt(np.maximum(self.lo, 0.0))).clip(min=0.0), up(np.sqrt(self.hi)))

    @_quiet
    def _monotone(self, function: Any, ulps: int, low: float = -np.inf, high: float = np.inf) -> Interval:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            lo, hi = function(self.lo), function(self.hi)
        return Interval(np.clip(down(lo, ulps), low, high), np.clip(up(hi, ulps), low, high))

    def exp(self) -> Interval:
        return self._monotone(np.exp, LIBM_ULPS["exp"], 0.0)

    def expm1(self) -> Interval:
        return self._monotone(np.expm1, LIBM_ULPS["expm1"], -1.0)

    def log(self) -> Interval:
        return self._monotone(np.log, LIBM_ULPS["log"])

    def log1p(self) -> Interval:
        return self._monotone(np.log1p, LIBM_ULPS["log1p"])

    def tanh(self) -> Interval:
        return self._monotone(np.tanh, LIBM_ULPS["tanh"], -1.0, 1.0)

    def erf(self) -> Interval:
        return self._monotone(scipy.special.erf, LIBM_ULPS["erf"], -1.0, 1.0)

    @_quiet
    def erfc(self) -> Interval:
        """erfc (decreasing; positive), accurate in the tails where 1 − erf cancels; widened relatively."""
        lo, hi = scipy.special.erfc(self.hi), scipy.special.erfc(self.lo)
        return Interval(np.clip(down(lo * (1 - 2.0**-40) - 2.0**-1000), 0.0, 2.0),
                        np.clip(up(hi * (1 + 2.0**-40) + 2.0**-1000), 0.0, 2.0))  # fmt: skip

    # ----- reductions and products ------------------------------------------------------------------------------
    @_quiet
    def sum(self, axis: int = -1, keepdims: bool = False) -> Interval:
        """Σ along ``axis`` with numpy's summation, widened by γ_n·Σ|endpoint| (any summation order)."""
        lo, hi = np.broadcast_to(self.lo, self.shape), np.broadcast_to(self.hi, self.shape)
        n = lo.shape[axis]
        slack = (n + 2) * _U64 * (1 + 2.0**-40)
        lo_sum, hi_sum = np.sum(lo, axis, keepdims=keepdims), np.sum(hi, axis, keepdims=keepdims)
        lo_err = up(slack * np.sum(np.abs(lo), axis, keepdims=keepdims))
        hi_err = up(slack * np.sum(np.abs(hi), axis, keepdims=keepdims))
        return Interval(down(lo_sum - lo_err), up(hi_sum + hi_err))

    @_quiet
    def excluded_sums(self) -> Interval:
        """For non-negative intervals along the last axis: Σ_{j≠i} x_j for each i, by prefix and suffix sums (no
        subtraction, so no cancellation); each sum of ≤ n terms is widened by its γ_n."""
        lo, hi = np.broadcast_to(self.lo, self.shape), np.broadcast_to(self.hi, self.shape)
        if np.any(lo < 0):
            raise ValueError("excluded_sums needs non-negative intervals")
        n = lo.shape[-1]
        factor = (n + 3) * _U64 * 2

        def excluded(x: np.ndarray) -> np.ndarray:
            before = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x, -1)[..., :-1]], -1)
            after = np.concatenate([np.cumsum(x[..., ::-1], -1)[..., ::-1][..., 1:], np.zeros(x.shape[:-1] + (1,))], -1)
            return before + after

        return Interval(down(excluded(lo) * (1 - factor)).clip(min=0.0), up(excluded(hi) * (1 + factor)))

    def max(self, axis: int = -1, keepdims: bool = False) -> Interval:
        return Interval(np.max(self.lo, axis, keepdims=keepdims), np.max(self.hi, axis, keepdims=keepdims))

    @_quiet
    def matmul(self, W: np.ndarray) -> Interval:
        """self @ W for a point matrix W, in midpoint–radius form (two BLAS products).

        With m = (lo + hi)/2 and r ≥ max(hi − m, m − lo): x@W ∈ m@W ± r@|W|, and the computed fl(m@W) errs by at most
        γ_n·|m|@|W| (any summation order), so the radius is (r + γ_n|m|)@|W|, rounded up."""
        W = np.asarray(W, dtype=np.float64)
        n = W.shape[0]
        gamma = (n + 2) * _U64
        with np.errstate(invalid="ignore", over="ignore"):
            mid = 0.5 * self.lo + 0.5 * self.hi
            radius = np.maximum(up(self.hi - mid), up(mid - self.lo))
            center = mid @ W
            spread = up(up(radius + gamma * np.abs(mid)) @ np.abs(W) * (1 + (n + 6) * 2 * _U64) + n * 2.0**-1074)
            lo, hi = down(center - spread), up(center + spread)
        poisoned = np.any(np.isnan(self.lo) | np.isnan(self.hi), axis=-1, keepdims=True)
        return Interval(np.where(poisoned, np.nan, _nan_to(lo, -np.inf)), np.where(poisoned, np.nan, _nan_to(hi, np.inf)))

    # ----- rounding to a format ---------------------------------------------------------------------------------
    def round_to(self, fmt: Format | str) -> Interval:
        """Encloses fl(x) for x in the interval, any mode: [RD(lo), RU(hi)]. Where the rounding may overflow (an end
        rounds to ±inf or NaN) both ends become NaN: a poison that every later operation propagates, because the
        emulated value may then be inf or NaN, which no interval of reals encloses."""
        # one call: RU(x) = −RD(−x), formats being symmetric (an unsigned zero is still a zero)
        both = np.stack([np.broadcast_to(self.lo, self.shape), -np.broadcast_to(self.hi, self.shape)])
        rounded = round_to_format(np.ascontiguousarray(both), fmt, "rdn")
        lo, hi = rounded[0], -rounded[1]
        poison = ~(np.isfinite(lo) & np.isfinite(hi))
        return Interval(np.where(poison, np.nan, lo), np.where(poison, np.nan, hi))
