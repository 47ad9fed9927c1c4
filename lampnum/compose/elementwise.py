"""Elementwise primitives: Exp, GELU (tanh form ``gelu_new`` and exact erf form), Scale, Add.

First order |f′(ẑ)|·β; rigorous by the mean-value theorem, sup_{w ∈ [ẑ−β, ẑ+β]} |f′(w)|·β with the sup enclosed by
interval evaluation of f′ (so rigorous − first order = O(β²)), except where an exact expression exists:
|e^ẑ − e^{ẑ−e}| ≤ e^ẑ·(e^β − 1) (attained at e = −β), and the linear Scale and Add.

GELU, tanh form (GPT-2's ``gelu_new``): g(x) = ½x(1 + tanh(c(x + k x³))), c = √(2/π), k = 0.044715;
g′(x) = ½(1 + t) + ½x(1 − t²)·c(1 + 3k x²), t = tanh(c(x + k x³)), evaluated as p + 2x·p·q·c(1 + 3k x²) with
p = (1 + t)/2 = 1/(1 + e^{−2y}), q = (1 − t)/2 = 1/(1 + e^{2y}), y = c(x + k x³) (no cancellation in either tail).
GELU, erf form: g(x) = ½x(1 + erf(x/√2)); g′(x) = Φ(x) + xφ(x) = ½erfc(−x/√2) + x e^{−x²/2}/√(2π).
Evaluated in a format, constants enter as their float64 values (c = 0.7978845608028654, k = 0.044715, 1/√2), each
operation correctly rounded; the exact reference uses the exact reals (enclosed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Elementwise
from .contexts import Constant, enclose
from .interval import Interval, up

__all__ = ["Exp", "GELU", "Scale", "Add"]

_C = enclose(math.sqrt(2.0 / math.pi), 2)  # √(2/π): two roundings in float64, so within 2 ulps
_K = enclose(0.044715, 1)  # the decimal 0.044715
_INV_SQRT2 = enclose(math.sqrt(0.5), 1)
_INV_SQRT_2PI = enclose(1.0 / math.sqrt(2.0 * math.pi), 3)


class Exp(Elementwise):
    """e^z elementwise."""

    name = "exp"

    def algorithm(self, ctx: Any, z: Any) -> Any:
        return ctx.exp(z)

    def derivative(self, ctx: Any, z: Any) -> Any:
        return ctx.exp(z)

    def rigorous(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """e^ẑ·(e^β − 1): the exact supremum of |e^ẑ − e^{ẑ−e}| over |e| ≤ β."""
        return up((Interval(z_hat).exp() * Interval(beta).expm1()).hi)


class GELU(Elementwise):
    """GELU with ``approximate="tanh"`` (GPT-2's ``gelu_new``, the default) or ``"none"`` (the exact erf form)."""

    def __init__(self, approximate: str = "tanh") -> None:
        if approximate not in ("tanh", "none"):
            raise ValueError(f"approximate must be 'tanh' or 'none', got {approximate!r}")
        self.approximate = approximate
        self.name = "gelu_tanh" if approximate == "tanh" else "gelu_erf"

    def algorithm(self, ctx: Any, z: Any) -> Any:
        half = ctx.mul(0.5, z)
        if self.approximate == "tanh":
            cube = ctx.mul(ctx.mul(z, z), z)
            inner = ctx.add(z, ctx.mul(ctx.const(_K), cube))
            t = ctx.tanh(ctx.mul(ctx.const(_C), inner))
        else:
            t = ctx.erf(ctx.mul(z, ctx.const(_INV_SQRT2)))
        return ctx.mul(half, ctx.add(1.0, t))

    def derivative(self, ctx: Any, z: Any) -> Any:
        square = ctx.square(z)
        if self.approximate == "tanh":  # with (1 + t)/2 = p = σ(2y), (1 − t)/2 = q = σ(−2y): no cancellation
            c, k = ctx.const(_C), ctx.const(_K)
            y2 = ctx.mul(2.0, ctx.mul(c, ctx.add(z, ctx.mul(k, ctx.mul(square, z)))))
            p = ctx.div(1.0, ctx.add(1.0, ctx.exp(ctx.mul(-1.0, y2))))
            q = ctx.div(1.0, ctx.add(1.0, ctx.exp(y2)))
            slope = ctx.mul(c, ctx.add(1.0, ctx.mul(ctx.mul(3.0, k), square)))
            return ctx.add(p, ctx.mul(ctx.mul(ctx.mul(2.0, z), ctx.mul(p, q)), slope))
        cdf = ctx.mul(0.5, ctx.erfc(ctx.mul(ctx.mul(-1.0, z), ctx.const(_INV_SQRT2))))  # Φ, accurate in the tails
        pdf = ctx.mul(ctx.const(_INV_SQRT_2PI), ctx.exp(ctx.mul(-0.5, square)))
        return ctx.add(cdf, ctx.mul(z, pdf))


class Scale(Elementwise):
    """c·z for a real constant c (the attention's 1/√d): J = cI, exact bounds |c|·β."""

    name = "scale"

    def __init__(self, c: float | Constant) -> None:
        self.c = c if isinstance(c, Constant) else Constant(float(c))

    def algorithm(self, ctx: Any, z: Any) -> Any:
        return ctx.mul(ctx.const(self.c), z)

    def derivative(self, ctx: Any, z: Any) -> Any:
        return ctx.add(ctx.mul(0.0, z), ctx.const(self.c))


class Add(Elementwise):
    """z + c for a constant array c (a residual connection): J = I, exact bounds β."""

    name = "add"

    def __init__(self, c: Any) -> None:
        self.c = np.asarray(c, dtype=np.float64)

    def algorithm(self, ctx: Any, z: Any) -> Any:
        return ctx.add(z, self.c)

    def derivative(self, ctx: Any, z: Any) -> Any:
        return ctx.add(ctx.mul(0.0, z), 1.0)
