"""``lampnum bench lamp``: LAMP selection plus recomputation against the low-precision score computation.

Setup (issue 5): H heads × T tokens with head dimension d (default 12 × 1024 × 64), float32 attention-like ``q, k``
(Gaussian, with a direction shared by queries and an attention-sink key, as in the tests). The reference is the
low-precision score computation ``lampnum.matmul(q, kᵀ, MatmulSpec(accumulator="bf16"), dtype=float32)·(1/√d)``
(strict accumulation: one bf16 rounding per step; float32 scores, as GPT-2's forward pass holds them), the full
product; "causal reference" times the band ``lower=0`` that a causal forward pass computes, and the column "fraction
of causal" is the cost against it. The bound rule takes the bound ``γ_d·|q||k|ᵀ/√d`` (a float64 BLAS product, timed
apart in the column "bound ms": it comes from :mod:`lampnum.bounds`). For each rule its parameter (τ, µ or r) is
calibrated on the instance to recompute about ``--rate`` of the causal entries; then ``select`` and
``recompute_product`` (float64) run in interleaved rounds with the reference after a warm-up (compile times reported
apart). The table gives median milliseconds and the cost of selection plus recomputation as a fraction of the
reference; the recomputation is timed ``in_place`` (correcting the low-precision scores themselves, as a forward
pass does), and "recompute copy ms" times the default, which first copies the whole score array. For the threshold
rules (strict, relaxed, length) and top_mu, "one pass ms" times ``AttentionScores(LampConfig(rule, …)).apply(q, k,
scores, in_place=True)``, which decides each row and recomputes its selected scores while the row is in cache (the
same mask and values); "fraction of reference" and "fraction of causal" take the faster of the two ways. The scores
are float32, so strict, bound, relaxed and length first decide each row from float32 exponentials, every decision
proved to be the float64 one (:mod:`lampnum.lamp.screen32`; about 0.2 % of the rows fall back to float64 here). Accuracy
columns: the mean ℓ1 error of the causal softmax rows against the exact scores for the low-precision scores, after
LAMP, and after the random ablation (the same count per row at random causal positions).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import lamp
from ..emulate import MatmulSpec, matmul
from ..formats import as_format
from ..lamp._math import masked_softmax
from .timing import interleaved_medians, print_table, time_once, write_json

__all__ = ["main", "run", "attention_heads"]

RULES = ("strict", "relaxed", "length", "mass", "bound", "top_mu", "budget")
# (low, high, geometric) search interval of each rule's parameter; the rate falls as tau grows.
_SEARCH = {
    "strict": (1e-8, 1e3, True),
    "bound": (1e-12, 1e1, True),
    "relaxed": (0.0, 1.0, False),
    "length": (0.0, 1.0, False),
    "mass": (1.0, 2.0, False),
}


def attention_heads(heads: int, tokens: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``q, k`` (heads, tokens, dim): Gaussian, a shared direction, an attention sink at key 0."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((heads, tokens, dim))
    k = rng.standard_normal((heads, tokens, dim))
    u = rng.standard_normal(dim)
    u /= np.linalg.norm(u)
    q += 2.0 * u
    k[:, 0] += 3.0 * u
    return (0.6 * q).astype(np.float32), (0.6 * k).astype(np.float32)


def _rate(mask: np.ndarray, valid_count: int) -> float:
    return int(mask.sum()) / valid_count


def _calibrate(
    rule: str,
    target: float,
    choose: Callable[[dict[str, Any]], np.ndarray],
    valid_count: int,
    mean_length: float,
) -> dict[str, Any]:
    """The rule's parameter giving a recompute rate near ``target`` (bisection; the rate falls as τ grows)."""
    if rule == "top_mu":
        return {"mu": max(1, round(target * mean_length))}
    if rule == "budget":
        return {"rate": target}
    low, high, geometric = _SEARCH[rule]
    for _ in range(40):
        tau = math.sqrt(low * high) if geometric else 0.5 * (low + high)
        rate = _rate(choose({"tau": tau}), valid_count)
        if abs(rate - target) <= 0.05 * target:
            break
        low, high = (tau, high) if rate > target else (low, tau)
    return {"tau": tau}


def _softmax_error(z: np.ndarray, exact: np.ndarray, valid: np.ndarray) -> float:
    """Mean over rows with a valid entry of ‖softmax(z) − softmax(exact)‖₁ over the valid entries."""
    rows = valid.any(axis=-1)
    return float(np.abs(masked_softmax(z, valid) - masked_softmax(exact, valid)).sum(axis=-1)[rows].mean())


def run(
    heads: int,
    tokens: int,
    dim: int,
    rate: float,
    accumulator: str,
    rules: tuple[str, ...],
    repeats: int,
    seed: int,
) -> dict[str, Any]:
    """Run the benchmark and return its rows and the reference timing."""
    q, k = attention_heads(heads, tokens, dim, seed)
    kt = np.swapaxes(k, -1, -2)
    scale = 1.0 / math.sqrt(dim)
    spec = MatmulSpec(accumulator=accumulator)

    factor = np.float32(scale)

    def low_precision() -> np.ndarray:
        return matmul(q, kt, spec, dtype=np.float32) * factor

    def causal_low_precision() -> np.ndarray:
        return matmul(q, kt, spec, dtype=np.float32, lower=0) * factor

    first = time_once(low_precision)
    low = low_precision()
    exact = (q.astype(np.float64) @ kt.astype(np.float64)) * scale
    causal = lamp.causal_mask(tokens, tokens)
    valid = lamp.valid_mask(low, causal)
    valid_count = int(valid.sum())
    u = as_format(accumulator).unit_roundoff
    gamma = dim * u / (1 - dim * u)

    def bound() -> np.ndarray:  # γ_d·|q||k|ᵀ/√d: strict accumulation of d exact products (LAMP-MATH.md §1)
        return gamma * (np.abs(q.astype(np.float64)) @ np.abs(kt.astype(np.float64))) * scale

    beta = bound() if "bound" in rules else None

    def chooser(rule: str) -> Callable[[dict[str, Any]], np.ndarray]:
        def choose(params: dict[str, Any]) -> np.ndarray:
            extra = {"bound": beta} if rule == "bound" else {}
            return lamp.select(rule, low, causal=causal, **params, **extra)

        return choose

    def fix(mask: np.ndarray) -> lamp.LampResult:
        return lamp.recompute_product(q, kt, low, mask, valid=causal, scale=float(factor))

    work = low.copy()  # corrected in place by the timed recomputations (idempotent: same entries, same values)

    def fix_in_place(mask: np.ndarray) -> lamp.LampResult:
        return lamp.recompute_product(q, kt, work, mask, valid=causal, scale=float(factor), in_place=True)

    tiny = (q[:1, :8], kt[:1, :, :8], low[:1, :8, :8])
    compile_lamp = time_once(
        lambda: [lamp.select(rule, tiny[2], tau=1.5) for rule in ("strict", "mass")]
    ) + time_once(lambda: lamp.recompute_product(*tiny, np.ones(tiny[2].shape, dtype=bool)))
    contenders: dict[str, Callable[[], Any]] = {"reference": low_precision, "causal": causal_low_precision}
    rows: list[dict[str, Any]] = []
    for rule in rules:
        choose = chooser(rule)
        params = _calibrate(rule, rate, choose, valid_count, valid_count / tokens / heads)
        mask = choose(params)
        result = fix(mask)
        ablation = fix(lamp.select("random", low, causal=causal, count=mask.sum(-1), rng=seed))
        if rule == "bound":  # timed just before the rule that needs it, as a forward pass runs them
            contenders["bound:beta"] = bound
        contenders[f"{rule}:select"] = lambda choose=choose, params=params: choose(params)
        contenders[f"{rule}:recompute"] = lambda mask=mask: fix_in_place(mask)
        contenders[f"{rule}:recompute copy"] = lambda mask=mask: fix(mask)
        if rule in ("strict", "relaxed", "length", "top_mu"):
            composition = lamp.AttentionScores(lamp.LampConfig(rule, **params))
            contenders[f"{rule}:one pass"] = lambda composition=composition: composition.apply(
                q, k, work, scale=float(factor), in_place=True)  # fmt: skip
        rows.append(
            {
                "rule": rule,
                "parameter": ", ".join(f"{key}={value:.4g}" for key, value in params.items()),
                "rate": result.recompute_rate,
                "error LAMP": _softmax_error(result.values, exact, valid),
                "error random": _softmax_error(ablation.values, exact, valid),
            }
        )
    for function in contenders.values():
        function()
    medians = interleaved_medians(contenders, repeats)
    reference = medians["reference"]
    error_low = _softmax_error(low, exact, valid)
    for row in rows:
        select_s, recompute_s = medians[f"{row['rule']}:select"], medians[f"{row['rule']}:recompute"]
        one_pass_s = medians.get(f"{row['rule']}:one pass")
        cost = min(select_s + recompute_s, one_pass_s or math.inf)
        if one_pass_s is not None:
            row["one pass ms"] = 1e3 * one_pass_s
        row.update(
            {
                "select ms": 1e3 * select_s,
                "recompute ms": 1e3 * recompute_s,
                "recompute copy ms": 1e3 * medians[f"{row['rule']}:recompute copy"],
                "fraction of reference": cost / reference,
                "fraction of causal": cost / medians["causal"],
                "error low": error_low,
            }
        )
        if row["rule"] == "bound":
            row["bound ms"] = 1e3 * medians["bound:beta"]
    return {
        "config": {
            "heads": heads,
            "tokens": tokens,
            "dim": dim,
            "rate": rate,
            "accumulator": accumulator,
            "repeats": repeats,
            "seed": seed,
        },
        "reference ms": 1e3 * reference,
        "causal reference ms": 1e3 * medians["causal"],
        "reference compile s": max(0.0, first - reference),
        "lamp compile s": compile_lamp,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lampnum bench lamp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=64, help="head dimension d")
    parser.add_argument("--rate", type=float, default=0.02, help="target recompute rate (default 0.02)")
    parser.add_argument("--accumulator", default="bf16", help="accumulator format of the score product")
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated rules")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(
        args.heads,
        args.tokens,
        args.dim,
        args.rate,
        args.accumulator,
        tuple(args.rules.split(",")),
        args.repeats,
        args.seed,
    )
    print(
        f"reference: {args.heads} heads x {args.tokens} tokens, d = {args.dim}, strict {args.accumulator} "
        f"accumulation: {result['reference ms']:.0f} ms (compile {result['reference compile s']:.1f} s); causal band "
        f"only: {result['causal reference ms']:.0f} ms"
    )
    print_table(
        result["rows"],
        [
            "rule",
            "parameter",
            "rate",
            "select ms",
            "recompute ms",
            "recompute copy ms",
            "one pass ms",
            "fraction of reference",
            "fraction of causal",
            "error low",
            "error LAMP",
            "error random",
            "bound ms",
        ],
    )
    print(
        f"fraction of reference = min(select + recompute in place, one pass) / reference; LAMP kernels' first "
        f"calls (compile) {result['lamp compile s']:.1f} s; total {time.perf_counter() - start:.0f} s"
    )
    if args.json:
        write_json(args.json, result)
    return 0
