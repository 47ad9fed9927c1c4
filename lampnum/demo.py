"""``lampnum demo``: what low precision does to a computation, in one screen.

It shows the format catalogue's key numbers, a double-rounding defect that lampnum avoids, and an inner product of
length 4096 accumulated in bf16 strictly, in bf16 blocks of 32 (as tensor cores do), with stochastic rounding, and in
fp32, against the exact value.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import numpy as np

from .emulate import matmul
from .formats import FORMATS
from .rounding import round as round_to_format

__all__ = ["add_parser", "run_demo"]


def run_demo(n: int = 4096, seed: int = 0) -> int:
    print("lampnum: numerical analysis with emulated low precision\n")
    print("Formats (unit roundoff u = 2^-p, largest and smallest positive numbers):")
    for name in ("fp32", "bf16", "fp16", "e4m3", "e5m2", "e2m1"):
        fmt = FORMATS[name]
        print(f"  {name:<6} p={fmt.p:<3} u={fmt.unit_roundoff:<10.3g} max={fmt.max:<12.6g} "
              f"smallest={fmt.smallest_subnormal:.3g}")  # fmt: skip
    x = 1 + 2**-8 + 2**-30
    via_float32 = round_to_format(float(np.float32(x)), "bf16")
    print("\nDouble rounding: x = 1 + 2^-8 + 2^-30 lies just above a bf16 midpoint.")
    print(f"  through float32 first: {via_float32!r} (wrong)   lampnum.round(x, 'bf16'): {round_to_format(x, 'bf16')!r}")
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 1, (1, n)).astype(np.float32)
    b = rng.uniform(0, 1, (n, 1)).astype(np.float32)
    exact = sum(Fraction(float(p)) * Fraction(float(q)) for p, q in zip(a[0], b[:, 0]))
    print(f"\nInner product of {n} positive terms (exact value {float(exact):.6f}):")
    print(f"  {'accumulation':<34} {'result':>12} {'relative error':>15} {'seconds':>8}")
    cases = [
        ("bf16, strict (one rounding a step)", {"accumulator": "bf16"}),
        ("bf16, blocks of 32 (tensor core)", {"accumulator": "bf16", "block": 32}),
        ("bf16, stochastic rounding", {"accumulator": "bf16", "mode": "sr"}),
        ("fp16, strict", {"accumulator": "fp16"}),
        ("fp32, strict", {"accumulator": "fp32"}),
    ]
    for label, fields in cases:
        start = time.perf_counter()
        value = float(matmul(a, b, rng=seed, **fields)[0, 0])
        seconds = time.perf_counter() - start
        error = abs(Fraction(value) - exact) / exact
        print(f"  {label:<34} {value:>12.4f} {float(error):>15.2e} {seconds:>8.2f}")
    print("\nThe strict bf16 sum stagnates once the terms fall below half an ulp of the running sum; blocks and")
    print("stochastic rounding do not. (First calls include Numba's one-time compilation, cached afterwards.)")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the main demonstration")
    parser.add_argument("-n", type=int, default=4096, help="inner product length (default 4096)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.set_defaults(handler=lambda args: run_demo(args.n, args.seed))
