"""Hypothesis properties: kernels against the exact reference on random formats, and the reference against mpmath."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

import lampnum as ln
from lampnum.rounding.api import stochastic_key
from lampnum.rounding.modes import as_mode
from lampnum.rounding.reference import random_bits_reference, round_reference

from .strategies import formats, values_near
from .test_exhaustive import assert_same

ALL_MODES = ["rne", "rna", "rtz", "rup", "rdn", "rto", "sr", "sr_eq"]


@st.composite
def format_and_values(draw: st.DrawFn) -> tuple[ln.Format, list[float]]:
    fmt = draw(formats())
    values = draw(st.lists(values_near(fmt), min_size=1, max_size=40))
    return fmt, values


@given(format_and_values(), st.sampled_from(ALL_MODES), st.integers(0, 2**32))
@example((ln.Format(p=53, emax=1023), [5e-324, -2.2250738585072014e-308, 1.7976931348623157e308]), "rne", 0)
@example((ln.Format(p=1, emax=1, emin=-1022), [3e-308, 1.5, 3.0, 5e-324]), "rto", 0)
def test_kernel_matches_reference(case: tuple[ln.Format, list[float]], mode: str, seed: int) -> None:
    fmt, values = case
    x = np.array(values, dtype=np.float64)
    result = ln.round(x, fmt, mode, rng=seed)
    key = stochastic_key(as_mode(mode), seed)
    expected = np.array([round_reference(v, fmt, mode, random_bits_reference(key, i)) for i, v in enumerate(values)])
    assert_same(result, expected, x, f"{fmt!r} {mode}")


@given(format_and_values(), st.sampled_from(ALL_MODES))
def test_float32_inputs_match_reference(case: tuple[ln.Format, list[float]], mode: str) -> None:
    fmt, values = case
    x = np.array(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    wide = ln.round(x32.astype(np.float64), fmt, mode, rng=1)
    if ln.format("fp32").contains(fmt):
        assert_same(ln.round(x32, fmt, mode, rng=1), wide, x32, f"{fmt!r} {mode} float32")


_MPMATH_ROUNDING = {"rne": "n", "rtz": "d", "rup": "c", "rdn": "f"}


@given(formats(max_p=53), st.sampled_from(list(_MPMATH_ROUNDING)), st.fractions())
@example(ln.format("bf16"), "rne", Fraction(1) + Fraction(1, 2**8) + Fraction(1, 2**30))
@example(ln.format("fp64"), "rup", Fraction(1, 3))
def test_reference_matches_mpmath(fmt: ln.Format, mode: str, value: Fraction) -> None:
    """Inside the exponent range, rounding to the format equals mpmath's rounding to the precision available at the
    value's binade (p bits for normals, fewer in the subnormal range)."""
    if value == 0:
        return
    exponent = math.floor(math.log2(abs(value)))  # may be off by one for huge numerators: fixed just below
    while Fraction(2) ** exponent > abs(value):
        exponent -= 1
    while Fraction(2) ** (exponent + 1) <= abs(value):
        exponent += 1
    if not (fmt.emin <= exponent <= fmt.emax) and not (fmt.subnormals and fmt.emin - fmt.p < exponent < fmt.emin):
        return
    precision = fmt.p if exponent >= fmt.emin else fmt.p - (fmt.emin - exponent)
    # fdiv rounds the exact quotient once, to the precision available at the value's binade (regression: dividing
    # at mpmath's default 53-bit precision first rounded twice)
    rounded = mpmath.fdiv(value.numerator, value.denominator, prec=max(precision, 1), rounding=_MPMATH_ROUNDING[mode])
    result = round_reference(value, fmt, mode)
    if abs(rounded) > fmt.max:  # an overflow: covered by the exhaustive tests and the kernel property
        return
    assert result == float(rounded), (value, precision)


@given(st.integers(-(2**80), 2**80), st.sampled_from(["rne", "rtz", "rup", "rdn"]))
def test_python_ints_are_rounded_from_their_exact_value(n: int, mode: str) -> None:
    expected = mpmath.mpf(n, prec=53, rounding=_MPMATH_ROUNDING[mode])
    assert ln.round(n, "fp64", mode) == float(expected)


def test_python_int_rounds_once() -> None:
    # float(2**60 + 1) would already round to 2**60; rounding up from the exact value gives the next float64
    assert ln.round(2**60 + 1, "fp64", "rup") == 2.0**60 + 2.0**8
