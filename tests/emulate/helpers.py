"""Shared helpers of the emulation tests: bitwise comparison of float results and the operations under test."""

from __future__ import annotations

import math

import numpy as np

from lampnum.emulate import elementwise as ew
from lampnum.emulate import elementwise_reference as ref
from lampnum.rounding.modes import RoundingMode

MODES = [mode.value for mode in RoundingMode]

#: name -> (operation, exact reference, arity)
OPERATIONS = {
    "add": (ew.add, ref.add_reference, 2),
    "sub": (ew.sub, ref.sub_reference, 2),
    "mul": (ew.mul, ref.mul_reference, 2),
    "div": (ew.div, ref.div_reference, 2),
    "sqrt": (ew.sqrt, ref.sqrt_reference, 1),
    "fma": (ew.fma, ref.fma_reference, 3),
}


def same(x: float, y: float) -> bool:
    """Equal as IEEE data: both NaN, or equal with the same sign (so +0 and -0 differ)."""
    x, y = float(x), float(y)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y and math.copysign(1.0, x) == math.copysign(1.0, y)


def same_arrays(x: np.ndarray, y: np.ndarray) -> bool:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    both_nan = np.isnan(x) & np.isnan(y)
    equal = (x == y) & (np.signbit(x) == np.signbit(y))
    return x.shape == y.shape and bool(np.all(both_nan | equal))
