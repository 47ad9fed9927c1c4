"""encode/decode: every code of every small format, round trips, and bad codes."""

from __future__ import annotations

import numpy as np
import pytest

import lampnum as ln

from .oracle import grid_of
from .test_exhaustive import FORMATS


@pytest.mark.parametrize("name", list(FORMATS))
def test_decode_every_code(name: str) -> None:
    fmt = FORMATS[name]
    if fmt.bits is None:
        pytest.skip("no storage encoding")
    codes = np.arange(1 << fmt.bits, dtype=np.uint64)
    if not fmt.subnormals:
        fraction = codes & np.uint64((1 << (fmt.p - 1)) - 1)
        exponent_field = (codes >> np.uint64(fmt.p - 1)) & np.uint64((1 << fmt.exponent_bits) - 1)
        codes = codes[(exponent_field != 0) | (fraction == 0)]
    values = ln.decode(codes, fmt)
    finite = values[np.isfinite(values)]
    grid = grid_of(fmt).values
    expected = np.unique(np.concatenate([grid, -grid]))
    assert np.array_equal(np.unique(finite), expected)  # every finite value appears, nothing else
    nan_count = int(np.isnan(values).sum())
    expected_nans = {"ieee": 2 * ((1 << (fmt.p - 1)) - 1), "fn": 2, "fnuz": 1, "finite": 0}[fmt.specials]
    assert nan_count == expected_nans
    assert int(np.isinf(values).sum()) == (2 if fmt.specials == "ieee" else 0)
    # an infinite input becomes the overflow value (±max in a saturating IEEE format, as in OCP's saturation mode)
    keep = ~np.isnan(values) & (np.isfinite(values) | (fmt.overflow == "inf"))
    round_trip = ln.encode(values[keep], fmt)
    np.testing.assert_array_equal(round_trip.astype(np.uint64), codes[keep])


def test_encode_dtypes_and_examples() -> None:
    assert ln.encode([1.0], "e4m3").dtype == np.uint8
    assert ln.encode([1.0], "bf16").tolist() == [0x3F80]
    assert ln.encode([1.0], "fp32").tolist() == [0x3F800000]
    assert ln.encode([1.0], "fp64").dtype == np.uint64
    assert ln.encode([np.nan], "e4m3fnuz").tolist() == [0x80]
    assert ln.encode([np.nan], "bf16").tolist() == [0x7FC0]
    assert ln.encode([-np.inf], "fp16").tolist() == [0xFC00]


def test_encode_rounds_first() -> None:
    assert ln.encode([1.06], "e4m3").tolist() == ln.encode([1.0], "e4m3").tolist()
    assert ln.encode([1.06], "e4m3", "rup").tolist() == ln.encode([1.125], "e4m3").tolist()


def test_bad_codes_and_formats() -> None:
    with pytest.raises(ValueError, match="codes must lie in"):
        ln.decode([256], "e4m3")
    with pytest.raises(ValueError, match="codes must lie in"):
        ln.decode([-1], "e4m3")
    with pytest.raises(TypeError, match="integers"):
        ln.decode([1.0], "e4m3")
    with pytest.raises(ValueError, match="no standard storage encoding"):
        ln.encode([1.0], ln.Format(p=8, emax=100))
    with pytest.raises(ValueError, match="no NaN code"):
        ln.encode([np.nan], "e2m1")
    with pytest.raises(ValueError, match="no subnormals"):
        ln.decode([1], ln.Format(p=5, emax=15, subnormals=False))
