"""Emulated arithmetic: correctly rounded elementwise operations, sums and matrix products (the emulated BLAS)."""

from .elementwise import add, div, fma, mul, sqrt, sub
from .functions import erf, exp, expm1, log, log1p, tanh
from .matmul import matmul
from .spec import MatmulSpec, as_spec
from .summation import sum

__all__ = [
    "MatmulSpec", "as_spec", "matmul", "sum",
    "add", "sub", "mul", "div", "sqrt", "fma", "exp", "expm1", "log", "log1p", "tanh", "erf",
]  # fmt: skip
