"""The primitives' bounds against 200-bit mpmath: Jacobians, rigorous bounds never violated (and attained where they
are exact), first-order bounds exceeded only by O(β²), own rounding errors in random formats and modes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lampnum.compose as lc

from . import reference as ref
from .strategies import box_points, examples, extremal_corner, formats, inputs

RNG = np.random.default_rng(12345)
LN_WEIGHT, LN_BIAS = RNG.standard_normal(16), RNG.standard_normal(16)


def _layernorm(n: int) -> tuple[lc.Primitive, object]:
    return lc.LayerNorm(LN_WEIGHT[:n], LN_BIAS[:n], 1e-5), ref.layernorm(LN_WEIGHT[:n], LN_BIAS[:n], 1e-5)


CASES = {
    "softmax": lambda n: (lc.Softmax(), ref.softmax),
    "log_softmax": lambda n: (lc.LogSoftmax(), ref.log_softmax),
    "exp": lambda n: (lc.Exp(), ref.exp),
    "gelu_tanh": lambda n: (lc.GELU("tanh"), ref.gelu_tanh),
    "gelu_erf": lambda n: (lc.GELU("none"), ref.gelu_erf),
    "layernorm": _layernorm,
}


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=examples(25))
@given(data=inputs(max_n=8))
def test_first_order_is_the_exact_jacobian_times_beta(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    """|J(ẑ)|β and (1ᵀ|J(ẑ)|)⊙β against a 200-bit finite-difference Jacobian of an independent implementation."""
    z_hat, beta = data
    if name == "exp":
        z_hat = np.clip(z_hat, -50, 50)
    primitive, exact = CASES[name](z_hat.shape[-1])
    first = primitive.first_order(z_hat, beta)
    contributions = primitive.contributions(z_hat, beta)
    for row in range(z_hat.shape[0]):
        J = np.abs(ref.jacobian(exact, z_hat[row]))
        # float64 evaluation: relative 1e-9, or absolute 1e-13 of the row's scale where a Jacobian entry cancels
        # (LayerNorm's 1 − 1/n − x_i²/n at n = 2)
        terms = np.max(J)
        if name == "layernorm":  # the size of the terms that cancel: |w|/σ
            terms = np.max(np.abs(LN_WEIGHT)) / np.sqrt(np.var(z_hat[row]) + 1e-5)
        scale = 1e-13 * terms * np.sum(beta[row]) + 1e-300
        np.testing.assert_allclose(first[row], J @ beta[row], rtol=1e-9, atol=scale)
        np.testing.assert_allclose(contributions[row], J.sum(0) * beta[row], rtol=1e-9, atol=scale)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=examples(60))
@given(data=inputs(), seed=st.integers(0, 2**32 - 1))
def test_rigorous_bound_never_violated(name: str, data: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    z_hat, beta = data
    if name in ("exp",):
        z_hat = np.clip(z_hat, -300, 300)
    primitive, exact = CASES[name](z_hat.shape[-1])
    rigorous = primitive.rigorous(z_hat, beta)  # (it may be below first_order: an exact supremum feels curvature)
    rng = np.random.default_rng(seed)
    points = box_points(rng, z_hat, beta)
    if name in ("softmax", "log_softmax"):
        points += [extremal_corner(z_hat, beta, i, s) for i in range(z_hat.shape[-1]) for s in (1.0, -1.0)]
    for z in points:
        observed = ref.max_abs_difference(exact, z_hat, z)
        assert np.all(observed <= rigorous), (np.max(observed - rigorous), z_hat, beta)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "exp"])
@settings(max_examples=examples(30))
@given(data=inputs(max_n=6, kinds=["normal", "wide", "one_hot", "equal", "integers"]))
def test_exact_bounds_are_attained(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    """Softmax, log-softmax and exp bounds are the supremum: some corner of the box reaches them (to 1e-6)."""
    z_hat, beta = data
    primitive, exact = CASES[name](z_hat.shape[-1])
    rigorous = primitive.rigorous(z_hat, beta)
    best = np.zeros_like(rigorous)
    for i in range(z_hat.shape[-1]):
        for sign in (1.0, -1.0):
            z = extremal_corner(z_hat, beta, i, sign) if name != "exp" else z_hat - sign * beta
            best = np.maximum(best, ref.max_abs_difference(exact, z_hat, z))
    # attained to 1e-6 relative, up to the float64 noise of the bound's own evaluation (1e-12·β: e.g. log-softmax of one
    # component is constant, and its bound β + log(e^{−β}) is 0 only up to rounding)
    slack = 1e-12 * np.max(beta, axis=-1, keepdims=True) + 1e-290
    assert np.all(best >= rigorous * (1 - 1e-6) - slack)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=examples(20))
@given(data=inputs(max_n=8, kinds=["normal", "wide", "integers"]))
def test_first_order_is_exceeded_only_at_second_order(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    """rigorous − first_order (which bounds how far the first-order bound can be exceeded) shrinks like t² when β
    shrinks like t, and the observed error never exceeds first_order + that gap."""
    z_hat, beta = data
    primitive, exact = CASES[name](z_hat.shape[-1])
    beta = np.maximum(beta, 1e-6) * 1e-2 / np.max(np.maximum(beta, 1e-6))  # an O(1e-2) box: beyond rounding noise
    gaps = []
    for t in (1.0, 2.0**-4, 2.0**-8):
        first = primitive.first_order(z_hat, t * beta)
        gap = primitive.rigorous(z_hat, t * beta) - first
        noise = 1e-11 * (first + t * np.max(beta))  # the float64 evaluation noise of the bounds themselves
        gaps.append(np.max(gap - noise) / t**2)
        z = box_points(np.random.default_rng(0), z_hat, t * beta)[1]
        assert np.all(ref.max_abs_difference(exact, z_hat, z) <= first + gap)
    assert gaps[1] <= 4 * max(gaps[0], 0) + 1e-300 and gaps[2] <= 4 * max(gaps[0], 0) + 1e-300, gaps


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=examples(40))
@given(data=inputs(max_n=8), fmt=formats(), mode=st.sampled_from(["rne", "rna", "rtz", "rup", "rdn", "rto", "sr"]),
       seed=st.integers(0, 2**32 - 1), wide_accumulator=st.booleans())  # fmt: skip
def test_own_error_bounds_the_emulated_evaluation(name: str, data: tuple[np.ndarray, np.ndarray], fmt: object,
                                                  mode: str, seed: int, wide_accumulator: bool) -> None:  # fmt: skip
    z_hat, _ = data
    if name == "exp":
        z_hat = np.clip(z_hat, -50, 50)
    primitive, exact = CASES[name](z_hat.shape[-1])
    accumulator = "fp32" if wide_accumulator else None
    own = primitive.own_error(z_hat, fmt, mode, accumulator=accumulator)
    computed = primitive.evaluate(z_hat, fmt, mode, rng=seed, accumulator=accumulator)
    finite = np.isfinite(own)
    assert np.all(np.isfinite(computed[finite])), "a non-finite emulated result where a finite bound was claimed"
    observed = ref.error_against(exact, z_hat, np.where(finite, computed, 0.0))
    assert np.all(observed[finite] <= own[finite])
