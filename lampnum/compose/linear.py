"""Linear layer y = z @ W + b (picoGPT's ``linear``; GPT-2's Conv1D weights are [n_in, n_out]).

J = Wᵀ along the last axis, so the first-order and the rigorous bound coincide: |W(ẑ − z)| ≤ β @ |W| exactly (one
BLAS product, rounded up). Column ℓ1 norms (contributions): β_j·Σ_i |W_ji|. In a format the layer is the emulated
matrix product :func:`lampnum.matmul` under a :class:`~lampnum.MatmulSpec` (default: inputs and weights rounded to
``fmt``, accumulation in ``accumulator`` or ``fmt``, output in ``fmt``), then the bias added with one rounding; its
own error is :func:`lampnum.bounds.matmul` plus that rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..bounds.elementwise import rounding_error
from ..bounds.growth import ETA64, inflate
from ..bounds.products import matmul as matmul_bound
from ..emulate.spec import MatmulSpec, as_spec
from ..formats import Format
from ..rounding.modes import RoundingMode
from .base import Primitive, as_input
from .contexts import Emulated, Intervals
from .interval import Interval

__all__ = ["Linear"]


class Linear(Primitive):
    """y = z @ W + b with W of shape [n_in, n_out] and an optional ``spec`` for its evaluation in low precision."""

    name = "linear"

    def __init__(self, W: Any, b: Any = None, spec: MatmulSpec | None = None) -> None:
        self.W = as_input(W, "W")
        if self.W.ndim != 2:
            raise ValueError(f"W must be a matrix [n_in, n_out], got shape {self.W.shape}")
        self.b = None if b is None else as_input(b, "b")
        self.spec = spec

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape[:-1] + (self.W.shape[1],)

    def algorithm(self, ctx: Any, z: Any) -> Any:
        """z @ W + b in float64, or its outward-rounded enclosure for interval arguments (exact contexts only: in a
        format the layer is the emulated matrix product, see :meth:`evaluate`)."""
        if isinstance(ctx, Intervals):
            y = (z if isinstance(z, Interval) else Interval(z)).matmul(self.W)
        else:
            y = np.asarray(z) @ self.W
        return y if self.b is None else y + self.b

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.W.T, z.shape[:-1] + self.W.T.shape)

    def first_order(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        return beta @ np.abs(self.W)

    def abs_vjp(self, z_hat: np.ndarray, v: np.ndarray) -> np.ndarray:
        return v @ np.abs(self.W).T

    def rigorous(self, z_hat: np.ndarray, beta: np.ndarray) -> np.ndarray:
        n = self.W.shape[0]
        return inflate(beta @ np.abs(self.W), n + 2, n)

    def _spec(self, fmt: Format | str | None, mode: RoundingMode | str,
              accumulator: Format | str | None) -> MatmulSpec:  # fmt: skip
        if self.spec is not None:
            return self.spec
        if fmt is None:
            raise ValueError("Linear needs a MatmulSpec (Linear(W, b, spec=...)) or a format to evaluate in")
        return as_spec(None, input=fmt, accumulator=accumulator or fmt, output=fmt, mode=mode)

    def evaluate(self, z: Any, fmt: Format | str | None = None, mode: RoundingMode | str = "rne", *,
                 rng: Any = None, accumulator: Format | str | None = None) -> np.ndarray:  # fmt: skip
        from ..emulate import matmul  # the emulated BLAS

        spec = self._spec(fmt, mode, accumulator)
        y = matmul(as_input(z, "z"), self.W, spec, rng=rng)
        if self.b is None:
            return y
        return Emulated(spec.output or spec.accumulator, spec.mode, rng).add(y, self.b)

    def own_error(self, z_hat: np.ndarray, fmt: Format | str | None = None, mode: RoundingMode | str = "rne", *,
                  accumulator: Format | str | None = None) -> np.ndarray:  # fmt: skip
        """bounds.matmul(ẑ, W, spec) (+ the bias addition's rounding, at |ẑW + b| + that bound)."""
        spec = self._spec(fmt, mode, accumulator)
        beta = np.asarray(matmul_bound(z_hat, self.W, spec))
        if self.b is None:
            return beta
        n = self.W.shape[0]
        size = inflate(np.abs(z_hat @ self.W + self.b) + (n + 4) * 2.0**-52 * (np.abs(z_hat) @ np.abs(self.W))
                       + np.abs(self.b) * 2.0**-52 + beta, 4, n) + ETA64  # fmt: skip
        return inflate(beta + rounding_error(size, spec.output or spec.accumulator, spec.mode), 1)
