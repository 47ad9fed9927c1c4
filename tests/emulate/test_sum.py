"""lampnum.sum against a rational implementation of each order written from its definition."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.rounding.api import stochastic_key
from lampnum.rounding.modes import as_mode
from lampnum.rounding.reference import random_bits_reference, round_reference

from ..rounding.test_exhaustive import assert_same


class Rounder:
    """Rounds exact sums into the accumulator, numbering the roundings of one reduction as the spec says."""

    def __init__(self, fmt: ln.Format, mode: str, key: int, row: int, n: int) -> None:
        self.fmt, self.mode, self.key, self.counter = fmt, mode, key, row * n

    def __call__(self, exact: Fraction | float) -> float:
        value = round_reference(exact, self.fmt, self.mode, random_bits_reference(self.key, self.counter))
        self.counter += 1
        return value


def add(x: float, y: float) -> Fraction | float:
    if np.isfinite(x) and np.isfinite(y):
        return Fraction(x) + Fraction(y)
    return x + y


def reference_sum(terms: list[float], order: str, block: int, rounder: Rounder) -> float:
    if not terms:
        return 0.0
    if order == "recursive":
        total = rounder(Fraction(terms[0]) if np.isfinite(terms[0]) else terms[0])
        for term in terms[1:]:
            total = rounder(add(total, term))
        return total
    if order == "pairwise":
        level = [rounder(Fraction(t) if np.isfinite(t) else t) for t in terms]
        while len(level) > 1:
            paired = [rounder(add(level[i], level[i + 1])) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                paired.append(level[-1])
            level = paired
        return level[0]
    partial = [reference_sum(terms[i : i + block], "recursive", block, rounder) for i in range(0, len(terms), block)]
    return reference_sum(partial, "recursive", block, rounder)


@settings(max_examples=80)
@given(
    st.sampled_from(["bf16", "fp16", "e4m3", "e5m2", "fp32"]),
    st.sampled_from(["recursive", "pairwise", "blocked"]),
    st.sampled_from(["rne", "rtz", "rup", "sr"]),
    st.integers(1, 3),
    st.integers(0, 70),
    st.sampled_from([1, 4, 32]),
    st.integers(0, 2**32),
)
def test_sum_matches_reference(fmt: str, order: str, mode: str, rows: int, n: int, block: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, n)) * np.exp(rng.uniform(-6, 6, (rows, n)))
    result = ln.sum(x, accumulator=fmt, order=order, block=block, mode=mode, rng=seed)
    key = stochastic_key(as_mode(mode), seed)
    expected = np.array([reference_sum(list(x[r]), order, block, Rounder(ln.format(fmt), mode, key, r, n))
                         for r in range(rows)])  # fmt: skip
    assert_same(result, expected, x, f"{fmt} {order} {mode}")


def test_axis_and_shapes() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    assert ln.sum(x, axis=1, accumulator="fp64").shape == (3, 5)
    np.testing.assert_allclose(ln.sum(x, axis=1, accumulator="fp64"), x.astype(np.float64).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"order": "kahan"}, ValueError, "unknown summation order"),
        ({"block": 0}, ValueError, "positive int"),
        ({"accumulator": "fp65"}, ValueError, "unknown format"),
        ({"mode": "up"}, ValueError, "unknown rounding mode"),
        ({"accumulator": "fp64", "mode": "rdn"}, ValueError, "p <= 51"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ln.sum(np.ones(3), **kwargs)


def test_bad_arrays() -> None:
    with pytest.raises(TypeError, match="float32 or float64"):
        ln.sum(np.ones(3, dtype=np.int32))
    with pytest.raises(ValueError, match="at least one dimension"):
        ln.sum(np.float64(1.0))
