"""GPT-2's forward pass in mpmath arbitrary precision: the reference that validates the float64 forward.

Written independently of :mod:`lampnum.gpt2.model` (plain nested lists, no numpy arithmetic, no policy), from
the same semantics: embeddings, pre-LayerNorm blocks with causal attention and the tanh GELU, ``ln_f``, tied
head. The weights are taken exactly (every float16/32/64 value is an mpf); the result is exact to about
``dps`` digits apart from cancellation. Cost grows like ``n_layer·n_seq·n_embd²`` Python-level operations:
meant for tiny models (2 layers, n_embd 16–32, a few tokens take seconds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import mpmath
import numpy as np

from lampnum.gpt2.config import GPT2Config

__all__ = ["mp_logits"]

Vec = list  # of mpf
Mat = list  # of Vec (rows)


def mp_logits(
    params: Mapping[str, np.ndarray], config: GPT2Config, ids: Sequence[int], dps: int = 50
) -> np.ndarray:
    """Logits [n_seq, vocab_size] for one sequence ``ids``, computed at ``dps`` decimal digits, returned as
    float64 (each value correctly rounded from the ``dps``-digit result). Requires ``dps >= 30``."""
    if dps < 30:
        raise ValueError(f"dps must be >= 30 for a reference, got {dps}")
    ctx = mpmath.MPContext()  # a private context: no global precision state is touched
    ctx.dps = dps
    mpf = ctx.mpf

    def mat(name: str) -> Mat:
        a = np.asarray(params[name], dtype=np.float64)
        return [[mpf(float(v)) for v in row] for row in np.atleast_2d(a)]

    def vec(name: str) -> Vec:
        return [mpf(float(v)) for v in np.asarray(params[name], dtype=np.float64)]

    def linear(x: Mat, w: Mat, b: Vec) -> Mat:  # [n, k] @ [k, m] + [m]
        cols = list(zip(*w, strict=True))
        return [[ctx.fdot(row, col) + bj for col, bj in zip(cols, b, strict=True)] for row in x]

    def layer_norm(x: Mat, g: Vec, b: Vec) -> Mat:
        out = []
        for row in x:
            n = len(row)
            mean = ctx.fsum(row) / n
            var = ctx.fsum((v - mean) ** 2 for v in row) / n
            inv = 1 / ctx.sqrt(var + mpf(config.layer_norm_epsilon))
            out.append([gj * (v - mean) * inv + bj for v, gj, bj in zip(row, g, b, strict=True)])
        return out

    c = ctx.sqrt(2 / ctx.pi)

    def gelu(v: Any) -> Any:
        return v / 2 * (1 + ctx.tanh(c * (v + mpf(0.044715) * v**3)))

    wte, wpe = mat("wte.weight"), mat("wpe.weight")
    n_seq, n_head, d_head = len(ids), config.n_head, config.d_head
    x = [[a + b for a, b in zip(wte[t], wpe[i], strict=True)] for i, t in enumerate(ids)]
    for layer in range(config.n_layer):
        p = f"h.{layer}."
        h = layer_norm(x, vec(p + "ln_1.weight"), vec(p + "ln_1.bias"))
        qkv = linear(h, mat(p + "attn.c_attn.weight"), vec(p + "attn.c_attn.bias"))
        scale = mpf(1)
        if config.scale_attn_weights:
            scale /= ctx.sqrt(d_head)
        if config.scale_attn_by_inverse_layer_idx:
            scale /= layer + 1
        merged: Mat = [[] for _ in range(n_seq)]
        for hd in range(n_head):
            lo = hd * d_head
            q = [r[lo : lo + d_head] for r in qkv]
            k = [r[config.n_embd + lo : config.n_embd + lo + d_head] for r in qkv]
            v = [r[2 * config.n_embd + lo : 2 * config.n_embd + lo + d_head] for r in qkv]
            for i in range(n_seq):
                z = [ctx.fdot(q[i], k[j]) * scale for j in range(i + 1)]  # causal: keys 0..i
                zmax = max(z)
                e = [ctx.exp(zj - zmax) for zj in z]
                s = ctx.fsum(e)
                merged[i] += [ctx.fsum(e[j] * v[j][c_] for j in range(i + 1)) / s for c_ in range(d_head)]
        a = linear(merged, mat(p + "attn.c_proj.weight"), vec(p + "attn.c_proj.bias"))
        x = [[xi + ai for xi, ai in zip(xr, ar, strict=True)] for xr, ar in zip(x, a, strict=True)]
        h = layer_norm(x, vec(p + "ln_2.weight"), vec(p + "ln_2.bias"))
        f = [
            [gelu(v) for v in row] for row in linear(h, mat(p + "mlp.c_fc.weight"), vec(p + "mlp.c_fc.bias"))
        ]
        m = linear(f, mat(p + "mlp.c_proj.weight"), vec(p + "mlp.c_proj.bias"))
        x = [[xi + mi for xi, mi in zip(xr, mr, strict=True)] for xr, mr in zip(x, m, strict=True)]
    h = layer_norm(x, vec("ln_f.weight"), vec("ln_f.bias"))
    head = wte if config.tie_word_embeddings else mat("lm_head.weight")
    return np.array([[float(ctx.fdot(row, w)) for w in head] for row in h], dtype=np.float64)
