"""Exact references for the bound tests: the emulation model executed on rationals, and exact sums and products.

``emulate_dot`` follows the accumulation semantics of ``lampnum.emulate.spec`` step by step with
:func:`lampnum.rounding.round_reference` on :class:`fractions.Fraction` values: an executable statement of the model the
bounds claim to follow, independent of both the bound code and the Numba emulation. Slow: small sizes only.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

import lampnum as ln
from lampnum.rounding import round_reference


def _round(x: Fraction, fmt: ln.Format | None, mode: str, rng: np.random.Generator | None) -> Fraction | float:
    if fmt is None:
        return x
    bits = int(rng.integers(0, 2**64, dtype=np.uint64)) if rng is not None else 0
    value = round_reference(x, fmt, mode, bits)
    return Fraction(value) if math.isfinite(value) else value


def emulate_dot(a: np.ndarray, b: np.ndarray, spec: ln.MatmulSpec, rng: np.random.Generator | None = None) -> float:
    """One entry of the emulated product per the MatmulSpec semantics; a float (inf/NaN after an overflow)."""
    mode = spec.mode.value
    try:
        products = []
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            xh = _round(Fraction(x), spec.input, mode, rng)
            yh = _round(Fraction(y), spec.input, mode, rng)
            products.append(_round(_exact(xh) * _exact(yh), spec.product, mode, rng))
        s = Fraction(0)
        if spec.block == 1:
            groups = [[p] for p in products]
        else:
            groups = [products[i : i + spec.block] for i in range(0, len(products), spec.block)]
        for group in groups:
            if spec.block == 1:
                t = _exact(group[0])
            else:  # the first product enters the block sum exactly, each later partial sum is rounded
                t = _exact(group[0])
                for p in group[1:]:
                    t = _exact(_round(t + _exact(p), spec.block_precision, "rne", None))
            x = s + t
            if spec.via is not None:
                x = _exact(_round(x, spec.via, "rne", None))
            s = _exact(_round(x, spec.accumulator, mode, rng))
        return float(_round(s, spec.output, mode, rng))
    except _Overflow as stop:
        return stop.value


class _Overflow(Exception):
    def __init__(self, value: float) -> None:
        self.value = value


def _exact(x: Fraction | float) -> Fraction:
    if isinstance(x, float):
        raise _Overflow(x)
    return x


def exact_dot(a: np.ndarray, b: np.ndarray) -> Fraction:
    """Σ a_k b_k exactly."""
    return sum((Fraction(x) * Fraction(y) for x, y in zip(a.tolist(), b.tolist(), strict=True)), Fraction(0))


def exact_matmul(A: np.ndarray, B: np.ndarray) -> list[list[Fraction]]:
    return [[exact_dot(A[i], B[:, j]) for j in range(B.shape[1])] for i in range(A.shape[0])]


def error(computed: float, exact: Fraction) -> Fraction | float:
    """|computed − exact| as a Fraction, or inf when ``computed`` is not finite."""
    if not math.isfinite(computed):
        return math.inf
    return abs(Fraction(computed) - exact)
