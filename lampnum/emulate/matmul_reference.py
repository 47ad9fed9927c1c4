"""The executable specification of the emulated matrix product: the MatmulSpec sequence on exact rationals.

Slow and obviously faithful to ARCHITECTURE.md's "Accumulation semantics of matmul"; the Numba kernels of
:mod:`lampnum.emulate.matmul_kernels` must agree with it bit for bit. Every rounding is
:func:`lampnum.rounding.reference.round_reference` applied to an exact :class:`fractions.Fraction`, with the same
variable names as the kernels (``product``, ``block_sum``, ``register``, ``acc``) and the same random-word indices.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..rounding.modes import RoundingMode
from ..rounding.reference import random_bits_reference, round_reference
from .spec import MatmulSpec

__all__ = ["matmul_reference", "dot_reference"]

_RNE = RoundingMode.RNE


Number = Fraction | float  # a Fraction while finite; a float (inf or NaN) once IEEE special values appear


def _exact(value: float) -> Number:
    return Fraction(value) if math.isfinite(value) else value


def _add(x: Number, y: Number) -> Number:
    """Exact sum of finite values; IEEE float64 semantics once inf or NaN is involved (inf - inf = NaN)."""
    if isinstance(x, Fraction) and isinstance(y, Fraction):
        return x + y
    return float(x) + float(y)


def _multiply(x: float, y: float) -> Number:
    """Exact product of finite values; IEEE semantics otherwise (0 · inf = NaN)."""
    if math.isfinite(x) and math.isfinite(y):
        return Fraction(x) * Fraction(y)
    return x * y


def dot_reference(a_row: list[float], b_col: list[float], spec: MatmulSpec, element: int = 0, key_acc: int = 0,
                  key_product: int = 0) -> float:  # fmt: skip
    """One output element ``Σ_k a_k b_k`` under ``spec`` from operands already rounded to ``spec.input``; ``element``
    is the flat output index that selects the stochastic random words. Returns the accumulator value (before output
    rounding)."""
    depth = len(a_row)
    block = spec.block
    steps = (depth + block - 1) // block
    acc: Number = Fraction(0)
    acc_value = 0.0
    for step in range(steps):
        block_sum: Number | None = None
        for k in range(step * block, min(depth, (step + 1) * block)):
            product = _multiply(a_row[k], b_col[k])
            if spec.product is not None:
                bits = random_bits_reference(key_product, element * depth + k)
                product = _exact(round_reference(product, spec.product, spec.mode, bits))
            if block_sum is None:
                block_sum = product
            else:  # sequential block sums, round-to-nearest-even in block_precision
                block_sum = _exact(round_reference(_add(block_sum, product), spec.block_precision, _RNE))
        assert block_sum is not None
        bits = random_bits_reference(key_acc, element * steps + step)
        if spec.via is not None:
            register = round_reference(_add(acc, block_sum), spec.via, _RNE)
            acc_value = round_reference(register, spec.accumulator, spec.mode, bits)
        else:
            acc_value = round_reference(_add(acc, block_sum), spec.accumulator, spec.mode, bits)
        acc = _exact(acc_value)
    return acc_value


def matmul_reference(a: np.ndarray, b: np.ndarray, spec: MatmulSpec, key_acc: int = 0, key_product: int = 0,
                     input_bits: tuple[int, int] | None = None, output_key: int | None = None) -> np.ndarray:  # fmt: skip
    """The 2-D product ``a @ b`` under ``spec`` (input and output rounding included; their stochastic keys, when the
    mode is stochastic, are ``input_bits = (key_a, key_b)`` and ``output_key``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n_rows, depth = a.shape
    n_cols = b.shape[1]
    if spec.input is not None:
        key_a, key_b = input_bits or (0, 0)
        a = np.array([round_reference(float(v), spec.input, spec.mode, random_bits_reference(key_a, i))
                      for i, v in enumerate(a.reshape(-1))]).reshape(a.shape)  # fmt: skip
        b = np.array([round_reference(float(v), spec.input, spec.mode, random_bits_reference(key_b, i))
                      for i, v in enumerate(b.reshape(-1))]).reshape(b.shape)  # fmt: skip
    out = np.empty((n_rows, n_cols))
    for row in range(n_rows):
        for col in range(n_cols):
            element = row * n_cols + col
            value = dot_reference(list(a[row]), list(b[:, col]), spec, element, key_acc, key_product) if depth \
                else 0.0  # fmt: skip
            if spec.output is not None:
                bits = random_bits_reference(output_key or 0, element)
                value = round_reference(value, spec.output, spec.mode, bits)
            out[row, col] = value
    return out

