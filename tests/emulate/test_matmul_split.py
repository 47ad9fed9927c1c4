"""The certified fast paths of the emulated matmul: Veltkamp's rounding and the fp32-register bit rounding against
exact rationals, the operand statistics against a pure-Python twin, the range certificates against an exact
simulation of the partial sums, and whole products (strict, register and block FMA) against the executable
specification, on operands built to hit every fallback (midpoints, the subnormal range, overflow, cancellation)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.emulate.matmul import lowered
from lampnum.emulate.matmul_blocked import blocked_matmul, certified_update_reference
from lampnum.emulate.matmul_reference import matmul_reference
from lampnum.emulate.matmul_split import (
    block_rne_kernel,
    range_certificate,
    register_bits,
    register_bits_reference,
    register_certificate,
    strict_rne_kernel,
    veltkamp_round,
    veltkamp_round_reference,
)
from lampnum.emulate.operand_stats import (
    max_abs_col_sum,
    max_abs_row_sum,
    operand_stats,
    operand_stats_reference,
)
from lampnum.rounding.reference import floor_log2, round_reference

from ..rounding.test_exhaustive import assert_same
from .test_matmul_fast import _general, accumulators, stress_operands


def _rne(x: Fraction | float, precision: int) -> float:
    """Round-to-nearest-even to ``precision`` significant bits with an unbounded exponent, on rationals."""
    x = Fraction(x)
    if x == 0:
        return 0.0
    quantum = Fraction(2) ** (floor_log2(abs(x)) - precision + 1)
    scaled = abs(x) / quantum
    kept = math.floor(scaled)
    remainder = scaled - kept
    if remainder > Fraction(1, 2) or (remainder == Fraction(1, 2) and kept % 2 == 1):
        kept += 1
    return math.copysign(float(kept * quantum), x)


@settings(max_examples=400)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300), st.integers(2, 51))
@example(257.0, 8)  # a bf16 midpoint
@example(-0.0, 8)
@example(2.0**-1000 * 3, 2)
def test_veltkamp_is_the_nearest_rounding_off_midpoints(t: float, precision: int) -> None:
    if abs(t) * 2.0 ** (54 - precision) >= 2.0**1020:  # the documented domain: C·t does not overflow
        return
    twin, midpoint = veltkamp_round_reference(t, precision)
    kernel = veltkamp_round(t, float(2 ** (53 - precision) + 1))
    assert np.float64(kernel).view(np.uint64) == np.float64(twin).view(np.uint64)
    exact = _rne(t, precision)
    if midpoint:  # either neighbour, and t is halfway
        assert abs(Fraction(twin) - Fraction(t)) == abs(Fraction(exact) - Fraction(t))
    else:
        assert twin == exact and math.copysign(1, twin) == math.copysign(1, t)


@settings(max_examples=400)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False), st.integers(2, 23))
@example(257.0, 8)
@example(float(np.finfo(np.float32).max), 8)  # rounds up past fp32's max: the encoding of inf
def test_register_bits_is_rne_on_the_float32_encoding(register: float, precision: int) -> None:
    if register == 0 or abs(register) < float(np.finfo(np.float32).tiny):
        return
    kernel = float(register_bits(np.float32(register), np.uint32(1 << (24 - precision)),
                                 np.uint32(0xFFFFFFFF ^ ((1 << (24 - precision)) - 1)),
                                 np.uint32((1 << (23 - precision)) - 1)))  # fmt: skip
    twin = register_bits_reference(register, precision)
    assert kernel == twin or (math.isinf(kernel) and math.isinf(twin))
    exact = _rne(register, precision)
    assert twin == (exact if abs(exact) <= float(np.finfo(np.float32).max) else math.copysign(math.inf, register))


_ODD_VALUES = st.floats(allow_nan=True, allow_infinity=True) | st.floats(width=32) | st.sampled_from(
    [0.0, -0.0, 5e-324, -2.0**-1060 * 3, 1.0, 2.0**-126, 3.0 * 2.0**-149])  # fmt: skip


@settings(max_examples=200)
@given(st.lists(_ODD_VALUES, min_size=0, max_size=40))
def test_operand_stats_matches_its_twin(values: list[float]) -> None:
    assert operand_stats(np.array(values, dtype=np.float64)) == operand_stats_reference(values)


def test_abs_sums_match_exact_sums() -> None:
    """Within the margin the certificates allow for (relative K·2^-53), against math.fsum."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 7, 11))
    rows = max(math.fsum(abs(v) for v in row) for row in a.reshape(-1, 11))
    cols = max(math.fsum(abs(v) for v in a[t, :, j]) for t in range(3) for j in range(11))
    assert math.isclose(max_abs_row_sum(a), rows, rel_tol=11 * 2.0**-53)
    assert math.isclose(max_abs_col_sum(a), cols, rel_tol=7 * 2.0**-53)


def _partial_sums_in_range(a: np.ndarray, b: np.ndarray, spec: ln.MatmulSpec) -> bool:
    """Exact simulation of every strict partial sum (rationals): none in the subnormal range or above max."""
    fmt = spec.accumulator
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            s = Fraction(0)
            for k in range(a.shape[1]):
                s = Fraction(round_reference(s + Fraction(float(a[i, k])) * Fraction(float(b[k, j])), fmt, "rne"))
                if s != 0 and not (fmt.tiny <= abs(s) <= fmt.max):
                    return False
    return True


@settings(max_examples=60, deadline=None)
@given(accumulators(high=24), stress_operands(max_rows=4))
def test_a_certified_range_is_never_left(fmt: ln.Format, ab: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = (x.astype(np.float64) for x in ab)
    stats = operand_stats(a), operand_stats(b)
    certificate = range_certificate(*stats, max_abs_row_sum(a[None]), max_abs_col_sum(b[None]), a.shape[1], fmt)
    if certificate.certified:
        assert _partial_sums_in_range(a, b, ln.MatmulSpec(accumulator=fmt))


def _strict(a: np.ndarray, b: np.ndarray, fmt: ln.Format, certified: bool) -> tuple[np.ndarray, int]:
    out = np.empty((1, a.shape[0], b.shape[1]))
    index = np.zeros(1, dtype=np.int64)
    redone = strict_rne_kernel(a[None].astype(np.float64), b[None].astype(np.float64), index, index, out, fmt.p,
                               fmt.tiny, fmt.max, lowered(fmt), certified, 1.0, b.shape[1])  # fmt: skip
    return out[0], redone


@settings(max_examples=80, deadline=None)
@given(accumulators(high=51), stress_operands())
@example(ln.format("bf16"), (np.full((3, 40), 1.0, np.float32), np.full((40, 2), 1.0, np.float32)))
def test_strict_kernel_both_loops_match_the_reference(fmt: ln.Format, ab: tuple[np.ndarray, np.ndarray]) -> None:
    """The checked loop always, and the optimistic one wherever the certificate holds, equal the specification."""
    a, b = ab
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return
    expected = matmul_reference(a, b, ln.MatmulSpec(accumulator=fmt))
    checked, _ = _strict(a, b, fmt, False)
    assert_same(checked, expected, a, f"checked {fmt}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    stats = operand_stats(a64), operand_stats(b64)
    if range_certificate(*stats, max_abs_row_sum(a64[None]), max_abs_col_sum(b64[None]), a.shape[1], fmt).certified:
        optimistic, _ = _strict(a, b, fmt, True)
        assert_same(optimistic, expected, a, f"optimistic {fmt}")


def test_a_midpoint_sends_the_tile_to_the_checked_loop() -> None:
    """Integer data hits bf16 midpoints (257 = 256 + 1): the optimistic tile is redone, and the result is exact."""
    a = np.ones((3, 300), np.float32)
    b = np.ones((300, 4), np.float32)
    result, redone = _strict(a, b, ln.format("bf16"), True)
    assert redone == 1
    assert (result == 256.0).all()
    generic, _ = _strict(np.full((2, 5), 0.3, np.float32), np.full((5, 2), 0.7, np.float32), ln.format("bf16"), True)
    assert generic.shape == (2, 2)


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 23), st.sampled_from([127, 15, 4]), stress_operands())
def test_register_certificate_is_sound(p: int, emax: int, ab: tuple[np.ndarray, np.ndarray]) -> None:
    """Where the register certificate holds, the test-free register kernel (taken by ``ln.matmul``) equals the
    specification; elsewhere the checking kernel runs, and must too."""
    a, b = ab
    spec = ln.MatmulSpec(accumulator=ln.Format(p=p, emax=emax), product="fp32", via="fp32")
    assert_same(ln.matmul(a, b, spec), matmul_reference(a, b, spec), a, repr(spec))


def test_register_certificate_holds_on_typical_data_and_fails_on_extremes() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 64)), rng.standard_normal((64, 5))
    paper = ln.Format(p=8, emax=127)

    def certify(x: np.ndarray, y: np.ndarray) -> bool:
        x32, y32 = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
        return register_certificate(operand_stats(x32), operand_stats(y32), max_abs_row_sum(x32[None]),
                                    max_abs_col_sum(y32[None]), x.shape[1], paper)  # fmt: skip

    assert certify(a, b)
    assert not certify(a * 1e-30, b * 1e-20)  # products below fp32's normal range
    assert not certify(a * 1e19, b * 1e19)  # registers overflow
    assert not certify(np.where(a > 0, np.inf, a), b)


@settings(max_examples=100, deadline=None)
@given(accumulators(high=51), st.sampled_from(["rne", "rna", "rtz", "rup", "rdn", "rto"]), st.sampled_from([2, 4, 32]),
       stress_operands())  # fmt: skip
def test_block_fma_path_matches_the_reference(fmt: ln.Format, mode: str, block: int,
                                              ab: tuple[np.ndarray, np.ndarray]) -> None:  # fmt: skip
    a, b = ab
    spec = ln.MatmulSpec(accumulator=fmt, block=block, mode=mode)
    assert_same(ln.matmul(a, b, spec), matmul_reference(a, b, spec), a, repr(spec))


def test_block_fma_recomputes_uncertified_updates_exactly() -> None:
    """Integer data puts block sums on bf16 midpoints and representable values: updates are recomputed, and the
    result still equals the general kernel's, in float32 and float64 BLAS."""
    rng = np.random.default_rng(5)
    a = rng.integers(-3, 4, (2, 9, 100)).astype(np.float64)
    b = rng.integers(-3, 4, (2, 100, 70)).astype(np.float64)
    spec = ln.MatmulSpec(accumulator="bf16", block=32)
    index = np.arange(2)
    for float32_blas in (True, False):
        out = np.empty((2, 9, 70))
        recomputed = blocked_matmul(a, b, index, index, out, 32, spec.accumulator, lowered(spec.accumulator), 0,
                                    float32_blas)  # fmt: skip
        assert recomputed > 0
        for t in range(2):
            assert_same(out[t], _general(a[t], b[t], spec), a[t], f"float32 BLAS {float32_blas}")
    # in rne the FMA block kernel runs instead: the same midpoints are flagged in its checked update
    out = np.empty((2, 9, 70))
    block_rne_kernel(a, b, index, index, out, 32, 8, float(spec.accumulator.tiny), float(spec.accumulator.max),
                     lowered(spec.accumulator))  # fmt: skip
    for t in range(2):
        assert_same(out[t], _general(a[t], b[t], spec), a[t], "block kernel")
        assert_same(ln.matmul(a[t], b[t], spec), _general(a[t], b[t], spec), a[t], "matmul")


@settings(max_examples=60, deadline=None)
@given(accumulators(high=51), st.sampled_from([2, 3, 32, 300]), stress_operands())
def test_block_kernel_matches_the_reference(fmt: ln.Format, block: int, ab: tuple[np.ndarray, np.ndarray]) -> None:
    """The rne block-FMA kernel (FMA block sums, one checked Veltkamp update per block) against the executable
    specification on stress operands: cancellation, subnormal partial sums, overflow, signed zeros."""
    a, b = ab
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return
    spec = ln.MatmulSpec(accumulator=fmt, block=block)
    out = np.empty((1, a.shape[0], b.shape[1]))
    index = np.zeros(1, dtype=np.int64)
    block_rne_kernel(a[None].astype(np.float64), b[None].astype(np.float64), index, index, out, block, fmt.p,
                     float(fmt.tiny), float(fmt.max), lowered(fmt))  # fmt: skip
    assert_same(out[0], matmul_reference(a, b, spec), a, repr(spec))


def test_certified_enclosure_contains_the_sum() -> None:
    low, high = certified_update_reference(1.0, 2.0**-30, 1e-12)
    assert low < 1.0 + 2.0**-30 < high


def test_fast_paths_agree_with_the_general_kernel_at_scale() -> None:
    """Many tiles, ragged edges and a batch: the new kernels against the general kernel (itself tested against
    the specification above and in test_matmul_fast)."""
    rng = np.random.default_rng(11)
    a = (rng.standard_normal((21, 260)) * np.exp2(rng.integers(-4, 4, (21, 260)))).astype(np.float32)
    b = rng.standard_normal((260, 300)).astype(np.float32)
    for spec in (ln.MatmulSpec(accumulator="bf16"), ln.MatmulSpec(accumulator="fp16"),
                 ln.MatmulSpec(accumulator="bf16", block=32), ln.MatmulSpec(accumulator="fp16", block=8, mode="rtz"),
                 ln.MatmulSpec(accumulator=ln.Format(p=8, emax=127), product="fp32", via="fp32")):  # fmt: skip
        assert_same(ln.matmul(a, b, spec), _general(a, b, spec), a, repr(spec))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 23), st.integers(0, 2**32 - 1), st.sampled_from(["register", "bf16", "fp16 output"]))
def test_float32_result_is_the_float64_result_rounded(m_bits: int, seed: int, kind: str) -> None:
    """``dtype=np.float32``: the fp32-register path writes float32 itself, the others convert; either way the
    float64 result rounded to nearest even (exact for these accumulators), checked against the executable
    specification."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2, 5, 9)).astype(np.float32)
    b = rng.normal(size=(2, 9, 4)).astype(np.float32)
    fp32 = ln.format("fp32")
    spec = {
        "register": ln.MatmulSpec(product=fp32, accumulator=ln.Format(p=m_bits + 1, emax=127), via=fp32),
        "bf16": ln.MatmulSpec(accumulator="bf16"),
        "fp16 output": ln.MatmulSpec(accumulator="fp32", output="fp16"),
    }[kind]
    got = ln.matmul(a, b, spec, dtype=np.float32)
    assert got.dtype == np.float32
    want = np.stack([matmul_reference(a[t].astype(np.float64), b[t].astype(np.float64), spec) for t in range(2)])
    np.testing.assert_array_equal(got, want.astype(np.float32))
    np.testing.assert_array_equal(got.astype(np.float64), want)  # these accumulators fit float32: exact


def test_matmul_dtype_must_be_float32_or_float64() -> None:
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        ln.matmul(np.ones((2, 2)), np.ones((2, 2)), accumulator="bf16", dtype=np.float16)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 20),
    st.sampled_from([1, 7, 255, 256, 257, 300]),
    st.integers(-25, 310),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["register", "bf16", "fp16", "bf16 block=4"]),
)
def test_banded_product_is_the_product_with_zeros_above_the_band(
    n_rows: int, n_cols: int, lower: int, seed: int, kind: str
) -> None:
    """``lower=``: entries with ``j - i <= lower`` are those of the executable specification, the rest exactly 0;
    column counts around the kernel's 256-column tiles and row counts around its 8-row tiles, bands that cut
    tiles, miss them, or cover everything."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2, n_rows, 3)).astype(np.float32)
    b = rng.normal(size=(1, 3, n_cols)).astype(np.float32)
    fp32 = ln.format("fp32")
    spec = {
        "register": ln.MatmulSpec(product=fp32, accumulator=ln.Format(p=8, emax=127), via=fp32),
        "bf16": ln.MatmulSpec(accumulator="bf16"),  # the strict kernel's band (certified: the optimistic loop)
        "fp16": ln.MatmulSpec(accumulator="fp16"),  # its checked loop (partial sums may be fp16 subnormals)
        "bf16 block=4": ln.MatmulSpec(accumulator="bf16", block=4),  # the block kernel, zeroed afterwards
    }[kind]
    got = ln.matmul(a, b, spec, lower=lower, dtype=np.float32)
    band = np.tri(n_rows, n_cols, lower, dtype=bool)
    for t in range(2):
        want = matmul_reference(a[t].astype(np.float64), b[0].astype(np.float64), spec)
        np.testing.assert_array_equal(got[t][band], want[band].astype(np.float32))
        assert np.all(got[t][~band] == 0.0)


def test_banded_product_bad_arguments() -> None:
    with pytest.raises(TypeError, match="lower must be an int"):
        ln.matmul(np.ones((2, 2)), np.ones((2, 2)), accumulator="bf16", lower=1.5)
    with pytest.raises(ValueError, match="two axes"):
        ln.matmul(np.ones(2), np.ones(2), accumulator="bf16", lower=0)
