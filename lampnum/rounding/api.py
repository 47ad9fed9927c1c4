"""``lampnum.round``: correctly rounded conversion of scalars and float32/float64 arrays to any format.

Semantics (the executable specification is :func:`lampnum.rounding.reference.round_reference`):

- The *exact* value of each input is rounded once to the format in the given mode. float64 and float32 inputs are
  decoded from their own bits; Python ``int`` and :class:`fractions.Fraction` scalars are rounded from their exact
  value (no conversion to float64 first). Nothing is ever rounded twice.
- Subnormals follow the format; a format without subnormals rounds into the set {0, ±normal numbers}, so values below
  the smallest normal go to 0 or ±2^emin according to the mode (round-to-nearest ties at 2^(emin-1) go to 0, the even
  candidate).
- Overflow follows IEEE 754 §7.4 and the format's policy (see :mod:`lampnum.formats`): rtz and rto give ±max, rup/rdn
  give ±max on the side away from their infinity, the other modes give the format's overflow value (inf, max or NaN).
  An infinite input becomes that same overflow value (±inf in an IEEE format). NaN stays NaN; a ``finite`` format
  (fp6, fp4) has no NaN code, so a NaN result there can be held by a float array but not encoded.
- ``fnuz`` formats have no -0: a result of zero is +0.
- Stochastic modes (``sr``, ``sr_eq``) draw one 64-bit key from ``rng`` (a ``numpy.random.Generator`` or a seed) per
  call; element ``i`` of the C-ordered input then uses the random word ``splitmix64(key + (i+1)·γ)``, so the result
  depends only on the values, the shape, the seed and the call order, never on threads or memory layout.

The result has the input's dtype (or is a Python float for Python scalars). For float32 input the format's values must
be float32 values; where they are not (e.g. ``fp64`` or a wide exponent range) the results are checked and a result that
float32 cannot hold raises ``ValueError`` (pass float64 input instead). Integer, boolean, complex and other arrays raise
``TypeError``: convert explicitly (``astype(np.float64)`` is exact only for integers below 2^53).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from ..formats import FORMATS, Format, as_format
from .kernels import MODE_CODES, ROUND_KERNELS
from .modes import RoundingMode, as_mode
from .reference import random_bits_reference, round_reference

__all__ = ["round", "resolve_rng", "stochastic_key"]

_FP32 = FORMATS["fp32"]


def resolve_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, an int seed, or None (fresh OS entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def stochastic_key(mode: RoundingMode, rng: np.random.Generator | int | None) -> int:
    """The 64-bit key of one call: drawn from ``rng`` for stochastic modes, 0 (and ``rng`` untouched) otherwise."""
    if not mode.stochastic:
        return 0
    generator = resolve_rng(rng)
    return int(generator.integers(0, np.iinfo(np.uint64).max, dtype=np.uint64, endpoint=True))


def _round_scalar(x: int | float | Fraction, fmt: Format, mode: RoundingMode, key: int) -> float:
    return round_reference(x, fmt, mode, random_bits_reference(key, 0))


def _check_array(x: np.ndarray) -> None:
    if x.dtype not in (np.float64, np.float32):
        raise TypeError(
            f"lampnum.round takes float32 or float64 arrays, got dtype {x.dtype}; convert explicitly "
            "(astype(np.float64) is exact for float16 and for integers below 2^53)"
        )


def _round_array_into(x: np.ndarray, result: np.ndarray, fmt: Format, mode: RoundingMode, key: int) -> None:
    """Round C-contiguous ``x`` into C-contiguous ``result`` of the same shape."""
    params = fmt.params()
    args = (
        params.precision, params.emin, params.subnormals, params.max_value, params.overflow_value,
        params.inf_value, params.unsigned_zero, np.uint64(key),
    )  # fmt: skip
    ROUND_KERNELS[MODE_CODES[mode.value]](x.reshape(-1), result.reshape(-1), *args)


def round(  # noqa: A001 - the contract's name, as numpy.round
    x: Any,
    fmt: Format | str,
    mode: RoundingMode | str = "rne",
    *,
    rng: np.random.Generator | int | None = None,
    out: np.ndarray | None = None,
) -> Any:
    """Round ``x`` to the format ``fmt`` in ``mode`` (rne rna rtz rup rdn rto sr sr_eq), correctly.

    ``x`` is a Python scalar (int, float, Fraction: rounded from its exact value), a numpy float32/float64 scalar, or a
    float32/float64 array of any shape and memory layout; the result has the same type (a float for Python scalars).
    ``rng`` seeds the stochastic modes; ``out`` (an array of x's shape and dtype; may be ``x`` itself) receives the
    result. See the module docstring for the full semantics.

    >>> import lampnum as ln, numpy as np
    >>> ln.round(np.array([1 + 2**-8, 1 + 3 * 2**-8]), "bf16")  # ties to even
    array([1.      , 1.015625])
    >>> ln.round(0.1, "e4m3"), ln.round(1000.0, "e4m3"), ln.round(1000.0, "e4m3", "rtz")
    (0.1015625, nan, 448.0)
    """
    fmt = as_format(fmt)
    mode = as_mode(mode)
    key = stochastic_key(mode, rng)
    if isinstance(x, bool) or isinstance(x, np.bool_):
        raise TypeError("lampnum.round does not take booleans")
    if isinstance(x, (int, float, Fraction)) and not isinstance(x, np.generic):
        if out is not None:
            raise TypeError("out= needs an array input")
        return _round_scalar(x, fmt, mode, key)
    if isinstance(x, np.generic):
        array = np.asarray(x)
        _check_array(array)
        if out is not None:
            raise TypeError("out= needs an array input")
        result = np.empty((), dtype=array.dtype)
        _round_checked(array.reshape(1), result.reshape(1), fmt, mode, key)
        return result[()]
    if not isinstance(x, np.ndarray):
        if isinstance(x, (complex, np.complexfloating)) or not isinstance(x, (list, tuple)):
            raise TypeError(f"lampnum.round takes scalars and float32/float64 arrays, got {type(x).__name__}")
        x = np.asarray(x)
    _check_array(x)
    source = np.ascontiguousarray(x)
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
        if out.shape != x.shape or out.dtype != x.dtype:
            raise ValueError(f"out has shape {out.shape} and dtype {out.dtype}; expected {x.shape} and {x.dtype}")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
        if out.flags.c_contiguous and (out is x or not np.shares_memory(out, source)):
            target = out
        else:
            target = np.empty(x.shape, dtype=x.dtype)
        _round_checked(source, target, fmt, mode, key)
        if target is not out:
            out[...] = target
        return out
    result = np.empty(x.shape, dtype=x.dtype)
    _round_checked(source, result, fmt, mode, key)
    return result


def _round_checked(source: np.ndarray, target: np.ndarray, fmt: Format, mode: RoundingMode, key: int) -> None:
    """Round, guarding float32 targets against results that float32 cannot hold."""
    if target.dtype == np.float32 and not _FP32.contains(fmt):
        wide = np.empty(source.shape, dtype=np.float64)
        _round_array_into(source, wide, fmt, mode, key)
        with np.errstate(over="ignore"):
            narrow = wide.astype(np.float32)
        lost = (narrow != wide) & ~np.isnan(wide)
        if lost.any():
            bad = wide[lost].reshape(-1)[0]
            raise ValueError(
                f"rounding float32 input to {fmt} gives {bad!r}, which float32 cannot hold; pass float64 input"
            )
        target[...] = narrow
        return
    _round_array_into(source, target, fmt, mode, key)

