"""The sum and matmul bounds against lampnum's own emulated computations (``ln.sum``, ``ln.matmul``), with exact
rational references of the original data: never violated, for every order/spec, at sizes up to 4096."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lampnum as ln
import lampnum.bounds
from lampnum.bounds import BoundOverflowWarning

from .strategies import KINDS, MODES, examples, formats, make_vector, specs


def _quiet(function: object, *args: object, **kwargs: object) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundOverflowWarning)
        return function(*args, **kwargs)  # type: ignore[operator]


def _exact_sums(x: np.ndarray) -> list[Fraction]:
    return [sum((Fraction(v) for v in x[index].tolist()), Fraction(0)) for index in np.ndindex(x.shape[:-1])]


def _check(computed: np.ndarray, exact: list[Fraction], bound: np.ndarray) -> None:
    for c, e, b in zip(computed.reshape(-1).tolist(), exact, bound.reshape(-1).tolist(), strict=True):
        if math.isinf(b):
            continue
        assert math.isfinite(c), "an overflow happened where the bound claimed none"
        assert abs(Fraction(c) - e) <= Fraction(b), (c, float(e), b)


@settings(max_examples=examples(120))
@given(fmt=formats(max_p=24), mode=st.sampled_from(MODES), order=st.sampled_from(["recursive", "pairwise", "blocked"]),
       block=st.sampled_from([1, 2, 7, 32]), n=st.integers(0, 300), kind=st.sampled_from(KINDS),
       seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_sum_bound_never_violated(fmt: ln.Format, mode: str, order: str, block: int, n: int, kind: str,
                                  seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    x = np.stack([make_vector(rng, n, kind, fmt) for _ in range(2)])
    kwargs = {"accumulator": fmt, "order": order, "block": block, "mode": mode}
    bound = _quiet(ln.bounds.sum, x, **kwargs)
    computed = ln.sum(x, rng=seed, **kwargs)
    _check(computed, _exact_sums(x), bound)
    if mode in ("rne", "sr") and kind in ("normal", "sparse", "dynamic"):
        _check(computed, _exact_sums(x), _quiet(ln.bounds.sum, x, prob=1e-9, **kwargs))


@pytest.mark.parametrize("order", ["recursive", "pairwise", "blocked"])
@pytest.mark.parametrize("mode", ["rne", "rtz", "sr"])
def test_sum_bound_at_n_4096(order: str, mode: str) -> None:
    rng = np.random.default_rng(99)
    x = np.stack([make_vector(rng, 4096, kind) for kind in ("normal", "equal", "cancellation", "dynamic")])
    kwargs = {"accumulator": "fp16", "order": order, "block": 64, "mode": mode}
    x = x / np.max(np.abs(x), axis=-1, keepdims=True)  # keep fp16 partial sums far from its max 65504
    computed = ln.sum(x, rng=1, **kwargs)
    _check(computed, _exact_sums(x), _quiet(ln.bounds.sum, x, **kwargs))
    if mode == "sr":
        _check(computed, _exact_sums(x), _quiet(ln.bounds.sum, x, prob=1e-6, **kwargs))


def test_pairwise_depths_match_the_tree() -> None:
    """γ_{⌈log2 n⌉} (+1 for the rounding of each term) is the deepest leaf; every leaf of a power of two is that deep."""
    for n in (1, 2, 3, 5, 8, 1000, 4096):
        d = ln.bounds.depths(n, "pairwise")
        assert d.max() == 1 + math.ceil(math.log2(n)) and d.min() >= 1
    assert np.all(ln.bounds.depths(4096, "pairwise") == 13)
    assert ln.bounds.depths(100, "blocked", 10).max() == 20
    with pytest.raises(ValueError, match="unknown summation order"):
        ln.bounds.depths(4, "tree")
    with pytest.raises(ValueError, match="non-negative"):
        ln.bounds.depths(-1)


def _float32_data(rng: np.random.Generator, shape: tuple[int, int], kind: str, fmt: ln.Format) -> np.ndarray:
    """Data with at most 24 significant bits (float32 values, kept as float64): ln.matmul needs exact products."""
    rows = [make_vector(rng, shape[1], kind, fmt) for _ in range(shape[0])]
    with np.errstate(over="ignore"):
        limit = float(np.float32(3e38))  # a float32 value itself: clipping must not add significant bits
        return np.stack(rows).astype(np.float32).astype(np.float64).clip(-limit, limit)


@settings(max_examples=examples(120))
@given(data=st.data())
def test_matmul_bound_never_violated(data: st.DataObject) -> None:
    m, n, q = data.draw(st.integers(1, 4)), data.draw(st.integers(0, 80)), data.draw(st.integers(1, 4))
    spec = data.draw(specs(n))
    if spec.accumulator.p > 51 or (spec.block > 1 and spec.block_precision.p > 51 and spec.block_precision.name
                                   != "fp64"):  # fmt: skip
        return
    fmt = min([f for f in (spec.input, spec.product, spec.accumulator, spec.output) if f is not None],
              key=lambda f: f.max)  # fmt: skip
    kind = data.draw(st.sampled_from(KINDS))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    A = _float32_data(rng, (m, n), kind, fmt)
    B = _float32_data(rng, (q, n), data.draw(st.sampled_from(KINDS)), fmt).T.copy()
    bound = _quiet(ln.bounds.matmul, A, B, spec)
    computed = ln.matmul(A, B, spec, rng=1)
    exact = [sum((Fraction(a) * Fraction(b) for a, b in zip(A[i], B[:, j], strict=True)), Fraction(0))
             for i in range(m) for j in range(q)]  # fmt: skip
    _check(computed, exact, bound)


GPT2_SPECS = {
    "bf16-strict": ln.MatmulSpec(input="bf16", accumulator="bf16"),
    "lamp-m7": ln.MatmulSpec(accumulator=ln.Format(p=8, emax=127), product="fp32", via="fp32"),
    "fp8-tensorcore": ln.MatmulSpec(input="e4m3", accumulator="fp32", block=32, block_precision="fp32", output="bf16"),
    "fp16-sr": ln.MatmulSpec(input="fp16", accumulator="fp16", mode="sr"),
}


@pytest.mark.parametrize("name", sorted(GPT2_SPECS))
def test_matmul_bound_at_k_4096(name: str) -> None:
    """Attention-score-like products with inner dimension 4096, exact reference for a few entries."""
    spec = GPT2_SPECS[name]
    rng = np.random.default_rng(4096)
    A = rng.standard_normal((3, 4096)).astype(np.float32).astype(np.float64) / 64
    B = rng.standard_normal((4096, 2)).astype(np.float32).astype(np.float64) / 64
    bound = _quiet(ln.bounds.matmul, A, B, spec)
    bound_p = _quiet(ln.bounds.matmul, A, B, spec, prob=1e-6)
    assert np.all(bound_p <= bound)
    computed = ln.matmul(A, B, spec, rng=5)
    exact = [sum((Fraction(a) * Fraction(b) for a, b in zip(A[i], B[:, j], strict=True)), Fraction(0))
             for i in range(3) for j in range(2)]  # fmt: skip
    _check(computed, exact, bound)
    _check(computed, exact, bound_p)  # random data; sr holds unconditionally
