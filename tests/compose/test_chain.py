"""Chains against 200-bit mpmath: softmax(QKᵀ/√d)V and LayerNorm(x + attention(x)) computed in low precision stay
within the composed rigorous bound of the exact result of the original data."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lampnum as ln
import lampnum.compose as lc

from . import reference as ref
from .strategies import examples


def _f32(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32).astype(np.float64)


def _exact_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> list[list[mpmath.mpf]]:
    with mpmath.workprec(ref.PREC):
        d = mpmath.sqrt(q.shape[-1])
        out = []
        for row in q:
            scores = [mpmath.fsum(mpmath.mpf(float(a)) * mpmath.mpf(float(b)) for a, b in zip(row, key, strict=True))
                      / d for key in k]  # fmt: skip
            s = ref.softmax(scores)
            out.append([mpmath.fsum(p * mpmath.mpf(float(x)) for p, x in zip(s, v[:, j], strict=True))
                        for j in range(v.shape[1])])  # fmt: skip
        return out


def _within(computed: np.ndarray, exact: list[list[mpmath.mpf]], bound: np.ndarray) -> None:
    with mpmath.workprec(ref.PREC):
        for i, row in enumerate(exact):
            for j, value in enumerate(row):
                assert abs(mpmath.mpf(float(computed[i, j])) - value) <= mpmath.mpf(float(bound[i, j])), (i, j)


@settings(max_examples=examples(12))
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([0.5, 2.0, 6.0]),
       fmt=st.sampled_from(["bf16", "fp16", "e5m2"]), mode=st.sampled_from(["rne", "sr", "rtz"]))  # fmt: skip
def test_attention_chain_is_rigorous(seed: int, scale: float, fmt: str, mode: str) -> None:
    rng = np.random.default_rng(seed)
    q, k, v = _f32(rng, (3, 16), scale), _f32(rng, (5, 16), scale), _f32(rng, (5, 4))
    score_spec = ln.MatmulSpec(input=fmt, accumulator=fmt, mode=mode)
    value_spec = ln.MatmulSpec(input=fmt, accumulator="fp32", output=fmt, mode=mode)
    report = lc.attention_chain(q, k, v, score_spec=score_spec, softmax_fmt=fmt, value_spec=value_spec, rng=seed)
    assert report.rigorous is not None and report.contributions.shape == (3, 5)
    finite = np.isfinite(report.rigorous)
    _within(np.where(finite, report.values[-1], 0.0), _exact_attention(q, k, v), np.where(finite, report.rigorous, 1e300))
    assert np.all(np.isfinite(report.first_order[finite]))


def test_exact_attention_chain_bounds_only_float64_rounding() -> None:
    rng = np.random.default_rng(3)
    q, k, v = _f32(rng, (2, 8)), _f32(rng, (4, 8)), _f32(rng, (4, 3))
    report = lc.attention_chain(q, k, v)  # every stage in float64
    assert np.all(report.rigorous < 1e-13)
    _within(report.values[-1], _exact_attention(q, k, v), report.rigorous)


@settings(max_examples=examples(12))
@given(seed=st.integers(0, 2**32 - 1), fmt=st.sampled_from(["bf16", "fp16", "e4m3"]),
       outlier=st.booleans())  # fmt: skip
def test_residual_layernorm_chain_is_rigorous(seed: int, fmt: str, outlier: bool) -> None:
    """LayerNorm(x + a): a known only to within β (attention computed in low precision), x with or without an
    outlier feature."""
    rng = np.random.default_rng(seed)
    n = 12
    x, a = rng.standard_normal((2, n)), rng.standard_normal((2, n))
    if outlier:  # an outlier feature, as GPT-2's residual stream has
        x[:, 3] += 30
    beta = np.abs(a) * 2.0**-8 + 1e-4
    a_hat = a + rng.uniform(-1, 1, a.shape) * beta * 0.999
    weight, bias = rng.standard_normal(n), rng.standard_normal(n)
    report = lc.residual_layernorm_chain(x, a_hat, beta, weight=weight, bias=bias, fmt=fmt, rng=seed)
    exact = ref.rows(ref.layernorm(weight, bias, 1e-5), x + a)  # x + a in float64 is not exact: use mpmath
    with mpmath.workprec(ref.PREC):
        exact = [ref.layernorm(weight, bias, 1e-5)([mpmath.mpf(float(p)) + mpmath.mpf(float(r)) for p, r in
                 zip(x[i], a[i], strict=True)]) for i in range(2)]  # fmt: skip
    finite = np.isfinite(report.rigorous)
    _within(np.where(finite, report.values[-1], 0.0), exact, np.where(finite, report.rigorous, 1e300))
    # contributions: (1ᵀ|J_LN(ẑ₂)|·|J_add|) ⊙ β, with the dense LayerNorm Jacobian at the computed residual sum
    dense = np.abs(lc.LayerNorm(weight, bias).jacobian(report.values[1])).sum(axis=-2) * beta
    np.testing.assert_allclose(report.contributions, dense, rtol=1e-9)


def test_gelu_lookahead_contributions_match_lamp_math() -> None:
    """GELU∘fc looking ahead to mlp_proj: contribution_j = ‖W2[j, :]‖₁·|GELU′(z_j)|·β_j (LAMP-MATH.md §3)."""
    rng = np.random.default_rng(0)
    z, W2 = rng.standard_normal((2, 6)), rng.standard_normal((6, 4))
    beta = np.full(z.shape, 1e-3)
    report = lc.analyze_chain([lc.GELU(), lc.Linear(W2)], z, beta)
    expected = np.abs(W2).sum(1) * np.abs(lc.GELU().jacobian(z).diagonal(axis1=-2, axis2=-1)) * beta
    np.testing.assert_allclose(report.contributions, expected, rtol=1e-12)
    assert len(report.stages) == 2 and len(report.values) == 3


def test_chain_through_a_plain_callable_has_no_rigorous_bound() -> None:
    report = lc.analyze_chain([lc.Exp(), lc.Stage(np.tanh)], np.array([[0.1, 0.2]]), 1e-3)
    assert report.rigorous is None and report.first_order.shape == (1, 2)
    with pytest.raises(ValueError):
        lc.analyze_chain([lc.Exp()], np.array([[np.nan]]), 1e-3)
