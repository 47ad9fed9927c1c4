"""``lampnum demo``: what low precision does to a transformer, and how LAMP repairs it, in one screen.

On the shipped GPT-2 (or any exported one, ``--model``) and a built-in Python prompt, the demo runs the float64
reference, a low-precision policy without LAMP, and the same policy with LAMP (strict rule at softmax∘QKᵀ) at two
values of τ. It prints, for the prompt's next-token distributions, the KL divergence to the reference, the flip rate
(argmax changes), LAMP's recompute rate and the forward-pass seconds; then each policy's greedy continuation of the
prompt side by side; and saves a PNG figure (per-position KL of each policy) whose path it prints.

The default policy, ``paper:7`` (the LAMP paper's setting: QKᵀ accumulated with a 7-bit mantissa, everything else
float32), emulates only the attention scores, so the whole demo takes seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .gpt2.policy import Policy

__all__ = ["PROMPT", "DemoRow", "add_parser", "run_demo"]

PROMPT = '''import numpy as np


def softmax(x, axis=-1):
    """Softmax of x along axis, shifted by the maximum for stability."""
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def cross_entropy(logits, labels):
    """Mean negative log-likelihood of the labels."""
    probs = softmax(logits)
    return -np.mean(np.log('''


@dataclass
class DemoRow:
    """One policy's results: its label, per-position KL to the reference, flips, recompute rate, seconds, text."""

    label: str
    kl: np.ndarray
    flip_rate: float
    recompute_rate: float | None
    seconds: float
    continuation: str


def _per_position_kl(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    from .gpt2 import metrics

    return np.array([metrics.kl_divergence(ref[i : i + 1], test[i : i + 1]) for i in range(ref.shape[0])])


def _continue(model, ids: np.ndarray, n_new: int, policy, label: str, progress: bool) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Greedy continuation of ``ids`` by ``n_new`` tokens with a key/value cache, with a tqdm bar."""
    from tqdm.auto import tqdm

    from .gpt2.generate import sample_next

    out = []
    logits, cache = model.forward(ids, policy)
    for step in tqdm(range(n_new), desc=f"generating ({label})", leave=False, disable=not progress):
        nxt = sample_next(logits[-1])[None]
        out.append(int(nxt[0]))
        if step + 1 < n_new:
            logits, cache = model.forward(nxt, policy, cache)
    return np.array(out, dtype=np.int64)


def _figure(rows: list[DemoRow], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    for row in rows[1:]:
        ax.semilogy(np.maximum(row.kl, 1e-18), label=f"{row.label} (mean {row.kl.mean():.2e})", lw=1)
    ax.set(xlabel="position in the prompt", ylabel="KL(fp64 ‖ policy), nats", title=title)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demo(
    model_path: str | None = None,
    policy_name: str | Policy = "paper:7",
    taus: tuple[float, ...] = (0.5, 0.05),
    prompt: str = PROMPT,
    n_new: int = 24,
    output: str | None = None,
    progress: bool = True,
) -> int:
    """Run the demo (see the module docstring) and return the exit status 0."""
    from .gpt2 import load, load_default, load_tokenizer, metrics
    from .gpt2.cli import parse_policy

    try:
        policy = parse_policy(policy_name) if isinstance(policy_name, str) else policy_name
    except argparse.ArgumentTypeError as error:
        raise ValueError(str(error)) from None
    if any(not (np.isfinite(t) and t > 0) for t in taus):
        raise ValueError(f"--tau values must be positive numbers, got {list(taus)}")
    model = load_default() if model_path is None else load(model_path)
    tokenizer = load_tokenizer(model_path)
    ids = tokenizer.encode(prompt)
    if ids.size == 0:
        raise ValueError("the prompt encodes to no tokens")
    if ids.size + n_new > model.config.n_positions:
        raise ValueError(f"{ids.size} prompt + {n_new} new tokens exceed n_positions = {model.config.n_positions}")
    print(f"lampnum demo: GPT-2 ({model.n_params:,} parameters, {model.config.n_layer} layers) on a {ids.size}-token "
          f"prompt, policy {policy.name}\n")  # fmt: skip
    policies = [("fp64 (reference)", None), (policy.name, policy)]
    policies += [(f"+ LAMP tau={tau:g}", policy.with_lamp("score", rule="strict", tau=tau)) for tau in taus]
    rows: list[DemoRow] = []
    ref = None
    for label, pol in policies:
        t0 = time.perf_counter()
        result = model.run(ids, pol)
        seconds = time.perf_counter() - t0
        ref = result.logits if ref is None else ref
        lamp = pol is not None and bool(pol.lamp)
        text = tokenizer.decode(_continue(model, ids, n_new, pol, label, progress))
        rows.append(DemoRow(label, _per_position_kl(ref, result.logits), metrics.flip_rate(ref, result.logits),
                            result.recompute_rate if lamp else None, seconds, text))  # fmt: skip
    print(f"{'policy':<30} {'KL (nats)':>10} {'flip rate':>10} {'recompute':>10} {'seconds':>8}")
    for row in rows:
        recompute = "-" if row.recompute_rate is None else f"{row.recompute_rate:.2%}"
        print(f"{row.label:<30} {row.kl.mean():>10.2e} {row.flip_rate:>10.2%} {recompute:>10} {row.seconds:>8.2f}")
    base = rows[1].kl.mean()
    for row in rows[2:]:
        if row.kl.mean() > 0 and row.recompute_rate is not None:
            print(f"{row.label}: KL divided by {base / row.kl.mean():.0f}, recomputing "
                  f"{row.recompute_rate:.1%} of the attention scores in high precision")  # fmt: skip
    print(f"\nGreedy continuations of the prompt ({n_new} tokens each):")
    for row in rows:
        print(f"\n--- {row.label} ---")
        print(textwrap.indent(row.continuation.rstrip() or "(nothing)", "  "))
    path = Path(output) if output else Path(tempfile.gettempdir()) / "lampnum-demo.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    _figure(rows, path, f"Per-position KL to float64, {policy.name}")
    print(f"\nFigure: {path}")
    return 0


def _taus(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``demo`` on ``subparsers``."""
    parser = subparsers.add_parser(
        "demo", help="GPT-2 in low precision with and without LAMP: table, continuations, figure",
        description="Run the float64 reference, a low-precision policy, and the policy with LAMP at two tau values "
        "on a GPT-2 and a prompt; print KL, flip rate, recompute rate, seconds and continuations; save a figure.",
    )  # fmt: skip
    parser.add_argument("--model", default=None, help="exported GPT-2 directory or .npz (default: the shipped model)")
    parser.add_argument("--policy", default="paper:7",
                        help="low-precision policy: a preset (bf16, fp16, ...) or paper:M (default paper:7)",
                        )  # fmt: skip
    parser.add_argument("--tau", type=_taus, default=(0.5, 0.05),
                        help="LAMP thresholds, comma-separated (default 0.5,0.05)")  # fmt: skip
    parser.add_argument("--prompt", default=PROMPT, help="prompt text (default: a built-in Python snippet)")
    parser.add_argument("-n", "--new-tokens", type=int, default=24, help="tokens to generate per policy (default 24)")
    parser.add_argument("--output", "-o", default=None,
                        help="PNG path of the figure (default: lampnum-demo.png in the temp folder)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=lambda a: run_demo(a.model, a.policy, a.tau, a.prompt, a.new_tokens, a.output,
                                                   not a.no_progress))  # fmt: skip
