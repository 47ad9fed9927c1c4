"""The float32-lane strict kernel: one update against exact rationals, the certificate against an exact simulation
of the partial sums, and whole products against the executable specification, on operands built to hit midpoints
(integer data), cancellation, bands and odd depths."""

from __future__ import annotations

import importlib
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.emulate.matmul import lowered
from lampnum.emulate.matmul_lanes32 import (
    MAX_LANES32_P,
    float32_rows,
    lanes32_certified,
    lanes32_eligible,
    lanes32_update_reference,
    strict_rne_lanes32_kernel,
)
from lampnum.emulate.matmul_reference import matmul_reference
from lampnum.emulate.operand_stats import max_abs_col_sum, max_abs_row_sum, operand_stats
from lampnum.rounding.reference import round_reference

from ..rounding.test_exhaustive import assert_same
from .test_matmul_fast import stress_operands

matmul_module = importlib.import_module("lampnum.emulate.matmul")  # the package exports the function

_F32 = st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False, min_value=-(2.0**50),
                 max_value=2.0**50)  # fmt: skip


@settings(max_examples=500)
@given(_F32, _F32, _F32, st.integers(2, MAX_LANES32_P))
@example(256.0, 1.0, 1.0, 8)  # t = 257, a bf16 midpoint that is the exact sum
@example(256.0, 1.0, 1.0 + 2.0**-23, 8)  # the float32 sum rounds onto the midpoint 257 from above
@example(1.0, 2.0**-9, 1.0 - 2.0**-24, 8)  # ... and from below
def test_one_update_is_rne_off_midpoints(s: float, a: float, b: float, precision: int) -> None:
    """Off a midpoint, Veltkamp's ``hi`` of the float32 FMA is the accumulator's rounding of the exact sum."""
    s = round_reference(s, ln.Format(p=precision, emax=127), "rne")  # an accumulator value
    exact = Fraction(s) + Fraction(a) * Fraction(b)
    if exact == 0 or not 2.0**-126 <= abs(exact) <= 2.0**100:  # the certificate's domain
        return
    hi, midpoint = lanes32_update_reference(s, a, b, precision)
    if not midpoint:
        assert hi == round_reference(exact, ln.Format(p=precision, emax=127), "rne")


def test_the_update_twin_flags_double_rounding() -> None:
    """257 + 2^-16 rounds to the bf16 midpoint 257 in float32: flagged, and its direct rounding would be wrong."""
    hi, midpoint = lanes32_update_reference(256.0, 1.0, 1.0 + 2.0**-16, 8)
    assert midpoint and round_reference(Fraction(257) + Fraction(1, 2**16), "bf16") == 258.0


def _kernel(a: np.ndarray, b: np.ndarray, fmt: ln.Format, lower: int | None = None, dtype: type = np.float64,
            certified: bool = True) -> tuple[np.ndarray, int]:  # fmt: skip
    out = np.empty((1, a.shape[0], b.shape[1]), dtype=dtype)
    index = np.zeros(1, dtype=np.int64)
    band = b.shape[1] if lower is None else lower
    scanned = strict_rne_lanes32_kernel(a[None].astype(np.float32), b[None].astype(np.float32), index, index, out,
                                        lowered(fmt), band, certified)  # fmt: skip
    return out[0], scanned


def _certified(a: np.ndarray, b: np.ndarray, fmt: ln.Format) -> bool:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return lanes32_certified(operand_stats(a64), operand_stats(b64), max_abs_row_sum(a64[None]),
                             max_abs_col_sum(b64[None]), a.shape[1], fmt)  # fmt: skip


def _formats() -> st.SearchStrategy[ln.Format]:
    custom = st.builds(ln.Format, p=st.integers(2, MAX_LANES32_P), emax=st.sampled_from([4, 15, 60, 127]),
                       subnormals=st.booleans(), overflow=st.sampled_from(["inf", "saturate"]))  # fmt: skip
    named = st.sampled_from([ln.format(name) for name in ("bf16", "fp16", "e5m2", "e4m3", "e5m2fnuz", "e3m2")])
    return named | custom


@settings(max_examples=120, deadline=None)
@given(_formats(), stress_operands())
@example(ln.format("bf16"), (np.full((3, 40), 1.0, np.float32), np.full((40, 2), 1.0, np.float32)))
def test_certified_products_match_the_reference(fmt: ln.Format, ab: tuple[np.ndarray, np.ndarray]) -> None:
    """Wherever the certificate holds, the kernel equals the executable specification bit for bit."""
    a, b = ab
    if not _certified(a, b, fmt):
        return
    result, _ = _kernel(a, b, fmt)
    assert_same(result, matmul_reference(a, b, ln.MatmulSpec(accumulator=fmt)), a, f"lanes32 {fmt}")


@settings(max_examples=150, deadline=None)
@given(_formats(), stress_operands())
@example(ln.format("fp16"), (np.full((3, 40), 2.0**-12, np.float32), np.full((40, 2), -(2.0**-6), np.float32)))
@example(ln.format("e4m3"), (np.full((2, 30), 16.0, np.float32), np.full((30, 3), 2.0, np.float32)))  # NaN at 464
def test_checked_loop_matches_the_reference(fmt: ln.Format, ab: tuple[np.ndarray, np.ndarray]) -> None:
    """Without a certificate: midpoints, the subnormal range, overflow (to inf, NaN or the largest value) and
    cancellation are all redone exactly, for every eligible format, on any finite float32 operands."""
    a, b = ab
    if not (lanes32_eligible(operand_stats(a), operand_stats(b), fmt)):
        return
    result, _ = _kernel(a, b, fmt, certified=False)
    assert_same(result, matmul_reference(a, b, ln.MatmulSpec(accumulator=fmt)), a, f"checked lanes32 {fmt}")


@pytest.mark.parametrize("depth", [1, 2, 257, 300])
def test_midpoints_are_redone_exactly(depth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small integers hit bf16 midpoints on most updates past 256 (257 = 256 + 1 ties to even): k-steps are
    scanned and the result is the specification's, for odd and even depths (the final buffer alternates), across
    a tile edge (256 columns) and against the float64 kernel on a larger product."""
    rng = np.random.default_rng(depth)
    a = rng.integers(0, 4, (40, depth)).astype(np.float32)
    b = rng.integers(0, 4, (depth, 300)).astype(np.float32)
    assert _certified(a, b, ln.format("bf16"))
    result, scanned = _kernel(a, b, ln.format("bf16"))
    checked, _ = _kernel(a, b, ln.format("bf16"), certified=False)
    assert np.array_equal(checked, result)
    small = (slice(0, 2), slice(250, 262))
    expected = matmul_reference(a[small[0]], b[:, small[1]], ln.MatmulSpec(accumulator="bf16"))
    assert_same(result[small], expected, a, "integers")
    monkeypatch.setattr(matmul_module, "lanes32_eligible", lambda *args: False)
    assert np.array_equal(result, ln.matmul(a, b, accumulator="bf16"))  # the float64 kernel
    if depth >= 257:
        assert scanned > 0


def test_a_float32_sum_rounded_onto_a_midpoint_is_fixed() -> None:
    """256 + (1 ± 2^-17) rounds to 257 in float32, a bf16 midpoint that is not the exact sum: Veltkamp alone would
    give 256 for both, the exact sums round to 258 and 256."""
    a = np.ones((3, 2), np.float32)
    b = np.empty((2, 300), np.float32)
    b[0] = 256.0
    b[1] = np.where(np.arange(300) % 2 == 0, 1.0 + 2.0**-17, 1.0 - 2.0**-17)
    result, scanned = _kernel(a, b, ln.format("bf16"))
    assert scanned == 2  # the second step, in each of the two column tiles
    assert (result[:, 0::2] == 258.0).all() and (result[:, 1::2] == 256.0).all()
    assert_same(result, matmul_reference(a, b, ln.MatmulSpec(accumulator="bf16")), a, "double rounding")


def test_band_and_float32_output() -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((40, 64)).astype(np.float32)
    b = rng.standard_normal((64, 300)).astype(np.float32)
    full, _ = _kernel(a, b, ln.format("bf16"))
    for lower in (-45, -3, 0, 7, 299):
        banded, _ = _kernel(a, b, ln.format("bf16"), lower, np.float32)
        inside = np.tri(40, 300, lower, dtype=bool)
        assert banded.dtype == np.float32
        assert np.array_equal(banded[inside], full[inside]) and (banded[~inside] == 0).all()


def test_certificate_holds_on_typical_data_and_fails_on_extremes() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 64)).astype(np.float32)
    b = rng.standard_normal((64, 5)).astype(np.float32)
    bf16 = ln.format("bf16")
    assert _certified(a, b, bf16)
    assert not _certified(a, b, ln.format("fp16"))  # float32 data: partial sums may reach fp16's subnormals
    assert lanes32_eligible(operand_stats(a), operand_stats(b), ln.format("fp16"))  # the checked loop runs
    assert not _certified(a * np.float32(1e19), b * np.float32(1e19), bf16)  # C·t overflows float32
    assert not _certified(np.where(a > 0, np.inf, a).astype(np.float32), b, bf16)
    assert not _certified(a, b, ln.Format(p=23, emax=127))  # beyond Veltkamp's float32 range
    assert not _certified(a, b, ln.Format(p=8, emax=300))  # an exponent range wider than float32's
    assert not lanes32_eligible(operand_stats(a), operand_stats(b), ln.Format(p=8, emax=300))


def test_matmul_takes_the_float32_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ln.matmul`` on float32 operands with a bf16 accumulator runs this kernel (a spy), certified, and with fp16
    its checked loop; results equal the float64 kernels'; float64 operands that are float32 values take it too."""
    calls: list[bool] = []
    kernel = matmul_module.strict_rne_lanes32_kernel

    def spy(*args: object) -> int:
        calls.append(bool(args[-1]))  # certified
        return kernel(*args)

    monkeypatch.setattr(matmul_module, "strict_rne_lanes32_kernel", spy)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 33, 48)).astype(np.float32)
    b = rng.standard_normal((2, 48, 33)).astype(np.float32)
    lanes = ln.matmul(a, b, accumulator="bf16", lower=0, dtype=np.float32)
    assert calls == [True] and lanes.dtype == np.float32
    ln.matmul(a.astype(np.float64), b.astype(np.float64), accumulator="bf16")
    fp16 = ln.matmul(a, b, accumulator="fp16")
    assert calls == [True, True, False]  # fp16: the checked loop
    monkeypatch.setattr(matmul_module, "lanes32_eligible", lambda *args: False)
    float64_kernel = ln.matmul(a, b, accumulator="bf16", lower=0)
    assert len(calls) == 3
    assert np.array_equal(lanes, float64_kernel)
    assert np.array_equal(fp16, ln.matmul(a, b, accumulator="fp16"))


def test_float32_views_and_batches_broadcast() -> None:
    """Non-contiguous float32 operands (a transposed view, a broadcast batch) go to the kernel as they are, and give
    the float64 operands' result: the same values, the same product."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 17, 40)).astype(np.float32)
    b = rng.standard_normal((29, 40)).astype(np.float32).T  # (40, 29), a transposed view
    lanes = ln.matmul(a, b, accumulator="bf16")
    assert lanes.shape == (3, 17, 29)
    expected = ln.matmul(a.astype(np.float64), np.ascontiguousarray(b, dtype=np.float64), accumulator="bf16")
    assert np.array_equal(lanes, expected)
    assert_same(lanes[1], matmul_reference(a[1], b, ln.MatmulSpec(accumulator="bf16")), a[1], "views")


@pytest.mark.parametrize("make", [
    lambda x: x,  # C-contiguous: returned as it is
    lambda x: np.swapaxes(x, 1, 2),  # transposed matrices
    lambda x: x[:, ::2, 1::3],  # strided
    lambda x: np.swapaxes(x, 1, 2).astype(np.float64),  # float64 holding float32 values
])  # fmt: skip
def test_float32_rows_copies_any_layout(make: object) -> None:
    rng = np.random.default_rng(4)
    x = make(rng.standard_normal((3, 300, 301)).astype(np.float32))  # type: ignore[operator]
    rows = float32_rows(x)
    assert rows.dtype == np.float32 and rows.flags.c_contiguous
    assert np.array_equal(rows, x.astype(np.float32))


def test_fp32_input_rounding_of_float32_operands_is_skipped_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """``input="fp32"`` leaves float32 operands as they are: the rounding is not run, and the result is the one
    the specification gives (GPT-2's emulated policies set it)."""
    rounded: list[int] = []
    rounding = matmul_module.round_to_format

    def spy(*args: object, **kwargs: object) -> np.ndarray:
        rounded.append(1)
        return rounding(*args, **kwargs)

    monkeypatch.setattr(matmul_module, "round_to_format", spy)
    rng = np.random.default_rng(6)
    a = rng.standard_normal((5, 33)).astype(np.float32)
    b = (rng.standard_normal((33, 7)) * 1e-3).astype(np.float32)
    spec = ln.MatmulSpec(input="fp32", accumulator="bf16")
    result = ln.matmul(a, b, spec)
    assert not rounded
    assert_same(result, matmul_reference(a, b, spec), a, "input fp32")
    ln.matmul(a, b, input="bf16", accumulator="bf16")  # a narrower input format is rounded
    assert rounded


@pytest.mark.parametrize("mode", ["rne", "rtz", "sr"])
def test_a_transposed_float64_operand_rounds_like_its_copy(mode: str) -> None:
    """The input rounding of a transposed operand runs in its own memory order (deterministic modes) or on a
    C-order copy (stochastic: random bits go by C-order position): either way the product is that of the
    contiguous copy, and the specification's."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((6, 300))
    w = rng.standard_normal((70, 300))  # a weight, used as w.T
    spec = ln.MatmulSpec(input="bf16", accumulator="bf16", mode=mode)
    transposed = ln.matmul(a, w.T, spec, rng=3)
    assert np.array_equal(transposed, ln.matmul(a, np.ascontiguousarray(w.T), spec, rng=3))
    if mode != "sr":
        assert_same(transposed[:2], matmul_reference(a[:2], w.T, spec), a[:2], f"transposed {mode}")
