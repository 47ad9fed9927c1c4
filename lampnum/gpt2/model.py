"""GPT-2 forward pass in numpy: small pure functions (after picoGPT) driven by a precision :class:`Context`.

Semantics are those of ``transformers``' ``GPT2LMHeadModel`` in evaluation mode: token plus learned position
embeddings; per block ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``; causal scaled dot-product attention;
GELU with the tanh approximation; LayerNorm with biased variance and the config's epsilon; a final ``ln_f``
and an output head tied to the token embedding. Leading batch dimensions are carried through (equal-length
sequences, no padding).

Every matrix product goes through ``ctx.matmul``/``ctx.linear`` under its site name, every elementwise stage
through ``ctx.elementwise``. The four compositions LAMP analyses are each one function taking the context:
:func:`attention_probs` (softmax∘score), :func:`gelu_fc` (GELU∘fc), :func:`residual_layer_norm`
(LayerNorm∘residual) and :func:`lm_head` (the logits the output softmax reads).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lampnum import bounds
from lampnum.emulate import MatmulSpec
from lampnum.gpt2.config import GPT2Config
from lampnum.gpt2.policy import WEIGHT_SITES, Context, Policy, RunStats, quantize_weight
from lampnum.gpt2.weights import check_params
from lampnum.lamp import AttentionScores, GeluFc, LayerNormResidual, LogitsSoftmax

__all__ = [
    "GPT2",
    "KVCache",
    "RunResult",
    "attention",
    "attention_probs",
    "block_params",
    "check_ids",
    "gelu",
    "gelu_fc",
    "gpt2",
    "lamp_scores",
    "score_bound",
    "layer_norm",
    "lm_head",
    "mlp",
    "residual_layer_norm",
    "softmax",
]

#: Per block, the (key, value) arrays [..., n_head, n_past, d_head] of every position seen so far.
KVCache = tuple[tuple[np.ndarray, np.ndarray], ...]
_GELU_C = math.sqrt(2.0 / math.pi)  # Python floats keep float32 arrays float32 (NEP 50)
_WEIGHT_NAMES = {
    "qkv": "attn.c_attn.weight",
    "attn_proj": "attn.c_proj.weight",
    "fc": "mlp.c_fc.weight",
    "mlp_proj": "mlp.c_proj.weight",
}
assert set(_WEIGHT_NAMES) == set(WEIGHT_SITES)


def gelu(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU, ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`` (``gelu_new``), elementwise.

    Evaluated in ``x``'s dtype in one work array (the products by 0.5 are exact).
    """
    t = x * x
    t *= x
    t *= 0.044715
    t += x
    t *= _GELU_C
    np.tanh(t, out=t)
    t += 1.0
    t *= x
    t *= 0.5
    return t


def _softmax_(x: np.ndarray) -> np.ndarray:
    # in place over the last axis; returns x
    x -= np.max(x, axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= np.sum(x, axis=-1, keepdims=True)
    return x


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum; ``-inf`` entries get probability 0."""
    return _softmax_(np.array(x, dtype=np.result_type(x, np.float32)))


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """``g·(x − mean)/√(var + eps) + b`` over the last axis, ``var`` the biased variance (as torch)."""
    mean = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return g * (x - mean) / np.sqrt(var + eps) + b


def _causal_softmax(z: np.ndarray, scale: float, overwrite: bool = False) -> np.ndarray:
    # [..., n_q, n_k] -> [..., n_q, n_k]; query i sits at position n_k - n_q + i and sees keys j <= that
    # position. ``overwrite``: z is a temporary of ours and scale is 1: work in z itself
    n_q, n_k = z.shape[-2:]
    future = np.arange(n_k)[None, :] > np.arange(n_k - n_q, n_k)[:, None]
    s = z if overwrite and scale == 1.0 else z * scale  # the one work array (z left intact unless overwrite)
    np.copyto(s, -np.inf, where=future)
    return _softmax_(s)


def attention_probs(q: np.ndarray, k: np.ndarray, ctx: Context, layer: int, scale: float) -> np.ndarray:
    """Softmax∘score: causal attention probabilities ``softmax(scale·q kᵀ)``.

    ``q`` [..., n_head, n_q, d_head], ``k`` [..., n_head, n_k, d_head] (the last ``n_q`` keys are the queries'
    own positions) -> [..., n_head, n_q, n_k]. Sites ``score`` then ``softmax`` (which includes the scaling).
    """
    n_q, n_k = q.shape[-2], k.shape[-2]
    # [..., n_head, n_q, n_k]; the entries above the causal band (j > i + n_k - n_q) are masked out below
    z = ctx.matmul("score", layer, q, np.swapaxes(k, -1, -2), lower=n_k - n_q)
    if ctx.lamp("score") is None:
        return ctx.elementwise("softmax", layer, _causal_softmax, z, scale)
    s = lamp_scores(q, k, z, ctx, layer, scale, overwrite=True)  # z is ours: scaled and corrected in place
    return ctx.elementwise("softmax", layer, _causal_softmax, s, 1.0, True)


def lamp_scores(
    q: np.ndarray, k: np.ndarray, z: np.ndarray, ctx: Context, layer: int, scale: float, overwrite: bool = False
) -> np.ndarray:
    """LAMP at softmax∘score: the scaled scores ``scale·z`` with the entries the policy's rule selects (from
    the low-precision scaled scores, per query row, over the causal entries) replaced by ``scale·(q·k)``
    recomputed in the rule's high precision, rounded to the working dtype.

    ``scale`` is first converted to the working dtype and ``z·scale`` computed there, exactly as the softmax
    without LAMP computes it: unselected entries (everything, under rule "none") are bit for bit the same.
    The scaled scores are a new array, or ``z`` itself with ``overwrite`` (a forward pass's temporary): in the
    working dtype either way (float32 scores are corrected in place, each recomputed value rounded once).
    """
    t0 = time.perf_counter()
    site = ctx.lamp("score")
    assert site is not None
    factor = z.dtype.type(scale)
    bound = score_bound(q, k, z, ctx.policy.spec("score", layer), float(factor)) if site.config.needs_bound \
        else None  # fmt: skip
    scaled = np.multiply(z, factor, out=z if overwrite and z.flags.c_contiguous and z.flags.writeable else None)
    result = AttentionScores(site.config).apply(
        q, k, scaled, causal=True, scale=float(factor), bound=bound, rng=ctx.rng("score"), in_place=True
    )
    return ctx.lamp_done(layer, "score", result, t0)


def score_bound(q: np.ndarray, k: np.ndarray, z: np.ndarray, spec: MatmulSpec | None, factor: float) -> np.ndarray:
    """A componentwise bound on the error of the scaled scores ``z·factor`` (computed in z's dtype) against the
    exact ``factor·(q·k)``, for the bound-aware rule.

    ``spec`` None (native BLAS in the working dtype, summation order unknown): ``γ_d·|q||k|ᵀ`` with the working
    dtype's unit roundoff (Higham 2002, §3.1, any order). An emulated site: :func:`lampnum.bounds.matmul` of
    the site's spec, plus the rounding of the float64 result to the working dtype. Then the scaling's rounding:
    ``|fl(ẑ·f) − f·c| <= f·β + u·f·|ẑ|·(2 + u)`` with ``u`` the working dtype's unit roundoff."""
    u = float(np.finfo(z.dtype).eps) / 2
    kt = np.swapaxes(k, -1, -2)
    if spec is None:
        d = q.shape[-1]
        beta = (d * u / (1 - d * u)) * (np.abs(q.astype(np.float64)) @ np.abs(kt.astype(np.float64)))
    else:
        beta = bounds.matmul(q, kt, spec)
    return factor * beta + u * (2 + u) * factor * np.abs(z.astype(np.float64))


def gelu_fc(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    ctx: Context,
    layer: int,
    w_proj: np.ndarray | None = None,
) -> np.ndarray:
    """GELU∘fc: ``gelu(x @ w + b)``, [..., n_seq, n_embd] -> [..., n_seq, n_inner]; sites ``fc``, ``gelu``.

    Under LAMP at ``"fc"`` the rule ranks the fc outputs of each token by their first-order contribution to
    mlp_proj's output, ``‖w_proj[j, :]‖₂·|GELU′(ẑ_j)|·|ẑ_j|`` (:class:`lampnum.lamp.GeluFc`; ``w_proj``
    [n_inner, n_embd], required then), and recomputes the selected ``x·w[:, j] + b_j`` in its high precision.
    """
    z = ctx.linear("fc", layer, x, w, b)
    site = ctx.lamp("fc")
    if site is not None:
        if w_proj is None:
            raise ValueError("LAMP at 'fc' looks ahead to mlp_proj: pass its weight as w_proj")
        t0 = time.perf_counter()
        result = GeluFc(site.config, w_proj).apply(x, w, b, z, rng=ctx.rng("fc"))
        z = ctx.lamp_done(layer, "fc", result, t0)
    return ctx.elementwise("gelu", layer, gelu, z)


def residual_layer_norm(
    x: np.ndarray,
    delta: np.ndarray,
    g: np.ndarray,
    b: np.ndarray,
    eps: float,
    ctx: Context,
    residual_layer: int | None,
    norm_layer: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """LayerNorm∘residual: ``x + delta`` and its LayerNorm, each [..., n_seq, n_embd].

    Site ``residual`` (of block ``residual_layer``; None for the embedding sum) then ``layernorm`` (of block
    ``norm_layer``; None for ``ln_f``). Returns ``(x + delta, layer_norm(x + delta))``.

    Under LAMP at ``"residual"`` the rule ranks the components of each token's sum by their first-order
    contribution to the LayerNorm's output, ``‖J_LN(ẑ)[:, j]‖₂·|ẑ_j|``
    (:class:`lampnum.lamp.LayerNormResidual` with gain ``g``), and recomputes the selected ``x_j + delta_j``
    in float64 (the branch output itself is not recomputed); stats key: ``(residual_layer, "residual")``.
    """
    s = ctx.elementwise("residual", residual_layer, np.add, x, delta)
    site = ctx.lamp("residual")
    if site is not None:
        t0 = time.perf_counter()
        result = LayerNormResidual(site.config, g, eps=eps).apply(x, delta, s, rng=ctx.rng("residual"))
        s = ctx.lamp_done(residual_layer, "residual", result, t0)
    return s, ctx.elementwise("layernorm", norm_layer, layer_norm, s, g, b, eps)


def lm_head(h: np.ndarray, w: np.ndarray, ctx: Context) -> np.ndarray:
    """Logits ``h @ wᵀ``: [..., n_seq, n_embd] -> [..., n_seq, vocab_size]. Site ``lm_head``.

    ``w`` [vocab_size, n_embd] is the tied ``wte.weight``, or ``lm_head.weight`` when the config unties them.
    Under LAMP at ``"lm_head"`` the rule selects logits per position over the vocabulary (as the output
    softmax will read them) and the selected ``h·w_v`` are recomputed in its high precision.
    """
    logits = ctx.matmul("lm_head", None, h, w.T)
    site = ctx.lamp("lm_head")
    if site is None:
        return logits
    t0 = time.perf_counter()
    result = LogitsSoftmax(site.config).apply(h, w.T, logits, rng=ctx.rng("lm_head"))
    return ctx.lamp_done(None, "lm_head", result, t0)


def attention(
    x: np.ndarray,
    p: Mapping[str, np.ndarray],
    ctx: Context,
    layer: int,
    config: GPT2Config,
    past: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Causal multi-head self-attention of block ``layer``: [..., n_seq, n_embd] -> [..., n_seq, n_embd].

    ``past`` holds the keys and values of earlier positions; returns the output and the extended (keys,
    values).
    """
    n_seq, n_head, d_head = x.shape[-2], config.n_head, config.d_head
    w, b = p["attn.c_attn.weight"], p["attn.c_attn.bias"]
    qkv = ctx.linear("qkv", layer, x, w, b)  # -> [..., n_seq, 3*n_embd]
    qkv = qkv.reshape(*x.shape[:-1], 3, n_head, d_head)  # -> [..., n_seq, 3, n_head, d_head]
    q, k, v = np.moveaxis(qkv, (-3, -4), (0, -2))  # 3 x [..., n_head, n_seq, d_head]
    if past is not None:
        k, v = np.concatenate([past[0], k], axis=-2), np.concatenate([past[1], v], axis=-2)
    probs = attention_probs(q, k, ctx, layer, config.attn_scale(layer))  # -> [..., n_head, n_seq, n_k]
    o = ctx.matmul("value", layer, probs, v)  # -> [..., n_head, n_seq, d_head]
    o = np.moveaxis(o, -3, -2).reshape(*x.shape[:-2], n_seq, n_head * d_head)  # -> [..., n_seq, n_embd]
    return ctx.linear("attn_proj", layer, o, p["attn.c_proj.weight"], p["attn.c_proj.bias"]), (k, v)


def mlp(x: np.ndarray, p: Mapping[str, np.ndarray], ctx: Context, layer: int) -> np.ndarray:
    """The feed-forward network of block ``layer``: [..., n_seq, n_embd] -> [..., n_seq, n_embd]."""
    w_proj = p["mlp.c_proj.weight"]
    h = gelu_fc(x, p["mlp.c_fc.weight"], p["mlp.c_fc.bias"], ctx, layer, w_proj)  # -> [..., n_seq, n_inner]
    return ctx.linear("mlp_proj", layer, h, p["mlp.c_proj.weight"], p["mlp.c_proj.bias"])


def block_params(params: Mapping[str, np.ndarray], layer: int) -> dict[str, np.ndarray]:
    """The parameters of block ``layer``, named as inside it (``h.3.ln_1.weight`` -> ``ln_1.weight``)."""
    prefix = f"h.{layer}."
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def gpt2(
    ids: np.ndarray,
    params: Mapping[str, np.ndarray],
    config: GPT2Config,
    ctx: Context,
    cache: KVCache | None = None,
) -> tuple[np.ndarray, KVCache]:
    """Logits for token ``ids`` [..., n_seq] -> [..., n_seq, vocab_size], and the extended key/value cache.

    ``params`` are in the context's working dtype. With ``cache`` (from an earlier call on the preceding
    tokens), ``ids`` continue those sequences at position ``n_past``. ``ids`` are assumed valid (see
    :func:`check_ids`).
    """
    n_past = 0 if cache is None else cache[0][0].shape[-2]
    n_seq, eps = ids.shape[-1], config.layer_norm_epsilon
    wte = params["wte.weight"]
    blocks = [block_params(params, i) for i in range(config.n_layer)]
    x, h = residual_layer_norm(
        wte[ids],
        params["wpe.weight"][n_past : n_past + n_seq],  # -> [..., n_seq, n_embd]
        blocks[0]["ln_1.weight"],
        blocks[0]["ln_1.bias"],
        eps,
        ctx,
        None,
        0,
    )
    new_cache = []
    for i, p in enumerate(blocks):
        a, kv = attention(h, p, ctx, i, config, None if cache is None else cache[i])
        new_cache.append(kv)
        x, h = residual_layer_norm(x, a, p["ln_2.weight"], p["ln_2.bias"], eps, ctx, i, i)
        m = mlp(h, p, ctx, i)
        if i + 1 < config.n_layer:
            g, b, nxt = blocks[i + 1]["ln_1.weight"], blocks[i + 1]["ln_1.bias"], i + 1
        else:
            g, b, nxt = params["ln_f.weight"], params["ln_f.bias"], None
        x, h = residual_layer_norm(x, m, g, b, eps, ctx, i, nxt)
    head = wte if config.tie_word_embeddings else params["lm_head.weight"]
    return lm_head(h, head, ctx), tuple(new_cache)


def check_ids(ids: object, config: GPT2Config, n_past: int = 0) -> np.ndarray:
    """``ids`` as int64 [..., n_seq], checked: ids in range, and ``n_past + n_seq <= n_positions``."""
    a = np.asarray(ids)
    if a.dtype.kind not in "iu":
        raise TypeError(f"token ids must be integers, got dtype {a.dtype}")
    if a.ndim == 0 or a.shape[-1] == 0 or a.size == 0:
        raise ValueError(f"token ids must have shape [..., n_seq] with n_seq >= 1, got {a.shape}")
    if n_past + a.shape[-1] > config.n_positions:
        raise ValueError(
            f"{n_past} + {a.shape[-1]} positions exceed the model's n_positions = {config.n_positions}"
        )
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= config.vocab_size:
        raise ValueError(f"token ids must lie in [0, {config.vocab_size}), got min {lo}, max {hi}")
    return a.astype(np.int64, copy=False)


@dataclass
class RunResult:
    """Logits [..., n_seq, vocab_size] in the policy's working dtype, and what the pass measured."""

    logits: np.ndarray
    stats: RunStats

    @property
    def recompute_rate(self) -> float:
        """LAMP's overall recompute rate: selected / valid components over every LAMP site and layer."""
        return self.stats.overall_recompute_rate()

    @property
    def multiply_add_fraction(self) -> float:
        """Recomputed multiply-adds over the full multiply-adds of the LAMP sites' products."""
        return self.stats.overall_multiply_add_fraction()


class GPT2:
    """A GPT-2 model: its :class:`GPT2Config` and parameters (canonical names, stored dtypes), validated.

    Parameters are converted to a policy's working dtype (and quantised, for policies with ``weights``) on
    first use and kept for later calls: a float64 copy of GPT-2 small takes 1 GB, of GPT-2 XL 12.5 GB.
    """

    def __init__(self, config: GPT2Config, params: Mapping[str, np.ndarray], source: str = "params") -> None:
        self.config = config
        self.params = check_params(params, config, source)  # errors name ``source``
        self._prepared: dict[tuple[object, ...], dict[str, np.ndarray]] = {}

    @property
    def n_params(self) -> int:
        """Number of parameters (the tied head counted once)."""
        return sum(a.size for a in self.params.values())

    def params_for(self, policy: Policy) -> dict[str, np.ndarray]:
        """The parameters as ``policy`` uses them: in its working dtype, weights quantised if it says so."""
        key = (policy.dtype, policy.weights)
        if key not in self._prepared:
            dt = np.dtype(policy.dtype)
            out = {k: v.astype(dt, copy=False) for k, v in self.params.items()}  # read-only use
            if policy.weights is not None:
                for i in range(self.config.n_layer):
                    for name in _WEIGHT_NAMES.values():
                        out[f"h.{i}.{name}"] = quantize_weight(
                            self.params[f"h.{i}.{name}"], policy.weights
                        ).astype(dt)
            self._prepared[key] = out
        return self._prepared[key]

    def forward(
        self,
        ids: object,
        policy: Policy | None = None,
        cache: KVCache | None = None,
        stats: RunStats | None = None,
    ) -> tuple[np.ndarray, KVCache]:
        """:func:`gpt2` on checked ``ids`` under ``policy`` (None: the float64 reference), optional cache."""
        policy = Policy.preset("fp64") if policy is None else policy
        n_past = 0 if cache is None else cache[0][0].shape[-2]
        ids = check_ids(ids, self.config, n_past)
        return gpt2(ids, self.params_for(policy), self.config, Context(policy, stats), cache)

    def logits(self, ids: object, policy: Policy | None = None) -> np.ndarray:
        """Logits [..., n_seq, vocab_size] for ``ids`` [..., n_seq]; ``policy=None``: float64 reference."""
        return self.forward(ids, policy)[0]

    def run(self, ids: object, policy: Policy | None = None, *, keep_masks: bool = False) -> RunResult:
        """Logits plus per-site timings (and, under LAMP policies, recompute rates) of one forward pass.

        ``keep_masks``: also keep LAMP's recompute masks in ``stats.masks`` (memory: one boolean per score).
        """
        stats = RunStats(masks={} if keep_masks else None)
        t0 = time.perf_counter()
        logits, _ = self.forward(ids, policy, stats=stats)
        stats.total_seconds = time.perf_counter() - t0
        return RunResult(logits, stats)
