"""Each analysis script of ``examples/`` runs (quick mode) and writes its figure where told."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_formats_table(capsys: pytest.CaptureFixture[str]) -> None:
    _load("formats_table").main(["--markdown"])
    assert "| bf16 | 8 |" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["rounding_modes", "dot_error_vs_n"])
def test_figures(name: str, tmp_path: Path) -> None:
    path = _load(name).main(["--quick", "--output", str(tmp_path)])
    assert path.parent == tmp_path and path.read_bytes()[:4] == b"\x89PNG"


def test_dot_error_within_bounds() -> None:
    import lampnum as ln

    for _, observed, det, _prob in _load("dot_error_vs_n").measure([16, 256], ln.MatmulSpec(accumulator="bf16"), 0):
        assert observed <= det


def test_softmax_sensitivity_bounds_hold() -> None:
    for _t, _pmax, first_order, rigorous, observed, _share in _load("softmax_sensitivity").main(["--quick"]):
        assert observed <= rigorous and first_order <= rigorous


def test_lamp_attention_head_reduces_kl() -> None:
    rows = _load("lamp_attention_head").main([])
    kls = [kl for _tau, kl, _rate in rows]
    assert kls == sorted(kls, reverse=True) and rows[-1][2] < 1


def test_custom_composition_is_validated() -> None:
    assert _load("custom_composition").main(["--quick"]) > 0
