"""Any numpy callable as a composable function: a given or numerically computed Jacobian, with error control.

``numeric_jacobian(f, z)`` differentiates f: R^n → R^m (arrays of any shape, flattened) by central differences with
Richardson extrapolation: D(h) = (f(z + h e_j) − f(z − h e_j))/(2h) = f′ + c h² + O(h⁴) gives R(h) = (4D(h/2) − D(h))/3
= f′ + O(h⁴). With steps h, h/2, h/4 it returns R(h/2) and the error estimate |R(h/2) − R(h)| (which bounds R(h)'s
error to leading order, so over-estimates R(h/2)'s) plus the rounding term 64·2^-52·max|f|/h (R(h/2) amplifies
errors δf of f's values by ≈ 6/h; this allows δf up to ~10 ulps of max|f|). h_j = 2^-10·max(1, |z_j|)
(≈ ε^(1/5), the balance of an O(h⁴) truncation against rounding). The estimate is *heuristic*, not a proof: ``first_order``
adds it to |J|, and ``rigorous`` is available only when the user supplies ``jac_bound`` (an upper bound on |J| over a
box), since nothing rigorous can be said about an arbitrary callable. Cost: 6n evaluations of f.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import Primitive, as_input
from .interval import Interval

__all__ = ["numeric_jacobian", "Function"]


def numeric_jacobian(f: Callable[[np.ndarray], Any], z: Any, step: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(J, err): the Jacobian of the flattened map z ↦ f(z), shape (f(z).size, z.size), and an error estimate."""
    z = as_input(z, "z")
    x = z.reshape(-1)
    y0 = np.asarray(f(z), dtype=np.float64).reshape(-1)
    J = np.empty((y0.size, x.size))
    err = np.empty_like(J)
    for j in range(x.size):
        h = step if step is not None else 2.0**-10 * max(1.0, abs(x[j]))
        quotients = []
        scale = np.abs(y0)
        for k in range(3):
            hk = h / 2**k
            plus, minus = x.copy(), x.copy()
            plus[j] += hk
            minus[j] -= hk
            fp = np.asarray(f(plus.reshape(z.shape)), dtype=np.float64).reshape(-1)
            fm = np.asarray(f(minus.reshape(z.shape)), dtype=np.float64).reshape(-1)
            quotients.append((fp - fm) / (plus[j] - minus[j]))  # the step actually taken
            scale = np.maximum(scale, np.maximum(np.abs(fp), np.abs(fm)))
        r1 = (4 * quotients[1] - quotients[0]) / 3
        r2 = (4 * quotients[2] - quotients[1]) / 3
        J[:, j] = r2
        err[:, j] = np.abs(r2 - r1) + 64 * 2.0**-52 * scale / h  # f evaluated to ~10 ulps: ≈6 δf/h in R
    return J, err


class Function(Primitive):
    """A numpy callable f (any array shape in, any out) with an optional exact Jacobian ``jac(z)`` (shape
    (f(z).size, z.size)) and an optional ``jac_bound(lo, hi)`` bounding |J| over the box [lo, hi] (same shape)."""

    def __init__(self, f: Callable[[np.ndarray], Any], jac: Callable[[np.ndarray], Any] | None = None,
                 jac_bound: Callable[[np.ndarray, np.ndarray], Any] | None = None, name: str | None = None) -> None:  # fmt: skip
        if not callable(f):
            raise TypeError(f"f must be callable, got {type(f).__name__}")
        self.f = f
        self.jac = jac
        self.jac_bound = jac_bound
        self.name = str(name or getattr(f, "__name__", "function"))

    def __call__(self, z: Any) -> np.ndarray:
        return np.asarray(self.f(as_input(z, "z")), dtype=np.float64)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return np.shape(self.f(np.zeros(shape)))

    def abs_jacobian(self, z_hat: np.ndarray) -> np.ndarray:
        """|J| (+ the numerical error estimate when J is computed numerically), flattened (m, n)."""
        if self.jac is not None:
            J = np.asarray(self.jac(z_hat), dtype=np.float64)
            return np.abs(J.reshape(-1, z_hat.size))
        J, err = numeric_jacobian(self.f, z_hat)
        return np.abs(J) + err

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        if self.jac is not None:
            return np.asarray(self.jac(z), dtype=np.float64).reshape(-1, z.size)
        return numeric_jacobian(self.f, z)[0]

    def first_order(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        out = self.abs_jacobian(z_hat) @ beta.reshape(-1)
        return out.reshape(np.shape(self.f(z_hat)))

    def abs_vjp(self, z_hat: np.ndarray, v: np.ndarray) -> np.ndarray:
        return (np.asarray(v).reshape(-1) @ self.abs_jacobian(z_hat)).reshape(z_hat.shape)

    def rigorous(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray | None:  # type: ignore[override]
        if self.jac_bound is None:
            return None
        box = Interval.around(z_hat, beta)
        bound = np.asarray(self.jac_bound(box.lo, box.hi), dtype=np.float64).reshape(-1, z_hat.size)
        out = np.nextafter(bound @ beta.reshape(-1) * (1 + (z_hat.size + 4) * 2.0**-52), np.inf)
        return out.reshape(np.shape(self.f(z_hat)))

    def evaluate(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError("a plain callable has no emulated evaluation: write it as a Primitive")

    def own_error(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        return None

    def float64_error(self, z_hat: np.ndarray) -> np.ndarray:
        """Unknown for a plain callable: 0 (a chain through it has no rigorous bound anyway)."""
        return np.zeros(np.shape(self.f(z_hat)))
