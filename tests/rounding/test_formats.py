"""The format catalogue against the published standards (IEEE 754-2019, OCP 8-bit FP 1.0, OCP MX 1.0) and ml_dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lampnum as ln

# name: (max, smallest normal, smallest subnormal, eps, bits) as published
PUBLISHED = {
    "fp64": (np.finfo(np.float64).max, 2.0**-1022, 2.0**-1074, 2.0**-52, 64),
    "fp32": (np.finfo(np.float32).max.item(), 2.0**-126, 2.0**-149, 2.0**-23, 32),
    "tf32": ((2 - 2.0**-10) * 2.0**127, 2.0**-126, 2.0**-136, 2.0**-10, 19),
    "bf16": ((2 - 2.0**-7) * 2.0**127, 2.0**-126, 2.0**-133, 2.0**-7, 16),
    "fp16": (65504.0, 2.0**-14, 2.0**-24, 2.0**-10, 16),
    "e4m3": (448.0, 2.0**-6, 2.0**-9, 2.0**-3, 8),
    "e5m2": (57344.0, 2.0**-14, 2.0**-16, 2.0**-2, 8),
    "e4m3fnuz": (240.0, 2.0**-7, 2.0**-10, 2.0**-3, 8),
    "e5m2fnuz": (57344.0, 2.0**-15, 2.0**-17, 2.0**-2, 8),
    "e2m3": (7.5, 1.0, 0.125, 0.125, 6),
    "e3m2": (28.0, 0.25, 0.0625, 0.25, 6),
    "e2m1": (6.0, 1.0, 0.5, 0.5, 4),
}
ML_DTYPES_NAMES = {
    "bf16": "bfloat16", "e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2", "e4m3fnuz": "float8_e4m3fnuz",
    "e5m2fnuz": "float8_e5m2fnuz", "e2m3": "float6_e2m3fn", "e3m2": "float6_e3m2fn", "e2m1": "float4_e2m1fn",
}  # fmt: skip


def test_catalogue_is_complete() -> None:
    assert set(ln.FORMATS) == set(PUBLISHED)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_numbers(name: str) -> None:
    fmt = ln.format(name)
    maximum, tiny, smallest_subnormal, eps, bits = PUBLISHED[name]
    assert (fmt.max, fmt.tiny, fmt.smallest_subnormal, fmt.eps, fmt.bits) == (
        maximum, tiny, smallest_subnormal, eps, bits,
    )  # fmt: skip
    assert fmt.unit_roundoff == eps / 2


@pytest.mark.parametrize("name", list(ML_DTYPES_NAMES))
def test_against_ml_dtypes_finfo(name: str) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    info = ml_dtypes.finfo(getattr(ml_dtypes, ML_DTYPES_NAMES[name]))
    fmt = ln.format(name)
    assert fmt.max == float(info.max)
    assert fmt.tiny == float(info.smallest_normal)
    assert fmt.smallest_subnormal == float(info.smallest_subnormal)
    assert fmt.eps == float(info.eps)
    assert fmt.bits == info.bits


def test_fp16_against_numpy() -> None:
    info = np.finfo(np.float16)
    fmt = ln.format("fp16")
    assert (fmt.max, fmt.tiny, fmt.smallest_subnormal, fmt.eps) == tuple(
        float(v) for v in (info.max, info.smallest_normal, info.smallest_subnormal, info.eps)
    )


def test_aliases_and_case() -> None:
    assert ln.format("BFloat16") == ln.format("bf16")
    assert ln.format("float8_e4m3fn") == ln.format("e4m3")
    assert ln.format("half") == ln.format("fp16")


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown format 'fp7'.*bf16.*e2m1"):
        ln.format("fp7")
    with pytest.raises(TypeError):
        ln.format(16)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 0, "emax": 10}, "precision p=0"),
        ({"p": 54, "emax": 10}, "precision p=54"),
        ({"p": 8, "emax": 1024}, "emax=1024"),
        ({"p": 8, "emax": 10, "emin": -1023}, "emin=-1023"),
        ({"p": 8, "emax": 10, "emin": 11}, "exceeds emax"),
        ({"p": 8, "emax": 10, "specials": "weird"}, "unknown specials"),
        ({"p": 8, "emax": 10, "overflow": "wrap"}, "unknown overflow"),
        ({"p": 4, "emax": 8, "specials": "fn", "overflow": "inf"}, "no infinity"),
        ({"p": 4, "emax": 2, "specials": "finite", "overflow": "nan"}, "needs a NaN encoding"),
        ({"p": 1, "emax": 8, "specials": "fn"}, "p >= 2"),
    ],
)
def test_impossible_formats_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ln.Format(**kwargs)


def test_type_errors() -> None:
    with pytest.raises(TypeError):
        ln.Format(p=8.0, emax=10)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ln.Format(p=8, emax=10, subnormals=1)  # type: ignore[arg-type]


def test_default_exponent_ranges_follow_the_encoding() -> None:
    assert ln.Format(p=11, emax=15).emin == -14  # IEEE: 1 - emax
    assert ln.Format(p=4, emax=8, specials="fn").emin == -6  # all-ones exponent holds numbers: 2 - emax
    assert ln.Format(p=4, emax=7, specials="fnuz").emin == -7  # bias 2^(w-1): -emax
    assert ln.Format(p=2, emax=2, specials="finite").emin == 0


def test_custom_format_derived_numbers() -> None:
    fmt = ln.Format(p=5, emax=15, subnormals=False)
    assert fmt.smallest_subnormal == fmt.tiny == 2.0**-14
    assert fmt.max == math.ldexp(31, 11)
    assert fmt.bits == 1 + 5 + 4
    assert ln.Format(p=8, emax=100).bits is None  # the range fills no exponent field


def test_contains() -> None:
    fp32 = ln.format("fp32")
    assert fp32.contains(ln.format("bf16")) and fp32.contains(ln.format("e4m3"))
    assert not fp32.contains(ln.format("fp64"))
    assert not ln.format("bf16").contains(ln.format("fp16"))
    assert not ln.format("fp16").contains(ln.format("bf16"))
