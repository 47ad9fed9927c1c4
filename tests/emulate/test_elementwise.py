"""Correctly rounded add/sub/mul/div/sqrt/fma against the exact reference (Fractions + round_reference).

Random formats over the whole parameter space (p 1..53, any exponent range, every encoding, with and without
subnormals), every mode including the stochastic ones (with the random words the kernels use), and operands
chosen where rounding is delicate: short significands that make ties, cancellations, huge exponent gaps,
subnormals, overflow, specials.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.emulate import elementwise_kernels as kernels
from lampnum.rounding.api import stochastic_key
from lampnum.rounding.kernels import MODE_CODES
from lampnum.rounding.modes import as_mode
from lampnum.rounding.reference import random_bits_reference
from tests.rounding.strategies import values_near

from .helpers import MODES, OPERATIONS, formats, same, same_arrays

DBL_MAX = 1.7976931348623157e308
SPECIALS = [
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    5e-324,
    -5e-324,
    DBL_MAX,
    -DBL_MAX,
    2.0**-1022,
    1.0,
    -1.0,
]


def ldexp(x: float, exponent: int) -> float:
    """math.ldexp, overflowing to inf as float arithmetic does instead of raising."""
    try:
        return math.ldexp(x, exponent)
    except OverflowError:
        return math.copysign(math.inf, x)


@st.composite
def operands(draw: st.DrawFn, fmt: ln.Format) -> float:
    """One float64 operand, concentrated where rounding to ``fmt`` is delicate."""
    kind = draw(st.sampled_from(["any", "near", "short", "short", "int", "special"]))
    if kind == "any":
        return draw(st.floats(width=64))
    if kind == "near":
        return draw(values_near(fmt))
    if kind == "int":
        return float(draw(st.integers(-64, 64)))
    if kind == "special":
        return draw(st.sampled_from(SPECIALS))
    # a short significand (few bits) at an exponent around the format's range: sums and products of these tie
    bits = draw(st.integers(1, min(fmt.p + 3, 53)))
    significand = draw(st.integers(1 << (bits - 1), (1 << bits) - 1))
    exponent = draw(st.integers(max(fmt.emin - fmt.p - 4, -1074 + bits), min(fmt.emax + 2, 1023)))
    value = math.ldexp(significand, exponent - bits + 1)
    return -value if draw(st.booleans()) else value


@st.composite
def partners(draw: st.DrawFn, fmt: ln.Format, first: float) -> float:
    """A second operand: independent, or related to the first (cancellation, exponent gaps, neighbours)."""
    kind = draw(st.sampled_from(["independent", "independent", "negated", "scaled", "neighbour"]))
    if kind == "independent" or not math.isfinite(first) or first == 0:
        return draw(operands(fmt))
    if kind == "negated":
        return -first
    if kind == "scaled":
        scaled = ldexp(first, draw(st.integers(-120, 120)))
        return -scaled if draw(st.booleans()) else scaled
    return -math.nextafter(first, draw(st.sampled_from([math.inf, -math.inf])))


@st.composite
def rows(draw: st.DrawFn, fmt: ln.Format, arity: int) -> tuple[float, ...]:
    a = draw(operands(fmt))
    if arity == 1:
        return (abs(a) if draw(st.booleans()) else a,)
    b = draw(partners(fmt, a))
    if arity == 2:
        return (a, b)
    product = a * b  # float64, to aim c at cancellation with the exact product
    kind = draw(st.sampled_from(["independent", "cancel", "near_cancel", "scaled"]))
    if kind == "independent" or not math.isfinite(product) or product == 0:
        return (a, b, draw(operands(fmt)))
    if kind == "cancel":
        return (a, b, -product)
    if kind == "near_cancel":
        return (a, b, -math.nextafter(product, draw(st.sampled_from([math.inf, -math.inf]))))
    return (a, b, ldexp(product, draw(st.integers(-80, 80))) * draw(st.sampled_from([1.0, -1.0])))


def check_against_reference(
    name: str, fmt: ln.Format, mode: str, batch: list[tuple[float, ...]], seed: int
) -> None:
    operation, reference, arity = OPERATIONS[name]
    columns = [np.array([row[k] for row in batch]) for k in range(arity)]
    result = operation(*columns, fmt, mode, rng=seed)
    key = stochastic_key(as_mode(mode), np.random.default_rng(seed))
    for index, row in enumerate(batch):
        expected = reference(*row, fmt, mode, random_bits_reference(key, index))
        assert same(result[index], expected), (name, fmt, mode, row, result[index], expected)


@pytest.mark.parametrize("name", list(OPERATIONS))
@settings(max_examples=max(10, settings.default.max_examples * 3 // 5))  # 60 by default
@given(data=st.data())
def test_matches_exact_reference(name: str, data: st.DataObject) -> None:
    fmt = data.draw(formats(), label="fmt")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    batch = data.draw(st.lists(rows(fmt, OPERATIONS[name][2]), min_size=1, max_size=16), label="batch")
    check_against_reference(name, fmt, mode, batch, data.draw(st.integers(0, 2**32), label="seed"))


EXTREMES = [DBL_MAX, 2.0**600, 1.0 + 2.0**-52, 1.0, 2.0**-600, 2.0**-1022, 5e-324]
EXTREME_FORMATS = [
    ln.format("fp64"),
    ln.Format(p=53, emax=1023, subnormals=False),
    ln.format("bf16"),
    ln.Format(p=1, emax=3, subnormals=False),
    ln.Format(p=30, emax=900, emin=-1000, specials="fn"),
]


@pytest.mark.parametrize("fmt", EXTREME_FORMATS, ids=str)
def test_extreme_exponent_gaps_binary(fmt: ln.Format) -> None:
    """Every pair of signed extreme magnitudes (DBL_MAX down to the smallest subnormal), every binary
    operation and mode: sticky sums across 2000 binades, products and quotients beyond float64's range, fp64
    itself."""
    values = EXTREMES + [-v for v in EXTREMES]
    batch = list(itertools.product(values, values))
    for name in ("add", "sub", "mul", "div"):
        for mode in MODES:
            check_against_reference(name, fmt, mode, batch, seed=7)


@pytest.mark.parametrize("fmt", EXTREME_FORMATS[:3], ids=str)
def test_extreme_exponent_gaps_fma_and_sqrt(fmt: ln.Format) -> None:
    values = EXTREMES + [-v for v in EXTREMES]
    for mode in MODES:
        check_against_reference("sqrt", fmt, mode, [(v,) for v in values], seed=3)
        check_against_reference(
            "fma", fmt, mode, list(itertools.product(values, values, values[::3])), seed=5
        )


def test_numpy_fast_path_for_fp64_rne_is_the_kernel_result() -> None:
    """fp64 in rne goes through numpy; the kernels compute the same function (also on specials and
    subnormals)."""
    rng = np.random.default_rng(0)
    n = 4000
    picks = np.array(SPECIALS + [2.0**-1074 * 3, 1e308, -1e-310])
    a = np.where(
        rng.random(n) < 0.2,
        rng.choice(picks, n),
        rng.standard_normal(n) * 2.0 ** rng.integers(-1074, 1000, n),
    )
    b = np.where(
        rng.random(n) < 0.2,
        rng.choice(picks, n),
        rng.standard_normal(n) * 2.0 ** rng.integers(-1074, 1000, n),
    )
    params = ln.format("fp64").params()
    rne, key = MODE_CODES["rne"], np.uint64(0)
    for name, kernel_call in [
        ("add", lambda out: kernels.add_array(a, 1, b, 1, False, out, params, rne, key)),
        ("sub", lambda out: kernels.add_array(a, 1, b, 1, True, out, params, rne, key)),
        ("mul", lambda out: kernels.mul_array(a, 1, b, 1, out, params, rne, key)),
        ("div", lambda out: kernels.div_array(a, 1, b, 1, out, params, rne, key)),
        ("sqrt", lambda out: kernels.sqrt_array(a, 1, out, params, rne, key)),
    ]:
        operation, _, arity = OPERATIONS[name]
        from_kernel = np.empty(n)
        kernel_call(from_kernel)
        assert same_arrays(operation(*[a, b][:arity], "fp64"), from_kernel), name
