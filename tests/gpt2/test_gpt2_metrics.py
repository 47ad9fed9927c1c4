"""Metrics against independent computations (scipy, torch, mpmath)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from scipy.special import rel_entr, softmax

from lampnum.gpt2.metrics import cross_entropy, flip_rate, kl_divergence, log_softmax, perplexity


def test_kl_matches_scipy_for_ordinary_divergences() -> None:
    rng = np.random.default_rng(0)
    ref, test = rng.normal(size=(2, 7, 30)) * 3, rng.normal(size=(2, 7, 30)) * 3
    expected = np.mean(np.sum(rel_entr(softmax(ref, -1), softmax(test, -1)), axis=-1))
    assert kl_divergence(ref, test) == pytest.approx(expected, rel=1e-12)
    assert kl_divergence(ref, ref) == 0.0
    assert 0.0 <= kl_divergence(ref, ref + 5.0) < 1e-28  # shift invariance, up to rounding of ref + 5


def mp_kl(ref: np.ndarray, test: np.ndarray) -> float:
    ctx = mpmath.MPContext()
    ctx.dps = 60
    total = ctx.mpf(0)
    for a, b in zip(ref.reshape(-1, ref.shape[-1]), test.reshape(-1, test.shape[-1]), strict=True):
        la, lb = [ctx.mpf(float(v)) for v in a], [ctx.mpf(float(v)) for v in b]
        za, zb = ctx.log(ctx.fsum(ctx.exp(v) for v in la)), ctx.log(ctx.fsum(ctx.exp(v) for v in lb))
        total += ctx.fsum(ctx.exp(x - za) * ((x - za) - (y - zb)) for x, y in zip(la, lb, strict=True))
    return float(total / (ref.size // ref.shape[-1]))


@pytest.mark.parametrize("delta", [1e-3, 1e-6, 1e-9])
def test_kl_keeps_relative_accuracy_for_tiny_divergences(delta) -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(3, 40)) * 4
    test = ref + delta * rng.normal(size=ref.shape)
    assert kl_divergence(ref, test) == pytest.approx(mp_kl(ref, test), rel=1e-6)


def test_kl_infinite_and_nan() -> None:
    ref = np.array([[0.0, 1.0, 2.0]])
    assert kl_divergence(ref, np.array([[0.0, -np.inf, 2.0]])) == np.inf
    assert np.isnan(kl_divergence(ref, np.array([[0.0, np.nan, 2.0]])))
    with pytest.raises(ValueError, match="reference logits contain non-finite"):
        kl_divergence(np.array([[0.0, np.nan]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="one shape"):
        kl_divergence(np.zeros((2, 3)), np.zeros((3, 3)))


def test_log_softmax_matches_scipy() -> None:
    x = np.random.default_rng(2).normal(size=(4, 11)) * 50
    from scipy.special import log_softmax as scipy_log_softmax

    np.testing.assert_allclose(log_softmax(x), scipy_log_softmax(x, axis=-1), rtol=1e-14, atol=1e-12)


def test_flip_rate() -> None:
    ref = np.array([[[0, 1, 0], [2, 0, 0], [0, 0, 3], [1, 0, 0]]], dtype=float)
    test = np.array([[[0, 1, 0], [0, 2, 0], [0, 0, 3], [0, 0, 1]]], dtype=float)
    assert flip_rate(ref, test) == 0.5


def test_cross_entropy_and_perplexity_match_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits, ids = rng.normal(size=(2, 9, 13)), rng.integers(0, 13, (2, 9))
    expected = torch.nn.functional.cross_entropy(
        torch.as_tensor(logits[:, :-1].reshape(-1, 13)), torch.as_tensor(ids[:, 1:].reshape(-1))
    ).item()
    assert cross_entropy(logits, ids) == pytest.approx(expected, rel=1e-13)
    assert perplexity(logits, ids) == pytest.approx(np.exp(expected), rel=1e-13)
    with pytest.raises(ValueError, match="n_seq >= 2"):
        cross_entropy(logits[:, :1], ids[:, :1])
