"""Every benchmarked operation at 10M streamlines / 1B vertices, in bounded memory and disk.

Usage::

    python benchmarks/scale_run.py [--streamlines 10000000] [--data-dir DIR] [--max-disk-gb 40]

Ours only (trx-python needs memory in proportion to the data for several of
these: 4 GB for a conversion at 1M streamlines), each operation in a fresh
process timed and sampled as ``run.py`` does (wall, CPU, peak anonymous
memory). The data are made in the order the operations need them and deleted
as soon as no operation needs them, so that the disk used never passes
``--max-disk-gb`` (checked before each step; the machine is shared). To fit,
the 10M data set carries no data per vertex (``dpv/fa``: 4 GB more per copy);
everything else is as in the 1M suite: ``dps/weight``, two overlapping
groups, a dpg entry. The concatenation joins the 10M file and the 1% file
(100k streamlines), and trx-python's own zip (``tpy_stored.trx``) is written
by its ``zip_from_folder``, the function its ``save`` ends with. Not run:
loading a deflated zip written by trx-python (its deflate of 12 GB takes
longer than the rest of the run).

Results: ``benchmarks/results/scale10m.json`` and ``scale10m.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _measure  # noqa: E402
import _ops  # noqa: E402
import generate  # noqa: E402
import run  # noqa: E402

GB = 1e9


def _size(path: Path) -> int:
    return run._size(path)


class Disk:
    """Bytes this run holds under ``root`` (the budget it must stay within)."""

    def __init__(self, root: Path, budget: float) -> None:
        self.root, self.budget, self.peak = root, budget, 0

    def used(self) -> int:
        return _size(self.root)

    def note(self, extra: int = 0) -> None:
        used = self.used() + extra
        self.peak = max(self.peak, used)
        if used > self.budget:
            raise SystemExit(f"disk budget passed: {used / GB:.1f} GB under {self.root}")


def _rm(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def measure(op_name: str, root: Path, out: Path, disk: Disk, keep: Path | None = None
            ) -> dict[str, Any]:
    """One operation of ours in a fresh process; its output kept as ``keep`` or deleted."""
    op = _ops.OPS_BY_NAME[op_name]
    t = time.perf_counter()
    res = run.run_side(op, "ours", root, out, timeout=7200)
    res["op"], res["label"] = op_name, op.label
    res["out_gb"] = _size(out) / GB if out.exists() else 0.0
    disk.note()
    if keep is not None and out.exists():
        out.rename(keep)
    else:
        _rm(out)
    status = res.get("error") or (f"{res['wall']:.1f} s wall, {res['cpu']:.1f} s CPU, peak anon "
                                  f"{res['peak_mb']:.0f} MB")
    print(f"{op_name:22s} {status}  [{time.perf_counter() - t:.0f} s; disk "
          f"{disk.used() / GB:.1f} GB]", file=sys.stderr, flush=True)
    return res


def tpy_zip(folder: Path, dest: Path) -> None:
    """trx-python's zip of a TRX folder (the last step of its ``save``), stored."""
    import zipfile

    from trx.trx_file_memmap import zip_from_folder

    zip_from_folder(str(folder), str(dest), zipfile.ZIP_STORED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streamlines", type=int, default=10_000_000)
    parser.add_argument("--data-dir", type=Path, default=generate.DEFAULT_DATA_DIR)
    parser.add_argument("--max-disk-gb", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--keep", action="store_true", help="keep the data at the end")
    args = parser.parse_args(argv)
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    n = args.streamlines
    root = args.data_dir / f"scale-{n // 1_000_000}M-seed-{args.seed}"
    _rm(root)
    root.mkdir(parents=True)
    out = root / "out"
    out.mkdir()
    disk = Disk(root, args.max_disk_gb * GB)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        t = time.perf_counter()
        n, v = generate.write_dataset(root, n, args.seed, trk=False, tck=False, dpv=False)
        generate.write_reference(root / "reference.nii.gz")
        ds = generate.Dataset(root=str(root), scale=n / generate.FULL_STREAMLINES,
                              seed=args.seed, nb_streamlines=n, nb_vertices=v)
        (root / "manifest.json").write_text(json.dumps(asdict(ds)), encoding="utf-8")
        print(f"generated {n} streamlines, {v} vertices in {time.perf_counter() - t:.0f} s",
              file=sys.stderr, flush=True)
        disk.note()
        tpy_zip(root / "dir.trx", root / "tpy_stored.trx")
        disk.note()
        rows.append(measure("convert_dir_trx", root, out / "o.trx", disk,
                            keep=root / "stored.trx"))
        _rm(root / "dir.trx")
        # the 1% data set: the lazy-load size check and the second input of concatenate
        small = root / "small"
        small.mkdir()
        generate.write_dataset(small, max(100, n // 100), args.seed + 1, trk=False,
                               tck=False, log=False, dpv=False)
        (small / "dir.trx").rename(root / "dir.trx")
        from trx_nipype.core import load, save

        with load(root / "dir.trx") as trx:
            save(trx, root / "small.trx")
        tpy_zip(root / "dir.trx", root / "tpy_small.trx")
        _rm(small)
        for name in ("lazy_load", "lazy_load@tpy", "load_read", "load_read@tpy"):
            rows.append(measure(name, root, out / "o.bin", disk))
        for name in ("save_stored", "save_stored@tpy", "select_save", "select_save@tpy",
                     "group_save", "group_save@tpy", "concat_save", "concat_save@tpy",
                     "save_deflate@tpy", "convert_trx_trk@tpy", "convert_trx_tck@tpy"):
            rows.append(measure(name, root, out / f"o{_ops.OPS_BY_NAME[name].output}", disk))
        _rm(root / "tpy_stored.trx")
        _rm(root / "tpy_small.trx")
        rows.append(measure("convert_trx_trk", root, out / "o.trk", disk, keep=root / "data.trk"))
        rows.append(measure("convert_trk_trx", root, out / "o.trx", disk))
        _rm(root / "data.trk")
        rows.append(measure("convert_trx_tck", root, out / "o.tck", disk, keep=root / "data.tck"))
        rows.append(measure("convert_tck_trx", root, out / "o.trx", disk))
        _rm(root / "data.tck")
        rows.append(measure("save_deflate", root, out / "o.trx", disk,
                            keep=root / "deflated.trx"))
        _rm(root / "stored.trx")
        rows.append(measure("load_deflate", root, out / "o.bin", disk))
    finally:
        report = {"machine": _measure.machine_info(), "nb_streamlines": n,
                  "nb_vertices": locals().get("v"), "peak_disk_gb": disk.peak / GB,
                  "elapsed_s": time.perf_counter() - started, "rows": rows}
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "scale10m.json").write_text(json.dumps(report, indent=1, default=str),
                                                   encoding="utf-8")
        (args.results / "scale10m.md").write_text(markdown(report), encoding="utf-8")
        if not args.keep:
            _rm(root)
    print(markdown(report))
    return 0 if all("error" not in r for r in rows) else 1


def markdown(report: dict[str, Any]) -> str:
    """The table of the 10M run."""
    m = report["machine"]
    v = report.get("nb_vertices") or 0
    lines = [f"{report['nb_streamlines']:,} streamlines, {v:,} vertices ({v * 12 / GB:.1f} GB "
             f"float32 positions), no data per vertex; {m['cpu']}, {m['cores']} cores, "
             f"{m['ram_gb']} GB RAM, load average {m['load_avg']} at the end (a shared machine); "
             f"{m['date']}. Ours only, one run each, in a fresh process. Peak disk used by the "
             f"run {report['peak_disk_gb']:.1f} GB; total {report['elapsed_s'] / 60:.0f} min.",
             "", "| operation | wall s | CPU s | peak anon MB | output GB |",
             "|---|---:|---:|---:|---:|"]
    for r in report["rows"]:
        if "error" in r:
            lines.append(f"| {r['label']} | ERROR: {r['error'][:80]} | | | |")
            continue
        lines.append(f"| {r['label']} | {r['wall']:.1f} | {r['cpu']:.1f} | "
                     f"{r['peak_mb']:.0f} | {r['out_gb']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
