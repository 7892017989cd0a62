"""Side-by-side conversion timings: ours vs trx-python's ``convert_tractogram``.

Importable (``benchmarks/run.py`` may call :func:`convert_ours`,
:func:`convert_theirs`, :func:`make_inputs` and :func:`bench`) and runnable::

    python benchmarks/bench_convert.py --streamlines 150000 [--workdir DIR] [--repeats 1]

Four directions are timed: TRK->TRX, TCK->TRX, TRX->TRK, TRX->TCK. The
synthetic inputs (random walks inside a 1.25 mm grid, one dpv and one dps) are
made once; the page cache is warmed by reading each input before timing; each
timing covers reading the input and writing the output. trx-python's converter
goes through nibabel and a dipy StatefulTractogram (one Python object per
streamline); ours streams vectorised chunks.
"""

from __future__ import annotations

import argparse
import gc
import logging
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trx_nipype.core import TrxFile, save
from trx_nipype.core.converting import convert

log = logging.getLogger(__name__)

AFFINE = np.diag([1.25, 1.25, 1.25, 1.0])
DIMS = (145, 174, 145)
DIRECTIONS = (("trk", "trx"), ("tck", "trx"), ("trx", "trk"), ("trx", "tck"))


def make_inputs(workdir: str | Path, nb_streamlines: int, *, seed: int = 0,
                points: tuple[int, int] = (20, 80)) -> dict[str, Path]:
    """Write ``in.trx``, ``in.trk``, ``in.tck`` and ``ref.nii.gz`` of the same tractogram.

    Parameters
    ----------
    workdir : str or Path
        Folder for the inputs.
    nb_streamlines : int
    seed : int
    points : tuple of int
        Range of vertices per streamline.

    Returns
    -------
    dict of str to Path
        ``{"trx": ..., "trk": ..., "tck": ..., "ref": ...}``.
    """
    import nibabel as nib

    workdir = Path(workdir)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(points[0], points[1], nb_streamlines)
    v = int(lengths.sum())
    steps = rng.normal(0, 0.6, (v, 3)).astype(np.float32)
    starts = np.repeat(rng.uniform(40, 140, (nb_streamlines, 3)).astype(np.float32), lengths,
                       axis=0)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    walk = np.cumsum(steps, axis=0)
    walk -= np.repeat(walk[offsets], lengths, axis=0)
    pos = np.clip(starts + walk, 1, 170)
    trx = TrxFile.from_arrays(pos, lengths=lengths, affine=AFFINE, dimensions=DIMS,
                              dpv={"fa": rng.random(v).astype(np.float32)},
                              dps={"weight": rng.random(nb_streamlines).astype(np.float32)})
    paths = {"trx": save(trx, workdir / "in.trx")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths["trk"] = convert(paths["trx"], workdir / "in.trk", bbox_check=False)
        paths["tck"] = convert(paths["trx"], workdir / "in.tck", bbox_check=False)
    ref = workdir / "ref.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(DIMS, np.uint8), AFFINE), ref)
    paths["ref"] = ref
    return paths


def convert_ours(src: str | Path, dst: str | Path, reference: str | Path | None = None) -> None:
    """Our converter (bounding-box check on, as by default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(src, dst, reference=reference)


def convert_theirs(src: str | Path, dst: str | Path, reference: str | Path | None = None) -> None:
    """trx-python's ``trx.workflows.convert_tractogram`` (nibabel + dipy underneath)."""
    from trx.workflows import convert_tractogram

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert_tractogram(str(src), str(dst), str(reference) if reference else None,
                           pos_dtype="float32", offsets_dtype="uint64")


def _timed(fn: Callable[[], None], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def bench(nb_streamlines: int = 150_000, workdir: str | Path | None = None,
          repeats: int = 1) -> list[dict[str, float | str]]:
    """Time every direction on both sides; return one row per direction.

    Returns
    -------
    list of dict
        ``{"direction", "ours_s", "theirs_s", "ratio"}`` (ratio = theirs / ours).
    """
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="bench-convert-")) if own else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, float | str]] = []
    try:
        inputs = make_inputs(root, nb_streamlines)
        for src_fmt, dst_fmt in DIRECTIONS:
            src = inputs[src_fmt]
            ref = inputs["ref"] if src_fmt == "tck" else None
            _warm(src)
            times = {}
            for side, fn in (("ours", convert_ours), ("theirs", convert_theirs)):
                dst = root / f"{side}-{src_fmt}.{dst_fmt}"
                times[side] = _timed(lambda fn=fn, dst=dst, src=src, ref=ref: fn(src, dst, ref),
                                     repeats)
            rows.append({"direction": f"{src_fmt.upper()}->{dst_fmt.upper()}",
                         "ours_s": times["ours"], "theirs_s": times["theirs"],
                         "ratio": times["theirs"] / times["ours"]})
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streamlines", type=int, default=150_000)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    rows = bench(args.streamlines, args.workdir, args.repeats)
    print(f"{'direction':<10} {'ours (s)':>9} {'trx-python (s)':>15} {'speed-up':>9}")
    for r in rows:
        print(f"{r['direction']:<10} {r['ours_s']:>9.2f} {r['theirs_s']:>15.2f} "
              f"{r['ratio']:>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
