"""``lampnum.matmul``: matrix products under a :class:`~lampnum.MatmulSpec` accumulation model (the emulated BLAS).

Shapes follow numpy's ``@``: ``(..., M, K) @ (..., K, N)`` with broadcast batch dimensions, a 1-D left operand is a
row vector and a 1-D right operand a column vector (both 1-D: the dot product, a 0-d array). The result is a float64
array holding the emulated values.

Exactness conditions, checked on every call:

- ``product=None`` (exact products) needs every product ``a·b`` exact in float64: operands with at most 26 significant
  bits (float32 data, or any data after ``input`` rounding to a format with p <= 26) whose products stay in float64's
  normal range. Otherwise a ``ValueError`` says so (set ``input=...``, or round products with ``product=...``).
- A rounded product needs the same exactness, except ``product="fp64"`` in ``rne`` (numpy's product is that rounding).
- Sums are rounded correctly into formats of p <= 51, and into fp64 itself in ``rne``
  (:mod:`lampnum.emulate.accumulate`).

Fast path: when the spec rounds nothing (fp64 accumulator in rne, no input/product/output rounding, no via) and all
products and partial sums are exact, every summation order gives the same result, so numpy's BLAS product is returned
(bit-identical). This holds when the operands' significands and exponent spans make every partial sum representable;
:func:`blas_is_exact` checks a sufficient condition. Otherwise the sequential kernel runs.

Kernels, by spec (:func:`fast_path`); all are bit-identical to :mod:`lampnum.emulate.matmul_reference`:

- "exact products" (:func:`lampnum.emulate.matmul_fast.exact_product_kernel`): no product rounding (or fp64 products
  in rne), no via, strict (``block=1``), a deterministic mode (rne rna rtz rup rdn rto), an
  accumulator with 2 <= p <= 51. One float64 addition per update, rounded by bit operations; a sum that lands on a
  rounding boundary or outside the accumulator's normal range is redone exactly (the argument is in that module).
  In rne with finite operands, :func:`lampnum.emulate.matmul_split.strict_rne_kernel` runs instead: an FMA and
  Veltkamp's splitting per update, and, when :func:`~lampnum.emulate.matmul_split.range_certificate` proves that no
  partial sum can overflow or reach the subnormal range, no range test in the loop at all; with ``lower=`` it
  computes only the band (a causal product costs about half). Where the operands are float32 values and the
  accumulator has p <= 22 inside float32's exponent range (bf16, fp16, fp8, the paper's registers),
  :func:`lampnum.emulate.matmul_lanes32.strict_rne_lanes32_kernel` does the same on float32 lanes (twice as many
  per vector), flagged updates redone per element; with its certificate the loop tests midpoints only.
- "register" (:func:`lampnum.emulate.matmul_fast.register_kernel`): the LAMP paper's fp32 register, ``product="fp32"``,
  ``via="fp32"``, rne, ``block=1``, an accumulator with p <= 24 inside fp32's exponent range, and operands that are
  float32 values: float32 hardware products and sums, flagged specials redone in float64. For p <= 23 with a
  :func:`~lampnum.emulate.matmul_split.register_certificate` (nothing exceptional can happen),
  :func:`lampnum.emulate.matmul_split.register_split_kernel` runs: no test in the loop.
- "block FMA": ``block > 1`` with float64 block sums, no via, a deterministic mode, finite operands. In rne with
  exact products, operands that are float32 values and an accumulator of p <= 22 inside float32's normal range,
  :func:`lampnum.emulate.matmul_block32.block32_matmul`: float32 block sums on sixteen lanes and each update
  certified from an error bound in float32, or redone exactly. Other rne cases with exact products,
  :func:`lampnum.emulate.matmul_split.block_rne_kernel`: the block sums by a chain of FMAs (one per
  product, on vector lanes) and one checked Veltkamp rounding per block. Otherwise
  (:func:`lampnum.emulate.matmul_blocked.blocked_matmul`) the block sums come from a BLAS product and every
  accumulator update is certified from an error bound or recomputed exactly.
- "general" (:mod:`lampnum.emulate.matmul_kernels`): everything else, block FMA and stochastic modes included (their
  random words are indexed by element and step, so every kernel gives the same result for any tiling or threads).

Special values: NaN and infinities propagate as in IEEE 754 float64 arithmetic (inf·0 = NaN, inf - inf = NaN), then
each rounding maps them into the format's encoding (:func:`lampnum.round`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..formats import FORMATS, Format
from ..rounding import round as round_to_format
from ..rounding.api import resolve_rng
from ..rounding.modes import RoundingMode
from .accumulate import check_sum_format
from .matmul_block32 import block32_eligible, block32_matmul
from .matmul_blocked import blocked_eligible, blocked_matmul
from .matmul_fast import exact_product_kernel, register_kernel
from .matmul_kernels import run_matmul_kernel
from .matmul_lanes32 import float32_rows, lanes32_certified, lanes32_eligible, strict_rne_lanes32_kernel
from .matmul_split import (
    block_rne_kernel,
    range_certificate,
    register_certificate,
    register_split_kernel,
    strict_rne_kernel,
)
from .operand_stats import OperandStats, max_abs_col_sum, max_abs_row_sum, operand_stats
from .spec import MatmulSpec, as_spec

__all__ = ["matmul", "lowered", "blas_is_exact", "significant_bits",
           "fast_path"]  # fmt: skip

_FP64 = FORMATS["fp64"]
_FP32 = FORMATS["fp32"]
_PRODUCT_EXACT_BITS = 26


def lowered(fmt: Format) -> tuple:
    """The parameter tuple the matmul kernels take for a format."""
    params = fmt.params()
    return (params.precision, params.emin, params.subnormals, params.max_value, params.overflow_value,
            params.inf_value, params.unsigned_zero)  # fmt: skip


def significant_bits(x: np.ndarray) -> int:
    """The largest number of significant bits among the finite nonzero values of ``x`` (0 when there are none)."""
    return operand_stats(x).max_significant_bits


def _products_exact(a: OperandStats, b: OperandStats) -> bool:
    if a.max_significant_bits + b.max_significant_bits > 53:
        return False
    if a.count == 0 or b.count == 0:
        return True
    return a.min_abs * b.min_abs >= np.finfo(np.float64).tiny and a.max_abs * b.max_abs < np.finfo(np.float64).max / 2


def blas_is_exact(a: np.ndarray, b: np.ndarray, a_stats: OperandStats | None = None,
                  b_stats: OperandStats | None = None) -> bool:  # fmt: skip
    """A sufficient condition for every partial sum of every product to be exact in float64 (then BLAS's unknown
    summation order cannot matter): all products are multiples of 2^lsb and bounded by 2^top with
    ``top - lsb + log2(K) <= 53`` (``lsb``: the sum of the operands' least significant set bits)."""
    a_stats = a_stats or operand_stats(a)
    b_stats = b_stats or operand_stats(b)
    if not (a_stats.finite and b_stats.finite) or not _products_exact(a_stats, b_stats):
        return False
    if a_stats.count == 0 or b_stats.count == 0:
        return True
    lsb = a_stats.lsb + b_stats.lsb
    top = (a_stats.max_exponent + 1) + (b_stats.max_exponent + 1) + int(np.ceil(np.log2(max(a.shape[-1], 1)))) + 1
    return top - lsb <= 53


def fast_path(spec: MatmulSpec, acc_plain: bool, plain_product: bool) -> str:
    """Which kernel runs a spec (see the module docstring): "exact products", "block FMA", "register" (when the
    operands are also float32 values) or "general"."""
    acc = spec.accumulator
    if acc_plain or acc.p < 2:
        return "general"
    exact_sums = (spec.product is None or plain_product) and spec.via is None and not spec.mode.stochastic
    if exact_sums and spec.block == 1:
        return "exact products"
    if exact_sums and spec.block_precision == _FP64:
        return "block FMA"
    fp32_register = spec.product == _FP32 and spec.via == _FP32 and spec.mode is RoundingMode.RNE
    if fp32_register and spec.block == 1 and acc.p <= 24 and acc.emax <= 127 and acc.emin >= -126:
        return "register"
    return "general"


def _float32_values(x: np.ndarray, stats: OperandStats) -> bool:
    """Every element of ``x`` is a float32 value: at once when its finite nonzero entries are float32 normal numbers
    (at most 24 significant bits, exponents in [-126, 127]) and it is finite, else by a round trip."""
    if stats.finite and (stats.count == 0 or (stats.max_significant_bits <= 24 and stats.min_exponent >= -126
                                              and stats.max_exponent <= 127)):  # fmt: skip
        return True
    return _float32_valued(x)


def _float32_valued(x: np.ndarray) -> bool:
    """Every element of the float64 array ``x`` is a float32 value (NaN included)."""
    with np.errstate(over="ignore", invalid="ignore"):
        narrow = x.astype(np.float32).astype(np.float64)
    return bool(np.array_equal(narrow, x, equal_nan=True))


def _round_operand(x: np.ndarray, fmt: Format, mode: RoundingMode, generator: np.random.Generator | None) -> np.ndarray:
    """``x`` rounded to ``fmt``; a transposed operand (its last two axes swapped from a C-contiguous array, as a
    weight ``w.T``) is rounded in its own memory order and transposed back, which saves a copy, in the
    deterministic modes (rounding is elementwise; a stochastic mode's random bits go by C-order position)."""
    swapped = np.swapaxes(x, -1, -2) if x.ndim >= 2 else x
    if not mode.stochastic and not x.flags.c_contiguous and swapped.flags.c_contiguous:
        return np.swapaxes(round_to_format(swapped, fmt, mode), -1, -2)
    return round_to_format(x, fmt, mode, rng=generator)


def _holds_float32(fmt: Format) -> bool:
    """Whether every float32 value (infinities and NaN included) is a value of ``fmt``, so that rounding a
    float32 array to ``fmt`` is the identity in every mode (fp32 itself, fp64, any wider IEEE format)."""
    return (fmt.p >= 24 and fmt.emax >= 127 and fmt.emin <= -126 and fmt.subnormals and fmt.emin - fmt.p + 1 <= -149
            and fmt.specials == "ieee")  # fmt: skip


def _as_operand(x: Any, name: str) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"matmul operand {name} must be a float32 or float64 array, got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"matmul operand {name} must have at least one dimension (numpy's matmul rule)")
    return array


def matmul(a: Any, b: Any, spec: MatmulSpec | None = None, *, rng: np.random.Generator | int | None = None,
           dtype: Any = np.float64, lower: int | None = None, **spec_fields: Any) -> np.ndarray:  # fmt: skip
    """Emulated ``a @ b`` under ``spec`` (fields may be given or overridden as keywords, e.g. ``accumulator="bf16"``).

    ``rng`` (Generator or seed) drives stochastic rounding. See the module docstring for shapes, exactness conditions
    and special values; :class:`~lampnum.MatmulSpec` for the accumulation semantics.

    ``dtype``: float64 (default: the emulated values exactly) or float32, the result then rounded to float32 (round
    to nearest even, as ``.astype(np.float32)``; exact when the accumulator and output formats fit in float32, as
    bf16, fp16, fp8 and the paper's m-bit registers do). The fp32-register path writes float32 directly, so a
    working-precision-float32 caller saves a float64 array of the output's size and its conversion.

    ``lower``: compute only the entries ``(i, j)`` with ``j − i <= lower`` of each ``M × N`` result, the others are
    0 (``lower = N − M`` is a causal attention product ``q kᵀ``, whose masked entries the softmax never reads). The
    fp32-register and strict round-to-nearest paths (float64 and float32 lanes) skip the work above the band (about
    half of a square causal product); the other paths compute every entry and zero the rest. Needs 2-D (or
    batched) operands.

    float32 operands whose input rounding is the identity (no ``input``, or ``input="fp32"`` outside the stochastic
    modes) reach the float32-lane kernel without a float64 copy; a transposed operand (a weight ``w.T``) is
    rounded in its own memory order and copied to rows block by block.

    >>> import lampnum as ln, numpy as np
    >>> a = np.full((1, 4096), 1.0, dtype=np.float32); b = np.full((4096, 1), 1.0, dtype=np.float32)
    >>> float(ln.matmul(a, b, accumulator="bf16")[0, 0])  # bf16 stagnates at 256: 256 + 1 rounds back to 256
    256.0
    >>> float(ln.matmul(a, b, accumulator="bf16", block=32)[0, 0])  # block sums of 32 are added exactly
    4096.0
    """
    spec = as_spec(spec, **spec_fields)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"matmul dtype must be float32 or float64, got {dtype}")
    a = _as_operand(a, "a")
    b = _as_operand(b, "b")
    if lower is not None:
        if isinstance(lower, bool) or not isinstance(lower, (int, np.integer)):
            raise TypeError(f"matmul lower must be an int or None, got {lower!r}")
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError("matmul lower= needs operands with at least two axes (a band of each M × N result)")
    squeeze_rows = a.ndim == 1
    squeeze_cols = b.ndim == 1
    a3 = a[np.newaxis, :] if squeeze_rows else a
    b3 = b[:, np.newaxis] if squeeze_cols else b
    if a3.shape[-1] != b3.shape[-2]:
        raise ValueError(f"matmul shapes {a.shape} and {b.shape} do not align: {a3.shape[-1]} != {b3.shape[-2]}")
    try:
        batch_shape = np.broadcast_shapes(a3.shape[:-2], b3.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul batch dimensions {a.shape[:-2]} and {b.shape[:-2]} do not broadcast") from None
    generator = resolve_rng(rng) if spec.mode.stochastic else None
    identity_input = spec.input is None or (_holds_float32(spec.input) and not spec.mode.stochastic)
    if identity_input and a3.dtype == np.float32 and b3.dtype == np.float32:
        a64, b64 = a3, b3  # float32 values, which the input rounding (if any) leaves as they are (stochastic
        # modes still round, as that draws from the generator); _product converts them where a kernel needs float64
    else:
        a64 = np.asarray(a3, dtype=np.float64)
        b64 = np.asarray(b3, dtype=np.float64)
    if spec.input is not None and a64.dtype == np.float64:
        a64 = _round_operand(a64, spec.input, spec.mode, generator)
        b64 = _round_operand(b64, spec.input, spec.mode, generator)
    banded = [False]  # set by the register and strict-rne paths, which write the zeros themselves
    result = _product(a64, b64, batch_shape, spec, generator, dtype, lower, banded)
    if lower is not None and not banded[0]:  # the other paths computed every entry
        outside = ~np.tri(result.shape[-2], result.shape[-1], int(lower), dtype=bool)
        np.copyto(result, 0.0, where=outside)
    if spec.output is not None:
        result = round_to_format(result, spec.output, spec.mode, rng=generator)
    result = result.astype(dtype, copy=False)
    if squeeze_rows:
        result = result[..., 0, :]
    if squeeze_cols:
        result = result[..., 0]
    return result


def _product(a: np.ndarray, b: np.ndarray, batch_shape: tuple[int, ...], spec: MatmulSpec,
             generator: np.random.Generator | None, dtype: Any = np.float64,
             lower: int | None = None, banded: list[bool] | None = None) -> np.ndarray:  # fmt: skip
    """The accumulation, on operands already rounded to the input format: float64 arrays, or float32 arrays
    (converted to float64 only where a kernel needs it). The result is float64, or float32 where ``dtype`` asks for
    it and the path writes it exactly (the fp32-register and float32-lane paths)."""
    rounds_nothing = spec.product is None and spec.via is None and spec.accumulator == _FP64 and (
        spec.block == 1 or spec.block_precision == _FP64) and spec.mode is RoundingMode.RNE  # fmt: skip
    a_stats, b_stats = operand_stats(a), operand_stats(b)
    if rounds_nothing and blas_is_exact(a, b, a_stats, b_stats):
        return np.matmul(a.astype(np.float64, copy=False), b.astype(np.float64, copy=False))
    plain_product = spec.product == _FP64 and spec.mode is RoundingMode.RNE
    if not plain_product and not _products_exact(a_stats, b_stats):
        raise ValueError(
            "emulated products need operands whose products are exact in float64 (at most 26 significant bits each, "
            "as float32 data has, and no float64 underflow or overflow); round the operands with input=... (e.g. "
            "'fp32'), or round products to float64 with product='fp64'"
        )
    acc_plain = check_sum_format(spec.accumulator, spec.mode, "accumulator")
    block_plain = check_sum_format(spec.block_precision, RoundingMode.RNE, "block_precision")
    if spec.via is not None:
        check_sum_format(spec.via, RoundingMode.RNE, "via")
    n_rows, depth, n_cols = a.shape[-2], a.shape[-1], b.shape[-1]
    if depth == 0 or n_rows == 0 or n_cols == 0:
        return np.zeros(batch_shape + (n_rows, n_cols))
    a_batches = a.reshape((-1, n_rows, depth))
    b_batches = b.reshape((-1, depth, n_cols))
    a_index = np.broadcast_to(np.arange(a_batches.shape[0]).reshape(a.shape[:-2] or (1,)), batch_shape or (1,))
    b_index = np.broadcast_to(np.arange(b_batches.shape[0]).reshape(b.shape[:-2] or (1,)), batch_shape or (1,))
    out = np.empty((a_index.size, n_rows, n_cols))
    keys = generator.integers(0, np.iinfo(np.uint64).max, size=2, dtype=np.uint64, endpoint=True) if generator \
        else np.zeros(2, dtype=np.uint64)  # fmt: skip
    a_index = np.ascontiguousarray(a_index.reshape(-1))
    b_index = np.ascontiguousarray(b_index.reshape(-1))
    path = fast_path(spec, acc_plain, plain_product)
    max_bits = np.float64(spec.accumulator.max).view(np.uint64)
    acc = spec.accumulator
    band = n_cols if lower is None else int(np.clip(lower, -n_rows, n_cols))
    float32_in = a_batches.dtype == np.float32  # both operands, or neither
    if path == "exact products" and spec.mode is RoundingMode.RNE and lanes32_eligible(a_stats, b_stats, acc) and (
            float32_in or (_float32_values(a_batches, a_stats) and _float32_values(b_batches, b_stats))):  # fmt: skip
        a32, b32 = float32_rows(a_batches), float32_rows(b_batches)
        if dtype == np.float32 and spec.output is None:  # float32 holds the accumulator exactly
            out = np.empty((a_index.size, n_rows, n_cols), dtype=np.float32)
        certified = lanes32_certified(a_stats, b_stats, max_abs_row_sum(a32), max_abs_col_sum(b32), depth, acc)
        strict_rne_lanes32_kernel(a32, b32, a_index, b_index, out, lowered(acc), band, certified)
        if banded is not None:
            banded[0] = True
        return out.reshape(batch_shape + (n_rows, n_cols))
    if path == "block FMA" and spec.mode is RoundingMode.RNE and spec.product is None \
            and block32_eligible(a_stats, b_stats, spec.block, acc) and (float32_in or (
            _float32_values(a_batches, a_stats) and _float32_values(b_batches, b_stats))):  # fmt: skip
        block32_matmul(a_batches, b_batches, a_index, b_index, out, spec.block, acc, lowered(acc))
        return out.reshape(batch_shape + (n_rows, n_cols))
    a_batches = np.ascontiguousarray(a_batches, dtype=np.float64)
    b_batches = np.ascontiguousarray(b_batches, dtype=np.float64)
    if path == "register" and _float32_values(a_batches, a_stats) and _float32_values(b_batches, b_stats):
        a32, b32 = a_batches.astype(np.float32), b_batches.astype(np.float32)
        if spec.accumulator.p <= 23 and register_certificate(a_stats, b_stats, max_abs_row_sum(a32),
                                                             max_abs_col_sum(b32), depth, spec.accumulator):
            if dtype == np.float32 and spec.output is None:  # the float32 register holds the result exactly
                out = np.empty((a_index.size, n_rows, n_cols), dtype=np.float32)
            register_split_kernel(a32, b32, a_index, b_index, out, spec.accumulator.p, band)
            if banded is not None:
                banded[0] = True
        else:
            register_kernel(a32, b32, a_index, b_index, out, lowered(_FP32), lowered(_FP32),
                            lowered(spec.accumulator), max_bits)  # fmt: skip
        return out.reshape(batch_shape + (n_rows, n_cols))
    if path == "exact products" and spec.mode is RoundingMode.RNE:
        a_row_sum, b_col_sum = max_abs_row_sum(a_batches), max_abs_col_sum(b_batches)
        certificate = range_certificate(a_stats, b_stats, a_row_sum, b_col_sum, depth, spec.accumulator)
        if certificate.splittable:
            strict_rne_kernel(a_batches, b_batches, a_index, b_index, out, acc.p, float(acc.tiny),
                              float(acc.max), lowered(acc), certificate.certified, 1.0, band)  # fmt: skip
            if banded is not None:
                banded[0] = True
            return out.reshape(batch_shape + (n_rows, n_cols))
    if path == "exact products":
        exact_product_kernel(spec.mode.code)(a_batches, b_batches, a_index, b_index, out, lowered(spec.accumulator),
                                             max_bits)  # fmt: skip
        return out.reshape(batch_shape + (n_rows, n_cols))
    if path == "block FMA" and spec.mode is RoundingMode.RNE and spec.product is None and a_stats.finite \
            and b_stats.finite and spec.accumulator.p <= 51:  # fmt: skip
        block_rne_kernel(a_batches, b_batches, a_index, b_index, out, spec.block, acc.p, float(acc.tiny),
                         float(acc.max), lowered(acc))  # fmt: skip
        return out.reshape(batch_shape + (n_rows, n_cols))
    if path == "block FMA":
        float32_blas = _float32_values(a_batches, a_stats) and _float32_values(b_batches, b_stats)
        if blocked_eligible(a_stats, b_stats, spec.block, float32_blas):
            blocked_matmul(a_batches, b_batches, a_index, b_index, out, spec.block, spec.accumulator,
                           lowered(spec.accumulator), spec.mode.code, float32_blas)  # fmt: skip
            return out.reshape(batch_shape + (n_rows, n_cols))
    product_format = spec.product or _FP64
    via_format = spec.via or _FP64
    run_matmul_kernel(
        a_batches, b_batches, a_index, b_index, out, spec.block,
        lowered(product_format), lowered(spec.block_precision), lowered(spec.accumulator), lowered(via_format),
        keys[0], keys[1], spec.mode.code, spec.product is not None and not plain_product, spec.via is not None,
        acc_plain, block_plain,
    )  # fmt: skip
    return out.reshape(batch_shape + (n_rows, n_cols))
