"""The recompute step: only selected components, computed in high precision, exact accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lampnum as ln
import lampnum.lamp as lamp
from lampnum.lamp import kernels


def _attention(seed: int, heads: int = 3, n: int = 24, d: int = 16):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(heads, n, d)).astype(np.float32)
    k = rng.normal(size=(heads, n, d)).astype(np.float32)
    low = ln.round(q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64), "bf16") / math.sqrt(d)
    return q, k, low


def _exact_dot(a, b) -> float:
    return math.fsum(
        float(x) * float(y) for x, y in zip(a, b, strict=True)
    )  # float32 products are exact in float64


@given(st.integers(0, 2**31), st.floats(0.0, 1.0))
def test_recompute_selected_only_and_accounting(seed, density):
    q, k, low = _attention(seed)
    heads, n, d = q.shape
    causal = np.tri(n, dtype=bool)
    mask = (np.random.default_rng(seed + 1).random(low.shape) < density) & causal
    result = lamp.recompute_product(
        q, np.swapaxes(k, -1, -2), low, mask, valid=causal, scale=1 / math.sqrt(d)
    )
    selected = valid = 0
    for h in range(heads):
        for i in range(n):
            for j in range(n):
                valid += j <= i
                if mask[h, i, j]:
                    selected += 1
                    exact = _exact_dot(q[h, i], k[h, j]) / math.sqrt(d)
                    bound = (
                        d
                        * 2.0**-53
                        * math.fsum(abs(float(x) * float(y)) for x, y in zip(q[h, i], k[h, j], strict=True))
                    )
                    assert abs(result.values[h, i, j] - exact) <= bound
                else:  # unselected entries are untouched, bit for bit
                    assert result.values[h, i, j] == low[h, i, j]
    assert (result.selected, result.valid, result.inner, result.total) == (selected, valid, d, heads * n * n)
    assert result.recompute_rate == selected / valid
    assert result.multiply_adds == selected * d
    assert result.multiply_add_fraction == selected / (heads * n * n)
    np.testing.assert_array_equal(result.mask, mask)


def test_cost_is_proportional_to_selection(monkeypatch):
    """The high-precision kernels see the selected pairs only, never the full product: with a repeated causal
    mask (or none) the row kernel receives the mask and computes a dot product only where it is set (checked
    against its twin below); with any other valid mask the gathered pairs go to ``dots_at``."""
    seen = []
    original = kernels.dots_at

    def spy(a, bt, ia, ib, i, j, out):
        seen.append(out.shape)
        return original(a, bt, ia, ib, i, j, out)

    monkeypatch.setattr(kernels, "dots_at", spy)
    q, k, low = _attention(0, heads=2, n=64, d=8)
    mask = np.zeros(low.shape, dtype=bool)
    mask[0, 5, 3] = mask[1, 63, 0] = mask[1, 7, 7] = True
    per_head = np.ones((2, 1, 64), dtype=bool)  # broadcast over the rows, not a repeated trailing mask
    result = lamp.recompute_product(q, np.swapaxes(k, -1, -2), low, mask, valid=per_head)
    assert seen == [(3,)]
    assert result.selected == 3
    rows = []
    original_rows = kernels.dots_masked_blocks

    def row_spy(a, bt, ia, ib, mask_rows, *rest):
        rows.append(int(mask_rows.sum()))  # the rows the mask-driven kernel runs over
        return original_rows(a, bt, ia, ib, mask_rows, *rest)

    monkeypatch.setattr(kernels, "dots_masked_blocks", row_spy)
    result = lamp.recompute_product(q, np.swapaxes(k, -1, -2), low, mask)
    assert sum(rows) == 3 and seen == [(3,)] and result.selected == 3


@given(st.integers(0, 2**31), st.floats(0.0, 1.0), st.sampled_from(["causal", "none", "-inf"]), st.booleans())
def test_row_kernel_float32_in_place_and_twin(seed, density, valid_kind, with_bias):
    """The row kernel against its pure-Python twin (bit for bit: the same float64 operations in order), and a
    float32 array corrected in place holds the float64 result rounded once to float32."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2, 1, 7, 5)).astype(np.float32)
    b = rng.normal(size=(3, 5, 7)).astype(np.float32)
    low = rng.normal(size=(2, 3, 7, 7))
    causal = np.tri(7, dtype=bool)
    valid = causal if valid_kind == "causal" else None
    mask = rng.random(low.shape) < density
    if valid_kind == "causal":
        mask &= causal
    if valid_kind == "-inf":
        low[..., ~causal] = -np.inf
        mask &= causal
    bias = rng.normal(size=7) if with_bias else None
    result = lamp.recompute_product(a, b, low, mask, valid=valid, bias=bias, scale=0.375)
    twin = low.reshape(-1, 7).copy()
    a3, bt3 = a.reshape(-1, 7, 5), np.swapaxes(b, -1, -2).reshape(-1, 7, 5)
    leads = np.arange(6)
    kernels.dots_masked_reference(a3, bt3, leads // 3, leads % 3, mask.reshape(-1, 7), 0.375,
                                  np.zeros(0) if bias is None else bias, twin)  # fmt: skip
    np.testing.assert_array_equal(result.values.reshape(-1, 7), twin)
    low32 = low.astype(np.float32)
    in_place = lamp.recompute_product(a, b, low32, mask, valid=valid, bias=bias, scale=0.375, in_place=True)
    assert in_place.values is low32 and low32.dtype == np.float32
    np.testing.assert_array_equal(low32[mask], result.values[mask].astype(np.float32))
    np.testing.assert_array_equal(low32[~mask], low.astype(np.float32)[~mask])
    assert (in_place.selected, in_place.valid) == (result.selected, result.valid) == (
        int(mask.sum()), 6 * 28 if valid_kind != "none" else low.size)


def test_broadcast_leading_axes_and_bias():
    """a (2, 1, M, K) against b (3, K, N) into (2, 3, M, N) with a bias (a linear layer shared across
    heads)."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(2, 1, 4, 5)).astype(np.float32)
    b = rng.normal(size=(3, 5, 6)).astype(np.float32)
    bias = rng.normal(size=6)
    low = np.zeros((2, 3, 4, 6))
    result = lamp.recompute_product(a, b, low, np.ones(low.shape, dtype=bool), bias=bias, scale=0.5)
    for index in np.ndindex(low.shape):
        x, y, i, j = index
        want = 0.5 * _exact_dot(a[x, 0, i], b[y, :, j]) + bias[j]
        assert result.values[index] == pytest.approx(want, rel=1e-14, abs=1e-14)
    assert result.recompute_rate == 1.0


def test_nothing_selected_returns_a_copy():
    q, k, low = _attention(1)
    result = lamp.recompute_product(q, np.swapaxes(k, -1, -2), low, np.zeros(low.shape, dtype=bool))
    np.testing.assert_array_equal(result.values, low)
    assert result.values is not low and result.selected == 0 and result.recompute_rate == 0.0


def test_default_valid_excludes_minus_inf():
    q, k, low = _attention(2, heads=1, n=4, d=4)
    low[0][~np.tri(4, dtype=bool)] = -np.inf
    result = lamp.recompute_product(q, np.swapaxes(k, -1, -2), low, np.tri(4, dtype=bool)[None])
    assert (result.selected, result.valid, result.recompute_rate) == (10, 10, 1.0)


def test_selecting_an_invalid_entry_raises():
    q, k, low = _attention(3, heads=1, n=4, d=4)
    mask = np.zeros(low.shape, dtype=bool)
    mask[0, 0, 3] = True
    with pytest.raises(ValueError, match="not valid"):
        lamp.recompute_product(q, np.swapaxes(k, -1, -2), low, mask, valid=np.tri(4, dtype=bool))


@pytest.mark.parametrize(
    "bad",
    [
        {"mask": np.ones((1, 4, 4))},  # not boolean
        {"mask": np.ones((4, 4), dtype=bool)},  # wrong shape
        {"b": np.ones((1, 3, 4))},  # inner dimensions differ
        {"bias": np.ones(3)},
    ],
)
def test_bad_arguments(bad):
    q, k, low = _attention(4, heads=1, n=4, d=4)
    args = {"a": q, "b": np.swapaxes(k, -1, -2), "values": low, "mask": np.ones(low.shape, dtype=bool)}
    args.update(bad)
    with pytest.raises((ValueError, TypeError)):
        lamp.recompute_product(**args)


def test_high_spec_recomputes_as_the_emulated_product():
    """high=MatmulSpec: each recomputed entry is exactly what lampnum.matmul gives for that entry of the full
    product (the gathered rows go through the same accumulation model)."""
    q, k, low = _attention(6, heads=2, n=16, d=32)
    spec = ln.MatmulSpec(accumulator="fp16", block=8)
    mask = np.random.default_rng(6).random(low.shape) < 0.3
    result = lamp.recompute_product(q, np.swapaxes(k, -1, -2), low, mask, high=spec, scale=0.25)
    full = ln.matmul(q, np.swapaxes(k, -1, -2), spec) * 0.25
    np.testing.assert_array_equal(result.values[mask], full[mask])
    np.testing.assert_array_equal(result.values[~mask], low[~mask])


def test_float16_and_integer_operands_are_read_exactly():
    """float16 or integer operands (Numba has no float16 arrays) are read as their exact float64 values: the
    result equals the float64 operands' (a crash before, found in review)."""
    rng = np.random.default_rng(3)
    q = rng.normal(size=(2, 6, 4)).astype(np.float16)
    low = rng.normal(size=(2, 6, 6))
    mask = rng.random(low.shape) < 0.4
    for a in (q, (q * 8).astype(np.int32)):
        got = lamp.recompute_product(a, np.swapaxes(a, -1, -2), low, mask)
        want = lamp.recompute_product(a.astype(np.float64), np.swapaxes(a, -1, -2).astype(np.float64), low, mask)
        np.testing.assert_array_equal(got.values, want.values)
    config = lamp.LampConfig("strict", tau=0.01)
    got = lamp.AttentionScores(config).apply(q, q, low)
    want = lamp.AttentionScores(config).apply(q.astype(np.float64), q.astype(np.float64), low)
    np.testing.assert_array_equal(got.values, want.values)
    assert got.selected == want.selected > 0
