"""``lampnum bound {dot,matmul,sum}``: a rounding-error bound next to the error actually observed.

The data are random (``--dist``, ``--seed``, float32 so that every product is exact in float64) or read from
``.npy`` files (``--a``, ``--b``). The command runs the emulated computation under the given accumulation model,
computes the exact result (float64 products summed by ``math.fsum``: exact for float32 data, within one float64
rounding otherwise), and prints the deterministic bound, the probabilistic bound at ``--prob``, and the observed
error: largest entries and the largest observed/bound ratio (≤ 1 when the bound holds).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "cmd_bound", "exact_matmul"]

_DISTS = ("normal", "uniform", "positive")


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` [m, p] for [m, n] and [n, p] with each entry's float64 products summed exactly (``math.fsum``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = np.empty((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        products = a[i][:, None] * b  # [n, p]
        out[i] = [math.fsum(products[:, j]) for j in range(b.shape[1])]
    return out


def _random(shape: tuple[int, ...], dist: str, rng: np.random.Generator) -> np.ndarray:
    if dist == "normal":
        x = rng.standard_normal(shape)
    elif dist == "uniform":
        x = rng.uniform(-1.0, 1.0, shape)
    else:
        x = rng.uniform(0.0, 1.0, shape)
    return x.astype(np.float32)


def _load(path: str, name: str) -> np.ndarray:
    array = np.load(Path(path), allow_pickle=False)
    if array.dtype.kind != "f":
        raise ValueError(f"--{name} {path}: expected a floating-point array, got {array.dtype}")
    return array


def _operands(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """The two factors as 2-D arrays [m, n] and [n, p] (a sum is ones-row times x, a dot is x-row times y)."""
    rng = np.random.default_rng(args.seed)
    n = args.n
    if args.kind == "sum":
        x = _load(args.a, "a").ravel() if args.a else _random((n,), args.dist, rng)
        return x[None, :], None  # type: ignore[return-value]
    if args.kind == "dot":
        x = _load(args.a, "a").ravel() if args.a else _random((n,), args.dist, rng)
        y = _load(args.b, "b").ravel() if args.b else _random((x.size,), args.dist, rng)
        return x[None, :], y[:, None]
    a = _load(args.a, "a") if args.a else _random((args.m, n), args.dist, rng)
    b = _load(args.b, "b") if args.b else _random((a.shape[-1], args.p), args.dist, rng)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul needs [m, n] and [n, p] arrays, got {a.shape} and {b.shape}")
    return a, b


def cmd_bound(args: argparse.Namespace) -> int:
    """Print bound versus observed error for ``args.kind`` (see the module docstring); returns 0."""
    from .. import bounds
    from ..emulate import matmul
    from ..emulate import sum as emulated_sum
    from ..emulate.spec import MatmulSpec

    if args.n < 1 or args.m < 1 or args.p < 1:
        raise ValueError("-n, -m and -p must be positive")
    if not 0 < args.prob < 1:
        raise ValueError(f"--prob must lie in (0, 1), got {args.prob}")
    a, b = _operands(args)
    if args.kind == "sum":
        x = a[0]
        computed = emulated_sum(x, accumulator=args.accumulator, order=args.order, block=args.block,
                                mode=args.mode, rng=args.seed)  # fmt: skip
        exact = np.array(math.fsum(np.asarray(x, dtype=np.float64).tolist()))
        options = dict(accumulator=args.accumulator, order=args.order, block=args.block, mode=args.mode)
        det, prob = bounds.sum(x, **options), bounds.sum(x, **options, prob=args.prob)
        model = f"sum of n={x.size}: accumulator {args.accumulator}, order {args.order}, mode {args.mode}"
    else:
        spec = MatmulSpec(input=args.input, product=args.product, accumulator=args.accumulator, block=args.block,
                          output=args.output, mode=args.mode)  # fmt: skip
        computed = matmul(a, b, spec, rng=args.seed)
        exact = exact_matmul(a, b)
        det, prob = bounds.matmul(a, b, spec), bounds.matmul(a, b, spec, prob=args.prob)
        fields = [f"{k} {getattr(args, k)}" for k in ("input", "product", "accumulator", "output")
                  if getattr(args, k) is not None]  # fmt: skip
        model = (f"{args.kind} [{a.shape[0]}, {a.shape[1]}] @ [{b.shape[0]}, {b.shape[1]}]: {', '.join(fields)}, "
                 f"block {args.block}, mode {args.mode}")  # fmt: skip
    error = np.abs(np.asarray(computed, dtype=np.float64) - exact)
    det, prob = np.asarray(det, dtype=np.float64), np.asarray(prob, dtype=np.float64)
    print(model)
    print(f"{'':<26} {'max':>11} {'max observed/bound':>19}")
    print(f"{'observed error':<26} {error.max():>11.3e}")
    for label, bound in (("deterministic bound", det), (f"probabilistic (1-{args.prob:g})", prob)):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bound > 0, error / bound, np.where(error > 0, np.inf, 0.0))
        print(f"{label:<26} {bound.max():>11.3e} {ratio.max():>19.3g}")
    print("the bound holds" if bool(np.all(error <= det)) else "THE DETERMINISTIC BOUND IS VIOLATED")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``bound`` on ``subparsers``; returns its parser."""
    parser = subparsers.add_parser(
        "bound", help="rounding-error bound of a dot, matmul or sum versus the observed error",
        description="Bound the error of an emulated dot product, matrix product or sum (deterministic and "
        "probabilistic) and compare with the error observed against the exact result.",
    )  # fmt: skip
    parser.add_argument("kind", choices=["dot", "matmul", "sum"], help="which computation")
    parser.add_argument("-n", type=int, default=1024, help="inner / summation length of random data (default 1024)")
    parser.add_argument("-m", type=int, default=16, help="rows of A for random matmul data (default 16)")
    parser.add_argument("-p", type=int, default=16, help="columns of B for random matmul data (default 16)")
    parser.add_argument("--dist", choices=_DISTS, default="normal", help="distribution of random data")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of stochastic rounding")
    parser.add_argument("--a", default=None, metavar="NPY", help="first operand (x, or A) from a .npy file")
    parser.add_argument("--b", default=None, metavar="NPY", help="second operand (y, or B) from a .npy file")
    parser.add_argument("--accumulator", "-f", default="bf16", help="accumulator format (default bf16)")
    parser.add_argument("--input", default=None, help="format the operands are rounded to first (default none)")
    parser.add_argument("--product", default=None, help="format of each product (default exact)")
    parser.add_argument("--output", default=None, help="format of the result (default none)")
    parser.add_argument("--block", type=int, default=1, help="block-FMA size (matmul/dot) or pairwise block (sum)")
    parser.add_argument("--order", default="recursive", choices=["recursive", "pairwise", "blocked"],
                        help="summation order (sum only)")  # fmt: skip
    parser.add_argument("--mode", default="rne", help="rounding mode of the accumulator (rne, sr, rtz, ...)")
    parser.add_argument("--prob", type=float, default=1e-6, help="failure probability of the probabilistic bound")
    parser.set_defaults(handler=cmd_bound)
    return parser
