"""``lampnum.lamp.select``: which softmax inputs to recompute, by each LAMP rule (arXiv 2601.21623, §3).

The rules are those of LAMP-MATH.md §3.

``scores`` are the low-precision inputs ``ẑ`` of a softmax along the last axis (for attention: the *scaled*
scores ``q_i·k_j/√d``); the mask says which components to recompute in high precision before the softmax is
applied. A component is *valid* when ``causal`` allows it and its score is not −inf; invalid components are
ignored entirely (their values may be anything, NaN included), never selected and never counted. ``probs``
defaults to the softmax of ``scores`` over the valid entries of each row (float64).

Rules (per row unless said otherwise; ties by position, lower index first):

``mass``, tau ∈ [1, 2]
    the shortest descending-probability prefix S with ``2 − 2 s_min − Σ_S s <= τ``
    (:func:`lampnum.lamp.rules.mass`); guarantees first-order amplification ``A(S) <= τ``.
``strict``, tau >= 0
    ``2 s_j (1 − s_j)|z_j| > τ`` (relative error model, ε absorbed in τ; the paper's code).
``relaxed``, tau ∈ [0, 1]
    ``|z_j| e^{z_j} > τ · max_k |z_k| e^{z_k}`` (normalisation-free; the paper's code).
``length``, tau ∈ [0, 1], length_ref=L (default 1024)
    the relaxed rule with ``τ_ℓ = min(1, τ √(L/ℓ))``, ℓ the row's number of valid entries. Our reading of
    LAMP-MATH.md §3: the paper's code pairs its length flag with the relaxed rule, and the cap at 1 (where the
    relaxed rule selects nothing) only makes sense for a threshold relative to the row maximum.
``top_mu``, mu >= 0, indicator
    the µ largest indicators (all valid entries of a row with fewer than µ).
``budget``, rate ∈ [0, 1], indicator
    the ``⌊r·N + 1/2⌋`` largest indicators over *all* N valid entries of the array; ties by flat C-order
    position.
``bound``, tau >= 0, bound=β
    ``2 s_j (1 − s_j) β_j > τ``, β the actual componentwise error bound of the scores (ours). τ is *absolute*:
    the largest first-order contribution to the row's ``‖Δs‖₁`` left unrecomputed.
``random``, count, rng
    ``min(count, ℓ)`` entries drawn uniformly among the row's valid entries (the ablation; Floyd's sampling,
    :func:`lampnum.lamp.rules.random_count`);
    ``count=other_mask.sum(-1)`` gives the same count per row as another rule.
``none``
    nothing.
``all``
    every valid entry.

``indicator`` (top_mu, budget): ``"strict"`` ``2s(1 − s)|z|`` (default), ``"bound"`` ``2s(1 − s)β`` (needs
``bound=``), ``"relaxed"`` ``|z|e^z``, ``"probability"`` ``s``. A parameter a rule does not use raises
``TypeError``, a value out of its range ``ValueError``.

>>> import numpy as np, lampnum.lamp as lamp
>>> z = np.array([[4.0, 1.0, 0.0, -np.inf]])
>>> lamp.select("mass", z, tau=1.5)
array([[ True, False, False, False]])
>>> lamp.select("top_mu", z, mu=2), lamp.select("all", z)
(array([[ True,  True, False, False]]), array([[ True,  True,  True, False]]))
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from ..rounding.api import resolve_rng
from . import kernels

__all__ = ["select", "valid_mask", "RULES", "INDICATORS", "check_rule_params"]

RULES = ("mass", "strict", "relaxed", "length", "top_mu", "budget", "bound", "random", "none", "all")
INDICATORS = ("strict", "bound", "relaxed", "probability")
DEFAULT_LENGTH_REF = 1024

# rule -> (required parameters, optional parameters); "causal" is always allowed.
_PARAMS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "mass": (frozenset({"tau"}), frozenset({"probs"})),
    "strict": (frozenset({"tau"}), frozenset({"probs"})),
    "relaxed": (frozenset({"tau"}), frozenset()),
    "length": (frozenset({"tau"}), frozenset({"length_ref"})),
    "top_mu": (frozenset({"mu"}), frozenset({"indicator", "probs", "bound"})),
    "budget": (frozenset({"rate"}), frozenset({"indicator", "probs", "bound"})),
    "bound": (frozenset({"tau", "bound"}), frozenset({"probs"})),
    "random": (frozenset({"count", "rng"}), frozenset()),
    "none": (frozenset(), frozenset()),
    "all": (frozenset(), frozenset()),
}
_INDICATOR_KINDS = {
    "strict": kernels.STRICT,
    "bound": kernels.BOUND,
    "relaxed": kernels.RELAXED,
    "probability": kernels.PROBABILITY,
}
_TAU_RANGE = {
    "mass": (1.0, 2.0),
    "strict": (0.0, math.inf),
    "relaxed": (0.0, 1.0),
    "length": (0.0, 1.0),
    "bound": (0.0, math.inf),
}


def _check_number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    number = float(value)
    if not (low <= number <= high) or math.isnan(number):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}")
    return number


def check_rule_params(rule: str, **given: Any) -> None:
    """Check a rule's parameter set and ranges (the ``None`` ones count as not given); raise a clear error.

    ``given`` holds ``tau``, ``mu``, ``rate``, ``length_ref``, ``indicator``, ``probs``, ``bound``, ``count``,
    ``rng``.
    """
    if rule not in _PARAMS:
        raise ValueError(f"unknown LAMP rule {rule!r}; rules: {', '.join(RULES)}")
    required, optional = _PARAMS[rule]
    present = {name for name, value in given.items() if value is not None}
    indicator = given.get("indicator") or "strict"
    if rule in ("top_mu", "budget"):
        if indicator not in INDICATORS:
            raise ValueError(f"unknown indicator {indicator!r}; indicators: {', '.join(INDICATORS)}")
        optional = (
            optional
            - ({"bound"} if indicator != "bound" else set())
            - ({"probs"} if indicator == "relaxed" else set())
        )
        required = required | ({"bound"} if indicator == "bound" else set())
    missing = required - present
    if missing:
        raise TypeError(f"rule {rule!r} needs {', '.join(sorted(missing))}=")
    unused = present - required - optional
    if unused:
        what = f"rule {rule!r}" + (f" with indicator {indicator!r}" if rule in ("top_mu", "budget") else "")
        raise TypeError(f"{what} does not use {', '.join(sorted(unused))}=")
    if "tau" in present:
        _check_number("tau", given["tau"], *_TAU_RANGE[rule])
    if "mu" in present:
        mu = given["mu"]
        if isinstance(mu, bool) or not isinstance(mu, (int, np.integer)) or mu < 0:
            raise ValueError(f"mu must be a non-negative int, got {mu!r}")
    if "rate" in present:
        _check_number("rate", given["rate"], 0.0, 1.0)
    if "length_ref" in present and _check_number("length_ref", given["length_ref"], 0.0, math.inf) <= 0:
        raise ValueError(f"length_ref must be positive, got {given['length_ref']!r}")


def valid_mask(scores: np.ndarray, causal: np.ndarray | None = None) -> np.ndarray:
    """The components that exist: ``causal`` (True = valid, broadcast to scores) and a score above −inf.

    A mask of the scores' last two axes (a causal mask) over C-contiguous float64 or float32 scores is combined
    by a Numba pass on row blocks in parallel; other shapes by numpy."""
    if causal is None:
        return scores != -np.inf
    causal = np.asarray(causal)
    if causal.dtype != np.bool_:
        raise TypeError(f"causal must be a boolean mask (True = valid), got dtype {causal.dtype}")
    try:
        shape = np.broadcast_shapes(causal.shape, scores.shape)
    except ValueError:
        shape = None
    if shape != scores.shape:
        raise ValueError(f"causal of shape {causal.shape} does not broadcast to scores {scores.shape}")
    squeezed = causal.reshape(causal.shape[-2:]) if causal.ndim >= 2 and causal.size == math.prod(
        causal.shape[-2:]) else None  # fmt: skip
    if (squeezed is not None and scores.ndim >= 2 and squeezed.shape == scores.shape[-2:]
            and scores.dtype in (np.float64, np.float32) and scores.flags.c_contiguous):  # fmt: skip
        out = np.empty(scores.shape, dtype=bool)
        z_rows, out_rows = scores.reshape(-1, scores.shape[-1]), out.reshape(-1, scores.shape[-1])
        allowed = np.ascontiguousarray(squeezed)
        kernels.in_blocks(z_rows.shape[0], lambda block: kernels.valid_rows(z_rows, allowed, block.start,
                                                                             block.stop, out_rows))  # fmt: skip
        return out
    return (scores != -np.inf) & np.broadcast_to(causal, scores.shape)



def _causal_rows(z: np.ndarray, causal: Any) -> np.ndarray:
    """What :func:`lampnum.lamp.kernels.fused_rule` takes as ``allowed``: the (M, n) mask of the scores' last
    two axes when ``causal`` is one (no score-sized mask is built), else the full valid mask as (R, n)."""
    if causal is not None:
        mask = np.asarray(causal)
        if (mask.dtype == np.bool_ and mask.ndim >= 2 and z.ndim >= 2 and mask.size == math.prod(mask.shape[-2:])
                and mask.shape[-2:] == z.shape[-2:]):  # fmt: skip
            return np.ascontiguousarray(mask.reshape(mask.shape[-2:]))
    n = z.shape[-1]
    return np.ascontiguousarray(valid_mask(z, causal)).reshape(-1, n)


def _float_array(name: str, value: Any, keep_float32: bool = False) -> np.ndarray:
    """``value`` as float64 (integers converted; float32 kept with ``keep_float32``: the kernels read each
    float32 entry as its exact float64 value, so no float64 copy of a score-sized array is made)."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise TypeError(f"{name} must be a real floating-point array, got dtype {array.dtype}")
    if keep_float32 and array.dtype == np.float32:
        return array
    return array.astype(np.float64, copy=False)


def _on_valid(
    name: str, value: Any, shape: tuple[int, ...], valid: np.ndarray, low: float, high: float
) -> np.ndarray:
    array = _float_array(name, value)
    try:
        array = np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {array.shape} does not broadcast to scores {shape}") from None
    values = array[valid]
    bad = ~np.isfinite(values) | (values < low) | (values > high)
    if bad.any():
        raise ValueError(f"{name} must lie in [{low}, {high}] on valid entries; got {values[bad][0]!r}")
    return array


def _bound_rows(bound: Any, shape: tuple[int, ...], z_rows: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The bound array (broadcast to the scores' ``shape``) as (R, n) float64 rows, checked finite and
    non-negative on the valid entries (those of ``allowed`` repeated over the rows, whose score is not −inf) in
    one parallel pass, without gathering them."""
    array = _float_array("bound", bound)
    try:
        array = np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"bound of shape {array.shape} does not broadcast to scores {shape}") from None
    rows = np.ascontiguousarray(array, dtype=np.float64).reshape(z_rows.shape)
    largest = float(np.finfo(np.float64).max)  # finite: +inf is out of range, as NaN is
    bad, first = kernels.out_of_range_on_valid(rows, z_rows, allowed, kernels.spans(allowed), 0.0, largest,
                                               kernels.parallel_blocks(z_rows.shape[0]))  # fmt: skip
    if bad.sum():
        value = next(v for v, count in zip(first, bad, strict=True) if count)
        raise ValueError(f"bound must lie in [0.0, inf] on valid entries; got {float(value)!r}")
    return rows


def _as_rows(array: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """``array`` broadcast to ``shape``, as the kernels take it: C-contiguous (rows, n), float64 or float32."""
    if array is None:
        return None
    dtype = np.float32 if array.dtype == np.float32 else np.float64
    return np.ascontiguousarray(np.broadcast_to(array, shape), dtype=dtype).reshape(-1, shape[-1])


def _counts(count: Any, rows: tuple[int, ...]) -> np.ndarray:
    counts = np.asarray(count)
    if counts.dtype.kind not in "iu":
        raise TypeError(
            f"count must be an int or an int array (e.g. other_mask.sum(-1)), got dtype {counts.dtype}"
        )
    if (counts < 0).any():
        raise ValueError("count must be non-negative")
    try:
        return np.broadcast_to(counts, rows)
    except ValueError:
        raise ValueError(f"count of shape {counts.shape} does not broadcast to the rows {rows}") from None


def select(
    rule: str,
    scores: Any,
    *,
    tau: float | None = None,
    mu: int | None = None,
    rate: float | None = None,
    causal: Any = None,
    probs: Any = None,
    bound: Any = None,
    length_ref: float | None = None,
    count: Any = None,
    indicator: str | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """The boolean mask (shape of ``scores``) of the components ``rule`` selects for recomputation.

    See the module docstring for the rules, their parameters and the tie rules. ``scores`` is a float array
    ``(..., n)``; NaN or +inf on a valid entry raises ``ValueError``. ``rng`` (a ``numpy.random.Generator`` or
    an int seed) is required by, and only by, ``"random"``.
    """
    check_rule_params(
        rule,
        tau=tau,
        mu=mu,
        rate=rate,
        length_ref=length_ref,
        indicator=indicator,
        probs=probs,
        bound=bound,
        count=count,
        rng=rng,
    )
    z = _float_array("scores", scores, keep_float32=True)
    if z.ndim == 0:
        raise ValueError("scores must have at least one axis (the softmax axis is the last)")
    fused_top = rule == "top_mu" and (indicator or "strict") == "strict" and probs is None
    if fused_top and z.size:
        allowed = _causal_rows(z, causal)
        flat_z = _as_rows(z, z.shape)
        return kernels.fused_rule("top_mu", flat_z, allowed, None, 0.0, 0.0, int(mu)).reshape(z.shape)  # type: ignore
    if rule in ("strict", "bound", "relaxed", "length") and probs is None and z.size:
        allowed = _causal_rows(z, causal)  # the causal mask of the last two axes, or the full valid mask
        flat_z = _as_rows(z, z.shape)
        beta = None if bound is None else _bound_rows(bound, z.shape, flat_z, allowed)
        reference = float(length_ref or DEFAULT_LENGTH_REF)
        return kernels.fused_rule(rule, flat_z, allowed, beta, float(tau), reference).reshape(z.shape)  # type: ignore
    valid = valid_mask(z, causal)
    if rule in ("none", "all", "random"):  # the other rules check in their first kernel pass
        bad = kernels.nonfinite_on_valid(z, valid)
        if bad:
            raise kernels.nonfinite_scores(bad)
    if rule == "none":
        return np.zeros(z.shape, dtype=bool)
    if rule == "all":
        return valid
    n = z.shape[-1]
    if z.size == 0:
        return np.zeros(z.shape, dtype=bool)
    rows = partial(_as_rows, shape=z.shape)
    flat_valid = np.ascontiguousarray(valid).reshape(-1, n)
    if rule == "random":
        counts = _counts(count, z.shape[:-1]).reshape(-1)
        return kernels.random_rows(flat_valid, counts, resolve_rng(rng)).reshape(z.shape)
    given = None if probs is None else rows(_on_valid("probs", probs, z.shape, valid, 0.0, 1.0))
    beta = None if bound is None else rows(_on_valid("bound", bound, z.shape, valid, 0.0, math.inf))
    if rule in ("mass", "strict", "bound", "relaxed", "length"):
        reference = float(length_ref or DEFAULT_LENGTH_REF)
        mask = kernels.row_rule(rule, rows(z), flat_valid, given, beta, float(tau), reference)  # type: ignore
        return mask.reshape(z.shape)
    kind = _INDICATOR_KINDS[indicator or "strict"]
    if rule == "top_mu":
        counts = np.full(flat_valid.shape[0], mu, dtype=np.int64)
        return kernels.top_indicators(kind, rows(z), flat_valid, given, beta, counts).reshape(z.shape)
    key = kernels.indicators(kind, rows(z), flat_valid, given, beta)  # type: ignore[arg-type]
    return kernels.budget(key, flat_valid, float(rate)).reshape(z.shape)  # type: ignore[arg-type]
