"""GPT-2's byte-level BPE tokenizer, read from a model directory through the ``tokenizers`` library.

A directory provides either ``tokenizer.json`` (the ``tokenizers`` serialisation, which ``transformers``
writes) or OpenAI's pair ``vocab.json`` + ``merges.txt``; from the pair the GPT-2 pipeline is assembled:
byte-level pre-tokenisation with GPT-2's split regex and no added prefix space, BPE, byte-level decoding.
Decoding the encoding of any text returns the text.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["Tokenizer", "load_tokenizer"]


def _tokenizers():  # type: ignore[no-untyped-def]
    try:
        import tokenizers
    except ImportError:
        raise ImportError(
            "the GPT-2 tokenizer needs the `tokenizers` package: pip install 'lampnum[gpt2]'"
        ) from None
    return tokenizers


class Tokenizer:
    """Text <-> token ids (int64 numpy arrays) with a ``tokenizers.Tokenizer`` underneath (``.backend``)."""

    def __init__(self, backend: object) -> None:
        self.backend = backend

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Read ``tokenizer.json``, or else ``vocab.json`` + ``merges.txt``, from directory ``path``."""
        tk = _tokenizers()
        path = Path(path)
        if (path / "tokenizer.json").is_file():
            try:
                return cls(tk.Tokenizer.from_file(str(path / "tokenizer.json")))
            except Exception as e:  # the Rust side raises a bare Exception on malformed files
                raise ValueError(f"{path / 'tokenizer.json'}: cannot read: {e}") from None
        vocab, merges = path / "vocab.json", path / "merges.txt"
        if not (vocab.is_file() and merges.is_file()):
            raise FileNotFoundError(f"{path}: no tokenizer.json, nor vocab.json + merges.txt")
        try:
            bpe = tk.models.BPE.from_file(str(vocab), str(merges))
        except Exception as e:
            raise ValueError(f"{path}: cannot read vocab.json / merges.txt: {e}") from None
        backend = tk.Tokenizer(bpe)
        backend.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        backend.decoder = tk.decoders.ByteLevel()
        return cls(backend)

    @property
    def vocab_size(self) -> int:
        """Number of ids, added special tokens included."""
        return int(self.backend.get_vocab_size(with_added_tokens=True))  # type: ignore[attr-defined]

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` (no special tokens added), int64 [n]."""
        encoding = self.backend.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]
        return np.asarray(encoding.ids, dtype=np.int64)

    def decode(self, ids: object) -> str:
        """The text of token ids ``ids`` (a 1-D integer sequence)."""
        a = np.asarray(ids)
        if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
            raise ValueError(
                f"decode takes a 1-D sequence of integer ids, got shape {a.shape}, dtype {a.dtype}"
            )
        if a.size and (a.min() < 0 or a.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size})")
        return str(self.backend.decode([int(i) for i in a], skip_special_tokens=False))  # type: ignore


def load_tokenizer(path: str | os.PathLike[str] | None = None) -> Tokenizer:
    """The tokenizer of model directory ``path``; ``None``: the shipped model's (``lampnum/gpt2/data``)."""
    if path is None:
        from importlib import resources

        data = resources.files("lampnum.gpt2") / "data"
        with resources.as_file(data) as p:
            return Tokenizer.from_dir(p)
    path = Path(path)
    return Tokenizer.from_dir(path.parent if path.is_file() else path)
