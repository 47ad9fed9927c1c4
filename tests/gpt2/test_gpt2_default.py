"""The shipped model (lampnum/gpt2/data) loads offline with its tokenizer; skipped when not installed."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

import lampnum.gpt2 as g
from lampnum.gpt2.tokenizer import load_tokenizer

DATA = resources.files("lampnum.gpt2") / "data"
pytestmark = pytest.mark.skipif(
    not (DATA / "model.safetensors").is_file(), reason="shipped GPT-2 not installed"
)


def test_shipped_model_and_tokenizer() -> None:
    model = g.load_default()
    tok = load_tokenizer()
    assert tok.vocab_size <= model.config.vocab_size
    text = "The model was trained on a small corpus."
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    logits = model.logits(ids)
    assert logits.shape == (len(ids), model.config.vocab_size) and np.all(np.isfinite(logits))
    eval_tokens = DATA / "eval_tokens.npy"
    if eval_tokens.is_file():
        from lampnum.gpt2.metrics import perplexity

        with resources.as_file(eval_tokens) as path:
            ids = np.load(path, allow_pickle=False)[: min(256, model.config.n_positions)]
        assert (
            perplexity(model.logits(ids), ids) < 0.5 * model.config.vocab_size
        )  # better than uniform guessing
