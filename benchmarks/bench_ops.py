"""Side-by-side timings: concatenate + save and select 10% + save, ours vs trx-python.

Importable (``benchmarks/run.py`` calls these functions) and runnable::

    python benchmarks/bench_ops.py --streamlines 200000 [--workdir DIR] [--repeats 1]

The synthetic input is written by ``TrxFile.empty`` + ``append`` + ``save`` one
block of streamlines at a time (bounded memory at any size). Both sides start
from the same files, with the page cache warmed by one read of each input
before timing; each timing covers load, the operation and writing the output.
"""

from __future__ import annotations

import argparse
import gc
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trx_nipype.core import TrxFile, concatenate, load, save

log = logging.getLogger(__name__)

SELECT_FRACTION = 0.10
_BLOCK = 50_000  # streamlines generated per block


def synthetic_trx(path: str | Path, nb_streamlines: int, *, seed: int = 0,
                  points: tuple[int, int] = (50, 150)) -> Path:
    """Write a seeded random-walk tractogram with a dps, a dpv, two groups and a dpg.

    Parameters
    ----------
    path : str or Path
        Destination (``.trx`` zip, stored).
    nb_streamlines : int
        Number of streamlines; each has ``points`` (min, max) vertices.
    seed : int
        Random seed (the same seed gives the same bytes).
    points : tuple of int
        Range of vertices per streamline.

    Returns
    -------
    Path
        ``path``.
    """
    rng = np.random.default_rng(seed)
    affine = np.diag([1.25, 1.25, 1.25, 1.0])
    with TrxFile.empty(nb_streamlines, nb_streamlines * sum(points) // 2,
                       affine=affine, dimensions=(145, 174, 145)) as out:
        for start in range(0, max(nb_streamlines, 1), _BLOCK):
            n = min(_BLOCK, nb_streamlines - start)
            if n <= 0:
                break
            lengths = rng.integers(points[0], points[1], n)
            v = int(lengths.sum())
            steps = rng.normal(scale=0.5, size=(v, 3)).astype(np.float32)
            positions = np.cumsum(steps, axis=0, dtype=np.float32) + 90
            ids = np.arange(start, start + n)
            block = TrxFile.from_arrays(
                positions, lengths=lengths, affine=affine, dimensions=(145, 174, 145),
                dps={"weight": rng.random(n).astype(np.float32)},
                dpv={"fa": rng.random(v).astype(np.float32)},
                groups={"CST_L": np.flatnonzero(ids % 3 == 0).astype(np.uint32),
                        "AF_L": np.flatnonzero(ids % 5 == 0).astype(np.uint32)},
                dpg={"CST_L": {"volume": np.array([12.5], np.float32)}})
            out.append(block)
        return save(out, path)


def _warm(*paths: Path) -> None:
    """Read each file once so both sides start from the same page cache."""
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 24):
                pass


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ours_concatenate(a: Path, b: Path, out: Path) -> float:
    """Seconds for ``concatenate([a, b], out)`` (one streaming pass)."""
    return _timed(lambda: concatenate([a, b], out))


def theirs_concatenate(a: Path, b: Path, out: Path) -> float:
    """Seconds for trx-python's load + ``concatenate`` + ``save``."""
    import trx.trx_file_memmap as tmm

    def run() -> None:
        ta, tb = tmm.load(str(a)), tmm.load(str(b))
        result = tmm.concatenate([ta, tb], delete_groups=True)  # it cannot keep the groups
        tmm.save(result, str(out))
        for t in (result, ta, tb):
            t.close()
    return _timed(run)


def selection(nb_streamlines: int, seed: int = 99) -> np.ndarray:
    """A sorted, seeded 10% of the streamline indices."""
    rng = np.random.default_rng(seed)
    k = int(nb_streamlines * SELECT_FRACTION)
    return np.sort(rng.choice(nb_streamlines, size=k, replace=False))


def ours_select(path: Path, indices: np.ndarray, out: Path) -> float:
    """Seconds for ``load`` + ``select`` + ``save``."""
    def run() -> None:
        with load(path) as trx:
            save(trx.select(indices), out)
    return _timed(run)


def theirs_select(path: Path, indices: np.ndarray, out: Path) -> float:
    """Seconds for trx-python's load + ``select`` + ``save``."""
    import trx.trx_file_memmap as tmm

    def run() -> None:
        trx = tmm.load(str(path))
        sub = trx.select(indices, keep_group=True)
        tmm.save(sub, str(out))
        sub.close()
        trx.close()
    return _timed(run)


def compare(nb_streamlines: int, workdir: str | Path | None = None, *, repeats: int = 1,
            keep: bool = False) -> dict[str, float]:
    """Time both operations on both sides; return seconds and ratios (theirs / ours).

    Parameters
    ----------
    nb_streamlines : int
        Streamlines per input file (two inputs are concatenated).
    workdir : str or Path, optional
        Where to write inputs and outputs (a temporary folder by default).
    repeats : int
        Timings per measurement; the best is kept.
    keep : bool
        Keep ``workdir``'s files (removed by default when it was temporary).

    Returns
    -------
    dict
        ``concat_ours``, ``concat_theirs``, ``concat_ratio``, ``select_ours``,
        ``select_theirs``, ``select_ratio`` (seconds; ratio > 1 means faster).
    """
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="bench_ops-")) if own else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        log.info("writing two inputs of %d streamlines in %s", nb_streamlines, root)
        a = synthetic_trx(root / "a.trx", nb_streamlines, seed=1)
        b = synthetic_trx(root / "b.trx", nb_streamlines, seed=2)
        idx = selection(nb_streamlines)
        res: dict[str, float] = {}
        runs = {
            "concat_theirs": lambda: theirs_concatenate(a, b, root / "concat_theirs.trx"),
            "concat_ours": lambda: ours_concatenate(a, b, root / "concat_ours.trx"),
            "select_theirs": lambda: theirs_select(a, idx, root / "select_theirs.trx"),
            "select_ours": lambda: ours_select(a, idx, root / "select_ours.trx"),
        }
        for name, run in runs.items():
            _warm(a, b)
            res[name] = min(run() for _ in range(max(1, repeats)))
            log.info("%s: %.2f s", name, res[name])
        res["concat_ratio"] = res["concat_theirs"] / res["concat_ours"]
        res["select_ratio"] = res["select_theirs"] / res["select_ours"]
        res["input_mb"] = a.stat().st_size / 2**20
        return res
    finally:
        if own and not keep:
            shutil.rmtree(root, ignore_errors=True)


def report(res: dict[str, float]) -> str:
    """A small text table of :func:`compare`'s result."""
    lines = [f"input: {res['input_mb']:.0f} MB each",
             f"{'operation':<24}{'ours (s)':>10}{'trx-python (s)':>16}{'ratio':>8}"]
    for op, label in (("concat", "concatenate 2 + save"), ("select", "select 10% + save")):
        lines.append(f"{label:<24}{res[op + '_ours']:>10.2f}{res[op + '_theirs']:>16.2f}"
                     f"{res[op + '_ratio']:>7.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streamlines", type=int, default=200_000,
                        help="streamlines per input (1,000,000 ~ 1.2 GB of positions)")
    parser.add_argument("--workdir", default=None, help="folder for inputs and outputs")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("trx_nipype").setLevel(logging.WARNING)
    print(report(compare(args.streamlines, args.workdir, repeats=args.repeats,
                         keep=args.keep)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
