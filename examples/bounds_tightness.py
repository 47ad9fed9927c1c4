"""How pessimistic is each bound? Observed error / bound (median and max over entries), deterministic and probabilistic.

For every configuration the emulated computation (``ln.matmul``, ``ln.sum``) runs on random float32-valued data and
its error against the exact result is measured exactly: ``math.fsum([computed, -p_1, ..., -p_n])`` is the correctly
rounded value of computed − Σ p_k with every product p_k exact in float64, so the observed error carries a relative
error of at most 2^-53. Ratios ≤ 1 always (a ratio above 1 for the deterministic bound would be a bug); the closer to
1, the tighter. The probabilistic bound uses prob = 1e-6 for the whole matrix. Where a bound is infinite (an
intermediate may overflow, e.g. fp16 partial sums under the worst-case growth (1 + u)^n), the ratios are taken over
the finite entries and the number of infinite ones is shown.

    python examples/bounds_tightness.py                 # the full table (sizes 64..4096), about a minute
    python examples/bounds_tightness.py --quick          # sizes 64 and 1024 only
    python examples/bounds_tightness.py --markdown out.md

A second table does the same for composition bounds (softmax, GELU, LayerNorm): the rigorous bound against the
first-order one, and the largest error over random corners of the box against the rigorous bound.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable

import numpy as np

import lampnum as ln
import lampnum.bounds

SIZES = (64, 256, 1024, 4096)
ROWS, COLS = 8, 8  # 64 entries per configuration

MATMUL = {
    "strict bf16 acc (exact products)": ln.MatmulSpec(accumulator="bf16"),
    "strict fp16 acc (exact products)": ln.MatmulSpec(accumulator="fp16"),
    "bf16 in, bf16 products, fp32 acc": ln.MatmulSpec(input="bf16", product="bf16", accumulator="fp32"),
    "e4m3 in, block 32 fp32, fp32 acc, bf16 out": ln.MatmulSpec(input="e4m3", accumulator="fp32", block=32,
                                                                 block_precision="fp32", output="bf16"),  # fmt: skip
    "LAMP m=7: fp32 products, via fp32, p=8 acc": ln.MatmulSpec(product="fp32", via="fp32",
                                                                 accumulator=ln.Format(p=8, emax=127)),  # fmt: skip
    "strict fp16 acc, stochastic rounding": ln.MatmulSpec(accumulator="fp16", mode="sr"),
    "strict bf16 acc, round toward zero": ln.MatmulSpec(accumulator="bf16", mode="rtz"),
}
SUMS = {
    "sum bf16 recursive": {"accumulator": "bf16", "order": "recursive"},
    "sum bf16 pairwise": {"accumulator": "bf16", "order": "pairwise"},
    "sum bf16 blocked (32)": {"accumulator": "bf16", "order": "blocked", "block": 32},
    "sum fp16 recursive, sr": {"accumulator": "fp16", "order": "recursive", "mode": "sr"},
}
DATA = {
    "normal": lambda rng, shape: rng.standard_normal(shape),
    "uniform(0,1)": lambda rng, shape: rng.uniform(0, 1, shape),
}


def _f32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32).astype(np.float64)


def _matmul_errors(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    out = np.empty(C.shape)
    for i in range(C.shape[0]):
        products = A[i][:, None] * B  # exact: float32-valued operands
        for j in range(C.shape[1]):
            out[i, j] = abs(math.fsum([C[i, j], *(-products[:, j]).tolist()]))
    return out


def _sum_errors(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    return np.array([abs(math.fsum([s[i], *(-x[i]).tolist()])) for i in range(x.shape[0])])


def _ratios(observed: np.ndarray, bound: np.ndarray) -> tuple[float, float, int]:
    """Median and max of observed/bound over the entries with a finite bound, and how many bounds are infinite
    (an intermediate may overflow: the bound reports it rather than claiming a number)."""
    finite = np.isfinite(bound)
    if not np.any(finite):
        return math.nan, math.nan, int(bound.size)
    ratio = observed[finite] / bound[finite]
    return float(np.median(ratio)), float(np.max(ratio)), int(np.count_nonzero(~finite))


Row = tuple[str, str, int, float, float, int, float, float, int]


def rows(sizes: tuple[int, ...], seed: int = 0) -> list[Row]:
    """(bound, data, n, det median, det max, det infinite, prob median, prob max, prob infinite) per configuration."""
    rng = np.random.default_rng(seed)
    table = []
    runs: list[tuple[str, str, int, Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]]] = []
    for name, spec in MATMUL.items():
        for data, draw in DATA.items():
            for n in sizes:

                def run(spec: ln.MatmulSpec = spec, draw: Callable = draw, n: int = n) -> tuple:
                    A, B = _f32(draw(rng, (ROWS, n))), _f32(draw(rng, (n, COLS)))
                    C = ln.matmul(A, B, spec, rng=rng)
                    return (_matmul_errors(A, B, C), ln.bounds.matmul(A, B, spec),
                            ln.bounds.matmul(A, B, spec, prob=1e-6))  # fmt: skip

                runs.append((name, data, n, run))
    for name, kwargs in SUMS.items():
        for data, draw in DATA.items():
            for n in sizes:

                def run(kwargs: dict = kwargs, draw: Callable = draw, n: int = n) -> tuple:
                    x = _f32(draw(rng, (ROWS * COLS, n)))
                    s = ln.sum(x, rng=rng, **kwargs)
                    return _sum_errors(x, s), ln.bounds.sum(x, **kwargs), ln.bounds.sum(x, prob=1e-6, **kwargs)

                runs.append((name, data, n, run))
    for name, data, n, run in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ln.bounds.BoundOverflowWarning)
            observed, deterministic, probabilistic = run()
        assert np.all(observed <= deterministic), f"deterministic bound violated: {name}, {data}, n={n}"
        table.append((name, data, n, *_ratios(observed, deterministic), *_ratios(observed, probabilistic)))
    return table


def _cell(median: float, largest: float, infinite: int) -> str:
    if math.isnan(median):
        return "inf (overflow possible) | –"
    note = f" ({infinite} inf)" if infinite else ""
    return f"{median:.2e}{note} | {largest:.2e}"


def markdown(table: list[Row]) -> str:
    lines = [
        "| bound | data | n | deterministic: median | max | probabilistic (1e-6): median | max |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, data, n, dmed, dmax, dinf, pmed, pmax, pinf in table:
        lines.append(f"| {name} | {data} | {n} | {_cell(dmed, dmax, dinf)} | {_cell(pmed, pmax, pinf)} |")
    return "\n".join(lines)


def compose_rows(seed: int = 0, corners: int = 16) -> list[tuple[str, float, float, float, float]]:
    """Per primitive and β scale: median of rigorous/first_order, and median and max of observed/rigorous, where
    observed is the largest |f(ẑ) − f(z)| over random corners z of the box, computed at 1200 bits with mpmath."""
    import mpmath

    import lampnum.compose as lc

    def exact(primitive: lc.Primitive, row: np.ndarray) -> list:
        with mpmath.workprec(1200):
            x = [mpmath.mpf(float(v)) for v in row]
            if isinstance(primitive, lc.Softmax):
                e = [mpmath.exp(v) for v in x]
                return [v / mpmath.fsum(e) for v in e]
            if isinstance(primitive, lc.GELU):
                return [v / 2 * mpmath.erfc(-v / mpmath.sqrt(2)) for v in x]
            mu = mpmath.fsum(x) / len(x)
            sigma = mpmath.sqrt(mpmath.fsum((v - mu) ** 2 for v in x) / len(x) + mpmath.mpf(1e-5))
            return [(v - mu) / sigma for v in x]

    rng = np.random.default_rng(seed)
    table = []
    for primitive in (lc.Softmax(), lc.GELU("none"), lc.LayerNorm()):
        for scale in (1e-4, 1e-2):
            z = rng.standard_normal((8, 16)) * 3
            beta = scale * (np.abs(z) + 0.1)
            rigorous, first = primitive.rigorous(z, beta), primitive.first_order(z, beta)
            observed = np.zeros_like(z)
            with mpmath.workprec(1200):
                for r in range(z.shape[0]):
                    base = exact(primitive, z[r])
                    for _ in range(corners):
                        corner = z[r] + rng.choice([-1.0, 1.0], z.shape[1]) * beta[r] * (1 - 1e-12)
                        moved = exact(primitive, corner)
                        observed[r] = np.maximum(observed[r], [float(abs(a - b)) for a, b in zip(base, moved, strict=True)])
            ratio = observed / rigorous
            table.append((primitive.name, scale, float(np.median(rigorous / first)), float(np.median(ratio)),
                          float(np.max(ratio))))  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 64 and 1024 only")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to PATH")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    table = rows((64, 1024) if args.quick else SIZES, args.seed)
    text = markdown(table)
    print(text)
    print(f"\n{len(table)} configurations, {time.perf_counter() - start:.1f} s")
    compose = ["| primitive | β = scale·(abs(ẑ) + 0.1), scale | rigorous / first order (median) | observed / rigorous: median | max |",
               "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    compose += [f"| {name} | {scale:g} | {rf:.6f} | {med:.2e} | {mx:.2e} |" for name, scale, rf, med, mx in
                compose_rows(args.seed)]  # fmt: skip
    print("\n" + "\n".join(compose))
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(text + "\n\n" + "\n".join(compose) + "\n")


if __name__ == "__main__":
    main()
