"""The vectorised exp of the LAMP kernels against 60-digit mpmath (at most 2 ulp), its pure-Python twin, and its
special values; the parallel valid mask and in-place recomputation against their plain numpy statements."""

from __future__ import annotations

import math

import mpmath
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numba import njit

import lampnum.lamp as lamp
from lampnum.lamp.fast_exp import fast_exp, fast_exp_reference


@njit(cache=True)
def _exp_array(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = fast_exp(x[i])
    return out


def _ulp_error(got: float, x: float) -> float:
    with mpmath.workdps(60):
        exact = mpmath.exp(mpmath.mpf(x))
    nearest = float(exact)
    if nearest == 0.0 or math.isinf(nearest):
        return 0.0 if got == nearest else math.inf
    if nearest < 2.0**-1022:  # subnormal results: absolute spacing 2^-1074, rounded twice at most
        return abs(got - nearest) / 2.0**-1074
    return float(abs(mpmath.mpf(got) - exact) / math.ulp(nearest))


@settings(max_examples=600)
@given(st.floats(min_value=-750.0, max_value=712.0))
@example(0.0)
@example(-0.0)
@example(-745.1332)  # the last nonzero result
@example(709.782712893384)  # the last finite one
@example(-708.3964185322641)  # the smallest normal result
@example(0.5 * math.log(2.0))  # the reduction's boundary
def test_fast_exp_is_within_two_ulp_of_mpmath(x: float) -> None:
    got = float(_exp_array(np.array([x]))[0])
    assert _ulp_error(got, x) <= 2.0
    assert got == fast_exp_reference(x)


def test_fast_exp_special_values() -> None:
    got = _exp_array(np.array([-np.inf, np.inf, np.nan, -1e308, 1e308]))
    assert got[0] == 0.0 and got[1] == np.inf and np.isnan(got[2]) and got[3] == 0.0 and got[4] == np.inf


def test_fast_exp_dense_sweep_of_the_softmax_range() -> None:
    """Every 1/97 of a unit across [-40, 0], where softmax weights live, against mpmath."""
    x = -np.arange(0, 40 * 97) / 97.0
    got = _exp_array(x)
    assert max(_ulp_error(float(g), float(v)) for g, v in zip(got[::7], x[::7], strict=True)) <= 2.0


def test_valid_mask_parallel_path_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((3, 2, 70, 90))
    scores[rng.random(scores.shape) < 0.1] = -np.inf
    causal = rng.random((70, 90)) < 0.6
    expected = (scores != -np.inf) & causal
    np.testing.assert_array_equal(lamp.valid_mask(scores, causal), expected)
    np.testing.assert_array_equal(lamp.valid_mask(scores, causal[None, None]), expected)
    np.testing.assert_array_equal(lamp.valid_mask(scores[..., ::2], causal[:, ::2]), expected[..., ::2])


def test_recompute_in_place_corrects_the_array_itself() -> None:
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal((2, 30, 8)).astype(np.float32), rng.standard_normal((2, 40, 8)).astype(np.float32)
    low = (q @ k.swapaxes(-1, -2)).astype(np.float64) + 1e-3
    mask = rng.random(low.shape) < 0.1
    copied = lamp.recompute_product(q, k.swapaxes(-1, -2), low, mask)
    work = low.copy()
    in_place = lamp.recompute_product(q, k.swapaxes(-1, -2), work, mask, in_place=True)
    assert in_place.values is work
    np.testing.assert_array_equal(work, copied.values)
    np.testing.assert_array_equal(low[~mask], work[~mask])
    for bad in (low.astype(np.float16), np.asfortranarray(low), low.copy()):  # float16, not C order, read-only
        bad.flags.writeable = bad.dtype != np.float64 or not bad.flags.c_contiguous
        try:
            lamp.recompute_product(q, k.swapaxes(-1, -2), bad, mask, in_place=True)
        except ValueError as error:
            assert "in_place" in str(error)
        else:
            raise AssertionError(f"a {bad.dtype} {bad.flags} array cannot be corrected in place")
