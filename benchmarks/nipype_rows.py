"""The Nipype rows of the benchmark: hashing cost of TRX inputs, cached pipeline rerun.

- Hashing: ``bench_hashing.py`` (in a child process) times what a cached rerun
  spends hashing TRX inputs (2 GB at full scale, half directories, half
  stored zips) with this project's input spec and with Nipype's plain
  ``File``/``Directory`` traits, under both hash methods, and whether each sees
  a directory member changed in place.
- Demo pipeline: ``trx-nipype run`` on the demo data, once from scratch and
  once more with nothing changed (the rerun should execute no node). Both are
  timed as a user sees them (process start to exit).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HASHING_FULL_MB = 2000.0


def _hashing(workdir: Path, scale: float) -> list[dict[str, Any]]:
    script = HERE / "bench_hashing.py"
    if not script.exists():
        return [{"label": "Nipype input hashing", "note": "bench_hashing.py not available yet"}]
    size_mb = max(50.0, HASHING_FULL_MB * min(1.0, scale))
    out = workdir / "hashing.json"
    cmd = [sys.executable, str(script), "--size-mb", f"{size_mb:g}", "--repeats", "3",
           "--json", str(out), "--workdir", str(workdir / "hashing")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    shutil.rmtree(workdir / "hashing", ignore_errors=True)
    if proc.returncode != 0 or not out.exists():
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        return [{"label": "Nipype input hashing", "note": f"failed: {tail}"}]
    res = json.loads(out.read_text(encoding="utf-8"))
    gb = res["total_bytes"] / 1e9
    rows = []
    for method in ("timestamp", "content"):
        ours, other = res[f"ours_{method}"], res[f"nipype_{method}"]
        sees = (res.get(f"ours_{method}_sees_dir_change"),
                res.get(f"nipype_{method}_sees_dir_change"))
        note = f"sees in-place dir change: ours {'yes' if sees[0] else 'NO'} / " \
               f"Nipype {'yes' if sees[1] else 'no'}"
        if method == "content":
            note += f"; first (cold) run {res['ours_content_cold']:.2f} s"
        rows.append({"kind": "hashing", "method": method,
                     "label": f"cached rerun: hash {res['n_inputs']} TRX inputs "
                              f"({gb:.1f} GB), {method}",
                     "ours_s": ours, "other_s": other, "other_tool": "Nipype File/Directory",
                     "ratio": ours / other if other else None, "sees_change": sees[0],
                     "note": note, "raw": res})
    return rows


def _demo(workdir: Path) -> list[dict[str, Any]]:
    exe = Path(sys.executable).with_name("trx-nipype")
    if not exe.exists():
        return [{"label": "demo pipeline", "note": "trx-nipype command not installed"}]
    out = workdir / "demo-out"
    work = workdir / "demo-work"
    for folder in (out, work):
        shutil.rmtree(folder, ignore_errors=True)
    runs = []
    for _ in range(2):
        t = time.perf_counter()
        proc = subprocess.run([str(exe), "run", "--output-dir", str(out), "--work-dir",
                               str(work)], capture_output=True, text=True, timeout=1800,
                              cwd=workdir)
        wall = time.perf_counter() - t
        done = re.search(r"done: (\d+) nodes ran, (\d+) cached, (\d+) failed",
                         proc.stdout + proc.stderr)
        if proc.returncode != 0 or not done:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            return [{"label": "demo pipeline", "note": f"failed: {tail}"}]
        runs.append((wall, *(int(g) for g in done.groups())))
    for folder in (out, work):
        shutil.rmtree(folder, ignore_errors=True)
    (first, ran1, _, _), (second, ran2, cached2, _) = runs
    return [{"kind": "demo", "label": "demo pipeline `trx-nipype run`, cached rerun",
             "ours_s": second, "first_s": first, "nodes_first": ran1, "nodes_rerun": ran2,
             "cached_rerun": cached2,
             "note": f"first run {first:.2f} s ({ran1} nodes); rerun: {ran2} nodes ran, "
                     f"{cached2} cached"}]


def collect(workdir: Path, scale: float) -> list[dict[str, Any]]:
    """Run whatever Nipype benchmarks are available; one dict per row."""
    workdir.mkdir(parents=True, exist_ok=True)
    return _hashing(workdir, scale) + _demo(workdir)


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}" if v < 1 else f"{v:.2f}"


def markdown_row(row: dict[str, Any]) -> str:
    """One table row (same columns as the operations table)."""
    ratio = "-" if row.get("ratio") is None else f"{row['ratio']:.2f}x"
    return (f"| {row['label']} | {_s(row.get('ours_s'))} | {_s(row.get('other_s'))} | "
            f"{row.get('other_tool', '-')} | {ratio} | - | - | {row.get('note', '')} |")


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PASS / MISS entries contributed by the Nipype rows."""
    out = []
    for row in rows:
        if row.get("kind") == "demo":
            out.append({"target": "demo pipeline: a cached rerun executes no node",
                        "value": row["nodes_rerun"], "pass": row["nodes_rerun"] == 0})
        elif row.get("kind") == "hashing":
            out.append({"target": f"hashing ({row['method']}): sees a TRX directory changed "
                                  "in place", "value": row["sees_change"],
                        "pass": bool(row["sees_change"])})
            if row["method"] == "content":
                out.append({"target": "hashing (content): cached rerun cheaper than Nipype's",
                            "value": None if row["ratio"] is None else round(row["ratio"], 4),
                            "pass": row["ratio"] is not None and row["ratio"] < 1})
        elif "note" in row:
            out.append({"target": f"{row['label']}: ran", "value": row["note"], "pass": False})
    return out
