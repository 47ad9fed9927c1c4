"""The tokenizer against OpenAI's GPT-2 ``encoder.py`` algorithm (reproduced below), and encode/decode round
trips.

The vocabulary is trained here with the ``tokenizers`` BPE trainer on a small corpus, so the test needs no
download.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampnum.gpt2.tokenizer import Tokenizer, load_tokenizer

tokenizers = pytest.importorskip("tokenizers")
regex = pytest.importorskip("regex")

CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 2024; they'll say we've done 3.14 things!",
    "Numerical analysis: rounding errors, γ_n = nu/(1-nu), bfloat16 and float8 (e4m3) formats.",
    "  Indented   text\twith tabs\nand newlines\n\n and üñíçødé, 数字, emoji 🙂🚀.",
] * 20
TEXTS = [
    "Hello world",
    "It's the fox's den, isn't it?",
    "  two  spaces   three\n\n\tend ",
    "über 数字 🙂 mixed 123 4567",
    "",
    " ",
    "a\nb",
    "unseen ζ words qwxz",
]


def openai_encoder(vocab: dict[str, int], merges: list[tuple[str, str]]):
    """GPT-2's encoder.py (OpenAI, MIT licence): byte-to-unicode map, GPT-2 regex, rank-ordered BPE merges."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_encoder = dict(zip(bs, map(chr, cs), strict=True))
    ranks = {m: i for i, m in enumerate(merges)}
    pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

    def bpe(token: str) -> tuple[str, ...]:
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:], strict=False))
            first, second = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if (first, second) not in ranks:
                break
            new, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        return word

    def encode(text: str) -> list[int]:
        out = []
        for token in regex.findall(pat, text):
            out += [vocab[t] for t in bpe("".join(byte_encoder[b] for b in token.encode("utf-8")))]
        return out

    return encode


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=400, min_frequency=2, show_progress=False)
    bpe.save_model(str(path))
    return path


def test_vocab_and_merges_match_openai_encoder(vocab_dir) -> None:
    vocab = json.loads((vocab_dir / "vocab.json").read_text(encoding="utf-8"))
    lines = (vocab_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    reference = openai_encoder(vocab, merges)  # type: ignore[arg-type]
    tok = Tokenizer.from_dir(vocab_dir)
    for text in TEXTS + CORPUS[:3]:
        assert tok.encode(text).tolist() == reference(text), text


def test_tokenizer_json_gives_the_same_ids(vocab_dir, tmp_path) -> None:
    from_pair = Tokenizer.from_dir(vocab_dir)
    from_pair.backend.save(str(tmp_path / "tokenizer.json"))  # type: ignore[attr-defined]
    from_json = load_tokenizer(tmp_path)
    for text in TEXTS:
        np.testing.assert_array_equal(from_json.encode(text), from_pair.encode(text))
    assert from_json.vocab_size == from_pair.vocab_size == 400


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_round_trip(vocab_dir, text) -> None:
    tok = Tokenizer.from_dir(vocab_dir)
    ids = tok.encode(text)
    assert ids.dtype == np.int64
    assert tok.decode(ids) == text


def test_errors(vocab_dir, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no tokenizer.json, nor vocab.json"):
        Tokenizer.from_dir(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{broken")
    with pytest.raises(ValueError, match="tokenizer.json: cannot read"):
        Tokenizer.from_dir(tmp_path)
    tok = Tokenizer.from_dir(vocab_dir)
    with pytest.raises(ValueError, match=r"in \[0, 400\)"):
        tok.decode([1, 400])
    with pytest.raises(ValueError, match="1-D sequence of integer ids"):
        tok.decode([[1, 2]])
