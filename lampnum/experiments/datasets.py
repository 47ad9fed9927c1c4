"""Token sets of a sweep, and their float64 reference logits computed once and cached.

A :class:`Dataset` is a token source (a ``.npy`` of token ids, 1-D stream or 2-D rows; a text file, encoded
with the model's tokenizer; or ``"shipped"``, the shipped held-out tokens ``lampnum/gpt2/data/eval_tokens.npy``)
cut to ``n_seq`` sequences of ``n_tokens``, optionally with the tokens of each sequence shuffled by a seeded
``numpy.random.Generator`` (a control: the same tokens without the structure of text).

The reference of a dataset is the float64 forward pass over all its sequences in one batch, stored as
``reference-<key>.npy`` in the sweep's folder (float64 [n_seq, n_tokens, vocab]; 16 × 512 × 8192 takes
537 MB) and read memory-mapped by the cells.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "parse_dataset", "reference"]

SHIPPED = "shipped"


@dataclass(frozen=True)
class Dataset:
    """``n_seq`` sequences of ``n_tokens`` from ``path`` (see the module docstring); ``shuffle_seed`` None
    keeps the order of the text.

    >>> Dataset("shipped", 2, 8).label()
    'shipped[2x8]'
    >>> Dataset("shipped", 2, 8, shuffle_seed=3).ids().shape
    (2, 8)
    """

    path: str = SHIPPED
    n_seq: int = 16
    n_tokens: int = 512
    shuffle_seed: int | None = None

    def __post_init__(self) -> None:
        if self.n_seq < 1 or self.n_tokens < 1:
            raise ValueError(f"a dataset needs n_seq >= 1 and n_tokens >= 1, got {self.n_seq}, {self.n_tokens}")
        if self.path != SHIPPED and not Path(self.path).is_file():
            raise FileNotFoundError(f"no token or text file {self.path!r}")

    def label(self) -> str:
        """A short readable name: file stem, shape, and ``+shuffled(seed)`` for shuffled tokens."""
        stem = SHIPPED if self.path == SHIPPED else Path(self.path).stem
        tail = "" if self.shuffle_seed is None else f"+shuffled({self.shuffle_seed})"
        return f"{stem}[{self.n_seq}x{self.n_tokens}]{tail}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def key(self) -> str:
        """A stable identifier of the configuration (the reference cache's file name uses it)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def _tokens(self) -> np.ndarray:
        if self.path == SHIPPED:
            return np.load(resources.files("lampnum.gpt2") / "data" / "eval_tokens.npy", allow_pickle=False)
        path = Path(self.path)
        if path.suffix == ".npy":
            ids = np.load(path, allow_pickle=False)
            if ids.ndim not in (1, 2) or ids.dtype.kind not in "iu":
                raise ValueError(f"{path}: expected a 1-D or 2-D integer array of token ids, got {ids.dtype} {ids.shape}")
            return ids
        from lampnum.gpt2.tokenizer import load_tokenizer

        return load_tokenizer(None).encode(path.read_text(encoding="utf-8"))

    def ids(self) -> np.ndarray:
        """The token ids, int64 [n_seq, n_tokens]; ``ValueError`` when the source is too short."""
        ids = self._tokens().astype(np.int64)
        if ids.ndim == 1:
            n = len(ids) // self.n_tokens
            ids = ids[: n * self.n_tokens].reshape(n, self.n_tokens)
        if ids.shape[0] < self.n_seq or ids.shape[1] < self.n_tokens:
            raise ValueError(
                f"{self.label()}: the source holds {ids.shape[0]} sequences of {ids.shape[1]} tokens, "
                f"fewer than {self.n_seq} x {self.n_tokens}"
            )
        ids = np.ascontiguousarray(ids[: self.n_seq, : self.n_tokens])
        if self.shuffle_seed is not None:
            ids = np.random.default_rng(self.shuffle_seed).permuted(ids, axis=1)
        return ids


def parse_dataset(text: str, shuffle_seed: int | None = None) -> Dataset:
    """``PATH[:N_SEQ[:N_TOKENS]]`` (``PATH`` may be ``shipped``), defaults 16 and 512."""
    parts = text.rsplit(":", 2)
    numbers: list[int] = []
    while len(parts) > 1 and parts[-1].isdigit():
        numbers.insert(0, int(parts.pop()))
    path = ":".join(parts)
    n_seq, n_tokens = (numbers + [16, 512][len(numbers) :])[:2]
    return Dataset(path, n_seq, n_tokens, shuffle_seed)


def reference(dataset: Dataset, folder: Path | None, model, save: bool = True) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The float64 reference logits of ``dataset`` under ``model``, from ``folder``'s cache when present
    (memory-mapped, read-only), else computed in one batch and (``save`` and a folder given) saved there
    first. Workers pass ``save=False``: on a cluster the sweep's folder may not exist on their machine."""
    path = None if folder is None else Path(folder) / f"reference-{dataset.key()}.npy"
    if path is not None and path.exists():
        return np.load(path, mmap_mode="r")
    logits = model.logits(dataset.ids())
    if path is None or not save:
        return logits
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, logits)
    tmp.replace(path)  # atomic: a reader never sees half a file
    return np.load(path, mmap_mode="r")
