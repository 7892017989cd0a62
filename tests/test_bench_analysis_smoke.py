"""Smoke test of the analysis benchmark: a tiny data set, ours against dipy, outputs checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_analysis_benchmark_runs_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    pytest.importorskip("trx.trx_file_memmap")
    monkeypatch.syspath_prepend(str(BENCH))
    for mod in ("bench_analysis", "generate", "_measure"):
        sys.modules.pop(mod, None)
    import bench_analysis

    results = tmp_path / "results"
    code = bench_analysis.main(["--scale", "0.0002", "--reps", "1", "--no-scilpy",
                                "--ops", "filter,density,profile", "--data-dir",
                                str(tmp_path / "data"), "--results", str(results)])
    assert code == 0
    report = json.loads((results / "analysis.json").read_text(encoding="utf-8"))
    checks = {row["op"]: row["check"] for row in report["rows"]}
    assert checks == {"filter": "same streamlines", "density": "same voxels as dipy",
                      "profile": "same values"}
    assert all(not row["errors"] and row["ours"]["peak_mb"] for row in report["rows"])
    assert "| density map (NIfTI) |" in (results / "analysis.md").read_text(encoding="utf-8")
