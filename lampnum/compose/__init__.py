"""Error propagation through compositions f(g(x)) (LAMP-MATH.md §2): first-order and rigorous bounds on
|f(ẑ) − f(z)| given a componentwise bound β on |ẑ − z|, f's own rounding error in a format, and the per-component
contributions that LAMP's selection consumes. Derivations: ``papers/bounds/``.

>>> import numpy as np, lampnum.compose as lc
>>> z_hat = np.array([[3.0, 1.0, 0.5, -2.0]])
>>> rep = lc.analyze(lc.Softmax(axis=-1), z_hat, 0.01)
>>> rep.first_order.shape, rep.rigorous.shape, rep.contributions.shape
((1, 4), (1, 4), (1, 4))
"""

from .analysis import Report, analyze, as_primitive
from .base import Elementwise, Primitive
from .chain import ChainReport, Stage, analyze_chain, attention_chain, residual_layernorm_chain
from .contexts import FLOAT64, Constant, Emulated, Float64, Intervals
from .elementwise import GELU, Add, Exp, Scale
from .interval import Interval
from .layernorm import LayerNorm
from .linear import Linear
from .numeric import Function, numeric_jacobian
from .softmax import LogSoftmax, Softmax

__all__ = [
    "analyze",
    "Report",
    "Softmax",
    "LogSoftmax",
    "GELU",
    "LayerNorm",
    "Linear",
    "Exp",
    "Scale",
    "Add",
    "Function",
    "numeric_jacobian",
    "Primitive",
    "Elementwise",
    "as_primitive",
    "Stage",
    "ChainReport",
    "analyze_chain",
    "attention_chain",
    "residual_layernorm_chain",
    "Interval",
    "Emulated",
    "Intervals",
    "Float64",
    "FLOAT64",
    "Constant",
]
