"""Fixtures for the GPT-2 tests: tiny configurations and models with non-neutral random parameters."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from lampnum.gpt2 import GPT2, GPT2Config
from lampnum.gpt2.weights import random_params

TINY = dict(vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=4)


@pytest.fixture
def make_config() -> Callable[..., GPT2Config]:
    """``make_config(**overrides)``: a tiny GPT2Config (vocab 100, 64 positions, d 32, 2 layers, 4 heads)."""

    def make(**overrides: object) -> GPT2Config:
        fields = {**TINY, **overrides}
        fields.setdefault("n_inner", 4 * fields["n_embd"])
        return GPT2Config(**fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_model(make_config: Callable[..., GPT2Config]) -> Callable[..., GPT2]:
    """``make_model(seed=0, std=0.3, **overrides)``: a tiny GPT2 with float64 random parameters."""

    def make(seed: int = 0, std: float = 0.3, **overrides: object) -> GPT2:
        config = make_config(**overrides)
        return GPT2(config, random_params(config, np.random.default_rng(seed), std=std, dtype=np.float64))

    return make


@pytest.fixture
def tiny_model(make_model: Callable[..., GPT2]) -> GPT2:
    return make_model()
