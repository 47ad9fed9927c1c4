"""Finding the set entries of a boolean row eight at a time, without a branch per entry.

A boolean (or 0/1 ``uint8``) row read as ``uint64`` words has at most one bit set per byte: bit ``8b`` for entry
``b`` of the word. :func:`lowest_set_byte` gives the entry of the word's lowest set bit (isolated as ``w & −w``,
whose float64 conversion is an exact power of two, ``2^{8b}``: the exponent field gives ``8b``). Walking a sparse
mask by clearing one bit at a time costs one loop trip per set entry; testing the eight bytes of each nonzero word
instead mispredicts a branch about twice per set entry (a LAMP mask of 2 % has one set entry in most nonzero
words). :func:`gather_set_bytes` goes further: it writes the lowest set entry of every word, zero or not, and counts
it only when the word is nonzero, so that only a second set entry in the same eight costs a branch. (Measured on
the benchmark's 2 % masks, both walks cost about the same, ~0.5 ms per 12 × 1024 × 1024 scores on two threads:
the scalar work per word, not mispredictions, dominates; skipping blocks of eight zero words after one test was
slower still.)

A mask that a kernel builds for itself can hold one entry per *bit* instead: sixty-four comparisons OR-ed into a
``uint64`` (a loop the compiler vectorises), walked by :func:`lowest_set_bit`, one trip per set entry and one
load per sixty-four entries (:func:`lampnum.lamp.screen32.decide_threshold_row32`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "lowest_set_bit",
    "lowest_set_bit_reference",
    "lowest_set_byte",
    "lowest_set_byte_reference",
    "gather_set_bytes",
    "gather_set_bytes_reference",
]

_ONE = np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def lowest_set_bit(word):  # pragma: no cover - compiled
    """(the index of the lowest set bit of the nonzero ``uint64`` ``word``, ``word`` with that bit cleared): the
    isolated bit ``w & −w = 2^i`` converts to float64 exactly, and its exponent field is ``i``."""
    low = word & (~word + _ONE)
    return (np.float64(low).view(np.int64) >> 52) - 1023, word ^ low


def lowest_set_bit_reference(word: int) -> tuple[int, int]:
    """Pure-Python twin of :func:`lowest_set_bit`."""
    low = word & -word
    return low.bit_length() - 1, word ^ low


@njit(cache=True, nogil=True, inline="always")
def lowest_set_byte(word):  # pragma: no cover - compiled
    """(the byte index of the lowest set bit of the nonzero ``uint64`` ``word``, ``word`` with that bit cleared)."""
    bit, rest = lowest_set_bit(word)
    return bit >> 3, rest


def lowest_set_byte_reference(word: int) -> tuple[int, int]:
    """Pure-Python twin of :func:`lowest_set_byte`."""
    low = word & -word
    return (low.bit_length() - 1) >> 3, word ^ low


@njit(cache=True, nogil=True, inline="always")
def gather_set_bytes(word, base, columns, found):  # pragma: no cover - compiled
    """Append ``base + b`` for every set byte ``b`` of ``word`` (increasing) to ``columns[found:]``; returns the new
    count. ``columns`` needs one slot past the last entry it can hold: for a zero word a meaningless value is
    written at ``columns[found]`` and not counted (no branch on whether the word is zero); only a word with a
    second set byte loops."""
    byte, rest = lowest_set_byte(word)
    columns[found] = base + byte
    found += np.int64(word != 0)
    while rest != 0:  # rare on a sparse mask
        byte, rest = lowest_set_byte(rest)
        columns[found] = base + byte
        found += 1
    return found


def gather_set_bytes_reference(word: int, base: int, columns: list[int]) -> None:
    """Pure-Python twin of :func:`gather_set_bytes` (appends to a list; nothing is written for a zero word)."""
    while word:
        byte, word = lowest_set_byte_reference(word)
        columns.append(base + byte)
