"""Accuracy of a low-precision forward pass against a reference (as in the LAMP paper), and perplexity.

All functions compute in float64 and take logits [..., n_seq, vocab_size] (any leading batch dimensions; every
position is weighted equally). Non-finite test logits are not hidden: a position whose logits contain NaN
gives a NaN divergence, and the mean over positions is then NaN.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["cross_entropy", "flip_rate", "kl_divergence", "log_softmax", "perplexity"]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log softmax`` over the last axis in float64, shifted by the row maximum."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def _check_pair(ref: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, test = np.asarray(ref), np.asarray(test)
    if ref.shape != test.shape or ref.ndim < 1:
        raise ValueError(
            f"reference and test logits must have one shape [..., vocab], got {ref.shape}, {test.shape}"
        )
    if not np.all(np.isfinite(ref)):
        raise ValueError("the reference logits contain non-finite values")
    return ref, test


def _expm1_minus_x(r: np.ndarray) -> np.ndarray:
    """``e^r − 1 − r`` without cancellation: a Taylor series for ``|r| < 1/2``, ``expm1(r) − r`` beyond."""
    out = np.expm1(r) - r
    small = np.abs(r) < 0.5
    x = r[small]
    poly = np.full_like(x, 1.0 / math.factorial(18))
    for k in range(15, -1, -1):  # Σ_{k=0}^{16} x^k / (k+2)!, truncation below 1e-22 relative
        poly = poly * x + 1.0 / math.factorial(k + 2)
    out[small] = x * x * poly
    return out


def kl_divergence(ref_logits: np.ndarray, test_logits: np.ndarray) -> float:
    """``KL(p_ref ‖ p_test)`` in nats, averaged over positions.

    Per position ``KL = Σ_v p(v)·(e^{r(v)} − 1 − r(v))`` with ``r = log p_test − log p_ref``: equal to
    ``Σ p·(log p − log q)`` because ``Σ p·e^r = Σ q = 1``, but a sum of non-negative terms, so KL ≈ ½Σ p·r²
    keeps its relative accuracy (about ``1e-16·max|log p| / max|r|``) even when it is far below the rounding
    level of the textbook formula. A test probability 0 where the reference's is not gives ``inf``.
    """
    ref, test = _check_pair(ref_logits, test_logits)
    lp, lq = log_softmax(ref), log_softmax(test)
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):  # inf - inf where the test logits are infinite: NaN, reported as such
        terms = p * _expm1_minus_x(lq - lp)
    per_position = np.sum(np.where(p > 0, terms, 0.0), axis=-1)
    return float(np.mean(per_position))


def flip_rate(ref_logits: np.ndarray, test_logits: np.ndarray) -> float:
    """Fraction of positions whose argmax token differs from the reference's."""
    ref, test = _check_pair(ref_logits, test_logits)
    return float(np.mean(np.argmax(ref, axis=-1) != np.argmax(test, axis=-1)))


def cross_entropy(logits: np.ndarray, ids: np.ndarray) -> float:
    """Mean next-token loss in nats: position ``t`` predicts ``ids[..., t+1]`` (the last predicts nothing)."""
    logits, ids = np.asarray(logits), np.asarray(ids)
    if logits.shape[:-1] != ids.shape or ids.shape[-1] < 2:
        raise ValueError(f"logits {logits.shape} must be [..., n_seq, vocab] for ids {ids.shape}, n_seq >= 2")
    lp = log_softmax(logits[..., :-1, :])
    target = ids[..., 1:]
    return float(-np.mean(np.take_along_axis(lp, target[..., None], axis=-1)))


def perplexity(logits: np.ndarray, ids: np.ndarray) -> float:
    """``exp(cross_entropy(logits, ids))``."""
    return float(np.exp(cross_entropy(logits, ids)))
