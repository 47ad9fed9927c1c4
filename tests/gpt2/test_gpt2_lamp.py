"""LAMP in the GPT-2 forward pass: ``Policy.with_lamp`` at softmax∘score, softmax∘lm_head, GELU∘fc and
LayerNorm∘residual.

The shipped model runs on one 128-token row of its held-out tokens under ``Policy.preset("paper", m_bits=7)``
(QKᵀ accumulated with 7 mantissa bits, everything else float32); the exact-count checks use the tiny random
model of conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import numpy as np
import pytest

import lampnum as ln
from lampnum.gpt2 import GPT2, Policy, RunResult, load_default
from lampnum.gpt2.metrics import kl_divergence

T = 128
FP64_ACC = ln.MatmulSpec(accumulator="fp64", output="fp32")  # exact products, float64 sum, rounded to fp32


@pytest.fixture(scope="module")
def model() -> GPT2:
    return load_default()


@pytest.fixture(scope="module")
def ids() -> np.ndarray:
    tokens = np.load(resources.files("lampnum.gpt2") / "data" / "eval_tokens.npy")
    return tokens[:1, :T].astype(np.int64)


@pytest.fixture(scope="module")
def paper() -> Policy:
    return Policy.preset("paper", m_bits=7)


@pytest.fixture(scope="module")
def ref(model: GPT2, ids: np.ndarray) -> np.ndarray:
    return model.logits(ids)


@pytest.fixture(scope="module")
def base(model: GPT2, ids: np.ndarray, paper: Policy) -> RunResult:
    return model.run(ids, paper)


@pytest.fixture(scope="module")
def strict(model: GPT2, ids: np.ndarray, paper: Policy) -> RunResult:
    return model.run(ids, paper.with_lamp("score", "strict", tau=0.5), keep_masks=True)


@pytest.fixture(scope="module")
def strict_random(model: GPT2, ids: np.ndarray, paper: Policy) -> RunResult:
    policy = paper.with_lamp("score", "strict", tau=0.5, ablation="random", seed=0)
    return model.run(ids, policy, keep_masks=True)


def test_rule_none_is_the_policy_without_lamp(
    model: GPT2, ids: np.ndarray, paper: Policy, base: RunResult
) -> None:
    out = model.run(ids, paper.with_lamp("score", "none"))
    np.testing.assert_array_equal(out.logits, base.logits)
    assert out.recompute_rate == 0.0
    assert set(out.stats.recompute_rate) == {(layer, "score") for layer in range(model.config.n_layer)}
    assert not base.stats.recompute_rate and base.recompute_rate == 0.0


def test_rule_all_removes_the_score_error(
    model: GPT2, ids: np.ndarray, paper: Policy, base: RunResult, ref: np.ndarray
) -> None:
    out = model.run(ids, paper.with_lamp("score", "all"))
    exact_scores = model.logits(ids, paper.with_site("score", FP64_ACC))
    # the same up to where the scale is applied (to the float64 dot product, not to its float32 rounding)
    assert np.max(np.abs(out.logits - exact_scores)) < 1e-3
    assert np.max(np.abs(base.logits - exact_scores)) > 1.0
    assert kl_divergence(ref, out.logits) < 1e-9
    assert out.recompute_rate == 1.0
    assert out.multiply_add_fraction == pytest.approx((T + 1) / (2 * T), abs=0, rel=1e-15)


def test_rates_are_exact_counts_over_causal_entries(model: GPT2, strict: RunResult) -> None:
    n_head, n_layer = model.config.n_head, model.config.n_layer
    causal, full = n_head * T * (T + 1) // 2, n_head * T * T
    assert strict.stats.masks is not None
    selected = []
    for layer in range(n_layer):
        (mask,) = strict.stats.masks[(layer, "score")]
        assert mask.shape == (1, n_head, T, T)
        assert not np.any(mask & ~np.tri(T, T, dtype=bool))  # only causal entries
        count = int(mask.sum())
        selected.append(count)
        assert strict.stats.recompute_rate[(layer, "score")] == count / causal
        assert strict.stats.multiply_add_fraction[(layer, "score")] == count / full
    assert strict.recompute_rate == sum(selected) / (n_layer * causal)
    assert strict.multiply_add_fraction == sum(selected) / (n_layer * full)
    assert 0.0 < strict.recompute_rate < 0.2


def test_top_mu_counts_on_a_tiny_model(tiny_model: GPT2) -> None:
    n, mu = 10, 3
    config = tiny_model.config
    ids = np.arange(2 * n).reshape(2, n) % config.vocab_size
    policy = Policy.preset("fp32").with_lamp("score", "top_mu", mu=mu).with_lamp("lm_head", "top_mu", mu=mu)
    out = tiny_model.run(ids, policy)
    rows = 2 * config.n_head
    per_head = sum(min(mu, i + 1) for i in range(n))
    for layer in range(config.n_layer):
        count = out.stats.lamp[(layer, "score")]
        assert (count.selected, count.valid, count.total, count.inner) == (
            rows * per_head,
            rows * n * (n + 1) // 2,
            rows * n * n,
            config.d_head,
        )
    head = out.stats.lamp[(None, "lm_head")]
    assert (head.selected, head.valid, head.total, head.inner) == (
        2 * n * mu,
        2 * n * config.vocab_size,
        2 * n * config.vocab_size,
        config.n_embd,
    )
    assert out.stats.overall_recompute_rate("lm_head") == mu / config.vocab_size
    selected = config.n_layer * rows * per_head * config.d_head + 2 * n * mu * config.n_embd
    full = config.n_layer * rows * n * n * config.d_head + 2 * n * config.vocab_size * config.n_embd
    assert out.multiply_add_fraction == selected / full


def test_lm_head_all_is_the_float64_accumulated_head(tiny_model: GPT2) -> None:
    ids = np.arange(12).reshape(1, 12)
    fp32 = Policy.preset("fp32")
    out = tiny_model.run(ids, fp32.with_lamp("lm_head", "all"))
    np.testing.assert_array_equal(out.logits, tiny_model.logits(ids, fp32.with_site("lm_head", FP64_ACC)))
    assert out.recompute_rate == 1.0
    np.testing.assert_array_equal(
        tiny_model.logits(ids, fp32.with_lamp("lm_head", "none")), tiny_model.logits(ids, fp32)
    )


def test_lamp_beats_no_lamp_and_the_random_ablation(
    base: RunResult, strict: RunResult, strict_random: RunResult, ref: np.ndarray
) -> None:
    kl_none, kl_lamp = kl_divergence(ref, base.logits), kl_divergence(ref, strict.logits)
    kl_random = kl_divergence(ref, strict_random.logits)
    assert kl_lamp < 0.05 * kl_none  # measured: 0.0039 against 0.22
    assert kl_lamp < 0.5 * kl_random  # measured: 0.0039 against 0.016 (seed 0)
    assert strict_random.recompute_rate == pytest.approx(strict.recompute_rate, rel=0.02)


def test_mass_rule_beats_the_random_ablation(
    model: GPT2, ids: np.ndarray, paper: Policy, base: RunResult, ref: np.ndarray
) -> None:
    lamp = model.run(ids, paper.with_lamp("score", "mass", tau=1.5))
    ablation = model.run(ids, paper.with_lamp("score", "mass", tau=1.5, ablation="random", seed=0))
    kl_lamp, kl_random = kl_divergence(ref, lamp.logits), kl_divergence(ref, ablation.logits)
    assert kl_lamp < 0.5 * kl_divergence(ref, base.logits)  # measured: 0.084 against 0.22
    assert kl_lamp < 0.9 * kl_random  # measured: 0.084 against 0.103 (seed 0)


def test_ablation_selects_the_same_count_per_row(strict: RunResult, strict_random: RunResult) -> None:
    assert strict.stats.masks is not None and strict_random.stats.masks is not None
    (rule,) = strict.stats.masks[(0, "score")]  # layer 0 sees the same scores in both runs
    (random,) = strict_random.stats.masks[(0, "score")]
    np.testing.assert_array_equal(random.sum(axis=-1), rule.sum(axis=-1))
    assert not np.any(random & ~np.tri(T, T, dtype=bool))
    assert not np.array_equal(random, rule)


def test_ablation_is_reproducible_by_seed(
    model: GPT2, ids: np.ndarray, paper: Policy, strict_random: RunResult
) -> None:
    short = ids[:, :32]
    policy = paper.with_lamp("score", "strict", tau=0.5, ablation="random", seed=0)
    first, again = model.logits(short, policy), model.logits(short, policy)
    np.testing.assert_array_equal(first, again)
    other = model.logits(short, paper.with_lamp("score", "strict", tau=0.5, ablation="random", seed=1))
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("attention", "strict"), {"tau": 0.5}, ValueError, "unknown LAMP site"),
        (("fc", "mass"), {"tau": 1.5}, ValueError, "softmax compositions only"),
        (("residual", "relaxed"), {"tau": 0.5}, ValueError, "softmax compositions only"),
        (("residual", "top_mu"), {"mu": 2, "indicator": "probability"}, ValueError, "softmax compositions"),
        (("fc", "strict"), {"tau": -0.5}, ValueError, "tau must lie in"),
        (("score", "strict"), {"tau": -1.0}, ValueError, "tau must lie in"),
        (("score", "mass"), {"tau": 3.0}, ValueError, "tau must lie in"),
        (("score", "strict"), {"tau": float("nan")}, ValueError, "tau must lie in"),
        (("score", "strict"), {}, TypeError, "needs tau"),
        (("score", "nonsense"), {}, ValueError, "unknown LAMP rule"),
        (("score", "strict"), {"tau": 0.5, "ablation": "shuffle"}, ValueError, "ablation must be"),
        (("score", "strict"), {"tau": 0.5, "seed": -1}, ValueError, "seed"),
        (("lm_head", "top_mu"), {"mu": 2, "indicator": "bound"}, ValueError, "'score' site only"),
        (("lm_head", "bound"), {"tau": 0.1}, ValueError, "'score' site only"),
    ],
)
def test_bad_input_gives_clear_errors(
    args: tuple[str, str], kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Policy.preset("paper", m_bits=7).with_lamp(*args, **kwargs)  # type: ignore[arg-type]


def test_with_lamp_keeps_the_policy_and_marks_it_non_native(make_model: Callable[..., GPT2]) -> None:
    fp32 = Policy.preset("fp32")
    lamp = fp32.with_lamp("score", "strict", tau=1.0)
    assert fp32.is_native and not lamp.is_native and not fp32.lamp
    assert set(lamp.lamp) == {"score"} and lamp.matmul == fp32.matmul
    assert set(lamp.with_lamp("lm_head", "all").lamp) == {"score", "lm_head"}


def test_fc_none_and_all(tiny_model: GPT2) -> None:
    ids = np.arange(12).reshape(1, 12)
    fp32 = Policy.preset("fp32")
    np.testing.assert_array_equal(
        tiny_model.logits(ids, fp32.with_lamp("fc", "none")), tiny_model.logits(ids, fp32)
    )
    out = tiny_model.run(ids, fp32.with_lamp("fc", "all"))
    # recompute = float64 sum of exact products, bias last, rounded to float32: the emulated fp64 product
    np.testing.assert_array_equal(out.logits, tiny_model.logits(ids, fp32.with_site("fc", FP64_ACC)))
    assert out.recompute_rate == 1.0 and out.multiply_add_fraction == 1.0


def test_residual_none_and_all(tiny_model: GPT2) -> None:
    ids = np.arange(12).reshape(1, 12)
    bf16 = Policy.preset("bf16")  # float64 working dtype, residual sums rounded to bf16
    plain = tiny_model.logits(ids, bf16)
    np.testing.assert_array_equal(tiny_model.logits(ids, bf16.with_lamp("residual", "none")), plain)
    out = tiny_model.logits(ids, bf16.with_lamp("residual", "all"))
    np.testing.assert_array_equal(out, tiny_model.logits(ids, bf16.with_site("residual", None)))
    assert not np.array_equal(out, plain)


def test_fc_and_residual_counts(tiny_model: GPT2) -> None:
    config, mu, n = tiny_model.config, 5, 12
    ids = np.arange(2 * n).reshape(2, n) % config.vocab_size
    policy = Policy.preset("bf16").with_lamp("fc", "top_mu", mu=mu).with_lamp("residual", "top_mu", mu=mu)
    stats = tiny_model.run(ids, policy).stats
    tokens = 2 * n
    for layer in range(config.n_layer):
        fc = stats.lamp[(layer, "fc")]
        assert (fc.selected, fc.valid, fc.total, fc.inner) == (
            tokens * mu,
            tokens * config.n_inner,
            tokens * config.n_inner,
            config.n_embd,
        )
        res = stats.lamp[(layer, "residual")]  # two residual sums per block
        assert (res.selected, res.valid, res.inner) == (2 * tokens * mu, 2 * tokens * config.n_embd, 1)
        assert stats.recompute_rate[(layer, "residual")] == mu / config.n_embd
    embed = stats.lamp[(None, "residual")]
    assert (embed.selected, embed.valid) == (tokens * mu, tokens * config.n_embd)
    assert stats.overall_recompute_rate("fc") == mu / config.n_inner


def test_fc_ablation_selects_the_same_count_per_row(tiny_model: GPT2) -> None:
    ids = np.arange(16).reshape(1, 16)
    bf16 = Policy.preset("bf16")
    rule = tiny_model.run(ids, bf16.with_lamp("fc", "strict", tau=0.01), keep_masks=True).stats.masks
    ablation = tiny_model.run(
        ids, bf16.with_lamp("fc", "strict", tau=0.01, ablation="random", seed=3), keep_masks=True
    ).stats.masks
    assert rule is not None and ablation is not None
    (a,), (b,) = rule[(0, "fc")], ablation[(0, "fc")]
    assert 0 < a.sum() < a.size
    np.testing.assert_array_equal(a.sum(axis=-1), b.sum(axis=-1))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("policy_name", ["paper", "fp32", "bf16-acc"])
def test_score_bound_holds_on_the_model_scores(model: GPT2, ids: np.ndarray, policy_name: str) -> None:
    """The bound the forward pass gives the bound-aware rule covers the actual error of the scaled scores (against
    float64 q·k on the same float32 q, k), at an emulated site and at a native float32 BLAS site."""
    from lampnum.gpt2.model import score_bound

    policy = Policy.preset(policy_name, m_bits=7) if policy_name == "paper" else Policy.preset(policy_name)
    rng = np.random.default_rng(0)
    q = (rng.standard_normal((2, 40, 16)) * 2).astype(np.float32)
    k = (rng.standard_normal((2, 40, 16)) * 2).astype(np.float32)
    spec = policy.spec("score", 0)
    kt = np.swapaxes(k, -1, -2)
    z = (q @ kt) if spec is None else ln.matmul(q, kt, spec).astype(np.float32)
    factor = float(np.float32(0.25))
    scaled = (z * np.float32(factor)).astype(np.float64)
    exact = factor * (q.astype(np.float64) @ kt.astype(np.float64))
    beta = score_bound(q, k, z, spec, factor)
    assert np.all(np.abs(scaled - exact) <= beta)
    assert np.median(beta / np.maximum(np.abs(scaled - exact), 1e-300)) < 1e6  # and it is not vacuous


def test_bound_rule_runs_inside_the_model(
    model: GPT2, ids: np.ndarray, paper: Policy, base: RunResult, ref: np.ndarray
) -> None:
    """The bound-aware rule at softmax∘score: the forward pass supplies the bounds; it recomputes a few scores,
    beats the random ablation at the same count, and τ = inf selects nothing (the policy without LAMP)."""
    out = model.run(ids, paper.with_lamp("score", "bound", tau=0.03))  # about 14% of the causal scores
    ablation = model.run(ids, paper.with_lamp("score", "bound", tau=0.03, ablation="random", seed=0))
    assert 0 < out.recompute_rate < 0.5
    # same count per row where the inputs agree (layer 0); later layers see the ablation's own activations
    assert out.stats.recompute_rate[(0, "score")] == ablation.stats.recompute_rate[(0, "score")]
    assert abs(out.recompute_rate - ablation.recompute_rate) < 0.01
    assert kl_divergence(ref, out.logits) < kl_divergence(ref, ablation.logits) < kl_divergence(ref, base.logits)
    nothing = model.run(ids, paper.with_lamp("score", "bound", tau=float("inf")))
    np.testing.assert_array_equal(nothing.logits, base.logits)
