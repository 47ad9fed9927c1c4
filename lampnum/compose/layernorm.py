"""LayerNorm along the last axis, with an exact first-order bound and a mean-value rigorous bound, both O(n log n).

y = w ⊙ x + b, x = (z − μ)/σ, μ = mean(z), σ = √(var(z) + ε) (var with 1/n). Its Jacobian (LAMP-MATH.md §2) is
J_ij = (w_i/σ)(δ_ij − 1/n − x_i x_j/n), so

    |J|β_i = (|w_i|/σ)·[ |1 − 1/n − x_i²/n|·β_i + (1/n)·Σ_{j≠i} |1 + x_i x_j|·β_j ].

The sum over j is computed exactly in O(n log n): sort x; 1 + x_i x_j changes sign once in j (at x_j = −1/x_i), so
it is a difference of prefix sums of β and xβ. The column ℓ1 norms (contributions) use the same device with weights
|w_i|.

Rigorous (mean-value theorem, per output i): |y_i(ẑ) − y_i(z)| ≤ Σ_j sup_{box}|J_ij|·β_j. Interval evaluation of x
and σ over the box [ẑ − β, ẑ + β] gives X_j ⊂ [x_j − r_j, x_j + r_j] and σ ≥ σ_min, and
|1 + X_iX_j| ≤ |1 + x_i x_j| + |x_i|r_j + r_i|x_j| + r_i r_j, hence

    rigorous_i = (|w_i|/σ_min)·[ (|1 − 1/n − x_i²/n| + (2|x_i|r_i + r_i²)/n)·β_i
                                 + (1/n)·(A_i + |x_i|·Σ_{j≠i} r_jβ_j + r_i·Σ_{j≠i}(|x_j| + r_j)β_j) ],

A_i = Σ_{j≠i}|1 + x_i x_j|β_j, with float64 evaluation errors of the sums covered by an explicit margin. As β → 0,
r = O(β) and σ_min → σ, so rigorous − first order = O(β²).

In a format: μ = (Σz)/n, d = z − μ, v = (Σ d·d)/n, σ = √(v + ε), y = w·(d/σ) + b, each operation correctly rounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Primitive
from .contexts import FLOAT64, Intervals
from .interval import Interval, up

__all__ = ["LayerNorm", "abs_affine_sums"]

_U64 = 2.0**-53


def abs_affine_sums(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_j weights_j·|1 + x_i x_j| for every i, along the last axis, in O(n log n) per row (weights ≥ 0)."""
    x2 = x.reshape(-1, x.shape[-1])
    w2 = np.broadcast_to(weights, x.shape).reshape(-1, x.shape[-1])
    out = np.empty_like(x2)
    for row in range(x2.shape[0]):
        xr, wr = x2[row], w2[row]
        order = np.argsort(xr, kind="stable")
        xs, ws = xr[order], wr[order]
        p0 = np.concatenate([[0.0], np.cumsum(ws)])
        p1 = np.concatenate([[0.0], np.cumsum(ws * xs)])
        with np.errstate(divide="ignore"):
            threshold = np.where(xr != 0, -1.0 / np.where(xr != 0, xr, 1.0), 0.0)
        k_pos = np.searchsorted(xs, threshold, side="left")  # x_i > 0: positive for x_j ≥ −1/x_i
        k_neg = np.searchsorted(xs, threshold, side="right")  # x_i < 0: positive for x_j ≤ −1/x_i
        above = (p0[-1] - p0[k_pos]) + xr * (p1[-1] - p1[k_pos])
        below_pos = p0[k_pos] + xr * p1[k_pos]
        first = p0[k_neg] + xr * p1[k_neg]
        rest = (p0[-1] - p0[k_neg]) + xr * (p1[-1] - p1[k_neg])
        out[row] = np.where(xr > 0, above - below_pos, np.where(xr < 0, first - rest, p0[-1]))
    return out.reshape(x.shape)


class LayerNorm(Primitive):
    """LayerNorm over the last axis with optional ``weight`` (γ) and ``bias``, and ``eps`` inside the square root."""

    name = "layernorm"

    def __init__(self, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> None:
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float64)
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float64)
        self.eps = float(eps)
        if not self.eps > 0:
            raise ValueError("LayerNorm needs eps > 0 (it keeps σ away from 0)")

    def _normalize(self, ctx: Any, z: Any) -> tuple[Any, Any]:
        """(d, σ) with d = z − μ and σ = √(var + ε)."""
        n = float(np.shape(z.lo if isinstance(z, Interval) else z)[-1])
        d = ctx.sub(z, ctx.div(ctx.sum(z), n))
        var = ctx.div(ctx.sum(ctx.square(d)), n)
        return d, ctx.sqrt(ctx.add(var, self.eps))

    def algorithm(self, ctx: Any, z: Any) -> Any:
        d, sigma = self._normalize(ctx, z)
        y = ctx.div(d, sigma)
        if self.weight is not None:
            y = ctx.mul(self.weight, y)
        if self.bias is not None:
            y = ctx.add(y, self.bias)
        return y

    def _w(self, n: int) -> np.ndarray:
        return np.ones(n) if self.weight is None else np.broadcast_to(np.abs(self.weight), (n,))

    def _point(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, sigma = self._normalize(FLOAT64, z)
        return d / sigma, sigma

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        x, sigma = self._point(z)
        n = z.shape[-1]
        w = np.ones(n) if self.weight is None else self.weight
        inner = np.eye(n) - 1.0 / n - x[..., :, None] * x[..., None, :] / n
        return (w[:, None] / sigma[..., None]) * inner

    def first_order(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        x, sigma = self._point(z_hat)
        n = z_hat.shape[-1]
        diag = np.abs(1 - 1.0 / n - x * x / n)
        off = abs_affine_sums(x, beta) - np.abs(1 + x * x) * beta
        return self._w(n) / sigma * (diag * beta + np.maximum(off, 0.0) / n)

    def abs_vjp(self, z_hat: np.ndarray, v: np.ndarray) -> np.ndarray:
        x, sigma = self._point(z_hat)
        n = z_hat.shape[-1]
        vw = v * self._w(n) / sigma
        off = abs_affine_sums(x, vw) - np.abs(1 + x * x) * vw
        return vw * np.abs(1 - 1.0 / n - x * x / n) + np.maximum(off, 0.0) / n

    def rigorous(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        n = z_hat.shape[-1]
        exact = Intervals()
        d_box, sigma_box = self._normalize(exact, Interval.around(z_hat, beta))
        x_box = d_box / sigma_box
        d_pt, sigma_pt = self._normalize(exact, Interval(z_hat))
        x_pt = d_pt / sigma_pt
        x = 0.5 * x_pt.lo + 0.5 * x_pt.hi
        r = np.maximum(up(x_box.hi - x), up(x - x_box.lo))
        sigma_min = sigma_box.lo
        ax = np.abs(x)
        total = abs_affine_sums(x, beta) - np.abs(1 + x * x) * beta
        # float64 errors of the prefix sums (signed terms) and of a sign split within rounding of 0
        margin = (2 * n + 8) * 2 * _U64 * (np.sum(beta, -1, keepdims=True) + ax * np.sum(ax * beta, -1, keepdims=True))
        a = np.maximum(total, 0.0) + margin
        rb = Interval(r * beta).excluded_sums().hi  # Σ_{j≠i} r_jβ_j (products of floats: the inflation below)
        xrb = Interval((ax + r) * beta).excluded_sums().hi  # Σ_{j≠i} (|x_j| + r_j)β_j
        diag = np.abs(1 - 1.0 / n - x * x / n) + (2 * ax * r + r * r) / n + 4 * _U64 * (1 + x * x / n)
        inner = diag * beta + (a + ax * rb + r * xrb) / n
        with np.errstate(divide="ignore"):
            bound = self._w(n) / sigma_min * inner
        bound = up(bound * (1 + (4 * n + 64) * 2 * _U64))
        return np.where((sigma_min > 0) & np.isfinite(bound), bound, np.inf)
