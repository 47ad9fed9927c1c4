"""The ``lampnum`` command: ``demo`` (the main job), ``formats``, ``round``, ``bench``, and the subcommands that the
other layers register (``gpt2``, ``bound``, ``sweep``) when they are installed.

Bad arguments print one line on standard error and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence

import numpy as np

from . import __version__
from .formats import FORMATS, as_format
from .rounding import encode
from .rounding import round as round_to_format
from .rounding.modes import RoundingMode

__all__ = ["main", "build_parser"]

# subcommand modules of other layers: each provides add_parser(subparsers) (imported lazily, skipped if absent)
_PLUGINS = ("lampnum.gpt2.cli", "lampnum.bounds.cli", "lampnum.experiments.cli", "lampnum.demo")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (try --help)\n")
        raise SystemExit(2)


def _format_table(_: argparse.Namespace) -> int:
    print(f"{'name':<10} {'p':>3} {'emin':>6} {'emax':>5} {'bits':>4} {'specials':<8} {'max':>12} "
          f"{'tiny':>11} {'smallest':>11} {'u':>10}")  # fmt: skip
    for name, fmt in FORMATS.items():
        print(f"{name:<10} {fmt.p:>3} {fmt.emin:>6} {fmt.emax:>5} {fmt.bits or '-':>4} {fmt.specials:<8} "
              f"{fmt.max:>12.5g} {fmt.tiny:>11.4g} {fmt.smallest_subnormal:>11.4g} {fmt.unit_roundoff:>10.3g}")
    return 0


def _round_command(args: argparse.Namespace) -> int:
    fmt = as_format(args.format)
    values = np.array(args.values, dtype=np.float64)
    modes = [mode.value for mode in RoundingMode] if args.mode == "all" else [args.mode]
    print(f"{'x':>24}  {'mode':<6} {str(fmt):>24}  code")
    for value in values.tolist():
        for mode in modes:
            rounded = round_to_format(np.array([value]), fmt, mode, rng=args.seed)
            code = ""
            if fmt.bits is not None and not (np.isnan(rounded[0]) and not fmt.has_nan):
                code = f"0x{int(encode(rounded, fmt)[0]):0{(fmt.bits + 3) // 4}x}"
            print(f"{value!r:>24}  {mode:<6} {float(rounded[0])!r:>24}  {code}")
    return 0


def _bench_command(args: argparse.Namespace) -> int:
    from .bench.__main__ import main as bench_main

    return bench_main([args.suite, *args.options])


def _available(module_name: str) -> bool:
    """Whether a layer's CLI module is part of this installation (a missing layer is skipped, a broken one raises)."""
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:  # its parent package is absent
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lampnum", description="Numerical analysis with emulated low precision, and LAMP.")
    parser.add_argument("--version", action="version", version=f"lampnum {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    formats = subparsers.add_parser("formats", help="the catalogue of formats and their numbers")
    formats.set_defaults(handler=_format_table)
    rounding = subparsers.add_parser("round", help="round numbers to a format and show the codes")
    rounding.add_argument("values", nargs="+", type=float, help="numbers to round (parsed as float64)")
    rounding.add_argument("--format", "-f", default="bf16", help="format name (see 'lampnum formats')")
    rounding.add_argument("--mode", "-m", default="rne", choices=[m.value for m in RoundingMode] + ["all"],
                          help="rounding mode, or 'all'")  # fmt: skip
    rounding.add_argument("--seed", type=int, default=0, help="seed for the stochastic modes")
    rounding.set_defaults(handler=_round_command)
    bench = subparsers.add_parser("bench", help="benchmarks: ratios against peers and BLAS in one run")
    bench.add_argument("suite", choices=["rounding", "matmul", "lamp", "gpt2"], help="which benchmark")
    bench.add_argument("options", nargs=argparse.REMAINDER, help="options of the suite (see SUITE --help)")
    bench.set_defaults(handler=_bench_command)
    for module_name in _PLUGINS:
        if _available(module_name):
            importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except (ValueError, TypeError, FileNotFoundError) as error:
        sys.stderr.write(f"lampnum {args.command}: error: {error}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
