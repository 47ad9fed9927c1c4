"""What a bound returns: the componentwise bound, where it may have overflowed, and with what probability it holds."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BoundResult", "BoundOverflowWarning", "check_finite", "report_overflow"]


class BoundOverflowWarning(UserWarning):
    """Some entries of a bound are infinite because an intermediate of the computation may exceed its format's range.

    The emulated result there may be ±inf, NaN or a saturated ±max, and no finite bound is claimed. Silence it with
    ``warnings.simplefilter("ignore", lampnum.bounds.BoundOverflowWarning)`` and read ``BoundResult.overflow``.
    """


@dataclass(frozen=True)
class BoundResult:
    """A componentwise bound with its provenance (``full=True`` of the bound functions).

    ``bound``: |emulated − exact| ≤ bound, entry by entry (``inf`` where ``overflow``). ``overflow``: True where an
    intermediate could reach its format's overflow threshold. ``probability``: 1.0 for a deterministic bound, else a
    lower bound on the probability that *all* entries hold at once. ``model``: the assumption the probability rests
    on. ``terms``: the non-negative parts whose sum is ``bound`` (names say which source of error each covers).
    """

    bound: np.ndarray
    overflow: np.ndarray
    probability: float = 1.0
    model: str = "deterministic"
    terms: dict[str, np.ndarray] = field(default_factory=dict)


def check_finite(name: str, x: np.ndarray) -> None:
    """Raise ``ValueError`` naming the first non-finite entry: bounds are for finite data only."""
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{name} has a non-finite entry {x[tuple(bad)]!r} at index {tuple(int(i) for i in bad)}; "
            "rounding-error bounds are defined for finite data only"
        )


def report_overflow(bound: np.ndarray, overflow: np.ndarray, what: str) -> np.ndarray:
    """Set ``bound`` to inf where ``overflow`` and warn (:class:`BoundOverflowWarning`) when any entry is affected."""
    if np.any(overflow):
        bound = np.where(overflow, np.inf, bound)
        count = int(np.count_nonzero(overflow))
        warnings.warn(
            f"{what}: {count} of {overflow.size} entries may overflow an intermediate format; their bound is inf",
            BoundOverflowWarning,
            stacklevel=3,
        )
    return bound
