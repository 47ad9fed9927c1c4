"""The dot/matmul bounds hold against the exact execution of the emulation model (never violated), for every spec."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.bounds import BoundOverflowWarning

from .exact import emulate_dot, error, exact_dot, exact_matmul
from .strategies import KINDS, examples, formats, make_vector, specs, vectors


def _quiet_bound(*args: object, **kwargs: object) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundOverflowWarning)
        return ln.bounds.matmul(*args, **kwargs)  # type: ignore[arg-type]


def _scale_format(spec: ln.MatmulSpec) -> ln.Format:
    """The narrowest format of the spec: where subnormal and overflow data are placed."""
    candidates = [f for f in (spec.input, spec.product, spec.accumulator, spec.output) if f is not None]
    return min(candidates, key=lambda f: f.max)


@settings(max_examples=examples(200))
@given(data=st.data())
def test_dot_bound_never_violated(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 40), label="n")
    spec = data.draw(specs(n), label="spec")
    scale = _scale_format(spec)
    a = data.draw(vectors(n, scale), label="a")
    b = data.draw(vectors(n, scale), label="b")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    beta = float(_quiet_bound(a, b, spec))
    observed = error(emulate_dot(a, b, spec, rng), exact_dot(a, b))
    if math.isinf(beta):
        return  # overflow possible and reported
    assert observed != math.inf, "an overflow happened where the bound claimed none"
    assert observed <= Fraction(beta), (float(observed), beta)


@settings(max_examples=examples(60))
@given(data=st.data())
def test_matmul_bound_never_violated_entrywise(data: st.DataObject) -> None:
    """Matrices (row and column masks, overflow flags and broadcasting of the matrix code) against exact entries."""
    m, n, q = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 24)), data.draw(st.integers(1, 3))
    spec = data.draw(specs(n))
    scale = _scale_format(spec)
    A = np.stack([data.draw(vectors(n, scale)) for _ in range(m)])
    B = np.stack([data.draw(vectors(n, scale)) for _ in range(q)], axis=1)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    beta = _quiet_bound(A, B, spec)
    assert beta.shape == (m, q)
    exact = exact_matmul(A, B)
    for i in range(m):
        for j in range(q):
            observed = error(emulate_dot(A[i], B[:, j], spec, rng), exact[i][j])
            if math.isfinite(beta[i, j]):
                assert observed <= Fraction(beta[i, j]), (i, j, float(observed), beta[i, j])


@settings(max_examples=examples(40))
@given(fmt=formats(), kind=st.sampled_from(KINDS), seed=st.integers(0, 2**32 - 1))
def test_probabilistic_bound_under_stochastic_rounding(fmt: ln.Format, kind: str, seed: int) -> None:
    """Under sr the probabilistic bound holds unconditionally (failure probability ≤ 1e-9 by construction)."""
    n = 64
    rng = np.random.default_rng(seed)
    a = make_vector(rng, n, kind, fmt)
    b = make_vector(rng, n, "normal", fmt)
    spec = ln.MatmulSpec(accumulator=fmt, mode="sr", product=fmt)
    beta = float(_quiet_bound(a, b, spec, prob=1e-9))
    deterministic = float(_quiet_bound(a, b, spec))
    assert beta <= deterministic
    observed = error(emulate_dot(a, b, spec, rng), exact_dot(a, b))
    if math.isfinite(beta):
        assert observed <= Fraction(beta)


LARGE_SPECS = [
    ln.MatmulSpec(accumulator="bf16"),
    ln.MatmulSpec(input="e4m3", accumulator="fp16", output="bf16"),
    ln.MatmulSpec(input="bf16", accumulator="bf16", block=32, via="fp32"),
    ln.MatmulSpec(input="fp16", product="fp16", accumulator="fp16", mode="sr"),
]


@pytest.mark.parametrize("spec", LARGE_SPECS, ids=["bf16-acc", "e4m3-in", "block32-via", "sr"])
@pytest.mark.parametrize("kind", ["normal", "cancellation", "equal"])
def test_dot_bound_at_n_4096(spec: ln.MatmulSpec, kind: str) -> None:
    rng = np.random.default_rng(4096)
    a, b = make_vector(rng, 4096, kind), make_vector(rng, 4096, "normal")
    if spec.accumulator.max < 1e5:
        a = a * 2.0**-6  # keep fp16 sums far from overflow even in the deterministic worst case (1 + 2^-10)^4096 ≈ 55
    beta = float(_quiet_bound(a, b, spec))
    beta_p = float(_quiet_bound(a, b, spec, prob=1e-6))
    observed = error(emulate_dot(a, b, spec, rng), exact_dot(a, b))
    assert observed <= Fraction(beta)
    if spec.mode.value == "sr" or kind == "normal":  # probabilistic: unconditional under sr; the model on random data
        assert observed <= Fraction(beta_p) <= Fraction(beta)


def test_probabilistic_model_fails_under_stagnation_but_sr_does_not() -> None:
    """Round to nearest is not random: adding n values just under half an ulp to 1 stagnates (every rounding errs by
    the same ≈u), so the Higham–Mary bound, a model, is violated; the deterministic bound holds; under stochastic
    rounding the same data obey the probabilistic bound (Connolly, Higham & Mary 2021, §6 on stagnation)."""
    n, u = 2048, 2.0**-11
    a = np.concatenate([[1.0], np.full(n - 1, u * (1 - 2.0**-8))])
    b = np.ones(n)
    exact = exact_dot(a, b)
    rne = ln.MatmulSpec(accumulator="fp16")
    observed = error(emulate_dot(a, b, rne), exact)
    assert observed == exact - 1  # full stagnation: the sum stays 1
    assert observed <= Fraction(float(ln.bounds.dot(a, b, rne)))
    assert observed > Fraction(float(ln.bounds.dot(a, b, rne, prob=1e-6)))  # the model's bound fails here
    sr = rne.replace(mode="sr")
    sr_observed = error(emulate_dot(a, b, sr, np.random.default_rng(7)), exact)
    assert sr_observed <= Fraction(float(ln.bounds.dot(a, b, sr, prob=1e-6)))


def test_overflow_is_reported_not_hidden() -> None:
    a = np.full(64, 40.0)
    spec = ln.MatmulSpec(accumulator="fp16")  # Σ 40·40 = 102400 > 65504
    with pytest.warns(BoundOverflowWarning, match="1 of 1 entries"):
        beta = ln.bounds.dot(a, a, spec)
    assert math.isinf(beta) and math.isinf(emulate_dot(a, a, spec))
    result = _quiet_bound(np.stack([a, a / 100]), a[:, None], spec, full=True)
    assert result.overflow.tolist() == [[True], [False]] and math.isfinite(result.bound[1, 0])
    with pytest.warns(BoundOverflowWarning):  # an input beyond e4m3's max rounds to NaN
        assert math.isinf(ln.bounds.dot([500.0], [1.0], input="e4m3", accumulator="fp32"))
    with pytest.warns(BoundOverflowWarning):  # a product beyond the product format (checked exactly, entry by entry)
        flags = ln.bounds.matmul(np.array([[300.0, 1.0], [1.0, 1.0]]), np.array([[300.0], [1.0]]), product="fp16",
                                 full=True).overflow  # fmt: skip
    assert flags.tolist() == [[True], [False]]


def test_bad_input_raises_clearly() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        ln.bounds.matmul(np.array([[1.0, np.nan]]), np.ones((2, 1)))
    with pytest.raises(ValueError, match="non-finite"):
        ln.bounds.dot([1.0, np.inf], [1.0, 1.0])
    with pytest.raises(ValueError, match="inner dimensions"):
        ln.bounds.matmul(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="at least one dimension"):
        ln.bounds.matmul(1.0, 2.0)
    with pytest.raises(TypeError, match="unknown MatmulSpec fields"):
        ln.bounds.matmul(np.ones((2, 2)), np.ones((2, 2)), acumulator="bf16")
    with pytest.raises(ValueError, match="failure probability"):
        ln.bounds.matmul(np.ones((2, 2)), np.ones((2, 2)), prob=0.0)


def test_shapes_follow_numpy_matmul_broadcasting() -> None:
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((3, 1, 4, 5)), rng.standard_normal((2, 5, 6))
    beta = ln.bounds.matmul(A, B, accumulator="bf16")
    assert beta.shape == (A @ B).shape == (3, 2, 4, 6)
    assert np.array_equal(beta[2, 1], ln.bounds.matmul(A[2, 0], B[1], accumulator="bf16"))
    assert ln.bounds.matmul(A[0, 0, 0], B[0], accumulator="bf16").shape == (6,)
    assert ln.bounds.matmul(A[0, 0], B[0, :, 0], accumulator="bf16").shape == (4,)
    assert ln.bounds.matmul(np.zeros((2, 0)), np.zeros((0, 3))).tolist() == [[0.0] * 3] * 2


def test_bound_is_monotone_in_the_spec() -> None:
    """More roundings never shrink the bound: adding input, product or output rounding, or narrowing the accumulator."""
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((4, 100)), rng.standard_normal((100, 3))
    base = ln.bounds.matmul(A, B, accumulator="bf16")
    for extra in ({"input": "bf16"}, {"product": "bf16"}, {"output": "e4m3"}, {"via": "fp32"}, {"mode": "rtz"}):
        assert np.all(ln.bounds.matmul(A, B, accumulator="bf16", **extra) >= base), extra
    assert np.all(ln.bounds.matmul(A, B, accumulator="fp16") <= base)
    assert np.all(ln.bounds.matmul(A, B, accumulator="bf16", block=32) <= base)  # fp64 block sums: fewer roundings
