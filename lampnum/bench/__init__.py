"""Benchmarks, runnable as ``lampnum bench ...`` or ``python -m lampnum.bench.<name>``; they print tables of ratios."""
