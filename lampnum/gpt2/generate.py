"""Autoregressive generation with a key/value cache: greedy, temperature and top-k sampling.

The prompt is run once; each new token then costs one forward pass over that token alone, attending to the
cached keys and values of every earlier position. Under an emulated policy every output element of every
product is computed independently, so cached decoding gives the logits a full recomputation would; under
native BLAS policies (fp64, fp32) the two agree to rounding, not bit for bit (BLAS may block a 1-row product
differently).
"""

from __future__ import annotations

import numpy as np

from lampnum.gpt2.model import GPT2
from lampnum.gpt2.policy import Policy

__all__ = ["generate", "sample_next"]


def sample_next(
    logits: np.ndarray,
    temperature: float = 0.0,
    top_k: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Next token ids [...] from last-position logits [..., vocab_size].

    ``temperature == 0`` is greedy (the lowest id among equal maxima, as ``argmax``). Otherwise the ids are
    drawn from ``softmax(logits / temperature)`` restricted to the ``top_k`` largest logits (all when None),
    by inverse-CDF sampling with one ``rng.random()`` per sequence; ``rng`` is then required.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if top_k is not None and not 1 <= top_k <= logits.shape[-1]:
        raise ValueError(f"top_k must lie in 1..{logits.shape[-1]}, got {top_k}")
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError("sampling with temperature > 0 needs rng, a numpy.random.Generator")
    z = logits / temperature
    if top_k is not None:
        kth = np.partition(z, -top_k, axis=-1)[..., -top_k, None]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z - np.max(z, axis=-1, keepdims=True))
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(size=(*cdf.shape[:-1], 1)) * cdf[..., -1:]
    return np.minimum(np.sum(cdf <= u, axis=-1), logits.shape[-1] - 1)


def generate(
    model: GPT2,
    ids: object,
    n_new: int,
    *,
    policy: Policy | None = None,
    temperature: float = 0.0,
    top_k: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Extend ``ids`` [..., n_prompt] by ``n_new`` tokens; returns [..., n_prompt + n_new] (int64).

    ``policy=None`` decodes with the float64 reference. Sampling arguments as in :func:`sample_next`. Raises
    ``ValueError`` if the result would exceed the model's ``n_positions``.
    """
    if isinstance(n_new, bool) or not isinstance(n_new, (int, np.integer)) or n_new < 0:
        raise ValueError(f"n_new must be an integer >= 0, got {n_new!r}")
    ids = np.asarray(ids)
    if ids.ndim >= 1 and ids.shape[-1] + n_new > model.config.n_positions:
        raise ValueError(
            f"{ids.shape[-1]} prompt + {n_new} new tokens exceed the model's "
            f"n_positions = {model.config.n_positions}"
        )
    out = [ids.astype(np.int64)]
    if n_new == 0:
        return out[0]
    logits, cache = model.forward(ids, policy)
    for step in range(n_new):
        nxt = sample_next(logits[..., -1, :], temperature, top_k, rng)[..., None]  # [..., 1]
        out.append(nxt)
        if step + 1 < n_new:
            logits, cache = model.forward(nxt, policy, cache)
    return np.concatenate(out, axis=-1)
