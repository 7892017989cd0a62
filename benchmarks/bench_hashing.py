"""Hashing cost of a cached Nipype rerun over TRX inputs: trx-nipype's spec vs Nipype's own.

A cached rerun of a workflow still hashes every node's inputs to decide that
nothing has to run. This measures that cost for ``n_inputs`` TRX inputs
(half directories, half stored ``.trx`` zips) of ``total_bytes`` in all:

- ``ours_timestamp``: :class:`~trx_nipype.interfaces._traits.TrxInputSpec`
  under ``hash_method = timestamp`` (a ``stat`` per member);
- ``ours_content``: the same under ``content`` with a warm digest cache (a
  ``stat`` and a tiny read per member); ``ours_content_cold`` is the first run
  (every byte read once, as any content hash must);
- ``nipype_timestamp`` / ``nipype_content``: plain ``File`` (zips) and
  ``Directory`` (dirs) traits. Nipype's content method md5s every zip whole on
  every run -- twice, once for each of the two lists ``get_hashval`` builds --
  and hashes directories by their path only (a directory changed in place is
  not seen: the ``nipype_*_sees_dir_change`` fields say so).

Usage::

    python benchmarks/bench_hashing.py --size-mb 200      # quick check
    python benchmarks/bench_hashing.py --size-mb 2000     # the figure of the issue

or ``from bench_hashing import run_hashing_benchmark``. Times are medians of
``repeats`` runs, page cache warm (the realistic case for a rerun: the data was
just written or read; a cold cache only makes the content re-reads slower).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NIPYPE_NO_ET", "1")

import numpy as np  # noqa: E402
from nipype.interfaces.base import (  # noqa: E402
    BaseInterfaceInputSpec,
    Directory,
    File,
    InputMultiObject,
)

from trx_nipype.core import TrxFile, save  # noqa: E402
from trx_nipype.interfaces import _hashing  # noqa: E402
from trx_nipype.interfaces._traits import TrxInputSpec, TrxPathList  # noqa: E402


class _OursSpec(TrxInputSpec):
    in_dirs = TrxPathList(desc="TRX directories")
    in_zips = TrxPathList(desc="TRX zips")


class _NipypeSpec(BaseInterfaceInputSpec):
    in_dirs = InputMultiObject(Directory(exists=True), desc="TRX directories")
    in_zips = InputMultiObject(File(exists=True), desc="TRX zips")


def make_inputs(folder: Path, total_bytes: int, n_inputs: int = 8) -> tuple[list[str], list[str]]:
    """Write ``n_inputs`` TRX of ``total_bytes`` in all (float32 positions + a dpv)."""
    per_input = total_bytes // n_inputs
    vertices = max(per_input // 16, 8)  # 12 bytes of positions + 4 of dpv per vertex
    lengths = np.full(vertices // 100, 100, dtype=np.int64)
    lengths[-1] += vertices - int(lengths.sum())
    dirs, zips = [], []
    for i in range(n_inputs):
        positions = np.zeros((vertices, 3), np.float32)
        positions[:, 0] = i  # distinct content per input
        trx = TrxFile.from_arrays(positions, lengths=lengths,
                                  dpv={"fa": np.full(vertices, i, np.float32)},
                                  groups={"all": np.arange(len(lengths), dtype=np.uint32)})
        is_dir = i % 2 == 0
        path = folder / (f"sub-{i:02d}" if is_dir else f"sub-{i:02d}.trx")
        save(trx, path)
        (dirs if is_dir else zips).append(str(path))
        del positions, trx
    return dirs, zips


def _time(fn: Any, repeats: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def _bytes(paths: list[str]) -> int:
    total = 0
    for p in map(Path, paths):
        total += p.stat().st_size if p.is_file() else sum(
            f.stat().st_size for f in p.rglob("*") if f.is_file())
    return total


def run_hashing_benchmark(total_bytes: int = 2_000_000_000, workdir: str | None = None,
                          n_inputs: int = 8, repeats: int = 5,
                          keep: bool = False) -> dict[str, Any]:
    """Measure the hashing cost of a cached rerun; return the figures.

    Parameters
    ----------
    total_bytes : int
        Size of all the TRX inputs together.
    workdir : str, optional
        Where to write the inputs and the digest cache (default: a temp dir).
    n_inputs : int
        Number of inputs (even ones are directories, odd ones zips).
    repeats : int
        Timed runs per method (the median is reported).
    keep : bool
        Keep the data (else it is removed at the end).

    Returns
    -------
    dict
        Seconds per method (``ours_timestamp``, ``ours_content``,
        ``ours_content_cold``, ``nipype_timestamp``, ``nipype_content``), bytes
        read by our cached content rerun, the data size, and whether each
        method sees a directory member changed in place.
    """
    root = Path(workdir or tempfile.mkdtemp(prefix="bench-hashing-"))
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    old_env = os.environ.get(_hashing.CACHE_ENV)
    _hashing.set_digest_cache_dir(root / "digest-cache")
    try:
        t0 = time.perf_counter()
        dirs, zips = make_inputs(data, total_bytes, n_inputs)
        written = time.perf_counter() - t0
        # digests are stored only for files older than the racy window
        time.sleep(_hashing.RACY_WINDOW_NS / 1e9 + 0.1)
        ours = _OursSpec(in_dirs=dirs, in_zips=zips)
        plain = _NipypeSpec(in_dirs=dirs, in_zips=zips)

        _hashing.reset_stats()
        t0 = time.perf_counter()
        ours.get_hashval("content")
        cold = time.perf_counter() - t0
        cold_read = _hashing.STATS["bytes_read"]

        out: dict[str, Any] = {"total_bytes": _bytes(dirs + zips), "n_inputs": n_inputs,
                               "write_seconds": round(written, 3),
                               "ours_content_cold": cold, "ours_content_cold_bytes": cold_read}
        _hashing.reset_stats()
        out["ours_content"], _ = _time(lambda: ours.get_hashval("content"), repeats)
        out["ours_content_bytes_read"] = _hashing.STATS["bytes_read"]
        out["ours_timestamp"], _ = _time(lambda: ours.get_hashval("timestamp"), repeats)
        out["nipype_timestamp"], _ = _time(lambda: plain.get_hashval("timestamp"), repeats)
        out["nipype_content"], _ = _time(lambda: plain.get_hashval("content"),
                                         max(1, min(repeats, 3)))

        # does each method see a member of a directory changed in place?
        before = {m: (ours.get_hashval(m)[1], plain.get_hashval(m)[1])
                  for m in ("timestamp", "content")}
        member = Path(dirs[0]) / "dpv" / "fa.float32"
        with open(member, "r+b") as fh:
            fh.write(b"\x01\x02\x03\x04")
        st = member.stat()
        os.utime(member, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        for m, (o, p) in before.items():
            out[f"ours_{m}_sees_dir_change"] = ours.get_hashval(m)[1] != o
            out[f"nipype_{m}_sees_dir_change"] = plain.get_hashval(m)[1] != p
        return out
    finally:
        if old_env is None:
            os.environ.pop(_hashing.CACHE_ENV, None)
        else:
            os.environ[_hashing.CACHE_ENV] = old_env
        if not keep and workdir is None:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the figures as JSON (and a short table)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=2000.0,
                        help="total size of the TRX inputs (MB)")
    parser.add_argument("--inputs", type=int, default=8, help="number of inputs")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method")
    parser.add_argument("--workdir", default=None, help="where to write (default: temp)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    res = run_hashing_benchmark(int(args.size_mb * 1e6), args.workdir, args.inputs,
                                args.repeats)
    gb = res["total_bytes"] / 1e9
    print(f"cached-rerun hashing of {res['n_inputs']} TRX inputs, {gb:.2f} GB:")
    for key in ("ours_timestamp", "ours_content", "ours_content_cold", "nipype_timestamp",
                "nipype_content"):
        print(f"  {key:20s} {res[key] * 1000:10.2f} ms")
    print(f"  bytes read by a cached content rerun (ours): {res['ours_content_bytes_read']}")
    for m in ("timestamp", "content"):
        print(f"  {m}: dir member changed in place seen by ours: "
              f"{res[f'ours_{m}_sees_dir_change']}, by nipype: "
              f"{res[f'nipype_{m}_sees_dir_change']}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
