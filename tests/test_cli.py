"""The lampnum command: the demo runs, subcommands answer, bad arguments exit with status 2 and one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lampnum.cli import main


def _status(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def test_formats_and_round(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats"]) == 0
    assert "e4m3" in capsys.readouterr().out
    assert main(["round", "0.1", "--format", "e4m3", "--mode", "all"]) == 0
    out = capsys.readouterr().out
    assert "0.1015625" in out and "0x1d" in out and "sr_eq" in out


@pytest.mark.parametrize(
    ("argv", "options"),
    [
        ([], ["demo", "round", "bound", "gpt2", "bench", "formats"]),
        (["demo"], ["--model", "--policy", "--tau", "--prompt", "--output", "--new-tokens"]),
        (["round"], ["--format", "--mode", "--seed"]),
        (["bound"], ["--accumulator", "--input", "--block", "--prob", "--dist", "--a", "--b", "--order"]),
        (["gpt2"], ["eval", "generate", "export"]),
        (["gpt2", "eval"], ["--model", "--tokens", "--policy", "--ctx", "--windows", "--json"]),
        (["gpt2", "generate"], ["--model", "--prompt", "--policy", "--temperature", "--top-k"]),
        (["gpt2", "export"], ["MODEL_ID_OR_DIR", "--dtype"]),
        (["bench"], ["rounding", "matmul", "lamp", "gpt2"]),
        (["formats"], ["--help"]),
    ],
)
def test_help_explains_options(argv: list[str], options: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _status([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert all(option in out for option in options), out


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["round", "x"],
        ["round", "1.0", "--mode", "nearest"],
        ["round", "1.0", "--format", "fp7"],
        ["demo", "--tau", "x"],
        ["demo", "--tau", "-1", "--prompt", "x", "-n", "1", "--no-progress"],
        ["demo", "--policy", "nope", "--no-progress"],
        ["bound", "cube"],
        ["bound", "dot", "--prob", "2"],
        ["bound", "dot", "--accumulator", "fp7", "-n", "8"],
        ["bound", "matmul", "-n", "0"],
        ["gpt2", "eval"],
        ["gpt2", "generate", "--prompt", "x", "--policy", "paper:x"],
        [],
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _status(argv) == 2
    err = capsys.readouterr().err
    assert argv == [] or len(err.strip().splitlines()) == 1, err


def test_demo_runs_and_writes_its_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figure = tmp_path / "figures" / "demo.png"
    argv = ["demo", "--prompt", "def mean(xs):\n    return", "-n", "2", "--tau", "0.5", "--output", str(figure)]
    assert main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out
    for text in ("KL (nats)", "flip rate", "recompute", "fp64 (reference)", "paper(m=7)", "LAMP tau=0.5", str(figure)):
        assert text in out
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv", [["dot", "-n", "64"], ["sum", "-n", "64", "--dist", "positive"],
                                  ["matmul", "-n", "32", "-m", "3", "-p", "2", "--block", "8", "--input", "bf16"]])
def test_bound_holds_and_is_reported(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bound", *argv]) == 0
    out = capsys.readouterr().out
    assert "deterministic bound" in out and "probabilistic" in out and "the bound holds" in out


def test_bound_reads_given_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    np.save(tmp_path / "x.npy", np.ones(300, dtype=np.float32))
    assert main(["bound", "sum", "--a", str(tmp_path / "x.npy"), "--accumulator", "bf16"]) == 0
    assert "sum of n=300" in capsys.readouterr().out
