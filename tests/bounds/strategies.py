"""Hypothesis strategies for the bound tests: formats, MatmulSpecs and adversarial data."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import lampnum as ln

NAMED = ["bf16", "fp16", "e4m3", "e5m2"]
MODES = ["rne", "rna", "rtz", "rup", "rdn", "rto", "sr", "sr_eq"]


@st.composite
def formats(draw: st.DrawFn, min_p: int = 3, max_p: int = 24) -> ln.Format:
    """bf16, fp16, e4m3, e5m2, or a custom IEEE-style format with p in min_p..max_p, with or without subnormals."""
    if draw(st.booleans()):
        return ln.format(draw(st.sampled_from(NAMED)))
    p = draw(st.integers(min_p, max_p))
    emax = draw(st.sampled_from([4, 7, 15, 31, 127, 1023]))
    return ln.Format(p=p, emax=emax, subnormals=draw(st.booleans()))


@st.composite
def specs(draw: st.DrawFn, n: int) -> ln.MatmulSpec:
    """Every MatmulSpec feature: input/product/output formats, strict or block accumulation, via fp32, all modes."""
    optional = st.one_of(st.none(), formats())
    block = draw(st.sampled_from([1, 1, 2, 4, 16, 32]))
    return ln.MatmulSpec(
        input=draw(optional),
        product=draw(optional),
        accumulator=draw(formats()),
        block=block,
        block_precision=draw(st.sampled_from(["fp64", "fp32", "bf16"])) if block > 1 else "fp64",
        output=draw(optional),
        mode=draw(st.sampled_from(MODES)),
        via=draw(st.sampled_from([None, None, "fp32"])),
    )


KINDS = ["normal", "cancellation", "dynamic", "equal", "subnormal", "overflow", "sparse", "integers"]


def make_vector(rng: np.random.Generator, n: int, kind: str, fmt: ln.Format | None = None) -> np.ndarray:
    """A length-n float64 vector of the given kind; ``fmt`` places the subnormal and overflow kinds."""
    fmt = fmt or ln.format("bf16")
    if kind == "normal":
        x = rng.standard_normal(n)
    elif kind == "cancellation":  # pairs x, -x(1 + tiny) so the exact sum is tiny compared with Σ|x|
        half = rng.standard_normal((n + 1) // 2)
        x = np.concatenate([half, -half * (1 + 2.0**-20 * rng.standard_normal(half.size))])[:n]
        rng.shuffle(x)
    elif kind == "dynamic":  # magnitudes over ±30 binades
        x = rng.standard_normal(n) * np.exp2(rng.uniform(-30, 30, n))
    elif kind == "equal":
        x = np.full(n, rng.choice([1.0, 0.1, -3.0, 2.0**-7]))
    elif kind == "subnormal":  # around the format's normal threshold 2^emin
        x = rng.standard_normal(n) * fmt.tiny * rng.uniform(0, 2, n)
    elif kind == "overflow":  # products whose sum approaches max
        x = rng.uniform(0.3, 1.0, n) * math.sqrt(fmt.max / max(n, 1)) * rng.choice([-1.0, 1.0], n)
    elif kind == "sparse":
        x = rng.standard_normal(n) * (rng.uniform(size=n) < 0.1)
    elif kind == "integers":  # small integers: many exact operations and ties
        x = rng.integers(-8, 9, n).astype(np.float64)
    else:
        raise ValueError(kind)
    return np.asarray(x, dtype=np.float64)


@st.composite
def vectors(draw: st.DrawFn, n: int, fmt: ln.Format | None = None, kind: str | None = None) -> np.ndarray:
    """A length-n vector of a drawn (or given) kind from a drawn seed."""
    kind = kind or draw(st.sampled_from(KINDS))
    return make_vector(np.random.default_rng(draw(st.integers(0, 2**32 - 1))), n, kind, fmt)


def examples(default: int) -> int:
    """``default`` hypothesis examples under the default profile, scaled with ``--hypothesis-profile`` (thorough)."""
    return max(10, settings.default.max_examples * default // 100)
