"""The LAMP benchmark runs end to end on a tiny instance and reports every rule (no timing is asserted)."""

from __future__ import annotations

import json

from lampnum.bench import lamp as bench


def test_bench_lamp_small_instance(tmp_path, capsys):
    path = tmp_path / "lamp.json"
    args = ["--heads", "1", "--tokens", "48", "--dim", "16", "--repeats", "1", "--rate", "0.05"]
    assert bench.main([*args, "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert [row["rule"] for row in result["rows"]] == list(bench.RULES)
    for row in result["rows"]:
        assert 0.0 < row["rate"] <= 0.2  # calibrated near 5% of the 1176 causal entries
        assert row["select ms"] > 0 and row["recompute ms"] > 0
        assert row["error LAMP"] <= row["error low"]
    assert "fraction of reference" in capsys.readouterr().out
