"""Pictures of the rounding modes: x ↦ round(x) on [-2.5, 2.5] in a 3-bit toy format, one panel per mode, and the
mean of stochastic rounding (unbiased: it follows the identity).

    python examples/rounding_modes.py --output out/    # writes out/rounding_modes.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import lampnum as ln


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=".", help="folder for rounding_modes.png (default: here)")
    parser.add_argument("--seed", type=int, default=0, help="seed of stochastic rounding")
    parser.add_argument("--quick", action="store_true", help="fewer stochastic samples")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    toy = ln.Format(p=3, emax=2, name="toy")  # numbers ±{1, 1.25, 1.5, 1.75}·2^e, e ≤ 2
    x = np.linspace(-2.5, 2.5, 2001)
    modes = ["rne", "rna", "rtz", "rup", "rdn", "rto"]
    fig, axes = plt.subplots(2, 4, figsize=(13, 6), sharex=True, sharey=True, layout="constrained")
    for ax, mode in zip(axes.flat, modes, strict=False):
        ax.plot(x, x, color="0.8", lw=0.8)
        ax.plot(x, ln.round(x, toy, mode), lw=1.2)
        ax.set_title(mode)
    rng = np.random.default_rng(args.seed)
    samples = 20 if args.quick else 200
    mean = np.mean([ln.round(x, toy, "sr", rng=rng) for _ in range(samples)], axis=0)
    axes.flat[6].plot(x, x, color="0.8", lw=0.8)
    axes.flat[6].plot(x, ln.round(x, toy, "sr", rng=rng), lw=0.6, label="one draw")
    axes.flat[6].set_title("sr (one draw)")
    axes.flat[7].plot(x, mean - x, lw=0.8)
    axes.flat[7].set_title(f"sr: mean of {samples} draws − x")
    fig.suptitle(f"Rounding modes of a toy format (p = {toy.p}, emax = {toy.emax})")
    path = Path(args.output) / "rounding_modes.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
