"""Independent per-row references for the LAMP rules, written from the definitions (LAMP-MATH.md §3).

Plain Python over lists: one row at a time, ``sorted`` with an explicit (value, position) key, ``math.exp``.
Nothing here imports lampnum; the rules are re-derived from their definitions, not copied from the vectorised
code.
"""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import product

import numpy as np


def rows(array: np.ndarray):
    """Yield (index tuple of the leading axes, row as a list of Python floats/bools)."""
    for index in np.ndindex(array.shape[:-1]):
        yield index, array[index].tolist()


def valid_of(scores: np.ndarray, causal: np.ndarray | None) -> np.ndarray:
    out = np.zeros(scores.shape, dtype=bool)
    for index in np.ndindex(scores.shape):
        allowed = True if causal is None else bool(np.broadcast_to(causal, scores.shape)[index])
        out[index] = allowed and scores[index] != -math.inf
    return out


def softmax(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.zeros(scores.shape)
    for index, z in rows(scores):
        ok = valid[index].tolist()
        live = [v for v, good in zip(z, ok, strict=True) if good]
        if not live:
            continue
        top = max(live)
        weights = [math.exp(v - top) if good else 0.0 for v, good in zip(z, ok, strict=True)]
        total = math.fsum(weights)
        out[index] = [w / total for w in weights]
    return out


def _per_row(scores, valid, choose):
    mask = np.zeros(scores.shape, dtype=bool)
    for index, z in rows(scores):
        ok = valid[index].tolist()
        for j in choose(index, z, ok):
            mask[index + (j,)] = True
    return mask


def mass(probs: np.ndarray, valid: np.ndarray, tau: float) -> np.ndarray:
    def choose(index, _z, ok):
        p = probs[index].tolist()
        live = [(p[j], j) for j in range(len(p)) if ok[j]]
        if not live:
            return []
        s_min = min(v for v, _ in live)
        chosen, before = [], 0.0
        for v, j in sorted(live, key=lambda t: (-t[0], t[1])):
            if not before + 2.0 * s_min < 2.0 - tau:
                break
            chosen.append(j)
            before += v
        return chosen

    return _per_row(probs, valid, choose)


def strict_indicator(scores, probs, valid):
    out = np.zeros(scores.shape)
    for index in np.ndindex(scores.shape):
        if valid[index]:
            p = float(probs[index])
            out[index] = 2.0 * p * (1.0 - p) * abs(float(scores[index]))
    return out


def bound_indicator(probs, bound, valid):
    out = np.zeros(probs.shape)
    bound = np.broadcast_to(bound, probs.shape)
    for index in np.ndindex(probs.shape):
        if valid[index]:
            p = float(probs[index])
            out[index] = 2.0 * p * (1.0 - p) * float(bound[index])
    return out


def relaxed_indicator(scores, valid):
    """|z| e^{z − max}: returns the indicator row by row (the rule compares with the row maximum)."""
    out = np.zeros(scores.shape)
    for index, z in rows(scores):
        ok = valid[index].tolist()
        live = [v for v, good in zip(z, ok, strict=True) if good]
        if not live:
            continue
        top = max(live)
        out[index] = [abs(v) * math.exp(v - top) if good else 0.0 for v, good in zip(z, ok, strict=True)]
    return out


def above(indicator, valid, tau):
    return _per_row(
        indicator, valid, lambda index, ind, ok: [j for j in range(len(ind)) if ok[j] and ind[j] > tau]
    )


def relative_above(indicator, valid, tau_of_row):
    """Entries above τ_row·max; also returns the margin |ind − τ·max| of each entry (for near-boundary
    exclusion)."""

    def choose(index, ind, ok):
        live = [ind[j] for j in range(len(ind)) if ok[j]]
        top = max(live) if live else 0.0
        t = tau_of_row(ok)
        return [j for j in range(len(ind)) if ok[j] and ind[j] > t * top]

    return _per_row(indicator, valid, choose)


def length_tau(tau: float, length_ref: float):
    def of_row(ok):
        length = sum(ok)
        return 1.0 if length == 0 else min(1.0, tau * math.sqrt(length_ref / length))

    return of_row


def top_mu(indicator, valid, mu):
    def choose(index, ind, ok):
        live = sorted(((ind[j], j) for j in range(len(ind)) if ok[j]), key=lambda t: (-t[0], t[1]))
        return [j for _, j in live[:mu]]

    return _per_row(indicator, valid, choose)


def budget(indicator, valid, rate):
    entries = [
        (float(indicator[i]), position, i)
        for position, i in enumerate(np.ndindex(indicator.shape))
        if valid[i]
    ]
    k = math.floor(Fraction(rate) * len(entries) + Fraction(1, 2))
    mask = np.zeros(indicator.shape, dtype=bool)
    for _, _, i in sorted(entries, key=lambda t: (-t[0], t[1]))[:k]:
        mask[i] = True
    return mask


def worst_relative_change(z: list[float], selected: list[bool], eps: float) -> float:
    """max over sign vertices e ∈ {±eps}^{j∉S} (e_j = 0 on S) and over i of |softmax(z+e)_i / softmax(z)_i −
    1| / eps.

    Brute force over the 2^m vertices (m unselected entries): the first-order change is linear in e, so its
    worst case over the box sits at a vertex. This measures the amplification A(S) without its closed form.
    """
    free = [j for j, s in enumerate(selected) if not s]

    def soft(v):
        top = max(v)
        w = [math.exp(x - top) for x in v]
        total = math.fsum(w)
        return [x / total for x in w]

    base = soft(z)
    worst = 0.0
    for signs in product((-1.0, 1.0), repeat=len(free)):
        shifted = list(z)
        for j, sign in zip(free, signs, strict=True):
            shifted[j] += sign * eps
        moved = soft(shifted)
        worst = max(worst, max(abs(m / b - 1.0) for m, b in zip(moved, base, strict=True)))
    return worst / eps
