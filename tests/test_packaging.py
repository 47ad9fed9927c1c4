"""A built wheel carries the shipped GPT-2 and its data files (package data is easy to lose in packaging)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["config.json", "model.safetensors", "tokenizer.json", "eval_tokens.npy", "MODEL_CARD.md", "metrics.json"]


@pytest.mark.slow
def test_wheel_contains_the_shipped_model(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("lampnum-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED:
        assert f"lampnum/gpt2/data/{name}" in names
    assert "lampnum/rounding/kernels.py" in names
    assert not any("__pycache__" in name or name.endswith((".nbi", ".nbc")) for name in names)
