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
