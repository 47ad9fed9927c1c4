"""The LAMP selection rules as small vectorised functions (arXiv 2601.21623; LAMP-MATH.md §3).

Every function works along the last axis ("a row": one query's scores, one token's features) and is vectorised
over all leading axes with numpy (sorting, partitioning and cumulative sums along the last axis; no Python
loop over rows). Inputs are float64 arrays already checked by :func:`lampnum.lamp.select`; ``valid`` is a
boolean array of the same shape saying which components exist (causal entries with finite scores). Invalid
components are never selected and never counted. Ties are always broken by position: among equal indicators
the lower index comes first.

These functions are the vectorised numpy statement of the rules. :func:`lampnum.lamp.select` computes the same
masks through :mod:`lampnum.lamp.kernels` (fused, chunk by chunk of rows, no score-sized temporaries) and uses
:func:`budget` as is; the tests hold both to an independent per-row reference.

Indicators (each ``>= 0`` on valid entries):

- :func:`strict_indicator` ``2 s_j (1 − s_j) |z_j|``: the contribution of j to the ℓ1 error of ``softmax(z)``
  under the relative error model ``|e_j| <= ε|z_j|`` (the column-j ℓ1 norm of ``diag(s) − ssᵀ`` is
  ``2 s_j (1 − s_j)``), ε dropped;
- :func:`bound_indicator` ``2 s_j (1 − s_j) β_j``: the same with the actual componentwise error bound β
  (ours);
- :func:`relaxed_indicator` ``|z_j| e^{z_j − max_k z_k}``: the normalisation-free indicator ``|z_j| e^{z_j}``
  scaled by the row constant ``e^{−max z}`` (so it cannot overflow; the rule compares it with its row maximum,
  which is invariant).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = [
    "strict_indicator",
    "bound_indicator",
    "relaxed_indicator",
    "mass",
    "threshold",
    "relative_threshold",
    "length_tau",
    "top_count",
    "budget",
    "random_count",
    "budget_count",
]

_SAMPLE_FROM, _SAMPLE = 1 << 16, 1 << 14  # budget: above this many valid entries, cut at a sample


def strict_indicator(z: np.ndarray, probs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``2 s (1 − s) |z|`` on valid entries, 0 elsewhere (evaluated as ``((2s)(1 − s))|z|``)."""
    return np.where(valid, 2.0 * probs * (1.0 - probs) * np.abs(np.where(valid, z, 0.0)), 0.0)


def bound_indicator(probs: np.ndarray, bound: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``2 s (1 − s) β`` on valid entries, 0 elsewhere (evaluated as ``((2s)(1 − s))β``)."""
    return np.where(valid, 2.0 * probs * (1.0 - probs) * bound, 0.0)


def relaxed_indicator(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``|z| e^{z − m}`` with ``m`` the row's largest valid z, on valid entries; 0 elsewhere."""
    shifted = np.where(valid, z, -np.inf)
    top = shifted.max(axis=-1, keepdims=True, initial=-np.inf)
    top[~np.isfinite(top)] = 0.0
    shifted -= top
    np.exp(shifted, out=shifted)
    return shifted * np.abs(np.where(valid, z, 0.0))


def mass(probs: np.ndarray, valid: np.ndarray, tau: float) -> np.ndarray:
    """The mass rule: the shortest top-probability prefix S with ``2 − 2 s_min − Σ_{j∈S} s_j <= τ``.

    With the valid probabilities sorted in descending order (ties by position), the k-th entry is selected
    while ``(Σ of the k − 1 before it) + 2 s_min < 2 − τ``, ``s_min`` the row's smallest valid probability.
    The prefix sums are sequential (``numpy.cumsum``). Why this bounds the error (LAMP-MATH.md §3): with
    ``|e_j| <= ε`` off S and ``e_j = 0`` on S, ``Δs_i/s_i ≈ e_i − Σ_{j∉S} s_j e_j``, whose worst case over the
    error box is ``A(S)·ε`` with ``A(S) = max(1 − 2 min_{i∉S} s_i + Σ_{j∉S} s_j, [S ≠ ∅]·Σ_{j∉S} s_j)``
    (``A = 0`` when S holds every entry), and ``A(S) <= 2 − 2 s_min − Σ_{j∈S} s_j`` for a row of two or more
    entries. The selected prefix is the shortest whose mass reaches ``2 − τ − 2 s_min``, so ``A(S) <= τ``
    after recomputation. τ = 2 selects nothing; as τ → 1 nearly everything (all but the smallest entries whose
    mass stays below ``τ − 1 + 2 s_min``) is selected. A row of one entry has ``A(∅) = 0``, selects nothing.
    """
    order = np.argsort(np.where(valid, -probs, np.inf), axis=-1, kind="stable")
    ordered = np.take_along_axis(np.where(valid, probs, 0.0), order, axis=-1)
    before = np.zeros_like(ordered)
    np.cumsum(ordered[..., :-1], axis=-1, out=before[..., 1:])
    s_min = np.min(probs, axis=-1, where=valid, initial=np.inf, keepdims=True)
    chosen = (before + 2.0 * s_min < 2.0 - tau) & np.take_along_axis(valid, order, axis=-1)
    mask = np.zeros(probs.shape, dtype=bool)
    np.put_along_axis(mask, order, chosen, axis=-1)
    return mask


def threshold(indicator: np.ndarray, valid: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """Valid entries whose indicator exceeds τ strictly (the strict and bound-aware rules: τ absolute)."""
    return valid & (indicator > tau)


def relative_threshold(indicator: np.ndarray, valid: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """Valid entries whose indicator exceeds τ times the row's largest valid indicator (the relaxed rule).

    ``tau`` is a number or an array broadcastable to the rows (``(..., 1)``: the length-adaptive rule). τ = 1
    selects nothing; τ = 0 selects every valid entry with a positive indicator.
    """
    top = np.max(indicator, axis=-1, where=valid, initial=0.0, keepdims=True)
    return valid & (indicator > tau * top)


def length_tau(valid: np.ndarray, tau: float, length_ref: float) -> np.ndarray:
    """Per-row ``τ_ℓ = min(1, τ·√(L/ℓ))``, ℓ the row's valid-entry count; shape ``(..., 1)``, 1 if ℓ = 0."""
    length = valid.sum(axis=-1, keepdims=True)
    ratio = np.divide(float(length_ref), length, out=np.full(length.shape, np.inf), where=length > 0)
    with np.errstate(invalid="ignore"):  # 0·inf for tau = 0 on empty rows: those rows select nothing anyway
        scaled = tau * np.sqrt(ratio)
    return np.minimum(1.0, np.nan_to_num(scaled, nan=1.0))


def top_count(indicator: np.ndarray, valid: np.ndarray, count: np.ndarray | int) -> np.ndarray:
    """The ``count`` largest valid indicators of each row (all its valid entries if fewer), ties by position.

    ``count`` is an int or an int array broadcastable to ``indicator.shape[:-1]``. O(n) per row for a uniform
    count (``numpy.partition``); a varying count sorts each row.
    """
    n = indicator.shape[-1]
    key = np.where(valid, indicator, -np.inf)
    counts = np.broadcast_to(np.asarray(count, dtype=np.int64), indicator.shape[:-1])[..., None]
    if n == 0:
        return np.zeros(indicator.shape, dtype=bool)
    if counts.size and np.all(counts == counts.flat[0]):
        k = int(counts.flat[0])
        if k <= 0:
            return np.zeros(indicator.shape, dtype=bool)
        if k >= n:
            return valid.copy()
        kth = np.partition(key, n - k, axis=-1)[..., n - k : n - k + 1]
        above = key > kth
        tied = key == kth
        needed = k - above.sum(axis=-1, keepdims=True)
        return valid & (above | (tied & (np.cumsum(tied, axis=-1) <= needed)))
    order = np.argsort(-key, axis=-1, kind="stable")
    rank = np.empty(indicator.shape, dtype=np.int64)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(n), indicator.shape), axis=-1)
    return valid & (rank < counts)


def budget_count(valid: np.ndarray, rate: float) -> int:
    """``k = ⌊r·N + 1/2⌋`` (r·N to nearest, halves up; exact), N the number of valid entries."""
    return math.floor(Fraction(rate) * int(valid.sum()) + Fraction(1, 2))


def budget(indicator: np.ndarray, valid: np.ndarray, rate: float) -> np.ndarray:
    """The ``k = ⌊r·N + 1/2⌋`` largest indicators over all valid entries of the whole array (a global budget).

    Ties are broken by flat C-order position (lower first), so the selected count is exactly k and the
    achieved recompute rate k/N is within 1/(2N) of r. O(N): the k-th largest value comes from a partition of
    the candidates at or above a cut taken from a sample of positions (every valid entry when the cut would
    leave fewer than k); the sample only decides how many values get partitioned, never the result.
    """
    k = budget_count(valid, rate)
    n_valid = int(valid.sum())
    if k <= 0:
        return np.zeros(indicator.shape, dtype=bool)
    if k >= n_valid:
        return valid.copy()
    flat, live = indicator.reshape(-1), valid.reshape(-1)
    candidates = live
    if n_valid > _SAMPLE_FROM:
        at = np.random.default_rng(0).integers(0, flat.size, _SAMPLE)  # fixed seed: speed never depends on
        sample = flat[at][live[at]]  # the data's layout (a stride could alias with the row length)
        keep = min(sample.size, 2 * math.ceil(sample.size * k / n_valid) + 16)  # twice the expected share
        if keep < sample.size:
            cut = np.partition(sample, sample.size - keep)[sample.size - keep]
            above = live & (flat >= cut)
            if int(above.sum()) >= k:
                candidates = above
    values = flat[candidates]
    values.partition(values.size - k)
    kth = values[values.size - k]
    mask = live & (flat > kth)
    tied = np.flatnonzero(live & (flat == kth))
    mask[tied[: k - int(mask.sum())]] = True
    return mask.reshape(indicator.shape)


def random_count(valid: np.ndarray, count: np.ndarray | int, rng: np.random.Generator) -> np.ndarray:
    """``min(count, ℓ)`` entries of each row drawn uniformly without replacement among its ℓ valid entries.

    The ablation of LAMP: the same number of recomputations per row as another rule, at random positions.
    Robert Floyd's sampling (Bentley & Floyd, "A sample of brilliance", CACM 30(9), 1987): for a row with
    ``c = min(count, ℓ)``, for ``j = ℓ − c, …, ℓ − 1`` draw ``t`` uniform in ``0..j`` and take the t-th valid
    entry, or the j-th if the t-th is taken already; every c-subset is equally likely. The uniforms are one
    ``rng.random(Σ c)`` array consumed row after row in C order, ``t = ⌊u·(j + 1)⌋`` (so only as many random
    numbers as entries chosen are drawn).
    """
    rows = valid.reshape(-1, valid.shape[-1]) if valid.ndim else valid.reshape(1, 1)
    counts = np.minimum(np.broadcast_to(count, valid.shape[:-1]).reshape(-1), rows.sum(axis=-1))
    draws = rng.random(int(counts.sum()))
    mask = np.zeros(rows.shape, dtype=bool)
    used = 0
    for r in range(rows.shape[0]):
        live = np.flatnonzero(rows[r])
        chosen: set[int] = set()
        for j in range(live.size - counts[r], live.size):
            t = min(int(draws[used] * (j + 1)), j)  # u·(j + 1) may round up to j + 1
            used += 1
            chosen.add(j if t in chosen else t)
        mask[r, live[sorted(chosen)]] = True
    return mask.reshape(valid.shape)
