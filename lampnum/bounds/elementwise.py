"""Bounds for one rounding and for the correctly rounded elementwise operations of :mod:`lampnum.emulate`.

One rounding of an exact value x: |fl(x) − x| ≤ max(u_m|x|, η_m) (:mod:`lampnum.bounds.constants`; Higham 2002,
Thm 2.2, and Ch. 2 for underflow). The elementwise operations ``add sub mul div sqrt fma`` of lampnum are correctly rounded from
the exact result r of their operands, so their error is that of one rounding of r. Since r is known to us only
through its float64 value r̃ (|r − r̃| ≤ 2^-53|r| for a correctly rounded float64 operation, plus 2^-1075 when it
underflows; for ``fma`` two float64 roundings), the bound uses an upper bound on |r|.

``exp expm1 log log1p tanh erf`` are *not* correctly rounded: lampnum computes them in float64 and rounds the result r̃ once
(double rounding, documented in :mod:`lampnum.emulate`). Then |fl(r̃) − f(x)| ≤ max(u_m|r̃|, η_m) + |r̃ − f(x)|, and
the float64 error |r̃ − f(x)| is taken as ``libm_ulps`` units in the last place of r̃ (default 4 for exp, expm1, log,
log1p, tanh, 8 for erf; lampnum evaluates them with the C library, glibc documenting at most 1–2 ulps): an
*assumption* about the math library (the test suite checks the bound against mpmath at 200 bits), not a proof.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special

from ..formats import Format
from ..rounding.modes import RoundingMode
from .constants import rounding
from .growth import ETA64, inflate
from .result import check_finite, report_overflow

__all__ = ["rounding_error", "elementwise", "ELEMENTWISE_OPS"]

_CORRECTLY_ROUNDED: dict[str, tuple[int, Callable[..., Any]]] = {
    "add": (2, np.add),
    "sub": (2, np.subtract),
    "mul": (2, np.multiply),
    "div": (2, np.divide),
    "sqrt": (1, np.sqrt),
}
_LIBM: dict[str, Callable[..., Any]] = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p,
                                        "tanh": np.tanh, "erf": scipy.special.erf}  # fmt: skip
_LIBM_ULPS = {"exp": 4.0, "expm1": 4.0, "log": 4.0, "log1p": 4.0, "tanh": 4.0, "erf": 8.0}
ELEMENTWISE_OPS = (*_CORRECTLY_ROUNDED, "fma", *_LIBM)


def rounding_error(x: Any, fmt: Format | str, mode: RoundingMode | str = "rne") -> np.ndarray:
    """Bound on |fl(x) − x| for exact float64 values x: max(u_m|x|, η_m), rounded up; inf where it may overflow.

    Where the rounding may overflow (|x| ≥ max + half a spacing for nearest modes, |x| > max otherwise) the bound is
    inf and a ``BoundOverflowWarning`` is issued.

    >>> import numpy as np
    >>> b = rounding_error(np.array([3.0, 1e-9]), "fp16")  # relative u·|x|, then the subnormal floor η = 2^-25
    >>> bool(3 * 2.0**-11 <= b[0] <= 3 * 2.0**-11 * (1 + 1e-14)), bool(2.0**-25 <= b[1] <= 2.0**-25 * (1 + 1e-14))
    (True, True)
    """
    magnitude = np.abs(np.asarray(x, dtype=np.float64))
    check_finite("x", magnitude)
    return _bound_at(magnitude, fmt, mode, 0.0, "lampnum.bounds.rounding_error")


def _bound_at(magnitude: np.ndarray, fmt: Format | str, mode: RoundingMode | str, slack: Any, what: str) -> np.ndarray:
    """max(u_m·m, η_m) + slack for exact magnitudes ≤ m (m, slack ≥ 0 upper bounds), overflow-checked."""
    r = rounding(fmt, mode)
    bound = inflate(np.maximum(r.u * magnitude, r.eta) + slack, 2)
    overflow = (magnitude >= r.threshold) | np.isnan(magnitude) | np.isinf(magnitude)
    return report_overflow(bound, overflow, what)


def elementwise(op: str, *operands: Any, fmt: Format | str, mode: RoundingMode | str = "rne",
                libm_ulps: float | None = None) -> np.ndarray:  # fmt: skip
    """Bound on |lampnum.<op>(*operands, fmt, mode) − op(*operands)|, op's exact value at the given operands.

    ``op`` is one of ``add sub mul div sqrt fma exp expm1 log log1p tanh erf`` (see the module docstring for which are correctly
    rounded and for the ``libm_ulps`` assumption of the others). Operands broadcast like numpy's; non-finite operands
    or results outside the function's domain raise ``ValueError``; possible overflow gives ``inf`` and a warning.

    >>> float(elementwise("add", 1.0, 2.0**-9, fmt="bf16")) / 2.0**-8  # u·|1 + 2^-9|, rounded up
    1.0019531250000029
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in operands]
    for index, array in enumerate(arrays):
        check_finite(f"operand {index}", array)
    what = f"lampnum.bounds.elementwise({op!r})"
    with np.errstate(all="ignore"):
        if op in _CORRECTLY_ROUNDED:
            arity, function = _CORRECTLY_ROUNDED[op]
            _check_arity(op, arrays, arity)
            approx = np.abs(function(*arrays))
            _check_domain(op, approx, singular=op == "div" and bool(np.any(arrays[1] == 0)))
            magnitude = inflate(approx * (1 + 2.0**-52) + ETA64, 2)
            return _bound_at(magnitude, fmt, mode, 0.0, what)
        if op == "fma":
            _check_arity(op, arrays, 3)
            a, b, c = arrays
            product = np.abs(a * b)
            approx = np.abs(a * b + c)
            magnitude = inflate(approx + 2.0**-52 * (2 * product + approx) + 2 * ETA64, 4)
            return _bound_at(magnitude, fmt, mode, 0.0, what)
        if op in _LIBM:
            _check_arity(op, arrays, 1)
            approx = np.abs(_LIBM[op](arrays[0]))
            _check_domain(op, approx, singular=bool(np.any(arrays[0] == (0.0 if op == "log" else -1.0)))
                          if op in ("log", "log1p") else False)  # fmt: skip
            ulps = libm_ulps if libm_ulps is not None else _LIBM_ULPS[op]
            slack = inflate(ulps * (2.0**-52 * approx + ETA64), 2)
            return _bound_at(approx, fmt, mode, slack, what)
    raise ValueError(f"unknown elementwise op {op!r}; expected one of {', '.join(ELEMENTWISE_OPS)}")


def _check_arity(op: str, arrays: list[np.ndarray], arity: int) -> None:
    if len(arrays) != arity:
        raise TypeError(f"{op} takes {arity} operand(s), got {len(arrays)}")


def _check_domain(op: str, approx: np.ndarray, singular: bool = False) -> None:
    """NaN results (sqrt, log of negatives) and poles (x/0, log 0, log1p(−1)) have no exact value; an infinite
    float64 result elsewhere is a finite exact value beyond float64 and is reported as an overflow."""
    if np.any(np.isnan(approx)) or singular:
        raise ValueError(f"{op}: an operand is outside the function's domain (the exact result is not a real number)")
