"""A table of lampnum's floating-point formats: precision, exponent range, largest/smallest numbers, unit roundoff.

    python examples/formats_table.py              # a plain-text table
    python examples/formats_table.py --markdown   # the same as a Markdown table
"""

from __future__ import annotations

import argparse

import lampnum as ln
from lampnum.formats import FORMATS

COLUMNS = ("name", "p", "emin", "emax", "bits", "specials", "max", "tiny", "smallest", "unit roundoff")


def rows() -> list[tuple[str, ...]]:
    """One row of strings per catalogue format."""
    out = []
    for name, fmt in FORMATS.items():
        fmt = ln.format(name)
        out.append((name, str(fmt.p), str(fmt.emin), str(fmt.emax), str(fmt.bits or "-"), fmt.specials,
                    f"{fmt.max:.5g}", f"{fmt.tiny:.4g}", f"{fmt.smallest_subnormal:.4g}",
                    f"{fmt.unit_roundoff:.3g}"))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    table = rows()
    if args.markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for row in table:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for row in table:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
