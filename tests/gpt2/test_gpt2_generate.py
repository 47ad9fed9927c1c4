"""KV-cache decoding and sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

import lampnum.gpt2 as g
from lampnum.gpt2.generate import generate, sample_next


def test_cached_decoding_gives_the_full_forward_logits(tiny_model) -> None:
    ids = np.random.default_rng(0).integers(0, 100, (2, 12))
    full = tiny_model.logits(ids)
    logits, cache = tiny_model.forward(ids[:, :5])
    steps = [logits]
    for t in range(5, 12, 3):  # chunks of 3, 3, 1 tokens after the 5-token prompt
        logits, cache = tiny_model.forward(ids[:, t : t + 3], cache=cache)
        steps.append(logits)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=0, atol=1e-13 * np.abs(full).max())


def test_greedy_generation_is_argmax_of_the_uncached_forward(tiny_model) -> None:
    ids = np.array([[3, 1, 4], [1, 5, 9]])
    out = generate(tiny_model, ids, 10)
    expected = ids
    for _ in range(10):
        nxt = np.argmax(tiny_model.logits(expected)[:, -1], axis=-1)
        expected = np.concatenate([expected, nxt[:, None]], axis=1)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(generate(tiny_model, ids[0], 4), expected[0, :7])  # unbatched


def test_sampling_follows_the_tempered_distribution() -> None:
    logits = np.array([2.0, 1.0, 0.0, -1.0, 0.5])
    n = 20000
    draws = sample_next(np.tile(logits, (n, 1)), temperature=0.7, rng=np.random.default_rng(1))
    p = np.exp(logits / 0.7) / np.sum(np.exp(logits / 0.7))
    assert chisquare(np.bincount(draws, minlength=5), n * p).pvalue > 1e-3
    top2 = sample_next(np.tile(logits, (n, 1)), temperature=0.7, top_k=2, rng=np.random.default_rng(2))
    p2 = p[:2] / p[:2].sum()
    counts = np.bincount(top2, minlength=5)
    assert counts[2:].sum() == 0 and chisquare(counts[:2], n * p2).pvalue > 1e-3


def test_sampling_is_reproducible_and_needs_a_generator(tiny_model) -> None:
    ids = np.array([7, 8, 9])
    a = generate(tiny_model, ids, 6, temperature=1.0, top_k=5, rng=np.random.default_rng(3))
    b = generate(tiny_model, ids, 6, temperature=1.0, top_k=5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        generate(tiny_model, ids, 6, temperature=1.0, top_k=1, rng=np.random.default_rng(4)),
        generate(tiny_model, ids, 6),
    )  # top-1 sampling is greedy
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        generate(tiny_model, ids, 2, temperature=1.0)
    with pytest.raises(ValueError, match="top_k"):
        sample_next(np.zeros(4), temperature=1.0, top_k=5, rng=np.random.default_rng())


def test_context_and_id_validation(tiny_model) -> None:
    with pytest.raises(ValueError, match="exceed the model's n_positions = 64"):
        generate(tiny_model, np.arange(60), 5)
    with pytest.raises(ValueError, match="exceed the model's n_positions"):
        tiny_model.logits(np.zeros(65, dtype=int))
    with pytest.raises(ValueError, match=r"in \[0, 100\)"):
        tiny_model.logits([1, 100])
    with pytest.raises(TypeError, match="must be integers"):
        tiny_model.logits([1.0, 2.0])
    with pytest.raises(ValueError, match="n_seq >= 1"):
        tiny_model.logits(np.zeros((2, 0), dtype=int))
    assert generate(tiny_model, [1, 2], 0).tolist() == [1, 2]
    assert isinstance(tiny_model.run([1, 2, 3]), g.RunResult)
