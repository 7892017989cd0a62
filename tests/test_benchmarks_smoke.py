"""Smoke test of the benchmark suite: a tiny data set and one operation, checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench_run(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("trx.trx_file_memmap")
    monkeypatch.syspath_prepend(str(BENCH))
    for mod in ("run", "generate", "_ops", "_check", "_measure", "nipype_rows"):
        sys.modules.pop(mod, None)
    import run

    return run


def test_generator_and_one_operation_checked(bench_run, tmp_path: Path) -> None:
    results = tmp_path / "results"
    code = bench_run.main(["--scale", "0.0002", "--reps", "1", "--ops", "save_stored",
                           "--no-nipype", "--data-dir", str(tmp_path / "data"),
                           "--results", str(results)])
    assert code == 0
    report = json.loads((results / "results.json").read_text(encoding="utf-8"))
    assert report["dataset"]["nb_streamlines"] == 200
    (row,) = report["rows"]
    assert row["op"] == "save_stored" and not row["errors"]
    assert row["check"]["ours"]["ok"] and row["check"]["other"]["ok"]
    assert row["check"]["same_digest"]
    assert "| save stored |" in (results / "results.md").read_text(encoding="utf-8")


def test_report_benchmark_runs_both_sides_and_checks_the_page(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    pytest.importorskip("trx.trx_file_memmap")
    monkeypatch.syspath_prepend(str(BENCH))
    for mod in ("bench_report", "generate", "_measure"):
        sys.modules.pop(mod, None)
    import bench_report

    results = tmp_path / "results"
    assert bench_report.main(["--scale", "0.0002", "--reps", "1", "--data-dir",
                              str(tmp_path / "data"), "--results", str(results)]) == 0
    report = json.loads((results / "report.json").read_text(encoding="utf-8"))
    assert report["ok"] == {"time": True, "memory": True, "check": True}
    assert len(report["runs"]["ours"]) == len(report["runs"]["other"]) == 1
    assert "| trx-nipype report |" in (results / "report.md").read_text(encoding="utf-8")


def test_batch_suite_at_a_tiny_scale(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the batch benchmark end to end, 2 subjects x 2 bundles (no timing is asserted)
    monkeypatch.syspath_prepend(str(BENCH))
    sys.modules.pop("batch", None)
    import batch

    results = tmp_path / "results"
    code = batch.main(["--subjects", "2", "--bundles", "2", "--streamlines", "20", "--reps",
                       "1", "--data-dir", str(tmp_path / "data"), "--results", str(results)])
    assert code == 0
    (report,) = json.loads((results / "batch.json").read_text(encoding="utf-8"))
    assert {r["side"] for r in report["rows"]} == {"floor", "linear", "multiproc",
                                                   "multiproc_cached", "multiproc_cached_nipype",
                                                   "linear_report", "multiproc_report"}
    assert all(r["code"] == 0 for r in report["rows"])
    assert report["checks"] == {"outputs": 4, "linear_equals_multiproc": True,
                                "report_runs_equal": True, "floor_equals_linear": True}
    sides = report["sides"]
    assert sides["multiproc"]["node_results"] == 2 * 2 + 2 * 2 + 2
    assert sides["multiproc_cached"]["nodes_run"] == 0
    assert sides["multiproc_cached_nipype"]["nodes_run"] == 0
    assert "| `trx-nipype run --no-report --plugin Linear` |" in (results / "batch.md").read_text(
        encoding="utf-8")
