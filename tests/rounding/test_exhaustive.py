"""Exhaustive rounding checks for every catalogue format of <= 16 bits and several custom formats.

Inputs: every representable value, every midpoint between neighbours (also between max and the first point beyond it),
and one ulp of the input dtype either side of every midpoint, both signs, zeros, infinities and NaN; every
deterministic mode; float64 and float32 inputs. Expected results come from :mod:`tests.rounding.oracle`, which
enumerates the format from integers and applies each mode by its definition (no lampnum code). A sample is also checked
against the exact reference, so the reference itself is pinned by the oracle.
"""

from __future__ import annotations

import numpy as np
import pytest

import lampnum as ln
from lampnum.rounding.reference import round_reference

from .oracle import exhaustive_inputs, grid_of, oracle_round

DETERMINISTIC = ["rne", "rna", "rtz", "rup", "rdn", "rto"]
SMALL_CATALOGUE = [name for name, fmt in ln.FORMATS.items() if fmt.bits is not None and fmt.bits <= 16]
CUSTOM = {
    "p5_emax15": ln.Format(p=5, emax=15),
    "p5_no_subnormals": ln.Format(p=5, emax=15, subnormals=False),
    "p3_saturate": ln.Format(p=3, emax=7, overflow="saturate"),
    "p1_powers_of_two": ln.Format(p=1, emax=6, specials="finite"),
    "p4_fn_no_subnormals": ln.Format(p=4, emax=8, specials="fn", subnormals=False),
    "p6_fnuz_saturate": ln.Format(p=6, emax=9, specials="fnuz", overflow="saturate"),
    "p2_wide": ln.Format(p=2, emax=200, emin=-300),
}
FORMATS = {name: ln.format(name) for name in SMALL_CATALOGUE} | CUSTOM


def same(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Elementwise bit-level agreement of float results: equal with equal sign bits, or both NaN."""
    both_nan = np.isnan(actual) & np.isnan(expected)
    return both_nan | ((actual == expected) & (np.signbit(actual) == np.signbit(expected)))


def assert_same(actual: np.ndarray, expected: np.ndarray, inputs: np.ndarray, label: str) -> None:
    ok = same(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64))
    if not ok.all():
        bad = np.flatnonzero(~ok)[:5]
        raise AssertionError(
            f"{label}: {int((~ok).sum())} mismatches, e.g. inputs {inputs[bad].tolist()} -> "
            f"{np.asarray(actual)[bad].tolist()} expected {np.asarray(expected)[bad].tolist()}"
        )


def test_catalogue_has_the_small_formats() -> None:
    assert set(SMALL_CATALOGUE) == {"bf16", "fp16", "e4m3", "e5m2", "e4m3fnuz", "e5m2fnuz", "e2m3", "e3m2", "e2m1"}


@pytest.mark.parametrize("name", list(FORMATS))
@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_exhaustive_float64(name: str, mode: str) -> None:
    fmt = FORMATS[name]
    grid = grid_of(fmt)
    inputs = exhaustive_inputs(grid, np.float64)
    assert_same(ln.round(inputs, fmt, mode), oracle_round(inputs, grid, mode, fmt), inputs, f"{name} {mode}")


@pytest.mark.parametrize("name", list(FORMATS))
@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_exhaustive_float32(name: str, mode: str) -> None:
    fmt = FORMATS[name]
    if not ln.format("fp32").contains(fmt):
        pytest.skip("format values are not all float32 values")
    grid = grid_of(fmt)
    inputs = exhaustive_inputs(grid, np.float32)
    result = ln.round(inputs, fmt, mode)
    assert result.dtype == np.float32
    assert_same(result, oracle_round(inputs.astype(np.float64), grid, mode, fmt), inputs, f"{name} {mode} float32")


@pytest.mark.parametrize("name", ["bf16", "e4m3", "e5m2fnuz", "e2m1", "p5_no_subnormals", "p1_powers_of_two"])
@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_reference_agrees_with_oracle(name: str, mode: str) -> None:
    fmt = FORMATS[name]
    grid = grid_of(fmt)
    inputs = exhaustive_inputs(grid, np.float64)
    sample = np.random.default_rng(7).choice(inputs, size=min(1500, inputs.size), replace=False)
    sample = np.concatenate([sample, inputs[-6:]])  # the specials
    reference = np.array([round_reference(float(v), fmt, mode) for v in sample])
    assert_same(reference, oracle_round(sample, grid, mode, fmt), sample, f"reference {name} {mode}")


@pytest.mark.parametrize("name", list(FORMATS))
def test_stochastic_modes_pick_a_neighbour(name: str) -> None:
    """sr and sr_eq return x itself when representable, else one of its two neighbours (rdn/rup results)."""
    fmt = FORMATS[name]
    grid = grid_of(fmt)
    inputs = exhaustive_inputs(grid, np.float64)
    down, up = oracle_round(inputs, grid, "rdn", fmt), oracle_round(inputs, grid, "rup", fmt)
    for mode in ("sr", "sr_eq"):
        result = ln.round(inputs, fmt, mode, rng=3)
        ok = same(result, down) | same(result, up)
        # beyond max, the upper neighbour is the overflow value in the direction of infinity
        overflow_value = {"inf": np.inf, "saturate": grid.max, "nan": np.nan}[fmt.overflow]
        ok |= same(result, np.copysign(overflow_value, inputs))
        assert ok.all(), (name, mode, inputs[~ok][:5], result[~ok][:5])
