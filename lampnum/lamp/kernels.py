"""Fast path of :mod:`lampnum.lamp`: the row-wise rules and the recompute step without full-size temporaries.

:mod:`lampnum.lamp.rules` states each rule with numpy; :func:`row_rule` computes the same masks chunk by chunk
of rows (a few hundred kilobytes at a time, so the work stays in cache): a Numba pass for the row maxima,
numpy's vectorised ``exp(z − max)`` into a chunk buffer, and a Numba pass that applies the rule. The
arithmetic is the same float64 expression in the same order as the numpy statement (``((2s)(1 − s))|z|``,
sequential prefix sums in descending-probability order); a softmax computed here is ``exp(z − max)`` over the
sequential sum of the row's exponentials. Kernels compile lazily on first use (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["row_rule", "dots_at", "STRICT", "BOUND", "RELAXED", "LENGTH", "MASS"]

STRICT, BOUND, RELAXED, LENGTH, MASS = 0, 1, 2, 3, 4
_CHUNK_ELEMENTS = 1 << 17  # rows per chunk: about 1 MiB of float64 scores
_OCTAVES, _SPLIT = 64, 8  # mass rule: probabilities bucketed by binary exponent and 3 leading mantissa bits


@njit(cache=True, nogil=True)
def _row_max(z, valid, top, count):  # pragma: no cover - compiled
    """Largest valid z of each row (0 for a row with no valid entry) and the number of valid entries."""
    for r in range(z.shape[0]):
        best, c = -np.inf, 0
        for j in range(z.shape[1]):
            if valid[r, j]:
                c += 1
                if z[r, j] > best:
                    best = z[r, j]
        top[r] = best if c > 0 else 0.0
        count[r] = c


@njit(cache=True, nogil=True)
def _threshold(z, valid, e, probs, bound, mode, tau, length_ref, count, out):  # pragma: no cover - compiled
    """STRICT ``2s(1 − s)|z| > τ``, BOUND ``2s(1 − s)β > τ``, RELAXED ``|z|e^{z−m} > τ·max``, LENGTH (τ_ℓ)."""
    rows, n = z.shape
    given = probs.shape[0] > 0
    for r in range(rows):
        if count[r] == 0:
            continue
        if mode == RELAXED or mode == LENGTH:
            largest = 0.0
            for j in range(n):
                if valid[r, j]:
                    largest = max(largest, abs(z[r, j]) * e[r, j])
            t = tau if mode == RELAXED else min(1.0, tau * math.sqrt(length_ref / count[r]))
            limit = t * largest
            for j in range(n):
                out[r, j] = valid[r, j] and abs(z[r, j]) * e[r, j] > limit
            continue
        total = 0.0
        if not given:
            for j in range(n):
                if valid[r, j]:
                    total += e[r, j]
        for j in range(n):
            if valid[r, j]:
                s = probs[r, j] if given else e[r, j] / total
                scale = abs(z[r, j]) if mode == STRICT else bound[r, j]
                out[r, j] = 2.0 * s * (1.0 - s) * scale > tau


@njit(cache=True, nogil=True)
def _mass_prefix(s, order, s_min, tau, out_row):
    """Select along ``order`` while (mass before) + 2 s_min < 2 − τ; True if it stopped inside ``order``."""
    before = 0.0
    for t in range(order.shape[0]):
        if not before + 2.0 * s_min < 2.0 - tau:
            return True
        out_row[order[t]] = True
        before += s[order[t]]
    return False


@njit(cache=True, nogil=True)
def _bucket(p):
    """0 for the largest probabilities: octave (−exponent) times 8 plus the next 3 mantissa bits, reversed."""
    if p <= 0.0:
        return _OCTAVES * _SPLIT - 1
    if p >= 1.0:
        return 0
    mantissa, exponent = math.frexp(p)  # p = mantissa·2^exponent, mantissa in [1/2, 1)
    octave = -exponent
    if octave >= _OCTAVES:
        return _OCTAVES * _SPLIT - 1
    return octave * _SPLIT + (_SPLIT - 1 - int((mantissa - 0.5) * 2 * _SPLIT))


@njit(cache=True, nogil=True)
def _mass(valid, e, probs, tau, count, exhaustive, out):  # pragma: no cover - compiled
    """The mass rule, exactly as :func:`lampnum.lamp.rules.mass`, sorting only the top of each row.

    Probabilities are bucketed (decreasing buckets hold decreasing probabilities); the candidates are the
    buckets whose mass reaches the target ``2 − τ − 2 s_min``, sorted stably by descending probability
    (collected in index order, so ties go by position), together with the next non-empty bucket. If the rule
    is still selecting when the candidates run out, the whole row is sorted instead, so the result never
    depends on the bucketing; ``exhaustive`` sorts every row fully (the plain statement of the rule, for
    tests).
    """
    rows, n = valid.shape
    given = probs.shape[0] > 0
    buckets = _OCTAVES * _SPLIT
    for r in range(rows):
        if count[r] == 0:
            continue
        s = np.zeros(n)
        total = 0.0
        if not given:
            for j in range(n):
                if valid[r, j]:
                    total += e[r, j]
        s_min = np.inf
        for j in range(n):
            if valid[r, j]:
                s[j] = probs[r, j] if given else e[r, j] / total
                s_min = min(s_min, s[j])
        if not 2.0 * s_min < 2.0 - tau:
            continue
        target = 2.0 - tau - 2.0 * s_min
        stopped, picked = False, 0
        if not exhaustive:
            mass = np.zeros(buckets)
            filled = np.zeros(buckets, dtype=np.bool_)
            slot = np.empty(n, dtype=np.int64)
            for j in range(n):
                if valid[r, j]:
                    slot[j] = _bucket(s[j])
                    mass[slot[j]] += s[j]
                    filled[slot[j]] = True
            last, acc = buckets - 1, 0.0
            for b in range(buckets):
                acc += mass[b]
                if acc >= target:
                    last = b + 1
                    while last < buckets - 1 and not filled[last]:
                        last += 1
                    break
            for j in range(n):
                if valid[r, j] and slot[j] <= last:
                    picked += 1
            candidates = np.empty(picked, dtype=np.int64)
            c = 0
            for j in range(n):
                if valid[r, j] and slot[j] <= last:
                    candidates[c] = j
                    c += 1
            order = candidates[np.argsort(-s[candidates], kind="mergesort")]
            stopped = _mass_prefix(s, order, s_min, tau, out[r])
        if not stopped and picked < count[r]:
            everything = np.flatnonzero(valid[r])
            _mass_prefix(s, everything[np.argsort(-s[everything], kind="mergesort")], s_min, tau, out[r])


def row_rule(
    mode: int,
    z: np.ndarray,
    valid: np.ndarray,
    probs: np.ndarray | None,
    bound: np.ndarray | None,
    tau: float,
    length_ref: float,
    exhaustive: bool = False,
) -> np.ndarray:
    """The mask of a row-wise rule (``mode``) on C-contiguous (R, n) arrays: float64 ``z``, ``probs``,
    ``bound`` and boolean ``valid``. With ``probs`` None the softmax of the valid entries is computed here;
    ``exhaustive`` makes the mass rule sort every row fully (see ``_mass``).
    """
    rows, n = z.shape
    out = np.zeros((rows, n), dtype=bool)
    absent = np.empty((0, 0))
    step = max(1, _CHUNK_ELEMENTS // max(n, 1))
    buffer = np.empty((min(step, rows), n))
    top, count = np.empty(rows), np.empty(rows, dtype=np.int64)
    _row_max(z, valid, top, count)
    needs_exp = probs is None or mode in (RELAXED, LENGTH)
    for start in range(0, rows, step):
        part = slice(start, min(start + step, rows))
        e = buffer[: part.stop - start]
        if needs_exp:
            with np.errstate(over="ignore", invalid="ignore"):  # entries outside `valid` may hold anything
                np.subtract(z[part], top[part, None], out=e)
                np.exp(e, out=e)
        p = absent if probs is None else probs[part]
        if mode == MASS:
            _mass(valid[part], e, p, tau, count[part], exhaustive, out[part])
        else:
            b = absent if bound is None else bound[part]
            _threshold(z[part], valid[part], e, p, b, mode, tau, length_ref, count[part], out[part])
    return out


@njit(cache=True, parallel=True)
def dots_at(a, bt, ia, ib, i, j, out):  # pragma: no cover - compiled
    """``out[t] = Σ_k a[ia[t], i[t], k]·bt[ib[t], j[t], k]`` in float64, summed sequentially (k
    increasing)."""
    for t in prange(out.shape[0]):
        acc = 0.0
        x, y, p, q = ia[t], ib[t], i[t], j[t]
        for k in range(a.shape[2]):
            acc += np.float64(a[x, p, k]) * np.float64(bt[y, q, k])
        out[t] = acc
