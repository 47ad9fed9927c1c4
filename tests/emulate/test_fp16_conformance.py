"""Conformance of single fp16 operations in every mode against the independent table oracle (fp16_oracle.py).

The operands are fp16 values, structured: every pair of exponent classes (the 30 normal binades and the
subnormals) with significands that make ties, carries and cancellations; products aimed at ties; fma addends
aimed at the product (cancellation, ties, sticky tails); overflow and underflow; signed zeros, infinities and
NaN in all combinations. sqrt is checked on every fp16 code. The tests also count that the set contains what
it claims to.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from lampnum.emulate import elementwise as ew
from lampnum.rounding.api import stochastic_key
from lampnum.rounding.modes import as_mode
from lampnum.rounding.reference import random_bits_reference

from . import fp16_oracle
from .helpers import MODES, same

SEED = 2024
CLASSES = ["subnormal"] + list(range(-14, 16))
SPECIALS = [
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    1.0,
    -1.0,
    2.0**-24,
    -(2.0**-24),
    65504.0,
    -65504.0,
    2.0**-14,
]


def class_values(cls: int | str, rng: np.random.Generator) -> list[float]:
    """Positive fp16 values of one exponent class: the binade's ends, its first odd significand, 1.5, a random
    odd."""
    if cls == "subnormal":
        significands = [1, 3, 512, 1023, int(rng.integers(1, 512)) * 2 + 1]
        return [math.ldexp(s, -24) for s in significands]
    significands = [1024, 1025, 1536, 2047, 1024 + 2 * int(rng.integers(0, 512)) + 1]
    return [math.ldexp(s, cls - 10) for s in significands]


def tie_product_pairs() -> list[tuple[int, int]]:
    """Significand pairs (in [1024, 2047]) whose product is a 12-bit odd number times a power of two: a
    tie."""
    pairs = []
    for odd in range(2049, 4096, 2):
        for factor in range(3, math.isqrt(odd) + 1, 2):
            if odd % factor == 0:
                u, v = factor, odd // factor
                while u < 1024:
                    u *= 2
                while v < 1024:
                    v *= 2
                if u < 2048 and v < 2048:
                    pairs.append((u, v))
                    break
        if len(pairs) >= 40:
            break
    return pairs


def fp16(x: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.float16(x))  # only used to build operands: any nearby fp16 value (or inf) will do


def build_rows(name: str) -> list[tuple[float, ...]]:
    rng = np.random.default_rng(hash(name) % 2**32)
    values = {cls: class_values(cls, rng) for cls in CLASSES}
    rows: list[tuple[float, ...]] = []
    ties = tie_product_pairs()
    signs = [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    for k, (class_a, class_b) in enumerate(itertools.product(CLASSES, CLASSES)):
        picks = [(0, 0), (1, 2), (3, 3), (4, 1), (2, 4)] if name != "fma" else [(1, 2), (4, 4)]
        for j, (i, m) in enumerate(picks):
            sa, sb = signs[(k + j) % 4]
            a, b = sa * values[class_a][i], sb * values[class_b][m]
            if name != "fma":
                rows.append((a, b))
                continue
            product = a * b  # exact in float64
            exponent = math.frexp(product)[1] - 1
            kept = math.floor(math.ldexp(abs(product), 10 - exponent))  # the product's top 11 bits
            truncated = math.copysign(math.ldexp(kept, exponent - 10), product)
            near = math.ldexp(float(rng.integers(1024, 2048)), exponent - 11 - 10 - int(rng.integers(0, 3)))
            other = values[CLASSES[int(rng.integers(len(CLASSES)))]][int(rng.integers(5))]
            for c in (-fp16(truncated), fp16(near) * sb, -other * sa):
                if math.isfinite(c):
                    rows.append((a, b, c))
        if name == "mul":
            u, v = ties[k % len(ties)]
            exponent_a = -14 if class_a == "subnormal" else class_a
            exponent_b = -14 if class_b == "subnormal" else class_b
            rows.append((math.ldexp(u, exponent_a - 10), -math.ldexp(v, exponent_b - 10)))
    arity = {"add": 2, "sub": 2, "mul": 2, "div": 2, "fma": 3}[name]
    rows += list(itertools.product(SPECIALS, repeat=arity))
    if name in ("add", "sub"):
        sign = 1 if name == "add" else -1
        rows += [(65504.0, sign * d) for d in (8.0, 16.0, 24.0, 32.0)]  # ties and overflow at the top
        rows += [(-65504.0, -sign * 16.0), (1.0, sign * 2.0**-11), (1.0, -sign * 2.0**-12)]
    assert all(fp16(v) == v or math.isnan(v) for row in rows for v in row)
    return rows


def kernel_results(name: str, rows: list[tuple[float, ...]], mode: str) -> np.ndarray:
    columns = [np.array(column) for column in zip(*rows, strict=True)]
    operation = {"add": ew.add, "sub": ew.sub, "mul": ew.mul, "div": ew.div, "sqrt": ew.sqrt, "fma": ew.fma}[
        name
    ]
    return operation(*columns, "fp16", mode, rng=SEED)


def check(name: str, rows: list[tuple[float, ...]]) -> dict[str, int]:
    """Compare every mode with the oracle; return counts of the delicate cases the rows contain."""
    results = {mode: kernel_results(name, rows, mode) for mode in MODES}
    key = stochastic_key(as_mode("sr"), np.random.default_rng(SEED))  # the same key for sr and sr_eq
    counts = {"tie": 0, "overflow": 0, "underflow": 0, "exact_zero": 0, "inexact": 0}
    failures = []
    for index, row in enumerate(rows):
        expected = fp16_oracle.oracle(name, row, MODES, random_bits_reference(key, index))
        for mode in MODES:
            if not same(results[mode][index], expected[mode]):
                failures.append((mode, row, float(results[mode][index]), expected[mode]))
        count_cases(name, row, counts)
    assert not failures, f"{len(failures)} mismatches, e.g. {failures[:5]}"
    return counts


def count_cases(name: str, row: tuple[float, ...], counts: dict[str, int]) -> None:
    if (
        not all(math.isfinite(v) for v in row)
        or (name == "div" and row[1] == 0)
        or (name == "sqrt" and row[0] < 0)
    ):
        return
    exact = fp16_oracle.exact_value(name, row)
    if isinstance(exact, Fraction):
        if exact == 0:
            counts["exact_zero"] += 1 - (row[0] == 0 or name != "add" and name != "sub" and name != "fma")
            return
        exact = fp16_oracle.Rational(abs(exact) * fp16_oracle.UNIT)
    elif exact.x == 0:
        return
    where = fp16_oracle.locate(exact)
    if where is None or exact.compare(fp16_oracle.MAX_UNITS) > 0:
        counts["overflow"] += 1
        return
    if exact.compare(2**-14 * fp16_oracle.UNIT) < 0:
        counts["underflow"] += 1
    if where[0] != where[1]:
        counts["inexact"] += 1
        if exact.compare_double(fp16_oracle.TABLE[where[0]] + fp16_oracle.TABLE[where[1]]) == 0:
            counts["tie"] += 1


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "fma"])
def test_fp16_structured_set_in_every_mode(name: str) -> None:
    rows = build_rows(name)
    counts = check(name, rows)
    assert counts["overflow"] > 0 and counts["underflow"] > 0 and counts["inexact"] > 100, counts
    if name != "div":  # a quotient of fp16 numbers is never a midpoint in the normal range
        assert counts["tie"] >= 20, counts
    if name in ("add", "sub", "fma"):
        assert counts["exact_zero"] > 0, counts


def test_fp16_sqrt_of_every_code_in_every_mode() -> None:
    codes = np.arange(1 << 16, dtype=np.uint16)
    operands = codes.view(np.float16).astype(np.float64)
    rows = [(float(v),) for v in operands]
    counts = check("sqrt", rows)
    assert counts["inexact"] > 30000 and counts["underflow"] == 0, counts


def test_round_to_nearest_agrees_with_numpy_float16() -> None:
    """A third implementation for rne: numpy's float16 arithmetic (computed in float32, then rounded;
    innocuous double rounding since 24 >= 2·11 + 2)."""
    for name, numpy_op in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", np.divide)]:
        rows = build_rows(name)
        a, b = (np.array(column, dtype=np.float16) for column in zip(*rows, strict=True))
        with np.errstate(all="ignore"):
            expected = numpy_op(a, b).astype(np.float64)
        result = kernel_results(name, rows, "rne")
        assert all(same(x, y) for x, y in zip(result, expected, strict=True)), name
