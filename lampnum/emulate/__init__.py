"""Emulated arithmetic: correctly rounded elementwise operations, sums and matrix products (the emulated BLAS)."""

from .matmul import matmul
from .spec import MatmulSpec, as_spec
from .summation import sum

__all__ = ["MatmulSpec", "as_spec", "matmul", "sum"]
