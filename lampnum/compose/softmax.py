"""Softmax and log-softmax along the last axis, with exact (not first-order) rigorous bounds.

With s = softmax(ẑ), z = ẑ − e, |e| ≤ β (LAMP-MATH.md §2):

Softmax. J = diag(s) − s sᵀ, so |J|β_i = s_i[(1 − s_i)β_i + Σ_{j≠i} s_jβ_j] and the column ℓ1 norms are 2s_j(1 − s_j).
Exactly, s_i(z)/s_i(ẑ) = 1/(s_i + Σ_{j≠i} s_j e^{e_i − e_j}), extreme at the corners e_i = ∓β_i, e_j = ±β_j:

    |s_i(ẑ) − s_i(z)| ≤ s_i·max(N'_i/(1 − N'_i), N''_i/(1 + N''_i)),
    N'_i = (1 − s_i)a_i + e^{−β_i}·Σ_{j≠i} s_j a_j,  a = 1 − e^{−β};   N''_i = (1 − s_i)b_i + e^{β_i}·Σ_{j≠i} s_j b_j,
    b = e^{β} − 1,

which is attained (it is the supremum, not an over-estimate). Derivation: papers/bounds/README.md §6.

Log-softmax y = z − logsumexp(z). J = I − 1sᵀ, |J|β_i = (1 − s_i)β_i + Σ_{j≠i} s_jβ_j. Exactly,
y_i(ẑ) − y_i(z) = e_i + log Σ_j s_j e^{−e_j}, increasing in e_i and decreasing in every other e_j, so its range is

    [−β_i + log1p(s_i b_i − Σ_{j≠i} s_j a_j),  β_i + log1p(Σ_{j≠i} s_j b_j − s_i a_i)],

again attained. Sums Σ_{j≠i} are formed by prefix and suffix sums (no cancellation) in outward-rounded intervals.

The algorithm evaluated in a format (:meth:`~.base.Primitive.evaluate`): m = max z; d = z − m; e = exp(d);
S = Σ e (recursive, in the accumulator); softmax = e/S, log-softmax = d − log S; each operation correctly rounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Primitive
from .contexts import Intervals
from .interval import Interval, up

__all__ = ["Softmax", "LogSoftmax"]


def _last_axis(axis: int) -> int:
    if axis != -1:
        raise ValueError("only axis=-1 is supported: move the axis with numpy.moveaxis first")
    return axis


def _probabilities(z_hat: np.ndarray) -> Interval:
    """An enclosure of softmax(ẑ) (outward-rounded evaluation)."""
    exact = Intervals()
    e = exact.exp(exact.sub(Interval(z_hat), exact.max(z_hat)))
    return e / e.sum(-1, keepdims=True)


def _softmax_float(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _excluded(x: np.ndarray) -> np.ndarray:
    """Σ_{j≠i} x_j along the last axis by prefix and suffix sums: accurate for x ≥ 0 (1 − s_i when s_i ≈ 1)."""
    zero = np.zeros(x.shape[:-1] + (1,))
    before = np.concatenate([zero, np.cumsum(x, -1)[..., :-1]], -1)
    after = np.concatenate([np.cumsum(x[..., ::-1], -1)[..., ::-1][..., 1:], zero], -1)
    return before + after


def _ab(beta: np.ndarray) -> tuple[Interval, Interval, Interval, Interval]:
    """a = 1 − e^{−β}, b = e^{β} − 1, e^{−β}, e^{β} as intervals."""
    minus = -Interval(beta)
    a = -(minus.expm1())
    b = Interval(beta).expm1()
    return Interval(np.maximum(a.lo, 0.0), a.hi), Interval(np.maximum(b.lo, 0.0), b.hi), minus.exp(), Interval(beta).exp()


class Softmax(Primitive):
    """softmax along the last axis (``axis=-1``)."""

    name = "softmax"

    def __init__(self, axis: int = -1) -> None:
        self.axis = _last_axis(axis)

    def algorithm(self, ctx: Any, z: Any) -> Any:
        e = ctx.exp(ctx.sub(z, ctx.max(z)))
        return ctx.div(e, ctx.sum(e))

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        s = _softmax_float(z)
        return s[..., :, None] * (np.eye(z.shape[-1]) - s[..., None, :])

    def first_order(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        s = _softmax_float(z_hat)
        return s * (_excluded(s) * beta + _excluded(s * beta))

    def abs_vjp(self, z_hat: np.ndarray, v: np.ndarray) -> np.ndarray:
        s = _softmax_float(z_hat)
        return s * (v * _excluded(s) + _excluded(v * s))

    def rigorous(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        s = _probabilities(z_hat)
        a, b, e_minus, e_plus = _ab(beta)
        rest = s.excluded_sums()  # 1 − s_i, without cancellation
        n1 = rest * a + e_minus * (s * a).excluded_sums()
        n2 = rest * b + e_plus * (s * b).excluded_sums()
        upward = n1 / (1.0 - n1)  # s_i(z)/s_i(ẑ) − 1 at most this
        downward = n2 / (1.0 + n2)  # 1 − s_i(z)/s_i(ẑ) at most this
        ratio = np.maximum(upward.hi, downward.hi)
        ratio = np.where(n1.hi >= 1.0, np.inf, ratio)
        return up(s.hi * ratio)


class LogSoftmax(Primitive):
    """log-softmax along the last axis (``axis=-1``)."""

    name = "log_softmax"

    def __init__(self, axis: int = -1) -> None:
        self.axis = _last_axis(axis)

    def algorithm(self, ctx: Any, z: Any) -> Any:
        d = ctx.sub(z, ctx.max(z))
        return ctx.sub(d, ctx.log(ctx.sum(ctx.exp(d))))

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        s = _softmax_float(z)
        return np.eye(z.shape[-1]) - s[..., None, :]

    def first_order(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        s = _softmax_float(z_hat)
        return _excluded(s) * beta + _excluded(s * beta)

    def abs_vjp(self, z_hat: np.ndarray, v: np.ndarray) -> np.ndarray:
        s = _softmax_float(z_hat)
        return v * _excluded(s) + s * _excluded(v)

    def rigorous(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        s = _probabilities(z_hat)
        a, b, _, _ = _ab(beta)
        upper = Interval(beta) + ((s * b).excluded_sums() - s * a).log1p()
        lower = Interval(beta) - (s * b - (s * a).excluded_sums()).log1p()  # −(the lower end of the range)
        bound = np.maximum(np.maximum(upper.hi, lower.hi), 0.0)
        return np.where(np.isnan(bound), np.inf, bound)
