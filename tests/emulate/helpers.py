"""Shared helpers of the emulation tests: bitwise comparison of float results and the operations under
test."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import lampnum as ln
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


_DEFAULT_EMIN_OFFSET = {"ieee": 1, "fn": 2, "finite": 2, "fnuz": 0}
_OVERFLOWS = {"ieee": ["inf", "saturate", "nan"], "fn": ["nan", "saturate"], "fnuz": ["nan", "saturate"],
              "finite": ["saturate"]}  # fmt: skip


@st.composite
def formats(draw: st.DrawFn) -> ln.Format:
    """Random valid formats: p 1..53, emax 1..1023, emin default or anywhere in [max(-1022, -emax-30), emax],
    with and without subnormals, every special-value encoding and overflow policy. (Unlike the rounding tests'
    strategy, it never builds an invalid format: a default emin below -1022, as fnuz with emax 1023 has, is
    clamped.)"""
    specials = draw(st.sampled_from(list(_OVERFLOWS)))
    p = draw(st.integers(2 if specials == "fn" else 1, 53))
    emax = draw(st.integers(1, 1023))
    emin = draw(st.one_of(st.none(), st.integers(max(-1022, -emax - 30), emax)))
    if emin is None and _DEFAULT_EMIN_OFFSET[specials] - emax < -1022:
        emin = -1022
    return ln.Format(p=p, emax=emax, emin=emin, subnormals=draw(st.booleans()), specials=specials,
                     overflow=draw(st.sampled_from(_OVERFLOWS[specials])))  # fmt: skip
