"""Private float64 helpers of LAMP: masked softmax, GELU derivatives, LayerNorm Jacobian column norms.

These are small on purpose and private: ``lampnum.compose`` owns the Jacobians of the transformer primitives
(LAMP-MATH.md §2); once it lands, these helpers can be replaced by calls into it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

__all__ = ["masked_softmax", "gelu_derivative", "layernorm_column_norms"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_CUBIC = 0.044715


def masked_softmax(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Softmax of ``z`` along the last axis over the ``valid`` entries only (invalid entries get 0).

    Computed in float64 as ``exp(z - max) / Σ exp(z - max)`` with the max over the row's valid entries. A row
    with no valid entry is all zeros (not NaN).
    """
    shifted = np.where(valid, z, -np.inf)
    top = shifted.max(axis=-1, keepdims=True, initial=-np.inf)
    top[~np.isfinite(top)] = 0.0
    shifted -= top
    np.exp(shifted, out=shifted)
    total = shifted.sum(axis=-1, keepdims=True)
    return np.divide(shifted, total, out=np.zeros_like(shifted), where=total > 0)


def gelu_derivative(z: np.ndarray, approximate: str = "tanh") -> np.ndarray:
    """GELU′(z) in float64.

    ``approximate="tanh"`` is GPT-2's ``gelu_new``: ``g(x) = x/2·(1 + tanh(c(x + 0.044715x³)))``, ``c =
    √(2/π)``, so ``g′(x) = (1 + t)/2 + x/2·(1 − t²)·c(1 + 3·0.044715x²)`` with ``t = tanh(c(x +
    0.044715x³))``. ``approximate="none"`` is the exact GELU ``xΦ(x)``: ``g′(x) = Φ(x) + xφ(x)`` (LAMP-MATH.md
    §2).
    """
    x = np.asarray(z, dtype=np.float64)
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_CUBIC * x**3))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (
            1.0 + 3.0 * _GELU_TANH_CUBIC * x * x
        )
    if approximate == "none":
        return 0.5 * (1.0 + erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    raise ValueError(f"approximate must be 'tanh' or 'none', got {approximate!r}")


def layernorm_column_norms(z: np.ndarray, gamma: np.ndarray, eps: float) -> np.ndarray:
    """‖J_{:,j}‖₂ for every component j of the LayerNorm Jacobian at each row of ``z`` (last axis, length n).

    With ``σ = √(var(z) + eps)``, ``ẑ = (z − μ)/σ``, ``J = diag(γ)(1/σ)(I − 11ᵀ/n − ẑẑᵀ/n)`` (LAMP-MATH.md
    §2), column j is ``(γ/σ) ⊙ (e_j − (1 + ẑ_j ẑ)/n)``; expanding the square with ``G_k = Σ_i γ_i² ẑ_i^k``
    gives, in O(n) per row, ``σ²‖J_{:,j}‖² = γ_j²(1 − 2(1 + ẑ_j²)/n) + (G_0 + 2ẑ_j G_1 + ẑ_j² G_2)/n²``
    (clipped at 0 against rounding).
    """
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[-1]
    mean = z.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(((z - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    zhat = (z - mean) / sigma
    g2 = np.asarray(gamma, dtype=np.float64) ** 2
    g0 = g2.sum()
    g1 = (g2 * zhat).sum(axis=-1, keepdims=True)
    g2z = (g2 * zhat * zhat).sum(axis=-1, keepdims=True)
    square = g2 * (1.0 - 2.0 * (1.0 + zhat * zhat) / n) + (g0 + 2.0 * zhat * g1 + zhat * zhat * g2z) / (n * n)
    return np.sqrt(np.maximum(square, 0.0)) / sigma
