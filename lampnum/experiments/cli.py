"""``lampnum sweep``: run a grid of precision × LAMP configurations on GPT-2, resumably, and draw its figures.

Examples::

    lampnum sweep --out runs/demo --m 4 7 10 --rules strict mass --tau strict=0.01,0.1,1 --tau mass=1.5,1.1
    lampnum sweep --out runs/paper --grid paper --workers 2          # the paper's grid (427 cells)
    lampnum sweep --out runs/paper --figures-only                    # figures of what is there
    lampnum sweep --out runs/big --grid paper --scheduler tcp://10.0.0.5:8786   # on a Dask cluster

Rerunning a command skips the cells already in ``OUT/rows.jsonl``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

__all__ = ["add_parser", "cmd_sweep"]


def _tau_spec(text: str) -> tuple[str, list[float]]:
    rule, sep, values = text.partition("=")
    if not sep or not rule:
        raise argparse.ArgumentTypeError(f"expected RULE=V1,V2,..., got {text!r}")
    try:
        return rule, [float(v) for v in values.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RULE=V1,V2,... with numbers, got {text!r}") from None


def _sites(text: str) -> tuple[str, ...]:
    return tuple(s for s in text.split(",") if s)


def _m_bits(text: str) -> int:
    m = int(text)
    if not 1 <= m <= 23:
        raise argparse.ArgumentTypeError(f"m must lie in 1..23 (explicit mantissa bits of the fp32 register), got {m}")
    return m


def _cells_and_datasets(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from lampnum.experiments import paper
    from lampnum.experiments.datasets import parse_dataset
    from lampnum.experiments.grid import expand

    specs = args.dataset or ["shipped:16:512"]
    datasets = {}
    for spec in specs:
        seeds = ([None] if not args.only_shuffled else []) + list(args.shuffle)
        for seed in seeds:
            d = parse_dataset(spec, seed)
            datasets[d.label()] = d
    labels = list(datasets)
    if args.grid == "paper":
        m = tuple(args.m) if args.m else paper.PAPER_M
        cells = [c for label in labels for c in paper.paper_cells(label, m)]
    elif args.grid == "beyond":
        cells = [c for label in labels for c in paper.beyond_cells(label)]
    else:
        if (args.m or args.low_sites) and "paper" not in args.precision:
            raise ValueError("--m and --low-sites (m_bits, low_sites) apply to precision 'paper' only")
        taus = {rule: list(paper.PAPER_TAUS.get(rule, ())) for rule in args.rules}
        taus.update(dict(args.tau))
        cells = expand(
            labels, precisions=args.precision, m_bits=args.m or [7], low_sites=args.low_sites or [("score",)],
            lamp_sites=args.lamp_sites, rules=args.rules, taus=taus,
            ablations=[None if a == "none" else a for a in args.ablations], seed=args.seed,
            baseline=not args.no_baseline,
        )  # fmt: skip
    if args.limit is not None:
        cells = cells[: args.limit]
    return cells, datasets


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run (or with ``--figures-only`` just draw) the sweep the options describe; print a one-line summary."""
    out = Path(args.out)
    if not args.figures_only:
        from lampnum.experiments.runner import run_grid

        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        cells, datasets = _cells_and_datasets(args)
        t0 = time.perf_counter()
        rows = run_grid(
            cells, datasets, out, workers=args.workers, threads=args.threads, scheduler=args.scheduler,
            model_path=args.model, progress=not args.no_progress,
        )  # fmt: skip
        print(f"{len(rows)} cells in {out} ({time.perf_counter() - t0:.1f} s): results.csv, results.json")
    if args.figures or args.figures_only:
        from lampnum.experiments import figures, results

        if not (out / results.JSON).exists():
            raise FileNotFoundError(f"{out / results.JSON} does not exist: run the sweep first")
        paths = figures.draw_all(results.read_json(out / results.JSON), out / "figures")
        print(f"{len(paths)} figures in {out / 'figures'}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``sweep`` on ``subparsers``; returns its parser."""
    from lampnum.gpt2.policy import LAMP_SITES, MATMUL_SITES, PRESETS

    p = subparsers.add_parser(
        "sweep", help="run a resumable grid of precisions x LAMP rules on GPT-2 (CSV/JSON, figures)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--out", required=True, help="output folder: rows.jsonl (resume log), results.csv/json, "
                   "reference-*.npy (cached float64 logits), figures/")  # fmt: skip
    p.add_argument("--grid", choices=["custom", "paper", "beyond"], default="custom",
                   help="custom: the product of the options below (default); paper: the paper's grid (QK^T at "
                   "m in 4..22, mass/strict/relaxed over 30 tau, random ablation; --m narrows it); beyond: "
                   "bf16-acc, fp16, e4m3-weights with LAMP (strict) at every composition")  # fmt: skip
    p.add_argument("--dataset", action="append", metavar="PATH[:N_SEQ[:N_TOKENS]]",
                   help="token ids (.npy, 1-D stream or 2-D rows), a text file, or 'shipped' (the shipped "
                   "held-out tokens); repeatable; default shipped:16:512")  # fmt: skip
    p.add_argument("--shuffle", type=int, nargs="*", default=[], metavar="SEED",
                   help="also run each dataset with its tokens shuffled within each sequence (one per seed)")
    p.add_argument("--only-shuffled", action="store_true", help="run the shuffled datasets only")
    p.add_argument("--precision", nargs="+", default=["paper"], choices=[x for x in PRESETS if x != "fp64"],
                   help="base precision: 'paper' (m-bit accumulation at --low-sites) or a preset (default paper)")
    p.add_argument("--m", type=_m_bits, nargs="+", default=None, metavar="M",
                   help="explicit mantissa bits of the accumulator for precision 'paper', 1..23 (default 7; "
                   "the paper grid: 4 7 10 13 16 19 22)")  # fmt: skip
    p.add_argument("--low-sites", type=_sites, nargs="+", default=None, metavar="SITE[,SITE]",
                   help=f"product sites accumulated in m bits under 'paper', each a comma list of {MATMUL_SITES} "
                   "(default score)")  # fmt: skip
    p.add_argument("--lamp-sites", nargs="+", default=["score"], choices=LAMP_SITES,
                   help="compositions LAMP is applied to, one per cell (default score)")
    p.add_argument("--rules", nargs="+", default=["strict"],
                   help="LAMP rules: mass strict relaxed length top_mu budget none all (default strict)")
    p.add_argument("--tau", type=_tau_spec, action="append", default=[], metavar="RULE=V1,V2,...",
                   help="tau values of a rule (default: the paper grid's for mass, strict, relaxed)")
    p.add_argument("--ablations", nargs="+", choices=["none", "random"], default=["none", "random"],
                   help="none: the rule's selection; random: as many components per row at random positions")
    p.add_argument("--seed", type=int, default=0, help="seed of the random ablation's generator (default 0)")
    p.add_argument("--no-baseline", action="store_true", help="omit the cells without LAMP")
    p.add_argument("--limit", type=int, default=None, help="run only the first N cells of the grid")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: this process)")
    p.add_argument("--threads", type=int, default=None, help="Numba threads per worker (default: Numba's)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the cells on this Dask distributed scheduler (e.g. tcp://host:8786) instead")
    p.add_argument("--model", default=None, help="HF GPT-2 directory or lampnum .npz (default: the shipped model)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--figures", action="store_true", help="draw the figures after the run (needs matplotlib)")
    p.add_argument("--figures-only", action="store_true", help="only draw the figures of OUT/results.json")
    p.set_defaults(handler=cmd_sweep)
    return p
