"""Rounding modes, each documented by the inequality that defines it.

For a real x between two neighbouring format values ``lo < x < hi`` (with ``lo``/``hi`` taken from the format's grid
with an unbounded exponent range, then overflow applied as :mod:`lampnum.formats` describes):
"""

from __future__ import annotations

import enum

__all__ = ["RoundingMode", "as_mode", "STOCHASTIC_MODES"]


class RoundingMode(str, enum.Enum):
    """The rounding modes of lampnum. Values are the short names the public API takes (``mode="rne"``)."""

    #: nearest; at x = (lo+hi)/2 the neighbour whose last significand bit is 0 (IEEE 754 roundTiesToEven)
    RNE = "rne"
    #: nearest; at x = (lo+hi)/2 the neighbour of larger magnitude (IEEE 754 roundTiesToAway)
    RNA = "rna"
    #: the neighbour of smaller magnitude, |round(x)| <= |x| (IEEE 754 roundTowardZero); never overflows to inf
    RTZ = "rtz"
    #: hi, round(x) >= x (IEEE 754 roundTowardPositive)
    RUP = "rup"
    #: lo, round(x) <= x (IEEE 754 roundTowardNegative)
    RDN = "rdn"
    #: x itself if representable, else the neighbour whose last significand bit is 1 (round to odd; saturates at max)
    RTO = "rto"
    #: the neighbour of larger magnitude with probability (|x|-|lo|)/(|hi|-|lo|): E[round(x)] = x
    SR = "sr"
    #: either neighbour with probability 1/2 (x not representable)
    SR_EQ = "sr_eq"

    @property
    def code(self) -> int:
        """The integer the Numba kernels take (an implementation detail, never part of the API)."""
        return _CODES[self]

    @property
    def stochastic(self) -> bool:
        return self in STOCHASTIC_MODES


_CODES = {mode: index for index, mode in enumerate(RoundingMode)}
STOCHASTIC_MODES = frozenset({RoundingMode.SR, RoundingMode.SR_EQ})


def as_mode(mode: RoundingMode | str) -> RoundingMode:
    """Accept a :class:`RoundingMode` or its short name; an unknown name raises ``ValueError`` listing the names."""
    if isinstance(mode, RoundingMode):
        return mode
    if isinstance(mode, str):
        try:
            return RoundingMode(mode.strip().lower())
        except ValueError:
            pass
        raise ValueError(f"unknown rounding mode {mode!r}; expected one of {', '.join(m.value for m in RoundingMode)}")
    raise TypeError(f"rounding mode must be a str or RoundingMode, got {type(mode).__name__}")
