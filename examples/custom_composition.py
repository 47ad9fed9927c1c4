"""A custom composition f(g(x)), bounded and validated with hypothesis.

g(x) = W x is computed in emulated bf16 (strict bf16 accumulation), with the rigorous componentwise bound β of
``lampnum.bounds.matmul``; f(z) = tanh(z) is a custom primitive (a numpy callable with its Jacobian and a bound on
the Jacobian over a box). ``lampnum.compose.analyze`` turns β into a bound on |f(ĝ(x)) − f(g(x))|, and hypothesis
draws inputs x to check that the observed error never exceeds it.

    python examples/custom_composition.py            # 200 hypothesis examples
    python examples/custom_composition.py --quick    # 25
"""

from __future__ import annotations

import argparse

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lampnum as ln
import lampnum.bounds
import lampnum.compose as lc


def tanh_jac(z: np.ndarray) -> np.ndarray:
    """The diagonal Jacobian of tanh at z, as a (z.size, z.size) matrix."""
    return np.diag(1 - np.tanh(z.ravel()) ** 2)


def tanh_jac_bound(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max of |tanh'| = 1 − tanh² over each interval [lo_i, hi_i] (at the point nearest 0), as a diagonal matrix."""
    nearest = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
    return np.diag(1 - np.tanh(nearest.ravel()) ** 2)


TANH = lc.Function(np.tanh, jac=tanh_jac, jac_bound=tanh_jac_bound, name="tanh")


def check(W: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(largest observed error, smallest bound − error margin) for f(g(x)); raises AssertionError if violated."""
    z_hat = ln.matmul(W, x[:, None], accumulator="bf16")[:, 0].astype(np.float64)
    z = W.astype(np.float64) @ x.astype(np.float64)  # exact: float32 products, short float64 sums (n = 64)
    beta = ln.bounds.matmul(W, x[:, None], accumulator="bf16")[:, 0]
    assert np.all(np.abs(z_hat - z) <= beta)
    rep = lc.analyze(TANH, z_hat, beta)
    error = np.abs(np.tanh(z_hat) - np.tanh(z))
    assert np.all(error <= rep.rigorous), (error.max(), rep.rigorous.max())
    return float(error.max()), float((rep.rigorous - error).min())


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="25 hypothesis examples instead of 200")
    parser.add_argument("--seed", type=int, default=0, help="seed of W")
    args = parser.parse_args(argv)
    W = np.random.default_rng(args.seed).standard_normal((32, 64)).astype(np.float32) / 8
    worst = [0.0]

    @settings(max_examples=25 if args.quick else 200, deadline=None, derandomize=True, database=None)
    @given(arrays(np.float32, 64, elements=st.floats(-4, 4, width=32)))
    def bound_holds(x: np.ndarray) -> None:
        worst[0] = max(worst[0], check(W, x)[0])

    bound_holds()
    x = np.random.default_rng(args.seed + 1).standard_normal(64).astype(np.float32)
    error, margin = check(W, x)
    rep = lc.analyze(TANH, ln.matmul(W, x[:, None], accumulator="bf16")[:, 0],
                     ln.bounds.matmul(W, x[:, None], accumulator="bf16")[:, 0])  # fmt: skip
    print(f"tanh(W x), W x in bf16: bound {rep.rigorous.max():.3e} ({rep.method}), observed {error:.3e}")
    print(f"hypothesis: the bound held on every drawn x; largest error seen {worst[0]:.3e}")
    return worst[0]


if __name__ == "__main__":
    main()
