"""The shipped model (lampnum/gpt2/data) loads offline, and its float64 forward reproduces the reference
figures torch computed at training time (metrics.json)."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

import lampnum.gpt2 as g
from lampnum.gpt2.metrics import cross_entropy
from lampnum.gpt2.tokenizer import load_tokenizer

DATA = resources.files("lampnum.gpt2") / "data"


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


def test_heldout_loss_matches_the_model_card() -> None:
    """The whole held-out file through lampnum's float64 forward gives the model card's loss (to 1e-6), far below
    ln(vocabulary): the model is trained."""
    with resources.as_file(DATA / "metrics.json") as path:
        ref = json.loads(path.read_text(encoding="utf-8"))
    card = (DATA / "MODEL_CARD.md").read_text(encoding="utf-8")
    card_loss = float(next(line for line in card.splitlines() if line.startswith("heldout_loss_float64:")).split(":")[1])
    with resources.as_file(DATA / "eval_tokens.npy") as path:
        windows = np.load(path, allow_pickle=False).astype(np.int64)
    model = g.load_default()
    losses = [cross_entropy(model.logits(window), window) for window in windows]  # equal lengths: plain mean
    loss = float(np.mean(losses))
    assert loss == pytest.approx(card_loss, abs=1e-6)
    assert loss == pytest.approx(ref["heldout_loss_float64"], abs=1e-6)
    assert loss < 0.25 * np.log(model.config.vocab_size)
