"""``trx-nipype report`` on a big TRX: time and peak anonymous memory, against a hand script.

Targets (issue 15): ``trx-nipype report FILE -o PAGE.html`` on 1,000,000
streamlines (about 100M vertices, 1.2 GB of positions: the data of
``generate.py`` at ``--scale 1.0``) within 30 s and 512 MB of anonymous
memory.

Side by side, in one run, interleaved, each in a fresh process:

- ``ours``: ``trx-nipype report stored.trx -o page.html`` (the console
  command, end to end: interpreter start and imports included).
- ``other``: what a user would otherwise write (``_OTHER`` below):
  trx-python's memory-mapped loader, dipy's ``length`` for every streamline,
  a seeded sample of 3,000 streamlines drawn in three projections with
  matplotlib and a length histogram (no HTML). Its counts and per-group mean
  lengths check the page's.

Peak memory is ``RssAnon`` sampled every 10 ms (``_measure.MemorySampler``):
the memory-mapped file and the page cache are not counted. The data is made
by ``generate.write_dataset`` (TRX only, no TRK/TCK) and saved as a stored
zip; an existing ``generate.py`` data set of the same scale and seed is
reused.

With ``--batch SUBJECTS BUNDLES``, also the report of a run's output folder
(``trx-nipype report OUT_DIR``: a page, ``qc.tsv`` and two figures per subject
and one per bundle) of ``batch.py``'s data set, the run made once with
``--no-report`` and kept beside the data: every figure drawn (an empty report
cache, each repetition), in one process (``--nprocs 1``) and with the default
(a process per CPU), then a rerun with nothing changed (the cache: nothing
drawn). ``--before SRC`` runs our commands (the file's and the folder's) with
an earlier trx-nipype source tree too (``git archive <commit> | tar -x -C
SRC``, on ``PYTHONPATH``), interleaved with ours: before/after ratios in one
run. Peak anonymous memory
is the main process's (the drawing processes hold one output each).

Usage::

    python benchmarks/bench_report.py --scale 1.0 [--reps 3] [--data-dir DIR] [--no-other]
    python benchmarks/bench_report.py --batch 100 10 [--before SRC] [--no-file]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _measure import MB, Stats, machine_info, run_child  # noqa: E402

TARGET_SECONDS = 30.0
TARGET_ANON_MB = 512.0
RESULTS = HERE / "results"

#: the "other" side: trx-python + dipy + matplotlib, as a user would write it
_OTHER = r'''
import sys, time
t0 = time.monotonic()
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.collections import LineCollection
from dipy.tracking.streamline import length
from trx.trx_file_memmap import load
trx = load(sys.argv[1])
lengths = length(trx.streamlines)
rng = np.random.default_rng(0)
picked = np.sort(rng.choice(len(lengths), size=min(3000, len(lengths)), replace=False))
lines = [np.asarray(trx.streamlines[i]) for i in picked]
fig, axes = plt.subplots(1, 4, figsize=(16, 4))
for ax, (a, b) in zip(axes[:3], ((1, 2), (0, 2), (0, 1))):
    ax.add_collection(LineCollection([s[:, (a, b)] for s in lines], linewidths=0.5, alpha=0.2))
    ax.autoscale()
    ax.set_aspect("equal")
axes[3].hist(lengths, bins=60)
fig.savefig(sys.argv[2])
import json
print(json.dumps({"nb_streamlines": len(lengths), "groups": {
    g: [len(i), float(lengths[np.asarray(i, dtype=np.int64)].mean())]
    for g, i in trx.groups.items()}}))
trx.close()
'''


def data_set(scale: float, data_dir: Path | None, seed: int) -> Path:
    """A stored TRX of ``scale`` x 1M streamlines (``generate.py``'s, reused if present)."""
    import generate

    full = Path(data_dir or generate.DEFAULT_DATA_DIR) / f"scale-{scale:g}-seed-{seed}"
    found = generate.Dataset.read(full)
    if found is not None and found.version == generate.GENERATOR_VERSION and \
            (full / "stored.trx").is_file():
        return full / "stored.trx"
    root = Path(data_dir or generate.DEFAULT_DATA_DIR) / f"report-scale-{scale:g}-seed-{seed}"
    trx_path = root / "stored.trx"
    if trx_path.is_file():
        return trx_path
    from trx_nipype.core import load, save

    root.mkdir(parents=True, exist_ok=True)
    n = max(100, int(round(generate.FULL_STREAMLINES * scale)))
    print(f"generating {n} streamlines into {root}", file=sys.stderr)
    generate.write_dataset(root, n, seed, trk=False, tck=False)
    with load(root / "dir.trx") as trx:
        save(trx, trx_path)  # atomic: a temporary sibling, renamed
    shutil.rmtree(root / "dir.trx")
    return trx_path


def check_page(page: Path, other: dict) -> list[str]:
    """Differences between the page's counts and mean lengths and the other side's."""
    import html
    import re

    text = page.read_text(encoding="utf-8")
    problems = []
    if f"<dt>streamlines</dt><dd>{other['nb_streamlines']:,}</dd>" not in text:
        problems.append(f"page does not say {other['nb_streamlines']:,} streamlines")
    for group, (count, mean) in other["groups"].items():
        found = re.search(rf"</span>{re.escape(html.escape(group))}</td><td class=\"num\">"
                          rf"([\d,]+)</td><td class=\"num\">([\d.]+)</td>", text)
        if not found:
            problems.append(f"group {group} not on the page")
        elif int(found.group(1).replace(",", "")) != count or \
                abs(float(found.group(2)) - mean) > 0.051:
            problems.append(f"group {group}: page {found.groups()}, dipy {count} {mean:.3f}")
    return problems


def _run(side: str, data: Path, out_dir: Path, before: Path | None = None
         ) -> dict[str, float]:
    env = {**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg"}
    if side == "ours":
        exe = shutil.which("trx-nipype") or ""
        cmd = [exe, "report", str(data), "-o", str(out_dir / "page.html")] if exe else \
            [sys.executable, "-m", "trx_nipype.cli.main", "report", str(data), "-o",
             str(out_dir / "page.html")]
    elif side == "before":  # an earlier source tree, the same command (-P: not the
        # current folder's trx_nipype first on the path, which -m would put there)
        cmd = [sys.executable, "-P", "-m", "trx_nipype.cli.main", "report", str(data), "-o",
               str(out_dir / "before.html")]
        env["PYTHONPATH"] = str(before)
    else:
        cmd = [sys.executable, "-c", _OTHER, str(data), str(out_dir / "other.png")]
    proc, result = _timed(cmd, env, 900, side)
    if side == "other":
        (out_dir / "other.json").write_text(proc.stdout.strip().splitlines()[-1],
                                            encoding="utf-8")
    return result


def _timed(cmd: list[str], env: dict[str, str], timeout: float, what: str
           ) -> tuple[subprocess.CompletedProcess, dict[str, float]]:
    """Run ``cmd``: wall and CPU seconds (its children's included), peak anonymous MB."""
    t0 = time.monotonic()
    before = os.times()
    proc, sampler = run_child(cmd, env=env, timeout=timeout)
    after = os.times()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + \
        (after.children_system - before.children_system)
    peak = max((v for _, v in sampler.samples), default=0)
    return proc, {"wall": wall, "cpu": cpu, "peak_anon_mb": peak / MB}


def batch_output(subjects: int, bundles: int, data_dir: Path | None) -> Path:
    """A ``trx-nipype run --no-report`` output folder of ``batch.py``'s data set (reused)."""
    import batch

    root = Path(data_dir or HERE / "data") / f"batch-{subjects}x{bundles}"
    dataset = batch.make_dataset(root / "dataset", subjects, bundles)
    out = root / "out"
    stamp = out / "dataset_description.json"
    if not stamp.is_file() or stamp.stat().st_mtime < (dataset / "manifest.json").stat().st_mtime:
        exe = str(Path(sys.executable).with_name("trx-nipype"))
        print(f"running {subjects} x {bundles} into {out}", file=sys.stderr)
        subprocess.run([exe, "run", str(dataset), "--output-dir", str(out), "--no-report",
                        "-q"], check=True, env={**os.environ, "NIPYPE_NO_ET": "1"})
    return out


def _run_batch(side: str, out: Path, cache: Path, before: Path | None) -> dict[str, float]:
    """``trx-nipype report OUT`` (``side``: ``one``, ``auto``, ``cached`` or ``before``)."""
    # -P: the package of PYTHONPATH (``before``) or the installed one, never the current
    # folder's, which -m would put first on the path
    cmd = [sys.executable, "-P", "-m", "trx_nipype.cli.main", "report", str(out), "-q"]
    env = {**os.environ, "NIPYPE_NO_ET": "1", "TRX_NIPYPE_CACHE_DIR": str(cache)}
    if side == "one":
        cmd += ["--nprocs", "1"]
    if side == "before":
        env["PYTHONPATH"] = str(before)
    return _timed(cmd, env, 1800, f"batch report {side}")[1]


def measure_batch(out: Path, reps: int, before: Path | None
                  ) -> tuple[dict[str, list[dict[str, float]]], list[str]]:
    """Interleaved runs of each side; problems if the sides' pages or figures differ."""
    sides = ["one", "auto", "cached"] + (["before"] if before else [])
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in sides}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-report-batch-") as tmp:
        warm = Path(tmp) / "warm"  # the cached side's: filled once, then every rerun uses it
        _run_batch("auto", out, warm, before)
        for rep in range(reps):
            order = sides[rep % len(sides):] + sides[:rep % len(sides)]
            for side in order:
                cache = warm if side == "cached" else Path(tmp) / f"{side}-{rep}"
                result = _run_batch(side, out, cache, before)
                runs[side].append(result)
                print(f"  rep {rep + 1} batch {side:6s} {result['wall']:6.2f} s wall, "
                      f"{result['cpu']:6.2f} s cpu, {result['peak_anon_mb']:6.0f} MB anon",
                      file=sys.stderr)
                if side in ("one", "auto", "cached"):
                    digest = _report_digest(out)
                    if runs.get("_digest") is None:
                        runs["_digest"] = digest  # type: ignore[assignment]
                    elif runs["_digest"] != digest:
                        problems.append(f"{side}: other bytes than the first run")
    runs.pop("_digest", None)
    return runs, problems


def _report_digest(out: Path) -> str:
    """SHA-256 of the page, qc.tsv and every figure (names and bytes)."""
    import hashlib

    digest = hashlib.sha256()
    for path in [out / "report.html", out / "qc.tsv", *sorted((out / "figures").iterdir())]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def batch_lines(subjects: int, bundles: int, runs: dict[str, list[dict[str, float]]],
                problems: list[str], figures: int) -> list[str]:
    """The batch report's table (markdown lines)."""
    stats = {s: {k: Stats([r[k] for r in rows]) for k in ("wall", "cpu", "peak_anon_mb")}
             for s, rows in runs.items()}
    names = {"one": "every figure drawn, one process (`--nprocs 1`)",
             "auto": "every figure drawn, default (a process per CPU)",
             "cached": "rerun, nothing changed (cache: nothing drawn)",
             "before": "every figure drawn, before (`--before`)"}
    lines = ["", f"## `trx-nipype report OUT_DIR`: {subjects} subjects x {bundles} bundles "
                 f"({figures} figures), {len(runs['one'])} runs each", "",
             "| side | wall s (median ±) | cpu s (user+sys) | peak anon MB (main process) |",
             "|---|---:|---:|---:|"]
    for side, st in stats.items():
        lines.append(f"| {names[side]} | {st['wall'].median:.2f} ±{st['wall'].spread:.0%} | "
                     f"{st['cpu'].median:.2f} | {max(st['peak_anon_mb'].values):.0f} |")
    if "before" in stats:
        b = stats["before"]
        lines += ["", "Ratio before / after: "
                  + ", ".join(f"{names[s].split(',')[1].strip()} wall "
                              f"{b['wall'].median / stats[s]['wall'].median:.1f}x, cpu "
                              f"{b['cpu'].median / stats[s]['cpu'].median:.1f}x"
                              for s in ("one", "auto")) + "."]
    lines += ["", "Same bytes (page, qc.tsv, figures) on every run of ours: "
              + ("; ".join(problems) if problems else "ok")]
    return lines



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="1.0 = 1M streamlines (the target); 0.05 for a quick run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--no-other", action="store_true", help="only trx-nipype")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where report.json and report.md go")
    parser.add_argument("--batch", type=int, nargs=2, metavar=("SUBJECTS", "BUNDLES"),
                        help="also the report of a batch run's output folder")
    parser.add_argument("--before", type=Path, metavar="SRC",
                        help="an earlier trx-nipype source tree, run beside ours")
    parser.add_argument("--no-file", action="store_true",
                        help="only the batch report (with --batch)")
    args = parser.parse_args(argv)
    if args.no_file:
        if not args.batch:
            parser.error("--no-file needs --batch")
        return _batch_only(args)

    data = data_set(args.scale, args.data_dir, args.seed)
    sides = (["ours"] if args.no_other else ["ours", "other"]) + \
        (["before"] if args.before else [])
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in sides}
    with open(data, "rb") as fh:  # warm page cache, for both sides alike
        while fh.read(64 * MB):
            pass
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        for rep in range(args.reps):
            order = sides[rep % len(sides):] + sides[:rep % len(sides)]
            for side in order:
                result = _run(side, data, Path(tmp), args.before)
                runs[side].append(result)
                print(f"  rep {rep + 1} {side:5s} {result['wall']:6.2f} s wall, "
                      f"{result['cpu']:6.2f} s cpu, {result['peak_anon_mb']:6.0f} MB anon",
                      file=sys.stderr)
        page_mb = (Path(tmp) / "page.html").stat().st_size / MB
        problems = [] if args.no_other else check_page(
            Path(tmp) / "page.html", json.loads((Path(tmp) / "other.json").read_text()))
    summary = {s: {k: Stats([r[k] for r in runs[s]]) for k in ("wall", "cpu", "peak_anon_mb")}
               for s in sides}
    ours = summary["ours"]
    ok_time = ours["wall"].median <= TARGET_SECONDS
    ok_mem = max(ours["peak_anon_mb"].values) <= TARGET_ANON_MB
    lines = [
        f"# `trx-nipype report` on {data.stat().st_size / 1e9:.2f} GB "
        f"(scale {args.scale:g}), {args.reps} runs each",
        "",
        "| side | wall s (median ±) | cpu s | peak anon MB (max) | target |",
        "|---|---:|---:|---:|---|",
        f"| trx-nipype report | {ours['wall'].median:.2f} ±{ours['wall'].spread:.0%} | "
        f"{ours['cpu'].median:.2f} | {max(ours['peak_anon_mb'].values):.0f} | "
        f"<= {TARGET_SECONDS:g} s {'ok' if ok_time else 'MISSED'}, <= {TARGET_ANON_MB:g} MB "
        f"{'ok' if ok_mem else 'MISSED'} |",
    ]
    if "other" in summary:
        other = summary["other"]
        lines.append(f"| trx-python + dipy + matplotlib script | {other['wall'].median:.2f} "
                     f"±{other['wall'].spread:.0%} | {other['cpu'].median:.2f} | "
                     f"{max(other['peak_anon_mb'].values):.0f} | |")
        wall = ours["wall"].median / other["wall"].median
        anon = max(ours["peak_anon_mb"].values) / max(other["peak_anon_mb"].values)
        lines += ["", f"Ratio ours / other: wall {wall:.2f}x, peak anon {anon:.2f}x."]
    if "before" in summary:
        b = summary["before"]
        lines[5:5] = [f"| trx-nipype report, before (`--before`) | {b['wall'].median:.2f} "
                      f"±{b['wall'].spread:.0%} | {b['cpu'].median:.2f} | "
                      f"{max(b['peak_anon_mb'].values):.0f} | |"]
        lines += ["", f"Ratio before / ours: wall {b['wall'].median / ours['wall'].median:.2f}x"
                      f", cpu {b['cpu'].median / ours['cpu'].median:.2f}x, peak anon "
                      f"{max(b['peak_anon_mb'].values) / max(ours['peak_anon_mb'].values):.2f}x."]
    lines += ["", f"Page: {page_mb:.2f} MB, self-contained. End to end, in a fresh process "
                  "(interpreter start and imports included), warm page cache. Check against "
                  "the other side (streamlines, each group's count and mean length by dipy): "
                  + ("; ".join(problems) if problems else "ok" if not args.no_other
                     else "not run")]
    payload = {"machine": machine_info(), "scale": args.scale, "seed": args.seed,
               "data_bytes": data.stat().st_size, "page_bytes": int(page_mb * MB),
               "runs": runs, "targets": {"seconds": TARGET_SECONDS, "anon_mb": TARGET_ANON_MB},
               "ok": {"time": ok_time, "memory": ok_mem, "check": not problems},
               "problems": problems}
    if args.batch:
        batch, batch_problems = _batch(args)
        lines += batch.pop("lines")
        payload["batch"] = batch
        payload["ok"]["batch_check"] = not batch_problems
        problems = problems + batch_problems
    text = "\n".join(lines) + "\n"
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "report.md").write_text(text, encoding="utf-8")
    (args.results / "report.json").write_text(json.dumps(payload, indent=1) + "\n",
                                              encoding="utf-8")
    return 0 if ok_time and ok_mem and not problems else 1


def _batch(args: argparse.Namespace) -> tuple[dict, list[str]]:
    subjects, bundles = args.batch
    out = batch_output(subjects, bundles, args.data_dir)
    runs, problems = measure_batch(out, args.reps, args.before)
    figures = len(list((out / "figures").iterdir()))
    return {"subjects": subjects, "bundles": bundles, "figures": figures, "runs": runs,
            "lines": batch_lines(subjects, bundles, runs, problems, figures)}, problems


def _batch_only(args: argparse.Namespace) -> int:
    """``--batch S B --no-file``: the batch report alone, into ``report-batch.md/json``."""
    batch, problems = _batch(args)
    text = "\n".join(batch.pop("lines")).lstrip("\n") + "\n"
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "report-batch.md").write_text(text, encoding="utf-8")
    (args.results / "report-batch.json").write_text(
        json.dumps({"machine": machine_info(), **batch, "problems": problems}, indent=1) + "\n",
        encoding="utf-8")
    return 0 if not problems else 1


if __name__ == "__main__":
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    sys.exit(main())
