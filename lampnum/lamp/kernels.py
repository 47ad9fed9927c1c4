"""Fast path of :mod:`lampnum.lamp`: row-wise rules and recompute step with no score-sized temporaries.

:mod:`lampnum.lamp.rules` states each rule with numpy; :func:`row_rule` computes the same masks chunk by chunk
of rows (about 1 MiB of scores at a time, so the work stays in cache): a Numba pass for the row maxima and
valid counts, ``exp(z − max)`` by :func:`lampnum.lamp.fast_exp.fast_exp` (vectorised, within 2 ulp; numpy's
float64 exp is a scalar libm call per element without AVX-512) into a chunk buffer, a Numba pass for the
indicators, then the rule's comparison (the mass rule: a Numba pass that sorts
only the top of each row). :func:`top_rows` picks each row's largest keys (the random ablation),
:func:`top_indicators` does so on each chunk's indicators while they are in cache (top_mu), :func:`budget` is
:func:`lampnum.lamp.rules.budget` in Numba passes over row blocks, and :func:`dots_at` computes the selected dot
products straight from the operands. Divisions by a row's sum run in branch-free loops over all of a chunk's
columns (they vectorise; entries outside ``valid`` are computed and ignored). The arithmetic is the same
float64 expression in the same order as the numpy statement (``((2s)(1 − s))|z|``, sequential prefix sums in
descending-probability order); a softmax computed here is ``exp(z − max)`` over the sum of the row's
exponentials, taken in SIMD lanes (:func:`_valid_sum`; it may differ from a sequential sum in the last bits,
like numpy's pairwise sum). The kernels are serial and release the GIL (``nogil``); :func:`in_blocks` runs
blocks of rows on a thread pool (one Numba parallel launch per cache-sized chunk costs more than it saves on a busy
machine), except on the hot path of a forward pass: the fused threshold rules and the two recompute passes run
their row blocks in *one* Numba parallel launch each (:func:`_fused_blocks`, :func:`masked_invalid_blocks`,
:func:`dots_masked_blocks`), so that the OpenMP threads of the score product just before, still spinning, do
the work rather than compete with a second pool for the cores. For float32 scores the fused threshold rules first
decide each row from float32 exponentials and prove every decision against this float64 arithmetic
(:mod:`lampnum.lamp.screen32`); a row with an unproved decision runs the float64 path, so the masks do not
depend on it. They compile lazily on first use (``cache=True``; Numba's cache of a kernel does not notice a change
in a module it inlines from, such as :mod:`lampnum.lamp.screen32`: clear ``__pycache__`` after editing one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
from numba import get_num_threads, njit, prange

from ..emulate.bits import gather_set_bytes, lowest_set_bit
from . import rules
from .dot_lanes import dot_lanes, dot_lanes_reference
from .fast_exp import fast_exp
from .screen32 import (
    LOWEST_TAU,
    decide_relaxed_row32,
    decide_threshold_row32,
    dense_pass32,
    key_value32,
    row_pass32,
)

__all__ = [
    "row_rule",
    "indicators",
    "top_rows",
    "top_indicators",
    "budget",
    "dots_at",
    "in_blocks",
    "valid_rows",
    "spans",
    "nonfinite_on_valid",
    "fused_rule",
    "random_rows",
    "has_neg_inf",
    "STRICT",
    "BOUND",
    "RELAXED",
    "PROBABILITY",
]

STRICT, BOUND, RELAXED, PROBABILITY = 0, 1, 2, 3
_TOP = 4  # the fused rows' top_mu by the strict indicator
_ABSENT = np.empty((0, 0))  # stands for an absent probs / bound array in the kernels
_NO_OPERAND = np.empty((0, 0, 0))  # no recomputation in the fused rule
_NO_INDEX = np.empty(0, dtype=np.int64)
_NO_BIAS = np.empty(0)
_ROW_CHUNK = 16  # rows per chunk of the fused rule's round-robin over the threads
_CHUNK_ELEMENTS = 1 << 17  # scores per chunk of rows: about 1 MiB of float64
_LOWEST_KEY = np.int64(-(2**63))  # below every order key
_DOUBLE_MAX = 1.7976931348623157e308
_OCTAVES, _SPLIT = 64, 8  # mass rule: probabilities bucketed by binary exponent and 3 leading mantissa bits


@njit(cache=True, nogil=True)
def _row_max(z, valid, top, count, width):  # pragma: no cover - compiled
    """Per row: the largest valid z (0 if none), the number of valid entries, and one past the last valid
    column (0 if none). Returns the number of valid entries that are NaN or ±inf. Branch-free integer reductions
    (the maximum over :func:`_order_key`), so the row runs on vector lanes."""
    bad = 0
    for r in range(z.shape[0]):
        best, c, last = _LOWEST_KEY, 0, 0
        z_row, valid_row = z[r], valid[r]  # 1-D rows: the loop vectorises
        for j in range(z.shape[1]):
            v = valid_row[j]
            x = np.float64(z_row[j])
            c += v
            last = max(last, j + 1 if v else 0)
            bad += v * (np.int64(1) - np.int64(abs(x) <= _DOUBLE_MAX))
            best = max(best, _order_key(x) if v else _LOWEST_KEY)
        top[r] = np.int64(best ^ ((best >> 63) & _ORDER_MASK)).view(np.float64) if c > 0 else 0.0
        count[r] = c
        width[r] = last
    return bad


@njit(cache=True, nogil=True)
def valid_rows(z, allowed, start, stop, out):  # pragma: no cover - compiled
    """``out[r] = allowed[r mod M] & (z[r] != −inf)`` for rows ``start <= r < stop`` (``allowed``: (M, n), the
    mask of the last two axes, repeated over the leading ones)."""
    period = allowed.shape[0]
    for r in range(start, stop):
        mask_row = allowed[r % period]
        for j in range(z.shape[1]):
            out[r, j] = mask_row[j] & (z[r, j] != -np.inf)


@njit(cache=True, nogil=True)
def _shifted_exp(z, top, width, e):  # pragma: no cover - compiled
    """``e[r, j] = exp(z[r, j] − top[r])`` up to the row's last valid column (:func:`fast_exp`, vectorised), 0
    beyond it, for ``e``'s columns (``z`` whole C-contiguous rows, so the loop has unit stride and vectorises; a
    column slice of ``z`` would not). Entries outside ``valid`` may hold anything (NaN included); they are
    computed and ignored."""
    for r in range(e.shape[0]):
        stop, shift, z_row, e_row = width[r], top[r], z[r], e[r]  # 1-D rows: the loop vectorises
        for j in range(stop):
            e_row[j] = fast_exp(z_row[j] - shift)
        for j in range(stop, e.shape[1]):
            e_row[j] = 0.0


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _valid_sum(e_row, valid_row):  # pragma: no cover - compiled
    """The sum of ``e_row`` over ``valid_row``, branch-free and reassociated (SIMD lanes, then the lanes
    summed), so it vectorises; entries outside ``valid_row`` may hold anything (they contribute 0)."""
    total = 0.0
    for j in range(e_row.shape[0]):
        total += e_row[j] if valid_row[j] else 0.0
    return total


@njit(cache=True, nogil=True)
def _indicator(z, valid, e, probs, bound, kind, out):  # pragma: no cover - compiled
    """Per entry: STRICT ``2s(1 − s)|z|``, BOUND ``2s(1 − s)β``, RELAXED ``|z|e^{z−m}``, PROBABILITY ``s``;
    0 where not valid. ``s`` is ``probs`` when given, else ``e`` over the row's sum (:func:`_valid_sum`)."""
    rows, n = z.shape
    given = probs.shape[0] > 0
    for r in range(rows):
        total = 0.0
        if not given and kind != RELAXED:
            total = _valid_sum(e[r], valid[r])
            if total == 0.0:  # a row with no valid entry: every indicator is 0 (and no division by zero)
                total = 1.0
        if not given and kind == STRICT:  # branch-free, so the division vectorises; same expression
            for j in range(n):
                p = e[r, j] / total
                v = 2.0 * p * (1.0 - p) * abs(z[r, j])
                out[r, j] = v if valid[r, j] else 0.0
            continue
        for j in range(n):
            if not valid[r, j]:
                out[r, j] = 0.0
            elif kind == RELAXED:
                out[r, j] = abs(z[r, j]) * e[r, j]
            else:
                p = probs[r, j] if given else e[r, j] / total
                if kind == PROBABILITY:
                    out[r, j] = p
                elif kind == STRICT:
                    out[r, j] = 2.0 * p * (1.0 - p) * abs(z[r, j])
                else:
                    out[r, j] = 2.0 * p * (1.0 - p) * bound[r, j]


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
def _bucket(p, bits):
    """0 for the largest probabilities: octave (−exponent) times 8 plus the next 3 mantissa bits, reversed.

    For 0 < p < 1 with p = m·2^e (m in [1/2, 1)) this is ``−e·8 + 7 − ⌊(m − 1/2)·16⌋`` capped at the last
    bucket, read straight off ``bits`` (p's IEEE bits as int64): bits >> 49 is (biased exponent)·8 plus the 3
    leading mantissa bits, and −e = 1022 − biased exponent (no libm frexp per entry)."""
    if p <= 0.0:
        return _OCTAVES * _SPLIT - 1
    if p >= 1.0:
        return 0
    top = np.int64(8 * 1022 + _SPLIT - 1) - (bits >> 49)
    return min(top, _OCTAVES * _SPLIT - 1)


@njit(cache=True, nogil=True)
def _mass(valid, e, probs, tau, count, exhaustive, out):  # pragma: no cover - compiled
    """The mass rule, exactly as :func:`lampnum.lamp.rules.mass`, sorting only the top of each row.

    Probabilities are bucketed (decreasing buckets hold decreasing probabilities); the candidates are the
    buckets whose mass reaches the target ``2 − τ − 2 s_min``, sorted stably by descending probability
    (collected in index order, so ties go by position), together with the next non-empty bucket. If the rule
    is still selecting when the candidates run out, the whole row is sorted instead, so the result never
    depends on the bucketing; ``exhaustive`` sorts every row fully (the plain statement of the rule, for
    tests). The bucket masses only choose how many candidates get sorted (in two interleaved histograms,
    so consecutive updates of one bucket do not wait on each other); their rounding never changes the mask.
    """
    rows, n = valid.shape
    given = probs.shape[0] > 0
    buckets = _OCTAVES * _SPLIT
    s = np.zeros(n)  # scratch reused by every row; only valid entries of the current row are read
    mass = np.zeros((2, buckets))  # two interleaved histograms: consecutive entries (often in one bucket)
    filled = np.zeros(buckets, dtype=np.bool_)
    slot = np.empty(n, dtype=np.int64)
    s_bits = s.view(np.int64)
    gathered = np.empty(n, dtype=np.int64)
    for r in range(rows):
        if count[r] == 0:
            continue
        total = 0.0
        if not given:
            total = _valid_sum(e[r], valid[r])
        s_min = np.inf
        if not exhaustive:  # the buckets' masses in the same pass as the probabilities
            mass[:] = 0.0
            filled[:] = False
        if not given:  # every column, branch-free, so the division vectorises; only valid ones are read
            for j in range(n):
                s[j] = e[r, j] / total
        for j in range(n):
            if valid[r, j]:
                if given:
                    s[j] = probs[r, j]
                s_min = min(s_min, s[j])
                if not exhaustive:
                    b = _bucket(s[j], s_bits[j])
                    slot[j] = b
                    mass[j & 1, b] += s[j]  # do not wait on each other's update
                    filled[b] = True
        if not 2.0 * s_min < 2.0 - tau:
            continue
        target = 2.0 - tau - 2.0 * s_min
        stopped, picked = False, 0
        if not exhaustive:
            last, acc = buckets - 1, 0.0
            for b in range(buckets):
                acc += mass[0, b] + mass[1, b]
                if acc >= target:
                    last = b + 1
                    while last < buckets - 1 and not filled[last]:
                        last += 1
                    break
            for j in range(n):
                if valid[r, j] and slot[j] <= last:
                    gathered[picked] = j
                    picked += 1
            candidates = gathered[:picked]
            order = candidates[np.argsort(-s[candidates], kind="mergesort")]
            stopped = _mass_prefix(s, order, s_min, tau, out[r])
        if not stopped and picked < count[r]:
            everything = np.flatnonzero(valid[r])
            _mass_prefix(s, everything[np.argsort(-s[everything], kind="mergesort")], s_min, tau, out[r])


def nonfinite_scores(count: int) -> ValueError:
    """The error for ``count`` valid scores that are NaN or +inf."""
    return ValueError(
        f"scores contain NaN or +inf on {count} valid entries; LAMP selection needs finite scores"
    )


def in_blocks(count: int, work: Callable[[slice], None], smallest: int = 64) -> None:
    """Call ``work`` on contiguous blocks of ``range(count)`` (at least ``smallest`` items each), one block
    per thread on up to ``numba.get_num_threads()`` threads. The kernels (``nogil``) and numpy's loops release
    the GIL, so the blocks run in parallel without Numba's per-launch overhead."""
    workers = max(1, min(get_num_threads(), count // max(smallest, 1)))
    edges = [count * w // workers for w in range(workers + 1)]
    blocks = [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    if workers == 1:
        work(blocks[0])
        return
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(work, blocks):  # re-raises a worker's exception
            pass


def _chunks(
    z: np.ndarray, valid: np.ndarray, needs_exp: bool, block: slice
) -> Iterator[tuple[slice, slice, np.ndarray, np.ndarray]]:
    """A cache-sized chunk of ``block``'s rows at a time: (rows, columns up to the chunk's last valid one,
    ``exp(z − row max)`` there, the rows' valid counts). A valid NaN or +inf raises ``ValueError``.

    Stopping each chunk at its last valid column halves the work under a causal mask; the row maxima are
    taken chunk by chunk too, so the scores come from memory once and are reread from cache."""
    rows, n = block.stop - block.start, z.shape[1]
    step = max(1, _CHUNK_ELEMENTS // max(n, 1))
    buffer = np.empty(min(step, rows) * n)
    top, count, width = np.empty(step), np.empty(step, dtype=np.int64), np.empty(step, dtype=np.int64)
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        part = slice(block.start + start, block.start + stop)
        here = stop - start
        if _row_max(z[part], valid[part], top[:here], count[:here], width[:here]):  # error path: count all
            raise nonfinite_scores(int(np.count_nonzero(valid & ~np.isfinite(z))))
        columns = slice(0, int(width[:here].max(initial=0)))
        e = buffer[: here * columns.stop].reshape(here, columns.stop)
        if needs_exp:
            _shifted_exp(z[part], top[:here], width[:here], e)
        yield part, columns, e, count[:here]


def _rows_of(array: np.ndarray | None, part: slice, columns: slice) -> np.ndarray:
    return _ABSENT if array is None else array[part, columns]


def indicators(
    kind: int, z: np.ndarray, valid: np.ndarray, probs: np.ndarray | None, bound: np.ndarray | None
) -> np.ndarray:
    """The (R, n) indicator array of ``kind`` (0 on invalid entries); inputs as for :func:`row_rule`."""
    out = np.zeros(z.shape)  # zeroed pages come from the OS lazily: the columns past each chunk's last valid

    def work(block: slice) -> None:  # one (half the array under a causal mask) are never written
        for part, cols, e, _ in _chunks(z, valid, probs is None or kind == RELAXED, block):
            args = (_rows_of(probs, part, cols), _rows_of(bound, part, cols), kind, out[part, cols])
            _indicator(z[part, cols], valid[part, cols], e, *args)

    in_blocks(z.shape[0], work)
    return out


def top_indicators(
    kind: int,
    z: np.ndarray,
    valid: np.ndarray,
    probs: np.ndarray | None,
    bound: np.ndarray | None,
    counts: np.ndarray,
) -> np.ndarray:
    """``top_rows(indicators(kind, z, valid, probs, bound), valid, counts)`` chunk by chunk: each chunk's
    indicators go to a cache-sized scratch buffer and its rows' largest are picked there, so no score-sized
    indicator array is written and read back. Columns past a chunk's last valid one hold no valid entry, so
    leaving them out changes nothing."""
    out = np.zeros(z.shape, dtype=bool)
    counts = np.ascontiguousarray(counts, dtype=np.int64)

    def work(block: slice) -> None:
        scratch = np.empty(
            min(block.stop - block.start, _CHUNK_ELEMENTS // max(z.shape[1], 1) or 1) * z.shape[1]
        )
        for part, cols, e, _ in _chunks(z, valid, probs is None or kind == RELAXED, block):
            ind = scratch[: e.size].reshape(e.shape)
            args = (_rows_of(probs, part, cols), _rows_of(bound, part, cols), kind, ind)
            _indicator(z[part, cols], valid[part, cols], e, *args)
            _top(ind, valid[part, cols], counts[part], out[part, cols])

    in_blocks(z.shape[0], work)
    return out


_ORDER_MASK = np.int64(0x7FFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def _order_key(value):  # pragma: no cover - compiled
    """A signed 64-bit integer increasing with the float64 ``value`` (not NaN; −0 below +0): its own inverse.
    Integer maxima vectorise where float maxima (NaN-aware) do not."""
    bits = np.float64(value).view(np.int64)
    return bits ^ ((bits >> 63) & _ORDER_MASK)


@njit(cache=True, nogil=True)
def _fused_rows(kind, relative, length, z, allowed, span, dense, bound, tau, length_ref, mu, first, step, out, a, bt,
                ia, ib, scale, target, totals, screen):  # pragma: no cover
    """:func:`_fused_row_chunks` on the chunks of ``_ROW_CHUNK`` rows numbered ``first, first + step, …``, with
    its buffers allocated once here. Returns the number of valid entries that are NaN or +inf."""
    n = z.shape[1]
    clean = np.empty(n)  # the row's valid finite scores, −inf elsewhere
    e = np.empty(n)
    ind = np.empty(n)
    ok = np.empty(n, dtype=np.bool_)
    masks = np.empty(n // 64 + 1, dtype=np.uint64)  # the prefilter's survivors, one bit per entry
    columns = np.empty(n + 1, dtype=np.int64)
    a_row = np.empty(a.shape[2])
    best_values = np.empty(max(min(mu, n), 1))
    best_columns = np.empty(max(min(mu, n), 1), dtype=np.int64)
    scratch = np.empty(n if kind == _TOP else 0)  # top_mu's selection copy
    clean32 = np.empty(n if screen else 0, dtype=np.float32)
    e32 = np.empty(n if screen else 0, dtype=np.float32)
    ind32 = np.empty(n if screen else 0, dtype=np.float32)
    tiny = np.empty(n if screen else 0, dtype=np.bool_)
    return _fused_row_chunks(kind, relative, length, z, allowed, span, dense, bound, tau, length_ref, mu, first, step,
                             out, a, bt, ia, ib, scale, target, totals, screen, clean, e, ind, ok, masks, columns,
                             a_row, best_values, best_columns, scratch, clean32, e32, ind32, tiny)  # fmt: skip


@njit(cache=True, nogil=True, _nrt=False)
def _fused_row_chunks(kind, relative, length, z, allowed, span, dense, bound, tau, length_ref, mu, first, step, out,
                      a, bt, ia, ib, scale, target, totals, screen, clean, e, ind, ok, masks, columns,
                      a_row, best_values, best_columns, scratch, clean32, e32, ind32,
                      tiny):  # pragma: no cover - compiled  # fmt: skip
    """The threshold rules with probabilities computed here, one row at a time in L1-sized buffers (row
    maximum, exponentials, sum, indicators, comparison), for the rows of the chunks of ``_ROW_CHUNK`` rows numbered
    ``first, first + step, …`` (one call for all of them: a call per chunk of 16 rows measured 0.7 ms of 7 per
    12 × 1024 causal rows, one thread), the same arithmetic as
    the chunked path (:func:`_chunks`, :func:`_indicator`). Entry (r, j) is valid when ``allowed[r mod M, j]``
    and ``z[r, j] > −inf`` (``allowed`` (M, n): a causal mask repeated over the leading axes, or the full valid
    mask with M = R); ``span[m]`` is one past the last True of ``allowed[m]``, so the scores past it (half of
    them under a causal mask) are never read; ``dense[m]``: ``allowed[m]`` is True on all of ``[0, span[m])``
    (:func:`dense_prefixes`; every causal row), so the screening reads such a row with its branch-free pass.
    ``z`` float64 or float32 (read as its exact float64 value).
    ``kind`` STRICT, BOUND or RELAXED; ``relative``: the threshold is τ times the row's largest indicator
    (relaxed, length); ``length``: τ scaled by ``√(length_ref/ℓ)``, capped at 1. Returns the number of valid
    entries that are NaN or +inf (the caller raises).

    With operands ``a`` (A, M, K) and ``bt`` (B, N, K) (not empty), each row's selected scores are then
    recomputed into ``target`` (``z`` itself, writable),
    ``target[r, j] = scale·Σ_k a[ia[lead], i, k]·bt[ib[lead], j, k]`` (``r = lead·M + i``; the
    arithmetic of :func:`dots_masked`), while the row is still in cache: the
    decisions read the row's copy ``clean``, so a correction never feeds another decision. ``totals`` gets
    (selected, valid) entries of the rows and the number of rows the screening (below) sent to the float64 path.

    STRICT and BOUND skip the division ``s = e/Σe`` where a cheap bound proves the entry unselected: with
    ``w`` the weight (``|z|`` or ``β``) and ``c = RN(RN(2e)·RN(1/Σe))·w``, the computed indicator is at most
    ``c(1 + 2^-48)`` (each of the at most six roundings between them moves a value by a factor within
    ``1 ± 2^-53``, and ``RN(1 − s) <= 1``), so ``c <= τ(1 − 2^-46)`` rules the entry out; exponentials below
    2^-900 (where relative bounds fail near underflow) always take the exact test.

    ``screen`` (float32 ``z``; STRICT, BOUND or RELAXED; ``τ >= 2^-100`` for the first two): each row is first
    decided from float32 exponentials, every decision proved to be this float64 computation's
    (:mod:`lampnum.lamp.screen32`); a row with a decision it cannot prove runs the float64 path.

    The remaining arguments are the row buffers (:func:`_fused_rows` allocates them). Compiled without Numba's
    reference counting (``_nrt=False``: it allocates nothing): its views and calls would otherwise pay atomic
    increments and decrements on the meminfo of arrays that every thread shares (``z``, ``out``), 14 % of the
    samples of a profile of this kernel."""
    period = allowed.shape[0]
    tau_low = tau * (1.0 - 2.0**-46)
    lowest_key = _order_key(-np.inf)
    bad = 0
    recompute = a.shape[0] > 0
    m = a.shape[1] if recompute else 1
    rows = z.shape[0]
    chunks = (rows + _ROW_CHUNK - 1) // _ROW_CHUNK
    mine = max(0, (chunks - first + step - 1) // step)  # the chunks first, first + step, … below chunks
    for t in range(mine * _ROW_CHUNK):
        r = (first + (t // _ROW_CHUNK) * step) * _ROW_CHUNK + t % _ROW_CHUNK
        if r >= rows:  # past the end of the last chunk (a partial one)
            break
        out[r, :] = False  # here, not by the caller: in parallel, and while the row's lines are wanted anyway
        mask_row = allowed[r % period]
        reach = span[r % period]
        if screen:
            finite, top_key32 = dense_pass32(z[r], reach, ok, clean32) if dense[r % period] else (False, 0)
            if finite:
                count, row_bad = reach, 0
            else:
                count, row_bad, top_key32 = row_pass32(z[r], mask_row, reach, ok, clean32)
        else:
            count, row_bad, top_key = 0, 0, lowest_key
            for j in range(reach):  # branch-free, so it vectorises
                value = np.float64(z[r, j])
                good = mask_row[j] & (value != -np.inf)
                ok[j] = good
                finite = abs(value) <= 1.7976931348623157e308
                count += good
                row_bad += good & (not finite)
                kept = value if good & finite else -np.inf
                clean[j] = kept
                top_key = max(top_key, _order_key(kept))
        bad += row_bad
        totals[1] += count
        if count == 0 or row_bad:
            continue
        width = reach  # one past the last valid column (a 64-bit integer max does not vectorise on AVX2)
        while width > 0 and not ok[width - 1]:
            width -= 1
        if screen:
            top32 = key_value32(top_key32)
            if kind == RELAXED:
                proved = decide_relaxed_row32(length, r, width, count, clean32, top32, ok, tau, length_ref, e32,
                                              tiny, ind32, out)  # fmt: skip
                found = _selected_columns(out[r], columns, width) if proved and recompute else 0
            else:
                proved, found = decide_threshold_row32(kind, r, width, count, clean32, top32, ok, bound, tau, e32,
                                                       tiny, masks, out, columns)  # fmt: skip
            if proved:
                if recompute:
                    totals[0] += found
                    if found > 0:
                        _recompute_row(r, m, found, columns, a, bt, ia, ib, scale, _NO_BIAS, a_row, target)
                continue
            totals[2] += 1
            for j in range(width):  # the float64 path, from the same scores
                clean[j] = np.float64(clean32[j])
            top = np.float64(top32)
        else:
            top = np.int64(_order_key(np.int64(top_key).view(np.float64))).view(np.float64)
        for j in range(width):
            e[j] = fast_exp(clean[j] - top)  # exp(−inf) = 0 on the entries that are not valid
        if kind == RELAXED:
            best_key = _order_key(0.0)
            for j in range(width):
                v = abs(clean[j]) * e[j] if ok[j] else 0.0  # |−inf|·0 = NaN where not valid: never used
                ind[j] = v
                best_key = max(best_key, _order_key(v))
            best = np.int64(_order_key(np.int64(best_key).view(np.float64))).view(np.float64)
            threshold = tau
            if length:
                threshold = min(1.0, tau * math.sqrt(length_ref / max(count, 1)))
            limit = threshold * best if relative else tau
            for j in range(width):
                out[r, j] = ok[j] & (ind[j] > limit)
        elif kind == _TOP:
            total = _valid_sum(e[:width], ok[:width])
            for j in range(width):  # branch-free (vectorises): the strict indicator, −1 where not valid
                p = e[j] / total
                v = 2.0 * p * (1.0 - p) * abs(clean[j])
                ind[j] = v if ok[j] else -1.0
            _top_row(ind, ok, width, min(mu, count), count, best_values, best_columns, r, out, scratch)
        else:
            _threshold_row(kind, r, width, e, clean, ok, bound, tau, tau_low, masks, out)
        if recompute:
            found = _selected_columns(out[r], columns, width)
            totals[0] += found
            if found > 0:
                _recompute_row(r, m, found, columns, a, bt, ia, ib, scale, _NO_BIAS, a_row, target)
    return bad


@njit(cache=True, nogil=True, inline="always")
def _keep_largest(v, j, c, filled, best, where):  # pragma: no cover - compiled
    """Insert (value ``v``, column ``j``) into the ``c`` largest so far, ``best[:filled]`` in decreasing order
    with their columns in ``where``; a later equal value never displaces an earlier one (ties by position).
    Returns the new ``filled``."""
    if filled == c and not v > best[c - 1]:
        return filled
    p = min(filled, c - 1)
    while p > 0 and best[p - 1] < v:
        best[p] = best[p - 1]
        where[p] = where[p - 1]
        p -= 1
    best[p] = v
    where[p] = j
    return min(filled + 1, c)


@njit(cache=True, nogil=True, _nrt=False)
def _kth_largest(values, width, k, scratch):  # pragma: no cover - compiled
    """The ``k``-th largest (``1 <= k <= width``, counted with multiplicity) of ``values[:width]`` (no NaN), by
    selection with three-way partitions (Hoare's FIND with a median-of-three pivot; ties cost nothing) on the copy
    ``scratch[:width]``: no allocation, so the reference-count-free row kernel can call it."""
    for j in range(width):
        scratch[j] = values[j]
    rank = k - 1  # the position in decreasing order
    lo, hi = 0, width
    while hi - lo > 1:
        x, y, w = scratch[lo], scratch[(lo + hi) // 2], scratch[hi - 1]
        pivot = max(min(x, y), min(max(x, y), w))  # the median of the three
        above, i, below = lo, lo, hi  # [lo, above) > pivot, [above, i) == pivot, [below, hi) < pivot
        while i < below:
            v = scratch[i]
            if v > pivot:
                scratch[i], scratch[above] = scratch[above], v
                above += 1
                i += 1
            elif v < pivot:
                below -= 1
                scratch[i], scratch[below] = scratch[below], v
            else:
                i += 1
        if rank < above:
            hi = above
        elif rank < below:
            return pivot
        else:
            lo = below
    return scratch[lo]


@njit(cache=True, nogil=True, _nrt=False)
def _top_row(ind, ok, width, c, count, best, where, r, out, scratch):  # pragma: no cover - compiled
    """The ``c`` largest of ``ind[:width]`` over the valid entries (``ind`` −1 elsewhere, valid ones >= 0),
    ties by position (lower index first), marked in ``out[r]``: :func:`_top`'s selection on one row."""
    if c <= 0:
        return
    if c >= count:  # every valid entry
        for j in range(width):
            out[r, j] = ok[j]
        return
    if 8 * c >= width:  # many: the c-th largest value v (a valid one, >= 0), then every entry above v and the
        v = _kth_largest(ind, width, c, scratch)  # first entries equal to v: a stable sort's first c
        need = c
        for j in range(width):
            if ind[j] > v:
                out[r, j] = True
                need -= 1
        for j in range(width):
            if need > 0 and ind[j] == v:
                out[r, j] = True
                need -= 1
        return
    filled = 0  # few: insertion into the c best so far (:func:`_keep_largest`)
    for j in range(width):
        if ind[j] >= 0.0:
            filled = _keep_largest(ind[j], j, c, filled, best, where)
    for t in range(filled):
        out[r, where[t]] = True


@njit(cache=True, nogil=True, inline="always")
def _threshold_word(kind, r, e, clean, ok, bound, inverse, tau_low, base, count):  # pragma: no cover - compiled
    """The division-free prefilter's survivors among entries ``base <= j < base + count`` (``count <= 64``) as
    the bits of one ``uint64`` (bit ``j − base``; vectorised, no branch)."""
    word = np.uint64(0)
    for b in range(count):
        j = base + b
        weight = abs(clean[j]) if kind == STRICT else bound[r, j]
        c = (2.0 * e[j]) * inverse * weight
        hit = ok[j] & ((c > tau_low) | (e[j] < 2.0**-900))
        word |= np.uint64(hit) << np.uint64(b)
    return word


@njit(cache=True, nogil=True, inline="always")
def _threshold_row(kind, r, width, e, clean, ok, bound, tau, tau_low, masks, out):  # pragma: no cover - compiled
    """STRICT / BOUND decisions of row r (see :func:`_fused_rows`): the division-free prefilter, its survivors
    as bits (sixty-four entries to a word of ``masks``, ``width // 64 + 1`` words, overwritten), then the exact
    comparison on them."""
    total = _valid_sum(e[:width], ok[:width])
    inverse = 1.0 / total
    full = width // 64
    for word in range(full):
        masks[word] = _threshold_word(kind, r, e, clean, ok, bound, inverse, tau_low, 64 * word, 64)
    masks[full] = _threshold_word(kind, r, e, clean, ok, bound, inverse, tau_low, 64 * full, width - 64 * full)
    for word in range(full + 1):
        bits = masks[word]
        while bits != 0:  # one trip per survivor (:func:`lampnum.emulate.bits.lowest_set_bit`)
            bit, bits = lowest_set_bit(bits)
            j = 64 * word + bit
            p = e[j] / total
            weight = abs(clean[j]) if kind == STRICT else bound[r, j]
            out[r, j] = 2.0 * p * (1.0 - p) * weight > tau


@njit(cache=True, nogil=True, inline="always")
def _recompute_row(r, m, found, columns, a, bt, ia, ib, scale, bias, a_row, target):  # pragma: no cover
    """``target[r, j] = scale·(a row · bt row j) (+ bias[j] when ``bias`` is not empty)`` for the ``found``
    selected columns ``j`` in ``columns`` (the arithmetic of :func:`dots_masked`, which calls this too): the row of
    ``a`` converted to float64 once, each dot product by :func:`lampnum.lamp.dot_lanes.dot_lanes`."""
    lead = r // m
    i = r - lead * m
    x, y = ia[lead], ib[lead]
    for k in range(a.shape[2]):
        a_row[k] = np.float64(a[x, i, k])
    b_mat = bt[y]
    has_bias = bias.shape[0] > 0
    for t in range(found):
        j = columns[t]
        total = dot_lanes(a_row, b_mat, j)
        if scale != 1.0:
            total *= scale
        if has_bias:
            total += bias[j]
        target[r, j] = total


@njit(cache=True, nogil=True)
def _spans(allowed, out):  # pragma: no cover - compiled
    n = allowed.shape[1]
    for m in range(allowed.shape[0]):
        last = n
        if n % 8 == 0:  # whole words of eight False entries first
            words = allowed[m].view(np.uint64)
            while last > 0 and words[last // 8 - 1] == 0:
                last -= 8
        while last > 0 and not allowed[m, last - 1]:
            last -= 1
        out[m] = last


def spans(allowed: np.ndarray) -> np.ndarray:
    """One past the last True of each row of the boolean (M, n) ``allowed`` (0 for a row with none), scanning
    each row from its end, eight entries at a time where the rows' length is a multiple of 8."""
    out = np.empty(allowed.shape[0], dtype=np.int64)
    _spans(np.ascontiguousarray(allowed), out)
    return out


@njit(cache=True, nogil=True)
def _dense_prefixes(allowed, span, out):  # pragma: no cover - compiled
    for m in range(allowed.shape[0]):
        dense = True
        for j in range(span[m]):
            dense &= allowed[m, j]
        out[m] = dense


def dense_prefixes(allowed: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Whether each row of the boolean (M, n) ``allowed`` is True on all of ``[0, span[m])`` (:func:`spans`):
    every row of a causal mask is."""
    out = np.empty(allowed.shape[0], dtype=np.bool_)
    _dense_prefixes(np.ascontiguousarray(allowed), span, out)
    return out


def parallel_blocks(rows: int, smallest: int = 64) -> int:
    """How many contiguous row blocks a parallel kernel splits ``rows`` into: four per Numba thread (load
    balance under a causal mask, whose rows grow), at least ``smallest`` rows each."""
    return max(1, min(4 * get_num_threads(), rows // max(smallest, 1)))


@njit(cache=True, parallel=True)
def _fused_blocks(kind, relative, length, z, allowed, span, dense, bound, tau, length_ref, mu, blocks, out, a, bt, ia,
                  ib, scale, target, screen):  # pragma: no cover
    """:func:`_fused_rows` on ``blocks`` contiguous row blocks in one Numba parallel launch: the threads of the
    score product that ran just before (Numba's pool, still spinning) take the work, instead of competing with a
    second pool for the cores. Returns (the number of valid NaN or +inf scores, selected, valid entries, rows the
    screening did not prove)."""
    bad = np.zeros(blocks, dtype=np.int64)
    totals = np.zeros((blocks, 8), dtype=np.int64)  # one 64-byte line per block: no false sharing
    # block b takes the chunks b, b + blocks, …: rows of every cost (causal lengths, heads with more selected
    # entries) on every thread
    for block in prange(blocks):
        bad[block] = _fused_rows(kind, relative, length, z, allowed, span, dense, bound, tau, length_ref, mu,
                                 block, blocks, out, a, bt, ia, ib, scale, target, totals[block], screen)
    return bad.sum(), totals[:, 0].sum(), totals[:, 1].sum(), totals[:, 2].sum()


@njit(cache=True, parallel=True)
def out_of_range_on_valid(values, z, allowed, span, low, high, blocks):  # pragma: no cover - compiled
    """How many entries of the (R, n) float64 ``values`` lie outside ``[low, high]`` (NaN included) where
    entry (r, j) is valid (``allowed[r mod M, j]`` and ``z[r, j] > −inf``; ``span`` as in :func:`_fused_rows`,
    so nothing past a row's last allowed column is read), and the first such value met in each block (NaN where
    none): the check of a caller's bound array without gathering it."""
    rows = values.shape[0]
    period = allowed.shape[0]
    bad = np.zeros(blocks, dtype=np.int64)
    first = np.full(blocks, np.nan)
    for block in prange(blocks):
        for r in range(rows * block // blocks, rows * (block + 1) // blocks):
            mask_row = allowed[r % period]
            reach = span[r % period]
            count = 0
            for j in range(reach):  # branch-free count; the value itself is looked up only on a hit
                v = values[r, j]
                count += mask_row[j] & (z[r, j] != -np.inf) & (not (low <= v <= high))
            if count and bad[block] == 0:
                for j in range(reach):
                    v = values[r, j]
                    if mask_row[j] and z[r, j] != -np.inf and not (low <= v <= high):
                        first[block] = v
                        break
            bad[block] += count
    return bad, first


def fused_rule(rule: str, z: np.ndarray, allowed: np.ndarray, bound: np.ndarray | None, tau: float,
               length_ref: float, mu: int = 0, screening: bool = True) -> np.ndarray:  # fmt: skip
    """The mask of "strict", "bound", "relaxed", "length" or "top_mu" (strict indicator, ``mu``) with the
    softmax computed here, on C-contiguous (R, n) ``z`` (float64 or float32) and float64 ``bound`` and a
    boolean ``allowed`` (M, n) repeated over the rows (see :func:`_fused_rows`): no score-sized temporary but
    the mask itself. ``screening``: see :func:`fused_select_recompute`."""
    return fused_select_recompute(rule, z, allowed, tau, length_ref, _NO_OPERAND, _NO_OPERAND, _NO_INDEX,
                                  _NO_INDEX, 1.0, bound=bound, mu=mu, screening=screening)[0]  # fmt: skip


def fused_select_recompute(rule: str, z: np.ndarray, allowed: np.ndarray, tau: float, length_ref: float,
                           a: np.ndarray, bt: np.ndarray, ia: np.ndarray, ib: np.ndarray, scale: float, *,
                           bound: np.ndarray | None = None, mu: int = 0, screening: bool = True,
                           span: np.ndarray | None = None,
                           dense: np.ndarray | None = None) -> tuple[np.ndarray, int, int, int]:  # fmt: skip
    """:func:`fused_rule` that also recomputes each row's selected scores in ``z`` itself (C-contiguous (R, n),
    float64 or float32: one rounding), row by row while the row is in cache (see :func:`_fused_rows`), when
    ``a`` (A, M, K) and ``bt`` (B, N, K) are not empty (C-contiguous float arrays; ``ia``/``ib`` the operand of
    each leading index ``r // M``): (mask, selected, valid, unproved rows). ``screening=False`` turns off the
    float32 screening of float32 scores (:mod:`lampnum.lamp.screen32`; the mask is the same either way: the tests
    compare them). ``span`` and ``dense``, when given, are :func:`spans` and :func:`dense_prefixes` of ``allowed``
    (a caller that reuses one mask computes them once)."""
    out = np.empty(z.shape, dtype=bool)  # every row cleared by the kernel
    kind = {"strict": STRICT, "bound": BOUND, "relaxed": RELAXED, "length": RELAXED, "top_mu": _TOP}[rule]
    beta = _ABSENT if bound is None else bound
    target = z if a.shape[0] > 0 else _ABSENT
    if span is None or dense is None:
        span = spans(allowed)
        dense = dense_prefixes(allowed, span)
    screen = screening and z.dtype == np.float32 and (kind == RELAXED or (kind != _TOP and tau >= LOWEST_TAU))
    bad, selected, valid, unproved = _fused_blocks(kind, rule in ("relaxed", "length"), rule == "length", z, allowed,
                                         span, dense, beta, tau, length_ref, int(mu),
                                         parallel_blocks(z.shape[0]), out, a, bt, ia, ib, scale, target,
                                         bool(screen))  # fmt: skip
    if bad:
        raise nonfinite_scores(int(bad))
    return out, int(selected), int(valid), int(unproved)


def row_rule(
    rule: str,
    z: np.ndarray,
    valid: np.ndarray,
    probs: np.ndarray | None,
    bound: np.ndarray | None,
    tau: float,
    length_ref: float,
    exhaustive: bool = False,
) -> np.ndarray:
    """The mask of a row-wise rule ("strict", "bound", "relaxed", "length", "mass") on C-contiguous (R, n)
    arrays: float64 ``z``, ``probs``, ``bound`` and boolean ``valid``. With ``probs`` None the softmax of the
    valid entries is computed here; ``exhaustive`` makes the mass rule sort every row fully (see ``_mass``).
    """
    out = np.zeros(z.shape, dtype=bool)
    kind = {"strict": STRICT, "bound": BOUND, "relaxed": RELAXED, "length": RELAXED, "mass": PROBABILITY}[
        rule
    ]
    needs_exp = probs is None or kind == RELAXED
    if rule != "mass" and probs is None:
        return fused_rule(rule, z, valid, bound, tau, length_ref)

    def work(block: slice) -> None:
        scratch = np.empty(
            min(block.stop - block.start, _CHUNK_ELEMENTS // max(z.shape[1], 1) or 1) * z.shape[1]
        )
        for part, cols, e, count in _chunks(z, valid, needs_exp, block):
            p, b = _rows_of(probs, part, cols), _rows_of(bound, part, cols)
            if rule == "mass":
                _mass(valid[part, cols], e, p, tau, count, exhaustive, out[part, cols])
                continue
            ind = scratch[: e.size].reshape(e.shape)
            _indicator(z[part, cols], valid[part, cols], e, p, b, kind, ind)
            if rule == "relaxed":
                limit = tau * ind.max(axis=-1, keepdims=True, initial=0.0)
            elif rule == "length":
                reduced = np.minimum(1.0, tau * np.sqrt(length_ref / np.maximum(count, 1)))[:, None]
                limit = reduced * ind.max(axis=-1, keepdims=True, initial=0.0)
            else:
                limit = tau
            np.greater(ind, limit, out=out[part, cols])
            out[part, cols] &= valid[part, cols]

    in_blocks(z.shape[0], work)
    return out


@njit(cache=True, nogil=True)
def _top(key, valid, counts, out):  # pragma: no cover - compiled
    """The ``counts[r]`` largest valid keys of each row, ties by position (lower index first)."""
    rows, n = key.shape
    for r in range(rows):
        c = counts[r]
        if c <= 0:
            continue
        if 8 * c >= n:  # many: sort the row's valid entries (stable, so ties keep index order)
            live = np.flatnonzero(valid[r])
            chosen = live[np.argsort(-key[r, live], kind="mergesort")][:c]
            for t in range(chosen.shape[0]):
                out[r, chosen[t]] = True
            continue
        best = np.empty(c)  # few: insertion into the c best so far (:func:`_keep_largest`)
        where = np.empty(c, dtype=np.int64)
        filled = 0
        for j in range(n):
            if valid[r, j]:
                filled = _keep_largest(key[r, j], j, c, filled, best, where)
        for t in range(filled):
            out[r, where[t]] = True


@njit(cache=True, nogil=True)
def _count_neg_inf(flat, start, stop):  # pragma: no cover - compiled
    count = 0
    for i in range(start, stop):
        count += flat[i] == -np.inf
    return count


@njit(cache=True, parallel=True)
def _nonfinite_on_valid(z, valid, blocks):  # pragma: no cover - compiled
    rows, n = z.shape
    counts = np.zeros(blocks, dtype=np.int64)
    for block in prange(blocks):
        count = 0
        for r in range(rows * block // blocks, rows * (block + 1) // blocks):
            for j in range(n):  # branch-free: NaN and ±inf fail the comparison
                count += valid[r, j] & (not (abs(z[r, j]) <= 1.7976931348623157e308))
        counts[block] = count
    return counts.sum()


def nonfinite_on_valid(z: np.ndarray, valid: np.ndarray) -> int:
    """The number of valid entries of ``z`` (float, the shape of the boolean ``valid``) that are NaN or
    infinite: one parallel pass over C-contiguous arrays, numpy otherwise."""
    if z.ndim >= 1 and z.size and z.dtype in (np.float32, np.float64) and z.flags.c_contiguous \
            and valid.flags.c_contiguous and valid.shape == z.shape:  # fmt: skip
        n = z.shape[-1]
        rows = z.reshape(-1, n)
        return int(_nonfinite_on_valid(rows, valid.reshape(-1, n), parallel_blocks(rows.shape[0])))
    return int((valid & ~np.isfinite(z)).sum())


def has_neg_inf(z: np.ndarray) -> bool:
    """Whether the float64 array ``z`` holds −inf (one parallel pass; numpy's ``isneginf`` takes several)."""
    flat = np.ascontiguousarray(z).reshape(-1)
    found = [0]

    def work(block: slice) -> None:
        found[0] += _count_neg_inf(flat, block.start, block.stop)

    in_blocks(flat.size, work, smallest=1 << 16)
    return found[0] > 0


@njit(cache=True, nogil=True)
def _floyd(valid, counts, first_draw, draws, out):  # pragma: no cover - compiled
    """:func:`lampnum.lamp.rules.random_count` for the rows of this block: row r takes ``counts[r]`` uniforms
    from ``draws`` starting at ``first_draw[r]``."""
    n = valid.shape[1]
    live = np.empty(n, dtype=np.int64)
    taken = np.zeros(n, dtype=np.bool_)  # by rank among the row's valid entries; cleared after each row
    for r in range(valid.shape[0]):
        c = counts[r]
        if c == 0:
            continue
        size = 0
        for j in range(n):
            if valid[r, j]:
                live[size] = j
                size += 1
        used = first_draw[r]
        for j in range(size - c, size):
            t = min(np.int64(draws[used] * (j + 1)), j)  # u·(j + 1) may round up to j + 1
            used += 1
            rank = j if taken[t] else t
            taken[rank] = True
            out[r, live[rank]] = True
        for j in range(size):
            taken[j] = False


def random_rows(valid: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:func:`lampnum.lamp.rules.random_count` on (R, n) ``valid`` with (R,) ``counts`` (Floyd's sampling, one
    uniform per chosen entry), row blocks in parallel."""
    counts = np.minimum(np.asarray(counts, dtype=np.int64), valid.sum(axis=-1))
    first_draw = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    draws = rng.random(int(counts.sum()))
    out = np.zeros(valid.shape, dtype=bool)
    in_blocks(valid.shape[0], lambda b: _floyd(valid[b], counts[b], first_draw[b], draws, out[b]))
    return out


def top_rows(key: np.ndarray, valid: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The ``counts`` (R,) largest valid ``key`` entries of each (R, n) row (all valid ones if fewer)."""
    out = np.zeros(key.shape, dtype=bool)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    in_blocks(key.shape[0], lambda block: _top(key[block], valid[block], counts[block], out[block]))
    return out


@njit(cache=True, nogil=True)
def dots_at(a, bt, ia, ib, i, j, out):  # pragma: no cover - compiled
    """``out[t] = Σ_k a[ia[t], i[t], k]·bt[ib[t], j[t], k]`` in float64 (``a`` float64, both C-contiguous), in
    the eight-lane order of :func:`lampnum.lamp.dot_lanes.dot_lanes`."""
    for t in range(out.shape[0]):
        out[t] = dot_lanes(a[ia[t], i[t]], bt[ib[t]], j[t])


@njit(cache=True, nogil=True, inline="always")
def _selected_columns(mask_row, columns, stop=-1):  # pragma: no cover - compiled
    """The columns ``j < stop`` set in the boolean row ``mask_row`` (``stop`` < 0: the whole row), in increasing
    order, into ``columns`` (length at least ``len(mask_row) + 1``); returns their number. Eight entries are
    tested at once where the row's length is a multiple of 8 (a mask of a few percent is mostly zero words)."""
    n = mask_row.shape[0]
    stop = n if stop < 0 else min(stop, n)
    found = 0
    if n % 8 == 0:
        words = mask_row.view(np.uint64)
        full = stop // 8
        for w in range((stop + 7) // 8):
            word = words[w]
            if w == full:  # the bytes of the last, partial word past stop (little-endian: byte b is bits 8b…)
                word &= (np.uint64(1) << np.uint64(8 * (stop - 8 * full))) - np.uint64(1)
            found = gather_set_bytes(word, 8 * w, columns, found)
        return found
    for j in range(stop):  # branch-free: the slot past the last set column is overwritten
        columns[found] = j
        found += np.int64(mask_row[j])
    return found


@njit(cache=True, nogil=True)
def masked_invalid(mask, values, allowed, start, stop):  # pragma: no cover - compiled
    """Rows ``start <= r < stop`` of (R, N) ``mask``: (the number of selected entries, the number of those not
    valid). Entry (r, j) is valid when ``allowed[r mod P, j]`` (``allowed`` (P, N)), or, for P = 0, when
    ``values[r, j] > −inf``."""
    period = allowed.shape[0]
    columns = np.empty(mask.shape[1] + 1, dtype=np.int64)
    selected, invalid = 0, 0
    for r in range(start, stop):
        found = _selected_columns(mask[r], columns)
        selected += found
        for t in range(found):
            j = columns[t]
            invalid += (not allowed[r % period, j]) if period > 0 else values[r, j] == -np.inf
    return selected, invalid


@njit(cache=True, nogil=True)
def dots_masked(a, bt, ia, ib, mask, scale, bias, values, start, stop):  # pragma: no cover - compiled
    """Rows ``start <= r < stop`` of the (R, N) views of ``mask`` and ``values`` (``r = lead·M + i``, ``a`` (A, M,
    K), ``bt`` (B, N, K), C-contiguous): ``values[r, j] = Σ_k a[ia[lead], i, k]·bt[ib[lead], j, k]`` where
    ``mask[r, j]``, in float64 in the eight-lane order of :func:`lampnum.lamp.dot_lanes.dot_lanes` (:func:`dots_at`'s
    arithmetic), times ``scale`` when it is not 1, plus ``bias[j]`` when ``bias`` is not empty, stored in
    ``values``' dtype (one rounding for float32). Every entry of a row's selected dot products shares the row of
    ``a`` (converted to float64 once): no index arrays of the selected entries are built; a row's selected columns
    are found eight mask entries at a time (:func:`_selected_columns`)."""
    m, depth = a.shape[1], a.shape[2]
    columns = np.empty(mask.shape[1] + 1, dtype=np.int64)
    a_row = np.empty(depth)
    for r in range(start, stop):
        found = _selected_columns(mask[r], columns)
        if found > 0:
            _recompute_row(r, m, found, columns, a, bt, ia, ib, scale, bias, a_row, values)


@njit(cache=True, parallel=True)
def masked_invalid_blocks(mask, values, allowed, blocks):  # pragma: no cover - compiled
    """:func:`masked_invalid` over all rows, in ``blocks`` row blocks of one Numba parallel launch."""
    rows = mask.shape[0]
    counts = np.zeros((blocks, 2), dtype=np.int64)
    for block in prange(blocks):
        counts[block, 0], counts[block, 1] = masked_invalid(mask, values, allowed, rows * block // blocks,
                                                            rows * (block + 1) // blocks)  # fmt: skip
    return counts[:, 0].sum(), counts[:, 1].sum()


@njit(cache=True, parallel=True)
def dots_masked_blocks(a, bt, ia, ib, mask, scale, bias, values, blocks):  # pragma: no cover - compiled
    """:func:`dots_masked` over all rows, in ``blocks`` row blocks of one Numba parallel launch (see
    :func:`_fused_blocks` for why not a thread pool)."""
    rows = mask.shape[0]
    for block in prange(blocks):
        dots_masked(a, bt, ia, ib, mask, scale, bias, values, rows * block // blocks, rows * (block + 1) // blocks)


def dots_masked_reference(a, bt, ia, ib, mask, scale, bias, values):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201
    """Pure-Python twin of :func:`dots_masked` over all rows (Python floats are IEEE 754 float64)."""
    m, depth = a.shape[1], a.shape[2]
    for r in range(mask.shape[0]):
        lead, i = divmod(r, m)
        x, y = ia[lead], ib[lead]
        for j in range(mask.shape[1]):
            if mask[r, j]:
                acc = dot_lanes_reference(a[x, i, :depth], bt[y, j, :depth])
                if scale != 1.0:
                    acc *= scale
                if len(bias) > 0:
                    acc += float(bias[j])
                values[r, j] = acc


@njit(cache=True, nogil=True)
def _gather_at_least(key, valid, cut, values):  # pragma: no cover - compiled
    """Write the valid keys ``>= cut`` into ``values`` in C order; return their number."""
    m = 0
    for r in range(key.shape[0]):
        for j in range(key.shape[1]):
            if valid[r, j] and key[r, j] >= cut:
                values[m] = key[r, j]
                m += 1
    return m


@njit(cache=True, nogil=True)
def _above_kth(key, valid, kth, out):  # pragma: no cover - compiled
    """``out = valid & (key > kth)``; return (its count, the number of valid keys equal to kth)."""
    greater, ties = 0, 0
    for r in range(key.shape[0]):
        for j in range(key.shape[1]):  # branch-free (bitwise on booleans), so it vectorises
            ok = valid[r, j]
            v = ok & (key[r, j] > kth)
            out[r, j] = v
            greater += v
            ties += ok & (key[r, j] == kth)
    return greater, ties


@njit(cache=True, nogil=True)
def _take_ties(key, valid, kth, quota, out):  # pragma: no cover - compiled
    """Select the first ``quota`` valid keys equal to kth in C order."""
    for r in range(key.shape[0]):
        for j in range(key.shape[1]):
            if quota <= 0:
                return
            if valid[r, j] and key[r, j] == kth:
                out[r, j] = True
                quota -= 1


def budget(key: np.ndarray, valid: np.ndarray, rate: float) -> np.ndarray:
    """:func:`lampnum.lamp.rules.budget` on C-contiguous (R, n) ``key`` (float64) and ``valid``: the same
    candidates (valid keys at or above the same sampled cut, or all valid keys), the same k-th largest value
    and the same ties (first by flat C order), gathered and marked in parallel Numba passes over row blocks."""
    n_valid = int(np.count_nonzero(valid))
    k = math.floor(Fraction(rate) * n_valid + Fraction(1, 2))
    if k <= 0:
        return np.zeros(key.shape, dtype=bool)
    if k >= n_valid:
        return valid.copy()
    rows = key.shape[0]
    flat, live = key.reshape(-1), valid.reshape(-1)
    cut = -np.inf  # every valid entry
    if n_valid > rules._SAMPLE_FROM:
        at = np.random.default_rng(0).integers(0, flat.size, rules._SAMPLE)
        sample = flat[at][live[at]]
        keep = min(sample.size, 2 * math.ceil(sample.size * k / n_valid) + 16)
        if keep < sample.size:
            cut = float(np.partition(sample, sample.size - keep)[sample.size - keep])
    buffer = np.empty(flat.size)

    def gather(threshold: float) -> np.ndarray:
        found: dict[int, int] = {}

        def work(block: slice) -> None:
            start = block.start * key.shape[1]
            found[block.start] = _gather_at_least(key[block], valid[block], threshold, buffer[start:])

        in_blocks(rows, work)
        n = key.shape[1]
        return np.concatenate([buffer[a * n : a * n + m] for a, m in sorted(found.items())])

    values = gather(cut)
    if values.size < k:
        values = gather(-np.inf)
    values.partition(values.size - k)
    kth = float(values[values.size - k])
    out = np.empty(key.shape, dtype=bool)
    counts: dict[int, tuple[slice, int, int]] = {}

    def mark(block: slice) -> None:
        greater, ties = _above_kth(key[block], valid[block], kth, out[block])
        counts[block.start] = (block, greater, ties)

    in_blocks(rows, mark)
    quota = k - sum(greater for _, greater, _ in counts.values())
    for _, (block, _, ties) in sorted(counts.items()):
        if quota <= 0:
            break
        _take_ties(key[block], valid[block], kth, min(quota, ties), out[block])
        quota -= min(quota, ties)
    return out
