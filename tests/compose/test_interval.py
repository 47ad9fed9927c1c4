"""Interval arithmetic and the arithmetic contexts against exact rationals and 200-bit mpmath."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.compose import Emulated, Interval
from lampnum.rounding import round_reference

from .strategies import examples, formats

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
tiny_to_huge = st.one_of(finite, st.floats(-1e300, 1e300), st.floats(-1e-300, 1e-300))


@st.composite
def intervals(draw: st.DrawFn, elements: st.SearchStrategy = finite, positive: bool = False) -> tuple[float, float]:
    a, b = draw(elements), draw(elements)
    lo, hi = min(a, b), max(a, b)
    if positive:
        lo, hi = abs(lo) + 1e-300, abs(hi) + abs(lo) + 1e-300
    return lo, hi


def _points(lo: float, hi: float) -> list[float]:
    points = [lo, hi, lo + (hi - lo) / 2, lo + (hi - lo) * 0.3183098861837907]
    return [min(max(p, lo), hi) for p in points]  # (hi − lo may overflow or round: keep the points inside)


def _contains(interval: Interval, exact: mpmath.mpf) -> bool:
    return mpmath.mpf(float(interval.lo)) <= exact <= mpmath.mpf(float(interval.hi))


BINARY = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y, "/": lambda x, y: x / y}


@settings(max_examples=examples(200))
@given(a=intervals(tiny_to_huge), b=intervals(tiny_to_huge), op=st.sampled_from(sorted(BINARY)))
def test_binary_operations_enclose_every_exact_result(a: tuple, b: tuple, op: str) -> None:
    A, B = Interval(*a), Interval(*b)
    with np.errstate(all="ignore"):
        result = BINARY[op](A, B)
    if not (math.isfinite(result.lo) and math.isfinite(result.hi)):  # only for 1/0 or a float64 overflow
        straddles = op == "/" and b[0] <= 0 <= b[1]
        exact = [abs(BINARY[op](Fraction(x), Fraction(y))) for x in _points(*a) for y in _points(*b) if y or op != "/"]
        assert straddles or max(exact) > Fraction(1.7e308) or op == "/" and min(abs(v) for v in b) < 1e-290
        return
    for x in _points(*a):
        for y in _points(*b):
            if op == "/" and y == 0:
                continue
            exact = BINARY[op](Fraction(x), Fraction(y))
            assert Fraction(float(result.lo)) <= exact <= Fraction(float(result.hi))


UNARY = {
    "exp": (Interval.exp, mpmath.exp, finite),
    "expm1": (Interval.expm1, mpmath.expm1, st.floats(-700, 700)),
    "log": (Interval.log, mpmath.log, st.floats(1e-300, 1e300)),
    "log1p": (Interval.log1p, mpmath.log1p, st.floats(-0.999999, 1e300)),
    "tanh": (Interval.tanh, mpmath.tanh, finite),
    "erf": (Interval.erf, mpmath.erf, st.floats(-30, 30)),
    "erfc": (Interval.erfc, mpmath.erfc, st.floats(-30, 30)),  # into erfc's subnormal results (x > 26.5)
    "sqrt": (Interval.sqrt, mpmath.sqrt, st.floats(0, 1e300)),
    "square": (Interval.square, lambda x: x * x, finite),
    "cube": (Interval.cube, lambda x: x**3, finite),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(max_examples=examples(150))
@given(data=st.data())
def test_unary_functions_enclose_their_200_bit_values(name: str, data: st.DataObject) -> None:
    """Also the check of the libm assumption: numpy's and scipy's values within LIBM_ULPS of the truth."""
    method, exact_function, elements = UNARY[name]
    lo, hi = data.draw(intervals(elements))
    with np.errstate(over="ignore"):
        result = method(Interval(lo, hi))
    with mpmath.workprec(200):
        for x in _points(lo, hi):
            assert _contains(result, exact_function(mpmath.mpf(x))), (x, result)


@settings(max_examples=examples(60))
@given(n=st.integers(1, 40), seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1.0, 1e-200, 1e200]))
def test_reductions_and_matmul_enclose_exact_results(n: int, seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    lo = rng.standard_normal((2, n)) * scale
    hi = lo + np.abs(rng.standard_normal((2, n))) * scale * rng.choice([0.0, 1e-8, 1.0])
    W = rng.standard_normal((n, 3))
    X = Interval(lo, hi)
    picks = [lo, hi, lo + (hi - lo) * rng.uniform(size=lo.shape)]
    total, excluded, product = X.sum(-1), Interval(np.abs(lo), np.abs(lo) + (hi - lo)).excluded_sums(), X.matmul(W)
    for x in picks:
        for r in range(2):
            exact = sum(Fraction(v) for v in x[r])
            assert Fraction(float(total.lo[r])) <= exact <= Fraction(float(total.hi[r]))
            for c in range(3):
                exact_c = sum(Fraction(v) * Fraction(w) for v, w in zip(x[r], W[:, c], strict=True))
                assert Fraction(float(product.lo[r, c])) <= exact_c <= Fraction(float(product.hi[r, c]))
    for r in range(2):
        absolute = [Fraction(v) for v in np.abs(lo[r])]
        for i in range(n):
            exact = sum(absolute) - absolute[i]
            assert Fraction(float(excluded.lo[r, i])) <= exact <= Fraction(float(excluded.hi[r, i]))


@settings(max_examples=examples(150))
@given(fmt=formats(), lo_hi=intervals(tiny_to_huge), mode=st.sampled_from(["rne", "rna", "rtz", "rup", "rdn", "rto",
       "sr", "sr_eq"]), bits=st.integers(0, 2**64 - 1))  # fmt: skip
def test_round_to_encloses_every_mode(fmt: ln.Format, lo_hi: tuple, mode: str, bits: int) -> None:
    enclosure = Interval(*lo_hi).round_to(fmt)
    for x in _points(*lo_hi):
        y = round_reference(x, fmt, mode, bits)
        if np.isnan(enclosure.lo):  # poison: the rounding may overflow somewhere in the interval
            continue
        assert math.isfinite(y) and float(enclosure.lo) <= y <= float(enclosure.hi)


OPS = {
    "add": (lambda c, a, b: c.add(a, b), lambda a, b: Fraction(a) + Fraction(b)),
    "sub": (lambda c, a, b: c.sub(a, b), lambda a, b: Fraction(a) - Fraction(b)),
    "mul": (lambda c, a, b: c.mul(a, b), lambda a, b: Fraction(a) * Fraction(b)),
    "div": (lambda c, a, b: c.div(a, b), lambda a, b: Fraction(a) / Fraction(b)),
}


@settings(max_examples=examples(150))
@given(fmt=formats(), op=st.sampled_from(sorted(OPS)), mode=st.sampled_from(["rne", "rna", "rtz", "rup", "rdn", "rto"]),
       a=tiny_to_huge, b=tiny_to_huge)  # fmt: skip
@example(fmt=ln.format("bf16"), op="mul", mode="rne", a=1e-300, b=3e-200)  # outside Dekker's safe range
@example(fmt=ln.format("fp16"), op="div", mode="rup", a=1.0, b=3.0)
def test_emulated_operations_are_correctly_rounded(fmt: ln.Format, op: str, mode: str, a: float, b: float) -> None:
    if op == "div" and b == 0:
        return
    operation, exact = OPS[op]
    computed = float(operation(Emulated(fmt, mode), np.array([a]), np.array([b]))[0])
    expected = round_reference(exact(a, b), fmt, mode)
    assert computed == expected or (math.isnan(computed) and math.isnan(expected))


@settings(max_examples=examples(100))
@given(fmt=formats(), mode=st.sampled_from(["rne", "rtz", "rup"]), a=st.floats(0, 1e300))
def test_emulated_sqrt_is_correctly_rounded(fmt: ln.Format, mode: str, a: float) -> None:
    computed = float(Emulated(fmt, mode).sqrt(np.array([a]))[0])
    with mpmath.workprec(400):
        root = mpmath.sqrt(mpmath.mpf(a))
    man, exp = root.man_exp if root != 0 else (0, 0)
    expected = round_reference(Fraction(int(man)) * Fraction(2) ** int(exp), fmt, mode)  # 400 bits: no tie is missed
    assert computed == expected or (math.isnan(computed) and math.isnan(expected))


def test_emulated_sum_is_recursive_in_the_accumulator() -> None:
    x = np.array([[1.0, 2.0**-9, 2.0**-9, 2.0**-9, 2.0**-9]])
    assert Emulated("bf16").sum(x)[0, 0] == 1.0  # each 2^-9 is half an ulp of 1: ties to even, it stagnates
    assert Emulated("bf16", accumulator="fp32").sum(x)[0, 0] == 1.0 + 2.0**-7  # exact in fp32, then rounded
