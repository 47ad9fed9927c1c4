"""GPT-2 hyper-parameters, read from and written to Hugging Face ``config.json`` dictionaries.

Only the architecture that ``transformers``' ``GPT2LMHeadModel`` implements with its default attention is
accepted: pre-LayerNorm blocks, learned absolute positions, causal self-attention, a tanh-approximated GELU,
and (by default) an output head tied to the token embedding. A configuration asking for anything else
(cross-attention, another activation) is refused with a message, rather than run with silently different
semantics.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lampnum.gpt2.errors import ConfigError

__all__ = ["ConfigError", "GPT2Config", "read_config"]

#: Activations accepted for ``activation_function``: both are 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")
_REQUIRED = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")


@dataclass(frozen=True)
class GPT2Config:
    """Shape and semantics of a GPT-2 model (names as in ``transformers.GPT2Config``).

    ``n_inner`` is the MLP width (``4·n_embd`` when the Hugging Face file says ``null``). The attention logits
    of layer ``l`` are scaled by ``attn_scale(l)``: ``1/√d_head`` when ``scale_attn_weights``, further divided
    by ``l + 1`` when ``scale_attn_by_inverse_layer_idx``. LayerNorm adds ``layer_norm_epsilon`` to the biased
    variance.
    """

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    n_inner: int
    layer_norm_epsilon: float = 1e-5
    activation_function: str = "gelu_new"
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    tie_word_embeddings: bool = True

    def __post_init__(self) -> None:
        for name in (*_REQUIRED, "n_inner"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd = {self.n_embd} is not divisible by n_head = {self.n_head}")
        eps = self.layer_norm_epsilon
        if (
            isinstance(eps, bool)
            or not isinstance(eps, (int, float))
            or not (math.isfinite(eps) and eps >= 0)
        ):
            raise ConfigError(f"layer_norm_epsilon must be a finite number >= 0, got {eps!r}")
        if self.activation_function not in TANH_GELUS:
            raise ConfigError(
                f"activation_function {self.activation_function!r} is not supported; lampnum implements "
                f"GPT-2's tanh-approximated GELU, named one of {TANH_GELUS}"
            )
        for name in ("scale_attn_weights", "scale_attn_by_inverse_layer_idx", "tie_word_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")

    @property
    def d_head(self) -> int:
        """Width of one attention head, ``n_embd // n_head``."""
        return self.n_embd // self.n_head

    def attn_scale(self, layer: int) -> float:
        """Factor applied to the attention logits ``q·k`` of block ``layer`` (0-based) before the softmax."""
        scale = self.d_head**-0.5 if self.scale_attn_weights else 1.0
        return scale / (layer + 1) if self.scale_attn_by_inverse_layer_idx else scale

    @classmethod
    def from_dict(cls, d: Any, source: str = "config") -> GPT2Config:
        """Build from a Hugging Face ``config.json`` dictionary; unknown keys (training settings) are ignored.

        The five shape keys are required (``transformers`` would fill in GPT-2-small defaults; a silent
        default here would only move the error to a confusing weight-shape mismatch). ``n_ctx``, the older
        name of ``n_positions``, must agree with it when both are present.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(d).__name__}")
        model_type = d.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise ConfigError(f"{source}: model_type is {model_type!r}, not 'gpt2'")
        if d.get("add_cross_attention", False):
            raise ConfigError(f"{source}: add_cross_attention is set; lampnum implements decoder-only GPT-2")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise ConfigError(f"{source}: missing required key(s) {missing}")
        if "n_ctx" in d and d["n_ctx"] != d["n_positions"]:
            raise ConfigError(
                f"{source}: n_ctx = {d['n_ctx']!r} disagrees with n_positions = {d['n_positions']!r}"
            )
        n_inner = d.get("n_inner")
        if n_inner is None and isinstance(d["n_embd"], int):
            n_inner = 4 * d["n_embd"]
        fields: dict[str, Any] = {k: d[k] for k in _REQUIRED}
        fields["n_inner"] = n_inner
        for k in (
            "layer_norm_epsilon",
            "activation_function",
            "scale_attn_weights",
            "scale_attn_by_inverse_layer_idx",
            "tie_word_embeddings",
        ):
            if k in d:
                fields[k] = d[k]
        try:
            return cls(**fields)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` dictionary that ``transformers.GPT2Config`` reads back to this model."""
        d: dict[str, Any] = asdict(self)
        d.update(model_type="gpt2", architectures=["GPT2LMHeadModel"], n_ctx=self.n_positions)
        return d


def read_config(path: str | Path) -> GPT2Config:
    """Read and validate a ``config.json`` file; every failure is a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (a GPT-2 directory needs config.json)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    return GPT2Config.from_dict(d, source=str(path))
