"""Benchmarks: ``lampnum bench ...`` or ``python -m lampnum.bench.<name>``; each prints a table of ratios."""
