"""The lampnum command: the demo runs, subcommands answer, bad arguments exit with status 2 and one line."""

from __future__ import annotations

import pytest

from lampnum.cli import main


def test_formats_and_round(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats"]) == 0
    assert "e4m3" in capsys.readouterr().out
    assert main(["round", "0.1", "--format", "e4m3", "--mode", "all"]) == 0
    out = capsys.readouterr().out
    assert "0.1015625" in out and "0x1d" in out and "sr_eq" in out


@pytest.mark.parametrize(
    "argv",
    [["bogus"], ["round", "x"], ["round", "1.0", "--mode", "nearest"], ["round", "1.0", "--format", "fp7"], []],
)
def test_bad_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err
    assert argv == [] or len(err.strip().splitlines()) == 1


def test_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-n", "512"]) == 0
    assert "bf16, strict" in capsys.readouterr().out
