"""Dot-product error against its bounds as n grows: bf16 strict and block-32 accumulation, the observed error of
random positive data next to the deterministic (worst case, ~n·u) and probabilistic (~√n·u) bounds.

    python examples/dot_error_vs_n.py --output out/    # table, and out/dot_error_vs_n.png
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

import lampnum as ln
import lampnum.bounds


def measure(ns: list[int], spec: ln.MatmulSpec, seed: int) -> list[tuple[int, float, float, float]]:
    """(n, observed relative error, deterministic bound, probabilistic bound), all relative to Σ|x_k y_k|."""
    rng = np.random.default_rng(seed)
    out = []
    for n in ns:
        x = rng.uniform(0, 1, n).astype(np.float32)
        y = rng.uniform(0, 1, n).astype(np.float32)
        exact = math.fsum((x.astype(np.float64) * y).tolist())  # float32 products are exact in float64
        computed = float(ln.matmul(x[None, :], y[:, None], spec)[0, 0])
        scale = exact  # positive data: Σ|x y| = Σ x y
        det = ln.bounds.dot(x, y, spec)
        prob = ln.bounds.dot(x, y, spec, prob=1e-6)
        out.append((n, abs(computed - exact) / scale, det / scale, prob / scale))
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=".", help="folder for dot_error_vs_n.png (default: here)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="n up to 2^10 only")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [2**k for k in range(4, 11 if args.quick else 15)]
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for label, spec, color in (("strict", ln.MatmulSpec(accumulator="bf16"), "C0"),
                               ("block 32", ln.MatmulSpec(accumulator="bf16", block=32), "C1")):  # fmt: skip
        rows = measure(ns, spec, args.seed)
        print(f"bf16 {label}:\n{'n':>7} {'observed':>10} {'bound':>10} {'prob. bound':>12}")
        for n, err, det, prob in rows:
            print(f"{n:>7} {err:>10.2e} {det:>10.2e} {prob:>12.2e}")
        n_, err, det, prob = (np.array(c) for c in zip(*rows, strict=True))
        ax.loglog(n_, np.maximum(err, 1e-12), "o-", color=color, label=f"{label}: observed")
        ax.loglog(n_, det, "--", color=color, label=f"{label}: deterministic bound")
        ax.loglog(n_, prob, ":", color=color, label=f"{label}: probabilistic bound (1 − 1e-6)")
    ax.set(xlabel="n", ylabel="error / Σ|x y|", title="bf16 dot products of uniform [0, 1) data", ylim=(1e-5, 1e3))
    ax.legend(fontsize=7)
    path = Path(args.output) / "dot_error_vs_n.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
