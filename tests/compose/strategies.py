"""Hypothesis strategies for the composition tests: adversarial inputs ẑ, error bounds β, and points of the box."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import lampnum as ln

Z_KINDS = ["normal", "wide", "one_hot", "equal", "tiny", "huge", "integers"]


def make_rows(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    if kind == "normal":
        z = rng.standard_normal(shape)
    elif kind == "wide":  # attention-like scores with a large spread
        z = rng.standard_normal(shape) * 8
    elif kind == "one_hot":  # one dominant score per row: softmax near 1 and near 0
        z = rng.standard_normal(shape)
        z[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] += 40
    elif kind == "equal":
        z = np.full(shape, rng.choice([0.0, 1.5, -3.0]))
    elif kind == "tiny":
        z = rng.standard_normal(shape) * 1e-6
    elif kind == "huge":  # large magnitudes (exp stays finite in float64)
        z = rng.standard_normal(shape) * 150
    else:
        z = rng.integers(-4, 5, shape).astype(np.float64)
    return z


@st.composite
def inputs(draw: st.DrawFn, max_n: int = 10, kinds: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ẑ, β): a few rows of length ≤ max_n, β absolute, relative to |ẑ| or random per component (some zeros)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, max_n)))
    z = make_rows(rng, shape, draw(st.sampled_from(kinds or Z_KINDS)))
    scale = 10.0 ** draw(st.integers(-8, -1))
    beta_kind = draw(st.sampled_from(["constant", "relative", "random"]))
    if beta_kind == "constant":
        beta = np.full(shape, scale)
    elif beta_kind == "relative":
        beta = np.abs(z) * scale + scale * 1e-3
    else:
        beta = rng.uniform(0, scale, shape) * (rng.uniform(size=shape) < 0.8)
    return z, beta


def into_box(z_hat: np.ndarray, beta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """z moved toward ẑ (one ulp at a time) until |z − ẑ| ≤ β holds exactly, entry by entry."""
    z = np.array(z, dtype=np.float64)
    for index in np.ndindex(z.shape):
        while abs(Fraction(float(z[index])) - Fraction(float(z_hat[index]))) > Fraction(float(beta[index])):
            z[index] = np.nextafter(z[index], z_hat[index])
    return z


def box_points(rng: np.random.Generator, z_hat: np.ndarray, beta: np.ndarray) -> list[np.ndarray]:
    """Points z of the box: random, random corners, and each row's all-plus and all-minus corners."""
    points = [z_hat - rng.uniform(-1, 1, z_hat.shape) * beta, z_hat - rng.choice([-1.0, 1.0], z_hat.shape) * beta,
              z_hat + beta, z_hat - beta]  # fmt: skip
    return [into_box(z_hat, beta, p) for p in points]


def extremal_corner(z_hat: np.ndarray, beta: np.ndarray, i: int, sign: float) -> np.ndarray:
    """z = ẑ + sign·β at component i and ẑ − sign·β elsewhere (per row): where softmax_i moves most."""
    z = z_hat - sign * beta
    z[..., i] = z_hat[..., i] + sign * beta[..., i]
    return into_box(z_hat, beta, z)


FORMATS = [ln.format(name) for name in ("bf16", "fp16", "e4m3", "e5m2")]


@st.composite
def formats(draw: st.DrawFn) -> ln.Format:
    if draw(st.booleans()):
        return draw(st.sampled_from(FORMATS))
    return ln.Format(p=draw(st.integers(3, 24)), emax=draw(st.sampled_from([15, 127])), subnormals=draw(st.booleans()))


def examples(default: int) -> int:
    """``default`` hypothesis examples under the default profile, scaled with ``--hypothesis-profile`` (thorough)."""
    return max(10, settings.default.max_examples * default // 100)
