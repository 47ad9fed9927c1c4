"""Elementwise bounds against lampnum's elementwise emulation (ln.add, ln.exp, …) and exact or 200-bit references."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampnum as ln
import lampnum.bounds
from lampnum.bounds import BoundOverflowWarning

from .strategies import MODES, examples, formats

values = st.one_of(st.floats(-1e6, 1e6), st.floats(-1e-30, 1e-30), st.floats(-1e300, 1e300),
                   st.sampled_from([0.0, 1.0, -2.5, 2.0**-149, 65504.0, 448.0]))  # fmt: skip

EXACT = {
    "add": lambda a, b: Fraction(a) + Fraction(b),
    "sub": lambda a, b: Fraction(a) - Fraction(b),
    "mul": lambda a, b: Fraction(a) * Fraction(b),
    "div": lambda a, b: Fraction(a) / Fraction(b),
}
FUNCTIONS = {"exp": mpmath.exp, "expm1": mpmath.expm1, "log": mpmath.log, "log1p": mpmath.log1p,
             "tanh": mpmath.tanh, "erf": mpmath.erf}  # fmt: skip


def _bound(*args: object, **kwargs: object) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundOverflowWarning)
        return float(ln.bounds.elementwise(*args, **kwargs))  # type: ignore[arg-type]


@settings(max_examples=examples(300))
@given(op=st.sampled_from(sorted(EXACT)), a=values, b=values, fmt=formats(min_p=2, max_p=53),
       mode=st.sampled_from(MODES), seed=st.integers(0, 2**32 - 1))  # fmt: skip
@example(op="div", a=4.0, b=2.2250738585072014e-308, fmt=ln.format("bf16"), mode="rne", seed=0)  # float64 overflow:
def test_correctly_rounded_operations(op: str, a: float, b: float, fmt: ln.Format, mode: str, seed: int) -> None:
    """(the example pins a bug: a quotient beyond float64 was reported as a domain error, not as an overflow)"""
    if op == "div" and b == 0:
        with pytest.raises(ValueError, match="domain"):
            ln.bounds.elementwise(op, a, b, fmt=fmt, mode=mode)
        return
    bound = _bound(op, a, b, fmt=fmt, mode=mode)
    computed = float(getattr(ln, op)(a, b, fmt, mode, rng=seed))
    if math.isinf(bound):
        return
    assert math.isfinite(computed), "an overflow where the bound claimed none"
    assert abs(Fraction(computed) - EXACT[op](a, b)) <= Fraction(bound)


@settings(max_examples=examples(150))
@given(a=values, b=values, c=values, fmt=formats(min_p=2, max_p=53), mode=st.sampled_from(MODES))
def test_fma_and_sqrt(a: float, b: float, c: float, fmt: ln.Format, mode: str) -> None:
    bound = _bound("fma", a, b, c, fmt=fmt, mode=mode)
    computed = float(ln.fma(a, b, c, fmt, mode, rng=1))
    if math.isfinite(bound):
        assert abs(Fraction(computed) - (Fraction(a) * Fraction(b) + Fraction(c))) <= Fraction(bound)
    root_bound = _bound("sqrt", abs(a), fmt=fmt, mode=mode)
    root = float(ln.sqrt(abs(a), fmt, mode, rng=1))
    if math.isfinite(root_bound):
        with mpmath.workprec(400):
            assert abs(mpmath.mpf(root) - mpmath.sqrt(mpmath.mpf(abs(a)))) <= mpmath.mpf(root_bound)


@settings(max_examples=examples(200))
@given(name=st.sampled_from(sorted(FUNCTIONS)), x=st.floats(-800, 800), fmt=formats(min_p=2, max_p=52),
       mode=st.sampled_from(MODES))  # fmt: skip
def test_float64_then_rounded_functions(name: str, x: float, fmt: ln.Format, mode: str) -> None:
    """ln.exp & co. (float64, then one rounding) within the bound, which assumes ≤ 4 (erf: 8) ulps of libm error."""
    if name in ("log",) and x <= 0 or name == "log1p" and x <= -1:
        with pytest.raises(ValueError, match="domain"):
            ln.bounds.elementwise(name, x, fmt=fmt, mode=mode)
        return
    bound = _bound(name, x, fmt=fmt, mode=mode)
    computed = float(getattr(ln, name)(x, fmt, mode, rng=2))
    if math.isinf(bound):
        return
    assert math.isfinite(computed)
    with mpmath.workprec(200):
        assert abs(mpmath.mpf(computed) - FUNCTIONS[name](mpmath.mpf(x))) <= mpmath.mpf(bound)


@settings(max_examples=examples(200))
@given(x=values, fmt=formats(min_p=2, max_p=53), mode=st.sampled_from(MODES), seed=st.integers(0, 2**32 - 1))
def test_rounding_error_bound(x: float, fmt: ln.Format, mode: str, seed: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundOverflowWarning)
        bound = float(ln.bounds.rounding_error(np.array([x]), fmt, mode)[0])
    y = float(ln.round(np.array([x]), fmt, mode, rng=seed)[0])
    if math.isfinite(bound):
        assert math.isfinite(y) and abs(Fraction(y) - Fraction(x)) <= Fraction(bound)


def test_overflow_and_bad_input() -> None:
    with pytest.warns(BoundOverflowWarning):
        assert math.isinf(float(ln.bounds.elementwise("mul", 300.0, 300.0, fmt="fp16")))
    with pytest.warns(BoundOverflowWarning):
        assert math.isinf(float(ln.bounds.elementwise("exp", 20.0, fmt="e4m3")))
    with pytest.raises(ValueError, match="non-finite"):
        ln.bounds.elementwise("add", np.inf, 1.0, fmt="bf16")
    with pytest.raises(ValueError, match="domain"):
        ln.bounds.elementwise("sqrt", -1.0, fmt="bf16")
    with pytest.raises(ValueError, match="unknown elementwise op"):
        ln.bounds.elementwise("pow", 1.0, 2.0, fmt="bf16")
    with pytest.raises(TypeError, match="takes 2 operand"):
        ln.bounds.elementwise("add", 1.0, fmt="bf16")
