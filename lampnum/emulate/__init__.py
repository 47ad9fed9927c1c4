"""Emulated arithmetic: correctly rounded elementwise operations, sums and matrix products (the emulated BLAS)."""

from .spec import MatmulSpec, as_spec

__all__ = ["MatmulSpec", "as_spec"]
