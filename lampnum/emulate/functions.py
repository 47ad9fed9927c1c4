"""Elementary functions in a format: ``exp, expm1, log, log1p, tanh, erf``, computed in float64, then rounded.

These are **not** correctly rounded. Each result is ``round(f64(x))``: the platform C library's float64 value
of the function (through Numba's ``math`` functions; glibc documents errors of at most 1-2 ulps for these),
rounded once to ``fmt`` in ``mode`` exactly as :func:`lampnum.round` rounds it. Operands are float32/float64
arrays or scalars at their exact values, as for :mod:`lampnum.emulate.elementwise`; the result is a float64
array (a numpy float64 scalar for a 0-d result), and ``rng``/``out`` work the same way.

Accuracy. Write ``y = f(x)`` exactly and ``ŷ = f64(x)``, and suppose ``|ŷ − y| <= k`` float64 ulps of ``y``.

- *Faithful in the round-to-nearest modes* (``rne``, ``rna``): the result is one of the two format numbers
  around ``y`` whenever ``k < 2^(51 − p)`` (so that ``ŷ`` cannot pass the midpoint beyond a format number next
  to ``y``) and ``y`` is not below the format's normal range by more than float64's subnormal range allows
  (precisely: ``|y| >= 2^-1022``, or ``emin − p >= −1072``; true of every catalogue format but fp64). For the
  1-2 ulp libm bounds this covers ``p <= 49``: every catalogue format except fp64.
- *Every mode* is monotone in ``ŷ``, so ``round_rdn(y − δ) <= result <= round_rup(y + δ)`` with ``δ = k`` ulps
  of ``y``: directed, ``rto`` and stochastic results can be one format number beyond the faithful pair when
  ``y`` lies within float64's error of a format number (e.g. ``tanh(20)`` is 1 in float64, so ``rtz`` gives 1,
  not 1 − ulp).

Special values: the float64 function's IEEE values (``exp(−inf) = 0``, ``tanh(±inf) = ±1``,
``log(±0) = −inf``, ``log(x < 0) = NaN``, ``log1p(−1) = −inf``, NaN propagates, signed zeros kept), then
mapped into the format like any value (an exact infinity becomes the format's infinity or overflow value). A
float64 overflow of ``exp``/``expm1`` at finite ``x`` (``x > 709.78``) is an overflow of the format: ±max or
the overflow value per mode, as for a finite value beyond ``max``. Float64 underflow is inherited
(``exp(−800)`` is 0 in every mode).

>>> exp(1.0, "bf16"), tanh(0.5, "fp16"), erf(0.5, "e4m3")
(np.float64(2.71875), np.float64(0.462158203125), np.float64(0.5))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange

from ..formats import Format, as_format
from ..rounding.api import stochastic_key
from ..rounding.kernels import MODE_CODES, SR, _overflow, _round_finite, random_bits_at
from ..rounding.modes import RoundingMode, as_mode
from .operands import as_operand, broadcast_operands, finish, result_target

__all__ = ["exp", "expm1", "log", "log1p", "tanh", "erf", "FUNCTION_CODES", "function_array"]

EXP, EXPM1, LOG, LOG1P, TANH, ERF = range(6)
FUNCTION_CODES = {"exp": EXP, "expm1": EXPM1, "log": LOG, "log1p": LOG1P, "tanh": TANH, "erf": ERF}
_CHUNK = 1 << 14
_U0 = np.uint64(0)

Rng = np.random.Generator | int | None


@njit(cache=True)
def _evaluate(function: int, x: np.float64) -> float:
    """The float64 value of the function, with the IEEE 754 §9.2 domain rules written out."""
    if function == EXP:
        return math.exp(x)
    if function == EXPM1:
        return math.expm1(x)
    if function == LOG:
        if x < 0.0:
            return np.nan
        return -np.inf if x == 0.0 else math.log(x)
    if function == LOG1P:
        if x < -1.0:
            return np.nan
        return -np.inf if x == -1.0 else math.log1p(x)
    if function == TANH:
        return math.tanh(x)
    return math.erf(x)


@njit(cache=True, parallel=True)
def function_array(function, x, out, params, mode, key):  # noqa: ANN001 - Numba kernel
    """``out[i] = round(f64(x[i]))``; a float64 overflow at finite ``x[i]`` is a format overflow."""
    n = out.shape[0]
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            value = x[i]
            y = _evaluate(function, value)
            random_bits = random_bits_at(key, np.uint64(i)) if mode >= SR else _U0
            if np.isinf(y) and np.isfinite(value) and (function == EXP or function == EXPM1):
                out[i] = _overflow(y < 0.0, mode, params.max_value, params.overflow_value)
            else:
                out[i] = _round_finite(y, params.precision, params.emin, params.subnormals, params.max_value,
                                       params.overflow_value, params.inf_value, params.unsigned_zero, mode,
                                       random_bits)  # fmt: skip


def _apply(
    name: str, x: Any, fmt: Format | str, mode: RoundingMode | str, rng: Rng, out: np.ndarray | None
) -> Any:
    fmt = as_format(fmt)
    mode = as_mode(mode)
    shape, [(source, _)] = broadcast_operands(name, as_operand(x, name, "x"))
    key = np.uint64(stochastic_key(mode, rng))
    target = result_target(name, out, shape, [source])
    function_array(
        FUNCTION_CODES[name], source, target.reshape(-1), fmt.params(), MODE_CODES[mode.value], key
    )
    return finish(target, out)


def exp(x: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
        out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(exp(x) in float64): faithful in rne/rna as the module docstring says."""
    return _apply("exp", x, fmt, mode, rng, out)


def expm1(x: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
          out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(exp(x) − 1 in float64)."""
    return _apply("expm1", x, fmt, mode, rng, out)


def log(x: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
        out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(log(x) in float64), natural logarithm; log(±0) = −inf, log(x < 0) = NaN."""
    return _apply("log", x, fmt, mode, rng, out)


def log1p(x: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
          out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(log(1 + x) in float64); log1p(−1) = −inf, log1p(x < −1) = NaN."""
    return _apply("log1p", x, fmt, mode, rng, out)


def tanh(x: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
         out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(tanh(x) in float64)."""
    return _apply("tanh", x, fmt, mode, rng, out)


def erf(x: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
        out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(erf(x) in float64), the error function."""
    return _apply("erf", x, fmt, mode, rng, out)
