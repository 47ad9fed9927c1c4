"""Bad input gives clear errors: τ outside a rule's range, NaN scores, unknown rules, misused parameters."""

from __future__ import annotations

import numpy as np
import pytest

import lampnum.lamp as lamp

Z = np.array([[1.0, 0.5, -np.inf], [0.0, 2.0, 1.0]])


@pytest.mark.parametrize(
    "rule,tau",
    [
        ("mass", 0.99),
        ("mass", 2.01),
        ("strict", -0.1),
        ("relaxed", 1.5),
        ("relaxed", -0.1),
        ("length", 1.01),
        ("bound", -1.0),
        ("strict", float("nan")),
        ("mass", float("inf")),
    ],
)
def test_tau_out_of_range(rule, tau):
    extra = {"bound": np.ones_like(Z)} if rule == "bound" else {}
    with pytest.raises(ValueError, match="tau must lie in"):
        lamp.select(rule, Z, tau=tau, **extra)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_scores(bad):
    z = Z.copy()
    z[1, 1] = bad
    with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else r"\+inf"):
        lamp.select("strict", z, tau=0.1)


def test_nan_outside_the_causal_mask_is_ignored():
    z = Z.copy()
    z[1, 2] = np.nan
    causal = np.array([True, True, False])
    assert lamp.select("all", z, causal=causal).tolist() == [[True, True, False], [True, True, False]]


def test_unknown_rule_and_indicator():
    with pytest.raises(ValueError, match="unknown LAMP rule 'masss'"):
        lamp.select("masss", Z, tau=1.5)
    with pytest.raises(ValueError, match="unknown indicator"):
        lamp.select("top_mu", Z, mu=1, indicator="entropy")


@pytest.mark.parametrize(
    "rule,kwargs,message",
    [
        ("mass", {}, "needs tau"),
        ("mass", {"tau": 1.5, "mu": 2}, "does not use mu"),
        ("none", {"tau": 1.5}, "does not use tau"),
        ("bound", {"tau": 0.1}, "needs bound"),
        ("strict", {"tau": 0.1, "bound": np.ones((2, 3))}, "does not use bound"),
        ("top_mu", {"mu": 1, "bound": np.ones((2, 3))}, "does not use bound"),
        ("top_mu", {"mu": 1, "indicator": "bound"}, "needs bound"),
        ("random", {"count": 1}, "needs rng"),
        ("random", {"rng": 1}, "needs count"),
        ("relaxed", {"tau": 0.5, "probs": np.ones((2, 3))}, "does not use probs"),
    ],
)
def test_parameter_set_of_each_rule(rule, kwargs, message):
    with pytest.raises(TypeError, match=message):
        lamp.select(rule, Z, **kwargs)


@pytest.mark.parametrize(
    "rule,kwargs",
    [
        ("top_mu", {"mu": -1}),
        ("top_mu", {"mu": 1.5}),
        ("budget", {"rate": 1.5}),
        ("length", {"tau": 0.5, "length_ref": 0}),
        ("random", {"count": -1, "rng": 0}),
        ("random", {"count": np.ones(5, dtype=int), "rng": 0}),
        ("strict", {"tau": 0.1, "probs": np.full((2, 3), 1.5)}),
        ("bound", {"tau": 0.1, "bound": -np.ones((2, 3))}),
        ("bound", {"tau": 0.1, "bound": np.full((2, 3), np.inf)}),
        ("bound", {"tau": 0.1, "bound": np.ones(4)}),
        ("all", {"causal": np.ones(4, dtype=bool)}),
    ],
)
def test_bad_values(rule, kwargs):
    with pytest.raises(ValueError):
        lamp.select(rule, Z, **kwargs)


@pytest.mark.parametrize(
    "args,kwargs",
    [
        (("all", np.array([["a", "b"]])), {}),
        (("all", Z), {"causal": np.ones(3)}),
        (("random", Z), {"count": 1.5, "rng": 0}),
        (("random", Z), {"count": 1, "rng": "seed"}),
        (("strict", Z), {"tau": "0.1"}),
    ],
)
def test_bad_types(args, kwargs):
    with pytest.raises(TypeError):
        lamp.select(*args, **kwargs)


def test_scalar_scores():
    with pytest.raises(ValueError, match="at least one axis"):
        lamp.select("all", np.float64(1.0))


def test_bound_is_checked_on_valid_entries_only():
    """The bound rule's check reads the bound where the entry is valid (causal, score above −inf): garbage
    elsewhere is ignored, a bad value on a valid entry is named."""
    z = np.zeros((2, 40, 40))
    z[1, 30, 3] = -np.inf
    causal = np.tri(40, dtype=bool)
    beta = np.ones(z.shape)
    beta[:, 2, 10] = np.nan  # above the diagonal: not valid
    beta[1, 30, 3] = -5.0  # its score is −inf: not valid
    lamp.select("bound", z, tau=0.1, bound=beta, causal=causal)
    beta[1, 39, 7] = -0.25
    with pytest.raises(ValueError, match="bound must lie in .* got -0.25"):
        lamp.select("bound", z, tau=0.1, bound=beta, causal=causal)
