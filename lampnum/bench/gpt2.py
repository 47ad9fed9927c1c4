"""GPT-2 forward-pass speed: lampnum against transformers on torch CPU, same weights, same tokens, one
process.

``python -m lampnum.bench.gpt2 [--tokens 512] [--reps 5] [--json out.json]`` (or ``lampnum bench gpt2``).

Protocol (see BENCHMARKING.md): every timed function runs once as a warm-up (lampnum then converts the
parameters to the working dtype, torch allocates), then the repetitions are interleaved — lampnum fp32, torch
fp32, lampnum fp64, torch fp64, … — and each figure is the median. Between two timed calls the benchmark
sleeps ``--pause`` seconds, so that the worker threads one library leaves spinning (OpenBLAS busy-waits after
a call, as does libgomp) do not tax the next measurement. torch runs with ``--torch-threads`` (default 2)
intra-op threads; numpy's BLAS keeps its own setting.

Reported: seconds per forward pass (logits for every position) and the ratios lampnum/torch in float32 and
float64; then the emulated ``bf16-acc`` forward on ``--emulated-tokens`` tokens and its slowdown against
lampnum's float32 forward on the same tokens. The model is by default random weights of GPT-2-small shape
(124M parameters; speed does not depend on the values); ``--model shipped`` or a path uses real weights.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lampnum.bench.timing import write_json

__all__ = ["main"]

SMALL = dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, n_inner=3072)


def _model(which: str, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """``"random"``: GPT-2-small-shaped random weights; ``"shipped"``: the shipped model; else a path."""
    import lampnum.gpt2 as g
    from lampnum.gpt2.weights import random_params

    if which == "shipped":
        return g.load_default(), "shipped"
    if which != "random":
        return g.load(which), which
    config = g.GPT2Config(**SMALL)  # type: ignore[arg-type]
    return g.GPT2(config, random_params(config, rng)), "random GPT-2-small shape"


def _torch_models(model, threads: int):  # type: ignore[no-untyped-def]
    import torch
    import transformers

    from lampnum.gpt2.weights import write_hf_dir

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        write_hf_dir(tmp, model.config, model.params)
        hf32 = transformers.GPT2LMHeadModel.from_pretrained(tmp, dtype=torch.float32).eval()
        hf64 = transformers.GPT2LMHeadModel.from_pretrained(tmp, dtype=torch.float64).eval()
    return torch, hf32, hf64


def _time(fns: dict[str, Callable[[], object]], reps: int, pause: float) -> dict[str, list[float]]:
    """Warm each function once, then ``reps`` interleaved rounds; seconds per call."""
    for f in fns.values():
        f()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, f in fns.items():
            time.sleep(pause)
            t0 = time.perf_counter()
            f()
            out[name].append(time.perf_counter() - t0)
    return out


def _blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (install threadpoolctl)"
    pools = [f"{p.get('internal_api')} {p.get('version')} x{p.get('num_threads')}" for p in threadpool_info()]
    return ", ".join(pools)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; return the results as a JSON-ready dictionary (``main`` prints it as a table)."""
    import lampnum.gpt2 as g

    rng = np.random.default_rng(args.seed)
    model, source = _model(args.model, rng)
    n_tok = min(args.tokens, model.config.n_positions)
    ids = rng.integers(0, model.config.vocab_size, (1, n_tok))
    p32, p64 = g.Policy.preset("fp32"), g.Policy.preset("fp64")
    fns: dict[str, Callable[[], object]] = {
        "lampnum fp32": lambda: model.logits(ids, p32),
        "lampnum fp64": lambda: model.logits(ids, p64),
    }
    res: dict[str, Any] = {
        "model": source,
        "n_params": model.n_params,
        "tokens": n_tok,
        "reps": args.reps,
        "torch_threads": args.torch_threads,
        "numpy": np.__version__,
        "blas": _blas_info(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    if not args.no_torch:
        torch, hf32, hf64 = _torch_models(model, args.torch_threads)
        tids = torch.as_tensor(ids)

        def torch_fwd(hf):  # type: ignore[no-untyped-def]
            def f() -> object:
                with torch.inference_mode():
                    return hf(tids).logits

            return f

        fns = {
            "lampnum fp32": fns["lampnum fp32"],
            "torch fp32": torch_fwd(hf32),
            "lampnum fp64": fns["lampnum fp64"],
            "torch fp64": torch_fwd(hf64),
        }
        res.update(torch=torch.__version__, attn_implementation=hf32.config._attn_implementation)
    times = _time(fns, args.reps, args.pause)
    res["seconds"] = {k: statistics.median(v) for k, v in times.items()}
    res["all_seconds"] = times
    if not args.no_torch:
        s = res["seconds"]
        res["ratio_fp32"] = s["lampnum fp32"] / s["torch fp32"]
        res["ratio_fp64"] = s["lampnum fp64"] / s["torch fp64"]
    if args.emulated_tokens > 0:
        short = ids[:, : args.emulated_tokens]
        emu = g.Policy.preset("bf16-acc")
        t32 = _time({"fp32": lambda: model.logits(short, p32)}, args.reps, args.pause)["fp32"]
        t0 = time.perf_counter()
        model.logits(short[:, :2], emu)  # warm-up on 2 tokens: Numba compilation (or cache loading)
        warm = time.perf_counter() - t0
        runs = [model.run(short, emu) for _ in range(args.emulated_reps)]
        runs.sort(key=lambda r: r.stats.total_seconds)
        out = runs[(len(runs) - 1) // 2]  # the median run (lower median for an even count)
        seconds = out.stats.total_seconds
        res["emulated"] = {
            "policy": "bf16-acc",
            "tokens": int(short.shape[1]),
            "reps": args.emulated_reps,
            "seconds": seconds,
            "warmup_seconds": warm,
            "fp32_seconds": statistics.median(t32),
            "slowdown_vs_fp32": seconds / statistics.median(t32),
            "seconds_per_site": out.stats.seconds,
        }
    return res


def _table(res: dict[str, Any]) -> str:
    lines = [
        f"GPT-2 forward, {res['model']} ({res['n_params'] / 1e6:.1f}M parameters), {res['tokens']} tokens, "
        f"median of {res['reps']}",
        f"numpy {res['numpy']}, BLAS: {res['blas']}",
    ]
    if "torch" in res:
        lines.append(
            f"torch {res['torch']} ({res['torch_threads']} threads, attention: {res['attn_implementation']})"
        )
    lines += ["", f"{'':<16}{'seconds':>10}"]
    lines += [f"{k:<16}{v:>10.3f}" for k, v in res["seconds"].items()]
    if "ratio_fp32" in res:
        lines += ["", f"lampnum / torch  fp32: {res['ratio_fp32']:.2f}x   fp64: {res['ratio_fp64']:.2f}x"]
    if "emulated" in res:
        e = res["emulated"]
        lines += [
            "",
            f"emulated {e['policy']} on {e['tokens']} tokens: {e['seconds']:.2f} s "
            f"(warm-up {e['warmup_seconds']:.2f} s), lampnum fp32 {e['fp32_seconds']:.3f} s, "
            f"slowdown {e['slowdown_vs_fp32']:.0f}x",
            "  per site: " + ", ".join(f"{k} {v:.2f}" for k, v in e["seconds_per_site"].items()),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: print the table, optionally write JSON; returns the exit status."""
    ap = argparse.ArgumentParser(prog="lampnum bench gpt2", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model",
        default="random",
        help="'random' (GPT-2-small shape, the default), 'shipped', or a model path",
    )
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument(
        "--pause", type=float, default=0.3, help="seconds of idle before each timed call (default 0.3)"
    )
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument(
        "--emulated-tokens", type=int, default=128, help="tokens for the bf16-acc forward (0: skip)"
    )
    ap.add_argument("--emulated-reps", type=int, default=1, help="timed bf16-acc passes (default 1; slow)")
    ap.add_argument("--no-torch", action="store_true", help="time lampnum alone (no transformers needed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    res = run(args)
    print(_table(res))
    if args.json is not None:
        write_json(str(args.json), res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
