"""Regressions for the double-rounding bugs that exact emulation avoids: each input below is one where the
naive emulation (compute in a wider float, then round to the format) is wrong, and lampnum's single rounding
is right.

The expected values come from the exact reference (Fractions and ``round_reference``), and are also written
out."""

from __future__ import annotations

import numpy as np

import lampnum as ln
from lampnum.emulate.elementwise import add, fma, mul
from lampnum.emulate.elementwise_reference import add_reference, fma_reference, mul_reference

# float32 values with a·b = 2^-11 + 2^-57 exactly, since 2^46 + 1 = 8384513 · 8392705
A32, B32 = 8384513 * 2.0**-28, 8392705 * 2.0**-29


def test_inputs_are_what_they_claim() -> None:
    assert np.float32(A32) == A32 and np.float32(B32) == B32
    assert 8384513 * 8392705 == 2**46 + 1


def test_fma_is_not_float64_fma_then_rounding() -> None:
    """Bug pinned: fma(a, b, c) emulated as round(fl64(a·b + c)). Here a·b + c = 1 + 2^-11 + 2^-57 lies
    just above an fp16 midpoint; float64 rounds it onto the midpoint (1 + 2^-11) and the tie then goes to
    even, 1."""
    naive = ln.round(A32 * B32 + 1.0, "fp16")
    assert naive == 1.0
    assert fma(A32, B32, 1.0, "fp16") == fma_reference(A32, B32, 1.0, "fp16") == 1.0 + 2.0**-10


def test_fma_with_fp16_operands_in_a_directed_mode() -> None:
    """Even fp16 operands (whose product float64 holds exactly) break the naive fma in directed modes:
    64 − 2^-48 is a float64 tie that rounds to 64, which is then an fp16 number, so rtz keeps 64."""
    a, b, c = -(2.0**-24), 2.0**-24, 64.0
    assert ln.round(a * b + c, "fp16", "rtz") == 64.0
    assert fma(a, b, c, "fp16", "rtz") == fma_reference(a, b, c, "fp16", "rtz") == 64.0 - 2.0**-5


def test_add_via_float32_double_rounds_in_rne() -> None:
    """Bug pinned: bf16 addition emulated in float32 then rounded. 1 + (2^-8 + 2^-31) rounds in float32 onto
    the bf16 midpoint 1 + 2^-8, where the tie goes to even, 1; the exact sum is above the midpoint."""
    a, b = np.float32(1.0), np.float32(2.0**-8 + 2.0**-31)
    assert ln.round(np.float32(a + b), "bf16") == 1.0
    assert add(a, b, "bf16") == add_reference(float(a), float(b), "bf16") == 1.0 + 2.0**-7


def test_add_via_float32_double_rounds_in_rna() -> None:
    """The same bug from below the midpoint: 1 + 2^-8 − 2^-32 rounds in float32 onto 1 + 2^-8, and ties-away
    then goes up; the exact sum is below the midpoint, so rna gives 1."""
    a, b = np.float32(1.0), np.float32(2.0**-8 - 2.0**-32)
    assert float(b) == 2.0**-8 - 2.0**-32
    assert ln.round(np.float32(a + b), "bf16", "rna") == 1.0 + 2.0**-7
    assert add(a, b, "bf16", "rna") == add_reference(float(a), float(b), "bf16", "rna") == 1.0


def test_mul_via_float32_double_rounds() -> None:
    """(1 + 2^-23)(1 + 2^-8 − 2^-23) = 1 + 2^-8 + 2^-31 − 2^-46: float32 rounds it to the bf16 midpoint 1 +
    2^-8."""
    a, b = np.float32(1.0 + 2.0**-23), np.float32(1.0 + 2.0**-8 - 2.0**-23)
    assert ln.round(np.float32(a * b), "bf16") == 1.0
    assert mul(a, b, "bf16") == mul_reference(float(a), float(b), "bf16") == 1.0 + 2.0**-7
