"""The public surface of the elementwise operations: broadcasting, dtypes, scalars, out=, randomness, bad
input."""

from __future__ import annotations

from fractions import Fraction

import numba
import numpy as np
import pytest

import lampnum as ln
from lampnum.emulate.elementwise import add, div, fma, mul, sqrt, sub
from lampnum.emulate.elementwise_reference import add_reference, fma_reference
from lampnum.rounding.api import stochastic_key
from lampnum.rounding.modes import RoundingMode
from lampnum.rounding.reference import random_bits_reference

from .helpers import MODES, OPERATIONS, same, same_arrays


def test_broadcasting_matches_elementwise_scalars() -> None:
    a = np.linspace(-3, 3, 3).reshape(3, 1) / 7
    b = np.array([[0.1, 1e-5, -2.5, 1e30]])
    c = np.float32(0.3)
    result = fma(a, b, c, "bf16", "rup")
    assert result.shape == (3, 4) and result.dtype == np.float64
    for i in range(3):
        for j in range(4):
            assert same(result[i, j], fma_reference(a[i, 0], b[0, j], float(c), "bf16", "rup"))


def test_stochastic_element_index_is_the_flat_c_order_index_of_the_result() -> None:
    a = np.full((2, 3), 1.0)
    b = np.array([2.0**-9, 3 * 2.0**-10, 2.0**-12])  # broadcast along the rows
    result = add(a, b, "bf16", "sr", rng=11)
    key = stochastic_key(RoundingMode.SR, np.random.default_rng(11))
    flat = result.reshape(-1)
    for index in range(6):
        expected = add_reference(1.0, float(b[index % 3]), "bf16", "sr", random_bits_reference(key, index))
        assert flat[index] == expected


def test_scalars_give_a_numpy_float64_scalar() -> None:
    result = mul(3, 0.1, "fp16")
    assert type(result) is np.float64 and result == ln.round(0.30000000000000004, "fp16")
    assert type(sqrt(np.float32(2.0), "fp32")) is np.float64
    assert type(add(np.array(1.0), 2.0, "fp16")) is np.float64


def test_float32_operands_are_taken_at_their_exact_values() -> None:
    rng = np.random.default_rng(1)
    a32 = rng.standard_normal(50).astype(np.float32)
    b32 = rng.standard_normal(50).astype(np.float32)
    for name, (operation, _, arity) in OPERATIONS.items():
        args32 = [np.abs(a32), b32, a32][:arity] if name == "sqrt" else [a32, b32, a32][:arity]
        args64 = [x.astype(np.float64) for x in args32]
        assert same_arrays(operation(*args32, "e5m2", "rna"), operation(*args64, "e5m2", "rna")), name


def test_sub_is_add_of_the_negation_in_every_mode() -> None:
    a = np.array([1.0, 0.0, -0.0, 3.0, np.inf, 1e-300])
    b = np.array([1.0, 0.0, 0.0, 2.0**-30, np.inf, -1e-300])
    for mode in MODES:
        assert same_arrays(sub(a, b, "fp16", mode, rng=4), add(a, -b, "fp16", mode, rng=4)), mode


def test_out_receives_the_result_also_in_place_and_with_overlap() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0]) / 3
    expected = add(x, 0.5, "bf16")
    out = np.empty(5)
    assert add(x, 0.5, "bf16", out=out) is out and same_arrays(out, expected)
    y = x.copy()
    assert add(y, 0.5, "bf16", out=y) is y and same_arrays(y, expected)  # in place
    z = np.concatenate([x, [0.0]])
    add(z[:-1], 0.5, "bf16", out=z[1:])  # out overlaps the operand shifted by one element
    assert same_arrays(z[1:], expected)
    w = x.copy()
    add(w[:1], w, "bf16", out=w)  # a broadcast single value that out overwrites first
    assert same_arrays(w, add(x[0], x, "bf16"))
    strided = np.zeros(10)
    add(x, 0.5, "bf16", out=strided[::2])
    assert same_arrays(strided[::2], expected)


def test_randomness_is_explicit() -> None:
    a = np.full(1000, 1.0)
    b = np.full(1000, 2.0**-10)
    first = add(a, b, "bf16", "sr", rng=5)
    assert same_arrays(first, add(a, b, "bf16", "sr", rng=5))
    assert not same_arrays(first, add(a, b, "bf16", "sr", rng=6))
    generator = np.random.default_rng(5)
    assert same_arrays(first, add(a, b, "bf16", "sr", rng=generator))
    assert not same_arrays(first, add(a, b, "bf16", "sr", rng=generator))  # the generator advanced
    untouched = np.random.default_rng(9)
    state = untouched.bit_generator.state
    add(a, b, "bf16", "rne", rng=untouched)
    assert untouched.bit_generator.state == state  # deterministic modes draw nothing


def test_results_do_not_depend_on_the_number_of_threads() -> None:
    """Stochastic words are indexed by element, not drawn per thread: one thread or all give the same bits."""
    rng = np.random.default_rng(8)
    a, b, c = (rng.standard_normal(50_000) for _ in range(3))
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = fma(a, b, c, "bf16", "sr", rng=12), div(a, b, "e4m3", "sr_eq", rng=13)
    finally:
        numba.set_num_threads(threads)
    assert same_arrays(serial[0], fma(a, b, c, "bf16", "sr", rng=12))
    assert same_arrays(serial[1], div(a, b, "e4m3", "sr_eq", rng=13))


def test_stochastic_rounding_is_unbiased() -> None:
    """E[sr(a + b)] = a + b: the mean over 2^16 draws is within 5 standard errors of the exact sum."""
    n = 1 << 16
    exact = 1.0 + 0.3 * 2.0**-7  # 30% of a bf16 ulp above 1
    result = add(np.full(n, 1.0), np.full(n, 0.3 * 2.0**-7), "bf16", "sr", rng=2)
    assert set(np.unique(result)) == {1.0, 1.0 + 2.0**-7}
    standard_error = 2.0**-7 * np.sqrt(0.3 * 0.7 / n)
    assert abs(result.mean() - exact) < 5 * standard_error


def test_every_precision_and_mode_is_supported() -> None:
    for p in (1, 2, 11, 24, 51, 52, 53):
        fmt = ln.Format(p=p, emax=100)
        for mode in MODES:
            for operation, _, arity in OPERATIONS.values():
                assert np.isfinite(operation(*[2.0, 3.0, 0.5][:arity], fmt, mode, rng=0))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: add(np.ones(2), np.ones(3), "fp16"), ValueError, r"shapes \(2,\), \(3,\) do not broadcast"),
        (lambda: fma(np.ones((2, 2)), 1.0, np.ones(3), "fp16"), ValueError, "do not broadcast"),
        (lambda: add(1.0, 2.0, "fp16", "nearest"), ValueError, "unknown rounding mode"),
        (lambda: add(1.0, 2.0, "fp17"), ValueError, "unknown format"),
        (lambda: add(1.0, 2.0, ln.Format(p=54, emax=10)), ValueError, "outside 1..53"),
        (lambda: add(np.arange(3), 1.0, "fp16"), TypeError, "dtype int64"),
        (lambda: add(np.ones(3, np.float16), 1.0, "fp16"), TypeError, "dtype float16"),
        (lambda: add(True, 1.0, "fp16"), TypeError, "boolean"),
        (lambda: add(Fraction(1, 3), 1.0, "fp16"), TypeError, "Fraction"),
        (lambda: add(2**53 + 1, 1.0, "fp16"), ValueError, "not a float64 value"),
        (lambda: add(10**400, 1.0, "fp16"), ValueError, "beyond float64"),
        (lambda: add(1.0, 2.0, "fp16", out=np.empty(2)), ValueError, "out has shape"),
        (lambda: add(np.ones(2), 2.0, "fp16", out=np.empty(2, np.float32)), ValueError, "float64"),
        (lambda: add(np.ones(2), 2.0, "fp16", out=[0.0, 0.0]), TypeError, "numpy array"),
        (lambda: div(1.0, 2.0, "fp16", "sr", rng="seed"), TypeError, "rng must be"),
        (lambda: add(1.0, 2.0, "fp16", mode="rne", precision=3), TypeError, "unexpected keyword"),
    ],
)
def test_bad_input_raises_clearly(call, error, match) -> None:  # noqa: ANN001
    with pytest.raises(error, match=match):
        call()


def test_read_only_out_is_refused() -> None:
    out = np.empty(2)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        add(np.ones(2), 1.0, "fp16", out=out)


def test_empty_and_list_operands() -> None:
    assert add(np.empty((0, 3)), 1.0, "fp16").shape == (0, 3)
    assert same_arrays(mul([1.5, 2.5], [2.0, 2.0], "e2m1"), np.array([3.0, 4.0]))  # 5 ties to even 4 in e2m1
