"""Benchmarks: ratios against peers or numpy BLAS measured side by side in one run (see BENCHMARKING.md).

Run ``lampnum bench {rounding,matmul,lamp,gpt2}`` or ``python -m lampnum.bench ...``. Peers are optional extras
(``pip install lampnum[bench]``); a missing peer is reported as such, never silently skipped.
"""
