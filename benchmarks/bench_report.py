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

Usage::

    python benchmarks/bench_report.py --scale 1.0 [--reps 3] [--data-dir DIR] [--no-other]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def _run(side: str, data: Path, out_dir: Path) -> dict[str, float]:
    if side == "ours":
        exe = shutil.which("trx-nipype") or ""
        cmd = [exe, "report", str(data), "-o", str(out_dir / "page.html")] if exe else \
            [sys.executable, "-m", "trx_nipype.cli.main", "report", str(data), "-o",
             str(out_dir / "page.html")]
    else:
        cmd = [sys.executable, "-c", _OTHER, str(data), str(out_dir / "other.png")]
    env = {**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg"}
    t0 = time.monotonic()
    before = os.times()
    proc, sampler = run_child(cmd, env=env, timeout=900)
    after = os.times()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{side} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    peak = max((v for _, v in sampler.samples), default=0)
    cpu = (after.children_user - before.children_user) + \
        (after.children_system - before.children_system)
    if side == "other":
        (out_dir / "other.json").write_text(proc.stdout.strip().splitlines()[-1],
                                            encoding="utf-8")
    return {"wall": wall, "cpu": cpu, "peak_anon_mb": peak / MB}


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
    args = parser.parse_args(argv)

    data = data_set(args.scale, args.data_dir, args.seed)
    sides = ["ours"] if args.no_other else ["ours", "other"]
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in sides}
    with open(data, "rb") as fh:  # warm page cache, for both sides alike
        while fh.read(64 * MB):
            pass
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        for rep in range(args.reps):
            order = sides if rep % 2 == 0 else sides[::-1]
            for side in order:
                result = _run(side, data, Path(tmp))
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
    lines += ["", f"Page: {page_mb:.2f} MB, self-contained. End to end, in a fresh process "
                  "(interpreter start and imports included), warm page cache. Check against "
                  "the other side (streamlines, each group's count and mean length by dipy): "
                  + ("; ".join(problems) if problems else "ok" if not args.no_other
                     else "not run")]
    text = "\n".join(lines) + "\n"
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "report.md").write_text(text, encoding="utf-8")
    payload = {"machine": machine_info(), "scale": args.scale, "seed": args.seed,
               "data_bytes": data.stat().st_size, "page_bytes": int(page_mb * MB),
               "runs": runs, "targets": {"seconds": TARGET_SECONDS, "anon_mb": TARGET_ANON_MB},
               "ok": {"time": ok_time, "memory": ok_mem, "check": not problems},
               "problems": problems}
    (args.results / "report.json").write_text(json.dumps(payload, indent=1) + "\n",
                                              encoding="utf-8")
    return 0 if ok_time and ok_mem and not problems else 1


if __name__ == "__main__":
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    sys.exit(main())
