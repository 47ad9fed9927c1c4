"""Rounding to any binary floating-point format: modes, the exact reference, the Numba kernels, the public API."""

from .api import round
from .codec import code_dtype, decode, encode
from .modes import RoundingMode, as_mode
from .reference import round_reference

__all__ = ["round", "encode", "decode", "code_dtype", "RoundingMode", "as_mode", "round_reference"]
