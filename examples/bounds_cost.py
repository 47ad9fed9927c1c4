"""What a matmul bound costs, relative to the emulated product it bounds and to numpy's float64 BLAS product.

Measured side by side in one process, interleaved, best of ``--repeat`` after a warm-up (JIT compilation excluded),
as BENCHMARKING.md asks; absolute times on a shared machine mean little, the ratios are the result.

    python examples/bounds_cost.py            # GPT-2 shapes with 128 rows (the emulated product is the slow part)
    python examples/bounds_cost.py --rows 512 --repeat 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import lampnum as ln
import lampnum.bounds

SHAPES = {"qkv": (768, 2304), "fc": (768, 3072), "mlp_proj": (3072, 768), "score (per head)": (64, 512)}
SPECS = {
    "bf16 strict": ln.MatmulSpec(input="bf16", accumulator="bf16"),
    "e4m3 block-32, bf16 out": ln.MatmulSpec(input="e4m3", accumulator="fp32", block=32, block_precision="fp32",
                                             output="bf16"),  # fmt: skip
}


def best(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| shape | spec | bound / emulated | probabilistic bound / emulated | bound / float64 BLAS |")
    print("| --- | --- | ---: | ---: | ---: |")
    for shape_name, (k, n) in SHAPES.items():
        A = rng.standard_normal((args.rows, k)).astype(np.float32).astype(np.float64)
        B = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32).astype(np.float64)
        for spec_name, spec in SPECS.items():
            runs: dict[str, Callable[[], object]] = {
                "emulated": lambda A=A, B=B, spec=spec: ln.matmul(A, B, spec),
                "bound": lambda A=A, B=B, spec=spec: ln.bounds.matmul(A, B, spec),
                "probabilistic": lambda A=A, B=B, spec=spec: ln.bounds.matmul(A, B, spec, prob=1e-6),
                "blas": lambda A=A, B=B: A @ B,
            }
            for run in runs.values():  # warm-up: JIT compilation and caches
                run()
            times = {name: float("inf") for name in runs}
            for _ in range(args.repeat):  # interleaved
                for name, run in runs.items():
                    times[name] = min(times[name], best(run, 1))
            print(f"| {args.rows}×{k}·{k}×{n} ({shape_name}) | {spec_name} | {times['bound'] / times['emulated']:.4f} | "
                  f"{times['probabilistic'] / times['emulated']:.4f} | {times['bound'] / times['blas']:.1f} |")


if __name__ == "__main__":
    main()
