"""GPT-2 in numpy: checkpoints, tokenizer, a forward pass under per-site precision policies, metrics.

>>> model = load("path/to/hf_dir_or_export.npz")        # doctest: +SKIP
>>> logits = model.logits(ids)                          # float64 reference   # doctest: +SKIP
>>> out = model.run(ids, Policy.preset("bf16-acc"))     # emulated, with timings  # doctest: +SKIP
"""

from __future__ import annotations

import os
from importlib import resources

from lampnum.gpt2.config import GPT2Config
from lampnum.gpt2.errors import CheckpointError, ConfigError, SafetensorsError
from lampnum.gpt2.model import GPT2, RunResult
from lampnum.gpt2.policy import ELEMENTWISE_SITES, MATMUL_SITES, PRESETS, Context, Policy, RunStats
from lampnum.gpt2.weights import read_checkpoint

__all__ = [
    "ELEMENTWISE_SITES",
    "GPT2",
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
    "load",
    "load_default",
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
