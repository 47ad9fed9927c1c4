"""``python -m lampnum.bench {rounding,matmul,lamp,gpt2} [options]``."""

from __future__ import annotations

import importlib
import sys

SUITES = ("rounding", "matmul", "lamp", "gpt2")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUITES:
        print(f"usage: lampnum bench {{{','.join(SUITES)}}} [options]  (--help after a suite lists its options)",
              file=sys.stderr)  # fmt: skip
        return 2
    module = importlib.import_module(f"lampnum.bench.{argv[0]}")
    return int(module.main(argv[1:]))


if __name__ == "__main__":
    raise SystemExit(main())
