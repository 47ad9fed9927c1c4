"""Cells of an experiment grid: one configuration each (dataset, precision, LAMP rule), and the grid itself.

A :class:`Cell` is a frozen record of plain values (strings, numbers, tuples), so it travels to worker
processes and Dask workers as a dict, lands in every result row unchanged, and has a stable :meth:`Cell.key`
(a hash of its JSON form) by which a resumed sweep recognises finished cells.

The precision of a cell:

- ``precision="paper"`` with ``m_bits``: the LAMP paper's accumulation (fp32 products, an fp32 register
  rounded to ``m_bits`` explicit mantissa bits after every addition) at each product site in
  ``low_sites`` (default ``("score",)``: exactly ``Policy.preset("paper", m_bits=m)``); everything else
  float32.
- any other :data:`lampnum.gpt2.policy.PRESETS` name (``bf16-acc``, ``fp16``, ``e4m3-weights``, …): that
  preset as it is (``m_bits`` and ``low_sites`` must be left at their defaults).

LAMP: ``lamp_site`` (one of score, fc, residual, lm_head; ``None`` for no LAMP, the baseline), ``rule`` with
``tau`` (or ``mu``/``rate`` for top_mu/budget), ``ablation`` None or ``"random"`` (the same count per row at
random positions, seeded by ``seed``), recomputed in float64.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

__all__ = ["Cell", "expand", "CELL_FIELDS"]


@dataclass(frozen=True)
class Cell:
    """One configuration of the grid (see the module docstring); ``dataset`` names a
    :class:`lampnum.experiments.datasets.Dataset` by its :meth:`~lampnum.experiments.datasets.Dataset.label`.

    >>> c = Cell(dataset="eval", precision="paper", m_bits=7, lamp_site="score", rule="strict", tau=0.5)
    >>> c.policy().name
    'paper(m=7)+lamp[score:strict(tau=0.5)]'
    >>> Cell.from_dict(c.to_dict()) == c
    True
    """

    dataset: str
    precision: str = "paper"
    m_bits: int | None = None
    low_sites: tuple[str, ...] = ("score",)
    lamp_site: str | None = None
    rule: str = "none"
    tau: float | None = None
    mu: int | None = None
    rate: float | None = None
    ablation: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "low_sites", tuple(self.low_sites))
        for name in ("tau", "rate"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, float(v))
        if self.lamp_site is None and (self.rule != "none" or self.ablation is not None):
            raise ValueError("a cell without lamp_site is the baseline: rule 'none', no ablation")
        self.policy()  # validate once, here: a bad cell raises before any work is done

    def policy(self):  # type: ignore[no-untyped-def]  # -> lampnum.gpt2.Policy (imported lazily)
        """The :class:`lampnum.gpt2.Policy` this cell runs."""
        from lampnum.gpt2.policy import Policy

        if self.precision == "paper":
            if self.m_bits is None:
                raise ValueError("precision 'paper' needs m_bits")
            spec = Policy.preset("paper", m_bits=self.m_bits).matmul["score"]
            policy = Policy.preset("fp32")
            for site in self.low_sites:
                policy = policy.with_site(site, spec)
            name = f"paper(m={self.m_bits})"
            if self.low_sites != ("score",):
                name += "@" + ",".join(self.low_sites)
            policy = policy.with_site("score", policy.matmul["score"], name=name)
        else:
            if self.m_bits is not None or self.low_sites != ("score",):
                raise ValueError(f"m_bits and low_sites apply to precision 'paper' only, not {self.precision!r}")
            policy = Policy.preset(self.precision)
        if self.lamp_site is None:
            return policy
        return policy.with_lamp(
            self.lamp_site, self.rule, tau=self.tau, mu=self.mu, rate=self.rate, ablation=self.ablation,
            seed=self.seed,
        )  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        """The cell as plain JSON values (``low_sites`` a list)."""
        d = asdict(self)
        d["low_sites"] = list(self.low_sites)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Cell:
        """The inverse of :meth:`to_dict` (extra keys, e.g. the metrics of a result row, are ignored)."""
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        if isinstance(kw.get("low_sites"), str):  # from a CSV row
            kw["low_sites"] = tuple(s for s in str(kw["low_sites"]).split(",") if s)
        return cls(**kw)  # type: ignore[arg-type]

    def key(self) -> str:
        """A stable 16-hex-digit identifier of the configuration (the same in every process and run)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


CELL_FIELDS = tuple(f.name for f in fields(Cell))


def _taus(rule: str, taus: dict[str, Sequence[float]]) -> Sequence[float | None]:
    if rule in ("none", "all", "top_mu", "budget"):
        return [None]
    if rule not in taus or not taus[rule]:
        raise ValueError(f"no tau values given for rule {rule!r}")
    return taus[rule]


def expand(
    datasets: Iterable[str],
    *,
    precisions: Iterable[str] = ("paper",),
    m_bits: Iterable[int | None] = (None,),
    low_sites: Iterable[tuple[str, ...]] = (("score",),),
    lamp_sites: Iterable[str] = ("score",),
    rules: Iterable[str] = ("strict",),
    taus: dict[str, Sequence[float]] | None = None,
    ablations: Iterable[str | None] = (None, "random"),
    seed: int = 0,
    baseline: bool = True,
) -> list[Cell]:
    """The cells of the full product datasets × precisions × m_bits × low_sites × lamp_sites × rules × τ ×
    ablations, in that order, plus (``baseline=True``) one no-LAMP cell per dataset × precision × m × low_sites.

    ``m_bits`` applies to precision "paper" only (other precisions take one cell with ``m_bits=None``);
    ``taus`` maps a rule to its τ values (rules all/none/top_mu/budget take none). Duplicates are dropped.

    >>> cells = expand(["d"], m_bits=[4, 7], rules=["strict"], taus={"strict": [0.1, 1.0]})
    >>> len(cells)  # 2 m × (1 baseline + 2 τ × 2 ablations)
    10
    """
    taus = taus or {}
    out: dict[str, Cell] = {}
    m_list, low_list = list(m_bits), [tuple(s) for s in low_sites]
    lamp_list, rule_list, abl_list = list(lamp_sites), list(rules), list(ablations)
    for dataset, precision in itertools.product(datasets, precisions):
        ms = m_list if precision == "paper" else [None]
        lows = low_list if precision == "paper" else [("score",)]
        for m, low in itertools.product(ms, lows):
            common = dict(dataset=dataset, precision=precision, m_bits=m, low_sites=low)
            if baseline:
                c = Cell(**common)  # type: ignore[arg-type]
                out.setdefault(c.key(), c)
            for site, rule in itertools.product(lamp_list, rule_list):
                for tau, abl in itertools.product(_taus(rule, taus), abl_list):
                    if rule in ("none", "all") and abl is not None:
                        continue  # nothing to ablate
                    c = Cell(**common, lamp_site=site, rule=rule, tau=tau, ablation=abl, seed=seed)  # type: ignore[arg-type]
                    out.setdefault(c.key(), c)
    return list(out.values())
