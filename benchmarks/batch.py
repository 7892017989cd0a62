"""Batch benchmark: the bundles pipeline at lab scale, against the in-process floor.

Usage::

    python benchmarks/batch.py --subjects 100 --bundles 10     # ~3 minutes on 2 cores
    python benchmarks/batch.py --subjects 300 --bundles 20 --reps 1
    python benchmarks/batch.py --subjects 3 --bundles 2 --reps 1 --no-save   # smoke

Data: a seeded S x B dataset made from dipy's shipped ``minimal_bundles.zip``
(3 bundles of 50 streamlines x 20 points): bundle ``b`` of subject ``s`` is
the template bundle ``b % 3`` tiled to ``--streamlines`` streamlines, each copy
jittered point by point (0.3 mm) and the whole bundle shifted per subject
(1 mm), written as ``sub-XXX/dwi/<bundle>.trk`` with the template's header.
It is reused while its ``manifest.json`` matches.

Sides, each a fresh process timed from start to exit (interpreter start and
imports included on every side), interleaved (the order rotates every
repetition), medians of ``--reps``:

- **floor**: the same job with the core API in one process, as a script
  would do it without Nipype: every bundle file converted to TRX, each
  subject's concatenated with one group per bundle, then per bundle every
  subject's group taken (``get_group``) and concatenated with one group per
  subject (``floor_job``);
- ``trx-nipype run DS --no-report --plugin Linear`` and ``--plugin MultiProc
  --nprocs 2`` into a fresh output folder, and the MultiProc command again over
  the same folder (a cached rerun: nothing to do, which the run record of
  ``trx_nipype.workflows.runrecord`` sees without starting Nipype), then once
  more with that record deleted (Nipype's cache checks every node, as after any
  change): the floor's work, through Nipype, which is what the targets compare;
- the same two commands as users type them, without ``--no-report``: the run
  then also draws its QC report (``report.html``, a figure per output), work
  the floor does not do, shown beside with its ratio to the floor.

Checks: Linear and MultiProc outputs are byte-identical (and so are the
floor's .trx files, made by the same core operations), the cached rerun runs
no node, and the node count (node results in the work dir) stays within
``2 * subjects + 2 * bundles + 10``. Targets (issue 11): MultiProc <= 1.5x the
floor, Linear <= 2.5x, cached rerun <= 0.35x. Results: ``results/batch.md``
and ``results/batch.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from trx_nipype.workflows.runrecord import RECORD_NAME

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TEMPLATES = ("AF_L", "CC_ForcepsMajor", "CST_R")
#: side -> maximum ratio to the floor
TARGETS = {"multiproc": 1.5, "linear": 2.5, "multiproc_cached": 0.35}
_VERSION = 1


# ------------------------------------------------------------------ data
def bundle_names(nb_bundles: int) -> list[str]:
    """``AF_L, CC_ForcepsMajor, CST_R, AF_L_1, ...``: the template names, then numbered."""
    return [TEMPLATES[b % 3] + (f"_{b // 3}" if b >= 3 else "") for b in range(nb_bundles)]


def make_dataset(root: str | os.PathLike, subjects: int, bundles: int, streamlines: int = 500,
                 seed: int = 0) -> Path:
    """Write (or reuse) the seeded ``subjects x bundles`` dataset under ``root``."""
    import nibabel as nib

    from trx_nipype.data import demo_bundles_zip

    root = Path(root)
    manifest = {"version": _VERSION, "subjects": subjects, "bundles": bundles,
                "streamlines": streamlines, "seed": seed}
    stamp = root / "manifest.json"
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == manifest:
        return root
    shutil.rmtree(root, ignore_errors=True)
    templates = {}
    with zipfile.ZipFile(demo_bundles_zip()) as zf:
        for name in TEMPLATES:
            trk = nib.streamlines.load(io.BytesIO(zf.read(f"sub_1/{name}.trk")))
            templates[name] = (trk.header, list(trk.streamlines))
    names = bundle_names(bundles)
    for s in range(subjects):
        folder = root / f"sub-{s + 1:03d}" / "dwi"
        folder.mkdir(parents=True)
        for b, name in enumerate(names):
            header, lines = templates[TEMPLATES[b % 3]]
            rng = np.random.default_rng([seed, s, b])
            shift = rng.normal(0.0, 1.0, 3).astype(np.float32)
            out = []
            for k in range(streamlines):
                line = lines[k % len(lines)]
                noise = rng.normal(0.0, 0.3, line.shape).astype(np.float32)
                out.append(line + noise + shift)
            tractogram = nib.streamlines.Tractogram(out, affine_to_rasmm=np.eye(4))
            nib.streamlines.TrkFile(tractogram, header=header).save(str(folder / f"{name}.trk"))
    stamp.write_text(json.dumps(manifest), encoding="utf-8")
    return root


# ------------------------------------------------------------------ floor
def floor_job(dataset: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, int]:
    """The bundles job with the core API in this process (no Nipype, no sidecars).

    Writes ``sub-X/dwi/sub-X_desc-bundles_tractogram.trx`` and
    ``population/tract-<name>_tractogram.trx`` under ``out_dir``, as the
    pipeline names them; returns how many of each.
    """
    from trx_nipype.core import concatenate, convert, load

    dataset, out_dir = Path(dataset), Path(out_dir)
    subjects = sorted(p.name for p in dataset.glob("sub-*") if p.is_dir())
    staged = Path(tempfile.mkdtemp(prefix="floor-", dir=out_dir.parent))
    written: dict[str, Path] = {}
    try:
        for subject in subjects:
            files = sorted((dataset / subject / "dwi").glob("*.trk"))
            trx_files = []
            for f in files:
                dest = staged / subject / (f.stem + ".trx")
                dest.parent.mkdir(parents=True, exist_ok=True)
                trx_files.append(convert(f, dest))
            out = out_dir / subject / "dwi" / f"{subject}_desc-bundles_tractogram.trx"
            out.parent.mkdir(parents=True, exist_ok=True)
            concatenate(trx_files, out, group_by_input=True, group_names=[f.stem for f in files],
                        delete_dps=True, delete_dpv=True)
            written[subject] = out
        opened = [load(written[s]) for s in subjects]
        try:
            bundles = sorted(opened[0].groups)
            (out_dir / "population").mkdir(parents=True, exist_ok=True)
            for bundle in bundles:
                views = []
                for trx in opened:
                    view = trx.get_group(bundle)
                    view.groups, view.dpg = {}, {}
                    views.append(view)
                concatenate(views, out_dir / "population" / f"tract-{bundle}_tractogram.trx",
                            group_by_input=True, group_names=subjects, delete_dps=True,
                            delete_dpv=True)
        finally:
            for trx in opened:
                trx.close()
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return {"subjects": len(subjects), "bundles": len(bundles)}


# ------------------------------------------------------------------ sides
def _digests(out_dir: Path) -> dict[str, str]:
    return {p.relative_to(out_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out_dir.rglob("*.trx"))
            if "work" not in p.relative_to(out_dir).parts}


def nipype_job(dataset: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """The same pipeline run as a user runs a workflow: ``wf.run(plugin="MultiProc")``
    with Nipype's defaults (its plugin, its 2 s poll), not through ``run_workflow``."""
    from trx_nipype.workflows import find_dataset, init_bundles_pipeline_wf

    wf = init_bundles_pipeline_wf(find_dataset(dataset), out_dir)
    wf.base_dir = str(Path(out_dir) / "work")
    wf.run(plugin="MultiProc", plugin_args={"n_procs": 2})


def _command(side: str, dataset: Path, out: Path) -> list[str]:
    if side == "floor" or side.startswith("nipype"):
        child = "--floor-child" if side == "floor" else "--nipype-child"
        return [sys.executable, str(Path(__file__).resolve()), child, str(dataset), str(out)]
    exe = str(Path(sys.executable).with_name("trx-nipype"))
    cmd = [exe, "run", str(dataset), "--output-dir", str(out), "-q"]
    if not side.endswith("_report"):
        cmd.append("--no-report")
    return cmd + (["--plugin", "MultiProc", "--nprocs", "2"] if side.startswith("multiproc")
                  else ["--plugin", "Linear"])


def _work_dir(out: Path) -> Path:
    """Where ``trx-nipype run --output-dir out`` keeps its cache (beside ``out``)."""
    from trx_nipype.workflows.runner import default_work_dir

    return default_work_dir(out)


def _remove(out: Path) -> None:
    """An output folder and the run's work dir beside it: the next run starts afresh."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(_work_dir(out), ignore_errors=True)


def run_side(side: str, dataset: Path, out: Path) -> dict[str, Any]:
    """Run one side in a fresh process; wall and CPU seconds, node results."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(_command(side, dataset, out), capture_output=True, text=True,
                          env=dict(os.environ, NIPYPE_NO_ET="1"), check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row: dict[str, Any] = {"side": side, "wall_s": wall,
                           "cpu_s": (after.ru_utime - before.ru_utime)
                           + (after.ru_stime - before.ru_stime),
                           "code": proc.returncode}
    if proc.returncode != 0:
        row["error"] = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    work = out / "work" if side.startswith("nipype") else _work_dir(out)
    if work.is_dir():
        results = list(work.rglob("result_*.pklz"))
        row["node_results"] = len(results)
        row["nodes_run"] = sum(1 for p in results if p.stat().st_mtime >= started)
    return row


SIDES = ("floor", "linear", "multiproc", "linear_report", "multiproc_report")
#: the order rotates every repetition
ORDERS = tuple(SIDES[i:] + SIDES[:i] for i in range(len(SIDES)))


def measure(dataset: Path, workdir: Path, reps: int, nipype: bool = False
            ) -> tuple[list[dict[str, Any]], dict]:
    """``reps`` interleaved rounds of every side; the outputs of the first round checked.

    ``nipype``: also ``wf.run(plugin="MultiProc")`` as Nipype runs it (slow: a poll of
    2 s per scheduling round), first run and cached rerun.
    """
    rows: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    for rep in range(reps):
        order = ORDERS[rep % len(ORDERS)] + (("nipype",) if nipype else ())
        outs = {side: workdir / f"{side}-{rep}" for side in order}
        for side in order:
            _remove(outs[side])
            rows.append(dict(run_side(side, dataset, outs[side]), rep=rep))
            record = _work_dir(outs[side]) / RECORD_NAME
            written = record.stat().st_mtime_ns if record.exists() else None
            if side in ("multiproc", "nipype"):  # the same command again: all cached
                rows.append(dict(run_side(f"{side}_cached", dataset, outs[side]), rep=rep))
            if side == "multiproc":  # and once more without its run record: through Nipype
                # (a run through Nipype deletes the record and writes a new one)
                rows[-1]["record_path"] = written is not None and record.exists() and \
                    record.stat().st_mtime_ns == written
                record.unlink(missing_ok=True)
                rows.append(dict(run_side("multiproc_cached_nipype", dataset, outs[side]),
                                 rep=rep))
        if rep == 0:
            got = {side: _digests(out) for side, out in outs.items()}
            checks = {"outputs": len(got["linear"]),
                      "linear_equals_multiproc": got["linear"] == got["multiproc"],
                      "report_runs_equal": got["linear_report"] == got["multiproc_report"]
                      == got["linear"],
                      "floor_equals_linear": got["floor"] == got["linear"]}
            if nipype:
                checks["nipype_equals_linear"] = got["nipype"] == got["linear"]
        for out in outs.values():
            _remove(out)
    return rows, checks


def summarize(rows: list[dict[str, Any]], checks: dict[str, Any], subjects: int,
              bundles: int) -> dict[str, Any]:
    """Medians per side, ratios to the floor, PASS/MISS per target."""
    sides: dict[str, dict[str, Any]] = {}
    names = ["floor", "linear", "multiproc", "multiproc_cached", "multiproc_cached_nipype",
             "linear_report", "multiproc_report"]
    names += [n for n in ("nipype", "nipype_cached") if any(r["side"] == n for r in rows)]
    for side in names:
        mine = [r for r in rows if r["side"] == side and r["code"] == 0]
        if not mine:
            sides[side] = {"error": next((r.get("error") for r in rows if r["side"] == side),
                                         "no run")}
            continue
        walls = sorted(r["wall_s"] for r in mine)
        sides[side] = {"wall_s": statistics.median(walls), "min_s": walls[0],
                       "max_s": walls[-1], "cpu_s": statistics.median(r["cpu_s"] for r in mine),
                       "node_results": max(r.get("node_results", 0) for r in mine),
                       "nodes_run": max(r.get("nodes_run", 0) for r in mine)}
    floor = sides["floor"].get("wall_s")
    targets = []
    for side, limit in TARGETS.items():
        value = sides[side].get("wall_s")
        ratio = value / floor if value and floor else None
        sides[side]["ratio"] = ratio
        targets.append({"target": f"{side} <= {limit}x the floor", "value": ratio,
                        "pass": ratio is not None and ratio <= limit})
    limit = 2 * subjects + 2 * bundles + 10
    nodes = sides["multiproc"].get("node_results")
    targets.append({"target": f"node results <= 2*S + 2*B + 10 = {limit}", "value": nodes,
                    "pass": nodes is not None and nodes <= limit})
    fast = [r.get("record_path") for r in rows if r["side"] == "multiproc_cached"]
    targets.append({"target": "multiproc_cached skipped Nipype (its run record unchanged)",
                    "value": all(fast) and bool(fast), "pass": all(fast) and bool(fast)})
    for side in ("multiproc_cached", "multiproc_cached_nipype"):
        targets.append({"target": f"{side} runs no node",
                        "value": sides[side].get("nodes_run"),
                        "pass": sides[side].get("nodes_run") == 0})
    targets.append({"target": "Linear and MultiProc outputs byte-identical",
                    "value": checks.get("linear_equals_multiproc"),
                    "pass": bool(checks.get("linear_equals_multiproc"))})
    return {"subjects": subjects, "bundles": bundles, "sides": sides, "checks": checks,
            "targets": targets}


def markdown(summary: dict[str, Any], machine: str, reps: int) -> str:
    """The table for ``results/batch.md`` and the README."""
    s, b = summary["subjects"], summary["bundles"]
    lines = [f"### {s} subjects x {b} bundles ({s * b} TRK files), {reps} interleaved rounds",
             "", f"{machine}", "",
             "| run | wall s (median, min-max) | CPU s | x floor | node results | nodes run |",
             "|---|---:|---:|---:|---:|---:|"]
    labels = {"floor": "in-process floor (core API, one process)",
              "linear": "`trx-nipype run --no-report --plugin Linear`",
              "multiproc": "`trx-nipype run --no-report --plugin MultiProc --nprocs 2`",
              "multiproc_cached": "same MultiProc command again (nothing changed: its run "
                                  "record)",
              "multiproc_cached_nipype": "same again without the run record (Nipype's cache "
                                         "checks every node)",
              "linear_report": "Linear with the QC report (the command without `--no-report`)",
              "multiproc_report": "MultiProc with the QC report",
              "nipype": "the same workflow, `wf.run(plugin=\"MultiProc\")` (Nipype's defaults)",
              "nipype_cached": "same `wf.run` again (cached)"}
    for side, label in labels.items():
        if side not in summary["sides"]:
            continue
        row = summary["sides"][side]
        if "error" in row:
            lines.append(f"| {label} | failed: {row['error']} | | | | |")
            continue
        ratio = row.get("ratio") or row["wall_s"] / summary["sides"]["floor"]["wall_s"]
        ratio = f"{ratio:.2f}x"
        nodes = "-" if side == "floor" else str(row["node_results"])
        run = "-" if side == "floor" else str(row["nodes_run"])
        lines.append(f"| {label} | {row['wall_s']:.2f} ({row['min_s']:.2f}-{row['max_s']:.2f})"
                     f" | {row['cpu_s']:.2f} | {ratio} | {nodes} | {run} |")
    lines.append("")
    for t in summary["targets"]:
        value = t["value"]
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        lines.append(f"- {'PASS' if t['pass'] else 'MISS'}: {t['target']} ({shown})")
    checks = summary["checks"]
    lines.append(f"- outputs checked: {checks.get('outputs')} .trx files; floor's bytes equal "
                 f"Linear's: {checks.get('floor_equals_linear')}; the runs with the report "
                 f"wrote the same .trx files: {checks.get('report_runs_equal')}")
    return "\n".join(lines) + "\n"


def machine_line() -> str:
    """CPU, cores and load, for the record."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}, {os.cpu_count()} cores, load average {load:.1f} at the start, "
            f"{time.strftime('%Y-%m-%d')}")


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--bundles", type=int, default=10)
    parser.add_argument("--streamlines", type=int, default=500)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, help="default: benchmarks/data/batch-SxB")
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-save", action="store_true", help="print, write no results")
    parser.add_argument("--nipype", action="store_true",
                        help="also wf.run(plugin='MultiProc') with Nipype's defaults (slow: "
                             "2 s per scheduling round)")
    parser.add_argument("--floor-child", nargs=2, metavar=("DATASET", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--nipype-child", nargs=2, metavar=("DATASET", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_child:
        floor_job(*args.floor_child)
        return 0
    if args.nipype_child:
        nipype_job(*args.nipype_child)
        return 0
    data = args.data_dir or HERE / "data" / f"batch-{args.subjects}x{args.bundles}"
    dataset = make_dataset(data, args.subjects, args.bundles, args.streamlines, args.seed)
    workdir = args.work_dir or Path(tempfile.mkdtemp(prefix="batch-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_line()
    try:
        rows, checks = measure(dataset, workdir, args.reps, nipype=args.nipype)
    finally:
        if args.work_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(rows, checks, args.subjects, args.bundles)
    text = markdown(summary, machine, args.reps)
    print(text)
    if not args.no_save:
        args.results.mkdir(parents=True, exist_ok=True)
        record = {"machine": machine, "reps": args.reps, "streamlines": args.streamlines,
                  "rows": rows, **summary}
        path = args.results / "batch.json"
        runs = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
        runs.append(record)
        path.write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")
        md = args.results / "batch.md"
        sections = md.read_text(encoding="utf-8").split("\n### ") if md.is_file() else []
        key = f"{args.subjects} subjects x {args.bundles} bundles"
        kept = [sec for sec in sections[1:] if not sec.startswith(key)]
        body = "\n### ".join([sections[0].rstrip("\n") if sections else
                              "# Batch benchmark (benchmarks/batch.py)\n", *kept,
                              text.removeprefix("### ")])
        md.write_text(body.rstrip("\n") + "\n", encoding="utf-8")
    errors = [r for r in rows if r["code"] != 0]
    return 1 if errors or not all(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
