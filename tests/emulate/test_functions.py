"""exp, expm1, log, log1p, tanh, erf: the float64 value rounded once (the definition), faithful in the
round-to-nearest modes against mpmath at 200 bits, within float64's error in every mode, and the special
values."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.emulate import functions
from lampnum.rounding.api import stochastic_key
from lampnum.rounding.modes import as_mode
from lampnum.rounding.reference import floor_log2, random_bits_reference, round_reference

from .helpers import MODES, same, same_arrays

NAMES = ["exp", "expm1", "log", "log1p", "tanh", "erf"]
#: every catalogue format with p <= 49 (all but fp64): there the module promises faithful rne/rna results
FAITHFUL_FORMATS = [fmt for name, fmt in ln.FORMATS.items() if fmt.p <= 49]
MPMATH = {name: getattr(mpmath, name) for name in NAMES}
DBL_MAX = 1.7976931348623157e308


def float64_value(name: str, x: float) -> float | None:
    """Python's libm value of the function (None: a float64 overflow), with the IEEE domain rules."""
    if name in ("log", "log1p"):
        pole = 0.0 if name == "log" else -1.0
        if math.isnan(x) or x < pole:
            return math.nan
        if x == pole:
            return -math.inf
        if math.isinf(x):
            return x
    try:
        return float(getattr(math, name)(x))
    except OverflowError:
        return None


def arguments(name: str, anywhere: bool = True) -> st.SearchStrategy[float]:
    """Arguments in the function's interesting range, near 0 and 1, and (``anywhere``) any float64 at all."""
    ranges = {
        "exp": (-760.0, 712.0), "expm1": (-50.0, 712.0), "log": (0.0, DBL_MAX), "log1p": (-1.0, DBL_MAX),
        "tanh": (-30.0, 30.0), "erf": (-7.0, 7.0),
    }  # fmt: skip
    low, high = ranges[name]
    near_zero = st.floats(-1e-3, 1e-3).filter(lambda x: x >= low)
    choices = [st.floats(low, high), near_zero, st.floats(0.5, 2.0)]
    return st.one_of(*choices, st.floats(width=64)) if anywhere else st.one_of(*choices)


def to_fraction(value: mpmath.mpf) -> Fraction:
    mantissa, exponent = value.man_exp  # the magnitude's
    magnitude = Fraction(mantissa) * Fraction(2) ** exponent
    return -magnitude if value < 0 else magnitude


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=max(5, settings.default.max_examples // 4))  # mpmath-free, batched
@given(data=st.data())
def test_result_is_the_float64_value_rounded_once(name: str, data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(list(ln.FORMATS.values())), label="fmt")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    xs = data.draw(st.lists(arguments(name), min_size=1, max_size=20), label="xs")
    result = getattr(functions, name)(np.array(xs), fmt, mode, rng=9)
    key = stochastic_key(as_mode(mode), np.random.default_rng(9))
    for index, x in enumerate(xs):
        value = float64_value(name, x)
        bits = random_bits_reference(key, index)
        if value is None:  # float64 overflow at finite x: a format overflow, as rounding a value beyond max
            expected = round_reference(Fraction(2) ** 1100, fmt, mode, bits)
        else:
            expected = round_reference(value, fmt, mode, bits)
        assert same(result[index], expected), (x, value, result[index], expected)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=max(5, settings.default.max_examples // 5))  # mpmath at 200 bits
@given(data=st.data())
def test_faithful_in_round_to_nearest_and_bounded_in_every_mode(name: str, data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(FAITHFUL_FORMATS), label="fmt")
    xs = data.draw(st.lists(arguments(name, anywhere=False), min_size=1, max_size=12), label="xs")
    low = {"log": 0.0, "log1p": -1.0}.get(name, -math.inf)
    xs = [x for x in xs if x > low]
    with mpmath.workprec(200):
        exact = [to_fraction(MPMATH[name](mpmath.mpf(x))) for x in xs]
    for mode in MODES:
        result = getattr(functions, name)(np.array(xs, dtype=np.float64), fmt, mode, rng=1)
        for x, y, r in zip(xs, exact, result, strict=True):
            down, up = round_reference(y, fmt, "rdn"), round_reference(y, fmt, "rup")
            if mode in ("rne", "rna"):
                assert r in (down, up) or math.isnan(r) and math.isnan(down + up), (
                    x,
                    mode,
                    y,
                    r,
                    down,
                    up,
                )  # ±0 alike
            # every mode: round(ŷ) with |ŷ − y| <= 2 float64 ulps of y lies between RD(y − δ) and RU(y + δ)
            delta = Fraction(2) ** (max(floor_log2(abs(y)), -1022) - 51) if y != 0 else Fraction(0)
            low_bound, high_bound = (
                round_reference(y - delta, fmt, "rdn"),
                round_reference(y + delta, fmt, "rup"),
            )
            if math.isnan(r):  # only an overflow in a format that overflows to NaN
                assert math.isnan(low_bound) or math.isnan(high_bound), (x, mode, y, low_bound, high_bound)
            else:  # a NaN bound is an overflow beyond that side
                low_bound = -math.inf if math.isnan(low_bound) else low_bound
                high_bound = math.inf if math.isnan(high_bound) else high_bound
                assert low_bound <= r <= high_bound, (x, mode, y, r, low_bound, high_bound)


def test_special_values() -> None:
    fp16, e4m3, fnuz = ln.format("fp16"), ln.format("e4m3"), ln.format("e4m3fnuz")
    specials = np.array([-np.inf, np.inf, np.nan, -0.0, 0.0])
    assert same_arrays(functions.exp(specials, fp16), np.array([0.0, np.inf, np.nan, 1.0, 1.0]))
    assert same_arrays(functions.expm1(specials, fp16), np.array([-1.0, np.inf, np.nan, -0.0, 0.0]))
    assert same_arrays(functions.tanh(specials, fp16), np.array([-1.0, 1.0, np.nan, -0.0, 0.0]))
    assert same_arrays(functions.erf(specials, fp16), np.array([-1.0, 1.0, np.nan, -0.0, 0.0]))
    assert same_arrays(functions.log(specials, fp16), np.array([np.nan, np.inf, np.nan, -np.inf, -np.inf]))
    assert same_arrays(functions.log1p(np.array([-2.0, -1.0, -0.0]), fp16), np.array([np.nan, -np.inf, -0.0]))
    assert same_arrays(
        functions.log(np.array([0.0, 1.0]), e4m3), np.array([np.nan, 0.0])
    )  # no inf: -inf is NaN
    assert same_arrays(functions.tanh(-0.0, fnuz), 0.0)  # no -0 in fnuz


def test_float64_overflow_is_a_format_overflow() -> None:
    x = np.array(
        [709.0, 710.0, 1e300]
    )  # exp(709) is finite in float64 but beyond fp16; the others overflow float64
    assert same_arrays(functions.exp(x, "fp16"), np.full(3, np.inf))
    assert same_arrays(functions.exp(x, "fp16", "rtz"), np.full(3, 65504.0))
    assert same_arrays(functions.exp(x, "fp64", "rdn"), np.array([math.exp(709.0), DBL_MAX, DBL_MAX]))
    assert same_arrays(functions.expm1(x, "fp16", "rtz"), np.full(3, 65504.0))
    assert same_arrays(functions.expm1(-x, "fp16", "rtz"), np.full(3, -1.0))
    assert same_arrays(functions.expm1(x, "e4m3", "rup"), np.full(3, np.nan))  # e4m3 overflows to NaN
    assert same_arrays(functions.exp(x, "e4m3", "rtz"), np.full(3, 448.0))


def test_api_matches_the_elementwise_conventions() -> None:
    x32 = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    result = functions.tanh(x32, "bf16", "sr", rng=3)
    assert result.dtype == np.float64 and result.shape == (3, 4)
    assert same_arrays(result, functions.tanh(x32.astype(np.float64), "bf16", "sr", rng=3))
    out = np.empty((3, 4))
    assert functions.exp(x32, "bf16", out=out) is out
    assert type(functions.log(2.0, "fp16")) is np.float64
    with pytest.raises(TypeError, match="dtype int64"):
        functions.exp(np.arange(3), "fp16")
