"""Rounding-error bounds for the emulated computations of lampnum (LAMP-MATH.md §1).

Every bound is componentwise and *rigorous* unless it says otherwise: |emulated − exact| ≤ bound for the exact result
of the original (unrounded) data, with the float64 evaluation of the bound itself rounded upward. Probabilistic bounds
(``prob=``) state the probability with which they hold and the model it rests on. Derivations: ``papers/bounds/``.

>>> import numpy as np, lampnum as ln
>>> ln.bounds.gamma(100, ln.bounds.unit_roundoff("bf16")) > 0.39
True
"""

from .constants import (
    Rounding,
    gamma,
    gamma_tilde,
    lambda_for,
    overflow_threshold,
    probability,
    rounding,
    theta,
    underflow_bound,
    unit_roundoff,
)
from .elementwise import ELEMENTWISE_OPS, elementwise, rounding_error
from .products import dot, matmul
from .result import BoundOverflowWarning, BoundResult
from .summation import depths, sum

__all__ = [
    "unit_roundoff",
    "underflow_bound",
    "overflow_threshold",
    "rounding",
    "Rounding",
    "gamma",
    "theta",
    "gamma_tilde",
    "probability",
    "lambda_for",
    "rounding_error",
    "elementwise",
    "ELEMENTWISE_OPS",
    "sum",
    "depths",
    "matmul",
    "dot",
    "BoundResult",
    "BoundOverflowWarning",
]
