"""The float32 screening pass of the fused threshold rules: decide a row from float32 exponentials, and prove it.

The fused rules (:func:`lampnum.lamp.kernels._fused_rows`) spend most of their time on ``exp(z − max)`` of every
valid score, in float64. For float32 scores (what a forward pass holds) a row is first decided here from
:func:`lampnum.lamp.fast_exp32.exp32` (eight SIMD lanes instead of four, half the memory traffic). Each decision is
*proved* to be the one the float64 computation makes; where one cannot be proved, the row goes to the float64 path,
so the mask is exactly the float64 path's, bit for bit. Proofs fail only for entries whose indicator lies within
about ``10^-5`` relative of its threshold (or in the degenerate cases listed below): on attention scores, well
under one row in a thousand.

Error bounds (``u = 2^-53``; ``γ_n = nu/(1 − nu)``, Higham, *Accuracy and Stability of Numerical Algorithms*,
2nd ed., Lemma 3.1; ``E_j`` the exact ``e^{z_j − m}``, ``S = Σ E_j`` over the valid entries, ``n`` the row's width):

- a screening exponential ``e_j = exp32(fl32(z_j − m))`` is ``E_j(1 + θ_j)``, ``|θ_j| <= η =`` :data:`SCREEN_ERROR`
  ``= 2^-17``, for ``z_j − m >= -80``: the polynomial's ``2^-22`` (:data:`~lampnum.lamp.fast_exp32.EXP32_ERROR`,
  checked for every float32 input), the float32 subtraction's ``80·2^-24`` and one further float32 rounding
  (``2^-24``) sum to ``5.1·10^-6 < η``. Entries below -80 (*tiny*: ``E_j < 2^-115``) get ``e_j = 0``;
- their float64 sum ``S_a`` (any order) is ``S`` within ``η + γ_n + n·2^-115``; ``S >= 1`` (the maximum);
- the float64 path's own values: ``fast_exp`` within 2 ulp of ``e^x`` at an argument rounded by at most
  ``80u``, its sum within ``γ_n``, and ``1 − p`` rounded, which costs ``u·p/(1 − p)`` relative.

Strict and bound rules (indicator ``I = 2p(1 − p)w``, selected when ``I > τ``; ``w = |z|`` or ``β``):

- *prefilter*: ``c = 2e_j·(1/S_a)·w`` bounds the float64 path's indicator from above within a factor
  ``1 + 2^-13`` (``1 − p <= 1``), so ``c <= τ(1 − 2^-12)`` proves "not selected" (a tiny entry: when
  ``2^-113·w <= τ(1 − 2^-12)``). For the strict rule it is evaluated in float32 (sixteen lanes):
  ``c_32 = fl(fl(e_j·t)·|z_j|)`` with ``t = fl(2/S_a)`` carries three roundings, each within ``2^-24``
  relative or ``2^-150`` absolute (underflow), so ``c <= (c_32 + 2^-148)(1 + 2^-22)``; compared with
  ``fl(τ(1 − 2^-12)(1 − 2^-20))`` (capped at the largest float32; an overflowing ``c_32`` is +inf and survives),
  ``c_32`` at most that limit gives ``c < τ(1 − 2^-12)(1 − 2^-21)`` for every ``τ >= 2^-100`` (the absolute
  terms are below ``2^-147``, far under ``τ·2^-21``), and likewise for a tiny entry's ``fl(w·2^-113)``;
- *survivors* (a few percent): ``I_a = 2(e_j·RN(1/S_a))(O_a·RN(1/S_a))w`` with ``O_a = S_a − e_j`` (no
  cancellation in ``1 − p``; the roundings of the reciprocal and the products are a few ``u``, inside the 2^-40
  terms) is within ``Δ = 2(4η + (1 + ρ)(2γ_n + 2^-40))`` relative of the float64 path's indicator, ``ρ`` an upper
  bound of ``S_a/O_a`` (2 where ``O_a >= S_a/2``)
  (the factor 2 covers the second-order terms, for ``Δ <= 2^-10``). ``I_a(1 − Δ) > τ`` proves "selected",
  ``I_a(1 + Δ) <= τ`` proves "not". A tiny survivor, ``O_a <= 0``, a non-finite ``w`` or ``Δ > 2^-10`` proves
  nothing.

Relaxed and length rules (``v = |z|e``, selected when ``v > t·max v``, ``t`` the row's threshold): ``v_a =
fl32(|z|e_j)`` and the row maximum are each within ``η`` of the exact ones, the float64 path's within ``2^-45``,
so with ``Δ = 2(2η + 2^-40)`` a ``v_a`` above ``fl32(L(1 + 2Δ))`` is selected and one at most ``fl32(L(1 − 2Δ))``
is not (``L = t·max v_a``; those float32 roundings stay inside the factor ``1 ± Δ``). Nothing is proved when ``L``
lies outside ``[2^-90, 2^100]`` (an underflowing product or an overflowing threshold), or when a tiny entry's
``|z|·2^-115`` comes within that factor of ``L``.

The callers run this for float32 scores and thresholds ``τ >= 2^-100`` (:data:`LOWEST_TAU`); top_mu, the mass rule
and float64 scores take the float64 path.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..emulate.bits import lowest_set_bit
from .fast_exp32 import EXP32_LOWEST, exp32

__all__ = [
    "SCREEN_ERROR",
    "LOWEST_TAU",
    "row_pass32",
    "dense_pass32",
    "decide_threshold_row32",
    "decide_relaxed_row32",
]

STRICT, BOUND = 0, 1  # the kinds of lampnum.lamp.kernels (relaxed has its own function here)

#: Relative error bound η of one screening exponential (see the module docstring).
SCREEN_ERROR = 2.0**-17
#: The smallest threshold τ the strict and bound screening takes (below it, products may underflow).
LOWEST_TAU = 2.0**-100

_LOWEST32 = np.float32(EXP32_LOWEST)
_ZERO32 = np.float32(0.0)
_NEG_INF32 = np.float32(-np.inf)
_FLOAT32_MAX = np.float32(np.finfo(np.float32).max)
_TINY_EXP = 2.0**-115  # e^x < 2^-115 for x < -80
_TINY_WEIGHT = 2.0**-113  # 2·(2^-115)/(1 − η) < 2^-113: the indicator bound of a tiny entry, per unit weight
_PREFILTER = 1.0 - 2.0**-12
_PREFILTER32 = 1.0 - 2.0**-20  # the float32 prefilter's margin for its own roundings
_TINY_WEIGHT32 = np.float32(_TINY_WEIGHT)
_MAX_DELTA = 2.0**-10
_SMALLEST_LIMIT, _LARGEST_LIMIT = 2.0**-90, 2.0**100
_ORDER_MASK32 = np.int32(0x7FFFFFFF)
_SIGN_SHIFT32 = np.int32(31)
_UNIT = 2.0**-53


@njit(cache=True, nogil=True, inline="always")
def _order_key32(value):  # pragma: no cover - compiled
    """A signed 32-bit integer increasing with the float32 ``value`` (not NaN): integer maxima vectorise."""
    bits = np.float32(value).view(np.int32)
    return np.int32(bits ^ ((bits >> _SIGN_SHIFT32) & _ORDER_MASK32))  # 32-bit lanes (Numba widens small ints)


@njit(cache=True, nogil=True, inline="always")
def row_pass32(z_row, mask_row, reach, ok, clean32):  # pragma: no cover - compiled
    """The first pass over a float32 row (branch-free): ``ok[j]`` valid (``mask_row[j]`` and not −inf),
    ``clean32[j]`` the valid finite scores (−inf elsewhere), for ``j < reach``. Returns (valid count, valid
    NaN/+inf count, the maximum of ``clean32`` as a float32 order key)."""
    count, bad, top_key = 0, 0, _order_key32(_NEG_INF32)
    for j in range(reach):
        value = np.float32(z_row[j])
        good = mask_row[j] & (value != _NEG_INF32)
        ok[j] = good
        finite = abs(value) <= _FLOAT32_MAX
        count += good
        bad += good & (not finite)
        kept = value if good & finite else _NEG_INF32
        clean32[j] = kept
        top_key = max(top_key, _order_key32(kept))
    return count, bad, top_key


@njit(cache=True, nogil=True, inline="always")
def dense_pass32(z_row, reach, ok, clean32):  # pragma: no cover - compiled
    """:func:`row_pass32` for a row whose first ``reach`` entries are all allowed, when they are all finite
    (the common case): ``clean32[:reach]`` the scores, ``ok[:reach]`` True. One integer minimum and maximum per
    entry and no branch or byte store in the loop. Returns (True, the maximum as an order key), or (False, ·)
    when some score is ±inf or NaN: the caller then runs :func:`row_pass32`, which classifies them."""
    low_key, top_key = _order_key32(_FLOAT32_MAX), _order_key32(-_FLOAT32_MAX)
    for j in range(reach):
        value = np.float32(z_row[j])
        clean32[j] = value
        key = _order_key32(value)
        low_key = min(low_key, key)
        top_key = max(top_key, key)
    finite = low_key >= _order_key32(-_FLOAT32_MAX) and top_key <= _order_key32(_FLOAT32_MAX)
    if finite:
        ok[:reach] = True
    return finite, top_key


@njit(cache=True, nogil=True, inline="always")
def key_value32(key):  # pragma: no cover - compiled
    """The float32 value of an order key of :func:`_order_key32` (the map is its own inverse)."""
    return np.int32(key ^ ((key >> 31) & _ORDER_MASK32)).view(np.float32)


@njit(cache=True, nogil=True, inline="always")
def _screen_exps(width, clean32, top32, ok, e32, tiny):  # pragma: no cover - compiled
    """``e32[j] = exp32(clean32[j] − top32)``, 0 where the argument is below -80; ``tiny[j]`` marks the valid
    entries there (branch-free)."""
    for j in range(width):
        x = clean32[j] - top32
        below = x < _LOWEST32
        value = exp32(x)
        e32[j] = _ZERO32 if below else value
        tiny[j] = below & ok[j]


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _sum32(e32, width):  # pragma: no cover - compiled
    """``Σ_{j < width} e32[j]`` in float64, in SIMD lanes (any order: the bound is ``γ_width``)."""
    total = 0.0
    for j in range(width):
        total += np.float64(e32[j])
    return total


@njit(cache=True, nogil=True, inline="always")
def _delta(rho, gamma):  # pragma: no cover - compiled
    """The survivors' relative bound Δ = 2(4η + (1 + ρ)(2γ_n + 2^-40)) (module docstring)."""
    return 2.0 * (4.0 * SCREEN_ERROR + (1.0 + rho) * (2.0 * gamma + 2.0**-40))


@njit(cache=True, nogil=True, inline="always")
def _strict_word32(clean32, e32, base, count, twice_inverse32, pre32):  # pragma: no cover - compiled
    """The strict prefilter's survivors among entries ``base <= j < base + count`` (``count <= 64``) as the bits
    of one ``uint64`` (bit ``j − base``), in float32 on sixteen lanes (module docstring). No byte loads: an
    invalid entry (``clean32`` −inf) has ``e32 = 0`` and an infinite weight, so ``c32`` is NaN; a valid one has
    ``e32 = 0`` exactly when it is tiny."""
    word = np.uint64(0)
    for b in range(count):
        weight32 = abs(clean32[base + b])
        exp_value = e32[base + b]
        c32 = (exp_value * twice_inverse32) * weight32
        tiny_bound = (exp_value == _ZERO32) & (weight32 <= _FLOAT32_MAX) & (weight32 * _TINY_WEIGHT32 > pre32)
        word |= np.uint64((c32 > pre32) | tiny_bound) << np.uint64(b)
    return word


@njit(cache=True, nogil=True, inline="always")
def _bound_word(bound, r, e32, tiny, ok, base, count, inverse, pre):  # pragma: no cover - compiled
    """The bound rule's prefilter survivors among entries ``base <= j < base + count`` as the bits of one
    ``uint64``, in float64 (the bound is a float64 array)."""
    word = np.uint64(0)
    for b in range(count):
        j = base + b
        weight = bound[r, j]
        c = (2.0 * np.float64(e32[j])) * inverse * weight
        hit = ok[j] & ((c > pre) | (tiny[j] & (weight * _TINY_WEIGHT > pre)))
        word |= np.uint64(hit) << np.uint64(b)
    return word


@njit(cache=True, nogil=True, _nrt=False)
def decide_threshold_row32(kind, r, width, count, clean32, top32, ok, bound, tau, e32, tiny, masks, out,
                           columns):  # pragma: no cover - compiled  # fmt: skip
    """The strict (``kind`` STRICT, ``w = |z|``) or bound (BOUND, ``w = bound[r, j]``) decisions of row r by
    screening (module docstring), into ``out[r, :width]``, the selected columns in increasing order into
    ``columns`` (as they are decided: the caller's recomputation needs no scan of the mask row). The prefilter
    writes its survivors as bits, sixty-four entries to a ``uint64`` of ``masks`` (``width // 64 + 1`` of them,
    overwritten) instead of one byte per entry walked eight at a time: in a lone compare-and-walk loop over rows held
    in L1 that cut 1.0 to 0.43 ms per 12 × 1024 causal rows of 2 % survivors (one thread, Zen 5); inside the fused
    kernel the gain was within the noise of side-by-side runs (a few percent).
    Returns (True, the number of selected columns) when every entry is proved; (False, ·) otherwise, with
    ``out[r, :width]`` cleared."""
    found = 0
    if count == 1:  # p = 1 exactly, so the indicator 2p(1 − p)w is 0 (or NaN): never above τ > 0
        return True, found
    _screen_exps(width, clean32, top32, ok, e32, tiny)
    total = _sum32(e32, width)
    inverse = 1.0 / total
    pre = tau * _PREFILTER
    full = width // 64
    rest = width - 64 * full
    if kind == STRICT:  # the prefilter in float32 (sixteen lanes; module docstring)
        twice_inverse32 = np.float32(2.0 * inverse)
        pre32 = min(np.float32(pre * _PREFILTER32), _FLOAT32_MAX)
        for word in range(full):
            masks[word] = _strict_word32(clean32, e32, 64 * word, 64, twice_inverse32, pre32)
        masks[full] = _strict_word32(clean32, e32, 64 * full, rest, twice_inverse32, pre32)
    else:
        for word in range(full):
            masks[word] = _bound_word(bound, r, e32, tiny, ok, 64 * word, 64, inverse, pre)
        masks[full] = _bound_word(bound, r, e32, tiny, ok, 64 * full, rest, inverse, pre)
    gamma = width * _UNIT / (1.0 - width * _UNIT)
    half = 0.5 * total
    delta_half = _delta(2.0, gamma)  # Δ with ρ = 2: every entry with O_a >= S_a/2 (most of them)
    survivors = 0
    for word in range(full + 1):  # the survivors' columns, in increasing order, into columns
        bits = masks[word]
        while bits != 0:
            bit, bits = lowest_set_bit(bits)
            columns[survivors] = 64 * word + bit
            survivors += 1
    proved = True
    for t in range(survivors):  # decided in increasing order; the selected ones compacted to columns[:found]
        j = columns[t]
        weight = abs(np.float64(clean32[j])) if kind == STRICT else bound[r, j]
        e = np.float64(e32[j])
        others = total - e
        indicator = 2.0 * (e * inverse) * (others * inverse) * weight
        if others >= half and weight < np.inf and not tiny[j]:  # ρ = 2, no branch on the outcome
            delta = delta_half
        elif tiny[j] or not others > 0.0 or not weight < np.inf:
            proved = False
            break
        else:
            delta = _delta(total / others, gamma)  # ρ = S_a/O_a
        selected = indicator * (1.0 - delta) > tau
        out[r, j] = selected
        columns[found] = j
        found += np.int64(selected)
        proved &= (delta <= _MAX_DELTA) & (selected | (indicator * (1.0 + delta) <= tau))
    if not proved:
        for j in range(width):
            out[r, j] = False
    return proved, found


@njit(cache=True, nogil=True, _nrt=False)
def decide_relaxed_row32(length, r, width, count, clean32, top32, ok, tau, length_ref, e32, tiny, ind32,
                         out):  # pragma: no cover - compiled  # fmt: skip
    """The relaxed (``length`` False) or length-adaptive decisions of row r by screening (module docstring),
    into ``out[r, :width]``: True when every entry is proved; False otherwise, with ``out[r, :width]`` cleared."""
    _screen_exps(width, clean32, top32, ok, e32, tiny)
    best_key, tiny_key = np.int32(0), np.int32(0)  # keys of +0.0; the values below are >= 0
    for j in range(width):
        weight = abs(clean32[j])
        value = weight * e32[j] if ok[j] else _ZERO32
        ind32[j] = value
        best_key = max(best_key, np.float32(value).view(np.int32))
        tiny_weight = weight if tiny[j] else _ZERO32
        tiny_key = max(tiny_key, np.float32(tiny_weight).view(np.int32))
    threshold = tau
    if length:
        threshold = min(1.0, tau * math.sqrt(length_ref / max(count, 1)))
    if threshold >= 1.0:  # the limit RN(t·max v) >= max v: nothing is above it
        return True
    limit = threshold * np.float64(np.int32(best_key).view(np.float32))
    delta = 2.0 * (2.0 * SCREEN_ERROR + 2.0**-40)
    tiny_bound = np.float64(np.int32(tiny_key).view(np.float32)) * _TINY_EXP
    if not (_SMALLEST_LIMIT <= limit <= _LARGEST_LIMIT) or tiny_bound * (1.0 + delta) > limit * (1.0 - delta):
        return False
    high = np.float32(limit * (1.0 + 2.0 * delta))
    low = np.float32(limit * (1.0 - 2.0 * delta))
    unproved = 0
    for j in range(width):
        value = ind32[j]
        out[r, j] = ok[j] & (value > high)
        unproved += ok[j] & (value > low) & (value <= high)
    if unproved:
        for j in range(width):
            out[r, j] = False
        return False
    return True
