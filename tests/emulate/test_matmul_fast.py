"""The fast matmul kernels (:mod:`lampnum.emulate.matmul_fast`): their rounding decision against exact rationals, and
whole products against the executable specification on operands that stress the fallbacks (sums on midpoints and on
representable values, subnormal and overflowing accumulators, mixed magnitudes, signed zeros, inf and NaN)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.emulate.matmul import fast_path, lowered
from lampnum.emulate.matmul_fast import fast_round, fast_round_reference, register_round, register_round_reference
from lampnum.emulate.matmul_kernels import run_matmul_kernel
from lampnum.emulate.matmul_reference import matmul_reference
from lampnum.rounding.kernels import MODE_CODES
from lampnum.rounding.reference import round_reference

from ..rounding.test_exhaustive import assert_same

_DETERMINISTIC = ["rne", "rna", "rtz", "rup", "rdn", "rto"]


@st.composite
def accumulators(draw: st.DrawFn, high: int = 24) -> ln.Format:
    choice = draw(st.sampled_from(["bf16", "fp16", "e5m2", "e4m3", "custom"]))
    if choice != "custom":
        return ln.format(choice)
    return ln.Format(p=draw(st.integers(2, high)), emax=draw(st.sampled_from([4, 15, 127])),
                     subnormals=draw(st.booleans()), overflow=draw(st.sampled_from(["inf", "saturate"])))  # fmt: skip


@st.composite
def stress_operands(draw: st.DrawFn, max_rows: int = 10) -> tuple[np.ndarray, np.ndarray]:
    m, k, n = draw(st.integers(1, max_rows)), draw(st.integers(1, 40)), draw(st.integers(1, 5))
    kind = draw(st.sampled_from(["integers", "ones", "powers", "mixed", "zeros", "tiny", "huge", "special"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "integers":  # sums land on representable values and midpoints
        a, b = rng.integers(-4, 5, (m, k)).astype(float), rng.integers(-4, 5, (k, n)).astype(float)
    elif kind == "ones":
        a, b = np.ones((m, k)), np.ones((k, n)) * rng.choice([1.0, -1.0, 0.5, 3.0])
    elif kind == "powers":
        a = np.ldexp(rng.choice([-1.0, 1.0], (m, k)), rng.integers(-6, 7, (m, k)))
        b = np.ldexp(rng.choice([-1.0, 1.0], (k, n)), rng.integers(-6, 7, (k, n)))
    elif kind == "mixed":
        a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-30, 30, (m, k)))
        b = rng.standard_normal((k, n))
    elif kind == "zeros":  # signed zeros and exact cancellation
        a = rng.choice([0.0, -0.0, 1.0, -1.0], (m, k))
        b = rng.choice([0.0, -0.0, 2.0, -2.0], (k, n))
    elif kind == "tiny":  # the accumulator's subnormal range and below
        a, b = rng.standard_normal((m, k)) * 2.0**-8, rng.standard_normal((k, n)) * 2.0**-10
    elif kind == "huge":  # overflow of fp16/e4m3-like accumulators
        a, b = rng.standard_normal((m, k)) * 300.0, rng.standard_normal((k, n)) * 300.0
    else:
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        a.reshape(-1)[rng.integers(0, a.size)] = rng.choice([np.inf, -np.inf, np.nan, -0.0])
    return a.astype(np.float32), b.astype(np.float32)


@settings(max_examples=300)
@given(accumulators(high=51), st.sampled_from(_DETERMINISTIC), st.floats(allow_nan=False, allow_infinity=False),
       st.floats(-1e6, 1e6, allow_nan=False), st.integers(0, 3))  # fmt: skip
@example(ln.format("bf16"), "rne", 256.0, 1.0, 0)  # 257 is a bf16 midpoint: flagged
@example(ln.format("bf16"), "rtz", 256.0, 2.0, 0)  # 258 is representable: flagged in the directed modes
@example(ln.format("fp16"), "rne", 0.0, -0.0, 0)
def test_fast_round_is_certified(fmt: ln.Format, mode: str, s: float, d: float, scale_bits: int) -> None:
    """When the fast rounding says ok, it equals the correct rounding of the exact sum; kernel and twin agree."""
    s = round_reference(s, fmt, "rne")
    d = float(np.ldexp(d, -8 * scale_bits))
    if not np.isfinite(s):
        return
    t = s + d
    params = fmt.params()
    twin, ok = fast_round_reference(t, fmt.p, fmt.emin, fmt.max, params.unsigned_zero, mode)
    kernel, kernel_ok = fast_round(t, fmt.p, fmt.emin, np.float64(fmt.max).view(np.uint64), params.unsigned_zero,
                                   MODE_CODES[mode])  # fmt: skip
    assert (kernel_ok, np.float64(kernel).view(np.uint64)) == (ok, np.float64(twin).view(np.uint64))
    if ok:
        expected = round_reference(Fraction(s) + Fraction(d), fmt, mode)
        assert np.float64(twin).view(np.uint64) == np.float64(expected).view(np.uint64) or twin == expected == 0.0


@settings(max_examples=300)
@given(accumulators(high=24), st.floats(width=32, allow_nan=False, allow_infinity=False))
@example(ln.Format(p=8, emax=127), 257.0)
def test_register_round_is_the_rne_rounding(fmt: ln.Format, register: float) -> None:
    """The register rounding (midpoints committed) is round_reference in rne whenever it says ok."""
    params = fmt.params()
    twin, ok = register_round_reference(register, fmt.p, fmt.emin, fmt.max, params.unsigned_zero)
    kernel, kernel_ok = register_round(np.float32(register), fmt.p, fmt.emin, np.float64(fmt.max).view(np.uint64),
                                       params.unsigned_zero)  # fmt: skip
    assert kernel_ok == ok
    if ok:  # (a flagged result is discarded by the kernels)
        assert float(kernel) == twin == round_reference(register, fmt, "rne")


@settings(max_examples=150)
@given(accumulators(high=51), st.sampled_from(_DETERMINISTIC), stress_operands())
@example(ln.format("bf16"), "rne", (np.ones((9, 40), np.float32), np.ones((40, 3), np.float32)))
def test_exact_product_path_matches_the_reference(fmt: ln.Format, mode: str,
                                                  ab: tuple[np.ndarray, np.ndarray]) -> None:  # fmt: skip
    a, b = ab
    spec = ln.MatmulSpec(accumulator=fmt, mode=mode)
    assert fast_path(spec, False, False) == "exact products"
    assert_same(ln.matmul(a, b, spec), matmul_reference(a, b, spec), a, repr(spec))


@settings(max_examples=150)
@given(st.integers(2, 24), st.sampled_from([127, 15, 4]), st.booleans(), stress_operands())
@example(8, 127, True, (np.ones((9, 40), np.float32), np.ones((40, 3), np.float32)))
def test_register_path_matches_the_reference(p: int, emax: int, subnormals: bool,
                                             ab: tuple[np.ndarray, np.ndarray]) -> None:  # fmt: skip
    a, b = ab
    spec = ln.MatmulSpec(accumulator=ln.Format(p=p, emax=emax, subnormals=subnormals), product="fp32", via="fp32")
    assert fast_path(spec, False, False) == "register"
    assert_same(ln.matmul(a, b, spec), matmul_reference(a, b, spec), a, repr(spec))


def _general(a: np.ndarray, b: np.ndarray, spec: ln.MatmulSpec) -> np.ndarray:
    """The general kernel of :mod:`lampnum.emulate.matmul_kernels` on one 2-D product."""
    out = np.empty((1, a.shape[0], b.shape[1]))
    index = np.zeros(1, dtype=np.int64)
    fp64 = ln.format("fp64")
    has_product = spec.product is not None
    run_matmul_kernel(a[None].astype(np.float64), b[None].astype(np.float64), index, index, out, spec.block,
                      lowered(spec.product or fp64), lowered(spec.block_precision), lowered(spec.accumulator),
                      lowered(spec.via or fp64), np.uint64(0), np.uint64(0), spec.mode.code, has_product,
                      spec.via is not None, False, True)  # fmt: skip
    return out[0]


def test_tiles_agree_with_the_general_kernel_beyond_one_tile() -> None:
    """Shapes of several row and column tiles (and ragged edges), batched, against the general kernel."""
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((19, 70)) * np.exp2(rng.integers(-3, 3, (19, 70)))).astype(np.float32)
    b = rng.integers(-3, 4, (70, 530)).astype(np.float32)
    specs = [ln.MatmulSpec(accumulator="bf16"), ln.MatmulSpec(accumulator="fp16", mode="rtz"),
             ln.MatmulSpec(accumulator=ln.Format(p=8, emax=127), product="fp32", via="fp32")]  # fmt: skip
    for spec in specs:
        assert_same(ln.matmul(a, b, spec), _general(a, b, spec), a, repr(spec))
    batched = ln.matmul(np.stack([a, -a]), b, specs[0])
    assert_same(batched[1], _general(-a, b, specs[0]), a, "batch")


def test_register_path_needs_float32_operands() -> None:
    """float64 operands with more than 24 bits (legal with exact products) take the general kernel, not float32."""
    a = np.array([[1.0 + 2.0**-25, 1.0]])
    b = np.array([[1.0], [2.0**-24]])
    spec = ln.MatmulSpec(accumulator=ln.Format(p=24, emax=127), product="fp32", via="fp32")
    assert_same(ln.matmul(a, b, spec), matmul_reference(a, b, spec), a, repr(spec))
