"""``lampnum gpt2 eval|generate`` through lampnum's command line (``lampnum.cli.main``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lampnum.gpt2 as g
from lampnum.cli import main
from lampnum.gpt2 import metrics
from lampnum.gpt2.generate import generate
from lampnum.gpt2.tokenizer import Tokenizer
from lampnum.gpt2.weights import write_hf_dir

tokenizers = pytest.importorskip("tokenizers")


def run(argv: list[str]) -> int:
    return main(argv)


@pytest.fixture
def model_dir(tmp_path, make_model):
    model = make_model(vocab_size=300)
    write_hf_dir(tmp_path / "m", model.config, model.params)
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        ["the cat sat on the mat; the dog sat on the log"] * 5, vocab_size=270, show_progress=False
    )
    bpe.save(str(tmp_path / "m" / "tokenizer.json"))
    return tmp_path / "m", model


def test_eval_on_token_file(model_dir, tmp_path, capsys) -> None:
    path, model = model_dir
    ids = np.random.default_rng(0).integers(0, 300, 100)
    np.save(tmp_path / "ids.npy", ids)
    args = [
        "gpt2",
        "eval",
        "--model",
        str(path),
        "--tokens",
        str(tmp_path / "ids.npy"),
        "--ctx",
        "32",
        "--json",
    ]
    assert run(args) == 0
    out = json.loads(capsys.readouterr().out)
    windows = ids[:96].reshape(3, 32)
    assert out["windows"] == 3 and out["policy"] == "fp64" and "kl_vs_fp64" not in out
    assert out["loss"] == pytest.approx(metrics.cross_entropy(model.logits(windows), windows), rel=1e-12)
    assert run(args + ["--policy", "fp32", "--windows", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    ref, test = model.logits(windows[:2]), model.logits(windows[:2], g.Policy.preset("fp32"))
    assert out["windows"] == 2 and out["kl_vs_fp64"] == pytest.approx(
        metrics.kl_divergence(ref, test), rel=1e-6
    )
    assert 0 < out["kl_vs_fp64"] < 1e-8


def test_eval_on_text_and_generate(model_dir, tmp_path, capsys) -> None:
    path, model = model_dir
    (tmp_path / "t.txt").write_text("the cat sat on the mat " * 10)
    assert (
        run(["gpt2", "eval", "--model", str(path), "--tokens", str(tmp_path / "t.txt"), "--ctx", "16"]) == 0
    )
    assert "perplexity" in capsys.readouterr().out
    assert run(["gpt2", "generate", "--model", str(path), "--prompt", "the dog", "-n", "5"]) == 0
    tok = Tokenizer.from_dir(path)
    assert capsys.readouterr().out == tok.decode(generate(model, tok.encode("the dog"), 5)) + "\n"


def test_bad_policy_and_short_input(model_dir, tmp_path, capsys) -> None:
    path, _ = model_dir
    with pytest.raises(SystemExit):
        run(["gpt2", "eval", "--tokens", "x.npy", "--policy", "fp7"])
    assert "unknown preset 'fp7'" in capsys.readouterr().err
    np.save(tmp_path / "few.npy", np.arange(5))
    with pytest.raises(SystemExit, match="fewer than one window"):
        run(["gpt2", "eval", "--model", str(path), "--tokens", str(tmp_path / "few.npy"), "--ctx", "32"])


def test_eval_on_windows_file(model_dir, tmp_path, capsys) -> None:
    """A 2-D .npy holds one window per row (as the shipped eval_tokens.npy); --ctx cuts the rows."""
    path, model = model_dir
    rows = np.random.default_rng(1).integers(0, 300, (3, 20)).astype(np.uint16)
    np.save(tmp_path / "rows.npy", rows)
    args = ["gpt2", "eval", "--model", str(path), "--tokens", str(tmp_path / "rows.npy"), "--json"]
    assert run(args + ["--ctx", "12"]) == 0
    out = json.loads(capsys.readouterr().out)
    windows = rows[:, :12].astype(np.int64)
    assert (out["windows"], out["ctx"]) == (3, 12)
    assert out["loss"] == pytest.approx(metrics.cross_entropy(model.logits(windows), windows), rel=1e-12)
