"""The LAMP paper's main experiment on the shipped model, and our extensions beyond it.

The paper (arXiv 2601.21623) varies only the accumulation precision of QKᵀ — ``m`` explicit mantissa bits of an
fp32 register rounded after every addition, :func:`lampnum.gpt2.Policy.preset` ``("paper", m_bits=m)`` —
and recomputes the scores LAMP selects in high precision, for its three softmax rules over τ grids spanning
(strict) 1e-3 … 50, (relaxed) 0.9 … 9e-5 and (mass) 2 … 1.02, with the random ablation at the same count.
"""

from __future__ import annotations

from lampnum.experiments.datasets import Dataset
from lampnum.experiments.grid import Cell, expand

__all__ = ["PAPER_M", "PAPER_TAUS", "BEYOND_TAUS", "BOUND_TAUS", "BOUND_M", "paper_cells", "beyond_cells", "paper_dataset"]

PAPER_M = (4, 7, 10, 13, 16, 19, 22)
#: τ per rule, ten values each spanning the paper's ranges (30 in all).
PAPER_TAUS: dict[str, tuple[float, ...]] = {
    "strict": (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 50.0),
    "relaxed": (0.9, 0.5, 0.1, 0.03, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 9e-5),
    "mass": (2.0, 1.9, 1.8, 1.6, 1.4, 1.2, 1.1, 1.05, 1.03, 1.02),
}


def paper_dataset(n_seq: int = 16, n_tokens: int = 512) -> Dataset:
    """The paper grid's dataset: the first ``n_seq`` rows of the shipped held-out tokens, ``n_tokens`` each."""
    return Dataset("shipped", n_seq, n_tokens)


def paper_cells(
    dataset: str, m_bits: tuple[int, ...] = PAPER_M, taus: dict[str, tuple[float, ...]] | None = None
) -> list[Cell]:
    """7 m × 30 τ × (LAMP, random) cells plus one baseline per m: 427 cells with the defaults.

    >>> len(paper_cells("d"))
    427
    """
    taus = PAPER_TAUS if taus is None else taus
    return expand(
        [dataset], precisions=["paper"], m_bits=m_bits, lamp_sites=["score"], rules=list(taus), taus=dict(taus)
    )


#: τ of the strict rule at the contribution-ranked sites of the extensions.
BEYOND_TAUS = (1e-3, 1e-2, 0.1, 1.0)


#: τ of the bound-aware rule (absolute: the largest first-order contribution to a row's ‖Δs‖₁ left alone).
BOUND_TAUS = (3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
BOUND_M = (4, 7, 10)


def beyond_cells(dataset: str, precisions: tuple[str, ...] = ("bf16-acc", "fp16", "e4m3-weights")) -> list[Cell]:
    """Every site in low precision (the presets), LAMP with the strict rule at each of the four compositions,
    and the random ablation: 3 presets × (1 + 4 sites × 4 τ × 2) = 99 cells; then the bound-aware rule at
    softmax∘score in the paper's setting, m in 4, 7, 10 × 6 τ × (LAMP, random) = 36 cells (plus the 3
    baselines the paper grid shares): 138 cells.

    >>> len(beyond_cells("d"))
    138
    """
    presets = expand(
        [dataset], precisions=precisions, lamp_sites=["score", "fc", "residual", "lm_head"], rules=["strict"],
        taus={"strict": BEYOND_TAUS},
    )  # fmt: skip
    bound = expand([dataset], precisions=["paper"], m_bits=BOUND_M, lamp_sites=["score"], rules=["bound"],
                   taus={"bound": BOUND_TAUS})  # fmt: skip
    return presets + bound
