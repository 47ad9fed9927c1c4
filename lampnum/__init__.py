"""lampnum: numerical analysis with emulated low precision.

Correctly rounded floating-point formats and rounding modes, emulated arithmetic and matrix products, rounding-error
bounds for compositions f(g(x)), and LAMP (look-ahead mixed precision, arXiv 2601.21623).

>>> import lampnum as ln
>>> ln.round(3.14159, "bf16"), ln.format("e4m3").max
(3.140625, 448.0)
"""

from . import bounds, compose, gpt2, lamp  # noqa: E402 - the layers above formats, rounding and emulation
from .emulate import (
    MatmulSpec,
    add,
    div,
    erf,
    exp,
    expm1,
    fma,
    log,
    log1p,
    matmul,
    mul,
    sqrt,
    sub,
    sum,
    tanh,
)  # fmt: skip
from .formats import FORMATS, Format, format
from .rounding import RoundingMode, decode, encode, round

__version__ = "0.1.0"

__all__ = [
    "Format", "format", "FORMATS", "RoundingMode", "round", "encode", "decode", "MatmulSpec", "matmul", "sum",
    "add", "sub", "mul", "div", "sqrt", "fma", "exp", "expm1", "log", "log1p", "tanh", "erf", "bounds", "compose", "lamp", "gpt2", "__version__",
]  # fmt: skip
