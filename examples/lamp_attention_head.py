"""LAMP on one attention head of the shipped GPT-2: QKᵀ with a 7-bit-mantissa accumulator, then recompute the scores
the strict rule selects, for several τ; KL of each attention row to the float64 one, and the recompute rate.

    python examples/lamp_attention_head.py --layer 0 --head 0
"""

from __future__ import annotations

import argparse

import numpy as np

import lampnum as ln
import lampnum.gpt2 as g
from lampnum.demo import PROMPT


def head_qk(model: g.GPT2, ids: np.ndarray, head: int) -> tuple[np.ndarray, np.ndarray]:
    """q, k [n_seq, head_dim] (float32) of ``head`` in block 0 for the embedded ``ids``, in float64 then cast."""
    p, c = model.params, model.config
    x = p["wte.weight"][ids].astype(np.float64) + p["wpe.weight"][: len(ids)]
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    h = (x - mu) / np.sqrt(var + c.layer_norm_epsilon) * p["h.0.ln_1.weight"] + p["h.0.ln_1.bias"]
    qkv = h @ p["h.0.attn.c_attn.weight"].astype(np.float64) + p["h.0.attn.c_attn.bias"]
    d = c.n_embd // c.n_head
    q, k = qkv[:, head * d : (head + 1) * d], qkv[:, c.n_embd + head * d : c.n_embd + (head + 1) * d]
    return q.astype(np.float32), k.astype(np.float32)


def causal_softmax(s: np.ndarray) -> np.ndarray:
    s = np.where(np.tril(np.ones(s.shape, dtype=bool)), s, -np.inf)
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def row_kl(p: np.ndarray, q: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return float(terms.sum(-1).mean())


def main(argv: list[str] | None = None) -> list[tuple[float, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", type=int, default=0, help="attention head of block 0 (default 0)")
    parser.add_argument("--m-bits", type=int, default=7, help="accumulator mantissa bits (default 7)")
    args = parser.parse_args(argv)
    model = g.load_default()
    ids = g.load_tokenizer().encode(PROMPT)
    q, k = head_qk(model, ids, args.head)
    scale = 1 / np.sqrt(q.shape[1])
    exact = (q.astype(np.float64) @ k.T.astype(np.float64)) * scale
    spec = g.Policy.preset("paper", m_bits=args.m_bits).spec("score", 0)
    low = ln.matmul(q, k.T, spec).astype(np.float64) * scale
    causal = np.tril(np.ones(low.shape, dtype=bool))
    p_ref = causal_softmax(exact)
    print(f"block 0, head {args.head}: {len(ids)} positions, QKᵀ accumulated with {args.m_bits} mantissa bits")
    print(f"{'tau':>8} {'KL':>10} {'recompute':>10}")
    print(f"{'none':>8} {row_kl(p_ref, causal_softmax(low)):>10.2e} {0:>10.2%}")
    rows = []
    for tau in (1.0, 0.5, 0.1, 0.01):
        mask = ln.lamp.select("strict", low, tau=tau, causal=causal)
        fixed = np.where(mask, exact, low)  # the selected scores recomputed (exactly, here)
        rate = mask.sum() / causal.sum()
        kl = row_kl(p_ref, causal_softmax(fixed))
        rows.append((tau, kl, float(rate)))
        print(f"{tau:>8g} {kl:>10.2e} {rate:>10.2%}")
    return rows


if __name__ == "__main__":
    main()
