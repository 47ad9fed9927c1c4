"""The constants of rounding-error analysis against exact rounding (round_reference) and 200-bit mpmath."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.bounds import gamma, gamma_tilde, lambda_for, probability, rounding, theta, unit_roundoff
from lampnum.bounds.growth import Factor, deterministic_growth, probabilistic_growth
from lampnum.rounding import round_reference

from .strategies import MODES, examples, formats

mp = mpmath.mp.clone() if hasattr(mpmath.mp, "clone") else mpmath.mp


@pytest.mark.parametrize("name", ["fp64", "fp32", "tf32", "bf16", "fp16", "e4m3", "e5m2", "e4m3fnuz", "e2m1"])
def test_unit_roundoff_is_half_or_one_spacing(name: str) -> None:
    fmt = ln.format(name)
    assert unit_roundoff(fmt) == 2.0**-fmt.p == fmt.unit_roundoff
    for mode in ("rtz", "rup", "rdn", "rto", "sr", "sr_eq"):
        assert unit_roundoff(fmt, mode) == 2.0 ** (1 - fmt.p) == fmt.eps


def test_underflow_bounds_of_the_table() -> None:
    fp16, flush = ln.format("fp16"), ln.Format(p=11, emax=15, subnormals=False)
    assert rounding(fp16).eta == 2.0**-25 == fp16.smallest_subnormal / 2
    assert rounding(fp16, "rtz").eta == 2.0**-24 == fp16.smallest_subnormal
    assert rounding(flush).eta == 2.0**-15 == flush.tiny / 2
    assert rounding(flush, "sr").eta == 2.0**-14 == flush.tiny
    assert rounding("fp64").eta == 2.0**-1074  # 2^-1075 rounded up to a float64


@settings(max_examples=examples(300))
@given(fmt=formats(min_p=2, max_p=12), mode=st.sampled_from(MODES), data=st.data())
@example(fmt=ln.Format(p=3, emax=3, subnormals=False), mode="rne", data=None)
def test_one_rounding_obeys_its_model(fmt: ln.Format, mode: str, data: st.DataObject | None) -> None:
    """|fl(x) − x| ≤ max(u|x|, η) for exact rationals x below the threshold, and no overflow there (exact rounding)."""
    r = rounding(fmt, mode)
    if data is None:
        xs = [Fraction(3, 2) * Fraction(fmt.tiny) / 2, Fraction(fmt.tiny) / 2 + Fraction(1, 10**30)]
        bits = [0, 0]
    else:
        where = data.draw(st.sampled_from(["subnormal", "normal", "top"]))
        top = Fraction(r.threshold) if math.isfinite(r.threshold) else Fraction(fmt.max)
        low, high = {"subnormal": (0, 2 * fmt.tiny), "normal": (fmt.tiny, fmt.max), "top": (fmt.max / 2, 1)}[where]
        fraction = Fraction(data.draw(st.integers(0, 2**40 - 1)), 2**40)
        x = Fraction(low) + (Fraction(high) - Fraction(low)) * fraction if where != "top" else top * fraction
        xs = [x * data.draw(st.sampled_from([1, -1]))]
        bits = [data.draw(st.integers(0, 2**64 - 1))]
    for x, random_bits in zip(xs, bits, strict=True):
        if abs(x) >= Fraction(r.threshold):
            continue
        y = round_reference(x, fmt, mode, random_bits)
        assert math.isfinite(y) and abs(y) <= fmt.max, (x, y)
        assert abs(Fraction(y) - x) <= max(Fraction(r.u) * abs(x), Fraction(r.eta)), (x, y)


@pytest.mark.parametrize("mode", ["rne", "rtz", "sr"])
def test_rounding_model_is_attained(mode: str) -> None:
    """The constants are sharp: some x errs by more than 0.9 of u|x| (normal range) and of η (subnormal range)."""
    fmt = ln.Format(p=5, emax=7)
    r = rounding(fmt, mode)
    spacing, sub = Fraction(1, 2**4), Fraction(fmt.smallest_subnormal)
    if mode == "rne":  # a midpoint above 1 and one above 0 (ties to even: down)
        cases, bits = [(1 + spacing / 2, r.u * (1 + spacing / 2)), (sub / 2, r.eta)], 0
    else:  # just below the next number: rtz, and sr with the largest random word, round down by almost a spacing
        tiny = Fraction(1, 2**40)
        cases, bits = [(1 + spacing - tiny, r.u * (1 + spacing)), (sub - tiny, r.eta)], 2**64 - 1
    for x, scale in cases:
        error = abs(Fraction(round_reference(x, fmt, mode, bits)) - x)
        assert Fraction(9, 10) * Fraction(scale) < error <= Fraction(scale), (x, error, scale)


def test_gamma_exact_and_bad_input() -> None:
    assert Fraction(gamma(10, 2.0**-8)) >= Fraction(10, 246)
    assert gamma(10, 2.0**-8) == pytest.approx(10 / 246, rel=1e-15)
    assert gamma(0, 0.5) == 0.0
    with pytest.raises(ValueError, match="undefined for n\\*u >= 1"):
        gamma(256, 2.0**-8)
    with pytest.raises(ValueError, match="non-negative"):
        gamma(-1, 2.0**-8)
    with pytest.raises(TypeError):
        gamma(2.5, 2.0**-8)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gamma(3, 1.5)
    with pytest.raises(ValueError, match="non-negative"):
        theta(-3, 0.1)
    with pytest.raises(ValueError):
        lambda_for(0.0)
    with pytest.raises(ValueError):
        gamma_tilde(10, 0.01, -1.0)


@settings(max_examples=examples(200))
@given(n=st.integers(0, 10**6), p=st.integers(2, 53), lam=st.floats(0, 20))
@example(n=4096, p=8, lam=5.0)
@example(n=10**6, p=3, lam=20.0)
def test_constants_are_upper_bounds_of_their_200_bit_values(n: int, p: int, lam: float) -> None:
    u = 2.0**-p
    with mpmath.workprec(200):
        exact_theta = (1 + mpmath.mpf(u)) ** n - 1
        exact_tilde = mpmath.expm1(lam * mpmath.sqrt(n) * u + n * mpmath.mpf(u) ** 2 / (1 - mpmath.mpf(u)))
        assert theta(n, u) >= exact_theta
        assert theta(n, u) <= exact_theta * (1 + 2.0**-30) or math.isinf(theta(n, u))
        assert gamma_tilde(n, u, lam) >= exact_tilde
        if n * u < 1:  # θ_n ≤ γ_n (both rounded up: θ carries a 2^-36 evaluation margin)
            assert theta(n, u) <= gamma(n, u) * (1 + 2.0**-30)


@given(fail=st.floats(1e-300, 0.5), events=st.integers(1, 10**12))
def test_lambda_gives_the_failure_probability(fail: float, events: int) -> None:
    lam = lambda_for(fail, 0.0, events)
    assert events * 2 * math.exp(-(lam**2) / 2) <= fail * (1 + 1e-12)
    assert 1 - probability(lambda_for(fail)) <= fail * (1 + 1e-12) + 2.0**-52  # P is rounded down near 1


@settings(max_examples=examples(100))
@given(n=st.integers(1, 10**5), p=st.integers(3, 24), fail=st.floats(1e-12, 0.1))
def test_heterogeneous_growth_is_at_most_higham_mary(n: int, p: int, fail: float) -> None:
    """With one u, our Azuma–Hoeffding form never exceeds γ̃_n(λ') at the same probability (λ = λ'(1 − u))."""
    u = 2.0**-p
    r = ln.bounds.rounding(ln.Format(p=p, emax=15))
    lam_hm = lambda_for(fail, u)
    ours = float(probabilistic_growth([Factor(r, n)], lam_hm * (1 - u), frozenset({"model"})))
    assert ours <= gamma_tilde(n, u, lam_hm) * (1 + 1e-12)
    assert ours <= float(deterministic_growth([Factor(r, n)]))


def test_probabilistic_growth_holds_for_worst_case_random_errors() -> None:
    """Rademacher errors δ = ±u (the extreme mean-zero law): the failure rate stays below 2·exp(−λ²/2)."""
    rng = np.random.default_rng(20240601)
    n, u, lam, trials = 400, 2.0**-4, 1.5, 20000
    r = ln.bounds.rounding(ln.Format(p=4, emax=15))
    bound = float(probabilistic_growth([Factor(r, n)], lam, frozenset({"model"})))
    signs = rng.choice([-1.0, 1.0], size=(trials, n))
    products = np.exp(np.sum(np.log1p(u * signs), axis=1))
    rate = np.mean(np.abs(products - 1) > bound)
    assert rate <= 2 * math.exp(-(lam**2) / 2)
    assert rate > 0.001  # and the bound is not vacuous here: it is crossed at a visible rate
