"""The LAMP recompute step: recompute only the selected components of a product, in high precision.

LAMP (arXiv 2601.21623; LAMP-MATH.md §3) computes ``ẑ = g(x)`` in low precision, selects components from ``ẑ``
and recomputes exactly those. For a product ``C = A @ B`` (attention scores ``QKᵀ``, a linear layer ``xW``,
logits ``hWᵀ``) a selected component ``(…, i, j)`` is the dot product of row i of A with column j of B. The
index pairs are gathered (``numpy.flatnonzero`` of the mask), their dot products computed as one batch, and
scattered into a copy of ``Ĉ``: the cost is proportional to the number of selected components, never to the
size of the product.

High precision (``high``):

- ``None`` (default): float64. Each product of two float32 (or narrower) values is exact in float64 (24 + 24
  <= 53 significant bits); only the float64 summation rounds (eight lanes by k mod 8, then pairwise:
  :mod:`lampnum.lamp.dot_lanes`), within ``γ_{⌈K/8⌉+3}`` ``Σ|a_k b_k|`` (about ``1.2·10⁻¹⁵`` relative for
  K = 64): negligible beside any low-precision error being corrected. Operands that are float64 values with
  more than 26 significant bits get rounded products (still float64 accuracy).
- a :class:`~lampnum.MatmulSpec`: the gathered rows go through ``lampnum.matmul`` as one batched ``(n, 1, K) @
  (n, K, 1)`` product, so each component is computed exactly as that accumulation model computes it.

``scale`` and ``bias`` are applied to the recomputed dot products in float64: ``value = scale·(a·b) +
bias_j``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..emulate import MatmulSpec, matmul
from . import kernels

__all__ = ["LampResult", "recompute_product"]

_CHUNK = 16384  # gathered pairs per batch: bounds the temporary (CHUNK, K) float64 operands to a few MiB


@dataclass(frozen=True)
class LampResult:
    """What one LAMP step did: the corrected values and its accounting.

    ``values``: the corrected output of g (float64, or the caller's float32 array corrected in place; shape of
    the low-precision input); ``mask``: the
    recomputed components; ``selected``: their number; ``valid``: the number of components that exist (causal
    entries); ``inner``: multiply-adds per recomputed component (the product's inner dimension K); ``total``:
    the number of components of the full product (``values.size``), so ``total·inner`` is what computing the
    whole product costs.
    """

    values: np.ndarray
    mask: np.ndarray
    selected: int
    valid: int
    inner: int
    total: int

    @property
    def recompute_rate(self) -> float:
        """``selected / valid`` (0 when nothing is valid)."""
        return self.selected / self.valid if self.valid else 0.0

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds spent on recomputation: ``selected·inner``."""
        return self.selected * self.inner

    @property
    def multiply_add_fraction(self) -> float:
        """Recomputation cost as a fraction of the full product's multiply-adds: ``selected / total``."""
        return self.selected / self.total if self.total else 0.0


def _dots_by_spec(a_rows: np.ndarray, b_rows: np.ndarray, high: MatmulSpec) -> np.ndarray:
    """``a_rows[t]·b_rows[t]`` for each gathered pair t by ``lampnum.matmul(·, high)``, in batches."""
    out = np.empty(a_rows.shape[0], dtype=np.float64)
    for start in range(0, a_rows.shape[0], _CHUNK):
        stop = start + _CHUNK
        out[start:stop] = matmul(a_rows[start:stop, None, :], b_rows[start:stop, :, None], high)[:, 0, 0]
    return out


def _operand_batch(lead: np.ndarray, batch: tuple[int, ...], own: tuple[int, ...]) -> np.ndarray:
    """Map flat indices over ``batch`` to flat indices over an operand's leading axes ``own`` (broadcast)."""
    padded = (1,) * (len(batch) - len(own)) + own
    if padded == batch:
        return lead
    coords = np.unravel_index(lead, batch)
    kept = [c if size != 1 else np.zeros_like(c) for c, size in zip(coords, padded, strict=True)]
    return np.ravel_multi_index(kept, padded)


def _repeated_rows(small: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``small`` (broadcast to ``shape``) as a (P, N) mask whose row ``r mod P`` is row r of the broadcast, when
    it is one: a mask of the trailing axes repeated over the leading ones (the causal mask), or the full mask.
    None otherwise."""
    n = shape[-1]
    if n == 0 or small.size % n or not _repeats_trailing(small, shape):
        return None
    return np.ascontiguousarray(small).reshape(-1, n)


def _kernel_dtype(x: np.ndarray) -> type:
    """The dtype a kernel reads an operand in: its own when float32 or float64 (read exactly), else float64
    (float16 and integers convert exactly; Numba has no float16 arrays)."""
    return x.dtype.type if x.dtype in (np.float32, np.float64) else np.float64


def _recompute_masked(
    a: np.ndarray, b: np.ndarray, values: np.ndarray, mask: np.ndarray, valid: Any, scale: float,
    bias: np.ndarray | None,
) -> tuple[int, int] | None:  # fmt: skip
    """The float64 recomputation (``high`` None) straight from the mask, row blocks in parallel
    (:func:`lampnum.lamp.kernels.dots_masked_blocks`: no index arrays of the selected entries, operands read in their
    own float dtype): (selected, valid count); None where ``valid`` is not a repeated mask of the trailing axes
    (the general path then runs). Raises before writing anything when a selected entry is not valid."""
    n = values.shape[-1]
    m, depth = a.shape[-2:]
    batch = values.shape[:-2]
    if valid is None:
        allowed, check_neg_inf = np.zeros((0, max(n, 1)), dtype=bool), True
    else:
        small = np.asarray(valid, dtype=bool)
        try:
            np.broadcast_to(small, values.shape)
        except ValueError:
            raise ValueError(f"valid of shape {small.shape} does not broadcast to values {values.shape}") from None
        found = _repeated_rows(small, values.shape)
        if found is None:
            return None
        allowed, check_neg_inf = found, False
    if values.size == 0:
        return None
    rows_mask = np.ascontiguousarray(mask).reshape(-1, n)
    rows_values = values.reshape(-1, n)
    blocks = kernels.parallel_blocks(rows_mask.shape[0], smallest=16)
    selected, invalid = kernels.masked_invalid_blocks(rows_mask, rows_values, allowed, blocks)
    if invalid:
        raise ValueError("mask selects components that are not valid (outside the causal mask or −inf)")
    if check_neg_inf:
        valid_count = int(np.count_nonzero(values != -np.inf))
    else:
        valid_count = int(np.count_nonzero(allowed)) * (values.size // allowed.size)
    a3 = np.ascontiguousarray(a.reshape((-1, m, depth)), dtype=_kernel_dtype(a))
    bt3 = np.ascontiguousarray(np.swapaxes(b, -1, -2).reshape((-1, n, depth)), dtype=_kernel_dtype(b))
    leads = np.arange(max(rows_mask.shape[0] // max(m, 1), 1))
    ia = np.ascontiguousarray(_operand_batch(leads, batch, a.shape[:-2]), dtype=np.int64)
    ib = np.ascontiguousarray(_operand_batch(leads, batch, b.shape[:-2]), dtype=np.int64)
    no_bias = np.zeros(0) if bias is None else bias
    kernels.dots_masked_blocks(a3, bt3, ia, ib, rows_mask, float(scale), no_bias, rows_values, blocks)
    return int(selected), valid_count


def _float64_copy(array: np.ndarray) -> np.ndarray:
    """A C-contiguous float64 copy of ``array``, written by row blocks in parallel (numpy releases the GIL;
    the copy of a large product is bound by memory writes and page faults, which two threads overlap)."""
    out = np.empty(array.shape, dtype=np.float64)
    if out.ndim < 1 or out.size < 1 << 20:
        out[...] = array
        return out
    rows_out = out.reshape(-1, out.shape[-1])
    rows_in = np.broadcast_to(array, out.shape).reshape(-1, out.shape[-1])

    def work(block: slice) -> None:
        rows_out[block] = rows_in[block]

    kernels.in_blocks(rows_out.shape[0], work)
    return out


def _repeats_trailing(small: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether ``small`` broadcast to ``shape`` is its own trailing axes repeated over the leading ones (the flat
    broadcast is ``small.reshape(-1)`` tiled), as a causal mask of the last two axes is."""
    padded = (1,) * (len(shape) - small.ndim) + small.shape
    trailing = len(shape) - small.ndim + next((i for i, size in enumerate(small.shape) if size != 1), small.ndim)
    return padded[trailing:] == shape[trailing:] and all(size == 1 for size in padded[:trailing])


def _selected_entries(small: np.ndarray, shape: tuple[int, ...], flat: np.ndarray) -> np.ndarray:
    """``np.broadcast_to(small, shape).reshape(-1)[flat]`` without materialising the broadcast array."""
    if _repeats_trailing(small, shape):
        return small.reshape(-1)[flat % max(small.size, 1)]  # a mask of the trailing axes, repeated (causal)
    padded = (1,) * (len(shape) - small.ndim) + small.shape
    coords = np.unravel_index(flat, shape)
    kept = tuple(c if size != 1 else 0 for c, size in zip(coords, padded, strict=True))
    return small.reshape(padded)[kept]


def _as_real(name: str, value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise TypeError(f"{name} must be a real array, got dtype {array.dtype}")
    return array


def recompute_product(
    a: Any,
    b: Any,
    values: Any,
    mask: Any,
    *,
    high: MatmulSpec | None = None,
    valid: Any = None,
    scale: float = 1.0,
    bias: Any = None,
    in_place: bool = False,
) -> LampResult:
    """Replace the selected components of ``values ≈ scale·(a @ b) + bias`` by high-precision recomputation.

    ``a`` is ``(..., M, K)``, ``b`` ``(..., K, N)`` (leading axes broadcast as in ``numpy.matmul``; pass
    ``k.swapaxes(-1, -2)``, a view, for ``QKᵀ``), ``values`` the low-precision result ``(..., M, N)``,
    ``mask`` a boolean array of its shape. ``valid`` (boolean, broadcast to ``values``; default: the entries
    that are not −inf) defines the recompute rate's denominator; selecting an invalid entry raises
    ``ValueError``. ``bias`` has shape ``(N,)``. Returns a :class:`LampResult` whose ``values`` is a float64
    copy; unselected entries are unchanged bit for bit. ``in_place=True`` corrects ``values`` itself instead
    (it must then be a writable C-contiguous float64 or float32 array), saving the copy of the whole product:
    what a forward pass wants, whose low-precision scores are a temporary. In a float32 array each recomputed
    value (float64) is rounded once to float32, to nearest even: what converting the float64 result would give.
    """
    a, b = _as_real("a", a), _as_real("b", b)
    if in_place:
        values = np.asarray(values)
        if values.dtype not in (np.float64, np.float32) or not values.flags.c_contiguous \
                or not values.flags.writeable:  # fmt: skip
            raise ValueError("in_place=True needs values as a writable C-contiguous float64 or float32 array")
    else:
        values = _float64_copy(_as_real("values", values))  # the copy we correct
    if a.ndim < 2 or b.ndim < 2 or values.ndim < 2:
        raise ValueError("a, b and values need at least two axes: (..., M, K), (..., K, N), (..., M, N)")
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if b.shape[-2] != k or values.shape[-2:] != (m, n):
        raise ValueError(f"shapes do not match: a {a.shape} @ b {b.shape} against values {values.shape}")
    batch = values.shape[:-2]
    if np.broadcast_shapes(a.shape[:-2], b.shape[:-2], batch) != batch:
        raise ValueError(
            f"leading axes of a {a.shape} and b {b.shape} do not broadcast to values {values.shape}"
        )
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != values.shape:
        raise ValueError(
            f"mask must be a boolean array of shape {values.shape}, got {mask.dtype} {mask.shape}"
        )
    if bias is not None:
        bias = np.asarray(_as_real("bias", bias), dtype=np.float64)
        if bias.shape != (n,):
            raise ValueError(f"bias must have shape ({n},), got {bias.shape}")
    if high is None:
        done = _recompute_masked(a, b, values, mask, valid, scale, bias)
        if done is not None:
            selected, valid_count = done
            return LampResult(
                values=values, mask=mask, selected=selected, valid=valid_count, inner=k, total=values.size
            )
    flat = np.flatnonzero(mask)
    if valid is None:
        valid_count = int(np.count_nonzero(values != -np.inf))
        selected_valid = values.reshape(-1)[flat] != -np.inf
    else:  # broadcasting repeats each entry of `valid` equally often: count the small array
        small = np.asarray(valid, dtype=bool)
        try:
            np.broadcast_to(small, values.shape)
        except ValueError:
            raise ValueError(f"valid of shape {small.shape} does not broadcast to values {values.shape}") from None
        valid_count = int(np.count_nonzero(small)) * (values.size // max(small.size, 1))
        selected_valid = _selected_entries(small, values.shape, flat)
    if not selected_valid.all():  # checked on the selected entries only: O(selected), not O(size)
        raise ValueError("mask selects components that are not valid (outside the causal mask or −inf)")
    rows, cols = np.divmod(flat, n)
    lead, rows = np.divmod(rows, m)
    a3 = np.ascontiguousarray(a.reshape((-1, m, k)), dtype=np.float64)
    bt3 = np.ascontiguousarray(np.swapaxes(b, -1, -2).reshape((-1, n, k)), dtype=np.float64)
    ia, ib = _operand_batch(lead, batch, a.shape[:-2]), _operand_batch(lead, batch, b.shape[:-2])
    if high is None:
        dots = np.empty(flat.size)
        kernels.in_blocks(
            flat.size,
            lambda t: kernels.dots_at(a3, bt3, ia[t], ib[t], rows[t], cols[t], dots[t]),
            smallest=4096,
        )
    else:
        dots = _dots_by_spec(a3[ia, rows], bt3[ib, cols], high)
    if scale != 1.0:
        dots *= scale
    if bias is not None:
        dots += bias[cols]
    values.reshape(-1)[flat] = dots
    return LampResult(
        values=values, mask=mask, selected=int(flat.size), valid=valid_count, inner=k, total=values.size
    )
