"""Binary floating-point formats: one frozen record, derived numbers named like ``numpy.finfo``.

A :class:`Format` is the set of numbers ``±M·2^(e-p+1)`` with an integer significand ``0 <= M < 2^p``, an exponent
``emin <= e <= emax`` (``M >= 2^(p-1)`` for normal numbers; ``M < 2^(p-1)`` only at ``e = emin`` and only when the format
has subnormals), together with a *special-value encoding* and an *overflow policy*:

``specials``
    ``"ieee"``   ±0, ±inf and NaN as in IEEE 754 (the all-ones exponent field holds inf and NaN).
    ``"fn"``     finite numbers and NaN only (OCP ``e4m3fn``): the all-ones exponent field holds normal numbers except
                 the all-ones code ``S.1111.111``, which is NaN.
    ``"fnuz"``   finite, NaN, unsigned zero (``e4m3fnuz``, ``e5m2fnuz``): no -0, no inf, NaN is the code ``0x80``.
    ``"finite"`` finite numbers only, no inf and no NaN (OCP MX fp6 ``e2m3``/``e3m2`` and fp4 ``e2m1``).
``overflow``
    What a result beyond ``max`` becomes when the rounding mode sends it to infinity (IEEE 754 §7.4: directed modes
    toward zero never do, they give ``±max``): ``"inf"`` (needs ``specials="ieee"``), ``"saturate"`` (``±max``) or
    ``"nan"`` (needs a NaN encoding). Defaults follow each encoding's standard: ``"inf"`` for IEEE, ``"nan"`` for
    ``fn``/``fnuz`` (as ml_dtypes and the OCP non-saturating conversion), ``"saturate"`` for ``finite``.

The exponent range defaults to the one implied by a standard bias for the encoding: ``emin = 1 - emax`` for IEEE,
``2 - emax`` for ``fn`` and ``finite`` (the all-ones exponent field holds numbers), ``-emax`` for ``fnuz``.
Every value of every format is a float64 value (``p <= 53``, ``-1022 <= emin``, ``emax <= 1023``), which is what lets the
rounding kernels return float64 arrays holding exact format values.

Examples
--------
>>> import lampnum as ln
>>> ln.format("e4m3").max, ln.format("bf16").eps, ln.format("fp16").smallest_subnormal
(448.0, 0.0078125, 5.960464477539063e-08)
>>> ln.Format(p=5, emax=15).unit_roundoff
0.03125
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Format", "format", "FORMATS", "SPECIALS", "OVERFLOW_POLICIES", "FormatParams", "as_format"]

SPECIALS = ("ieee", "fn", "fnuz", "finite")
OVERFLOW_POLICIES = ("inf", "saturate", "nan")

_DEFAULT_EMIN_OFFSET = {"ieee": 1, "fn": 2, "finite": 2, "fnuz": 0}
_DEFAULT_OVERFLOW = {"ieee": "inf", "fn": "nan", "fnuz": "nan", "finite": "saturate"}
# Exponent-field codes the encoding spends beyond the normal exponents emin..emax: IEEE keeps one for zero/subnormals
# and one for inf/NaN; the others keep only the zero/subnormal code.
_EXTRA_EXPONENT_CODES = {"ieee": 2, "fn": 1, "fnuz": 1, "finite": 1}


class FormatParams(NamedTuple):
    """The plain numbers a rounding kernel needs, lowered once from a validated :class:`Format`."""

    precision: int  # p, hidden bit included
    emin: int
    emax: int
    subnormals: bool
    max_value: float  # largest finite value
    overflow_value: float  # what an overflow toward infinity becomes: inf, max or NaN
    inf_value: float  # what an infinite input becomes: inf, max or NaN
    unsigned_zero: bool  # fnuz: -0 becomes +0


@dataclass(frozen=True)
class Format:
    """A binary floating-point format with precision ``p`` (hidden bit included) and exponents ``emin..emax``.

    Parameters are validated at construction; an impossible format raises ``ValueError`` saying why.
    """

    p: int
    emax: int
    emin: int | None = None
    subnormals: bool = True
    specials: str = "ieee"
    overflow: str | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for attr in ("p", "emax"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Format.{attr} must be an int, got {value!r}")
        if self.specials not in SPECIALS:
            raise ValueError(f"unknown specials {self.specials!r}; expected one of {SPECIALS}")
        if self.emin is None:
            object.__setattr__(self, "emin", _DEFAULT_EMIN_OFFSET[self.specials] - self.emax)
        elif isinstance(self.emin, bool) or not isinstance(self.emin, int):
            raise TypeError(f"Format.emin must be an int or None, got {self.emin!r}")
        if self.overflow is None:
            object.__setattr__(self, "overflow", _DEFAULT_OVERFLOW[self.specials])
        if not isinstance(self.subnormals, bool):
            raise TypeError(f"Format.subnormals must be a bool, got {self.subnormals!r}")
        if not 1 <= self.p <= 53:
            raise ValueError(f"precision p={self.p} is outside 1..53 (every format value must be a float64 value)")
        assert self.emin is not None
        if self.emax > 1023:
            raise ValueError(f"emax={self.emax} exceeds float64's 1023")
        if self.emin < -1022:
            raise ValueError(f"emin={self.emin} is below float64's -1022")
        if self.emin > self.emax:
            raise ValueError(f"emin={self.emin} exceeds emax={self.emax}")
        if self.overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"unknown overflow policy {self.overflow!r}; expected one of {OVERFLOW_POLICIES}")
        if self.overflow == "inf" and self.specials != "ieee":
            raise ValueError(f"overflow='inf' needs specials='ieee'; a {self.specials!r} format has no infinity")
        if self.overflow == "nan" and self.specials == "finite":
            raise ValueError("overflow='nan' needs a NaN encoding; a 'finite' format has none")
        if self.specials == "fn" and self.p == 1:
            raise ValueError("specials='fn' needs p >= 2: with p=1 the top binade holds only the NaN code")

    # ----- derived numbers (names as numpy.finfo) -------------------------------------------------------------
    @property
    def unit_roundoff(self) -> float:
        """u = 2^-p: the relative error bound of round-to-nearest in the normal range."""
        return math.ldexp(1.0, -self.p)

    @property
    def eps(self) -> float:
        """Machine epsilon 2^(1-p): the distance from 1 to the next larger number."""
        return math.ldexp(1.0, 1 - self.p)

    @property
    def max(self) -> float:
        """The largest finite number. In an ``fn`` format the all-ones code is NaN, so the top significand is 2^p - 2."""
        top = (1 << self.p) - (2 if self.specials == "fn" else 1)
        return math.ldexp(float(top), self.emax - self.p + 1)

    @property
    def tiny(self) -> float:
        """The smallest positive normal number 2^emin (``numpy.finfo.smallest_normal``)."""
        return math.ldexp(1.0, self.emin)

    smallest_normal = tiny

    @property
    def smallest_subnormal(self) -> float:
        """The smallest positive number: 2^(emin-p+1) with subnormals, else 2^emin."""
        return math.ldexp(1.0, self.emin - self.p + 1) if self.subnormals else self.tiny

    @property
    def has_inf(self) -> bool:
        return self.specials == "ieee"

    @property
    def has_nan(self) -> bool:
        return self.specials != "finite"

    @property
    def has_negative_zero(self) -> bool:
        return self.specials != "fnuz"

    @property
    def exponent_bits(self) -> int | None:
        """Width of the exponent field of the standard storage encoding, or None when the range fills no field."""
        codes = self.emax - self.emin + 1 + _EXTRA_EXPONENT_CODES[self.specials]
        width = codes.bit_length() - 1
        return width if codes == 1 << width else None

    @property
    def bits(self) -> int | None:
        """Storage width 1 + exponent_bits + (p - 1), or None when the format has no standard encoding."""
        width = self.exponent_bits
        return None if width is None else 1 + width + self.p - 1

    @property
    def bias(self) -> int:
        """Exponent bias of the encoding: the stored exponent field of 2^emin is 1."""
        return 1 - self.emin

    def params(self) -> FormatParams:
        """Lower to the plain parameter block the Numba kernels take."""
        overflow_value = {"inf": math.inf, "saturate": self.max, "nan": math.nan}[self.overflow]
        return FormatParams(
            precision=self.p,
            emin=self.emin,
            emax=self.emax,
            subnormals=self.subnormals,
            max_value=self.max,
            overflow_value=overflow_value,
            inf_value=overflow_value,
            unsigned_zero=self.specials == "fnuz",
        )

    def contains(self, other: Format) -> bool:
        """True when every finite value of ``other`` is a value of this format."""
        if other.p > self.p or other.max > self.max:
            return False
        if other.emin >= self.emin:
            return True
        # other reaches below this format's normal range: its quanta must land on this format's subnormal grid
        return self.subnormals and self.emin - self.p <= other.emin - other.p

    def __str__(self) -> str:
        return self.name or self.__repr__()


def _preset(name: str, **kwargs: object) -> Format:
    return Format(name=name, **kwargs)  # type: ignore[arg-type]


FORMATS: dict[str, Format] = {
    fmt.name: fmt  # type: ignore[misc]
    for fmt in (
        _preset("fp64", p=53, emax=1023),
        _preset("fp32", p=24, emax=127),
        _preset("tf32", p=11, emax=127),
        _preset("bf16", p=8, emax=127),
        _preset("fp16", p=11, emax=15),
        _preset("e4m3", p=4, emax=8, specials="fn"),  # OCP e4m3fn: max 448, NaN = S.1111.111
        _preset("e5m2", p=3, emax=15),  # OCP e5m2: IEEE-like, max 57344
        _preset("e4m3fnuz", p=4, emax=7, specials="fnuz"),  # max 240
        _preset("e5m2fnuz", p=3, emax=15, specials="fnuz"),  # max 57344
        _preset("e2m3", p=4, emax=2, specials="finite"),  # OCP MX fp6: max 7.5
        _preset("e3m2", p=3, emax=4, specials="finite"),  # OCP MX fp6: max 28
        _preset("e2m1", p=2, emax=2, specials="finite"),  # OCP MX fp4: max 6
    )
}
_ALIASES = {
    "float64": "fp64", "double": "fp64", "binary64": "fp64",
    "float32": "fp32", "single": "fp32", "binary32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16", "half": "fp16", "binary16": "fp16",
    "e4m3fn": "e4m3", "fp8_e4m3": "e4m3", "float8_e4m3fn": "e4m3",
    "fp8_e5m2": "e5m2", "float8_e5m2": "e5m2",
    "float8_e4m3fnuz": "e4m3fnuz", "float8_e5m2fnuz": "e5m2fnuz",
    "fp6_e2m3": "e2m3", "e2m3fn": "e2m3", "float6_e2m3fn": "e2m3",
    "fp6_e3m2": "e3m2", "e3m2fn": "e3m2", "float6_e3m2fn": "e3m2",
    "fp4": "e2m1", "fp4_e2m1": "e2m1", "e2m1fn": "e2m1", "float4_e2m1fn": "e2m1",
}  # fmt: skip


def format(name: str) -> Format:  # noqa: A001 - the contract's name
    """The catalogue format called ``name`` (fp64 fp32 tf32 bf16 fp16 e4m3 e5m2 e4m3fnuz e5m2fnuz e2m3 e3m2 e2m1).

    Common aliases (``bfloat16``, ``float8_e4m3fn``, ``half`` …) are accepted. An unknown name raises ``ValueError``
    listing the known names.
    """
    if not isinstance(name, str):
        raise TypeError(f"format name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return FORMATS[key]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}") from None


def as_format(fmt: Format | str) -> Format:
    """Accept a :class:`Format` or a catalogue name."""
    if isinstance(fmt, Format):
        return fmt
    if isinstance(fmt, str):
        return format(fmt)
    raise TypeError(f"expected a lampnum.Format or a format name, got {type(fmt).__name__}")
