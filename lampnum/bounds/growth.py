"""Error growth of one term through a chain of roundings, deterministic and probabilistic; float64 safety margins.

A term x that passes through roundings 1..c (each multiplying it by 1 + δ_i, |δ_i| ≤ u_i) ends as x·Π(1 + δ_i).

Deterministic (Higham 2002, Lemma 3.1, before its last step): |Π(1 + δ_i) − 1| ≤ Π(1 + u_i) − 1.

Probabilistic (a heterogeneous form of Higham & Mary 2019's main theorem, with Connolly, Higham & Mary 2021's mean
independence; derived in ``papers/bounds/README.md`` §3). Let the roundings in R be *random*: E[δ_i | earlier
roundings] has magnitude at most b_i (b_i = 0 under the model; the 53-bit bias of ``sr``), and the others (D) be
bounded only deterministically. With φ_i = log(1 + δ_i) ∈ [log(1 − u_i), log(1 + u_i)] the centred sum
Σ_R (φ_i − E[φ_i | past]) is a martingale whose increments lie in intervals of width 2·atanh(u_i), so by the
Azuma–Hoeffding inequality, for every λ ≥ 0,

    P( |Σ_R φ_i| ≥ λ·σ + μ ) ≤ 2·exp(−λ²/2),   σ² = Σ_R atanh(u_i)²,   μ = Σ_R (b_i − log(1 − u_i) − u_i),

because |E[φ_i | past]| ≤ b_i + Σ_{j≥2} u_i^j/j = b_i − log(1 − u_i) − u_i. Hence, with probability ≥ 1 − 2e^(−λ²/2),

    |Π(1 + δ_i) − 1| ≤ Π_D(1 + u_i) · exp(λσ + μ) − 1.

With one u for all n roundings this is at most Higham & Mary's γ̃_n(λ') for λ = λ'(1 − u) (the same probability),
since (1 − u)·atanh(u) ≤ u and −log(1 − u) − u ≤ u²/(1 − u). The smaller of the two bounds is returned.

The bound evaluation in float64 is made rigorous by :func:`inflate`: every computed non-negative quantity that went
through k float64 roundings is multiplied by 1 + (k + 2)·2^-52 and moved one ulp up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .constants import CONSTANT_MARGIN, Rounding

__all__ = ["Factor", "deterministic_growth", "probabilistic_growth", "inflate", "ETA64", "U64"]

U64 = 2.0**-53
ETA64 = 2.0**-1074  # one float64 underflow (at most half of it, rounded up)


@dataclass(frozen=True)
class Factor:
    """``count`` roundings of kind ``rounding`` that a term passes through (``count``: int or int array, per term)."""

    rounding: Rounding
    count: np.ndarray | int

    @property
    def random(self) -> bool:
        return self.rounding.unbiased is not None


def _expm1_up(x: np.ndarray | float) -> np.ndarray:
    """exp(x) − 1, enlarged to cover its float64 evaluation error (``constants.CONSTANT_MARGIN``); inf on overflow."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = np.expm1(np.asarray(x, dtype=np.float64))
        out = np.where(value == 0.0, 0.0, np.nextafter(value * (1.0 + CONSTANT_MARGIN), np.inf))
    return np.where(np.isnan(out), np.inf, out)


def _log_det(factors: Sequence[Factor]) -> np.ndarray | float:
    total: np.ndarray | float = 0.0
    for factor in factors:
        total = total + np.asarray(factor.count, dtype=np.float64) * math.log1p(factor.rounding.u)
    return total


def deterministic_growth(factors: Sequence[Factor]) -> np.ndarray:
    """Π(1 + u_i)^(count_i) − 1 per term, rounded up (Higham 2002, Lemma 3.1, before its last step)."""
    return _expm1_up(_log_det(factors))


def probabilistic_growth(factors: Sequence[Factor], lam: float, random_kinds: frozenset[str]) -> np.ndarray:
    """The smaller of the deterministic and the probabilistic growth (module docstring), per term, rounded up.

    A factor is treated as random when its ``rounding.unbiased`` is in ``random_kinds`` ({"sr"} for an unconditional
    statement about stochastic rounding, {"sr", "model"} under Higham & Mary's model); the others deterministically.
    Each returned value holds with probability ≥ 1 − 2·exp(−lam²/2).
    """
    det = deterministic_growth(factors)
    fixed = [f for f in factors if f.rounding.unbiased not in random_kinds]
    random = [f for f in factors if f.rounding.unbiased in random_kinds]
    sigma2: np.ndarray | float = 0.0
    mu: np.ndarray | float = 0.0
    for factor in random:
        u = factor.rounding.u
        count = np.asarray(factor.count, dtype=np.float64)
        sigma2 = sigma2 + count * math.atanh(u) ** 2
        mu = mu + count * (factor.rounding.bias - math.log1p(-u) - u)
    prob = _expm1_up(_log_det(fixed) + lam * np.sqrt(sigma2) + mu)
    return np.minimum(det, prob)


def inflate(x: np.ndarray | float, ops: int, underflows: int = 0) -> np.ndarray:
    """An upper bound on the exact value of a non-negative quantity computed in float64 with ≤ ``ops`` roundings.

    A sum of non-negative products evaluated in any order (BLAS, FMA or not) with k terms has at most k + 1 roundings
    per term, so its computed value c satisfies c ≥ exact·(1 − 2^-53)^(k+1) − (underflow); hence exact ≤
    (c + underflows·2^-1074)·(1 + (ops + 3)·2^-52), moved one ulp up (the extra 3 cover this evaluation; Higham
    2002, Lemma 3.1, and Ch. 2 for underflow: additions are exact there, each product errs by at most 2^-1075).
    A computed array zero becomes the smallest subnormal (an upper bound all the same).
    """
    value = np.asarray(x, dtype=np.float64)
    if underflows:
        value = value + underflows * ETA64
    out = value * (1.0 + (ops + 3) * 2.0**-52)
    if out.ndim == 0:
        return np.nextafter(out, np.inf) if out != 0.0 else out
    return np.nextafter(out, np.inf, out=out)
