"""LAMP: look-ahead mixed precision (arXiv 2601.21623; LAMP-MATH.md §3)."""

from . import rules
from .select import INDICATORS, RULES, check_rule_params, select, valid_mask

__all__ = ["select", "valid_mask", "check_rule_params", "RULES", "INDICATORS", "rules"]
