"""Correctly rounded elementwise arithmetic in any format: ``add, sub, mul, div, sqrt, fma``.

Each operation returns, elementwise, ``round(a ∘ b)``: the exact result of the operation on the *given*
operand values, rounded **once** to ``fmt`` in ``mode``, exactly as :func:`lampnum.round` rounds an exact
value (same subnormal, overflow and zero rules). The operands are float64 or float32 arrays or scalars and are
**not** rounded to ``fmt`` first; to compute with format numbers, round the operands yourself
(``ln.round(x, fmt)``). ``fma(a, b, c)`` rounds ``a·b + c`` once, the product exact — not the product and then
the sum.

Supported: every format (``1 <= p <= 53``, any exponent range, with or without subnormals, every special-value
encoding) in every mode, ``rne rna rtz rup rdn rto sr sr_eq``, for every operation. Nothing is computed in
float64 and rounded again: the kernels carry out the operation exactly on the operands' integer significands
(a sum far beyond the 128-bit window keeps a sticky bit instead, a quotient or root keeps ≥ 109 bits and a
sticky bit) and then round once; stochastic rounding draws its decision from the exact value (the threshold
``floor(remainder·2^53)`` of ``lampnum.round``). See :mod:`lampnum.emulate.exact` for the argument. For
``fp64`` in ``rne``, ``add, sub, mul, div, sqrt`` are numpy's IEEE float64 operations, which are the same
function.

Special values follow IEEE 754-2019 (:mod:`lampnum.emulate.elementwise_kernels` lists the rules): NaN
propagates; ∞ − ∞, 0·∞, 0/0, ∞/∞ and sqrt(x < 0) give NaN; x/0 gives ±∞; zeros carry IEEE signs, and
``x + (−x)`` is +0 in every mode but ``rdn`` (−0). Infinite results then become the format's infinity or, in a
format without one, its overflow value (max or NaN); a finite result too large for the format overflows per
mode as in ``lampnum.round``. NaN results are float64 NaNs (also for ``finite`` formats, which cannot encode
NaN).

The result is a float64 array of the broadcast shape holding values of ``fmt`` (a numpy float64 scalar for a
0-d result); float64 holds every value of every format. ``out`` (a float64 array of that shape, which may be
an operand) receives it instead. Stochastic modes draw one 64-bit key from ``rng`` (a Generator or a seed) per
call, and element ``i`` of the C-ordered result uses ``random_bits_at(key, i)``, as ``lampnum.round`` does.

>>> import lampnum
>>> add(1.0, 2.0**-8, "bf16"), add(1.0, 2.0**-8 + 2.0**-40, "bf16")  # a tie to even; just above it
(np.float64(1.0), np.float64(1.0078125))
>>> a, b = 8384513 * 2.0**-28, 8392705 * 2.0**-29  # float32 values with a·b = 2^-11 + 2^-57
>>> fma(a, b, 1.0, "fp16"), lampnum.round(a * b + 1.0, "fp16")  # exact: above a tie; via float64: the tie
(np.float64(1.0009765625), 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..formats import FORMATS, Format, as_format
from ..rounding.api import stochastic_key
from ..rounding.kernels import MODE_CODES
from ..rounding.modes import RoundingMode, as_mode
from . import elementwise_kernels as kernels
from .operands import as_operand, broadcast_operands, finish, result_target

__all__ = ["add", "sub", "mul", "div", "sqrt", "fma"]

_FP64_PARAMS = FORMATS["fp64"].params()
#: the Numba driver of each operation (typed Any: mypy cannot see through Numba's dispatchers)
_KERNELS: dict[str, Any] = {
    "add": kernels.add_array, "sub": kernels.add_array, "mul": kernels.mul_array, "div": kernels.div_array,
    "sqrt": kernels.sqrt_array, "fma": kernels.fma_array,
}  # fmt: skip
_NUMPY_FP64 = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "sqrt": np.sqrt}

Rng = np.random.Generator | int | None


def _apply(op: str, operands: tuple[Any, ...], fmt: Format | str, mode: RoundingMode | str, rng: Rng,
           out: np.ndarray | None) -> Any:  # fmt: skip
    fmt = as_format(fmt)
    mode = as_mode(mode)
    names = ("a", "b", "c")
    arrays = [as_operand(x, op, names[k]) for k, x in enumerate(operands)]
    shape, flat = broadcast_operands(op, *arrays)
    key = np.uint64(stochastic_key(mode, rng))
    target = result_target(op, out, shape, [source for source, _ in flat])
    params = fmt.params()
    if mode is RoundingMode.RNE and params == _FP64_PARAMS and op in _NUMPY_FP64:
        with np.errstate(all="ignore"):
            _NUMPY_FP64[op](*(array.astype(np.float64, copy=False) for array in arrays), out=target)
        return finish(target, out)
    args = [item for pair in flat for item in pair]
    if op in ("add", "sub"):
        args.append(op == "sub")  # negate b
    _KERNELS[op](*args, target.reshape(-1), params, MODE_CODES[mode.value], key)
    return finish(target, out)


def add(a: Any, b: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
        out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(a + b), correctly rounded to ``fmt`` in ``mode`` (see the module docstring for the semantics)."""
    return _apply("add", (a, b), fmt, mode, rng, out)


def sub(a: Any, b: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
        out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(a − b), correctly rounded; ``sub(a, b) == add(a, -b)``."""
    return _apply("sub", (a, b), fmt, mode, rng, out)


def mul(a: Any, b: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
        out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(a · b), correctly rounded."""
    return _apply("mul", (a, b), fmt, mode, rng, out)


def div(a: Any, b: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
        out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(a / b), correctly rounded; x/0 is ±∞ (the format's infinity or overflow value), 0/0 is NaN."""
    return _apply("div", (a, b), fmt, mode, rng, out)


def sqrt(a: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
         out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(sqrt(a)), correctly rounded; sqrt(−0) = −0 and sqrt(x < 0) = NaN."""
    return _apply("sqrt", (a,), fmt, mode, rng, out)


def fma(a: Any, b: Any, c: Any, fmt: Format | str, mode: RoundingMode | str = "rne", *, rng: Rng = None,
        out: np.ndarray | None = None) -> Any:  # fmt: skip
    """round(a·b + c) with one rounding (fused multiply-add), correctly rounded."""
    return _apply("fma", (a, b, c), fmt, mode, rng, out)
