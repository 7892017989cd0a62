"""Seeded synthetic tractograms for the benchmarks, written in bounded memory.

At ``--scale 1.0``: 1,000,000 streamlines of 50-150 points (about 100M
vertices, 1.2 GB of float32 positions) with one dps key (``weight``), one dpv
key (``fa``), two overlapping groups (``CST_L``, ``AF_L``) and one dpg entry
(``dpg/CST_L/volume``). The same tractogram is written as

- ``dir.trx/``        TRX directory (written here, member by member),
- ``stored.trx``      TRX zip, stored members (by ``trx_nipype.core.save``),
- ``deflated.trx``    TRX zip, deflated members (idem),
- ``data.trk``        TrackVis (``fa`` as a scalar, ``weight`` as a property),
- ``data.tck``        MRtrix (positions only) and ``reference.nii.gz`` for it,
- ``small.trx``       a data set with 1% of the streamlines (lazy-load size check),
- ``tpy_stored.trx``, ``tpy_deflated.trx``, ``tpy_small.trx``: the same, written by
  trx-python's own ``save`` (what users have: members at whatever offset the
  zip headers leave them, not aligned).

The reference's origin (-90.25, -126.25, -72.25) mm makes trx-python's
``header.json`` of a length that leaves its positions at an offset that is not
a multiple of 4 (at scales 0.05, 1 and 10; the issue's 1M-streamline file had
offset % 4 == 3): the unaligned case, where numpy's ``take`` used to copy the
whole array. ``manifest.json`` records each trx-python member's data offset.

Streamlines are smooth arcs (0.5 mm steps) inside the reference grid. Everything
is generated vectorised, one chunk of streamlines at a time, each chunk from its
own seeded generator, so that the same ``--seed`` and ``--scale`` give the same
bytes. Nothing proportional to the
whole tractogram is held in memory except the lengths (8 bytes per streamline).

Usage::

    python benchmarks/generate.py --scale 0.05 [--data-dir DIR] [--seed 1234]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FULL_STREAMLINES = 1_000_000
MIN_POINTS, MAX_POINTS = 50, 150
STEP_MM = 0.5
VOXEL_MM = 1.25
DIMENSIONS = (145, 174, 145)
CHUNK_STREAMLINES = 25_000
GENERATOR_VERSION = 3  # 3: trx-python-written variants; origin moved by 0.25 mm
DPG_VOLUME = 4521.5  # dpg/CST_L/volume
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"


def affine() -> np.ndarray:
    """The voxel-to-RAS+ mm affine of the synthetic reference (1.25 mm, RAS)."""
    aff = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    aff[:3, 3] = [-90.25, -126.25, -72.25]
    return aff


@dataclass
class Dataset:
    """Paths and counts of one generated data set (also its ``manifest.json``)."""

    root: str
    scale: float
    seed: int
    nb_streamlines: int
    nb_vertices: int
    version: int = GENERATOR_VERSION
    #: trx-python's files: member -> byte offset of its data
    tpy_offsets: dict | None = None

    def path(self, name: str) -> Path:
        return Path(self.root) / name

    @property
    def positions_bytes(self) -> int:
        return self.nb_vertices * 12

    @classmethod
    def read(cls, root: Path) -> Dataset | None:
        try:
            data = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def lengths_for(n: int, seed: int) -> np.ndarray:
    """Points per streamline, uniform in [MIN_POINTS, MAX_POINTS]."""
    rng = np.random.default_rng([seed, 0])
    return rng.integers(MIN_POINTS, MAX_POINTS + 1, size=n, dtype=np.int64)


def chunk_arrays(lengths: np.ndarray, seed: int, chunk_id: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (V, 3) float32 RAS+ mm, fa (V,) float32 and weight (N,) float32 of a chunk."""
    rng = np.random.default_rng([seed, 1, chunk_id])
    n = len(lengths)
    total = int(lengths.sum())
    centre = np.array([0.0, -17.0, 18.0])  # of the reference grid, in mm
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    middle = centre + rng.uniform(-30, 30, size=(n, 3))
    start = middle - direction * (lengths[:, None] * STEP_MM / 2)
    bend = rng.normal(size=(n, 3)) * rng.uniform(2, 6, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=n)
    sid = np.repeat(np.arange(n), lengths)
    first = np.cumsum(lengths) - lengths
    k = np.arange(total, dtype=np.int64) - first[sid]
    t = k.astype(np.float64) * STEP_MM
    arc = (1.0 - np.cos(np.pi * k / lengths[sid]))[:, None]
    pos = start[sid] + direction[sid] * t[:, None] + bend[sid] * arc
    lo = affine()[:3, 3]
    np.clip(pos, lo, lo + VOXEL_MM * (np.array(DIMENSIONS) - 1), out=pos)  # inside the grid
    fa = (0.5 + 0.3 * np.sin(0.1 * t + phase[sid])).astype(np.float32)
    weight = rng.uniform(0.0, 1.0, size=n).astype(np.float32)
    return pos.astype(np.float32), fa, weight


def iter_chunks(lengths: np.ndarray, seed: int) -> Iterator[tuple[int, np.ndarray, np.ndarray,
                                                                  np.ndarray, np.ndarray]]:
    """(first streamline, lengths, positions, fa, weight) of each chunk."""
    for cid, a in enumerate(range(0, len(lengths), CHUNK_STREAMLINES)):
        lens = lengths[a:a + CHUNK_STREAMLINES]
        yield (a, lens, *chunk_arrays(lens, seed, cid))


def _trk_struct(n: int = 0) -> np.ndarray:
    """A TrackVis v2 header (RAS voxel order) with one scalar and one property."""
    from nibabel.streamlines.trk import TrkFile

    hdr = TrkFile._default_structarr(endianness="little")
    hdr["dimensions"] = DIMENSIONS
    hdr["voxel_sizes"] = (VOXEL_MM,) * 3
    hdr["voxel_to_rasmm"] = affine()
    hdr["voxel_order"] = b"RAS"
    hdr["nb_scalars_per_point"] = 1
    hdr["scalar_name"][0] = b"fa"
    hdr["nb_properties_per_streamline"] = 1
    hdr["property_name"][0] = b"weight"
    hdr["nb_streamlines"] = n
    return hdr


def trk_header(n: int) -> bytes:
    """The 1000 header bytes of the TRK file."""
    return _trk_struct(n).tobytes()


def trk_to_voxmm() -> np.ndarray:
    """RAS+ mm -> TrackVis voxmm, as nibabel computes it for this header."""
    from nibabel.streamlines.trk import get_affine_rasmm_to_trackvis

    return get_affine_rasmm_to_trackvis(_trk_struct())


def trk_records(lens: np.ndarray, pos: np.ndarray, fa: np.ndarray, weight: np.ndarray,
                to_voxmm: np.ndarray) -> np.ndarray:
    """The TRK bytes of a chunk: per streamline int32 n, n x (x, y, z, fa), weight."""
    n, total = len(lens), len(pos)
    rec = 2 + 4 * lens
    rstart = np.cumsum(rec) - rec
    buf = np.empty(int(rec.sum()), dtype="<f4")
    buf.view("<i4")[rstart] = lens.astype(np.int32)
    sid = np.repeat(np.arange(n), lens)
    k = np.arange(total) - (np.cumsum(lens) - lens)[sid]
    base = rstart[sid] + 1 + 4 * k
    vox = pos @ to_voxmm[:3, :3].T.astype(np.float32) + to_voxmm[:3, 3].astype(np.float32)
    for c in range(3):
        buf[base + c] = vox[:, c]
    buf[base + 3] = fa
    buf[rstart + 1 + 4 * lens] = weight
    return buf


def tck_header(n: int) -> bytes:
    """An MRtrix TCK header for ``n`` streamlines, as nibabel writes it."""
    import io

    from nibabel.streamlines.tck import TckFile

    hdr = TckFile.create_empty_header()
    hdr["nb_streamlines"] = n
    out = io.BytesIO()
    TckFile._write_header(out, hdr)
    return out.getvalue()


def tck_records(lens: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The TCK rows of a chunk: each streamline's points followed by a NaN row."""
    n, total = len(lens), len(pos)
    out = np.full((total + n, 3), np.nan, dtype="<f4")
    sid = np.repeat(np.arange(n), lens)
    out[np.arange(total) + sid] = pos
    return out


def write_reference(path: Path) -> None:
    """A NIfTI reference (uint8 zeros) with the data set's grid and affine."""
    import nibabel as nib

    img = nib.Nifti1Image(np.zeros(DIMENSIONS, dtype=np.uint8), affine())
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))


def groups_for(n: int, seed: int) -> dict[str, np.ndarray]:
    """Two overlapping groups of random streamlines (about 20% and 15%), sorted."""
    rng = np.random.default_rng([seed, 2])
    u = rng.random(n)
    return {"CST_L": np.flatnonzero(u < 0.20).astype("<u4"),
            "AF_L": np.flatnonzero((u > 0.17) & (u < 0.32)).astype("<u4")}


def write_dataset(root: Path, n: int, seed: int, *, trk: bool = True, tck: bool = True,
                  log: bool = True, dpv: bool = True) -> tuple[int, int]:
    """Write ``dir.trx`` (and TRK/TCK) for ``n`` streamlines; return (N, V).

    ``dpv=False`` leaves ``dpv/fa`` out of ``dir.trx`` (the 10M run, for disk).
    """
    lengths = lengths_for(n, seed)
    v = int(lengths.sum())
    trx_dir = root / "dir.trx"
    if trx_dir.exists():
        shutil.rmtree(trx_dir)
    for sub in ("dps", "dpv", "groups", "dpg/CST_L"):
        (trx_dir / sub).mkdir(parents=True, exist_ok=True)
    to_voxmm = trk_to_voxmm()
    offsets = np.zeros(n + 1, dtype="<u8")
    np.cumsum(lengths, out=offsets[1:])
    files = {"pos": open(trx_dir / "positions.3.float32", "wb"),  # noqa: SIM115
             "w": open(trx_dir / "dps/weight.float32", "wb")}  # noqa: SIM115
    if dpv:
        files["fa"] = open(trx_dir / "dpv/fa.float32", "wb")  # noqa: SIM115
    else:
        (trx_dir / "dpv").rmdir()
    if trk:
        files["trk"] = open(root / "data.trk", "wb")  # noqa: SIM115
        files["trk"].write(trk_header(n))
    if tck:
        files["tck"] = open(root / "data.tck", "wb")  # noqa: SIM115
        files["tck"].write(tck_header(n))
    t0 = time.perf_counter()
    try:
        for a, lens, pos, fa, weight in iter_chunks(lengths, seed):
            files["pos"].write(pos.tobytes())
            if dpv:
                files["fa"].write(fa.tobytes())
            files["w"].write(weight.tobytes())
            if trk:
                files["trk"].write(trk_records(lens, pos, fa, weight, to_voxmm).tobytes())
            if tck:
                files["tck"].write(tck_records(lens, pos).tobytes())
            if log and a and a % (20 * CHUNK_STREAMLINES) == 0:
                print(f"  {a}/{n} streamlines ({time.perf_counter() - t0:.0f} s)",
                      file=sys.stderr)
        if tck:
            files["tck"].write(np.full((1, 3), np.inf, dtype="<f4").tobytes())
    finally:
        for fh in files.values():
            fh.close()
    (trx_dir / "offsets.uint64").write_bytes(offsets.tobytes())
    for name, idx in groups_for(n, seed).items():
        (trx_dir / f"groups/{name}.uint32").write_bytes(idx.tobytes())
    (trx_dir / "dpg/CST_L/volume.float32").write_bytes(np.array([DPG_VOLUME], "<f4").tobytes())
    header = {"VOXEL_TO_RASMM": affine().tolist(), "DIMENSIONS": list(DIMENSIONS),
              "NB_STREAMLINES": n, "NB_VERTICES": v}
    (trx_dir / "header.json").write_text(json.dumps(header), encoding="utf-8")
    return n, v


def member_offsets(path: Path) -> dict[str, int]:
    """Byte offset of each zip member's data (from its local header)."""
    import struct
    import zipfile

    out = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            fh.seek(info.header_offset + 26)
            name_len, extra_len = struct.unpack("<HH", fh.read(4))
            out[info.filename] = info.header_offset + 30 + name_len + extra_len
    return out


def write_trx_python_variants(root: Path, *, deflated: bool = True, log: bool = True
                              ) -> dict[str, int]:
    """``tpy_*.trx``: ``dir.trx`` (and ``small.trx``) loaded and saved by trx-python."""
    import zipfile

    import trx.trx_file_memmap as tmm

    t0 = time.perf_counter()
    trx = tmm.load(str(root / "dir.trx"))
    try:
        tmm.save(trx, str(root / "tpy_stored.trx"), zipfile.ZIP_STORED)
        if deflated:
            tmm.save(trx, str(root / "tpy_deflated.trx"), zipfile.ZIP_DEFLATED)
    finally:
        trx.close()
    if (root / "small.trx").exists():
        small = tmm.load(str(root / "small.trx"))
        try:
            tmm.save(small, str(root / "tpy_small.trx"), zipfile.ZIP_STORED)
        finally:
            small.close()
    offsets = member_offsets(root / "tpy_stored.trx")
    pos = next(v for k, v in offsets.items() if k.startswith("positions"))
    if log:
        print(f"trx-python variants in {time.perf_counter() - t0:.0f} s; positions at byte "
              f"{pos} (offset % 4 = {pos % 4})", file=sys.stderr)
    return offsets


def generate(scale: float, data_dir: Path | None = None, seed: int = 1234,
             force: bool = False, log: bool = True) -> Dataset:
    """Generate (or reuse) the data set for ``scale`` under ``data_dir``.

    A data set is reused when its ``manifest.json`` matches scale, seed and the
    generator version; the manifest is written last, so an interrupted run is
    regenerated.
    """
    from trx_nipype.core import load, save

    root = Path(data_dir or DEFAULT_DATA_DIR) / f"scale-{scale:g}-seed-{seed}"
    found = Dataset.read(root)
    if found and not force and found.version == GENERATOR_VERSION:
        return found
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    n = max(100, int(round(FULL_STREAMLINES * scale)))
    t0 = time.perf_counter()
    if log:
        print(f"generating {n} streamlines into {root}", file=sys.stderr)
    n, v = write_dataset(root, n, seed, log=log)
    write_reference(root / "reference.nii.gz")
    with load(root / "dir.trx") as trx:
        save(trx, root / "stored.trx")
        save(trx, root / "deflated.trx", compression="deflate")
    small = root / "small"
    small.mkdir()
    write_dataset(small, max(100, n // 100), seed + 1, trk=False, tck=False, log=False)
    with load(small / "dir.trx") as trx:
        save(trx, root / "small.trx")
    shutil.rmtree(small)
    tpy = write_trx_python_variants(root, log=log)
    ds = Dataset(root=str(root), scale=scale, seed=seed, nb_streamlines=n, nb_vertices=v,
                 tpy_offsets=tpy)
    (root / "manifest.json").write_text(json.dumps(asdict(ds), indent=1), encoding="utf-8")
    if log:
        sizes = {p.name: p.stat().st_size for p in root.iterdir() if p.is_file()}
        print(f"generated in {time.perf_counter() - t0:.1f} s: " + ", ".join(
            f"{k} {s / 1e6:.0f} MB" for k, s in sorted(sizes.items())), file=sys.stderr)
    return ds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="1.0 = 1M streamlines (~1.2 GB positions); 0.05 for quick runs")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"where data sets go (default {DEFAULT_DATA_DIR})")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    args = parser.parse_args(argv)
    ds = generate(args.scale, args.data_dir, args.seed, force=args.force)
    print(ds.root)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    sys.exit(main())
