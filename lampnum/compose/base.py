"""The interface every composable function implements, with generic (interval and dense-Jacobian) defaults.

A :class:`Primitive` f acts along the last axis of its input (batch axes broadcast) or elementwise. For a computed
ẑ = z + e with |e| ≤ β componentwise (LAMP-MATH.md §2) it provides

- ``first_order(ẑ, β)`` = |J_f(ẑ)|·β: the first-order bound on |f(ẑ) − f(z)| (exceeded at most by O(‖β‖²));
- ``rigorous(ẑ, β)``: sup over |e| ≤ β of |f(ẑ) − f(ẑ − e)|, bounded rigorously (outward rounding); the generic
  default encloses f over the box [ẑ − β, ẑ + β] by interval evaluation of its algorithm (Moore's inclusion
  theorem); primitives override it with sharper mean-value or exact-identity bounds;
- ``abs_vjp(ẑ, v)`` = vᵀ|J_f(ẑ)|, from which ``contributions(ẑ, β)`` = (1ᵀ|J_f(ẑ)|) ⊙ β: the ℓ1 norm of column j of
  |J_f(ẑ)|·diag(β), i.e. how much of the first-order output error component j of the input drives;
- ``evaluate(z, fmt, mode)``: f computed in a format, every operation correctly rounded (:mod:`.contexts`), and
  ``own_error(ẑ, fmt)``: a rigorous bound on |evaluate(ẑ) − f(ẑ)| valid in every rounding mode, from interval
  evaluation of the same algorithm with each result enclosed by its directed roundings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..formats import Format
from ..rounding.modes import RoundingMode
from .contexts import FLOAT64, Emulated, Intervals
from .interval import Interval, up

__all__ = ["Primitive", "Elementwise", "as_input", "as_beta"]


def as_input(z: Any, name: str = "z_hat") -> np.ndarray:
    """A finite float64 array (non-finite data raise ``ValueError``)."""
    array = np.asarray(z, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite entries; composition bounds are defined for finite data only")
    return array


def as_beta(beta: Any, shape: tuple[int, ...]) -> np.ndarray:
    """β broadcast to ``shape``: finite and non-negative, else ``ValueError``."""
    array = as_input(beta, "beta")
    if np.any(array < 0):
        raise ValueError("beta must be non-negative (it bounds |z_hat − z| componentwise)")
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"beta of shape {array.shape} does not broadcast to z_hat's shape {shape}") from None


class Primitive:
    """Base class; subclasses define :meth:`algorithm` and :meth:`abs_vjp` and may sharpen the bounds."""

    name = "primitive"

    def algorithm(self, ctx: Any, z: Any) -> Any:
        """f written once against an arithmetic context (:mod:`.contexts`)."""
        raise NotImplementedError

    def __call__(self, z: Any) -> np.ndarray:
        return np.asarray(self.algorithm(FLOAT64, as_input(z, "z")), dtype=np.float64)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def abs_vjp(self, z_hat: np.ndarray, v: np.ndarray) -> np.ndarray:
        """vᵀ|J_f(ẑ)| along the last axis (v has the output's shape, the result the input's)."""
        raise NotImplementedError

    def first_order(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """|J_f(ẑ)|·β (defaults to the dense Jacobian; primitives override with O(n) formulas)."""
        return np.einsum("...ij,...j->...i", np.abs(self.jacobian(z_hat)), beta)

    def contributions(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """(1ᵀ|J_f(ẑ)|) ⊙ β: per input component, the ℓ1 norm of its first-order effect on the output."""
        return self.abs_vjp(z_hat, np.ones(self.output_shape(z_hat.shape))) * beta

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        """Dense J_f(z) of shape (..., m, n), from ``abs_vjp``-independent formulas (small sizes: tests, inspection)."""
        raise NotImplementedError(f"{type(self).__name__} has no dense Jacobian")

    def rigorous(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """sup_{|e| ≤ β} |f(ẑ) − f(ẑ − e)| ≤ the distance of f's interval enclosure over the box from f(ẑ)."""
        exact = Intervals()
        box = self.algorithm(exact, Interval.around(z_hat, beta))
        point = self.algorithm(exact, Interval(z_hat))
        return box.distance_from(point)

    def evaluate(self, z: Any, fmt: Format | str | None, mode: RoundingMode | str = "rne", *, rng: Any = None,
                 accumulator: Format | str | None = None) -> np.ndarray:  # fmt: skip
        """f(z) computed in ``fmt``: every operation correctly rounded in ``mode``, sums accumulated in
        ``accumulator`` (default ``fmt``), recursively along the last axis."""
        if fmt is None:
            raise ValueError(f"{type(self).__name__}.evaluate needs a format (use f(z) for float64)")
        ctx = Emulated(fmt, mode, rng, accumulator)
        return np.asarray(self.algorithm(ctx, as_input(z, "z")), dtype=np.float64)

    def float64_error(self, z_hat: np.ndarray) -> np.ndarray:
        """A bound on |f(ẑ) computed in float64 − f(ẑ)|: the distance of the float64 value from the exact interval
        enclosure of f(ẑ) (how chains account for stages they evaluate in plain float64)."""
        value = self(z_hat)
        exact = self.algorithm(Intervals(), Interval(z_hat))
        return Interval(value).distance_from(exact)

    def own_error(self, z_hat: np.ndarray, fmt: Format | str | None, mode: RoundingMode | str = "rne", *,
                  accumulator: Format | str | None = None) -> np.ndarray:  # fmt: skip
        """A bound on |evaluate(ẑ, fmt, mode) − f(ẑ)|, valid for every rounding mode (``mode`` is accepted for a
        uniform signature): interval evaluation with each result enclosed by [RD, RU] in ``fmt``, compared with
        the exact interval evaluation at ẑ."""
        if fmt is None:
            raise ValueError(f"{type(self).__name__}.own_error needs the format f is evaluated in")
        point = Interval(z_hat)
        emulated = self.algorithm(Intervals(fmt, accumulator), point)
        exact = self.algorithm(Intervals(), point)
        return emulated.distance_from(exact)


class Elementwise(Primitive):
    """f applied entry by entry: J = diag(f′), so first order f′(ẑ)·β and the mean-value bound sup|f′|·β."""

    def derivative(self, ctx: Any, z: Any) -> Any:
        raise NotImplementedError

    def abs_vjp(self, z_hat: np.ndarray, v: np.ndarray) -> np.ndarray:
        return v * np.abs(self.derivative(FLOAT64, z_hat))

    def first_order(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        return np.abs(self.derivative(FLOAT64, z_hat)) * beta

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        d = np.asarray(self.derivative(FLOAT64, z), dtype=np.float64)
        return d[..., :, None] * np.eye(z.shape[-1])

    def rigorous(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Mean-value theorem: |f(ẑ) − f(z)| ≤ sup_{w ∈ [ẑ−β, ẑ+β]} |f′(w)|·β, the sup by interval evaluation of f′."""
        slope = self.derivative(Intervals(), Interval.around(z_hat, beta))
        return up(slope.magnitude() * beta)
