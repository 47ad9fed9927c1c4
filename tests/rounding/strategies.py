"""Hypothesis strategies shared by the rounding tests: random formats and inputs across their whole range."""

from __future__ import annotations

import math

from hypothesis import strategies as st

import lampnum as ln


@st.composite
def formats(draw: st.DrawFn, max_p: int = 53) -> ln.Format:
    """Random valid formats: p in 1..max_p, emax 1..1023, every special-value encoding and overflow policy."""
    specials = draw(st.sampled_from(["ieee", "fn", "fnuz", "finite"]))
    p = draw(st.integers(2 if specials == "fn" else 1, max_p))
    emax = draw(st.integers(1, 1023))
    emin = draw(st.one_of(st.none(), st.integers(max(-1022, -emax - 30), emax)))
    overflow = draw(
        st.sampled_from({"ieee": ["inf", "saturate", "nan"], "fn": ["nan", "saturate"], "fnuz": ["nan", "saturate"],
                         "finite": ["saturate"]}[specials])  # fmt: skip
    )
    if emin is not None and emin < -1022:
        emin = -1022
    try:
        return ln.Format(p=p, emax=emax, emin=emin, subnormals=draw(st.booleans()), specials=specials,
                         overflow=overflow)  # fmt: skip
    except ValueError:  # e.g. emin > emax: fall back to the encoding's default range, clipped to float64's
        default_emin = {"ieee": 1, "fn": 2, "finite": 2, "fnuz": 0}[specials] - emax
        return ln.Format(p=p, emax=emax, emin=max(default_emin, -1022), subnormals=True, specials=specials,
                         overflow=overflow)  # fmt: skip


@st.composite
def values_near(draw: st.DrawFn, fmt: ln.Format) -> float:
    """Floats concentrated where rounding is delicate: around the format's overflow threshold, its subnormal range,
    midpoints at random binades, and anywhere in float64."""
    kind = draw(st.sampled_from(["any", "overflow", "subnormal", "midpoint", "tiny"]))
    sign = draw(st.sampled_from([1.0, -1.0]))
    if kind == "any":
        return draw(st.floats(allow_nan=True, allow_infinity=True))
    if kind == "overflow":
        return sign * fmt.max * draw(st.floats(0.999, 1.001))
    if kind == "subnormal":
        return sign * fmt.tiny * draw(st.floats(0.0, 1.01))
    if kind == "tiny":
        return sign * fmt.smallest_subnormal * draw(st.floats(0.0, 2.0))
    exponent = draw(st.integers(max(fmt.emin - fmt.p, -1074), min(fmt.emax, 1023)))
    significand = draw(st.integers(0, (1 << fmt.p) - 1))
    midpoint = math.ldexp(2 * significand + 1, exponent - fmt.p)
    if math.isinf(midpoint):
        return sign * fmt.max
    nudge = draw(st.sampled_from([0, 1, -1]))
    value = math.nextafter(midpoint, math.inf * nudge) if nudge else midpoint
    return sign * value
