"""GPT-2 in numpy: checkpoints, tokenizer, a forward pass under per-site precision policies, metrics.

``load(path)`` reads a Hugging Face directory or a lampnum ``.npz``; ``load_default()`` the shipped model:

>>> import lampnum.gpt2 as g
>>> model = g.load_default()
>>> ids = g.load_tokenizer().encode("for i in range(10):")
>>> ref = model.logits(ids)                                     # policy None: the float64 reference
>>> out = model.run(ids, g.Policy.preset("paper", m_bits=10))   # QKᵀ accumulated with 10 mantissa bits
>>> out.logits.dtype, out.stats.calls["score"] == model.config.n_layer
(dtype('float32'), True)
>>> bool(0 < g.metrics.kl_divergence(ref, out.logits) < 0.1)
True
"""

from __future__ import annotations

import os
from importlib import resources

from lampnum.gpt2 import metrics
from lampnum.gpt2.config import GPT2Config
from lampnum.gpt2.errors import CheckpointError, ConfigError, SafetensorsError
from lampnum.gpt2.generate import generate
from lampnum.gpt2.model import GPT2, RunResult
from lampnum.gpt2.policy import (
    ELEMENTWISE_SITES,
    LAMP_SITES,
    MATMUL_SITES,
    PRESETS,
    Context,
    LampSite,
    Policy,
    RunStats,
)
from lampnum.gpt2.tokenizer import Tokenizer, load_tokenizer
from lampnum.gpt2.weights import read_checkpoint

__all__ = [
    "ELEMENTWISE_SITES",
    "GPT2",
    "LAMP_SITES",
    "LampSite",
    "MATMUL_SITES",
    "PRESETS",
    "CheckpointError",
    "ConfigError",
    "Context",
    "GPT2Config",
    "Policy",
    "RunResult",
    "RunStats",
    "SafetensorsError",
    "Tokenizer",
    "generate",
    "load",
    "load_default",
    "load_tokenizer",
    "metrics",
]


def load(path: str | os.PathLike[str]) -> GPT2:
    """Load a GPT-2 from a Hugging Face directory, a ``.safetensors`` file beside its config, or a lampnum
    ``.npz``.

    Raises :class:`CheckpointError` (a ``ValueError``) naming the file and key for anything it cannot load
    exactly; pickle-based files (``pytorch_model.bin`` …) are refused with the command that converts them.
    """
    return GPT2(*read_checkpoint(path), source=str(path))


def load_default() -> GPT2:
    """Load the small trained GPT-2 shipped in ``lampnum/gpt2/data/`` (works offline)."""
    data = resources.files("lampnum.gpt2") / "data"
    if not (data / "config.json").is_file() or not (data / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"the shipped GPT-2 is missing from {data} (expected config.json and model.safetensors); "
            "reinstall lampnum, or pass a model path"
        )
    with resources.as_file(data) as path:
        return load(path)
