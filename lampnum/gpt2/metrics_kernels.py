"""One fused pass per position for the accuracy metrics of :mod:`lampnum.gpt2.metrics`: KL divergence and the
top-1 flip, computed together.

Per position (one row of ``vocab`` logits of the reference ``x`` and of the test ``y``):

- ``x_max``, ``y_max`` and their first indices (numpy's ``argmax``; a NaN test logit is the argmax at its first
  index, as in numpy);
- ``lse_x = log Σ e^(x − x_max)`` and ``lse_y`` likewise, so ``lp = (x − x_max) − lse_x`` and
  ``lq = (y − y_max) − lse_y`` are the two log-softmaxes;
- ``KL = Σ_j p_j·(e^r_j − 1 − r_j)`` with ``p = e^lp`` and ``r = lq − lp``. This equals ``Σ p·(log p − log q)``
  because ``Σ p·e^r = Σ q = 1``, but it is a sum of non-negative terms (Csiszár's form), so a tiny divergence
  keeps its relative accuracy. ``e^r − 1 − r`` is evaluated without cancellation (:func:`expm1_minus_x`). The
  identity needs every entry, including those whose reference probability underflows to 0 in float64: there the
  term's limit ``q − p − p·r → q`` is taken (``q = e^lq``), and for ``r > 30`` the term is ``q − p·(1 + r)``, which
  cannot overflow and has no cancellation (``e^r > 10^13·(1 + r)`` there). Dropping those entries would lose
  exactly the test distribution's mass on them (a whole unit when the test puts its mass where the reference has
  none).

Exponentials are :func:`lampnum.lamp.fast_exp.fast_exp` (within 2 ulp), the sums sequential in float64. NaN in
the test row gives NaN; a test probability 0 where the reference's is positive gives ``inf``; non-finite
reference logits are reported by the ``bad`` flag of the kernel (the caller raises).

The kernel runs in parallel over positions, one pass over each row for the maxima and three fused loops; its
pure-Python twin is :func:`kl_flip_row_reference`, with the same variable names.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..lamp.fast_exp import fast_exp

__all__ = ["expm1_minus_x", "expm1_minus_x_reference", "kl_flip_rows", "kl_flip_row_reference"]

_TIER = 0.03125  # below this |r|, the Taylor series to x^9/9! suffices: truncation below 2^-60 relative
_LARGE_R = 30.0  # beyond this r, e^r − 1 − r is taken as q/p − 1 − r without cancellation
_FACTORIAL_INVERSES = tuple(1.0 / math.factorial(n) for n in range(19))


@njit(cache=True, inline="always")
def _short_series(r: float) -> float:
    """``r²·Σ_{k=0}^{7} r^k/(k+2)!`` by Horner: ``e^r − 1 − r`` for ``|r| < 1/32`` (branch-free, so the kernel's
    loop over a row vectorises)."""
    poly = 1.0 / 362880.0  # 1/9!
    poly = poly * r + 1.0 / 40320.0
    poly = poly * r + 1.0 / 5040.0
    poly = poly * r + 1.0 / 720.0
    poly = poly * r + 1.0 / 120.0
    poly = poly * r + 1.0 / 24.0
    poly = poly * r + 1.0 / 6.0
    poly = poly * r + 0.5
    return r * r * poly


@njit(cache=True, inline="always")
def expm1_minus_x(r: float) -> float:
    """``e^r − 1 − r``: ``r²·Σ_{k=0}^{7} r^k/(k+2)!`` for ``|r| < 1/32`` (the next term is below ``2^-60`` of
    the sum), the series to ``r^18/18!`` for ``|r| < 1/2`` (below 1e-22), both within about 1 ulp; and
    ``expm1(r) − r`` beyond, where the subtraction amplifies expm1's rounding at most 4.4 times (at ``r = 1/2``),
    so within 3 ulp."""
    magnitude = abs(r)
    if magnitude < _TIER:
        return _short_series(r)
    if magnitude < 0.5:
        poly = 1.0 / 6402373705728000.0  # 1/18!
        for k in range(15, -1, -1):
            poly = poly * r + _FACTORIAL_INVERSES[k + 2]
        return r * r * poly
    return math.expm1(r) - r


def expm1_minus_x_reference(r: float) -> float:
    """Pure-Python twin of :func:`expm1_minus_x`."""
    magnitude = abs(r)
    if magnitude < _TIER:
        poly = 1.0 / 362880.0
        for k in range(6, -1, -1):
            poly = poly * r + _FACTORIAL_INVERSES[k + 2]
        return r * r * poly
    if magnitude < 0.5:
        poly = 1.0 / 6402373705728000.0
        for k in range(15, -1, -1):
            poly = poly * r + _FACTORIAL_INVERSES[k + 2]
        return r * r * poly
    return math.expm1(r) - r


@njit(cache=True, inline="always")
def _csiszar_term(p: float, lq: float, r: float) -> float:
    """One term ``p·(e^r − 1 − r)`` of Csiszár's form, ``= q − p − p·r`` with ``q = e^lq``: its limit ``q`` where
    ``p`` underflowed to 0, ``q − p·(1 + r)`` for ``r > 30`` (no overflow, no cancellation), else via
    :func:`expm1_minus_x`. NaN and ``r = −inf`` (``q = 0 < p``: the term is ``inf``) propagate."""
    if p == 0.0:
        return math.exp(lq)
    if r > _LARGE_R:
        return math.exp(lq) - p * (1.0 + r)
    return p * expm1_minus_x(r)


@njit(cache=True, inline="always")
def _row_max(row):  # noqa: ANN001, ANN202
    """(max, first index of the max, whether the row has a NaN, whether it is all finite)."""
    row_max = np.float64(row[0])
    has_nan = False
    finite = True
    for j in range(row.shape[0]):
        value = np.float64(row[j])
        row_max = max(row_max, value)
        has_nan |= value != value
        finite &= abs(value) <= 1.7976931348623157e308
    arg = 0
    for j in range(row.shape[0]):  # numpy's argmax: the first NaN if there is one, else the first maximum
        if (row[j] != row[j]) if has_nan else (np.float64(row[j]) == row_max):
            arg = j
            break
    return row_max, arg, has_nan, finite


@njit(cache=True, inline="always")
def _exp_sum(row, row_max, out):  # noqa: ANN001, ANN202
    """``out[j] = e^(row[j] − row_max)``; returns their sum (eight interleaved partial sums)."""
    for j in range(row.shape[0]):
        out[j] = fast_exp(np.float64(row[j]) - row_max)
    return _sum(out)


@njit(cache=True, inline="always")
def _sum(values):  # noqa: ANN001, ANN202
    """Σ values in eight interleaved partial sums (vector lanes), then the partial sums in order."""
    partial = np.zeros(8)
    n = values.shape[0]
    whole = n - n % 8
    for j in range(0, whole, 8):
        for lane in range(8):
            partial[lane] += values[j + lane]
    total = 0.0
    for lane in range(8):
        total += partial[lane]
    for j in range(whole, n):
        total += values[j]
    return total


@njit(cache=True, parallel=True)
def kl_flip_rows(ref, test, kl, flip):  # noqa: ANN001, ANN201 - a Numba kernel on 2-D arrays
    """Row ``i`` of ``ref`` and ``test`` [positions, vocab] (any float dtypes): ``kl[i]`` and ``flip[i]``
    (1.0 where the argmaxes differ). Returns the number of rows whose reference has a non-finite logit.

    Loops are branch-free where they touch every entry (so they run on vector lanes): the exponentials go to
    row buffers, ``p = e^(x − x_max) / Σ e^(x − x_max)``, and ``e^r − 1 − r`` is first taken from its short
    series; only entries with ``|r| >= 1/32`` (counted on the way) are redone by :func:`expm1_minus_x`."""
    n_positions, vocab = ref.shape
    bad = 0
    for i in prange(n_positions):
        x = ref[i]
        y = test[i]
        x_max, x_arg, _, x_finite = _row_max(x)
        y_max, y_arg, y_nan, _ = _row_max(y)
        if not x_finite:
            bad += 1
            kl[i] = math.nan
            flip[i] = math.nan
            continue
        if y_nan:
            y_max = math.nan
        ex_x = np.empty(vocab)
        ex_y = np.empty(vocab)
        sum_x = _exp_sum(x, x_max, ex_x)
        sum_y = _exp_sum(y, y_max, ex_y)
        lse_x = math.log(sum_x)
        lse_y = math.log(sum_y)
        inv_sum_x = 1.0 / sum_x
        terms = ex_y  # reused: ex_y is not needed once sum_y is known
        n_big = 0
        for j in range(vocab):
            lp = (np.float64(x[j]) - x_max) - lse_x
            lq = (np.float64(y[j]) - y_max) - lse_y
            p = ex_x[j] * inv_sum_x
            r = lq - lp
            n_big += np.int64(not (abs(r) < _TIER and p > 0.0))
            terms[j] = p * _short_series(r)
        if n_big:
            for j in range(vocab):
                lp = (np.float64(x[j]) - x_max) - lse_x
                lq = (np.float64(y[j]) - y_max) - lse_y
                r = lq - lp
                p = ex_x[j] * inv_sum_x
                if not (abs(r) < _TIER and p > 0.0):
                    terms[j] = _csiszar_term(p, lq, r)
        kl[i] = _sum(terms)
        flip[i] = 1.0 if x_arg != y_arg else 0.0
    return bad


def _csiszar_term_reference(p: float, lq: float, r: float) -> float:
    """Pure-Python twin of :func:`_csiszar_term`."""
    if p == 0.0:
        return math.exp(lq)
    if r > _LARGE_R:
        return math.exp(lq) - p * (1.0 + r)
    try:
        return p * expm1_minus_x_reference(r)
    except OverflowError:  # not reached for r <= 30; kept so that no input raises where IEEE 754 gives inf
        return math.inf


def kl_flip_row_reference(x: list[float], y: list[float]) -> tuple[float, float]:
    """Pure-Python twin of one row of :func:`kl_flip_rows` (``math.exp`` in place of the fast exp): (KL, flip).
    Non-finite reference logits raise."""
    x, y = [float(v) for v in x], [float(v) for v in y]  # Python floats: IEEE 754 semantics, no numpy warnings
    if not all(math.isfinite(v) for v in x):
        raise ValueError("the reference logits contain non-finite values")
    x_max = max(x)
    x_arg = x.index(x_max)
    nans = [j for j, v in enumerate(y) if v != v]
    y_max = math.nan if nans else max(y)
    y_arg = nans[0] if nans else y.index(y_max)
    sum_x = sum(math.exp(v - x_max) for v in x)
    sum_y = sum(math.exp(v - y_max) for v in y)  # inf − inf is NaN in Python too, and exp(NaN) is NaN
    lse_x = math.log(sum_x)
    lse_y = math.log(sum_y) if sum_y == sum_y else math.nan
    terms = []
    for xj, yj in zip(x, y, strict=True):
        lp = (xj - x_max) - lse_x
        lq = (yj - y_max) - lse_y
        p = math.exp(xj - x_max) * (1.0 / sum_x)
        r = lq - lp
        terms.append(_csiszar_term_reference(p, lq, r))
    return math.fsum(terms), 1.0 if x_arg != y_arg else 0.0
