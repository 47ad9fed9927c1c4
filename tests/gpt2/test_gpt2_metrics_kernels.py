"""The fused KL / flip kernel against 60-digit mpmath, numpy's argmax and its pure-Python twin."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lampnum.gpt2.metrics import kl_and_flip_rate, kl_divergence
from lampnum.gpt2.metrics_kernels import (
    expm1_minus_x,
    expm1_minus_x_reference,
    kl_flip_row_reference,
    kl_flip_rows,
)


def mp_kl_row(x: np.ndarray, y: np.ndarray) -> float:
    ctx = mpmath.MPContext()
    ctx.dps = 60
    lx, ly = [ctx.mpf(float(v)) for v in x], [ctx.mpf(float(v)) for v in y]
    zx, zy = ctx.log(ctx.fsum(ctx.exp(v) for v in lx)), ctx.log(ctx.fsum(ctx.exp(v) for v in ly))
    return float(ctx.fsum(ctx.exp(a - zx) * ((a - zx) - (b - zy)) for a, b in zip(lx, ly, strict=True)))


@settings(max_examples=300, deadline=None)
@given(st.floats(-0.75, 0.75, allow_subnormal=True))
@example(0.0).via("zero")
@example(0.03125).via("tier boundary")
@example(-0.03125).via("tier boundary")
@example(0.5).via("series boundary")
@example(-0.5).via("series boundary")
@example(1e-300).via("tiny")
@example(3.08e-80).via("tiny: mpmath's expm1(r) - r is 0 at 60 digits")
@example(2e-154).via("r*r/2 subnormal")
def test_expm1_minus_x_against_mpmath(r: float) -> None:
    ctx = mpmath.MPContext()
    ctx.dps = 60
    # sum_{k>=2} r^k / k! term by term: no cancellation, so 60 digits are 60 digits even for r = 1e-80
    # (expm1(r) - r in mpmath would lose everything to the subtraction); 0.75^60 / 60! is far below 1e-60
    power, exact_mp = ctx.mpf(r), ctx.mpf(0)
    for k in range(2, 60):
        power = power * r / k
        exact_mp += power
    exact = float(exact_mp)
    # the series: about 1 ulp; beyond |r| = 1/2, expm1's half ulp amplified at most 4.4 times by the subtraction;
    # the absolute slack covers results in float64's subnormal range, where relative accuracy ends
    tolerance = 4e-16 if abs(r) < 0.5 else 1.2e-15
    for value in (expm1_minus_x(r), expm1_minus_x_reference(r)):
        assert value == pytest.approx(exact, rel=tolerance, abs=2e-323)


def _rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    vocab = draw(st.integers(1, 40))
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0, 200.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=vocab) * scale
    kind = draw(st.sampled_from(["near", "far", "shifted", "float32"]))
    if kind == "near":  # tiny divergences: the relative accuracy of Csiszár's form is what is tested
        y = x + draw(st.sampled_from([1e-9, 1e-6, 1e-3, 0.1])) * rng.normal(size=vocab)
    elif kind == "far":
        y = rng.normal(size=vocab) * scale
    elif kind == "shifted":
        y = x + 7.0
    else:
        y = (x + 1e-3 * rng.normal(size=vocab)).astype(np.float32).astype(np.float64)
    return x, y


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_kernel_against_mpmath_and_its_twin(data: st.DataObject) -> None:
    x, y = _rows(data.draw)
    kl, flip = np.empty(1), np.empty(1)
    assert kl_flip_rows(x[None], y[None], kl, flip) == 0
    exact = mp_kl_row(x, y)
    twin_kl, twin_flip = kl_flip_row_reference(list(x), list(y))
    # Error model (see kl_divergence): each r_j = log q_j - log p_j carries an absolute rounding error
    # delta <= c·eps·M with M the size of the logits and log-sum-exps it is formed from, so KL = sum p r^2/2 + ...
    # is off by at most about sum p (|r| delta + delta^2 / 2): relative 1e-6 where |r| >> delta, absolute where
    # the divergence is itself at rounding level (y = x + 7 rounded: r ~ 1e-16). The 1e-50 floor is the
    # 60-digit reference's own noise (the exact KL of one token is 0, mpmath returns a few 1e-63 of either sign).
    eps = 2.0**-52
    size = 4.0 * (np.max(np.abs(x)) + np.max(np.abs(y)) + math.log(len(x)) + 1.0)
    delta = 16.0 * eps * size
    max_r = float(np.max(np.abs((y - np.logaddexp.reduce(y)) - (x - np.logaddexp.reduce(x)))))
    slack = max(delta * (max_r + delta), 1e-50)
    assert kl[0] == pytest.approx(exact, rel=1e-6, abs=slack)
    assert twin_kl == pytest.approx(exact, rel=1e-6, abs=slack)
    assert kl[0] >= 0.0
    assert flip[0] == twin_flip == float(np.argmax(x) != np.argmax(y))


def test_special_values_and_argmax_semantics() -> None:
    x = np.array([[0.0, 1.0, 2.0, 2.0]])
    cases = {
        "q = 0 where p > 0": (np.array([[0.0, -np.inf, 2.0, 2.0]]), math.inf),
        "+inf test logit": (np.array([[0.0, np.inf, 2.0, 2.0]]), math.nan),
        "NaN test logit": (np.array([[0.0, 1.0, np.nan, 2.0]]), math.nan),
        "all -inf": (np.full((1, 4), -np.inf), math.nan),
    }
    for name, (y, expected) in cases.items():
        kl, flip = np.empty(1), np.empty(1)
        kl_flip_rows(x, y, kl, flip)
        twin = kl_flip_row_reference(list(x[0]), list(y[0]))
        if math.isnan(expected):
            assert math.isnan(kl[0]) and math.isnan(twin[0]), name
        else:
            assert kl[0] == twin[0] == expected, name
        assert flip[0] == float(np.argmax(x[0]) != np.argmax(y[0])) == twin[1], name  # NaN is numpy's argmax
    # p underflows to 0 for a hugely negative reference logit: the entry contributes nothing, whatever q is
    assert kl_divergence(np.array([[0.0, -1e4]]), np.array([[0.0, -np.inf]])) == 0.0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="reference logits contain non-finite"):
        kl_and_flip_rate(np.array([[0.0, np.inf]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        kl_flip_row_reference([0.0, math.nan], [0.0, 0.0])
    with pytest.raises(TypeError, match="floating point"):
        kl_and_flip_rate(np.zeros((1, 3), dtype=np.int64), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="one shape"):
        kl_and_flip_rate(np.zeros((1, 3)), np.zeros((1, 4)))


def test_mixed_dtypes_and_batches() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(3, 4, 50)) * 3
    test = (ref + 0.01 * rng.normal(size=ref.shape)).astype(np.float32)
    kl, flips = kl_and_flip_rate(ref, test)
    rows = [kl_flip_row_reference(list(r), [float(v) for v in t])
            for r, t in zip(ref.reshape(-1, 50), test.reshape(-1, 50), strict=True)]  # fmt: skip
    assert kl == pytest.approx(np.mean([r[0] for r in rows]), rel=1e-12)
    assert flips == np.mean([r[1] for r in rows])


def test_mass_where_the_reference_probability_underflows() -> None:
    """Csiszár's form needs the entries whose reference probability underflows to 0: there the term is q itself.
    Here KL = 800 - 1e-347·(...) exactly to double precision; dropping the entry gave 799 (a hypothesis find)."""
    x, y = np.array([[0.0, -800.0]]), np.array([[-800.0, 0.0]])
    exact = mp_kl_row(x[0], y[0])
    assert exact == pytest.approx(800.0, rel=1e-15)
    kl, flip = np.empty(1), np.empty(1)
    kl_flip_rows(x, y, kl, flip)
    assert kl[0] == pytest.approx(exact, rel=1e-15)
    assert kl_flip_row_reference(list(x[0]), list(y[0]))[0] == pytest.approx(exact, rel=1e-15)
    # a subnormal reference probability with r far beyond expm1's overflow: q - p (1 + r), finite
    x, y = np.array([[0.0, -740.0]]), np.array([[-5.0, 0.0]])
    kl_flip_rows(x, y, kl, flip)
    assert kl[0] == pytest.approx(mp_kl_row(x[0], y[0]), rel=1e-12)
