"""Walking the set entries of a boolean row by words: every set byte found once, in order, as its twin finds them."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from lampnum.lamp.bits import lowest_set_byte, lowest_set_byte_reference
from lampnum.lamp.kernels import _selected_columns


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
def _columns(mask_row: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    columns = np.empty(mask_row.shape[0] + 1, dtype=np.int64)
    return columns[: _selected_columns(mask_row, columns)]


@given(st.lists(st.booleans(), min_size=0, max_size=70))
def test_selected_columns_against_flatnonzero(flags):
    """Rows of every length: multiples of 8 go word by word, the others entry by entry."""
    row = np.array(flags, dtype=bool)
    assert _columns(row).tolist() == np.flatnonzero(row).tolist()
