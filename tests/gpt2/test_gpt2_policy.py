"""Policies: construction and validation, per-layer overrides, rounding hooks, weight quantisation."""

from __future__ import annotations

import numpy as np
import pytest

import lampnum as ln
from lampnum.gpt2.metrics import kl_divergence
from lampnum.gpt2.model import gpt2
from lampnum.gpt2.policy import ELEMENTWISE_SITES, MATMUL_SITES, PRESETS, Context, Policy, quantize_weight


def representable(x: np.ndarray, fmt: str | ln.Format) -> bool:
    """Every value of x is a value of fmt (rounding it changes nothing)."""
    return bool(np.array_equal(ln.round(np.asarray(x, dtype=np.float64), fmt), x))


def test_presets_follow_their_documentation() -> None:
    assert all(Policy.preset(p).is_native for p in ("fp64", "fp32"))
    assert Policy.preset("fp64").dtype == "float64" and Policy.preset("fp32").dtype == "float32"
    bf16, fp32 = ln.format("bf16"), ln.format("fp32")
    acc = Policy.preset("bf16-acc")
    for site in MATMUL_SITES:
        spec = acc.spec(site, 0)
        assert (spec.input, spec.accumulator, spec.block, spec.product) == (fp32, bf16, 1, None)
    assert all(acc.format(s, 3) == fp32 for s in ELEMENTWISE_SITES)
    assert all(Policy.preset("bf16").format(s, None) == bf16 for s in ELEMENTWISE_SITES)
    paper = Policy.preset("paper", m_bits=7)
    spec = paper.spec("score", 5)
    assert paper.dtype == "float32" and spec.accumulator.p == 8 and spec.accumulator.emax == 127
    assert spec.via == fp32 and spec.product == fp32 and spec.block == 1
    assert all(paper.spec(s, 0) is None for s in MATMUL_SITES if s != "score")
    assert all(paper.format(s, 0) is None for s in ELEMENTWISE_SITES)
    assert Policy.preset("e4m3-weights").weights == ln.format("e4m3")
    assert set(PRESETS) == {"fp64", "fp32", "bf16", "bf16-acc", "fp16", "e4m3-weights", "paper"}


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: Policy.preset("fp7"), ValueError, "unknown preset 'fp7'"),
        (lambda: Policy.preset("paper"), ValueError, "needs m_bits"),
        (lambda: Policy.preset("paper", m_bits=24), ValueError, "needs m_bits"),
        (lambda: Policy.preset("fp32", m_bits=3), ValueError, "m_bits applies to the 'paper' preset only"),
        (lambda: Policy(matmul={"qk": None}), ValueError, r"unknown site\(s\) \['qk'\]"),
        (lambda: Policy(matmul={"score": "bf16"}), TypeError, "takes a lampnum.MatmulSpec"),
        (lambda: Policy(elementwise={"gelu": "fp7"}), ValueError, "unknown format 'fp7'"),
        (lambda: Policy(dtype="float16"), ValueError, "dtype must be one of"),
        (
            lambda: Policy(dtype="float32", matmul={"fc": ln.MatmulSpec(accumulator="fp64")}),
            ValueError,
            "float32 working arrays cannot hold",
        ),
        (
            lambda: Policy(dtype="float32", elementwise={"softmax": ln.Format(p=30, emax=127)}),
            ValueError,
            "float32 working arrays cannot hold",
        ),
        (lambda: Policy(layers={-1: {"gelu": "bf16"}}), ValueError, "block indices"),
        (lambda: Policy(layers={0: {"gelu2": "bf16"}}), ValueError, "unknown site 'gelu2'"),
        (lambda: Policy().spec("gelu", 0), ValueError, "not a matrix-product site"),
    ],
)
def test_invalid_policies_are_refused(call, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        call()


def test_per_layer_overrides_take_precedence() -> None:
    spec = ln.MatmulSpec(accumulator="bf16")
    p = Policy.preset("fp64").with_site("score", spec, layers=[1, 3]).with_site("gelu", "fp16", layers=[0])
    assert p.spec("score", 1) is spec and p.spec("score", 3) is spec
    assert p.spec("score", 0) is None and p.spec("score", None) is None
    assert p.format("gelu", 0) == ln.format("fp16") and p.format("gelu", 1) is None
    q = p.with_site("score", ln.MatmulSpec(accumulator="fp16"))  # model-wide: layers 1 and 3 keep theirs
    assert q.spec("score", 1) is spec and q.spec("score", 0).accumulator == ln.format("fp16")
    assert not p.is_native and Policy.preset("fp64").is_native
    with pytest.raises(TypeError):
        p.matmul["score"] = None  # type: ignore[index]  # the tables are read-only


class Recording(Context):
    """A context that keeps every elementwise output, by site (for checking the hooks from outside)."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self.seen: dict[tuple[str, int | None], list[np.ndarray]] = {}

    def elementwise(self, site, layer, fn, *args):
        out = super().elementwise(site, layer, fn, *args)
        self.seen.setdefault((site, layer), []).append(out)
        return out


def test_rounding_hooks_cover_every_stage_and_round_to_their_formats(tiny_model) -> None:
    policy = Policy(
        elementwise={"softmax": "bf16", "gelu": "fp16", "layernorm": "e4m3", "residual": "bf16"},
        layers={1: {"gelu": "e5m2"}},
    )
    ctx = Recording(policy)
    ids = np.random.default_rng(0).integers(0, 100, (2, 9))
    logits, _ = gpt2(ids, tiny_model.params_for(policy), tiny_model.config, ctx)
    n = tiny_model.config.n_layer
    counts = {s: sum(len(v) for (site, _), v in ctx.seen.items() if site == s) for s in ELEMENTWISE_SITES}
    assert counts == {"softmax": n, "gelu": n, "layernorm": 2 * n + 1, "residual": 2 * n + 1}
    for (site, layer), outs in ctx.seen.items():
        fmt = policy.format(site, layer)
        assert all(representable(o, fmt) for o in outs), (site, layer)
    assert ctx.seen[("gelu", 1)] and policy.format("gelu", 1) == ln.format("e5m2")
    kl = kl_divergence(tiny_model.logits(ids), logits)
    assert 1e-8 < kl < 1.0  # rounding happened, and the model still computes something close


def test_quantize_weight_is_a_scaled_e4m3_rounding() -> None:
    e4m3 = ln.format("e4m3")
    w = np.random.default_rng(0).normal(0, 0.02, (64, 48))
    q = quantize_weight(w, e4m3)
    k = int(np.floor(np.log2(448.0 / np.abs(w).max())))
    assert representable(np.ldexp(q, k), e4m3)
    np.testing.assert_array_equal(q, np.ldexp(ln.round(np.ldexp(w, k), e4m3), -k))
    assert np.abs(np.ldexp(q, k)).max() <= 448.0 < np.abs(np.ldexp(w, k + 1)).max()
    normal = np.abs(np.ldexp(w, k)) >= e4m3.tiny
    rel = np.abs(q - w)[normal] / np.abs(w)[normal]
    assert rel.max() <= e4m3.unit_roundoff and rel.max() > e4m3.unit_roundoff / 2
    np.testing.assert_array_equal(quantize_weight(np.zeros((3, 3)), e4m3), 0.0)
    w_edge = np.array([448.0, 1.0, -3.0])  # max|w| already at the format's max: scale 1
    np.testing.assert_array_equal(quantize_weight(w_edge, e4m3), w_edge)


def test_e4m3_weights_policy_uses_quantised_weights(tiny_model) -> None:
    policy = Policy.preset("e4m3-weights")
    params = tiny_model.params_for(policy)
    for i in range(tiny_model.config.n_layer):
        for name in ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"):
            key = f"h.{i}.{name}"
            assert params[key].dtype == np.float32
            np.testing.assert_array_equal(
                params[key], quantize_weight(tiny_model.params[key], ln.format("e4m3"))
            )
    np.testing.assert_array_equal(params["wte.weight"], tiny_model.params["wte.weight"].astype(np.float32))
    assert tiny_model.params_for(policy) is params  # prepared once
    ids = np.arange(20) % 100
    kl = kl_divergence(tiny_model.logits(ids), tiny_model.logits(ids, policy))
    kl32 = kl_divergence(tiny_model.logits(ids), tiny_model.logits(ids, Policy.preset("fp32")))
    assert kl > 1e3 * kl32 and kl < 0.5


def test_run_reports_time_per_site(tiny_model) -> None:
    out = tiny_model.run(np.arange(10), Policy.preset("fp32"))
    assert out.logits.dtype == np.float32 and out.stats.recompute_rate == {}
    n = tiny_model.config.n_layer
    assert out.stats.calls == {
        "residual": 2 * n + 1,
        "layernorm": 2 * n + 1,
        "qkv": n,
        "score": n,
        "softmax": n,
        "value": n,
        "attn_proj": n,
        "fc": n,
        "gelu": n,
        "mlp_proj": n,
        "lm_head": 1,
    }
    assert 0 < sum(out.stats.seconds.values()) <= out.stats.total_seconds
