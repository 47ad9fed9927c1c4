"""``analyze``: the error of f(ẑ) when ẑ carries a componentwise error bound β (LAMP-MATH.md §2), in one report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..formats import Format
from ..rounding.modes import RoundingMode
from .base import Primitive, as_beta, as_input
from .numeric import Function

__all__ = ["Report", "analyze", "as_primitive"]


@dataclass(frozen=True)
class Report:
    """The analysis of f at ẑ with |ẑ − z| ≤ β (every bound componentwise, on f's output unless said otherwise).

    value: f(ẑ) in float64. first_order: |J_f(ẑ)|·β, the first-order bound on |f(ẑ) − f(z)| (it may be exceeded
    by O(‖β‖²) only). rigorous: a bound on |f(ẑ) − f(z)| that always holds (None when f is a plain callable without
    ``jac_bound``). contributions: per *input* component j, (1ᵀ|J_f(ẑ)|)_j·β_j, how much of the first-order output
    error (ℓ1) component j drives: what LAMP ranks. own: a bound on f's own rounding error when evaluated in ``fmt``
    (None without ``fmt``). method: how ``rigorous`` was obtained.
    """

    value: np.ndarray
    first_order: np.ndarray
    rigorous: np.ndarray | None
    contributions: np.ndarray
    own: np.ndarray | None
    method: str

    @property
    def total(self) -> np.ndarray | None:
        """rigorous + own: a bound on |f evaluated in the format at ẑ − f(z)|."""
        if self.rigorous is None:
            return None
        return self.rigorous if self.own is None else np.nextafter(self.rigorous + self.own, np.inf)

    @property
    def total_first_order(self) -> np.ndarray:
        return self.first_order if self.own is None else self.first_order + self.own


_METHODS = {
    "softmax": "exact: the softmax ratio identity at the extreme corners of the box",
    "log_softmax": "exact: monotonicity of e_i + log Σ s_j e^{-e_j} in each e_j",
    "exp": "exact: e^z (e^beta - 1)",
    "gelu_tanh": "mean-value theorem, sup |g'| over the box by interval evaluation",
    "gelu_erf": "mean-value theorem, sup |g'| over the box by interval evaluation",
    "scale": "exact (linear)",
    "add": "exact (linear)",
    "linear": "exact (linear): beta @ |W|",
    "layernorm": "mean-value theorem, sup |J_ij| over the box by interval evaluation of x and sigma",
}


def as_primitive(f: Primitive | Callable[..., Any], jac: Callable[..., Any] | None = None,
                 jac_bound: Callable[..., Any] | None = None) -> Primitive:  # fmt: skip
    """A :class:`Primitive` as is, or a callable wrapped as :class:`~lampnum.compose.numeric.Function`."""
    if isinstance(f, Primitive):
        if jac is not None or jac_bound is not None:
            raise ValueError("jac and jac_bound are for plain callables; primitives carry their own Jacobians")
        return f
    return Function(f, jac=jac, jac_bound=jac_bound)


def analyze(
    f: Primitive | Callable[..., Any],
    z_hat: Any,
    beta: Any,
    *,
    jac: Callable[..., Any] | None = None,
    jac_bound: Callable[..., Any] | None = None,
    fmt: Format | str | None = None,
    mode: RoundingMode | str = "rne",
    accumulator: Format | str | None = None,
) -> Report:
    """Analyze f at ẑ = z + e, |e| ≤ β: first-order and rigorous bounds on |f(ẑ) − f(z)|, the per-component
    contributions, and (with ``fmt``) f's own rounding error when evaluated in ``fmt``/``mode`` with sums in
    ``accumulator``. ``f`` is a primitive (Softmax, LogSoftmax, GELU, LayerNorm, Linear, Exp, Scale, Add) or any numpy
    callable with optional ``jac``/``jac_bound`` (see :mod:`lampnum.compose.numeric`).

    >>> import numpy as np, lampnum.compose as lc
    >>> rep = lc.analyze(lc.Softmax(), np.array([2.0, 1.0, -1.0]), 1e-3)
    >>> np.round(rep.rigorous / rep.first_order, 4)    # the exact bound is first order plus O(β²)
    array([1.0004, 1.0005, 1.0009])
    >>> int(rep.contributions.argmax())               # 2 s_j (1 − s_j) β_j: the score nearest s = 1/2 matters most
    0
    """
    primitive = as_primitive(f, jac, jac_bound)
    z_hat = as_input(z_hat)
    if z_hat.ndim == 0:
        raise ValueError("z_hat must have at least one dimension")
    beta = as_beta(beta, z_hat.shape)
    rigorous = primitive.rigorous(z_hat, beta)
    evaluated = fmt is not None or getattr(primitive, "spec", None) is not None  # a Linear with its own MatmulSpec
    own = primitive.own_error(z_hat, fmt, mode, accumulator=accumulator) if evaluated else None
    method = _METHODS.get(primitive.name, "interval enclosure of f over the box (Moore)")
    if rigorous is None:
        method = "none: a plain callable without jac_bound has no rigorous bound"
    return Report(
        value=primitive(z_hat),
        first_order=primitive.first_order(z_hat, beta),
        rigorous=rigorous,
        contributions=primitive.contributions(z_hat, beta),
        own=own,
        method=method,
    )
