"""``MatmulSpec``: the accumulation model of an emulated matrix product (what low-precision hardware does).

One output element ``c = Σ_k a_k b_k`` is computed with k increasing, as ARCHITECTURE.md specifies:

1. operands are rounded to ``input`` (when given);
2. each product ``p_k = a_k·b_k`` is exact when ``product`` is None, else rounded to ``product``;
3. ``block == 1`` (strict): ``s_k = round_acc(s_{k-1} + p_k)``, the sum taken exactly and rounded once (with an exact
   product this is a fused multiply-add in the accumulator format); ``block == b > 1`` (block FMA, as tensor cores):
   the b products of a block are summed sequentially in ``block_precision`` (each partial sum rounded to it; default
   fp64), then ``s = round_acc(s + t)`` exactly rounded once;
4. ``via="fp32"`` models kernels that keep an fp32 register and round it to the accumulator format: every accumulator
   update is first rounded to fp32 (round-to-nearest-even), then to the accumulator (double rounding, deliberately);
5. the result is rounded to ``output`` (when given).

All roundings use ``mode`` (the via-fp32 register rounding and the block sums are round-to-nearest-even).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ..formats import Format, as_format
from ..rounding.modes import RoundingMode, as_mode

__all__ = ["MatmulSpec", "as_spec"]


def _optional_format(value: Format | str | None, field_name: str) -> Format | None:
    if value is None:
        return None
    try:
        return as_format(value)
    except (TypeError, ValueError) as error:
        raise type(error)(f"MatmulSpec.{field_name}: {error}") from None


@dataclass(frozen=True)
class MatmulSpec:
    """The accumulation model of :func:`lampnum.matmul` (see the module docstring for the exact semantics).

    Format fields accept a :class:`~lampnum.Format` or a catalogue name and are stored as Formats.

    >>> import lampnum as ln
    >>> ln.MatmulSpec(accumulator="bf16", block=32).block
    32
    """

    input: Format | None = None
    product: Format | None = None
    accumulator: Format = "fp32"  # type: ignore[assignment]
    block: int = 1
    block_precision: Format = "fp64"  # type: ignore[assignment]
    output: Format | None = None
    mode: RoundingMode = "rne"  # type: ignore[assignment]
    via: Format | None = None

    def __post_init__(self) -> None:
        for name in ("input", "product", "output", "via"):
            object.__setattr__(self, name, _optional_format(getattr(self, name), name))
        for name in ("accumulator", "block_precision"):
            value = _optional_format(getattr(self, name), name)
            if value is None:
                raise ValueError(f"MatmulSpec.{name} must be a format, got None")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "mode", as_mode(self.mode))
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1:
            raise ValueError(f"MatmulSpec.block must be a positive int, got {self.block!r}")

    def replace(self, **changes: Any) -> MatmulSpec:
        """A copy with some fields changed (validated like a new spec)."""
        return replace(self, **changes)

    @property
    def needs_rounding(self) -> bool:
        """False when the spec is exact float64 arithmetic: no input/product/output rounding, fp64 accumulator."""
        fp64 = as_format("fp64")
        return not (
            self.input is None
            and self.product is None
            and self.output is None
            and self.via is None
            and self.accumulator == fp64
            and (self.block == 1 or self.block_precision == fp64)
            and self.mode is RoundingMode.RNE
        )


_SPEC_FIELDS = frozenset(f.name for f in fields(MatmulSpec))


def as_spec(spec: MatmulSpec | None = None, **spec_fields: Any) -> MatmulSpec:
    """A spec from an optional base spec and field overrides; unknown field names raise ``TypeError`` naming them."""
    unknown = set(spec_fields) - _SPEC_FIELDS
    if unknown:
        raise TypeError(f"unknown MatmulSpec fields {sorted(unknown)}; known fields: {sorted(_SPEC_FIELDS)}")
    if spec is None:
        return MatmulSpec(**spec_fields)
    if not isinstance(spec, MatmulSpec):
        raise TypeError(f"spec must be a lampnum.MatmulSpec, got {type(spec).__name__}")
    return spec.replace(**spec_fields) if spec_fields else spec
