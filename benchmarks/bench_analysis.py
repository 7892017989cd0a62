"""The analysis operations side by side with dipy and scilpy 2.3, with run.py's method.

Usage::

    python benchmarks/bench_analysis.py --scale 0.1 [--reps 3] [--ops filter,density]
    python benchmarks/bench_analysis.py --scale 1.0 --reps 1

Same data as ``run.py`` (``generate.py``: ``stored.trx`` and ``data.trk`` hold
the same streamlines), same method: every run is a fresh process, the sides
take turns in an order that rotates each repetition, and the parent samples
each child's peak *anonymous* memory (``_measure.run_child``). The sides:

- **ours**: the ``trx_nipype.core.operations`` function on ``stored.trx``;
- **dipy**: what a dipy user writes: ``load_tractogram`` of the same TRX (dipy
  reads TRX through trx-python), dipy's function on the loaded streamlines
  (``length``, ``density_map``, ``values_from_volume``, ``afq_profile``,
  ``set_number_of_points``), the result saved (TRK with
  ``save_tractogram``, NIfTI with nibabel, CSV);
- **scilpy** (filter by length, density map): ``scil_tractogram_filter_by_length``
  and ``scil_tractogram_compute_density_map`` on ``data.trk`` (scilpy 2.3
  refuses TRX), run from their own virtual environment
  (``benchmarks/.scilpy-venv``, made here with ``pip install scilpy==2.3.0``:
  scilpy pins numpy 1.x). A script's time is its whole process (interpreter
  start and imports included, about a second, measured alone and reported).

Inside ours and dipy's children the window covers loading, the operation and
writing the output (imports outside). Results: ``results/analysis.md`` and
``analysis.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _measure  # noqa: E402
import generate  # noqa: E402

RESULTS = HERE / "results"
SCILPY_VENV = HERE / ".scilpy-venv"
SCILPY_VERSION = "2.3.0"
MIN_MM, MAX_MM = 40.0, 60.0  # the synthetic streamlines are 25-75 mm long
POINTS = 20  # resample
PROFILE_POINTS = 100
GROUPS = ("CST_L", "AF_L")
OPS = ("filter", "density", "sample", "profile", "resample")
SCILPY_OPS = {"filter": "scil_tractogram_filter_by_length",
              "density": "scil_tractogram_compute_density_map"}
RATIO_TARGET = 0.2
MEMORY_TARGET_MB = 256


# ------------------------------------------------------------------ inputs
def scalar_map(root: Path) -> Path:
    """An FA-like float32 image on the data set's grid (made once)."""
    import nibabel as nib
    import numpy as np

    path = root / "fa_map.nii.gz"
    if not path.exists():
        dims = generate.DIMENSIONS
        i, j, k = np.meshgrid(*[np.arange(d, dtype=np.float32) for d in dims], indexing="ij")
        data = 0.5 + 0.3 * np.sin(i / 7.0) * np.cos(j / 9.0) + 0.1 * np.sin(k / 5.0)
        nib.save(nib.Nifti1Image(data.astype(np.float32), generate.affine()), path)
    return path


def scilpy_python() -> tuple[Path | None, str]:
    """The scilpy venv's interpreter, installing scilpy there if needed; or (None, why)."""
    py = SCILPY_VENV / "bin" / "python"
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(SCILPY_VENV)], check=True,
                           capture_output=True, text=True)
        check = subprocess.run([str(py), "-c", "import scilpy"], capture_output=True)
        if check.returncode != 0:
            pip = subprocess.run([str(py), "-m", "pip", "install", "-q",
                                  f"scilpy=={SCILPY_VERSION}"], capture_output=True, text=True)
            if pip.returncode != 0:
                tail = [ln for ln in pip.stderr.splitlines() if "ignored" not in ln][-3:]
                return None, "pip install scilpy failed: " + " | ".join(tail)
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"cannot make the scilpy venv: {exc}"
    return py, ""


# ------------------------------------------------------------------ children
def child(op: str, side: str, root: Path, out: Path) -> dict[str, Any]:
    """One run inside a fresh process (``python bench_analysis.py --child OP SIDE ROOT OUT``)."""
    import numpy as np

    image = root / "fa_map.nii.gz"
    if side == "ours":
        if op in ("sample", "profile", "resample"):  # the dipy functions ours calls
            import dipy.core.interpolation  # noqa: F401 (imported outside the window,
            import dipy.tracking.streamline  # noqa: F401 as on dipy's side)

        from trx_nipype.core.operations import density, filtering, resampling, scalars

        t0, c0 = time.monotonic(), time.process_time()
        src = root / "stored.trx"
        if op == "filter":
            res = filtering.filter_streamlines(src, out, min_length=MIN_MM, max_length=MAX_MM)
            n = res.nb_streamlines
        elif op == "density":
            n = density.density_map(src, out).nb_voxels
        elif op == "sample":
            n = scalars.sample_scalar_map(src, image, out, name="md").nb_vertices
        elif op == "profile":
            n = len(scalars.tract_profile(src, image, out, nb_points=PROFILE_POINTS,
                                          groups=list(GROUPS)).tracts)
        else:
            # dipy's set_number_of_points moves positions only: the same work here
            n = resampling.resample_streamlines(src, out, nb_points=POINTS,
                                                drop_dpv=True).nb_vertices
    else:
        import nibabel as nib
        from dipy.io.stateful_tractogram import Space, StatefulTractogram
        from dipy.io.streamline import load_tractogram, save_tractogram
        from dipy.stats.analysis import afq_profile
        from dipy.tracking.streamline import length, set_number_of_points, values_from_volume
        from dipy.tracking.utils import density_map

        t0, c0 = time.monotonic(), time.process_time()
        if op == "profile":  # groups: read with trx-python, as dipy reads TRX
            import trx.trx_file_memmap as tmm

            trx = tmm.load(str(root / "stored.trx"))
            img = nib.load(image)
            data = np.asarray(img.dataobj, dtype=np.float64)
            rows = []
            for g in GROUPS:
                bundle = trx.streamlines[np.asarray(trx.groups[g])].copy()
                prof = afq_profile(data, bundle, img.affine, n_points=PROFILE_POINTS,
                                   orient_by=bundle[0])
                rows += [f"{g},{i},fa,{float(v)!r},{len(bundle)}" for i, v in enumerate(prof)]
            out.write_text("tract,node,metric,value,n_streamlines\n" + "\n".join(rows) + "\n")
            trx.close()
            n = len(GROUPS)
        else:
            sft = load_tractogram(str(root / "stored.trx"), "same", bbox_valid_check=False)
            sft.to_rasmm()
            sft.to_center()
            streamlines = sft.streamlines
            if op == "filter":
                lens = length(streamlines)
                keep = np.flatnonzero((lens >= MIN_MM) & (lens <= MAX_MM))
                save_tractogram(sft[keep], str(out), bbox_valid_check=False)
                n = len(keep)
            elif op == "density":
                affine, dims = sft.affine, sft.dimensions
                counts = density_map(streamlines, affine, dims)
                nib.save(nib.Nifti1Image(counts.astype(np.int32), affine), out)
                n = int(np.count_nonzero(counts))
            elif op == "sample":
                img = nib.load(image)
                vals = values_from_volume(np.asarray(img.dataobj), streamlines, img.affine)
                sft.data_per_point["md"] = [np.asarray(v, np.float32)[:, None] for v in vals]
                sft.data_per_streamline["md_mean"] = np.array(
                    [np.mean(v) for v in vals], np.float32)[:, None]
                save_tractogram(sft, str(out), bbox_valid_check=False)
                n = sum(len(v) for v in vals)
            else:
                new = set_number_of_points(streamlines, nb_points=POINTS)
                out_sft = StatefulTractogram(new, sft, Space.RASMM)
                save_tractogram(out_sft, str(out), bbox_valid_check=False)
                n = len(new) * POINTS
    t1, c1 = time.monotonic(), time.process_time()
    return {"t0": t0, "t1": t1, "wall": t1 - t0, "cpu": c1 - c0, "n": int(n)}


def run_side(op: str, side: str, root: Path, outdir: Path, timeout: float,
             scilpy: Path | None) -> dict[str, Any]:
    """One fresh process: its time, peak anonymous memory and result (or error)."""
    ext = {"filter": ".trk" if side != "ours" else ".trx", "density": ".nii.gz",
           "sample": ".trk" if side != "ours" else ".trx", "profile": ".csv",
           "resample": ".trk" if side != "ours" else ".trx"}[op]
    out = outdir / f"{op}-{side}{ext}"
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    if side == "scilpy":
        script = SCILPY_VENV / "bin" / SCILPY_OPS[op]
        args = [str(root / "data.trk"), str(out)]
        if op == "filter":
            args += ["--minL", str(MIN_MM), "--maxL", str(MAX_MM)]
        cmd = [str(scilpy), str(script), *args, "-f"]
        t0 = time.monotonic()
        proc, sampler = _measure.run_child(cmd, timeout=timeout)
        t1 = time.monotonic()
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
        base, peak = sampler.window(t0, t1)
        return {"wall": t1 - t0, "peak_mb": peak / _measure.MB, "out": str(out)}
    cmd = [_measure.python(), __file__, "--child", op, side, str(root), str(out)]
    proc, sampler = _measure.run_child(cmd, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-3:]}
    res = json.loads(lines[-1])
    base, peak = sampler.window(res["t0"], res["t1"])
    res.update(peak_mb=peak / _measure.MB, base_mb=base / _measure.MB, out=str(out))
    return res


def check(op: str, outs: dict[str, str]) -> str:
    """Compare the sides' outputs: same counts / voxels / values (to float32 precision)."""
    import nibabel as nib
    import numpy as np

    from trx_nipype.core import load, load_any

    try:
        if op == "density":
            ref = np.asarray(nib.load(outs["ours"]).dataobj)
            same = np.array_equal(np.asarray(nib.load(outs["dipy"]).dataobj), ref)
            text = "same voxels as dipy" if same else "differs from dipy"
            if "scilpy" in outs:  # scilpy also counts voxels crossed between two vertices
                other = np.asarray(nib.load(outs["scilpy"]).dataobj)
                text += (f"; scilpy, which also counts voxels crossed between vertices, "
                         f"{np.count_nonzero(other)} voxels vs {np.count_nonzero(ref)}")
            return text
        if op == "profile":
            import csv

            def read(p: str) -> np.ndarray:
                with open(p, newline="", encoding="utf-8") as fh:
                    return np.array([float(r["value"]) for r in csv.DictReader(fh)])
            ok = np.allclose(read(outs["ours"]), read(outs["dipy"]), rtol=1e-5)
            return "same values" if ok else "values differ"
        with load(outs["ours"]) as ours:
            n_ours = len(ours)
            pos = np.asarray(ours.positions[:100000], np.float64)
            extra = np.asarray(ours.dpv["md"][:100000]) if op == "sample" else None
        problems = []
        for side in outs:
            if side == "ours":
                continue
            with load_any(outs[side]) as other:
                if len(other) != n_ours:
                    problems.append(f"{side} {len(other)} streamlines, ours {n_ours}")
                    continue
                if not np.allclose(np.asarray(other.positions[:100000], np.float64), pos,
                                   atol=2e-3):
                    problems.append(f"{side} positions differ")
                if extra is not None and not np.allclose(
                        np.asarray(other.dpv["md"][:100000]).ravel(), extra, rtol=1e-5,
                        atol=1e-6):
                    problems.append(f"{side} sampled values differ")
        return "same streamlines" + (" and values" if op == "sample" else "") \
            if not problems else "; ".join(problems)
    except Exception as exc:  # a report, not a crash
        return f"check failed: {exc}"


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        op, side, root, out = argv[1], argv[2], Path(argv[3]), Path(argv[4])
        time.sleep(0.03)  # let the parent's sampler record the baseline
        print(json.dumps(child(op, side, root, out)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no-scilpy", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    started = time.perf_counter()
    ds = generate.generate(args.scale, args.data_dir, args.seed)
    root = Path(ds.root)
    scalar_map(root)
    outdir = root / "out-analysis"
    outdir.mkdir(exist_ok=True)
    scilpy, why = (None, "--no-scilpy") if args.no_scilpy else scilpy_python()
    startup = None
    if scilpy is not None:  # the cost of starting a scilpy script, doing nothing
        t = time.monotonic()
        subprocess.run([str(scilpy), str(SCILPY_VENV / "bin" / SCILPY_OPS["filter"]), "-h"],
                       capture_output=True)
        startup = time.monotonic() - t
    for p in ("stored.trx", "data.trk", "fa_map.nii.gz"):  # warm page cache
        with open(root / p, "rb") as fh:
            while fh.read(1 << 23):
                pass
    timeout = 300 + 600 * args.scale
    rows = []
    for op in [o for o in args.ops.split(",") if o]:
        sides = ["ours", "dipy"] + (["scilpy"] if op in SCILPY_OPS and scilpy else [])
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
        errors: list[str] = []
        outs: dict[str, str] = {}
        for rep in range(args.reps):
            order = sides[rep % len(sides):] + sides[:rep % len(sides)]
            for side in order:
                res = run_side(op, side, root, outdir, timeout, scilpy)
                if "error" in res:
                    errors.append(f"{side}: {res['error']}")
                else:
                    runs[side].append(res)
                    outs.setdefault(side, res["out"])
            if rep == 0:
                verdict = check(op, dict(outs))
        row: dict[str, Any] = {"op": op, "check": verdict, "errors": errors}
        for side in sides:
            walls = [r["wall"] for r in runs[side]]
            row[side] = {"median_s": _measure.Stats(walls).median if walls else None,
                         "spread": _measure.Stats(walls).spread, "n": len(walls),
                         "peak_mb": max((r["peak_mb"] for r in runs[side]), default=None),
                         "cpu_s": _measure.Stats([r["cpu"] for r in runs[side]
                                                  if "cpu" in r]).median
                         if any("cpu" in r for r in runs[side]) else None}
        ours_t = row["ours"]["median_s"]
        for side in sides[1:]:
            other = row[side]["median_s"]
            row[f"ratio_{side}"] = ours_t / other if ours_t and other else None
        rows.append(row)
        print(f"{op:9s} " + "  ".join(
            f"{s} {_t(row[s])} s ({_mb(row[s])} MB)" for s in sides)
            + f"  check: {verdict}" + (f"  errors: {errors}" if errors else ""), file=sys.stderr)
        for f in outdir.iterdir():
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    report = {"machine": _measure.machine_info(), "dataset": vars(ds), "reps": args.reps,
              "scilpy": {"version": SCILPY_VERSION if scilpy else None, "why_not": why,
                         "startup_s": startup},
              "rows": rows, "elapsed_s": time.perf_counter() - started}
    md = markdown(report)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "analysis.md").write_text(md, encoding="utf-8")
    (args.results / "analysis.json").write_text(json.dumps(report, indent=1, default=str),
                                                encoding="utf-8")
    print(md)
    shutil.rmtree(outdir, ignore_errors=True)
    return 0


def _t(st: dict[str, Any] | None) -> str:
    if not st or st["median_s"] is None:
        return "-"
    t = st["median_s"]
    txt = f"{t:.3f}" if t < 1 else f"{t:.2f}" if t < 10 else f"{t:.1f}"
    return f"{txt} ±{st['spread'] * 100:.0f}%" if st["n"] > 1 else txt


def _mb(st: dict[str, Any] | None) -> str:
    return "-" if not st or st["peak_mb"] is None else f"{st['peak_mb']:.0f}"


def _r(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


LABELS = {"filter": f"filter by length {MIN_MM:g}-{MAX_MM:g} mm + save",
          "density": "density map (NIfTI)",
          "sample": "sample a map at every vertex + save",
          "profile": f"profiles of 2 groups, {PROFILE_POINTS} points",
          "resample": f"resample to {POINTS} points + save (dpv dropped, as dipy)"}


def markdown(report: dict[str, Any]) -> str:
    """The table for the README."""
    m, ds, sc = report["machine"], report["dataset"], report["scilpy"]
    lines = [
        f"Scale {ds['scale']:g}: {ds['nb_streamlines']:,} streamlines, {ds['nb_vertices']:,} "
        f"vertices. {m['cpu']}, {m['cores']} cores, load average {m['load_avg']} (a shared "
        f"machine); numpy {m['numpy']}, dipy {m['dipy']}; {m['date']}. Median of "
        f"{report['reps']} interleaved runs per side (± half range), each a fresh process. "
        "Ours reads stored.trx; dipy loads the same TRX (load_tractogram) and saves TRK; scilpy "
        + (f"{sc['version']} runs its scripts on data.trk (whole process: its start-up alone "
           f"takes {sc['startup_s']:.1f} s)" if sc["version"] else
           f"did not run ({sc['why_not']})")
        + f". Total {report['elapsed_s']:.0f} s.",
        "",
        "| operation | trx-nipype s | dipy s | scilpy s | ratio vs dipy | ratio vs scilpy | "
        "peak anon MB ours / dipy / scilpy | outputs |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {LABELS[row['op']]} | {_t(row['ours'])} | {_t(row['dipy'])} | "
            f"{_t(row.get('scilpy'))} | {_r(row.get('ratio_dipy'))} | "
            f"{_r(row.get('ratio_scilpy'))} | {_mb(row['ours'])} / {_mb(row['dipy'])} / "
            f"{_mb(row.get('scilpy'))} | {row['check']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
