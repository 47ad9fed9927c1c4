"""Every rule's mask against an independent per-row implementation (lamp_reference), on random rows with ties,
−inf
entries, masked entries and length-1 rows; the mass rule's guarantee A(S) <= τ as a property."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import lampnum.lamp as lamp

from . import lamp_reference as ref

# A few values shared between entries give ties; −inf gives invalid entries; the rest is continuous.
ELEMENTS = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 2.5, -math.inf]),
    st.floats(-30.0, 30.0, allow_nan=False, allow_infinity=False),
)


@st.composite
def score_arrays(draw, max_n: int = 9):
    """(scores, causal): shape (a, b, n) with n >= 1 (n = 1 rows included), causal a random boolean mask or
    None."""
    a, b = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    n = draw(st.integers(1, max_n))
    values = draw(st.lists(ELEMENTS, min_size=a * b * n, max_size=a * b * n))
    scores = np.array(values, dtype=np.float64).reshape(a, b, n)
    causal = None
    if draw(st.booleans()):
        bits = draw(st.lists(st.booleans(), min_size=b * n, max_size=b * n))
        causal = np.array(bits, dtype=bool).reshape(b, n)  # broadcast over the first axis
    return scores, causal


def _probs(scores, causal):
    valid = ref.valid_of(scores, causal)
    return valid, ref.softmax(scores, valid)


@given(score_arrays(), st.floats(1.0, 2.0))
@example((np.array([[[3.0]]]), None), 1.0)  # a length-1 row: A(∅) = 0, nothing selected
@example((np.array([[[1.0, 1.0, 1.0, -np.inf]]]), None), 1.2)  # ties
def test_mass_matches_reference(case, tau):
    scores, causal = case
    valid, probs = _probs(scores, causal)
    got = lamp.select("mass", scores, tau=tau, causal=causal, probs=probs)
    np.testing.assert_array_equal(got, ref.mass(probs, valid, tau))


@given(score_arrays(), st.floats(0.0, 20.0))
@example((np.array([[[1.0, 1.0]]]), None), 0.5)  # indicators exactly 2·½·½·1 = τ: not selected (strict >)
def test_strict_matches_reference(case, tau):
    scores, causal = case
    valid, probs = _probs(scores, causal)
    got = lamp.select("strict", scores, tau=tau, causal=causal, probs=probs)
    np.testing.assert_array_equal(got, ref.above(ref.strict_indicator(scores, probs, valid), valid, tau))


@given(score_arrays(), st.floats(0.0, 1.0), st.data())
def test_bound_matches_reference(case, tau, data):
    scores, causal = case
    valid, probs = _probs(scores, causal)
    beta = np.array(data.draw(st.lists(st.floats(0.0, 5.0), min_size=scores.size, max_size=scores.size)))
    beta = beta.reshape(scores.shape)
    got = lamp.select("bound", scores, tau=tau, causal=causal, probs=probs, bound=beta)
    np.testing.assert_array_equal(got, ref.above(ref.bound_indicator(probs, beta, valid), valid, tau))


def _agree_off_boundary(got, want, indicator, valid, tau_rows):
    """Equal except where the reference indicator is within 1e-12 (relative) of its row threshold τ·max: there
    numpy's and libm's exp may round differently and either answer is right."""
    top = np.max(np.where(valid, indicator, 0.0), axis=-1, keepdims=True)
    near = np.abs(indicator - tau_rows * top) <= 1e-12 * top
    np.testing.assert_array_equal(got & ~near, want & ~near)


@given(score_arrays(), st.floats(0.0, 1.0))
@example((np.array([[[0.0, 0.0]]]), None), 0.0)  # all indicators 0: nothing is above 0·max
def test_relaxed_matches_reference(case, tau):
    scores, causal = case
    valid = ref.valid_of(scores, causal)
    ind = ref.relaxed_indicator(scores, valid)
    got = lamp.select("relaxed", scores, tau=tau, causal=causal)
    _agree_off_boundary(got, ref.relative_above(ind, valid, lambda ok: tau), ind, valid, tau)


@given(score_arrays(), st.floats(0.0, 1.0), st.sampled_from([None, 4, 16.0, 1024]))
def test_length_matches_reference(case, tau, length_ref):
    scores, causal = case
    valid = ref.valid_of(scores, causal)
    ind = ref.relaxed_indicator(scores, valid)
    of_row = ref.length_tau(tau, 1024 if length_ref is None else length_ref)
    tau_rows = np.array([[of_row(valid[i].tolist())] for i in np.ndindex(valid.shape[:-1])]).reshape(
        (*valid.shape[:-1], 1)
    )
    got = lamp.select("length", scores, tau=tau, causal=causal, length_ref=length_ref)
    _agree_off_boundary(got, ref.relative_above(ind, valid, of_row), ind, valid, tau_rows)


def test_length_rule_scales_tau_with_row_length():
    """τ_ℓ = min(1, τ√(L/ℓ)): a row of ℓ = L/4 entries uses 2τ, a row of 4L entries τ/2 (hand-computed)."""
    z = np.zeros((1, 4))
    z[0, :3] = [1.0, 0.0, -1.0]  # indicators 1, 0, e^-2 = 0.135
    z[0, 3] = -np.inf
    # ℓ = 3, L = 12: τ_ℓ = τ·2; with τ = 0.06 the threshold is 0.12 < 0.135, with τ = 0.07 it is 0.14 > 0.135.
    assert lamp.select("length", z, tau=0.06, length_ref=12).tolist() == [[True, False, True, False]]
    assert lamp.select("length", z, tau=0.07, length_ref=12).tolist() == [[True, False, False, False]]
    assert lamp.select("length", z, tau=0.6, length_ref=12).tolist() == [
        [False, False, False, False]
    ]  # τ_ℓ = 1


@given(
    score_arrays(max_n=40), st.integers(0, 10), st.sampled_from(["strict", "bound", "probability"]), st.data()
)
def test_top_mu_matches_reference(case, mu, indicator, data):
    scores, causal = case
    valid, probs = _probs(scores, causal)
    beta = None
    if indicator == "bound":
        beta = np.array(
            data.draw(
                st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=scores.size, max_size=scores.size)
            )
        ).reshape(scores.shape)
        ind = ref.bound_indicator(probs, beta, valid)
    elif indicator == "strict":
        ind = ref.strict_indicator(scores, probs, valid)
    else:
        ind = np.where(valid, probs, 0.0)
    got = lamp.select("top_mu", scores, mu=mu, causal=causal, probs=probs, bound=beta, indicator=indicator)
    want = ref.top_mu(ind, valid, mu)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got.sum(-1), np.minimum(mu, valid.sum(-1)))


def test_top_mu_ties_keep_the_earlier_entry_when_a_larger_one_arrives():
    """Long row, µ = 2: entries 0 and 1 tie, entry 2 is larger; the top two are 2 and 0 (ties by position)."""
    scores = np.array([[1.0, 1.0, 2.0] + [0.0] * 17])
    assert np.flatnonzero(lamp.select("top_mu", scores, mu=2, indicator="probability")[0]).tolist() == [0, 2]


@given(score_arrays(), st.integers(1, 6))
def test_top_mu_by_relaxed_indicator(case, mu):
    scores, causal = case
    valid = ref.valid_of(scores, causal)
    ind = ref.relaxed_indicator(scores, valid)
    live = np.sort(ind[valid])
    # exp rounding may differ between numpy and libm: only compare where distinct indicators are well
    # separated
    assume(np.all((np.diff(live) == 0) | (np.diff(live) > 1e-9 * (1 + live[1:]))))
    got = lamp.select("top_mu", scores, mu=mu, causal=causal, indicator="relaxed")
    np.testing.assert_array_equal(got, ref.top_mu(ind, valid, mu))


@given(score_arrays(), st.floats(0.0, 1.0), st.sampled_from(["strict", "probability"]))
@example((np.array([[[1.0, 1.0, 1.0, 1.0]]]), None), 0.5, "strict")  # all tied: the first two by position
def test_budget_matches_reference(case, rate, indicator):
    scores, causal = case
    valid, probs = _probs(scores, causal)
    ind = ref.strict_indicator(scores, probs, valid) if indicator == "strict" else np.where(valid, probs, 0.0)
    got = lamp.select("budget", scores, rate=rate, causal=causal, probs=probs, indicator=indicator)
    np.testing.assert_array_equal(got, ref.budget(ind, valid, rate))


@given(score_arrays())
def test_none_and_all(case):
    scores, causal = case
    valid = ref.valid_of(scores, causal)
    assert not lamp.select("none", scores, causal=causal).any()
    np.testing.assert_array_equal(lamp.select("all", scores, causal=causal), valid)


@given(score_arrays(), st.integers(0, 10), st.integers(0, 2**32))
def test_random_count_and_validity(case, count, seed):
    scores, causal = case
    valid = ref.valid_of(scores, causal)
    counts = np.full(scores.shape[:-1], count)
    got = lamp.select("random", scores, causal=causal, count=counts, rng=np.random.default_rng(seed))
    assert not (got & ~valid).any()
    np.testing.assert_array_equal(got.sum(-1), np.minimum(count, valid.sum(-1)))
    again = lamp.select("random", scores, causal=causal, count=counts, rng=seed)  # an int seed works too
    np.testing.assert_array_equal(again, lamp.select("random", scores, causal=causal, count=counts, rng=seed))


def test_random_count_per_row_varies():
    """count = other_mask.sum(-1): each row gets its own count."""
    scores = np.zeros((3, 6))
    got = lamp.select("random", scores, count=np.array([0, 2, 9]), rng=1)
    assert got.sum(-1).tolist() == [0, 2, 6]


def test_random_is_uniform_over_valid_subsets():
    """Rows with 5 valid of 8 entries and count 2: all C(5, 2) = 10 subsets equally likely (chi-square, fixed
    seed)."""
    from itertools import combinations

    from scipy.stats import chisquare

    n_rows = 20000
    scores = np.tile(np.array([0.0, -np.inf, 1.0, 2.0, 0.5, 3.0, 0.0, 0.0]), (n_rows, 1))
    causal = np.array([True, True, True, False, True, True, True, False])  # valid: 0, 2, 4, 5, 6
    got = lamp.select("random", scores, causal=causal, count=2, rng=np.random.default_rng(12345))
    subsets = list(combinations([0, 2, 4, 5, 6], 2))
    picked = [tuple(np.flatnonzero(row)) for row in got]
    counts = [picked.count(s) for s in subsets]
    assert sum(counts) == n_rows
    assert chisquare(counts).pvalue > 1e-4


def test_default_probs_are_the_masked_softmax():
    """Without probs=, the rules use the softmax over valid entries (compared with the reference softmax)."""
    rng = np.random.default_rng(3)
    scores = rng.normal(0, 3, (4, 5, 33))
    causal = np.tri(5, 33, 28, dtype=bool)
    valid, probs = _probs(scores, causal)
    from lampnum.lamp._math import masked_softmax

    np.testing.assert_allclose(masked_softmax(scores, valid), probs, rtol=1e-13, atol=1e-300)
    ind = ref.strict_indicator(scores, probs, valid)
    tau = 0.3
    assert not np.any(np.abs(ind - tau) < 1e-9)  # no entry sits on the threshold
    np.testing.assert_array_equal(
        lamp.select("strict", scores, tau=tau, causal=causal), ref.above(ind, valid, tau)
    )
    np.testing.assert_array_equal(
        lamp.select("mass", scores, tau=1.3, causal=causal),
        lamp.select("mass", scores, tau=1.3, causal=causal, probs=probs),
    )


# --- the mass rule's guarantee
# ------------------------------------------------------------------------------------


def _closed_form_amplification(p: list[float], selected: list[bool]) -> float:
    """A(S) = max(1 − 2 min_{i∉S} s_i + Σ_{j∉S} s_j, [S ≠ ∅]·Σ_{j∉S} s_j), 0 when S holds every entry."""
    rest = [v for v, s in zip(p, selected, strict=True) if not s]
    if not rest:
        return 0.0
    outside = math.fsum(rest)
    worst = 1.0 - 2.0 * min(rest) + outside
    return max(worst, outside) if any(selected) else worst


@given(st.lists(st.floats(-8.0, 8.0), min_size=1, max_size=40), st.floats(1.0, 2.0))
def test_mass_guarantee_closed_form(z, tau):
    """After recomputing S, the worst first-order relative amplification A(S) is at most τ."""
    scores = np.array([z])
    mask = lamp.select("mass", scores, tau=tau)[0].tolist()
    p = ref.softmax(scores, np.ones_like(scores, dtype=bool))[0].tolist()
    assert _closed_form_amplification(p, mask) <= tau + 1e-12
    chosen = [v for v, s in zip(p, mask, strict=True) if s]
    if chosen:  # minimality: without its smallest selected entry the bound 2 − 2 s_min − Σ_S s would exceed τ
        assert 2.0 - 2.0 * min(p) - (math.fsum(chosen) - min(chosen)) > tau - 1e-12


@given(st.lists(st.floats(-6.0, 6.0), min_size=1, max_size=9), st.floats(1.0, 2.0))
@example([0.0, 0.0, 0.0], 1.0)
@example([5.0, -5.0], 2.0)
def test_mass_guarantee_by_perturbing_the_softmax(z, tau):
    """The same guarantee measured on the softmax itself: perturb the unselected scores by ±ε at every sign
    vertex and
    take the largest relative change of any probability; it is at most τε to first order (ε = 1e-6)."""
    mask = lamp.select("mass", np.array([z]), tau=tau)[0].tolist()
    eps = 1e-6
    assert ref.worst_relative_change(z, mask, eps) <= tau + 1e-4


def test_mass_hand_example():
    """Probabilities 1/2, 1/4, 1/8, 1/8 (s_min = 1/8): the k-th is selected while (mass before it) < 2 − τ −
    1/4."""
    z = np.log(np.array([[0.5, 0.25, 0.125, 0.125]]))
    assert not lamp.select("mass", z, tau=2.0).any()  # need < 0 - 1/4: nothing
    assert lamp.select("mass", z, tau=1.5).tolist() == [
        [True, False, False, False]
    ]  # masses before: 0 < .25 <= .5
    assert lamp.select("mass", z, tau=1.1).tolist() == [[True, True, False, False]]  # 0, .5 < .65 <= .75


# --- the numpy statement of the row-wise rules and the kernels' exhaustive path -----------------------------


@given(score_arrays(), st.floats(1.0, 2.0), st.floats(0.0, 5.0), st.floats(0.0, 1.0))
def test_numpy_statement_of_the_row_rules(case, tau_mass, tau_strict, tau_relaxed):
    """lampnum.lamp.rules (numpy, vectorised) against the reference, as select's kernels are above."""
    from lampnum.lamp import rules

    scores, causal = case
    valid, probs = _probs(scores, causal)
    np.testing.assert_array_equal(rules.mass(probs, valid, tau_mass), ref.mass(probs, valid, tau_mass))
    strict = ref.strict_indicator(scores, probs, valid)
    np.testing.assert_array_equal(
        rules.threshold(rules.strict_indicator(scores, probs, valid), valid, tau_strict),
        ref.above(strict, valid, tau_strict),
    )
    ind = ref.relaxed_indicator(scores, valid)
    got = rules.relative_threshold(rules.relaxed_indicator(scores, valid), valid, tau_relaxed)
    _agree_off_boundary(got, ref.relative_above(ind, valid, lambda ok: tau_relaxed), ind, valid, tau_relaxed)
    for mu in (0, 1, 3, 20):
        np.testing.assert_array_equal(rules.top_count(strict, valid, mu), ref.top_mu(strict, valid, mu))


@given(score_arrays(), st.integers(0, 10), st.integers(0, 2**32))
def test_random_kernel_equals_numpy_statement(case, count, seed):
    """select("random") makes the same draws as rules.random_count and picks the same entries."""
    from lampnum.lamp import rules

    scores, causal = case
    valid = ref.valid_of(scores, causal)
    got = lamp.select("random", scores, causal=causal, count=count, rng=seed)
    np.testing.assert_array_equal(got, rules.random_count(valid, count, np.random.default_rng(seed)))


@given(score_arrays(max_n=40), st.floats(1.0, 2.0))
def test_mass_kernel_bucketed_and_exhaustive_paths_agree(case, tau):
    """The bucketed search and the full sort of the mass kernel give the same mask (default softmax)."""
    from lampnum.lamp import kernels

    scores, causal = case
    valid = ref.valid_of(scores, causal)
    n = scores.shape[-1]
    rows = np.ascontiguousarray(scores).reshape(-1, n)
    args = ("mass", rows, valid.reshape(-1, n), None, None, tau, 1.0)
    np.testing.assert_array_equal(kernels.row_rule(*args), kernels.row_rule(*args, exhaustive=True))


@pytest.mark.parametrize("rate", [0.0, 0.001, 0.02, 0.3, 1.0])
def test_budget_on_a_large_array_against_a_full_stable_sort(rate):
    """Above 2^16 valid entries the budget cuts at a sampled value first; the mask is still the first k of
    the stable descending order of all valid indicators (many ties: values on a coarse grid)."""
    from fractions import Fraction

    from lampnum.lamp import rules

    rng = np.random.default_rng(7)
    indicator = np.round(rng.exponential(size=(3, 300, 400)), 1)
    valid = rng.random(indicator.shape) < 0.7
    got = rules.budget(indicator, valid, rate)
    positions = np.flatnonzero(valid)
    k = math.floor(Fraction(rate) * positions.size + Fraction(1, 2))
    order = positions[np.argsort(-indicator.reshape(-1)[positions], kind="stable")]
    want = np.zeros(indicator.size, dtype=bool)
    want[order[:k]] = True
    np.testing.assert_array_equal(got.reshape(-1), want)


@given(
    score_arrays(),
    st.sampled_from(["mass", "strict", "relaxed", "length", "bound", "top_mu", "budget", "none", "all"]),
    st.floats(0.0, 1.0),
)
def test_float32_scores_select_as_their_float64_values(case, rule, level):
    """float32 scores are read by the kernels as their exact float64 values (no float64 copy is made): every
    rule's mask is the one of the same values in float64, whose masks the tests above check against the
    reference."""
    scores, causal = case
    scores32 = scores.astype(np.float32)
    params = {
        "mass": {"tau": 1.0 + level},
        "strict": {"tau": 2.0 * level},
        "relaxed": {"tau": level},
        "length": {"tau": level},
        "bound": {"tau": level, "bound": np.abs(scores32.astype(np.float64)) * 0.01},
        "top_mu": {"mu": 1 + int(3 * level)},
        "budget": {"rate": level},
    }.get(rule, {})
    if rule == "bound":
        params["bound"] = np.where(np.isfinite(params["bound"]), params["bound"], 0.0)
    got = lamp.select(rule, scores32, causal=causal, **params)
    want = lamp.select(rule, scores32.astype(np.float64), causal=causal, **params)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "rule,params",
    [("top_mu", {"mu": 1}), ("budget", {"rate": 0.5}), ("strict", {"tau": 0.0}), ("mass", {"tau": 1.0}),
     ("relaxed", {"tau": 0.0}), ("top_mu", {"mu": 2, "indicator": "probability"})],
)  # fmt: skip
def test_a_row_with_no_valid_entry_selects_nothing(rule, params):
    """A row the causal mask empties (a hypothesis find: its softmax sum is 0 and was divided by) selects
    nothing, and the other rows are unaffected."""
    z = np.array([[[0.5, -1.0, 2.0], [0.0, 1.0, 2.0]]])
    causal = np.array([[False, False, False], [False, True, True]])
    got = lamp.select(rule, z, causal=causal, **params)
    alone = lamp.select(rule, z[:, 1:], causal=causal[1:], **params)
    assert not got[0, 0].any()
    assert got[0, 1].tolist() == alone[0, 0].tolist() and alone[0, 0, 2]


@pytest.mark.parametrize("n", [1, 3, 8, 37, 1024])
@pytest.mark.parametrize("rule", ["strict", "bound"])
def test_threshold_one_ulp_either_side_of_the_indicator(rule, n):
    """Rows of equal scores have exact probabilities 1/n, so the indicator is one known float64 number: τ one
    ulp below it selects every entry, τ at it none. The division-free prefilter must not drop an entry that
    the exact comparison keeps, however close to τ."""
    score = 1.7
    z = np.full((2, n), score)
    beta = np.full((2, n), 0.37)
    p = 1.0 / n
    weight = abs(score) if rule == "strict" else 0.37
    indicator = 2.0 * p * (1.0 - p) * weight
    extra = {"bound": beta} if rule == "bound" else {}
    below = lamp.select(rule, z, tau=float(np.nextafter(indicator, 0.0)), **extra)
    at = lamp.select(rule, z, tau=indicator, **extra)
    assert below.all() == (indicator > 0.0) and not at.any()


def test_threshold_one_ulp_below_a_tiny_probability():
    """Probabilities below 2^-54 leave the row's sum at exactly 1, so the prefilter's bound ``2e·(1/Σ)·|z|``
    equals the indicator to the last bit: only its safety margin keeps the entry whose indicator is one ulp
    above τ (an unguarded ``c > τ`` test would be right here too, but ``c > τ(1 + 2^-40)`` would not)."""
    from lampnum.lamp.fast_exp import fast_exp_reference

    z = np.array([[0.0, -40.0, -41.0, -42.0]])
    e = [fast_exp_reference(v) for v in z[0]]
    assert sum(e[1:]) < 2.0**-54
    indicator = [2.0 * p * (1.0 - p) * abs(v) for p, v in zip(e, z[0], strict=True)]
    tau = float(np.nextafter(indicator[1], 0.0))
    assert lamp.select("strict", z, tau=tau).tolist() == [[False, True, False, False]]
    assert not lamp.select("strict", z, tau=indicator[1]).any()
