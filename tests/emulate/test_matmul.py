"""The emulated matrix product against its executable specification, consistency checks, shapes and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lampnum as ln
from lampnum.emulate.matmul_reference import matmul_reference
from lampnum.rounding.api import stochastic_key
from lampnum.rounding.modes import as_mode

from ..rounding.test_exhaustive import assert_same

_KEY_MAX = np.iinfo(np.uint64).max


def custom_format(draw: st.DrawFn, low: int = 2, high: int = 24) -> ln.Format:
    p = draw(st.integers(low, high))
    emax = draw(st.sampled_from([4, 7, 15, 31, 127]))
    return ln.Format(p=p, emax=emax, subnormals=draw(st.booleans()), overflow=draw(st.sampled_from(["inf", "saturate"])))


@st.composite
def specs(draw: st.DrawFn) -> ln.MatmulSpec:
    formats = st.one_of(st.sampled_from(["bf16", "fp16", "e5m2", "e4m3", "fp32"]), st.builds(lambda: None),
                        st.just("custom"))  # fmt: skip

    def pick(allow_none: bool = True) -> ln.Format | str | None:
        choice = draw(formats)
        if choice == "custom":
            return custom_format(draw)
        if choice is None and not allow_none:
            return "bf16"
        return choice

    return ln.MatmulSpec(
        input=draw(st.sampled_from([None, "bf16", "fp16", "e4m3", "e5m2"])),
        product=pick(),
        accumulator=pick(allow_none=False),
        block=draw(st.sampled_from([1, 2, 4, 32])),
        block_precision=draw(st.sampled_from(["fp64", "fp32", "bf16"])),
        output=pick(),
        mode=draw(st.sampled_from(["rne", "rna", "rtz", "rup", "rdn", "rto", "sr", "sr_eq"])),
        via=draw(st.sampled_from([None, None, "fp32"])),
    )


@st.composite
def operands(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(0, 40)), draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["normal", "cancel", "range", "tiny", "equal"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    if kind == "cancel":
        b[k // 2 :] = -b[: k - k // 2][::-1] if k else b[k // 2 :]
        a[:, k // 2 :] = a[:, : k - k // 2][:, ::-1]
    elif kind == "range":
        a *= np.exp(rng.uniform(-12, 12, a.shape))
    elif kind == "tiny":
        a *= 1e-4
        b *= 1e-4
    elif kind == "equal":
        a[:] = 1.0
        b[:] = 1.0
    return a.astype(np.float32), b.astype(np.float32)


@settings(max_examples=60)
@given(specs(), operands(), st.integers(0, 2**32))
def test_matches_the_reference(spec: ln.MatmulSpec, ab: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    a, b = ab
    result = ln.matmul(a, b, spec, rng=seed)
    rng = np.random.default_rng(seed)
    mode = as_mode(spec.mode)
    input_keys = (stochastic_key(mode, rng), stochastic_key(mode, rng)) if spec.input is not None else None
    keys = rng.integers(0, _KEY_MAX, size=2, dtype=np.uint64, endpoint=True) if mode.stochastic else [0, 0]
    output_key = stochastic_key(mode, rng) if spec.output is not None else None
    expected = matmul_reference(a, b, spec, int(keys[0]), int(keys[1]), input_keys, output_key)
    assert_same(result, expected, a, repr(spec))


def test_float64_accumulator_equals_sequential_float64_dot() -> None:
    """Products of float32 operands are exact in float64, so fp64 accumulation is a sequential float64 dot."""
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((3, 300)) * np.exp(rng.uniform(-20, 20, (3, 300)))).astype(np.float32)
    b = rng.standard_normal((300, 2)).astype(np.float32)
    result = ln.matmul(a, b, accumulator="fp64", block=1)
    for i in range(3):
        for j in range(2):
            total = 0.0
            for k in range(300):
                total += float(a[i, k]) * float(b[k, j])
            assert result[i, j] == total


def test_fp32_container_accumulator_equals_float32_sequential_sum() -> None:
    """accumulator Format(p=24, emax=127) with product fp32 via fp32 reproduces float32 sequential accumulation."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 500)).astype(np.float32)
    b = rng.standard_normal((500, 3)).astype(np.float32)
    result = ln.matmul(a, b, accumulator=ln.Format(p=24, emax=127), product="fp32", via="fp32")
    for i in range(2):
        for j in range(3):
            total = np.float32(0)
            for k in range(500):
                total = np.float32(total + np.float32(a[i, k] * b[k, j]))
            assert result[i, j] == float(total)


def test_paper_accumulator_is_fp32_with_m_bit_mantissa() -> None:
    """The LAMP authors' emulation: an fp32 register whose mantissa is rounded to m bits after every addition."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((1, 64)).astype(np.float32)
    b = rng.standard_normal((64, 1)).astype(np.float32)
    m = 7
    result = ln.matmul(a, b, accumulator=ln.Format(p=m + 1, emax=127), product="fp32", via="fp32")
    total = np.float32(0)
    for k in range(64):
        register = np.float32(total + np.float32(a[0, k] * b[k, 0]))
        total = np.float32(ln.round(float(register), ln.Format(p=m + 1, emax=127)))
    assert result[0, 0] == float(total)


def test_strict_bf16_stagnates_and_blocks_recover() -> None:
    ones_a = np.ones((1, 4096), dtype=np.float32)
    ones_b = np.ones((4096, 1), dtype=np.float32)
    assert ln.matmul(ones_a, ones_b, accumulator="bf16")[0, 0] == 256.0
    assert ln.matmul(ones_a, ones_b, accumulator="bf16", block=32)[0, 0] == 4096.0
    stochastic = ln.matmul(ones_a, ones_b, accumulator="bf16", mode="sr", rng=0)[0, 0]
    assert 3000 < stochastic < 5200  # SR keeps growing past 256 (unbiased steps)


def test_broadcasting_and_vector_shapes() -> None:
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 1, 5, 8)).astype(np.float32)
    b = rng.standard_normal((4, 8, 6)).astype(np.float32)
    result = ln.matmul(a, b, accumulator="fp64")
    assert result.shape == (3, 4, 5, 6)
    np.testing.assert_allclose(result, np.matmul(a.astype(np.float64), b), rtol=1e-12)
    for index in [(0, 0), (2, 3)]:
        single = ln.matmul(a[index[0], 0], b[index[1]], accumulator="bf16")
        np.testing.assert_array_equal(ln.matmul(a, b, accumulator="bf16")[index], single)
    vector = rng.standard_normal(8).astype(np.float32)
    assert ln.matmul(vector, vector, accumulator="fp64").shape == ()
    assert ln.matmul(a[0, 0], vector, accumulator="fp64").shape == (5,)
    assert ln.matmul(vector, b[0], accumulator="fp64").shape == (6,)
    assert ln.matmul(np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32)).tolist() == [[0.0] * 3] * 2


def test_blas_fast_path_is_bit_identical() -> None:
    rng = np.random.default_rng(5)
    a = ln.round(rng.standard_normal((16, 64)), "bf16")
    b = ln.round(rng.standard_normal((64, 8)), "bf16")
    spec = ln.MatmulSpec(accumulator="fp64")
    sequential = ln.matmul(a, b, spec.replace(block=2, block_precision="bf16"), block_precision="fp32")
    assert np.array_equal(ln.matmul(a, b, spec), np.matmul(a, b))
    np.testing.assert_allclose(sequential, np.matmul(a, b), rtol=1e-6)


def test_special_values_propagate() -> None:
    a = np.array([[np.inf, 1.0], [np.nan, 1.0], [np.inf, 0.0]], dtype=np.float32)
    b = np.array([[1.0], [-np.inf]], dtype=np.float32)
    result = ln.matmul(a, b, accumulator="bf16")[:, 0]
    assert np.isnan(result).all()
    assert ln.matmul(np.array([[1e30]], np.float32), np.array([[1e30]], np.float32), accumulator="bf16")[0, 0] == np.inf


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: ln.matmul(np.ones((2, 3)), np.ones((4, 2))), ValueError, "do not align"),
        (lambda: ln.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2))), ValueError, "do not broadcast"),
        (lambda: ln.matmul(np.ones((2, 3)), np.ones((3, 2)), acumulator="bf16"), TypeError, "unknown MatmulSpec"),
        (lambda: ln.matmul(np.ones(3, dtype=np.int64), np.ones(3)), TypeError, "float32 or float64"),
        (lambda: ln.matmul(np.float64(1.0), np.ones(3)), ValueError, "at least one dimension"),
        (lambda: ln.matmul(np.full((1, 2), 0.1), np.full((2, 1), 0.1)), ValueError, "exact in float64"),
        (lambda: ln.MatmulSpec(block=0), ValueError, "positive int"),
        (lambda: ln.MatmulSpec(accumulator="bf17"), ValueError, "accumulator: unknown format"),
        (lambda: ln.MatmulSpec(accumulator=None), ValueError, "must be a format"),
        (lambda: ln.MatmulSpec(mode="nearest"), ValueError, "unknown rounding mode"),
        (lambda: ln.matmul(np.ones((1, 2), np.float32), np.ones((2, 1), np.float32), accumulator="fp64", mode="rup"),
         ValueError, "p <= 51"),
    ],
)
def test_bad_input(call, error: type, message: str) -> None:  # noqa: ANN001
    with pytest.raises(error, match=message):
        call()


def test_float64_operands_with_input_rounding_or_fp64_products() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((4, 16)), rng.standard_normal((16, 3))
    ln.matmul(a, b, input="fp32", accumulator="bf16")
    result = ln.matmul(a, b, product="fp64", accumulator="fp32")
    assert result.shape == (4, 3)
