"""``lampnum bench matmul``: the emulated matrix product against numpy's float32 ``@`` (BLAS) at GPT-2 shapes.

Operands are float32 normal samples. For each shape and spec, the emulated product and numpy's float32 product run
in interleaved rounds after a warm-up (Numba's compile time is reported apart); the table gives the median seconds,
rounded multiply-adds per second, and the slowdown against BLAS (emulated time / BLAS time), of the medians and of the
fastest calls (on a small shared machine the two differ by tens of per cent).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from ..emulate import MatmulSpec, matmul
from ..formats import Format
from .timing import interleaved_samples, print_table, write_json

__all__ = ["main", "run", "SHAPES", "SPECS"]

SHAPES = {
    "qkv 512x768@768x2304": ((512, 768), (768, 2304)),
    "mlp_proj 512x3072@3072x768": ((512, 3072), (3072, 768)),
    "heads 12x512x64@12x64x512": ((12, 512, 64), (12, 64, 512)),
}
SPECS = {
    "bf16 strict": MatmulSpec(accumulator="bf16"),
    "fp16 strict": MatmulSpec(accumulator="fp16"),
    "bf16 block=32": MatmulSpec(accumulator="bf16", block=32),
    "paper m=7 (fp32 register)": MatmulSpec(accumulator=Format(p=8, emax=127), product="fp32", via="fp32"),
    "bf16 strict sr": MatmulSpec(accumulator="bf16", mode="sr"),
    "fp64 accumulator": MatmulSpec(accumulator="fp64"),
}


def run(shapes: list[str], specs: list[str], repeats: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for shape_name in shapes:
        a_shape, b_shape = SHAPES[shape_name]
        a = rng.standard_normal(a_shape).astype(np.float32)
        b = rng.standard_normal(b_shape).astype(np.float32)
        macs = a.size // a.shape[-1] * a.shape[-1] * b.shape[-1]
        for spec_name in specs:
            spec = SPECS[spec_name]
            start = time.perf_counter()
            matmul(a[..., :4, :], b[..., :, :4], spec, rng=1)
            compile_seconds = time.perf_counter() - start
            contenders = {"lampnum": lambda s=spec, a=a, b=b: matmul(a, b, s, rng=1),
                          "numpy float32 @": lambda a=a, b=b: a @ b}  # fmt: skip
            for function in contenders.values():
                function()
            samples = interleaved_samples(contenders, repeats, pause=0.3)
            ours, blas = samples["lampnum"], samples["numpy float32 @"]
            median, blas_median = statistics.median(ours), statistics.median(blas)
            rows.append({"shape": shape_name, "spec": spec_name, "lampnum s": median, "BLAS s": blas_median,
                         "slowdown": median / blas_median, "best-of slowdown": min(ours) / min(blas),
                         "Mmac/s": macs / median / 1e6, "compile s": compile_seconds})  # fmt: skip
    return rows


def resolve(names: str, table: dict[str, Any], what: str) -> list[str]:
    """The keys of ``table`` named in the comma-separated ``names``: a full key, or a shape's short name (its first
    word, e.g. ``qkv``). Raises ``ValueError`` naming the choices for anything else."""
    short = {key.split()[0]: key for key in table} if what == "shape" else {}
    keys = []
    for name in (part.strip() for part in names.split(",")):
        key = name if name in table else short.get(name)
        if key is None:
            raise ValueError(f"unknown {what} {name!r}; choose from: {', '.join(table)}")
        keys.append(key)
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lampnum bench matmul", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help=f"comma-separated from: {', '.join(SHAPES)} (or the first word: qkv, mlp_proj, heads)")
    parser.add_argument("--specs", default="bf16 strict,fp16 strict,bf16 block=32",
                        help=f"comma-separated from: {', '.join(SPECS)}")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median reported)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    try:
        shapes, specs = resolve(args.shapes, SHAPES, "shape"), resolve(args.specs, SPECS, "spec")
    except ValueError as error:
        parser.error(str(error))
    rows = run(shapes, specs, args.repeats)
    print_table(rows, ["shape", "spec", "lampnum s", "BLAS s", "slowdown", "best-of slowdown", "Mmac/s", "compile s"])
    if args.json:
        write_json(args.json, rows)
    return 0
