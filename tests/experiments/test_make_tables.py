"""papers/lamp/make_tables.py: the README's tables from a sweep's rows, on a hand-made CSV whose gains are known."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "papers" / "lamp" / "make_tables.py"
_FIELDS = ["precision", "m_bits", "lamp_site", "rule", "tau", "ablation", "kl", "flip_rate", "recompute_rate"]


@pytest.fixture(scope="module")
def make_tables():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_tables", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(rule: str, tau: str, ablation: str, kl: float, rate: float) -> dict[str, str]:
    site = "" if rule == "none" else "score"
    return dict(zip(_FIELDS, ["paper", "7", site, rule, tau, ablation, str(kl), "0.1", str(rate)], strict=True))


def test_claim_table_finds_the_gains(make_tables, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [
        _row("none", "", "", 1.0, 0.0),
        _row("strict", "1", "", 0.5, 0.02),  # 2x at 2 %: the best at <= 3 %
        _row("strict", "1", "random", 0.9, 0.02),
        _row("strict", "0.1", "", 0.05, 0.06),  # 20x at 6 %: the first >= 10x
        _row("strict", "0.1", "random", 0.4, 0.06),
        _row("strict", "0.01", "", 0.004, 0.15),  # 250x at 15 %: the first >= 100x
        _row("strict", "0.01", "random", 0.2, 0.15),
    ]
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    table = make_tables.claim_table(make_tables._load(str(path)))
    line = next(text for text in table.splitlines() if text.startswith("| 7 | strict"))
    assert "2× (τ = 1, 2.0 %)" in line
    assert "6.0 % (τ = 0.1; 0.4)" in line
    assert "15.0 % (τ = 0.01; 0.004; 0.2)" in line
    detail = make_tables.m7_table(make_tables._load(str(path)))
    assert "| strict | 0.01 | 15.0 % | 0.004 | 0.2 |" in detail
