"""Emulated presets: accuracy ordering against the float64 reference, exact semantics of one emulated
linear layer, values representable in the site formats, cached decoding equal to the full forward bitwise."""

from __future__ import annotations

import numpy as np
import pytest

import lampnum as ln
from lampnum.gpt2.metrics import flip_rate, kl_divergence
from lampnum.gpt2.model import gpt2
from lampnum.gpt2.policy import Context, Policy

pytestmark = pytest.mark.skipif(not hasattr(ln, "matmul"), reason="lampnum.matmul is not available yet")

IDS = np.random.default_rng(0).integers(0, 100, (2, 16))


@pytest.fixture
def model(make_model):
    return make_model(seed=1, std=0.3)


def test_precision_ordering_against_float64(model) -> None:
    ref = model.logits(IDS)
    presets = ("fp32", "fp16", "bf16-acc", "bf16")
    kl = {p: kl_divergence(ref, model.logits(IDS, Policy.preset(p))) for p in presets}
    assert 0 < kl["fp32"] < 1e-9
    assert kl["fp32"] < kl["fp16"] < kl["bf16"]
    assert 1e-7 < kl["bf16-acc"] < 1e-1  # small but far from zero: bf16 accumulation everywhere
    assert kl["bf16"] < 1.0


def test_paper_setting_with_full_mantissa_is_fp32(model) -> None:
    ref, f32 = model.logits(IDS), model.logits(IDS, Policy.preset("fp32"))
    p23 = model.logits(IDS, Policy.preset("paper", m_bits=23))
    assert p23.dtype == np.float32 and flip_rate(f32, p23) == 0.0
    assert kl_divergence(f32, p23) < 1e-10  # only the order of the fp32 QKᵀ sums differs from BLAS
    kl = {m: kl_divergence(ref, model.logits(IDS, Policy.preset("paper", m_bits=m))) for m in (3, 7, 23)}
    assert kl[3] > kl[7] > 10 * kl[23]


def test_emulated_linear_accumulates_the_bias_last() -> None:
    """x @ W + b under a strict bf16-accumulator spec, against a scalar loop (products exact in float64)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 20)).astype(np.float32).astype(np.float64)
    w = rng.normal(size=(20, 4)).astype(np.float32).astype(np.float64)
    b = rng.normal(size=4).astype(np.float32).astype(np.float64)
    spec = ln.MatmulSpec(input="fp32", accumulator="bf16", output="fp16")
    got = Context(Policy(matmul={"fc": spec})).linear("fc", 0, x, w, b)
    expected = np.empty((3, 4))
    for i in range(3):
        for j in range(4):
            s = 0.0
            for k in range(20):  # fp32 operands: the product has <= 48 bits, exact in float64
                s = float(ln.round(s + x[i, k] * w[k, j], "bf16"))
            expected[i, j] = float(ln.round(float(ln.round(s + b[j], "bf16")), "fp16"))
    np.testing.assert_array_equal(got, expected)


class Products(Context):
    """A context that keeps every matrix-product output, by site."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self.seen: dict[str, list[np.ndarray]] = {}

    def matmul(self, site, layer, a, b, lower=None):
        out = super().matmul(site, layer, a, b, lower)
        self.seen.setdefault(site, []).append(out)
        return out

    def linear(self, site, layer, x, w, b):
        out = super().linear(site, layer, x, w, b)
        self.seen.setdefault(site, []).append(out)
        return out


@pytest.mark.parametrize("preset, m_bits", [("bf16-acc", None), ("paper", 7), ("fp16", None)])
def test_products_hold_values_of_their_result_format(model, preset, m_bits) -> None:
    policy = Policy.preset(preset, m_bits=m_bits) if m_bits else Policy.preset(preset)
    ctx = Products(policy)
    gpt2(IDS, model.params_for(policy), model.config, ctx)
    assert len(ctx.seen) == 7
    for site, outs in ctx.seen.items():
        spec = policy.spec(site, 0)
        if spec is None:
            continue
        fmt = spec.output or spec.accumulator
        for out in outs:
            assert out.dtype == np.dtype(policy.dtype)
            assert np.array_equal(ln.round(out.astype(np.float64), fmt), out), (preset, site)


def test_cached_decoding_is_bitwise_the_full_forward_when_emulated(model) -> None:
    policy = Policy.preset("bf16-acc")
    full = model.logits(IDS[:, :10], policy)
    logits, cache = model.forward(IDS[:, :6], policy)
    steps = [logits]
    for t in range(6, 10):
        logits, cache = model.forward(IDS[:, t : t + 1], policy, cache)
        steps.append(logits)
    np.testing.assert_array_equal(np.concatenate(steps, axis=1), full)
