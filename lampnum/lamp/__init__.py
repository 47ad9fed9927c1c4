"""LAMP: look-ahead mixed precision (arXiv 2601.21623; LAMP-MATH.md §3).

Compute ``ẑ = g(x)`` in low precision, choose from ``ẑ`` the components whose error f would amplify most
(:func:`select`), recompute only those in high precision (:func:`recompute_product`), then apply f. The
compositions of a transformer (:class:`AttentionScores`, :class:`GeluFc`, :class:`LayerNormResidual`,
:class:`LogitsSoftmax`) package both steps for the GPT-2 model.
"""

from . import rules
from .compositions import AttentionScores, GeluFc, LampConfig, LayerNormResidual, LogitsSoftmax, causal_mask
from .recompute import LampResult, recompute_product
from .select import INDICATORS, RULES, check_rule_params, select, valid_mask

__all__ = [
    "select",
    "valid_mask",
    "check_rule_params",
    "RULES",
    "INDICATORS",
    "rules",
    "recompute_product",
    "LampResult",
    "LampConfig",
    "AttentionScores",
    "GeluFc",
    "LayerNormResidual",
    "LogitsSoftmax",
    "causal_mask",
]
