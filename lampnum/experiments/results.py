"""Result rows of a sweep: appended as JSON lines while it runs (the resume log), written as CSV and JSON.

A row is a flat dict: every :class:`~lampnum.experiments.grid.Cell` field, the cell's ``key``, the dataset's
configuration (``dataset_path``, ``n_seq``, ``n_tokens``, ``shuffle_seed``), and the metrics
(:data:`METRICS`); ``layer_rates`` maps ``"<layer>/<site>"`` (layer ``-`` outside the blocks) to the
recompute rate there, a dict in JSON and a JSON string in CSV.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path

from lampnum.experiments.grid import CELL_FIELDS

__all__ = ["METRICS", "COLUMNS", "append_row", "read_log", "write_csv", "read_csv", "write_json", "read_json"]

LOG, CSV, JSON = "rows.jsonl", "results.csv", "results.json"
DATASET_FIELDS = ("dataset_path", "n_seq", "n_tokens", "shuffle_seed")
METRICS = (
    "policy", "kl", "flip_rate", "recompute_rate", "multiply_add_fraction", "seconds", "lamp_seconds",
    "layer_rates",
)  # fmt: skip
COLUMNS = ("key", *CELL_FIELDS, *DATASET_FIELDS, *METRICS)
_INTS = {"m_bits", "mu", "seed", "n_seq", "n_tokens", "shuffle_seed"}
_FLOATS = {"tau", "rate", "kl", "flip_rate", "recompute_rate", "multiply_add_fraction", "seconds", "lamp_seconds"}


def append_row(folder: Path, row: dict[str, object]) -> None:
    """Append ``row`` to the folder's log (one JSON line, flushed: a killed sweep loses no finished cell)."""
    with open(Path(folder) / LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
        f.flush()


def read_log(folder: Path) -> dict[str, dict[str, object]]:
    """The rows of the folder's log by key (the last row of a key wins; a torn last line is skipped)."""
    path = Path(folder) / LOG
    rows: dict[str, dict[str, object]] = {}
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line a kill interrupted
        rows[str(row["key"])] = row
    return rows


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return str(value)


def write_csv(path: Path, rows: Iterable[dict[str, object]]) -> None:
    """Rows as CSV with :data:`COLUMNS` (None as empty, floats by ``repr``, dicts as JSON)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for row in rows:
            w.writerow([_cell(row.get(c)) for c in COLUMNS])


def _parse(column: str, text: str) -> object:
    if text == "":
        return None
    if column == "low_sites":
        return [s for s in text.split(",") if s]
    if column == "layer_rates":
        return json.loads(text)
    if column in _INTS:
        return int(text)
    if column in _FLOATS:
        return float(text)
    return text


def read_csv(path: Path) -> list[dict[str, object]]:
    """The inverse of :func:`write_csv`."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{c: _parse(c, v) for c, v in row.items()} for row in csv.DictReader(f)]


def write_json(path: Path, rows: Iterable[dict[str, object]]) -> None:
    """Rows as a JSON list (NaN and inf written as strings, so the file is strict JSON)."""

    def clean(v: object) -> object:
        return repr(v) if isinstance(v, float) and not math.isfinite(v) else v

    data = [{c: clean(row.get(c)) for c in COLUMNS} for row in rows]
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def read_json(path: Path) -> list[dict[str, object]]:
    """The inverse of :func:`write_json`."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    for row in rows:
        for c in _FLOATS:
            if isinstance(row.get(c), str):
                row[c] = float(row[c])
    return rows
