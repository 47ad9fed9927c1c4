"""The screening exponential exp32: its error bound for every float32 input of [-80, -2^-30] against the float64
libm exp, the remaining tiny inputs, its pure-Python twin, its clamping; the eight-lane dot product against its twin
and its error bound."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numba import njit, prange

from lampnum.lamp.dot_lanes import dot_lanes, dot_lanes_reference
from lampnum.lamp.fast_exp32 import EXP32_ERROR, EXP32_LOWEST, exp32, exp32_reference


@njit(parallel=True, cache=True)
def _largest_error(first_bits: int, last_bits: int, chunks: int) -> float:  # pragma: no cover - compiled
    """The largest ``|exp32(x) − e^x| / e^x`` over the float32 ``x`` whose encodings lie in [first, last]."""
    worst = np.zeros(chunks)
    count = last_bits - first_bits + 1
    for chunk in prange(chunks):
        largest = 0.0
        for bits in range(first_bits + count * chunk // chunks, first_bits + count * (chunk + 1) // chunks):
            x = np.uint32(bits).view(np.float32)
            exact = math.exp(np.float64(x))
            largest = max(largest, abs(np.float64(exp32(x)) - exact) / exact)
        worst[chunk] = largest
    return worst.max()


def test_exp32_error_bound_holds_for_every_float32_input():
    """All 3·10^8 negative float32 numbers from -2^-30 to -80 (encodings increase with magnitude), against the
    platform's float64 exp (within 2^-52 of e^x: 2^30 times below the bound). The measured maximum is 2^-23.6."""
    first = int(np.float32(-(2.0**-30)).view(np.uint32))
    last = int(np.float32(EXP32_LOWEST).view(np.uint32))
    assert last - first > 3 * 10**8
    largest = _largest_error(first, last, 64)
    assert largest <= EXP32_ERROR
    assert largest > EXP32_ERROR / 8  # the bound is not loose by orders of magnitude (the check can fail)


@njit(cache=True)
def _exp32_array(x: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = exp32(x[i])
    return out


@settings(max_examples=300)
@given(st.floats(-200.0, 0.0, width=32))
@example(0.0)
@example(-0.0)
@example(-1e-45)
@example(-(2.0**-30))
@example(-80.0)
@example(float(np.nextafter(np.float32(-80.0), np.float32(0.0))))
@example(-0.5 * math.log(2.0))
def test_exp32_twin_and_tiny_inputs(x):
    got = _exp32_array(np.array([x], dtype=np.float32))[0]
    assert got == exp32_reference(x)
    clamped = max(x, EXP32_LOWEST)
    exact = math.exp(float(np.float32(clamped)))
    assert abs(float(got) - exact) <= (EXP32_ERROR + abs(clamped) * 2.0**-24) * exact


def test_exp32_clamps_below_the_range():
    got = _exp32_array(np.array([-np.inf, -1e30, -80.5, -80.0, 0.0], dtype=np.float32))
    assert got[0] == got[1] == got[2] == got[3] and got[4] == 1.0
    assert float(got[0]) < 2.0**-115


@njit(cache=True)
def _dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    a_row = np.empty(a.shape[0])
    for k in range(a.shape[0]):
        a_row[k] = np.float64(a[k])
    out = np.empty(b.shape[0])
    for j in range(b.shape[0]):
        out[j] = dot_lanes(a_row, b, j)
    return out


@settings(max_examples=200)
@given(st.integers(0, 70), st.integers(0, 2**31), st.booleans(), st.floats(1e-30, 1e30))
def test_dot_lanes_twin_and_error_bound(depth, seed, wide, scale):
    """Bit for bit against the twin (float32 and float64 rows, every length mod 8), and within γ_{⌈K/8⌉+3}
    Σ|a_k b_k| of the exact sum (math.fsum of exact float32 products)."""
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(depth) * scale).astype(np.float32)
    b = rng.standard_normal((3, depth)).astype(np.float64 if wide else np.float32)
    got = _dots(a, b)
    for j in range(3):
        assert got[j] == dot_lanes_reference(a.tolist(), b[j].tolist())
        if not wide:
            products = [float(x) * float(y) for x, y in zip(a, b[j], strict=True)]
            steps = -(-depth // 8) + 3
            gamma = steps * 2.0**-53 / (1 - steps * 2.0**-53)
            assert abs(got[j] - math.fsum(products)) <= gamma * math.fsum(abs(p) for p in products)
