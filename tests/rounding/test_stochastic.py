"""Stochastic rounding: reproducibility, independence of layout and threads, unbiasedness, and sr_eq's coin."""

from __future__ import annotations

import numpy as np
import pytest

import lampnum as ln


def test_same_seed_same_result_and_generator_equivalence() -> None:
    x = np.random.default_rng(0).standard_normal(10_000)
    a = ln.round(x, "bf16", "sr", rng=42)
    b = ln.round(x, "bf16", "sr", rng=np.random.default_rng(42))
    c = ln.round(x, "bf16", "sr", rng=43)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_generator_advances_between_calls() -> None:
    x = np.full(1000, 1 + 2**-9)
    rng = np.random.default_rng(5)
    assert not np.array_equal(ln.round(x, "bf16", "sr", rng=rng), ln.round(x, "bf16", "sr", rng=rng))


def test_result_does_not_depend_on_memory_layout() -> None:
    x = np.random.default_rng(1).standard_normal((64, 48))
    c_order = ln.round(x, "e4m3", "sr", rng=9)
    f_order = ln.round(np.asfortranarray(x), "e4m3", "sr", rng=9)
    assert np.array_equal(c_order, f_order)
    strided = ln.round(np.ascontiguousarray(x.T).T, "e4m3", "sr", rng=9)
    assert np.array_equal(c_order, strided)


def test_deterministic_modes_leave_the_generator_alone() -> None:
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    ln.round(np.ones(3), "bf16", "rne", rng=rng)
    assert rng.bit_generator.state == state


@pytest.mark.parametrize("name", ["bf16", "fp16", "e4m3", "e5m2"])
@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.9, 2**-7])
def test_sr_is_unbiased(name: str, fraction: float) -> None:
    """E[sr(x)] = x: the mean of n roundings of x = lo + fraction·ulp lies within 5 binomial standard deviations."""
    fmt = ln.format(name)
    lo = 1.0
    ulp = fmt.eps
    x = lo + fraction * ulp
    n = 200_000
    result = ln.round(np.full(n, x), fmt, "sr", rng=2024)
    assert set(np.unique(result)) <= {lo, lo + ulp}
    up_rate = np.mean(result == lo + ulp)
    sigma = np.sqrt(fraction * (1 - fraction) / n)
    assert abs(up_rate - fraction) < 5 * sigma + 1e-12
    assert abs(result.mean() - x) < 5 * sigma * ulp + 1e-15


def test_sr_unbiased_in_the_subnormal_range() -> None:
    fmt = ln.format("fp16")
    x = fmt.smallest_subnormal * 0.25
    result = ln.round(np.full(100_000, x), fmt, "sr", rng=11)
    assert set(np.unique(result)) <= {0.0, fmt.smallest_subnormal}
    assert abs(np.mean(result > 0) - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 100_000)


def test_sr_eq_is_a_fair_coin_and_exact_values_stay() -> None:
    x = np.full(100_000, 1 + 0.1 * 2**-7)
    up_rate = np.mean(ln.round(x, "bf16", "sr_eq", rng=1) > 1)
    assert abs(up_rate - 0.5) < 5 * np.sqrt(0.25 / 100_000)
    exact = np.array([1.0, 1.5, -0.0, 0.0, 448.0])
    for mode in ("sr", "sr_eq"):
        result = ln.round(exact, "e4m3", mode, rng=1)
        assert np.array_equal(result, exact) and np.array_equal(np.signbit(result), np.signbit(exact))


def test_sr_neighbour_correlation_is_absent() -> None:
    """Counter-based random bits: decisions of neighbouring elements are uncorrelated."""
    up = (ln.round(np.full(200_000, 1 + 0.5 * 2**-7), "bf16", "sr", rng=77) > 1).astype(float)
    correlation = np.corrcoef(up[:-1], up[1:])[0, 1]
    assert abs(correlation) < 5 / np.sqrt(up.size)
