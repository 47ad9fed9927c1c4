"""The sweep runner: grids, resumability, full configuration in every row, CSV/JSON round trip, the random
ablation's count, Dask execution, and the ``lampnum sweep`` command's errors.

Everything runs the shipped model on 2 sequences of 16 tokens (a forward pass takes milliseconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lampnum.cli import main
from lampnum.experiments import results
from lampnum.experiments.datasets import Dataset, parse_dataset
from lampnum.experiments.grid import Cell, expand
from lampnum.experiments.runner import run_grid

DATA = Dataset("shipped", 2, 16)
LABEL = DATA.label()
_VOLATILE = ("seconds", "lamp_seconds")  # timings differ between runs


def _cells() -> list[Cell]:
    return expand([LABEL], m_bits=[4], rules=["strict"], taus={"strict": [0.1, 1.0]})


def _stable(row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k not in _VOLATILE}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sweep")


@pytest.fixture(scope="module")
def rows(folder: Path) -> list[dict[str, object]]:
    return run_grid(_cells(), {LABEL: DATA}, folder, progress=False)


def test_expand_is_the_product_with_one_baseline_per_precision() -> None:
    cells = expand(["a", "b"], m_bits=[4, 7, 10], rules=["strict", "mass"], taus={"strict": [1.0], "mass": [1.5, 1.1]})
    assert len(cells) == 2 * 3 * (1 + (1 + 2) * 2)
    assert len({c.key() for c in cells}) == len(cells)
    assert sum(c.lamp_site is None for c in cells) == 6
    with pytest.raises(ValueError, match="no tau"):
        expand(["a"], rules=["strict"], m_bits=[4])
    with pytest.raises(ValueError, match="m_bits"):
        Cell("a", precision="fp16", m_bits=4)


def test_keys_are_stable_and_follow_the_configuration() -> None:
    a = Cell("d", m_bits=7, lamp_site="score", rule="strict", tau=0.5)
    assert a.key() == Cell("d", m_bits=7, lamp_site="score", rule="strict", tau=0.5).key()
    assert a.key() != Cell("d", m_bits=7, lamp_site="score", rule="strict", tau=0.5, ablation="random").key()
    assert a.key() != Cell("d", m_bits=8, lamp_site="score", rule="strict", tau=0.5).key()


def test_rows_carry_the_full_configuration(rows: list[dict[str, object]]) -> None:
    cells = _cells()
    assert [r["key"] for r in rows] == [c.key() for c in cells]
    for row, cell in zip(rows, cells):
        assert Cell.from_dict(row) == cell
        assert (row["dataset_path"], row["n_seq"], row["n_tokens"], row["shuffle_seed"]) == ("shipped", 2, 16, None)
        assert row["policy"] == cell.policy().name
        assert set(results.COLUMNS) <= set(row)
    base = rows[0]
    assert base["lamp_site"] is None and base["recompute_rate"] == 0.0 and base["kl"] > 0
    lamp = [r for r in rows if r["lamp_site"] == "score" and r["ablation"] is None]
    assert all(float(r["kl"]) < float(base["kl"]) for r in lamp)  # m = 4 is bad enough that LAMP helps


def test_the_random_ablation_recomputes_as_many_components(rows: list[dict[str, object]]) -> None:
    by_tau: dict[object, dict[object, dict[str, object]]] = {}
    for r in rows[1:]:
        by_tau.setdefault(r["tau"], {})[r["ablation"]] = r
    for pair in by_tau.values():
        lamp, rand = pair[None], pair["random"]
        # layer 0 sees the same inputs, so the same count per row; later layers' inputs differ slightly
        assert lamp["layer_rates"]["0/score"] == rand["layer_rates"]["0/score"] > 0  # type: ignore[index]
        assert float(rand["recompute_rate"]) == pytest.approx(float(lamp["recompute_rate"]), rel=0.05)


def test_resume_skips_finished_cells_and_keeps_their_results(folder: Path, rows: list[dict[str, object]]) -> None:
    ran: list[object] = []
    again = run_grid(_cells(), {LABEL: DATA}, folder, progress=False, on_row=lambda r: ran.append(r["key"]))
    assert ran == [] and again == rows
    extra = Cell(LABEL, m_bits=4, lamp_site="score", rule="strict", tau=3.0)
    more = run_grid([*_cells(), extra], {LABEL: DATA}, folder, progress=False, on_row=lambda r: ran.append(r["key"]))
    assert ran == [extra.key()] and more[:-1] == rows
    # a torn last line (a kill while writing) is skipped, the cell is run again
    log = folder / results.LOG
    log.write_text(log.read_text() + '{"key": "trunc', encoding="utf-8")
    assert set(results.read_log(folder)) == {c.key() for c in [*_cells(), extra]}


def test_reference_is_computed_once_and_cached(folder: Path, rows: list[dict[str, object]]) -> None:
    (ref,) = folder.glob("reference-*.npy")
    logits = np.load(ref)
    assert logits.dtype == np.float64 and logits.shape == (2, 16, 8192)


def test_csv_and_json_round_trip(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    results.write_csv(tmp_path / "r.csv", rows)
    results.write_json(tmp_path / "r.json", rows)
    assert results.read_csv(tmp_path / "r.csv") == [{c: r.get(c) for c in results.COLUMNS} for r in rows]
    assert results.read_json(tmp_path / "r.json") == [{c: r.get(c) for c in results.COLUMNS} for r in rows]
    json.loads((tmp_path / "r.json").read_text())  # strict JSON


def test_shuffled_tokens_are_a_seeded_permutation_of_each_sequence() -> None:
    plain, shuffled = DATA.ids(), Dataset("shipped", 2, 16, shuffle_seed=1).ids()
    assert not np.array_equal(plain, shuffled)
    np.testing.assert_array_equal(np.sort(plain, axis=1), np.sort(shuffled, axis=1))
    np.testing.assert_array_equal(shuffled, Dataset("shipped", 2, 16, shuffle_seed=1).ids())
    assert parse_dataset("shipped:3") == Dataset("shipped", 3, 512)


def test_token_and_text_files(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", np.arange(100, dtype=np.uint16))
    assert Dataset(str(tmp_path / "t.npy"), 3, 30).ids().tolist()[2][:2] == [60, 61]
    with pytest.raises(ValueError, match="fewer than"):
        Dataset(str(tmp_path / "t.npy"), 4, 30).ids()
    (tmp_path / "t.txt").write_text("The cat sat on the mat. " * 20, encoding="utf-8")
    assert Dataset(str(tmp_path / "t.txt"), 2, 8).ids().shape == (2, 8)


def test_dask_local_cluster_gives_the_same_rows(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
        scheduler_port=0, dashboard_address=None,
    ) as cluster:
        got = run_grid(_cells(), {LABEL: DATA}, tmp_path, scheduler=cluster.scheduler_address, progress=False)
    assert [_stable(r) for r in got] == [_stable(r) for r in rows]


def test_cli_runs_resumes_and_draws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sweep", "--out", str(tmp_path), "--dataset", "shipped:2:16", "--m", "4", "--tau", "strict=1",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "3 cells" in capsys.readouterr().out
    first = results.read_json(tmp_path / results.JSON)
    assert main(args) == 0
    assert [_stable(r) for r in results.read_json(tmp_path / results.JSON)] == [_stable(r) for r in first]
    pytest.importorskip("matplotlib")
    assert main(["sweep", "--out", str(tmp_path), "--figures-only"]) == 0
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == [
        "flip_vs_rate_score.png", "kl_vs_m_strict_score.png", "kl_vs_rate_score.png", "layer_rates_score.png",
    ]  # fmt: skip


def _exit_status(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse errors
        return int(e.code or 0)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--m", "30"], "m must lie in 1..23"),
        (["--tau", "strict"], "expected RULE=V1,V2"),
        (["--rules", "nonsense", "--tau", "nonsense=1"], "unknown LAMP rule"),
        (["--dataset", "no/such/file.npy"], "no token or text file"),
        (["--dataset", "shipped:100:16"], "fewer than"),
        (["--precision", "fp16", "--m", "4"], "m_bits"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert _exit_status(["sweep", "--out", str(tmp_path), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
