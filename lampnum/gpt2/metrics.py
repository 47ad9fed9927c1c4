"""Accuracy of a low-precision forward pass against a reference (as in the LAMP paper), and perplexity.

All functions compute in float64 and take logits [..., n_seq, vocab_size] (any leading batch dimensions; every
position is weighted equally). Non-finite test logits are not hidden: a position whose logits contain NaN
gives a NaN divergence, and the mean over positions is then NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cross_entropy", "flip_rate", "kl_and_flip_rate", "kl_divergence", "log_softmax", "perplexity"]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log softmax`` over the last axis in float64, shifted by the row maximum."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def _per_position(ref_logits: np.ndarray, test_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(KL, flip) per position from the fused kernel (:mod:`lampnum.gpt2.metrics_kernels`)."""
    from .metrics_kernels import kl_flip_rows

    ref, test = np.asarray(ref_logits), np.asarray(test_logits)
    if ref.shape != test.shape or ref.ndim < 1:
        raise ValueError(f"reference and test logits must have one shape [..., vocab], got {ref.shape}, {test.shape}")
    for name, a in (("reference", ref), ("test", test)):
        if a.dtype.kind != "f":
            raise TypeError(f"the {name} logits must be floating point, got {a.dtype}")
    vocab = ref.shape[-1]
    ref2 = np.ascontiguousarray(ref.reshape(-1, vocab))
    test2 = np.ascontiguousarray(test.reshape(-1, vocab))
    kl = np.empty(ref2.shape[0])
    flip = np.empty(ref2.shape[0])
    if ref2.shape[0] and vocab:
        if kl_flip_rows(ref2, test2, kl, flip):
            raise ValueError("the reference logits contain non-finite values")
    return kl, flip


def kl_divergence(ref_logits: np.ndarray, test_logits: np.ndarray) -> float:
    """``KL(p_ref ‖ p_test)`` in nats, averaged over positions.

    Per position ``KL = Σ_v p(v)·(e^{r(v)} − 1 − r(v))`` with ``r = log p_test − log p_ref``: equal to
    ``Σ p·(log p − log q)`` because ``Σ p·e^r = Σ q = 1``, but a sum of non-negative terms, so KL ≈ ½Σ p·r²
    keeps its relative accuracy (about ``1e-16·max|log p| / max|r|``) even when it is far below the rounding
    level of the textbook formula. A test probability 0 where the reference's is not gives ``inf``. One fused
    pass per position (:func:`lampnum.gpt2.metrics_kernels.kl_flip_rows`).
    """
    return float(np.mean(_per_position(ref_logits, test_logits)[0]))


def flip_rate(ref_logits: np.ndarray, test_logits: np.ndarray) -> float:
    """Fraction of positions whose argmax token differs from the reference's."""
    return float(np.mean(_per_position(ref_logits, test_logits)[1]))


def kl_and_flip_rate(ref_logits: np.ndarray, test_logits: np.ndarray) -> tuple[float, float]:
    """(:func:`kl_divergence`, :func:`flip_rate`) from one pass over the logits."""
    kl, flip = _per_position(ref_logits, test_logits)
    return float(np.mean(kl)), float(np.mean(flip))


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
