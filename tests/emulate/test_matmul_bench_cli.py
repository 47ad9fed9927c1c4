"""``lampnum bench matmul``'s choice of shapes and specs: short shape names as the help offers them, full names,
and a clear error (not a KeyError traceback) for anything else."""

from __future__ import annotations

import pytest

from lampnum.bench import matmul as bench


def test_short_and_full_shape_names_resolve():
    assert bench.resolve("qkv,heads 12x512x64@12x64x512", bench.SHAPES, "shape") == [
        "qkv 512x768@768x2304", "heads 12x512x64@12x64x512"]  # fmt: skip
    assert bench.resolve("bf16 block=32", bench.SPECS, "spec") == ["bf16 block=32"]


@pytest.mark.parametrize(("option", "value"), [("--shapes", "qkv,bogus"), ("--specs", "bf16")])
def test_unknown_names_exit_with_the_choices(option, value, capsys):
    with pytest.raises(SystemExit) as raised:
        bench.main([option, value])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "unknown" in error and "choose from" in error
