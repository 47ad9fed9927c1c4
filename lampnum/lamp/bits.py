"""Finding the set entries of a boolean row eight at a time, without a branch per entry.

A boolean (or 0/1 ``uint8``) row read as ``uint64`` words has at most one bit set per byte: bit ``8b`` for entry
``b`` of the word. :func:`lowest_set_byte` gives the entry of the word's lowest set bit (isolated as ``w & −w``,
whose float64 conversion is an exact power of two, ``2^{8b}``: the exponent field gives ``8b``). Walking a sparse
mask by clearing one bit at a time costs one loop trip per set entry; testing the eight bytes of each nonzero word
instead mispredicts a branch about twice per set entry (a LAMP mask of 2 % has one set entry in most nonzero
words).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["lowest_set_byte", "lowest_set_byte_reference"]

_ONE = np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def lowest_set_byte(word):  # pragma: no cover - compiled
    """(the byte index of the lowest set bit of the nonzero ``uint64`` ``word``, ``word`` with that bit cleared)."""
    low = word & (~word + _ONE)
    exponent = (np.float64(low).view(np.int64) >> 52) - 1023
    return exponent >> 3, word ^ low


def lowest_set_byte_reference(word: int) -> tuple[int, int]:
    """Pure-Python twin of :func:`lowest_set_byte`."""
    low = word & -word
    return (low.bit_length() - 1) >> 3, word ^ low
