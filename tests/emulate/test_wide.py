"""The 128-bit word arithmetic of the exact kernels, against Python integers."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from lampnum.emulate import wide

MASK64 = (1 << 64) - 1
words = st.integers(0, MASK64)
wides = st.one_of(
    st.integers(0, (1 << 128) - 1), st.integers(0, 1 << 70), st.sampled_from([0, 1, MASK64, 1 << 64])
)


def split(x: int) -> tuple[np.uint64, np.uint64]:
    return np.uint64(x >> 64), np.uint64(x & MASK64)


def join(hi: np.uint64, lo: np.uint64) -> int:
    return (int(hi) << 64) | int(lo)


@given(words, words)
@example(MASK64, MASK64)
def test_mul_64x64_is_the_exact_product(x: int, y: int) -> None:
    assert join(*wide.mul_64x64(np.uint64(x), np.uint64(y))) == x * y


@given(wides, st.integers(0, 127))
@example((1 << 128) - 1, 64)
@example(1, 127)
def test_shift_left_wraps_modulo_2_128(x: int, count: int) -> None:
    assert join(*wide.shift_left(*split(x), count)) == (x << count) % (1 << 128)


@given(wides, st.integers(0, 300))
@example((1 << 128) - 1, 64)
@example(1 << 64, 65)
@example(1 << 63, 64)
def test_shift_right_sticky_floors_and_reports_dropped_bits(x: int, count: int) -> None:
    hi, lo, sticky = wide.shift_right_sticky(*split(x), count)
    assert join(hi, lo) == x >> count
    assert sticky == (x % (1 << count) != 0)


@given(wides, wides)
def test_add_sub_less_match_integers(x: int, y: int) -> None:
    modulus = 1 << 128
    assert join(*wide.add_128(*split(x), *split(y))) == (x + y) % modulus
    assert join(*wide.sub_128(*split(x), *split(y))) == (x - y) % modulus
    assert wide.less_128(*split(x), *split(y)) == (x < y)


@given(wides)
@example(0)
@example((1 << 64) - 1)
@example(1 << 64)
@example((1 << 53) + 1)
def test_bit_length_128(x: int) -> None:
    assert wide.bit_length_128(*split(x)) == x.bit_length()


@given(st.integers(0, 64))
def test_low_mask(count: int) -> None:
    assert int(wide.low_mask(count)) == (1 << count) - 1
