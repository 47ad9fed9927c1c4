"""Small kernels of the fused row pass against numpy: walking the set entries of a boolean row by words (every set
byte found once, in order, as its twin finds them) and top_mu's k-th largest value by selection."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from lampnum.emulate.bits import (
    gather_set_bytes,
    gather_set_bytes_reference,
    lowest_set_bit,
    lowest_set_bit_reference,
    lowest_set_byte,
    lowest_set_byte_reference,
)
from lampnum.lamp.kernels import _kth_largest, _selected_columns


@njit(cache=True)
def _walk(word: np.uint64) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty(8, dtype=np.int64)
    found = 0
    while word != 0:
        byte, word = lowest_set_byte(word)
        out[found] = byte
        found += 1
    return out[:found]


@given(st.lists(st.booleans(), min_size=8, max_size=8))
def test_walk_finds_every_set_byte_in_order(flags):
    row = np.array(flags, dtype=bool)
    word = row.view(np.uint64)[0]
    assert _walk(word).tolist() == np.flatnonzero(row).tolist()
    byte, rest = lowest_set_byte_reference(int(word)) if word else (None, None)
    if word:
        assert (byte, rest) == tuple(int(v) for v in lowest_set_byte(word))


@njit(cache=True)
def _bits(word: np.uint64) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty(64, dtype=np.int64)
    found = 0
    while word != 0:
        bit, word = lowest_set_bit(word)
        out[found] = bit
        found += 1
    return out[:found]


@given(st.integers(0, 2**64 - 1) | st.sampled_from([1, 2**52, 2**53, 2**63, 2**64 - 1, 2**63 + 1]))
def test_bit_walk_finds_every_set_bit_in_order(value):
    """Every set bit of a 64-bit word once, lowest first, including bits 53 to 63 (whose isolated powers of two
    are still exact in float64), against Python's integers."""
    want = [b for b in range(64) if value >> b & 1]
    assert _bits(np.uint64(value)).tolist() == want
    if value:
        assert lowest_set_bit_reference(value) == (want[0], value & ~(1 << want[0]))
        assert tuple(int(v) for v in lowest_set_bit(np.uint64(value))) == lowest_set_bit_reference(value)


@njit(cache=True)
def _columns(mask_row: np.ndarray, stop: int) -> np.ndarray:  # pragma: no cover - compiled
    columns = np.empty(mask_row.shape[0] + 1, dtype=np.int64)
    return columns[: _selected_columns(mask_row, columns, stop)]


@given(st.lists(st.booleans(), min_size=0, max_size=70), st.integers(-1, 75))
def test_selected_columns_against_flatnonzero(flags, stop):
    """Rows of every length: multiples of 8 go word by word, the others entry by entry; set entries at or past
    ``stop`` (inside the last word read, too) are not reported, ``stop`` < 0 reads the whole row."""
    row = np.array(flags, dtype=bool)
    want = np.flatnonzero(row if stop < 0 else row[:stop])
    assert _columns(row, stop).tolist() == want.tolist()


@given(st.lists(st.sampled_from([-1.0, 0.0, 0.25, 0.5, 1.0, 3.0]) | st.floats(0, 1e3), min_size=1, max_size=60),
       st.data())  # fmt: skip
def test_kth_largest_against_a_sort(values, data):
    """Rows with many ties (values drawn from a few) and without: the k-th largest counted with multiplicity,
    for every rank k; entries past ``width`` are ignored and the row itself is not modified."""
    row = np.array(values + [1e9, -1e9])  # two entries past width that must not count
    width = len(values)
    k = data.draw(st.integers(1, width))
    scratch = np.empty(row.shape[0])
    before = row.copy()
    assert _kth_largest(row, width, k, scratch) == np.sort(row[:width])[::-1][k - 1]
    assert np.array_equal(row, before)


@njit(cache=True)
def _gathered(word: np.uint64, base: int) -> np.ndarray:  # pragma: no cover - compiled
    columns = np.empty(9, dtype=np.int64)  # eight entries and the slot a zero word writes
    return columns[: gather_set_bytes(word, base, columns, 0)]


@given(st.lists(st.booleans(), min_size=8, max_size=8), st.integers(0, 1000))
def test_gather_set_bytes_and_its_twin_against_flatnonzero(flags, base):
    """Every set byte of a word, zero words included (nothing counted), offset by ``base``."""
    word = np.array(flags, dtype=bool).view(np.uint64)[0]
    want = (base + np.flatnonzero(flags)).tolist()
    assert _gathered(word, base).tolist() == want
    twin: list[int] = []
    gather_set_bytes_reference(int(word), base, twin)
    assert twin == want
