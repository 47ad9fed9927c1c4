"""The constants of rounding-error analysis: u, η, γ_n, θ_n, and Higham & Mary's probabilistic γ̃_n(λ).

One rounding ``fl`` into a format F (precision p, exponents emin..emax) in a given mode satisfies, for every real x
whose rounding does not overflow (|x| below :attr:`Rounding.threshold`),

    |fl(x) − x| ≤ max(u_m·|x|, η_m) ≤ u_m·|x| + η_m,

with (u = 2^-p is the unit roundoff of round-to-nearest, ``Format.unit_roundoff``)

=====================================  ==============  ============================================================
mode                                   u_m             η_m (absolute error below the normal range 2^emin)
=====================================  ==============  ============================================================
nearest (rne, rna)                     u = 2^-p        half the smallest subnormal 2^(emin-p); without subnormals
                                                       half the flush step, 2^(emin-1)
directed, odd, stochastic              2u = 2^(1-p)    the smallest subnormal 2^(emin-p+1); without subnormals
(rtz, rup, rdn, rto, sr, sr_eq)                        the flush step 2^emin
=====================================  ==============  ============================================================

Derivation (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., Thm 2.2, and Ch. 2 for underflow): in the
binade [2^e, 2^(e+1)), e ≥ emin, the spacing is 2^(e-p+1) ≤ 2^(1-p)|x|; nearest rounding errs by at most half a
spacing (u|x|), every other mode returns one of the two neighbours and errs by less than one spacing (2u|x|). Below
2^emin the spacing is the smallest subnormal 2^(emin-p+1) (with subnormals) or the flush step 2^emin (without: the
neighbours of x are 0 and 2^emin), which gives η_m. ``max(u_m|x|, η_m)`` is valid everywhere because
u_m·2^emin ≥ η_m with subnormals and the binade argument covers |x| ≥ 2^emin.

Overflow: nearest modes never overflow for |x| < max + 2^(emax-p) (half a spacing above max); the other modes never
for |x| ≤ max. Beyond, the result is ±inf, NaN or a saturated ±max and no relative bound holds; bounds in
:mod:`lampnum.bounds` check every intermediate against this threshold and report a possible overflow.

All functions return float64 numbers rounded *upward* (bounds) or *downward* (probabilities), so that using them in a
bound never makes it smaller than the exact mathematical value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal

import numpy as np

from ..formats import Format, as_format
from ..rounding.modes import RoundingMode, as_mode
from ..rounding.reference import SR_RANDOM_BITS

__all__ = [
    "Rounding",
    "rounding",
    "unit_roundoff",
    "underflow_bound",
    "overflow_threshold",
    "gamma",
    "theta",
    "gamma_tilde",
    "probability",
    "lambda_for",
    "NEAREST_MODES",
]

NEAREST_MODES = frozenset({RoundingMode.RNE, RoundingMode.RNA})

#: relative enlargement applied to constants evaluated with float64 transcendental functions (log1p, expm1, exp): it
#: covers their evaluation error (a few ulps, times the condition number ≤ 1 + x of expm1 for arguments x ≤ 710)
CONSTANT_MARGIN = 2.0**-36

Unbiased = Literal["sr", "model"] | None


def _pow2_up(exponent: int) -> float:
    """2^exponent as a float64, rounded up to the smallest subnormal 2^-1074 when it is smaller."""
    return math.ldexp(1.0, max(exponent, -1074))


def _check_size(n: object, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be non-negative, got {n}")
    return int(n)


def _check_u(u: object) -> float:
    if isinstance(u, bool) or not isinstance(u, (int, float, np.floating, np.integer)):
        raise TypeError(f"u must be a real number, got {type(u).__name__}")
    value = float(u)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"u must satisfy 0 <= u < 1, got {value!r}")
    return value


def _fraction_up(value: Fraction) -> float:
    """The smallest float64 >= value (value finite and non-negative)."""
    result = float(value)
    return result if Fraction(result) >= value else math.nextafter(result, math.inf)


def _fraction_down(value: Fraction) -> float:
    result = float(value)
    return result if Fraction(result) <= value else math.nextafter(result, -math.inf)


def up(x: float) -> float:
    """Enlarge a non-negative constant computed with float64 transcendental functions (see ``CONSTANT_MARGIN``)."""
    if math.isnan(x):
        return math.inf
    if x == 0.0:
        return 0.0  # exp(0) − 1, log1p(0), expm1(0) are exact
    return math.nextafter(x * (1.0 + CONSTANT_MARGIN), math.inf)


def _expm1_up(x: float) -> float:
    """exp(x) − 1 for x ≥ 0, enlarged by ``CONSTANT_MARGIN``; inf beyond float64's range."""
    try:
        return up(math.expm1(x))
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class Rounding:
    """One rounding into ``fmt`` in ``mode``: |fl(x) − x| ≤ max(u·|x|, eta) whenever |x| is below ``threshold``.

    ``u`` and ``eta`` are the u_m and η_m of the module table; ``threshold``: every exact |x| ≤ b rounds without
    overflow when the float64 bound b < threshold (max + 2^(emax-p) for nearest modes, the float64 after max
    otherwise);
    ``unbiased`` says why the errors of this rounding have mean zero: ``"sr"`` (stochastic rounding, proved; the
    53-bit random threshold of lampnum's ``sr`` leaves a bias of at most 2^-53 of a spacing, kept in ``bias``),
    ``"model"`` (round to nearest, under Higham & Mary's probabilistic model only), or None (biased: directed modes,
    round-to-odd, ``sr_eq``).
    """

    fmt: Format
    mode: RoundingMode
    u: float
    eta: float
    threshold: float
    unbiased: Unbiased
    bias: float

    def error(self, magnitude: np.ndarray | float) -> np.ndarray | float:
        """max(u·|x|, η): the bound on |fl(x) − x| for exact magnitudes |x| below the threshold (not rounded up)."""
        return np.maximum(self.u * np.abs(magnitude), self.eta)


@lru_cache(maxsize=256)
def _rounding(fmt: Format, mode: RoundingMode) -> Rounding:
    nearest = mode in NEAREST_MODES
    emin = fmt.emin
    assert emin is not None  # set by Format's validation
    u = math.ldexp(1.0, -fmt.p) if nearest else math.ldexp(1.0, 1 - fmt.p)
    if fmt.subnormals:
        eta = _pow2_up(emin - fmt.p) if nearest else _pow2_up(emin - fmt.p + 1)
    else:
        eta = _pow2_up(emin - 1) if nearest else _pow2_up(emin)
    # every exact |x| ≤ b rounds without overflow when the float64 bound b < threshold
    threshold = fmt.max + math.ldexp(1.0, fmt.emax - fmt.p) if nearest else math.nextafter(fmt.max, math.inf)
    if mode is RoundingMode.SR:
        unbiased: Unbiased = "sr"
        bias = math.ldexp(u, -SR_RANDOM_BITS)  # |E[δ | past]| ≤ 2^-53 · spacing/|x| ≤ 2^-53 · 2u
    elif nearest:
        unbiased, bias = "model", 0.0
    else:
        unbiased, bias = None, 0.0
    return Rounding(fmt=fmt, mode=mode, u=u, eta=eta, threshold=threshold, unbiased=unbiased, bias=bias)


def rounding(fmt: Format | str, mode: RoundingMode | str = "rne") -> Rounding:
    """The error model of one rounding into ``fmt`` in ``mode`` (see the module docstring).

    >>> r = rounding("bf16")
    >>> r.u, r.eta == 2.0**-134, r.threshold == r.fmt.max + 2.0**(127 - 8)
    (0.00390625, True, True)
    >>> rounding("e4m3", "rtz").u
    0.125
    """
    return _rounding(as_format(fmt), as_mode(mode))


def unit_roundoff(fmt: Format | str, mode: RoundingMode | str = "rne") -> float:
    """The relative error bound u_m of one rounding in the normal range: 2^-p for rne/rna, 2^(1-p) for other modes.

    Source: Higham (2002), Thm 2.2 (nearest); the directed/stochastic value is one spacing, 2^(1-p)|x|.

    >>> unit_roundoff("fp16"), unit_roundoff("fp16", "sr")
    (0.00048828125, 0.0009765625)
    """
    return rounding(fmt, mode).u


def underflow_bound(fmt: Format | str, mode: RoundingMode | str = "rne") -> float:
    """η_m: the absolute error bound of one rounding below 2^emin (module table), rounded up to a float64.

    >>> underflow_bound("fp16") == 2.0**-25, underflow_bound(Format(p=8, emax=127, subnormals=False)) == 2.0**-127
    (True, True)
    """
    return rounding(fmt, mode).eta


def overflow_threshold(fmt: Format | str, mode: RoundingMode | str = "rne") -> float:
    """Float64 bounds b < threshold guarantee no overflow for |x| ≤ b: max + 2^(emax-p) (nearest), next(max) else."""
    return rounding(fmt, mode).threshold


def gamma(n: int, u: float) -> float:
    """γ_n = n·u / (1 − n·u), rounded up; defined for n·u < 1 (Higham 2002, Lemma 3.1).

    Lemma 3.1: if |δ_i| ≤ u and n·u < 1 then Π(1 + δ_i)^(±1) = 1 + θ_n with |θ_n| ≤ γ_n. Raises ``ValueError`` when
    n·u ≥ 1 (γ_n is undefined there; the sum and product bounds of :mod:`lampnum.bounds` use :func:`theta`, which is
    defined for every n) or n < 0.

    >>> gamma(10, 2.0**-8)  # 10/246
    0.04065040650406505
    """
    n = _check_size(n)
    u = _check_u(u)
    nu = Fraction(n) * Fraction(u)
    if nu >= 1:
        raise ValueError(f"gamma_n is undefined for n*u >= 1 (n={n}, u={u!r}, n*u={float(nu)!r})")
    return _fraction_up(nu / (1 - nu))


def theta(n: int, u: float) -> float:
    """θ_n = (1 + u)^n − 1, rounded up: the exact worst case of |Π_{i≤n}(1 + δ_i) − 1| for |δ_i| ≤ u.

    θ_n ≤ γ_n whenever γ_n is defined (Higham 2002, proof of Lemma 3.1) and θ_n is finite for every n, so the
    bounds of :mod:`lampnum.bounds` use it in place of γ_n: they stay valid (if large) when n·u ≥ 1.

    >>> theta(10, 2.0**-8) <= gamma(10, 2.0**-8)
    True
    """
    n = _check_size(n)
    u = _check_u(u)
    return _expm1_up(n * math.log1p(u))


def gamma_tilde(n: int, u: float, lam: float) -> float:
    """Higham & Mary's probabilistic constant γ̃_n(λ) = exp(λ·√n·u + n·u²/(1 − u)) − 1, rounded up.

    Higham & Mary, *A new approach to probabilistic rounding error analysis*, SIAM J. Sci. Comput. 41(5) (2019)
    A2815–A2835, main theorem of §2: if δ_1..δ_n are independent random variables of mean zero with |δ_i| ≤ u, then
    |Π(1 + δ_i) − 1| ≤ γ̃_n(λ) with probability at least :func:`probability` (λ, u) = 1 − 2·exp(−λ²(1 − u)²/2).
    Connolly, Higham & Mary (SIAM J. Sci. Comput. 43(1) (2021) A566–A585) weaken independence to *mean independence*
    (E[δ_k | δ_1..δ_{k−1}] = 0) and prove that stochastic rounding satisfies it, with u the bound of one stochastic
    rounding, 2^(1-p) (:func:`unit_roundoff` (fmt, "sr")). γ̃_n(λ) = λ√n·u + O(u²).

    >>> lam = lambda_for(1e-6)   # one bound failing with probability ≤ 1e-6
    >>> round(gamma_tilde(1024, 2.0**-8, lam), 3), round(gamma(100, 2.0**-8), 3)  # √n·u growth vs n·u growth
    (0.992, 0.641)
    """
    n = _check_size(n)
    u = _check_u(u)
    lam = float(lam)
    if not lam >= 0 or math.isinf(lam):
        raise ValueError(f"lam must be a finite non-negative number, got {lam!r}")
    return _expm1_up(lam * math.sqrt(n) * u + n * u * u / (1.0 - u))


def probability(lam: float, u: float = 0.0) -> float:
    """P(λ) = 1 − 2·exp(−λ²(1 − u)²/2), rounded down: the probability with which one γ̃_n(λ) bound holds.

    For k bounds at once (a sum of k terms, a matrix of entries) the union bound gives at least 1 − k(1 − P(λ))
    (Higham & Mary 2019, §3: Q(λ, n) = 1 − n(1 − P(λ)) for an inner product).

    >>> probability(lambda_for(1e-6)) >= 1 - 1e-6
    True
    """
    u = _check_u(u)
    lam = float(lam)
    if not lam >= 0:
        raise ValueError(f"lam must be non-negative, got {lam!r}")
    fail = 2.0 * math.exp(-0.5 * (lam * (1.0 - u)) ** 2)
    return max(0.0, math.nextafter(1.0 - up(fail), -math.inf))


def lambda_for(fail: float, u: float = 0.0, events: int = 1) -> float:
    """The λ for which ``events`` bounds with constants γ̃(λ) all hold with probability ≥ 1 − ``fail``.

    Solves events · 2·exp(−λ²(1 − u)²/2) = fail: λ = √(2·ln(2·events/fail)) / (1 − u), rounded up.

    >>> round(lambda_for(1e-6), 4), round(lambda_for(1e-6, events=10**6), 4)
    (5.3868, 7.5265)
    """
    fail = float(fail)
    if not 0.0 < fail < 1.0:
        raise ValueError(f"the failure probability must satisfy 0 < fail < 1, got {fail!r}")
    u = _check_u(u)
    events = _check_size(events, "events")
    if events == 0:
        return 0.0
    return up(math.sqrt(2.0 * math.log(2.0 * events / fail)) / (1.0 - u))
