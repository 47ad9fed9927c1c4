"""``lampnum bench rounding``: lampnum's rounding against ml_dtypes, numpy float16, gfloat and pychop.

Data: n float64 values ``normal · e^U(-20, 20)`` with 1% of them scaled into each format's subnormal range (float32
copies for the float32 rows). Each contender is warmed up (Numba's compile time is reported apart), then run in
interleaved rounds; the table gives median elements per second and lampnum's speed-up over each peer (> 1: lampnum
faster). Peers that are slow run on a 10^6-element prefix, which changes throughput little and keeps the run short.
Correctness notes: ml_dtypes rounds float64 through float32 (double rounding); pychop and gfloat are reference-style
numpy code.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..formats import Format, as_format
from ..rounding import round as round_to_format
from .timing import interleaved_medians, print_table, write_json

__all__ = ["main", "run"]

_ML_DTYPES = {"bf16": "bfloat16", "e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2"}
_GFLOAT = {"bf16": "format_info_bfloat16", "fp16": "format_info_binary16", "e4m3": "format_info_ocp_e4m3",
           "e5m2": "format_info_ocp_e5m2"}  # fmt: skip
DEFAULT_FORMATS = ("bf16", "fp16", "e4m3", "e5m2", "p5")


def _format(name: str) -> Format:
    return Format(p=5, emax=15, name="p5") if name == "p5" else as_format(name)


def make_data(n: int, fmt: Format, rng: np.random.Generator) -> np.ndarray:
    """Wide-range test data with 1% of the values in the format's subnormal range."""
    x = rng.standard_normal(n) * np.exp(rng.uniform(-20, 20, n))
    tiny = max(fmt.tiny, np.finfo(np.float32).tiny * 2**24)
    x[: n // 100] = rng.uniform(-1, 1, n // 100) * tiny
    return rng.permutation(x)


def _peers(name: str, fmt: Format, mode: str, x: np.ndarray, small: np.ndarray) -> dict[str, tuple[Callable, int]]:
    """Peer contenders as (function, number of elements it processes)."""
    peers: dict[str, tuple[Callable, int]] = {}
    try:
        import ml_dtypes

        if mode == "rne" and name in _ML_DTYPES:
            dtype = getattr(ml_dtypes, _ML_DTYPES[name])
            peers["ml_dtypes astype"] = (lambda: x.astype(dtype).astype(x.dtype), x.size)
    except ImportError:
        pass
    if mode == "rne" and name == "fp16":
        def numpy_float16() -> np.ndarray:
            with np.errstate(over="ignore"):  # values beyond 65504 become inf, as they should
                return x.astype(np.float16).astype(x.dtype)

        peers["numpy float16"] = (numpy_float16, x.size)
    try:
        import gfloat
        import gfloat.formats

        if name in _GFLOAT:
            info = getattr(gfloat.formats, _GFLOAT[name])
            if mode == "rne":
                peers["gfloat round_ndarray"] = (lambda: gfloat.round_ndarray(info, small), small.size)
            else:
                bits = np.random.default_rng(0).integers(0, 2**32, small.size, dtype=np.uint64)
                peers["gfloat round_ndarray"] = (
                    lambda: gfloat.round_ndarray(info, small, gfloat.RoundMode.Stochastic, srbits=bits,
                                                 srnumbits=32), small.size)  # fmt: skip
    except (ImportError, AttributeError):
        pass
    try:
        from pychop import Chop

        chop = Chop(exp_bits=fmt.exponent_bits or 5, sig_bits=fmt.p - 1, rmode=1 if mode == "rne" else 5)
        peers["pychop Chop"] = (lambda: chop(small), small.size)
    except Exception:  # noqa: BLE001 - a peer that cannot be set up is reported as absent
        pass
    return peers


def run(n: int = 10**7, formats: tuple[str, ...] = DEFAULT_FORMATS, modes: tuple[str, ...] = ("rne", "sr"),
        dtypes: tuple[str, ...] = ("float64",), repeats: int = 5, seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """Measure and return one row per (format, mode, dtype, contender)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for name in formats:
        fmt = _format(name)
        data64 = make_data(n, fmt, rng)
        for dtype in dtypes:
            x = data64.astype(dtype)
            small = x[: min(n, 10**6)]
            out = np.empty_like(x)
            for mode in modes:
                compile_start = time.perf_counter()
                round_to_format(x[:16], fmt, mode, rng=1)
                compile_seconds = time.perf_counter() - compile_start
                contenders = {"lampnum": lambda m=mode: round_to_format(x, fmt, m, rng=1, out=out)}
                sizes = {"lampnum": x.size}
                for peer, (function, size) in _peers(name, fmt, mode, x, small).items():
                    contenders[peer], sizes[peer] = function, size
                for function in contenders.values():
                    function()
                medians = interleaved_medians(contenders, repeats, pause=0.1)
                lampnum_rate = sizes["lampnum"] / medians["lampnum"]
                for contender, seconds in medians.items():
                    rate = sizes[contender] / seconds
                    rows.append({"format": name, "mode": mode, "dtype": dtype, "contender": contender,
                                 "elements": sizes[contender], "seconds": seconds, "Melem/s": rate / 1e6,
                                 "lampnum speed-up": lampnum_rate / rate,
                                 "compile s": compile_seconds if contender == "lampnum" else ""})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lampnum bench rounding", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10**7, help="number of values (default 10^7)")
    parser.add_argument("--formats", default=",".join(DEFAULT_FORMATS), help="comma-separated; p5 = Format(p=5, emax=15)")
    parser.add_argument("--modes", default="rne,sr", help="comma-separated rounding modes")
    parser.add_argument("--dtypes", default="float64", help="float64, float32 or both, comma-separated")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median reported)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    rows = run(args.n, tuple(args.formats.split(",")), tuple(args.modes.split(",")), tuple(args.dtypes.split(",")),
               args.repeats)  # fmt: skip
    print_table(rows, ["format", "mode", "dtype", "contender", "elements", "Melem/s", "lampnum speed-up", "compile s"])
    if args.json:
        write_json(args.json, rows)
    return 0
