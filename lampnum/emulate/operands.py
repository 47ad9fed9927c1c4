"""Operand handling shared by the elementwise operations: validation, broadcasting, ``out=``.

Operands are float64 or float32 arrays or scalars, taken at their exact values (float32 widens to float64
exactly). Python ints are accepted when float64 holds them exactly. Everything else (booleans, integer,
complex and float16 arrays, :class:`fractions.Fraction`) raises ``TypeError``: convert explicitly, or use
``lampnum.round`` for exact rationals. Operands broadcast as in numpy; the kernels read each one either as a
full C-ordered array of the result shape (step 1) or as a single value (step 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_operand", "broadcast_operands", "result_target", "finish"]

_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def as_operand(x: Any, op: str, name: str) -> np.ndarray:
    """``x`` as a float32/float64 ndarray (0-d for scalars) holding exactly the value(s) given."""
    where = f"lampnum.{op}: operand {name}"
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{where} is a boolean; pass numbers")
    if isinstance(x, np.ndarray) or isinstance(x, np.generic):
        array = np.asarray(x)
    elif isinstance(x, float):
        return np.asarray(x, dtype=np.float64)
    elif isinstance(x, int):
        try:
            value = float(x)
        except OverflowError:
            raise ValueError(f"{where} = {x} is beyond float64's range") from None
        if value != x:
            raise ValueError(f"{where} = {x} is not a float64 value (pass a float, or round it first)")
        return np.asarray(value, dtype=np.float64)
    elif isinstance(x, (list, tuple)):
        array = np.asarray(x)
    else:
        raise TypeError(f"{where} has type {type(x).__name__}; expected a float32/float64 array or a float")
    if array.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{where} has dtype {array.dtype}; the operations take float32 or float64 (convert explicitly: "
            "astype(np.float64) is exact for float16 and for integers below 2^53)"
        )
    return array


def broadcast_operands(op: str, *arrays: np.ndarray) -> tuple[tuple[int, ...], list[tuple[np.ndarray, int]]]:
    """The broadcast shape and, per operand, a flat float64 array with its step (1: full, 0: one value).

    Single values are copied, so that no operand a kernel reads can alias ``out``."""
    try:
        shape = np.broadcast_shapes(*(array.shape for array in arrays))
    except ValueError:
        shapes = ", ".join(str(array.shape) for array in arrays)
        raise ValueError(f"lampnum.{op}: operand shapes {shapes} do not broadcast together") from None
    flat = []
    for array in arrays:
        if array.size == 1:
            flat.append((np.array(array, dtype=np.float64).reshape(1), 0))
        elif array.shape == shape:
            flat.append((np.ascontiguousarray(array, dtype=np.float64).reshape(-1), 1))
        else:
            flat.append(
                (np.ascontiguousarray(np.broadcast_to(array, shape), dtype=np.float64).reshape(-1), 1)
            )
    return shape, flat


def result_target(
    op: str, out: np.ndarray | None, shape: tuple[int, ...], sources: list[np.ndarray]
) -> np.ndarray:
    """The C-contiguous float64 array the kernel writes: ``out`` itself when safe, else a fresh array.

    ``out`` is written in place when it is C-contiguous and every source either is the very same memory
    (element i reads and writes index i) or does not overlap it."""
    if out is None:
        return np.empty(shape, dtype=np.float64)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"lampnum.{op}: out must be a numpy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != np.float64:
        raise ValueError(
            f"lampnum.{op}: out has shape {out.shape} and dtype {out.dtype}; expected {shape} and float64"
        )
    if not out.flags.writeable:
        raise ValueError(f"lampnum.{op}: out is read-only")
    if out.flags.c_contiguous and all(
        not np.shares_memory(out, source)
        or (source.size == out.size and source.ctypes.data == out.ctypes.data)
        for source in sources
    ):
        return out
    return np.empty(shape, dtype=np.float64)


def finish(target: np.ndarray, out: np.ndarray | None) -> Any:
    """Copy into ``out`` if the kernel wrote elsewhere; a 0-d result without ``out`` is a numpy float64."""
    if out is not None:
        if target is not out:
            out[...] = target
        return out
    return target[()] if target.ndim == 0 else target
