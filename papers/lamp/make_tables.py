"""Print the markdown tables of papers/lamp/README.md from a sweep's rows (``results.csv`` of ``lampnum sweep``).

    python papers/lamp/make_tables.py papers/lamp/results/paper.csv papers/lamp/results/beyond.csv

Table 1, per m and rule: the KL without LAMP; the largest gain (KL without LAMP / KL with LAMP) at a recompute rate
of at most 3 %; the lowest rate at which the gain reaches 10× and 100×, with the random ablation's KL at that τ.
Table 2: every τ of the three rules at m = 7. Table 3: the beyond-the-paper grid (presets × LAMP sites, and the
bound-aware rule).
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict


def _load(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _num(value: str) -> float | None:
    return None if value in ("", "None", None) else float(value)


def _fmt(x: float | None, percent: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if percent:
        return f"{100 * x:.1f} %"
    return f"{x:.3g}"


def _pairs(rows: list[dict[str, str]], precision: str) -> tuple[dict, dict]:
    """(baseline KL by m, {(m, site, rule, tau): {"lamp": row, "random": row}})."""
    base: dict = {}
    cells: dict = defaultdict(dict)
    for row in rows:
        if row["precision"] != precision:
            continue
        m = row.get("m_bits") or ""
        if row["lamp_site"] in ("", "None"):
            base[m] = float(row["kl"])
            continue
        key = (m, row["lamp_site"], row["rule"], _num(row["tau"]))
        cells[key]["random" if row["ablation"] == "random" else "lamp"] = row
    return base, cells


def _first_gain(entries: list[tuple], none: float | None, factor: float) -> tuple | None:
    """The lowest-rate (rate, τ, KL, random KL) entry whose gain over ``none`` reaches ``factor``."""
    return next((e for e in entries if none and none / max(e[2], 1e-300) >= factor), None)


def claim_table(rows: list[dict[str, str]]) -> str:
    base, cells = _pairs(rows, "paper")
    lines = ["| m | rule | no LAMP KL | best gain at rate ≤ 3 % (τ, rate) | lowest rate for 10× (τ; random KL) "
             "| lowest rate for 100× (τ; LAMP KL; random KL) |", "| --- | --- | --- | --- | --- | --- |"]
    by_rule: dict = defaultdict(list)
    for (m, _site, rule, tau), pair in cells.items():
        if "lamp" in pair:
            by_rule[(m, rule)].append((tau, pair))
    for m, rule in sorted(by_rule, key=lambda key: (int(key[0]), key[1])):
        none = base.get(m)
        entries = []
        for tau, pair in by_rule[(m, rule)]:
            lamp = pair["lamp"]
            kl, rate = float(lamp["kl"]), float(lamp["recompute_rate"])
            random = float(pair["random"]["kl"]) if "random" in pair else None
            entries.append((rate, tau, kl, random))
        entries.sort()
        low = [e for e in entries if e[0] <= 0.03]
        best = max(low, key=lambda e: none / max(e[2], 1e-300)) if low and none else None
        best_text = f"{none / max(best[2], 1e-300):.3g}× (τ = {best[1]:g}, {_fmt(best[0], True)})" if best else "—"

        ten, hundred = _first_gain(entries, none, 10.0), _first_gain(entries, none, 100.0)
        ten_text = f"{_fmt(ten[0], True)} (τ = {ten[1]:g}; {_fmt(ten[3])})" if ten else "not reached"
        hundred_text = (f"{_fmt(hundred[0], True)} (τ = {hundred[1]:g}; {_fmt(hundred[2])}; {_fmt(hundred[3])})"
                        if hundred else "not reached")  # fmt: skip
        lines.append(f"| {m} | {rule} | {_fmt(none)} | {best_text} | {ten_text} | {hundred_text} |")
    return "\n".join(lines)


def m7_table(rows: list[dict[str, str]], m: str = "7") -> str:
    base, cells = _pairs(rows, "paper")
    lines = [f"No LAMP at m = {m}: KL {_fmt(base.get(m))}.", "",
             "| rule | τ | rate | LAMP KL | random KL | flip rate LAMP | flip rate random |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    chosen = [(key, pair) for key, pair in cells.items() if key[0] == m and "lamp" in pair]
    chosen.sort(key=lambda item: (item[0][2], float(item[1]["lamp"]["recompute_rate"])))
    for (_, _, rule, tau), pair in chosen:
        lamp, random = pair["lamp"], pair.get("random")
        lines.append(f"| {rule} | {tau:g} | {_fmt(float(lamp['recompute_rate']), True)} | {_fmt(float(lamp['kl']))} | "
                     f"{_fmt(float(random['kl'])) if random else '—'} | {_fmt(float(lamp['flip_rate']), True)} | "
                     f"{_fmt(float(random['flip_rate']), True) if random else '—'} |")  # fmt: skip
    return "\n".join(lines)


def beyond_table(rows: list[dict[str, str]]) -> str:
    lines = ["| precision | m | site | rule | τ | rate | LAMP KL | random KL | no LAMP KL |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for precision in sorted({row["precision"] for row in rows}):
        base, cells = _pairs(rows, precision)
        for (m, site, rule, tau), pair in sorted(cells.items(), key=lambda item: (item[0][0], item[0][1], item[0][2],
                                                                                   item[0][3] or 0)):  # fmt: skip
            if "lamp" not in pair:
                continue
            lamp, random = pair["lamp"], pair.get("random")
            lines.append(f"| {precision} | {m or '—'} | {site} | {rule} | {tau:g} | "
                         f"{_fmt(float(lamp['recompute_rate']), True)} | {_fmt(float(lamp['kl']))} | "
                         f"{_fmt(float(random['kl'])) if random else '—'} | {_fmt(base.get(m))} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    paper = _load(argv[0])
    print("### Table 1\n\n" + claim_table(paper) + "\n\n### Table 2\n\n" + m7_table(paper))
    if len(argv) > 1:
        print("\n### Table 3\n\n" + beyond_table(_load(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
