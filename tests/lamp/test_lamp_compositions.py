"""The compositions the GPT-2 model calls: contributions against numeric Jacobians, recomputation against
float64,
and selection by indicator against random selection at equal count on attention-like rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lampnum as ln
import lampnum.lamp as lamp
from lampnum.lamp import AttentionScores, GeluFc, LampConfig, LayerNormResidual, LogitsSoftmax


def test_causal_mask_against_loops():
    for n_q, n_k in [(1, 1), (4, 4), (3, 7)]:
        want = [[j <= i + (n_k - n_q) for j in range(n_k)] for i in range(n_q)]
        assert lamp.causal_mask(n_q, n_k).tolist() == want


# --- attention
# --------------------------------------------------------------------------------------------------------


def attention_instance(seed: int, heads: int = 1, n: int = 64, d: int = 64):
    """Attention-like heads: float32 Gaussian q, k with a shared direction and an attention-sink key (k_0).

    The low-precision scores come from ``lampnum.matmul`` with strict bf16 accumulation (one rounding per
    step), then scaled. Returns q, k, the exact scaled scores, the low-precision ones and their rigorous bound
    ``β = γ_d(u)·|q||k|ᵀ/√d`` (u = 2⁻⁸; LAMP-MATH.md §1)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(heads, n, d))
    k = rng.normal(size=(heads, n, d))
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    q += 2.0 * u
    k[:, 0] += 3.0 * u
    q, k = (0.6 * q).astype(np.float32), (0.6 * k).astype(np.float32)
    q64, k64t = q.astype(np.float64), np.swapaxes(k, -1, -2).astype(np.float64)
    scale = 1.0 / math.sqrt(d)
    exact = (q64 @ k64t) * scale
    low = ln.matmul(q, np.swapaxes(k, -1, -2), ln.MatmulSpec(accumulator="bf16")) * scale
    gamma = d * 2.0**-8 / (1 - d * 2.0**-8)
    beta = gamma * (np.abs(q64) @ np.abs(k64t)) * scale
    return q, k, exact, low, beta


def _softmax_error(z, exact, causal):
    def soft(v):
        v = np.where(causal, v, -np.inf)
        e = np.exp(v - v.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    return np.abs(soft(z) - soft(exact)).sum()


@pytest.fixture(scope="module")
def attention_heads():
    return [attention_instance(seed) for seed in range(100)]


@pytest.mark.parametrize(
    "config",
    [
        LampConfig("strict", tau=0.1),
        LampConfig("mass", tau=1.9),
        LampConfig("relaxed", tau=0.7),
        LampConfig("length", tau=0.5, length_ref=64),
        LampConfig("bound", tau=0.1),
        LampConfig("top_mu", mu=2),
    ],
    ids=lambda c: c.rule,
)
def test_indicator_beats_random_at_equal_count(config, attention_heads):
    """On 100 seeded attention-like heads with strict bf16 accumulation of the scores, recomputing the rule's
    selection leaves a smaller softmax error (ℓ1 over all rows, against the exact scores) than recomputing the
    same number per row at random valid positions in at least 95% of instances."""
    causal = lamp.causal_mask(64, 64)
    wins, rates = 0, []
    for seed, (q, k, exact, low, beta) in enumerate(attention_heads):
        bound = beta if config.needs_bound else None
        chosen = AttentionScores(config).apply(q, k, low, bound=bound)
        ablation = AttentionScores(LampConfig(**{**config.__dict__, "random": True}))
        random = ablation.apply(q, k, low, bound=bound, rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(chosen.mask.sum(-1), random.mask.sum(-1))
        wins += _softmax_error(chosen.values, exact, causal) < _softmax_error(random.values, exact, causal)
        rates.append(chosen.recompute_rate)
    assert 0.005 < np.mean(rates) < 0.1  # a low recompute rate, not a trivial one
    assert wins >= 95


def test_attention_all_recomputes_causal_entries_exactly():
    q, k, exact, low, _ = attention_instance(7, heads=2, n=12, d=8)
    result = AttentionScores(LampConfig("all")).apply(q, k, low)
    causal = lamp.causal_mask(12, 12)
    np.testing.assert_allclose(result.values[:, causal], exact[:, causal], rtol=1e-14)
    np.testing.assert_array_equal(result.values[:, ~causal], low[:, ~causal])
    assert result.recompute_rate == 1.0 and result.valid == 2 * 78 and result.multiply_adds == 2 * 78 * 8


def test_attention_without_causal_mask_and_with_kv_cache():
    q, k, _, low, _ = attention_instance(8, n=6, d=4)
    full = AttentionScores(LampConfig("all")).apply(q, k, low, causal=False)
    assert full.valid == 36
    last_two = AttentionScores(LampConfig("all")).apply(q[:, 4:], k, low[:, 4:])  # 2 queries over 6 keys
    assert last_two.valid == 5 + 6


def test_attention_scale_is_applied():
    q, k, _, low, _ = attention_instance(9, n=5, d=4)
    half = AttentionScores(LampConfig("all")).apply(q, k, low, scale=1.0, causal=False)
    raw = q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64)
    np.testing.assert_allclose(half.values, raw, rtol=1e-14)


# --- logits
# -----------------------------------------------------------------------------------------------------------


def test_logits_softmax_recomputes_top_logits():
    rng = np.random.default_rng(11)
    h = rng.normal(size=(3, 16)).astype(np.float32)
    w = rng.normal(size=(16, 50)).astype(np.float32)
    exact = h.astype(np.float64) @ w.astype(np.float64)
    low = ln.round(exact, "bf16")
    result = LogitsSoftmax(LampConfig("top_mu", mu=5, indicator="probability")).apply(h, w, low)
    for t in range(3):
        top5 = sorted(range(50), key=lambda v: (-low[t, v], v))[
            :5
        ]  # the 5 largest logits = the 5 most probable
        assert sorted(np.flatnonzero(result.mask[t]).tolist()) == sorted(top5)
        np.testing.assert_allclose(result.values[t, top5], exact[t, top5], rtol=1e-14)
    assert result.recompute_rate == 15 / 150 and result.inner == 16


# --- GELU ∘ fc looking ahead to mlp_proj
# ------------------------------------------------------------------------------


def _gelu(x: float, approximate: str) -> float:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu_fc_contribution_is_the_lookahead_jacobian_column_norm(approximate):
    """weight_j = ‖∂(gelu(z) @ W₂)/∂z_j‖₂, checked by central differences of an independent GELU."""
    rng = np.random.default_rng(12)
    w2 = rng.normal(size=(10, 4))
    z = np.concatenate([rng.normal(0, 2, 8), [0.0, -4.0]])
    weight = GeluFc(LampConfig("strict", tau=1.0), w2, approximate=approximate).contribution_weight(z)
    h = 1e-6
    for j in range(10):
        column = [
            (_gelu(z[j] + h, approximate) - _gelu(z[j] - h, approximate)) / (2 * h) * w2[j, o]
            for o in range(4)
        ]
        assert weight[j] == pytest.approx(math.sqrt(sum(c * c for c in column)), rel=1e-7, abs=1e-12)


def test_gelu_fc_strict_selection_and_recompute():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    w1 = rng.normal(size=(8, 32)).astype(np.float32)
    b1 = rng.normal(size=32)
    w2 = rng.normal(size=(32, 8))
    exact = x.astype(np.float64) @ w1.astype(np.float64) + b1
    low = ln.round(exact, "bf16")
    composition = GeluFc(LampConfig("strict", tau=2.0), w2)
    result = composition.apply(x, w1, b1, low)
    norms = [math.sqrt(sum(v * v for v in row)) for row in w2.tolist()]
    h = 1e-6
    for index in np.ndindex(low.shape):
        zj = float(low[index])
        slope = (_gelu(zj + h, "tanh") - _gelu(zj - h, "tanh")) / (2 * h)
        contribution = norms[index[-1]] * abs(slope) * abs(zj)
        if abs(contribution - 2.0) > 1e-5:
            assert result.mask[index] == (contribution > 2.0)
        if result.mask[index]:
            assert result.values[index] == pytest.approx(exact[index], rel=1e-13, abs=1e-13)
        else:
            assert result.values[index] == low[index]
    assert 0 < result.selected < low.size and result.inner == 8


def test_gelu_fc_budget_by_bound():
    rng = np.random.default_rng(14)
    x, w1, b1 = rng.normal(size=(4, 6)), rng.normal(size=(6, 12)), np.zeros(12)
    low = x @ w1
    beta = np.zeros_like(low)
    beta[1, 3] = beta[2, 7] = 1.0  # only these two carry error
    result = GeluFc(LampConfig("budget", rate=2 / 48, indicator="bound"), np.ones((12, 3))).apply(
        x, w1, b1, low, bound=beta
    )
    assert sorted(zip(*np.nonzero(result.mask), strict=True)) == [(1, 3), (2, 7)]


# --- LayerNorm ∘ residual
# ---------------------------------------------------------------------------------------------


def _layernorm(z: list[float], gamma: list[float], eps: float) -> list[float]:
    n = len(z)
    mu = math.fsum(z) / n
    sigma = math.sqrt(math.fsum((v - mu) ** 2 for v in z) / n + eps)
    return [g * (v - mu) / sigma for v, g in zip(z, gamma, strict=True)]


def test_layernorm_contribution_is_the_jacobian_column_norm():
    rng = np.random.default_rng(15)
    n = 12
    z = rng.normal(size=(2, n))
    z[1, 4] = 40.0  # an outlier feature
    gamma = rng.uniform(0.5, 2.0, n)
    weight = LayerNormResidual(LampConfig("strict", tau=1.0), gamma, eps=1e-5).contribution_weight(z)
    h = 1e-6
    for t in range(2):
        for j in range(n):
            up, down = z[t].tolist(), z[t].tolist()
            up[j] += h
            down[j] -= h
            column = [
                (a - b) / (2 * h)
                for a, b in zip(_layernorm(up, gamma, 1e-5), _layernorm(down, gamma, 1e-5), strict=True)
            ]
            assert weight[t, j] == pytest.approx(math.sqrt(sum(c * c for c in column)), rel=1e-6)


def test_layernorm_residual_outlier_first_and_recompute():
    rng = np.random.default_rng(16)
    x = rng.normal(size=(3, 16))
    x[:, 5] = 30.0  # outlier feature in every token
    y = rng.normal(size=(3, 16))
    low = ln.round(x + y, "bf16")
    result = LayerNormResidual(LampConfig("top_mu", mu=1), np.ones(16)).apply(x, y, low)
    assert result.mask[:, 5].all() and result.selected == 3
    np.testing.assert_array_equal(result.values[:, 5], x[:, 5] + y[:, 5])
    np.testing.assert_array_equal(result.values[:, :5], low[:, :5])
    assert result.inner == 1 and result.recompute_rate == 3 / 48


def test_layernorm_residual_recomputes_the_projection():
    rng = np.random.default_rng(17)
    h = rng.normal(size=(4, 8)).astype(np.float32)
    w = rng.normal(size=(8, 6)).astype(np.float32)
    b = rng.normal(size=6)
    x = rng.normal(size=(4, 6))
    y_exact = h.astype(np.float64) @ w.astype(np.float64) + b
    y_low = ln.round(y_exact, "bf16")
    low = ln.round(x + y_low, "bf16")
    result = LayerNormResidual(LampConfig("all"), np.ones(6)).apply(x, y_low, low, proj=(h, w, b))
    np.testing.assert_allclose(result.values, x + y_exact, rtol=1e-14)
    assert result.inner == 8 and result.multiply_adds == 24 * 8


# --- configuration errors
# ---------------------------------------------------------------------------------------------


def test_config_errors():
    with pytest.raises(ValueError, match="random=True"):
        LampConfig("random")
    with pytest.raises(ValueError, match="unknown LAMP rule"):
        LampConfig("fancy")
    with pytest.raises(ValueError, match="tau"):
        LampConfig("mass", tau=0.5)
    with pytest.raises(TypeError, match="needs tau"):
        LampConfig("strict")
    with pytest.raises(TypeError, match="high"):
        LampConfig("all", high="fp64")  # type: ignore[arg-type]
    z = np.zeros((2, 4))
    with pytest.raises(ValueError, match="softmax compositions only"):
        GeluFc(LampConfig("mass", tau=1.5), np.ones((4, 2))).apply(z, np.eye(4), np.zeros(4), z)
    with pytest.raises(TypeError, match="needs bound"):
        GeluFc(LampConfig("bound", tau=0.1), np.ones((4, 2))).apply(z, np.eye(4), np.zeros(4), z)
    with pytest.raises(TypeError, match="rng"):
        GeluFc(LampConfig("all", random=True), np.ones((4, 2))).apply(z, np.eye(4), np.zeros(4), z)
    with pytest.raises(ValueError, match="NaN"):
        GeluFc(LampConfig("all"), np.ones((4, 2))).apply(z, np.eye(4), np.zeros(4), np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="approximate"):
        GeluFc(LampConfig("all"), np.ones((4, 2)), approximate="sigmoid")


@pytest.mark.parametrize("rule,tau", [("strict", 0.02), ("relaxed", 0.3), ("length", 0.2), ("top_mu", 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["heads", "broadcast", "offset", "-inf"])
def test_fused_attention_path_is_select_then_recompute(rule, tau, dtype, layout, monkeypatch):
    """AttentionScores' one-pass path (decide a row, recompute its selected scores while it is in cache) gives
    the mask, values and accounting of select() followed by recompute_product(), bit for bit: batched heads,
    operands broadcast over leading axes, queries at an offset into the keys (n_q < n_k), −inf scores."""
    rng = np.random.default_rng(7)
    n_q, n_k, d = (5, 9, 4) if layout == "offset" else (9, 9, 4)
    q_shape, k_shape = ((2, 1, n_q, d), (1, 3, n_k, d)) if layout == "broadcast" else ((2, 3, n_q, d), (2, 3, n_k, d))
    q = rng.normal(size=q_shape).astype(np.float32)
    k = rng.normal(size=k_shape).astype(np.float32)
    exact = np.matmul(q.astype(np.float64), np.swapaxes(k, -1, -2).astype(np.float64)) / 2.0
    low = (exact + rng.normal(scale=0.05, size=exact.shape)).astype(dtype)
    causal = lamp.causal_mask(n_q, n_k)
    if layout == "-inf":
        low[0, 1, 3, :2] = -np.inf
    extra = {"length_ref": 8.0} if rule == "length" else {}
    params = {"mu": tau} if rule == "top_mu" else {"tau": tau}
    config = LampConfig(rule, **params, **extra)
    calls = []
    original = lamp.kernels.fused_select_recompute
    def spy(*args, **kwargs):
        calls.append(args[5].size > 0)  # with operands: selection and recomputation in one pass
        return original(*args, **kwargs)

    monkeypatch.setattr(lamp.kernels, "fused_select_recompute", spy)
    fused = AttentionScores(config).apply(q, k, low.copy(), scale=0.5, in_place=True)
    assert calls == [True]  # the one-pass path ran
    valid = lamp.valid_mask(low.astype(np.float64), np.broadcast_to(causal, low.shape))
    mask = lamp.select(rule, low, causal=valid, **params, **extra)
    want = lamp.recompute_product(q, np.swapaxes(k, -1, -2), low.copy(), mask, valid=valid, scale=0.5,
                                  in_place=True)  # fmt: skip
    assert fused.values.dtype == dtype
    np.testing.assert_array_equal(fused.mask, mask)
    np.testing.assert_array_equal(fused.values, want.values)
    assert (fused.selected, fused.valid, fused.inner, fused.total) == (want.selected, want.valid, want.inner,
                                                                      want.total)  # fmt: skip
    assert 0 < fused.selected < fused.valid


def test_fused_attention_path_rejects_nonfinite_scores():
    q = np.ones((1, 3, 2))
    low = np.zeros((1, 3, 3))
    low[0, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        AttentionScores(LampConfig("strict", tau=0.1)).apply(q, q, low)


def test_attention_scores_reuses_its_causal_mask_only_for_its_shape():
    """One composition applied at changing shapes (as a forward pass with prompts of several lengths) gives what
    a fresh one gives each time: the kept causal mask, its spans and dense flags follow the shape, and the mask
    it keeps is read-only."""
    rng = np.random.default_rng(11)
    config = LampConfig("strict", tau=0.02)
    kept = AttentionScores(config)
    for n_q, n_k in ((9, 9), (5, 9), (9, 9), (16, 16)):
        q = rng.normal(size=(2, n_q, 4)).astype(np.float32)
        k = rng.normal(size=(2, n_k, 4)).astype(np.float32)
        low = (np.matmul(q, np.swapaxes(k, -1, -2)) / 2.0 + rng.normal(scale=0.05, size=(2, n_q, n_k))).astype(
            np.float32)  # fmt: skip
        got = kept.apply(q, k, low.copy(), scale=0.5)
        want = AttentionScores(config).apply(q, k, low.copy(), scale=0.5)
        assert np.array_equal(got.mask, want.mask) and np.array_equal(got.values, want.values)
        assert got.valid == want.valid == 2 * int(lamp.causal_mask(n_q, n_k).sum())
    allowed = kept._causal_mask(16, 16)[0]
    assert not allowed.flags.writeable
