"""The float32 screening of the fused threshold rules: its mask is the float64 path's, bit for bit, on rows built to
defeat it (thresholds one ulp from an indicator, a dominant entry, entries far below the maximum, subnormal and huge
scores); it decides typical rows itself; and rows it cannot prove are counted and sent to the float64 path."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampnum.lamp import kernels
from lampnum.lamp.fast_exp import fast_exp_reference
from lampnum.lamp.screen32 import LOWEST_TAU

RULES = ("strict", "bound", "relaxed", "length")
_EMPTY3 = np.empty((0, 0, 0))
_NO_INDEX = np.empty(0, dtype=np.int64)


def _masks(rule: str, z: np.ndarray, allowed: np.ndarray, tau: float, bound: np.ndarray | None = None,
           length_ref: float = 4.0) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """(screened mask, float64-path mask, rows the screening did not prove)."""
    def run(screening: bool) -> tuple[np.ndarray, int]:
        out, _, _, unproved = kernels.fused_select_recompute(
            rule, z, allowed, tau, length_ref, _EMPTY3, _EMPTY3, _NO_INDEX, _NO_INDEX, 1.0, bound=bound,
            screening=screening)  # fmt: skip
        return out, unproved

    screened, unproved = run(True)
    plain, none = run(False)
    assert none == 0
    return screened, plain, unproved


def _indicators64(rule: str, row: np.ndarray, beta: np.ndarray | None) -> list[float]:
    """The float64 path's indicators of a row of finite scores (sequential sum: equal to the kernel's for the rows
    used below, whose sums are exact or far from any threshold)."""
    top = max(row)
    e = [fast_exp_reference(float(v) - float(top)) for v in row]
    total = math.fsum(e)
    if rule == "relaxed":
        return [abs(float(v)) * x for v, x in zip(row, e, strict=True)]
    weights = [abs(float(v)) for v in row] if beta is None else list(beta)
    return [2.0 * (x / total) * (1.0 - x / total) * w for x, w in zip(e, weights, strict=True)]


FLOAT32 = st.one_of(
    st.floats(-60.0, 60.0, width=32),
    st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 1e-38, 3e38, -3e38, 1.5, -1.5, -150.0, 100.0, -np.inf]),
)


@settings(max_examples=300)
@given(st.data(), st.sampled_from(RULES), st.integers(1, 40) | st.sampled_from([63, 64, 65, 127, 128, 129, 200]),
       st.integers(1, 3))  # fmt: skip
def test_screened_mask_is_the_float64_mask(data, rule, n, rows):
    """Random float32 rows with ties, −inf, tiny and huge entries; τ drawn anywhere, or at one of the row's own
    float64 indicators (or a neighbouring float), where only the error bounds keep the decision right."""
    values = data.draw(st.lists(FLOAT32, min_size=rows * n, max_size=rows * n))
    z = np.array(values, dtype=np.float32).reshape(rows, n)
    allowed = np.array(data.draw(st.lists(st.booleans(), min_size=rows * n, max_size=rows * n))).reshape(rows, n)
    beta = None
    if rule == "bound":
        beta = np.array(data.draw(st.lists(st.floats(0.0, 1e3), min_size=rows * n, max_size=rows * n))
                        ).reshape(rows, n)  # fmt: skip
    relative = rule in ("relaxed", "length")
    finite_row = z[0][np.isfinite(z[0])]
    if data.draw(st.booleans()) and finite_row.size == z.shape[1] and not relative:
        allowed[0] = True  # row 0 whole, so that its indicators are those computed here
        ind = _indicators64(rule, z[0], None if beta is None else beta[0])
        tau = data.draw(st.sampled_from(ind))
        tau = float(data.draw(st.sampled_from([tau, np.nextafter(tau, 0.0), np.nextafter(tau, 1.0)])))
        tau = min(max(tau, 0.0), 1e3)
    else:
        tau = data.draw(st.floats(0.0, 1.0) if relative else st.floats(0.0, 10.0))
    screened, plain, _ = _masks(rule, np.ascontiguousarray(z), allowed, tau, beta)
    np.testing.assert_array_equal(screened, plain)


@pytest.mark.parametrize("n", [2, 3, 8, 37, 1024])
@pytest.mark.parametrize("rule", ["strict", "bound"])
def test_threshold_at_an_indicator_sends_the_row_to_float64(rule, n):
    """Equal float32 scores: every indicator is one float64 number ``2p(1 − p)w``, p = 1/n exactly. τ at it selects
    nothing, one ulp below it everything; the screening cannot tell within its 10^-5, so it proves nothing and the
    row runs the float64 path (counted), which decides right."""
    z = np.full((2, n), 1.75, dtype=np.float32)
    allowed = np.ones((1, n), dtype=bool)
    beta = np.full((2, n), 0.37)
    p = 1.0 / n
    indicator = 2.0 * p * (1.0 - p) * (1.75 if rule == "strict" else 0.37)
    for tau, want in ((indicator, False), (float(np.nextafter(indicator, 0.0)), True)):
        screened, plain, unproved = _masks(rule, z, allowed, tau, beta if rule == "bound" else None)
        assert (screened == want).all() and (plain == want).all()
        assert unproved == 2
    screened, _, unproved = _masks(rule, z, allowed, indicator * 1.01, beta if rule == "bound" else None)
    assert unproved == 0 and not screened.any()  # 1 % away: proved


@pytest.mark.parametrize("rule", ["relaxed", "length"])
def test_relaxed_threshold_at_the_largest_indicator(rule):
    """A threshold of 1 selects nothing (``v > RN(1·max v)`` is false), proved at once; two entries whose indicators
    differ by 3·10^-7 relative (row 1), or the two equal largest of row 0, with τ within 3·10^-7 of 1, cannot be
    proved and run the float64 path."""
    z = np.array([[2.0, 1.0, -3.0, 2.0], [2.0, 1.0, -3.0, 2.0000002]], dtype=np.float32)
    allowed = np.ones((1, 4), dtype=bool)
    screened, plain, unproved = _masks(rule, z, allowed, 1.0, length_ref=4.0)
    assert unproved == 0 and not screened.any() and not plain.any()
    ratio = 2.0 * fast_exp_reference(2.0 - float(z[1, 3])) / float(z[1, 3])
    for tau in (ratio, float(np.nextafter(ratio, 0.0)), 1.0 - 1e-7):
        screened, plain, unproved = _masks(rule, z, allowed, tau, length_ref=4.0)
        np.testing.assert_array_equal(screened, plain)
        assert unproved == 2
    screened, plain, unproved = _masks(rule, z, allowed, 0.5, length_ref=4.0)
    np.testing.assert_array_equal(screened, plain)
    assert unproved == 0 and screened[:, [0, 3]].all() and not screened[:, [1, 2]].any()


def test_dominant_entry_and_entries_below_the_exponent_cutoff():
    """A row whose maximum holds almost all the probability (``1 − p`` tiny: no cancellation allowed in the
    screening) and entries more than 80 below it (screened exponential 0): decided as the float64 path does."""
    z = np.array([[30.0, 0.0, -60.0, -1.0, 29.0], [5.0, -100.0, -120.0, 4.9, -200.0]], dtype=np.float32)
    allowed = np.ones((1, 5), dtype=bool)
    for rule in ("strict", "relaxed"):
        for tau in (1e-30, 1e-12, 1e-6, 0.01, 0.3, 0.9):
            screened, plain, _ = _masks(rule, z, allowed, tau)
            np.testing.assert_array_equal(screened, plain)


def test_thresholds_below_the_screening_range_take_the_float64_path():
    """τ below 2^-100 (where the screening's products could underflow) runs the float64 path on every row, and an
    entry 80 below the maximum is then selected by its exact indicator."""
    z = np.array([[0.0, -90.0, 3.0]], dtype=np.float32)
    allowed = np.ones((1, 3), dtype=bool)
    tau = LOWEST_TAU * 2.0**-40  # the indicator of -90 is about 7e-39, 2^-127
    screened, plain, unproved = _masks("strict", z, allowed, tau)
    np.testing.assert_array_equal(screened, plain)
    assert plain[0, 1] and unproved == 0


def test_attention_rows_are_decided_by_the_screening():
    """On attention-like rows (the benchmark's instance, smaller) the screening proves all but at most 1 % of the
    rows (those with an indicator within its ~6·10^-5 of τ: two of 512 for strict): the fast path is the one that
    runs, and its mask is the float64 path's."""
    from lampnum.bench.lamp import attention_heads

    q, k = attention_heads(2, 256, 64, seed=3)
    z = np.ascontiguousarray((q @ np.swapaxes(k, -1, -2)).reshape(-1, 256) / np.float32(8.0))
    allowed = np.tri(256, dtype=bool)
    for rule, tau in (("strict", 0.0066), ("relaxed", 0.48), ("length", 0.37), ("bound", 1e-4)):
        beta = 0.01 * np.abs(z.astype(np.float64)) + 1e-3 if rule == "bound" else None
        screened, plain, unproved = _masks(rule, z, allowed, tau, beta, length_ref=128.0)
        np.testing.assert_array_equal(screened, plain)
        assert 0 < screened.sum() < allowed.sum() * 2
        assert unproved <= 5


@pytest.mark.parametrize("rule", ["strict", "bound"])
def test_thresholds_at_random_indicators_of_random_rows(rule):
    """200 random rows, τ at the float64 indicator of a random entry: the float32 indicator differs from it by
    about 10^-7 relative, so without its error bound the screening would decide about half of these rows wrong
    (checked by setting the bound to zero: 101 of 200 wrong). With it, each such row is sent to the float64 path
    and the masks agree."""
    rng = np.random.default_rng(1)
    unproved_rows = 0
    for _ in range(200):
        z = (rng.standard_normal((1, 8)) * 3).astype(np.float32)
        beta = rng.random((1, 8)) if rule == "bound" else None
        ind = _indicators64(rule, z[0], None if beta is None else beta[0])
        tau = ind[int(rng.integers(0, 8))]
        screened, plain, unproved = _masks(rule, z, np.ones((1, 8), dtype=bool), tau, beta)
        np.testing.assert_array_equal(screened, plain)
        unproved_rows += unproved
    assert unproved_rows >= 150


EXTREME32 = st.one_of(
    FLOAT32,
    st.sampled_from([np.float32(3.4028235e38), np.float32(-3.4028235e38), np.inf, np.nan, -np.nan]),
)


@settings(max_examples=200)
@given(st.data(), st.sampled_from(RULES), st.integers(1, 24), st.integers(1, 24))
def test_causal_rows_take_the_dense_pass_and_match_the_float64_path(data, rule, n, rows):
    """Under a causal mask every row is a dense prefix, so the screening reads it with its branch-free pass (one
    integer minimum and maximum per entry); a row holding ±inf or NaN must fall back to the classifying pass:
    −inf entries are never selected and the masks agree with the float64 path; NaN or +inf on a valid entry raise
    on both paths, and the same entries beyond the causal prefix change nothing."""
    values = data.draw(st.lists(EXTREME32, min_size=rows * n, max_size=rows * n))
    z = np.array(values, dtype=np.float32).reshape(rows, n)
    allowed = np.tri(rows, n, dtype=bool)
    z[~allowed] = data.draw(st.sampled_from([np.nan, np.inf, 0.0]))  # outside the prefix: never read as a score
    beta = None
    if rule == "bound":
        beta = np.array(data.draw(st.lists(st.floats(0.0, 1e3), min_size=rows * n, max_size=rows * n))
                        ).reshape(rows, n)  # fmt: skip
    tau = data.draw(st.floats(0.0, 1.0) if rule in ("relaxed", "length") else st.floats(0.0, 10.0))
    invalid = allowed & (np.isnan(z) | (z == np.inf))
    if invalid.any():
        for screening in (True, False):
            with pytest.raises(ValueError, match=f"NaN or \\+inf on {int(invalid.sum())} valid"):
                kernels.fused_select_recompute(rule, z, allowed, tau, 4.0, _EMPTY3, _EMPTY3, _NO_INDEX, _NO_INDEX,
                                               1.0, bound=beta, screening=screening)  # fmt: skip
        return
    screened, plain, _ = _masks(rule, z, allowed, tau, beta)
    np.testing.assert_array_equal(screened, plain)
    assert not (screened & ~allowed).any() and not (screened & (z == -np.inf)).any()


def test_dense_prefixes_of_masks():
    """A row is dense when it is True up to its last True entry (an empty row is): causal rows are, a row with a
    hole is not; checked against numpy on random masks."""
    rng = np.random.default_rng(5)
    for allowed in (np.tri(6, 9, dtype=bool), rng.random((50, 7)) < 0.7, np.zeros((2, 3), dtype=bool)):
        span = kernels.spans(allowed)
        want = [bool(allowed[m, : span[m]].all()) for m in range(allowed.shape[0])]
        assert kernels.dense_prefixes(allowed, span).tolist() == want
    holes = np.array([[True, False, True], [True, True, False]])
    assert kernels.dense_prefixes(holes, kernels.spans(holes)).tolist() == [False, True]


@given(st.integers(1, 6), st.sampled_from([1, 7, 8, 16, 24, 33]), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_spans_against_numpy(rows, n, density, seed):
    """One past the last True of each row (0 for none): rows of whole words (n a multiple of 8, read eight
    entries at a time) and of partial ones, sparse masks with runs of empty words, and causal ones."""
    rng = np.random.default_rng(seed)
    for allowed in (rng.random((rows, n)) < density * density, np.tri(rows, n, n - rows, dtype=bool)):
        want = [int(np.flatnonzero(row)[-1]) + 1 if row.any() else 0 for row in allowed]
        assert kernels.spans(allowed).tolist() == want


def test_tiny_entry_with_a_huge_weight_is_not_screened_away():
    """An entry 80.5 below the row maximum (its float32 exponential is cut to 0) whose weight is large enough for
    its indicator, 2·(e^-80.5/2)·80000 ≈ 8.8e-31, to exceed τ = 2^-100: the float64 path selects it; the
    screening's prefilter must keep it and then leave the row to float64, never decide it from the 0 (the two
    maxima, p = 1/2 each, are provable on their own)."""
    z = np.array([[80080.5, 80080.5, 80000.0]], dtype=np.float32)
    allowed = np.ones((1, 3), dtype=bool)
    screened, plain, unproved = _masks("strict", z, allowed, LOWEST_TAU)
    assert plain.tolist() == [[True, True, True]]
    assert np.array_equal(screened, plain) and unproved == 1
