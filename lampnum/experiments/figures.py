"""Figures of a sweep's rows (matplotlib, Agg backend, PNG): accuracy against recompute rate (LAMP and the
random ablation), KL against the accumulation bits m for several τ, and recompute rates per layer.

Each function takes the rows (as :func:`lampnum.experiments.results.read_json` returns them) and a path, draws
one figure and returns the path; :func:`draw_all` draws every figure the rows allow. Zero KL cannot sit on a
log axis: such points are drawn at the axis floor (1e-12).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

__all__ = ["accuracy_vs_rate", "kl_vs_m", "layer_rates", "draw_all"]

Row = dict[str, object]
_FLOOR = 1e-12


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _lamp(rows: Sequence[Row], site: str = "score") -> list[Row]:
    return [r for r in rows if r.get("lamp_site") == site and r.get("rule") not in ("none", "all")]


def _baseline(rows: Sequence[Row], precision: object, m: object, dataset: object) -> Row | None:
    for r in rows:
        if r.get("lamp_site") is None and (r["precision"], r.get("m_bits"), r["dataset"]) == (precision, m, dataset):
            return r
    return None


def accuracy_vs_rate(rows: Sequence[Row], path: Path, metric: str = "kl", site: str = "score") -> Path:
    """``metric`` (kl or flip_rate) against the recompute rate, one panel per (precision, m), LAMP's rules as
    solid lines, their random ablations dashed, the no-LAMP baseline as a dotted horizontal line."""
    plt = _pyplot()
    lamp = _lamp(rows, site)
    panels = sorted({(str(r["precision"]), r.get("m_bits") or 0, str(r["dataset"])) for r in lamp})
    n = max(1, len(panels))
    cols = min(4, n)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(3.6 * cols, 3.0 * ((n + cols - 1) // cols)),
                             squeeze=False)  # fmt: skip
    colours = {"strict": "C0", "mass": "C1", "relaxed": "C2", "length": "C3", "top_mu": "C4", "budget": "C5"}
    for ax, (precision, m, dataset) in zip(axes.flat, panels):
        here = [r for r in lamp if (r["precision"], r.get("m_bits") or 0, r["dataset"]) == (precision, m, dataset)]
        for rule in sorted({str(r["rule"]) for r in here}):
            for abl, style in ((None, "-o"), ("random", "--x")):
                pts = sorted((float(r["recompute_rate"]), float(r[metric])) for r in here
                             if r["rule"] == rule and r.get("ablation") == abl and float(r["recompute_rate"]) > 0)  # fmt: skip
                if pts:
                    x, y = zip(*pts)
                    label = rule + (" (random)" if abl else "")
                    ax.plot(x, [max(v, _FLOOR) for v in y], style, ms=3, color=colours.get(rule, "C7"), label=label)
        base = _baseline(rows, precision, m if m else None, dataset)
        if base is not None:
            ax.axhline(max(float(base[metric]), _FLOOR), color="k", ls=":", lw=1, label="no LAMP")
        ax.set_xscale("log")
        if metric == "kl":
            ax.set_yscale("log")
        ax.set_title(f"{precision}" + (f" m={m}" if m else ""), fontsize=9)
        ax.set_xlabel("recompute rate", fontsize=8)
        ax.set_ylabel("KL (nats)" if metric == "kl" else "flip rate", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if panels:
        axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{'KL' if metric == 'kl' else 'flip rate'} vs recompute rate, LAMP at {site}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def kl_vs_m(rows: Sequence[Row], path: Path, rule: str = "strict", site: str = "score") -> Path:
    """KL against m (precision "paper") for each τ of ``rule`` (LAMP solid, random dashed) and no LAMP."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    series: dict[tuple[float, object], list[tuple[int, float]]] = defaultdict(list)
    for r in _lamp(rows, site):
        if r["precision"] == "paper" and r["rule"] == rule:
            series[(float(r["tau"]), r.get("ablation"))].append((int(r["m_bits"]), float(r["kl"])))  # type: ignore[arg-type]
    taus = sorted({t for t, _ in series})
    cmap = plt.get_cmap("viridis")
    for i, tau in enumerate(taus):
        for abl, style in ((None, "-o"), ("random", "--x")):
            pts = sorted(series.get((tau, abl), []))
            if pts:
                x, y = zip(*pts)
                ax.plot(x, [max(v, _FLOOR) for v in y], style, ms=3, color=cmap(i / max(1, len(taus) - 1)),
                        label=f"tau={tau:g}" if abl is None else None, alpha=1.0 if abl is None else 0.5)  # fmt: skip
    base = sorted((int(r["m_bits"]), float(r["kl"])) for r in rows  # type: ignore[arg-type]
                  if r.get("lamp_site") is None and r["precision"] == "paper")  # fmt: skip
    if base:
        x, y = zip(*base)
        ax.plot(x, [max(v, _FLOOR) for v in y], "k:s", ms=3, label="no LAMP")
    ax.set_yscale("log")
    ax.set_xlabel("m (explicit mantissa bits of the QK^T accumulator)")
    ax.set_ylabel("KL (nats)")
    ax.set_title(f"KL vs m, rule {rule} (dashed: random ablation)", fontsize=10)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def layer_rates(rows: Sequence[Row], path: Path, site: str = "score") -> Path:
    """Recompute rate per layer at ``site`` for each LAMP cell (no ablation) of precision paper (one line
    per (m, rule, τ), coloured by overall rate)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    cells = [r for r in _lamp(rows, site) if r.get("ablation") is None and float(r["recompute_rate"]) > 0]
    cmap = plt.get_cmap("plasma")
    for r in cells:
        rates = r["layer_rates"]
        assert isinstance(rates, dict)
        pts = sorted((int(k.split("/")[0]), float(v)) for k, v in rates.items()
                     if k.endswith("/" + site) and k.split("/")[0] != "-")  # fmt: skip
        if pts:
            x, y = zip(*pts)
            overall = float(r["recompute_rate"])  # type: ignore[arg-type]
            ax.plot(x, y, "-", lw=0.8, alpha=0.6, color=cmap(min(1.0, overall ** 0.5)))
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("recompute rate")
    ax.set_title(f"per-layer recompute rate at {site} (colour: overall rate)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def draw_all(rows: Sequence[Row], folder: Path) -> list[Path]:
    """Every figure the rows allow, as PNG files in ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for site in sorted({str(r["lamp_site"]) for r in rows if r.get("lamp_site")}):
        if not _lamp(rows, site):
            continue
        out.append(accuracy_vs_rate(rows, folder / f"kl_vs_rate_{site}.png", "kl", site))
        out.append(accuracy_vs_rate(rows, folder / f"flip_vs_rate_{site}.png", "flip_rate", site))
        out.append(layer_rates(rows, folder / f"layer_rates_{site}.png", site))
        for rule in sorted({str(r["rule"]) for r in _lamp(rows, site) if r["precision"] == "paper"}):
            out.append(kl_vs_m(rows, folder / f"kl_vs_m_{rule}_{site}.png", rule, site))
    return out
