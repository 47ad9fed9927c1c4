"""Timing helpers for the benchmarks: warm-up first, then interleaved repetitions, reporting medians."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["interleaved_medians", "interleaved_samples", "time_once", "print_table", "write_json"]


def time_once(function: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def interleaved_samples(contenders: dict[str, Callable[[], Any]], repeats: int,
                        pause: float = 0.0) -> dict[str, list[float]]:  # fmt: skip
    """Seconds of every call per contender over ``repeats`` rounds; each round runs every contender once, in turn,
    so that the machine's drifting load falls on all of them alike. Call each contender once beforehand to warm up.
    ``pause`` seconds of sleep before each timed call let the previous contender's worker threads (BLAS, OpenMP,
    Numba) stop spinning, which otherwise slows the next contender on a small machine."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, function in contenders.items():
            time.sleep(pause)
            samples[name].append(time_once(function))
    return samples


def interleaved_medians(contenders: dict[str, Callable[[], Any]], repeats: int,
                        pause: float = 0.0) -> dict[str, float]:  # fmt: skip
    """Median seconds per contender of :func:`interleaved_samples`."""
    samples = interleaved_samples(contenders, repeats, pause)
    return {name: statistics.median(values) for name, values in samples.items()}


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Print rows (dicts) as an aligned text table with the given columns."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.3e}"
        return str(value)

    cells = [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) if cells else len(column)
              for i, column in enumerate(columns)]  # fmt: skip
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths)))
    print("  ".join("-" * width for width in widths))
    for line in cells:
        print("  ".join(value.ljust(width) for value, width in zip(line, widths)))


def write_json(path: str, payload: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
