"""``lampnum gpt2 {eval,generate,export}``: the command-line face of :mod:`lampnum.gpt2`.

:func:`add_parser` registers the commands on an ``argparse`` sub-parsers object; each handler takes the parsed
namespace and returns an exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "cmd_eval", "cmd_export", "cmd_generate", "parse_policy"]


def parse_policy(name: str):  # type: ignore[no-untyped-def]
    """A preset name, ``paper:M`` for ``Policy.preset("paper", m_bits=M)``; ``fp64`` is the reference."""
    from lampnum.gpt2.policy import Policy

    if name.startswith("paper:"):
        try:
            m_bits = int(name.split(":", 1)[1])
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected paper:M with an integer M, got {name!r}") from None
        return Policy.preset("paper", m_bits=m_bits)
    try:
        return Policy.preset(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _load(path: str | None):  # type: ignore[no-untyped-def]
    import lampnum.gpt2 as g

    return g.load_default() if path is None else g.load(path)


def _tokenizer(path: str | None):  # type: ignore[no-untyped-def]
    from lampnum.gpt2.tokenizer import load_tokenizer

    return load_tokenizer(path)


def _windows(path: Path, model_path: str | None, ctx: int | None, n_positions: int) -> np.ndarray:
    """The evaluation windows [n_win, n_ctx]: the rows of a 2-D ``.npy`` (cut to ``ctx``), or a 1-D ``.npy`` /
    tokenized text file cut into consecutive windows of ``ctx`` tokens (default: the model's n_positions)."""
    if path.suffix == ".npy":
        ids = np.load(path, allow_pickle=False)
        if ids.ndim not in (1, 2) or ids.dtype.kind not in "iu":
            raise SystemExit(
                f"{path}: expected a 1-D or 2-D integer array of token ids, got {ids.dtype} {ids.shape}"
            )
    else:
        ids = _tokenizer(model_path).encode(path.read_text(encoding="utf-8"))
    ids = ids.astype(np.int64)
    if ids.ndim == 2:
        return ids[:, : min(ctx or ids.shape[1], n_positions)]
    n_ctx = min(ctx or n_positions, n_positions)
    if len(ids) < n_ctx:
        raise SystemExit(f"{path}: {len(ids)} tokens, fewer than one window of {n_ctx}")
    return ids[: len(ids) // n_ctx * n_ctx].reshape(-1, n_ctx)


def cmd_eval(args: argparse.Namespace) -> int:
    """Loss and perplexity of a model under a policy, over windows of tokens (see :func:`_windows`).

    With a policy other than fp64, also the KL divergence and flip rate against the float64 reference.
    """
    from lampnum.gpt2 import metrics

    model = _load(args.model)
    windows = _windows(Path(args.tokens), args.model, args.ctx, model.config.n_positions)[: args.windows]
    n_win, n_ctx = windows.shape
    policy, compare = args.policy, args.policy.name != "fp64"
    per_window: dict[str, list[float]] = {"loss": [], "kl_vs_fp64": [], "flip_rate_vs_fp64": []}
    seconds = 0.0
    from tqdm.auto import tqdm

    for w in tqdm(windows, desc=f"eval ({policy.name})", leave=False, disable=n_win < 2):  # equal lengths: the mean of the windows' means is the mean over positions
        t0 = time.perf_counter()
        logits = model.logits(w, policy)
        seconds += time.perf_counter() - t0
        per_window["loss"].append(metrics.cross_entropy(logits, w))
        if compare:
            ref = model.logits(w)
            per_window["kl_vs_fp64"].append(metrics.kl_divergence(ref, logits))
            per_window["flip_rate_vs_fp64"].append(metrics.flip_rate(ref, logits))
    result: dict[str, object] = {
        "model": args.model or "shipped",
        "policy": policy.name,
        "windows": n_win,
        "ctx": n_ctx,
        "seconds": seconds,
    }
    result.update({k: float(np.mean(v)) for k, v in per_window.items() if v})
    result["perplexity"] = float(np.exp(np.mean(per_window["loss"])))
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>18}: {v:.6g}" if isinstance(v, float) else f"{k:>18}: {v}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Continue ``--prompt`` by ``-n`` tokens (greedy unless ``--temperature`` > 0) and print the text."""
    from lampnum.gpt2.generate import generate

    model, tok = _load(args.model), _tokenizer(args.model)
    prompt = tok.encode(args.prompt)
    if prompt.size == 0:
        raise SystemExit("the prompt encodes to no tokens")
    rng = np.random.default_rng(args.seed)
    out = generate(
        model, prompt, args.n, policy=args.policy, temperature=args.temperature, top_k=args.top_k, rng=rng
    )
    print(tok.decode(out))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Convert a Hugging Face GPT-2 (Hub id or directory) to lampnum's layout (needs the ``hf`` extra)."""
    from lampnum.gpt2.weights import export_hf

    try:
        out = export_hf(args.source, args.out, dtype=args.dtype)
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``gpt2 {eval,generate,export}`` on ``subparsers``; returns the ``gpt2`` parser."""
    from lampnum.gpt2.policy import PRESETS

    gpt2 = subparsers.add_parser(
        "gpt2", help="GPT-2 in emulated precision: evaluate, generate, convert checkpoints"
    )
    cmds = gpt2.add_subparsers(dest="gpt2_command", required=True)
    policy_help = (
        f"precision policy: one of {', '.join(p for p in PRESETS if p != 'paper')}, or paper:M (default fp64)"
    )
    model_help = "HF GPT-2 directory or lampnum .npz (default: the shipped model)"

    ev = cmds.add_parser("eval", help="loss / perplexity (and KL, flip rate vs fp64) on a token file")
    ev.add_argument("--model", default=None, help=model_help)
    ev.add_argument(
        "--tokens",
        required=True,
        help=".npy of token ids (a 1-D stream, or 2-D rows = windows), or a text file (model's tokenizer)",
    )
    ev.add_argument("--policy", type=parse_policy, default="fp64", help=policy_help)
    ev.add_argument(
        "--ctx", type=int, default=None, help="window length (default: 2-D rows, else n_positions)"
    )
    ev.add_argument("--windows", type=int, default=None, help="evaluate at most this many windows")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(handler=cmd_eval)

    ge = cmds.add_parser("generate", help="generate text from a prompt")
    ge.add_argument("--model", default=None, help=model_help)
    ge.add_argument("--prompt", required=True)
    ge.add_argument("-n", type=int, default=40, help="number of new tokens (default 40)")
    ge.add_argument("--policy", type=parse_policy, default="fp64", help=policy_help)
    ge.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    ge.add_argument("--top-k", type=int, default=None)
    ge.add_argument("--seed", type=int, default=0, help="seed of the sampling Generator")
    ge.set_defaults(handler=cmd_generate)

    ex = cmds.add_parser("export", help="convert a HF model id or directory to lampnum's layout (needs [hf])")
    ex.add_argument("source", metavar="MODEL_ID_OR_DIR")
    ex.add_argument("out", metavar="OUT", help="a directory, or a path ending in .npz")
    ex.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    ex.set_defaults(handler=cmd_export)
    return gpt2
