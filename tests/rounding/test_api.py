"""The public ``ln.round`` surface: input kinds, shapes and layouts, ``out=``, and clear errors for bad input."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import lampnum as ln


def test_python_scalars_return_floats() -> None:
    assert ln.round(0.1, "bf16") == 0.10009765625
    assert isinstance(ln.round(3, "e4m3"), float)
    assert ln.round(Fraction(1, 3), "fp16") == 0.333251953125
    assert ln.round(-0.0, "bf16") == 0 and np.signbit(ln.round(-0.0, "bf16"))


def test_numpy_scalars_keep_their_type() -> None:
    result = ln.round(np.float32(0.1), "bf16")
    assert isinstance(result, np.float32) and result == np.float32(0.10009765625)
    assert isinstance(ln.round(np.float64(0.1), "bf16"), np.float64)


@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtypes(shape: tuple[int, ...], dtype: type) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    result = ln.round(x, "fp16")
    assert result.shape == x.shape and result.dtype == dtype
    np.testing.assert_array_equal(result, x.astype(np.float16).astype(dtype))  # numpy's float16 cast is correct


def test_layouts_and_views() -> None:
    x = np.random.default_rng(1).standard_normal((40, 30))
    expected = x.astype(np.float16).astype(np.float64)
    for view in (x.T, x[::3, ::-2], np.asfortranarray(x), x[5:9]):
        np.testing.assert_array_equal(ln.round(view, "fp16"), view.astype(np.float16).astype(np.float64))
    np.testing.assert_array_equal(ln.round(x, "fp16"), expected)


def test_out_argument() -> None:
    x = np.random.default_rng(2).standard_normal((6, 4))
    expected = ln.round(x, "bf16")
    out = np.empty_like(x)
    assert ln.round(x, "bf16", out=out) is out
    np.testing.assert_array_equal(out, expected)
    fortran_out = np.empty_like(x, order="F")
    ln.round(x, "bf16", out=fortran_out)
    np.testing.assert_array_equal(fortran_out, expected)
    in_place = x.copy()
    ln.round(in_place, "bf16", out=in_place)
    np.testing.assert_array_equal(in_place, expected)
    overlapping = x.copy()
    ln.round(overlapping[:, ::-1], "bf16", out=overlapping)  # out overlaps a reversed view of itself
    np.testing.assert_array_equal(overlapping, expected[:, ::-1])


def test_lists_are_accepted_as_float64() -> None:
    np.testing.assert_array_equal(ln.round([0.1, 0.2], "bf16"), ln.round(np.array([0.1, 0.2]), "bf16"))


def test_special_values_per_policy() -> None:
    x = np.array([np.inf, -np.inf, np.nan, 1e30, -1e30])
    np.testing.assert_array_equal(ln.round(x, "bf16")[:2], [np.inf, -np.inf])
    e4m3 = ln.round(x, "e4m3")
    assert np.isnan(e4m3).all()
    saturating = ln.Format(p=4, emax=8, specials="fn", overflow="saturate")
    np.testing.assert_array_equal(ln.round(x[[0, 1, 3, 4]], saturating), [448, -448, 448, -448])
    assert np.isnan(ln.round(np.nan, "e2m1"))  # fp4 has no NaN code: the float result holds NaN, encode refuses it


def test_toward_zero_never_overflows_to_infinity() -> None:
    assert ln.round(1e10, "fp16", "rtz") == 65504
    assert ln.round(-1e10, "fp16", "rup") == -65504 and ln.round(-1e10, "fp16", "rdn") == -np.inf
    assert ln.round(1e10, "fp16", "rto") == 65504


def test_fnuz_has_no_negative_zero() -> None:
    result = ln.round(np.array([-0.0, -1e-30]), "e4m3fnuz")
    assert not np.signbit(result).any()


def test_flush_to_zero_format_rounds_into_zero_or_tiny() -> None:
    fmt = ln.Format(p=11, emax=15, subnormals=False)
    tiny = fmt.tiny
    assert ln.round(0.6 * tiny, fmt) == tiny and ln.round(0.4 * tiny, fmt) == 0
    assert ln.round(0.5 * tiny, fmt) == 0  # the tie goes to the even candidate, zero
    assert ln.round(0.1 * tiny, fmt, "rup") == tiny  # directed rounding stays a bound


def test_float32_input_with_a_wider_format() -> None:
    x = np.array([1.0, 3.0e38], dtype=np.float32)
    assert ln.round(x, "fp64").dtype == np.float32
    with pytest.raises(ValueError, match="float32 cannot hold"):
        ln.round(np.array([np.finfo(np.float32).max], dtype=np.float32), ln.Format(p=8, emax=200), "rup")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: ln.round(1.0, "bf17"), ValueError, "unknown format 'bf17'"),
        (lambda: ln.round(1.0, "bf16", "nearest"), ValueError, "unknown rounding mode 'nearest'"),
        (lambda: ln.round(1.0, 16), TypeError, "Format or a format name"),
        (lambda: ln.round(np.arange(3), "bf16"), TypeError, "dtype int64"),
        (lambda: ln.round(np.ones(3, dtype=np.complex128), "bf16"), TypeError, "complex128"),
        (lambda: ln.round(np.ones(3, dtype=np.float16), "bf16"), TypeError, "float16"),
        (lambda: ln.round(True, "bf16"), TypeError, "booleans"),
        (lambda: ln.round(1 + 2j, "bf16"), TypeError, "complex"),
        (lambda: ln.round("1.0", "bf16"), TypeError, "str"),
        (lambda: ln.round(np.ones(3), "bf16", out=np.ones(4)), ValueError, "out has shape"),
        (lambda: ln.round(np.ones(3), "bf16", out=np.ones(3, dtype=np.float32)), ValueError, "dtype float32"),
        (lambda: ln.round(np.ones(3), "bf16", out=[0.0, 0.0, 0.0]), TypeError, "out must be a numpy array"),
        (lambda: ln.round(np.ones(3), "bf16", "sr", rng="seed"), TypeError, "Generator"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error: type, message: str) -> None:  # noqa: ANN001
    with pytest.raises(error, match=message):
        call()


def test_read_only_out_is_refused() -> None:
    out = np.empty(3)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ln.round(np.ones(3), "bf16", out=out)
