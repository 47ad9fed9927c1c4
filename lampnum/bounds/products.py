"""Componentwise bounds for the emulated dot and matrix product, following :class:`~lampnum.MatmulSpec` exactly.

For one output entry c = Σ_{k<n} a_k b_k of the *original* operands, the emulation (``lampnum.emulate.spec``) does:
â_k = fl_in(a_k), b̂_k = fl_in(b_k); p_k = fl_p(â_k b̂_k) (or exact); accumulation with k increasing, strict
(s = fl_acc(s + p_k), n roundings) or block FMA (block sums t_B in ``block_precision``, b roundings each, then
s = fl_acc(s + t_B), ⌈n/b⌉ roundings); with ``via`` every accumulator rounding is preceded by a rounding to ``via``
(round-to-nearest-even); finally ĉ = fl_out(s). Each rounding obeys |fl(x) − x| ≤ u_m|x| + η_m (module
:mod:`lampnum.bounds.constants`: u_m = 2^-p nearest, 2^(1-p) directed/stochastic; η_m its underflow term).

Theorem (derived in ``papers/bounds/README.md`` §2). Write ā_k = (1 + u_in)|a_k| + η_in·[0 < |a_k| < 2^emin_in]
(≥ |â_k|; ā_k = |a_k| without input rounding), likewise b̄_k, and let term k pass through the roundings
F_k = {in, in, p} ∪ {the accumulation roundings after it enters}: c_k = n − k accumulator steps (strict; k from 0), or
L_B − max(j, 1) block-precision steps and ⌈n/b⌉ − B accumulator steps (entry j of block B of length L_B); each
accumulator step counts twice with ``via``. With κ_k = Π_{F_k}(1 + u) − 1 and K_k = (1 + u_p)·Π_acc(1 + u) (no input factors),

    |ĉ − c| ≤ β := E + max(u_out·(|c| + E), η_out),
    E = Σ_k κ_k |a_k||b_k| + Σ_k K_k (ā_k b̄_k − (1 + u_in)²|a_k||b_k|) + η_p Σ_k Π_acc,k(1 + u) + H,

where H collects the accumulation's underflow terms, each η amplified by the roundings after it (strict:
η_s·Σ_{i<n}(1 + u_s)^i with 1 + u_s = (1 + u_via)(1 + u_acc), η_s = η_via(1 + u_acc) + η_acc). In matrix form the
first sum is one BLAS product |A|·diag(κ)·|B|; the second is non-zero only when an operand has entries below the
input format's normal range (two more products with 0/1 masks). κ_k ≤ γ_{|F_k|} (Higham 2002, Lemma 3.1; §3.1 for inner
products, §3.5 for the matrix product), and for round-to-nearest with exact products, fp64 inputs, strict accumulation it is
Higham's |ĉ − c| ≤ γ_n|a|ᵀ|b| with the sharper per-term counts (Higham 2002, §3.1).

Probabilistic (``prob=``): κ_k is replaced by the smaller of itself and the heterogeneous γ̃ of
:mod:`lampnum.bounds.growth` with λ chosen so that all n·(number of entries) term bounds hold at once with probability
≥ 1 − prob (union bound, Higham & Mary 2019 §3). Stochastic-rounding roundings count as random unconditionally
(Connolly, Higham & Mary 2021); round-to-nearest ones only under Higham & Mary's model of mean-independent errors;
the other terms (underflow, output, directed modes, the round-to-nearest ``via``/block roundings of a stochastic
spec) keep their deterministic bounds.

Overflow: β is claimed only where every intermediate stays below its format's overflow threshold; this is checked a
priori (inputs entrywise; products by max_k ā_k b̄_k; every partial sum, block sum and register value by
Σ|a_k||b_k| + 2E; the output by Σ|a_k||b_k| + E) and entries that may overflow get ``inf`` and a
:class:`~lampnum.bounds.BoundOverflowWarning`.

Cost: one float64 BLAS product |A|·diag(κ)·|B|; one more (A·B) with output rounding; two more with subnormal-range
inputs; the exact overflow checks only when a cheap check (row sums × column maxima) fails.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import numpy as np

from ..emulate.spec import MatmulSpec, as_spec
from ..rounding.modes import RoundingMode
from .constants import NEAREST_MODES, Rounding, lambda_for, rounding
from .growth import Factor, deterministic_growth, inflate, probabilistic_growth
from .result import BoundResult, check_finite, report_overflow

__all__ = ["matmul", "dot", "accumulation_factors", "accumulation_underflow"]

_RNE = RoundingMode.RNE


def accumulation_factors(spec: MatmulSpec, n: int) -> list[Factor]:
    """The accumulation roundings each of the n terms passes through (its own step included), per the spec."""
    k = np.arange(n)
    acc = rounding(spec.accumulator, spec.mode)
    if spec.block == 1:
        steps = n - k
        factors = [Factor(acc, steps)]
    else:
        b = spec.block
        block_index = k // b
        length = np.minimum(b, n - block_index * b)
        steps = -(-n // b) - block_index
        # the first product of a block enters its block sum exactly; each later partial sum is rounded
        block_steps = length - np.maximum(k % b, 1)
        factors = [Factor(rounding(spec.block_precision, _RNE), block_steps), Factor(acc, steps)]
    if spec.via is not None:
        factors.append(Factor(rounding(spec.via, _RNE), steps))
    return factors


def _power(count: np.ndarray | int, u: float) -> np.ndarray:
    """(1 + u)^count, rounded up."""
    return 1.0 + deterministic_growth([Factor(_scalar_rounding(u), count)])


def _geometric(length: np.ndarray | int, u: float) -> np.ndarray:
    """Σ_{i<length} (1 + u)^i = ((1 + u)^length − 1)/u, rounded up."""
    if u == 0.0:
        return np.asarray(length, dtype=np.float64)
    return inflate(deterministic_growth([Factor(_scalar_rounding(u), length)]) / u, 1)


def _scalar_rounding(u: float) -> Rounding:
    """A bare relative bound u in the shape :class:`Factor` takes."""
    fp64 = rounding("fp64")
    return Rounding(fmt=fp64.fmt, mode=fp64.mode, u=u, eta=0.0, threshold=math.inf, unbiased=None, bias=0.0)


def accumulation_underflow(spec: MatmulSpec, n: int) -> float:
    """H: the accumulation's underflow terms, each η amplified by the roundings after it (module docstring)."""
    if n == 0:
        return 0.0
    acc = rounding(spec.accumulator, spec.mode)
    u_step, eta_step = acc.u, acc.eta
    if spec.via is not None:
        via = rounding(spec.via, _RNE)
        eta_step = via.eta * (1 + acc.u) + acc.eta
        u_step = float(inflate((1 + via.u) * (1 + acc.u) - 1, 2))
    if spec.block == 1:
        total = eta_step * _geometric(n, u_step)
    else:
        b = spec.block
        blocks = -(-n // b)
        index = np.arange(blocks)
        length = np.minimum(b, n - index * b)
        bp = rounding(spec.block_precision, _RNE)
        # block B's L_B − 1 roundings err by η_bp·Σ_{i<L_B−1}(1 + u_bp)^i, then meet nb − B accumulator steps; its
        # own accumulator step's η meets nb − B − 1
        later = _power(blocks - index - 1, u_step)
        total = np.sum(bp.eta * _geometric(length - 1, bp.u) * later * (1 + u_step) + eta_step * later)
    return float(inflate(total, ops=2 * n + 8, underflows=2 * n + 2))


def _random_kinds(mode: RoundingMode) -> tuple[frozenset[str], str]:
    if mode is RoundingMode.SR:
        return frozenset({"sr"}), "stochastic rounding: unconditional (mean-independent errors, Connolly-Higham-Mary)"
    if mode in NEAREST_MODES:
        return frozenset({"sr", "model"}), "Higham-Mary model: round-to-nearest errors mean independent, mean zero"
    return frozenset(), f"deterministic: {mode.value} errors are biased, no probabilistic gain"


def _operands(A: Any, B: Any) -> tuple[np.ndarray, np.ndarray, int]:
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.ndim == 0 or B.ndim == 0:
        raise ValueError("matmul bounds need operands with at least one dimension (as numpy's @)")
    check_finite("A", A)
    check_finite("B", B)
    n = A.shape[-1]
    inner_b = B.shape[0] if B.ndim == 1 else B.shape[-2]
    if inner_b != n:
        raise ValueError(f"inner dimensions differ: A has {n} columns, B has {inner_b} rows")
    return A, B, n


def _max_product(Abar: np.ndarray, Bbar: np.ndarray, suspect: np.ndarray) -> np.ndarray:
    """max_k Ā[..., i, k]·B̄[..., k, j] at the suspect entries (exact float64 products of the bounds), else 0."""
    shape = suspect.shape
    Ab = np.broadcast_to(Abar, shape[:-2] + Abar.shape[-2:])
    BbT = np.swapaxes(np.broadcast_to(Bbar, shape[:-2] + Bbar.shape[-2:]), -1, -2)
    out = np.zeros(shape)
    index = np.nonzero(suspect)
    for start in range(0, index[0].size, 4096):
        idx = tuple(i[start : start + 4096] for i in index)
        rows = Ab[idx[:-1]]  # (chunk, n)
        cols = BbT[idx[:-2] + idx[-1:]]  # (chunk, n)
        out[idx] = np.max(rows * cols, axis=-1)
    return np.nextafter(out, np.inf)


@dataclass(frozen=True)
class _Plan:
    """The per-term constants of one spec and inner dimension n (module docstring's κ, K, η terms)."""

    kappa: np.ndarray  # the coefficient of |a_k||b_k| (probabilistic when asked)
    kappa_det: np.ndarray
    K: np.ndarray  # (1 + u_p)·Π_acc(1 + u), for the input roundings' underflow terms
    scalar: float  # η_p Σ_k Π_acc,k(1 + u) + H
    r_in: Rounding | None
    r_p: Rounding | None
    r_out: Rounding | None
    acc_thresholds: tuple[float, ...]
    probability: float
    model: str


def _plan(spec: MatmulSpec, n: int, prob: float | None, entries: int) -> _Plan:
    acc_factors = accumulation_factors(spec, n)
    r_in = rounding(spec.input, spec.mode) if spec.input is not None else None
    r_p = rounding(spec.product, spec.mode) if spec.product is not None else None
    r_out = rounding(spec.output, spec.mode) if spec.output is not None else None
    pre = ([Factor(r_in, 2)] if r_in else []) + ([Factor(r_p, 1)] if r_p else [])
    kappa_det = deterministic_growth(pre + acc_factors) if n else np.zeros(0)
    kappa, probability_value, model = kappa_det, 1.0, "deterministic"
    if prob is not None:
        kinds, model = _random_kinds(spec.mode)
        lam = lambda_for(prob, 0.0, events=max(1, n * entries))
        kappa = probabilistic_growth(pre + acc_factors, lam, kinds) if n else kappa_det
        probability_value = 1.0 - float(prob)
    acc_growth = 1.0 + deterministic_growth(acc_factors) if n else np.zeros(0)
    K = acc_growth * (1.0 + (r_p.u if r_p else 0.0))
    scalar = float(inflate(np.sum(acc_growth) * (r_p.eta if r_p else 0.0), n + 4, n)) + accumulation_underflow(spec, n)
    thresholds = tuple(f.rounding.threshold for f in acc_factors)
    return _Plan(kappa, kappa_det, K, scalar, r_in, r_p, r_out, thresholds, probability_value, model)


def _error_before(absA: np.ndarray, absB: np.ndarray, masks: tuple[np.ndarray, np.ndarray] | None,
                  kappa: np.ndarray, plan: _Plan, n: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(E, Σκ|a||b|): the bound before output rounding (module docstring), rounded up; one BLAS product, plus one
    per operand with entries below the input format's normal range."""
    with np.errstate(over="ignore"):  # Σ|a||b| beyond float64: the entry's bound is inf (an overflow, reported)
        main = (absA * kappa) @ absB
        total = main + plan.scalar
        if masks is not None and plan.r_in is not None:
            (maskA, maskB), eta, u = masks, plan.r_in.eta, plan.r_in.u
            if maskA.any():
                right = absB * (eta * (1 + u))
                if maskB.any():
                    right += maskB * (eta * eta)
                total += (maskA * plan.K) @ right
            if maskB.any():
                total += (absA * plan.K) @ (maskB * (eta * (1 + u)))
        return inflate(total, n + 10, 3 * n), main


def _overflow_is_inf(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run a bound with float64 overflow silenced: a magnitude beyond float64 makes that entry's bound inf, which
    the bound then reports as an overflow (``BoundOverflowWarning`` / the ``overflow`` flag)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(over="ignore"):
            return function(*args, **kwargs)

    return wrapper


@_overflow_is_inf
def matmul(
    A: Any, B: Any, spec: MatmulSpec | None = None, *, prob: float | None = None, full: bool = False, **spec_fields: Any
) -> np.ndarray | BoundResult:
    """Componentwise bound β with |lampnum.matmul(A, B, spec) − A·B| ≤ β (exact product of the original operands).

    ``spec`` (or its fields as keywords) is the accumulation model; ``prob`` asks for the probabilistic bound that
    holds for all entries at once with probability ≥ 1 − prob (see the module docstring for the model). Returns the
    bound as a float64 array of the product's shape (numpy ``@`` broadcasting), or a :class:`BoundResult` with
    ``full=True``. Entries where an intermediate may overflow are ``inf`` (with a ``BoundOverflowWarning``).
    Non-finite data raise ``ValueError``.

    >>> import numpy as np
    >>> A = np.full((2, 256), 0.1); B = np.full((256, 3), 0.3)
    >>> beta = matmul(A, B, accumulator="bf16", input="bf16")   # bf16 inputs, strict bf16 accumulation
    >>> beta.shape, bool(np.all(beta > 0.5 * 256 * 0.03))       # n·u ≈ 1: the worst case is the whole sum
    ((2, 3), True)
    """
    spec = as_spec(spec, **spec_fields)
    A, B, n = _operands(A, B)
    if n == 0:  # an empty sum is exactly 0 (and so is its rounding)
        zero = np.zeros(np.shape(np.zeros(A.shape) @ np.zeros(B.shape)))
        return BoundResult(bound=zero, overflow=zero.astype(bool)) if full else zero
    A2 = A[None, :] if A.ndim == 1 else A
    B2 = B[:, None] if B.ndim == 1 else B
    out_shape = np.broadcast_shapes(A2.shape[:-2], B2.shape[:-2]) + (A2.shape[-2], B2.shape[-1])
    plan = _plan(spec, n, prob, math.prod(out_shape))
    absA, absB = np.abs(A2), np.abs(B2)
    masks = None
    Abar, Bbar = absA, absB
    if plan.r_in is not None:  # ā = (1 + u_in)|a| + η_in·[0 < |a| < 2^emin_in] ≥ |â|
        tiny = spec.input.tiny  # type: ignore[union-attr]
        masks = (((absA > 0) & (absA < tiny)).astype(np.float64), ((absB > 0) & (absB < tiny)).astype(np.float64))
        Abar = inflate((1 + plan.r_in.u) * absA + plan.r_in.eta * masks[0], 2)
        Bbar = inflate((1 + plan.r_in.u) * absB + plan.r_in.eta * masks[1], 2)
    E, main = _error_before(absA, absB, masks, plan.kappa, plan, n)
    E = np.broadcast_to(E, out_shape)
    overflow, W = _overflow(absA, absB, Abar, Bbar, masks, plan, E, prob is None, out_shape, n)
    bound, output_term = E, None
    if plan.r_out is not None:
        if W is None:  # |A||B| ≤ Σκ|a||b| / min κ, without another product
            kmin = float(np.min(plan.kappa)) if n else 0.0
            W = inflate(main / kmin, 2) if kmin > 0 else inflate(absA @ absB, n + 2, n)
        exact_size = np.abs(A2 @ B2)
        exact_size += W * ((n + 2) * 2.0**-52)
        exact_size += E  # ≥ |c| + E ≥ |ŝ| (sums of non-negative upper bounds: rounded up once below)
        output_term = inflate(np.maximum(exact_size * plan.r_out.u, plan.r_out.eta), 6, n)
        bound = inflate(E + output_term, 1)
    bound = report_overflow(np.array(bound, dtype=np.float64), overflow, "lampnum.bounds.matmul")
    terms = {}
    if full:
        terms = {"arithmetic": np.broadcast_to(main, out_shape), "underflow": E - main}
        if output_term is not None:
            terms["output"] = output_term
    squeeze = (..., 0, slice(None)) if A.ndim == 1 else (...,)
    bound, overflow = bound[squeeze], overflow[squeeze]
    terms = {key: np.broadcast_to(v, out_shape)[squeeze] for key, v in terms.items()}
    if B.ndim == 1:
        bound, overflow = bound[..., 0], overflow[..., 0]
        terms = {key: v[..., 0] for key, v in terms.items()}
    if full:
        return BoundResult(bound=bound, overflow=overflow, probability=plan.probability, model=plan.model,
                           terms=terms)  # fmt: skip
    return bound


def _overflow(absA: np.ndarray, absB: np.ndarray, Abar: np.ndarray, Bbar: np.ndarray,
              masks: tuple[np.ndarray, np.ndarray] | None, plan: _Plan, E: np.ndarray, deterministic: bool,
              out_shape: tuple[int, ...], n: int) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Entries where an intermediate may reach its overflow threshold (module docstring), and |A||B| when computed."""
    overflow = np.zeros(out_shape, dtype=bool)
    if plan.r_in is not None:
        overflow |= np.any(absA >= plan.r_in.threshold, axis=-1)[..., :, None]
        overflow |= np.any(absB >= plan.r_in.threshold, axis=-2)[..., None, :]
    if plan.r_p is not None and n:
        suspect = np.broadcast_to(np.max(Abar, -1)[..., :, None] * np.max(Bbar, -2)[..., None, :], out_shape)
        suspect = inflate(suspect, 1) >= plan.r_p.threshold
        if suspect.any():
            overflow |= _max_product(Abar, Bbar, suspect) >= plan.r_p.threshold
    limit = min(plan.acc_thresholds + ((plan.r_out.threshold,) if plan.r_out else ()))
    if not n:
        return overflow, None
    # cheap: Σ_k ā b̄ ≤ min(row sums × column maxima, row maxima × column sums); partial sums ≤ Σ|a||b| + 2E_det
    cheap = np.minimum(np.sum(Abar, -1)[..., :, None] * np.max(Bbar, -2)[..., None, :],
                       np.max(Abar, -1)[..., :, None] * np.sum(Bbar, -2)[..., None, :])  # fmt: skip
    K_max = float(np.max(plan.K)) * (1 + (plan.r_in.u if plan.r_in else 0.0)) ** 2
    if not np.any(inflate(cheap * (1 + 2 * K_max) + 2 * plan.scalar, n + 8) >= limit):
        return overflow, None
    W = inflate(absA @ absB, n + 2, n)
    E_det = E if deterministic else np.broadcast_to(_error_before(absA, absB, masks, plan.kappa_det, plan, n)[0],
                                                     out_shape)  # fmt: skip
    overflow |= inflate(W + 2 * E_det, 2) >= min(plan.acc_thresholds)
    if plan.r_out is not None:
        overflow |= inflate(W + E_det, 2) >= plan.r_out.threshold
    return overflow, W


@_overflow_is_inf
def dot(x: Any, y: Any, spec: MatmulSpec | None = None, *, prob: float | None = None, **spec_fields: Any) -> float:
    """Bound on |lampnum.matmul(x, y, spec) − xᵀy| for vectors x, y (the matmul bound of one entry).

    Strict accumulation with exact products gives Σ_k ((1 + u)^(n−k) − 1)|x_k y_k| (k from 0, at most γ_n|x|ᵀ|y|)
    plus the underflow term η·Σ_{i<n}(1 + u)^i:

    >>> b = dot([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], accumulator="fp16")
    >>> u, eta = 2.0**-11, 2.0**-25
    >>> exact = 1 * ((1 + u)**3 - 1) + 2 * ((1 + u)**2 - 1) + 3 * u + eta * (1 + (1 + u) + (1 + u)**2)
    >>> bool(exact <= b <= exact * (1 + 1e-9))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"dot takes vectors; got shapes {x.shape} and {y.shape} (use matmul for arrays)")
    return float(matmul(x, y, spec, prob=prob, **spec_fields))  # type: ignore[arg-type]
