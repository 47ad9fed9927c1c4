"""The shipped model (lampnum/gpt2/data) loads offline, and its float64 forward reproduces the reference
figures torch computed at training time (metrics.json). Skipped where the data is not installed."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

import lampnum.gpt2 as g
from lampnum.gpt2.metrics import cross_entropy
from lampnum.gpt2.tokenizer import load_tokenizer

DATA = resources.files("lampnum.gpt2") / "data"
pytestmark = pytest.mark.skipif(
    not (DATA / "model.safetensors").is_file(), reason="shipped GPT-2 not installed"
)


def test_shipped_model_and_tokenizer() -> None:
    model, tok = g.load_default(), load_tokenizer()
    assert tok.vocab_size <= model.config.vocab_size
    text = "def mean(xs):\n    return sum(xs) / len(xs)\n"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert np.all(np.isfinite(model.logits(ids)))


def test_shipped_model_reproduces_the_training_reference() -> None:
    with resources.as_file(DATA / "metrics.json") as path:
        ref = json.loads(path.read_text(encoding="utf-8"))
    with resources.as_file(DATA / "eval_tokens.npy") as path:
        row = np.load(path, allow_pickle=False)[0]  # [n_windows, n_ctx]: rows are windows
    logits = g.load_default().logits(row)
    expected = ref["reference_logits_float64"]
    np.testing.assert_allclose(logits[0, :8], expected["row0_pos0_logits_first8"], rtol=1e-10, atol=0)
    np.testing.assert_allclose(logits[-1, :8], expected["row0_poslast_logits_first8"], rtol=1e-10, atol=0)
    assert cross_entropy(logits, row) == pytest.approx(ref["heldout_loss_float64_per_row"][0], rel=1e-10)
