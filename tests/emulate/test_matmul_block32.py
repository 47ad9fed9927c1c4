"""The float32-lane block-FMA kernel (:mod:`lampnum.emulate.matmul_block32`): its certified update against exact
rationals (every certified update is the exact rounding of every sum its bound allows), and whole products against
the executable specification on operands built to defeat the certificate (integer data on midpoints, cancellation,
huge dynamic range, tiny partial sums, overflow), with ragged tiles, batches and odd block sizes."""

from __future__ import annotations

import importlib
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.emulate.matmul import lowered
from lampnum.emulate.matmul_block32 import (
    block32_eligible,
    block32_matmul,
    certified_update32_reference,
    chain_error_factor,
)
from lampnum.emulate.matmul_reference import matmul_reference
from lampnum.emulate.operand_stats import operand_stats
from lampnum.rounding.reference import round_reference

from ..rounding.test_exhaustive import assert_same


def _block32(a: np.ndarray, b: np.ndarray, fmt: ln.Format, block: int) -> tuple[np.ndarray, int]:
    """The kernel itself on (batch, M, K) @ (batch, K, N) float32 operands (not through matmul's dispatch)."""
    assert block32_eligible(operand_stats(a), operand_stats(b), block, fmt)
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]))
    index = np.arange(a.shape[0])
    redone = block32_matmul(a, b, index, index, out, block, fmt, lowered(fmt))
    return out, redone


@st.composite
def eligible_accumulators(draw: st.DrawFn) -> ln.Format:
    choice = draw(st.sampled_from(["bf16", "fp16", "e5m2", "e4m3", "custom"]))
    if choice != "custom":
        return ln.format(choice)
    return ln.Format(p=draw(st.integers(2, 22)), emax=draw(st.sampled_from([4, 15, 127])),
                     subnormals=draw(st.booleans()), overflow=draw(st.sampled_from(["inf", "saturate"])))  # fmt: skip


@st.composite
def hard_operands(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Float32 operands (finite, normal) of up to two batches, shapes across tile edges, data meant to put block sums
    near rounding boundaries of the accumulator or outside its normal range."""
    batches = draw(st.integers(1, 2))
    m, k, n = draw(st.integers(1, 14)), draw(st.integers(1, 70)), draw(st.sampled_from([1, 5, 127, 130]))
    kind = draw(st.sampled_from(["integers", "cancel", "range", "tiny", "huge", "normal"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "integers":  # block sums on representable values and midpoints
        a, b = rng.integers(-4, 5, (batches, m, k)), rng.integers(-4, 5, (batches, k, n))
    elif kind == "cancel":  # each block's products cancel to a tiny remainder
        a = rng.standard_normal((batches, m, k))
        a[..., 1::2] = -a[..., 0::2][..., : k // 2] * (1 + 2.0**-20)
        b = np.ones((batches, k, n)) + rng.standard_normal((batches, k, n)) * 2.0**-12
    elif kind == "range":  # a huge dynamic range within a row
        a = rng.standard_normal((batches, m, k)) * np.exp2(rng.integers(-40, 40, (batches, m, k)))
        b = rng.standard_normal((batches, k, n)) * np.exp2(rng.integers(-20, 20, (batches, k, n)))
    elif kind == "tiny":  # partial sums in the accumulator's subnormal range
        a, b = rng.standard_normal((batches, m, k)) * 2.0**-9, rng.standard_normal((batches, k, n)) * 2.0**-9
    elif kind == "huge":  # overflow of the narrow accumulators
        a, b = rng.standard_normal((batches, m, k)) * 400.0, rng.standard_normal((batches, k, n)) * 400.0
    else:
        a, b = rng.standard_normal((batches, m, k)), rng.standard_normal((batches, k, n))
    return a.astype(np.float32), b.astype(np.float32)


@settings(max_examples=80, deadline=None)
@given(eligible_accumulators(), st.sampled_from([2, 3, 8, 32, 33, 64]), hard_operands())
@example(ln.format("fp16"), 2, (np.array([[[4.401742e-11]]], np.float32), np.array([[[-8.0676e-4]]], np.float32)))
def test_kernel_matches_the_reference(fmt: ln.Format, block: int, ab: tuple[np.ndarray, np.ndarray]) -> None:
    """The example: a negative sum far below fp16's subnormal range rounds to -0 (a redone update must keep the
    sign)."""
    a, b = ab
    spec = ln.MatmulSpec(accumulator=fmt, block=block)
    if not block32_eligible(operand_stats(a), operand_stats(b), block, fmt):
        return  # e.g. float32 overflow of a block sum: matmul takes another kernel
    out, _ = _block32(a, b, fmt, block)
    for t in range(a.shape[0]):
        assert_same(out[t], matmul_reference(a[t], b[t], spec), a[t], repr(spec))


def test_uncertified_updates_are_redone_and_still_exact() -> None:
    """Integer data: many block sums are bf16 midpoints or sit on boundaries, so updates are redone; the result is the
    specification's, through matmul too, at several tiles, ragged edges and a batch."""
    rng = np.random.default_rng(3)
    a = rng.integers(-3, 4, (2, 13, 100)).astype(np.float32)
    b = rng.integers(-3, 4, (2, 100, 140)).astype(np.float32)
    fmt = ln.format("bf16")
    spec = ln.MatmulSpec(accumulator=fmt, block=32)
    out, redone = _block32(a, b, fmt, 32)
    assert redone > 0
    for t in range(2):
        expected = matmul_reference(a[t], b[t], spec)
        assert_same(out[t], expected, a[t], "kernel")
        assert_same(ln.matmul(a[t], b[t], spec), expected, a[t], "matmul")


def test_typical_data_is_mostly_certified() -> None:
    """The point of the bound: on standard normal data at a GPT-2-like depth few updates are redone."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 64, 768)).astype(np.float32)
    b = rng.standard_normal((1, 768, 256)).astype(np.float32)
    _, redone = _block32(a, b, ln.format("bf16"), 32)
    updates = 64 * 256 * 768 // 32
    assert redone < 0.02 * updates


def test_eligibility() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 8)).astype(np.float32)
    b = rng.standard_normal((8, 3)).astype(np.float32)
    stats_a, stats_b = operand_stats(a), operand_stats(b)
    assert block32_eligible(stats_a, stats_b, 32, ln.format("bf16"))
    assert not block32_eligible(stats_a, stats_b, 1, ln.format("bf16"))  # strict accumulation: another kernel
    assert not block32_eligible(stats_a, stats_b, 32, ln.format("fp32"))  # p = 24 > 22
    assert not block32_eligible(stats_a, stats_b, 32, ln.Format(p=8, emax=200))  # beyond float32's exponent range
    subnormal = a.copy()
    subnormal[0, 0] = np.float32(2.0**-140)
    assert not block32_eligible(operand_stats(subnormal), stats_b, 32, ln.format("bf16"))
    infinite = a.copy()
    infinite[1, 1] = np.inf
    assert not block32_eligible(operand_stats(infinite), stats_b, 32, ln.format("bf16"))
    big = (a * np.float32(2.0**62)).astype(np.float32)
    assert not block32_eligible(operand_stats(big), operand_stats(b * np.float32(2.0**62)), 32, ln.format("bf16"))


@settings(max_examples=500, deadline=None)
@given(st.floats(-300, 300, width=32), st.floats(-300, 300, width=32), st.floats(0, 30), st.floats(0, 30),
       st.sampled_from([2, 32, 300]), st.sampled_from(["bf16", "fp16", "e4m3", "e5m2"]), st.floats(-1, 1))  # fmt: skip
def test_a_certified_update_is_the_exact_rounding_of_every_sum_in_the_bound(
    s: float, block_sum: float, norm_a: float, norm_b: float, block: int, name: str, where: float
) -> None:
    """For any block sum t the bound allows (|t - T| <= c·norm_a·norm_b + (block + 1)·2^-126: its two ends and a point
    between), a certified update equals RNE_p(s + t) computed on rationals
    (:func:`lampnum.rounding.reference.round_reference`)."""
    fmt = ln.format(name)
    s = float(round_reference(Fraction(s), fmt, "rne"))  # the accumulator holds a value of its format
    value, good = certified_update32_reference(s, block_sum, norm_a, norm_b, block, fmt.p, fmt.emin, float(fmt.max))
    if not good:
        return
    e = Fraction(chain_error_factor(block)) * Fraction(norm_a) * Fraction(norm_b) + (block + 1) * Fraction(2) ** -126
    for offset in (-e, e, e * Fraction(where)):
        exact = Fraction(s) + Fraction(block_sum) + offset
        assert value == float(round_reference(exact, fmt, "rne")), (s, block_sum, offset)


def test_the_certificate_is_tight_enough_to_certify_most_updates() -> None:
    """The twin certifies ordinary updates and refuses the boundary cases (a bound that refused everything would pass
    the test above)."""
    rng = np.random.default_rng(5)
    bf16 = ln.format("bf16")
    certified = 0
    for _ in range(300):
        s = float(round_reference(Fraction(float(rng.standard_normal() * 20)), bf16, "rne"))
        block_sum = float(np.float32(rng.standard_normal() * 5))
        certified += certified_update32_reference(s, block_sum, 100.0, 5.0, 32, 8, bf16.emin, float(bf16.max))[1]
    assert certified > 270


def test_certified_update_refuses_boundaries_and_the_subnormal_range() -> None:
    bf16 = ln.format("bf16")
    args = (8, bf16.emin, float(bf16.max))
    # 1 + 2^-8 is a bf16 midpoint: a block sum that close cannot be certified with any nonzero bound
    assert not certified_update32_reference(1.0, 2.0**-8, 1.0, 1.0, 32, *args)[1]
    assert certified_update32_reference(1.0, 2.0**-6, 1.0, 1.0, 32, *args) == (1.015625, True)
    # just above a power of two, the half gap below it is the smaller one
    assert certified_update32_reference(1.0, 2.0**-11, 1.0, 1.0, 32, *args) == (1.0, True)
    assert not certified_update32_reference(1.0, -2.0**-9, 1.0, 1.0, 32, *args)[1]  # the midpoint 1 - 2^-9
    # a sum below the normal range, a zero sum, and an overflow
    assert not certified_update32_reference(0.0, 2.0**-127, 0.0, 0.0, 32, *args)[1]
    assert not certified_update32_reference(1.0, -1.0, 0.0, 0.0, 32, *args)[1]
    assert not certified_update32_reference(float(bf16.max), float(bf16.max), 0.0, 0.0, 32, *args)[1]


def test_the_kernel_update_is_its_twin() -> None:
    """The vectorised update (through a one-block product) and its pure-Python twin agree on every lane."""
    from lampnum.emulate.matmul_block32 import PANEL, _certified_update, scaled_bounds

    rng = np.random.default_rng(6)
    fmt = ln.format("fp16")
    olds = np.array([float(round_reference(Fraction(float(x)), fmt, "rne")) for x in rng.standard_normal(64) * 30])
    block_sums = (rng.standard_normal(64) * 2.0 ** rng.integers(-12, 4, 64)).astype(np.float32)
    norms_a, norms_b = rng.uniform(0, 20, 64), rng.uniform(0, 20, 64)
    scaled, absolute = scaled_bounds(norms_b, 32)
    assert PANEL >= 64
    splitter = np.float32(2 ** (24 - fmt.p) + 1)
    for i in range(64):
        kernel = _certified_update(np.float32(olds[i]), block_sums[i], _round_up(norms_a[i]), scaled[i], absolute,
                                   splitter, np.uint32(fmt.p << 23), np.float32(max(fmt.tiny, 2.0 ** (fmt.p - 125))),
                                   np.float32(fmt.max))  # fmt: skip
        twin = certified_update32_reference(olds[i], float(block_sums[i]), norms_a[i], norms_b[i], 32, fmt.p,
                                            fmt.emin, float(fmt.max))  # fmt: skip
        assert (bool(kernel[1]), float(kernel[0]) if kernel[1] else None) == (twin[1], twin[0] if twin[1] else None)


def _round_up(x: float) -> np.float32:
    return np.nextafter(np.float32(x), np.float32(np.inf))


@pytest.mark.parametrize("shape", [((3, 40, 64), (3, 64, 300)), ((1, 7, 5), (1, 5, 129))])
def test_matmul_takes_the_kernel_and_agrees_with_the_float64_block_kernel(
    shape: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through :func:`lampnum.matmul` (batched, broadcasting a 2-D right operand) against the rne block kernel on
    float64 lanes, which computes the spec's block sums exactly."""
    from lampnum.emulate.matmul_split import block_rne_kernel

    matmul_module = importlib.import_module("lampnum.emulate.matmul")  # the package exports the function as matmul

    calls = []

    def counted(*args: object) -> int:
        calls.append(1)
        return block32_matmul(*args)

    monkeypatch.setattr(matmul_module, "block32_matmul", counted)
    rng = np.random.default_rng(8)
    a = rng.standard_normal(shape[0]).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32)
    fmt = ln.format("fp16")
    result = ln.matmul(a, b[0], accumulator=fmt, block=32)
    assert calls, "matmul did not take the float32-lane kernel"
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]))
    index = np.arange(a.shape[0])
    block_rne_kernel(a.astype(np.float64), np.repeat(b[:1], a.shape[0], axis=0).astype(np.float64), index, index,
                     out, 32, fmt.p, float(fmt.tiny), float(fmt.max), lowered(fmt))  # fmt: skip
    assert np.array_equal(result, out)
