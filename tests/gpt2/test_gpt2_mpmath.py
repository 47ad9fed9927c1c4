"""The float64 forward against the mpmath forward at 50 digits (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest

from lampnum.gpt2.mp_reference import mp_logits


@pytest.mark.parametrize("n_embd, n_head, seed", [(16, 2, 0), (32, 4, 1)])
def test_float64_forward_agrees_with_mpmath(make_model, n_embd, n_head, seed) -> None:
    model = make_model(seed=seed, std=0.5, n_embd=n_embd, n_head=n_head, n_inner=4 * n_embd, vocab_size=50)
    ids = np.random.default_rng(seed).integers(0, 50, 8)
    ref = mp_logits(model.params, model.config, ids, dps=50)
    got = model.logits(ids)
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert err <= 1e-12
    assert np.max(np.abs(ref)) > 1.0  # logits of a non-degenerate size, so the relative test means something


def test_float32_forward_is_float32_accurate(make_model) -> None:
    """The fp32 path is a float32 computation: error against mpmath of order u32, far above float64's."""
    import lampnum.gpt2 as g

    model = make_model(seed=2, std=0.5, vocab_size=50)
    ids = np.arange(8) * 3
    ref = mp_logits(model.params, model.config, ids, dps=50)
    err = np.max(np.abs(model.logits(ids, g.Policy.preset("fp32")) - ref)) / np.max(np.abs(ref))
    assert 1e-9 < err < 1e-4


def test_mpmath_rejects_low_precision(make_model) -> None:
    model = make_model()
    with pytest.raises(ValueError, match="dps must be >= 30"):
        mp_logits(model.params, model.config, [1, 2], dps=20)
