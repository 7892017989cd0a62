"""Snapshots of output trees that a regression test stores, and the check against them.

:func:`make_manifest` describes every output of a folder (or one tractogram)
by content, in a small JSON document with no path of the machine in it;
:func:`check_manifest` describes the folder again and reports what differs
from the stored snapshot, as :func:`~trx_nipype.core.operations.compare.compare`
does for two folders. Per file:

- a tractogram: counts, space, other header keys; a digest of the points per
  streamline; the positions' dtype, an exact digest of their values, a digest
  of the values rounded to ``decimals`` (default 3: 0.001 mm) and, for up to
  64 blocks of consecutive streamlines, the minimum, maximum and mean of x, y
  and z; for each dps/dpv key its dtype, columns, a digest and per-column
  minimum, maximum and mean; groups by size and a digest of their members;
  dpg values as they are. Digests are of the values (little-endian, C order),
  not of the file: a TRX and its deflated or directory re-encoding have the
  same entry;
- a JSON file: its document, less provenance and byte digests
  (:func:`~trx_nipype.core.operations.compare.is_provenance`);
- a NIfTI image: shape, affine, dtype, a digest and statistics of its voxels;
- any other file: its size and SHA-256.

The check is exact by default. With ``atol`` (mm) a tractogram whose
positions digest differs still passes when every block statistic moved by at
most ``atol`` (a point moved by at most ``atol`` moves no minimum, maximum or
mean by more), or when its rounded digest matches and ``atol`` is at least
the rounding step; ``data_atol`` does the same for float data. Without the
data at hand, a tolerant check can miss a change that keeps every statistic
within the tolerance; compare two folders (:func:`compare`) for the exact
largest deviation and where it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputExistsError, ParameterError, param
from ..formats import write_json
from ..trxfile import TrxFile
from .compare import (
    COMPARE_CHUNK_VERTICES,
    Comparison,
    Difference,
    check_tolerances,
    file_kind,
    file_sha256,
    json_differences,
    open_for_comparison,
    outputs_of,
    pair_files,
    read_json,
    strip_provenance,
)

#: the format of the manifest document
MANIFEST_VERSION = 1
#: decimals of the rounded positions digest (0.001 mm)
DEFAULT_DECIMALS = 3
#: blocks of consecutive streamlines with their own position statistics
BLOCKS = 64
#: JSON documents larger than this are stored as a digest of their content
MAX_JSON_CHARS = 200_000
#: float slack of a tolerant comparison of statistics (sums of float64)
_SLACK = 1e-9


def _le(arr: np.ndarray) -> bytes:
    """The values' bytes, little-endian and C order (the same for every container)."""
    arr = np.ascontiguousarray(arr)
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def _plain(values: np.ndarray) -> list[Any]:
    return [None if (isinstance(v, float) and not math.isfinite(v)) else v
            for v in values.tolist()]


class _Stats:
    """Per-column minimum, maximum, sum and count over chunks of rows (NaN counted apart)."""

    def __init__(self, ncols: int, integer: bool) -> None:
        self.integer = integer
        self.min = np.full(ncols, np.inf)
        self.max = np.full(ncols, -np.inf)
        self.sum = np.zeros(ncols)
        self.count = np.zeros(ncols, dtype=np.int64)
        self.nan = 0

    def add(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        if not rows.size:
            return
        finite = ~np.isnan(rows)
        self.nan += int(rows.size - finite.sum())
        self.min = np.fmin(self.min, np.where(finite, rows, np.inf).min(axis=0))
        self.max = np.fmax(self.max, np.where(finite, rows, -np.inf).max(axis=0))
        self.sum += np.where(finite, rows, 0.0).sum(axis=0)
        self.count += finite.sum(axis=0)

    def as_dict(self) -> dict[str, Any]:
        seen = self.count > 0
        cast = (lambda v: int(v)) if self.integer else float
        return {"min": [cast(v) if s else None for v, s in zip(self.min, seen, strict=True)],
                "max": [cast(v) if s else None for v, s in zip(self.max, seen, strict=True)],
                "mean": [float(v) if s else None
                         for v, s in zip(self.sum / np.maximum(self.count, 1), seen,
                                         strict=True)],
                "nan": self.nan}


def _array_entry(arrays: Mapping[str, Any], source: Mapping[str, Any], key: str,
                 rows_of: Callable[[Any], Any], chunks: list[Any]) -> dict[str, Any]:
    spec = getattr(arrays, "spec", None)
    dtype, shape = spec(key) if spec else (arrays[key].dtype, arrays[key].shape)
    dtype = np.dtype(dtype)
    ncols = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    digest = hashlib.sha256()
    stats = _Stats(ncols, dtype.kind in "iub")
    reader = source.reader(key)  # bounded reads: a file cut short is an error, not SIGBUS
    try:
        for chunk in chunks:
            rows = np.asarray(reader.take(rows_of(chunk)))
            digest.update(_le(rows))
            stats.add(rows.reshape(len(rows), -1))
    finally:
        reader.release()
    return {"dtype": dtype.name, "ncols": ncols, "sha256": digest.hexdigest(),
            **stats.as_dict()}


def tractogram_entry(trx: TrxFile, *, decimals: int = DEFAULT_DECIMALS, blocks: int = BLOCKS,
                     chunk_vertices: int = COMPARE_CHUNK_VERTICES) -> dict[str, Any]:
    """The manifest entry of an opened tractogram (see the module docstring).

    Positions and data are read chunk by chunk over the maps: memory stays at
    a few chunks whatever the file's size.
    """
    n = len(trx)
    lengths = np.asarray(trx.lengths, dtype=np.int64)
    per_block = max(1, math.ceil(n / blocks)) if n else 1
    nblocks = math.ceil(n / per_block) if n else 0
    bmin = np.full((nblocks, 3), np.inf)
    bmax = np.full((nblocks, 3), -np.inf)
    bsum = np.zeros((nblocks, 3))
    bcount = np.zeros(nblocks, dtype=np.int64)
    exact, rounded = hashlib.sha256(), hashlib.sha256()
    nan = 0
    chunks = list(trx.iter_chunks(chunk_vertices))
    s0 = 0
    for chunk, pts in trx.iter_positions(chunk_vertices):
        lens = np.asarray(chunk.lengths, dtype=np.int64)
        exact.update(_le(pts))
        p64 = pts.astype(np.float64)
        rounded.update(_le(np.round(p64, decimals) + 0.0))  # + 0.0: -0.0 and 0.0 alike
        finite = ~np.isnan(p64).any(axis=1)
        nan += int((~finite).sum())
        block_of = np.repeat((s0 + np.arange(len(lens))) // per_block, lens)[finite]
        p = p64[finite]
        if len(p):
            starts = np.flatnonzero(np.r_[True, block_of[1:] != block_of[:-1]])
            ids = block_of[starts]
            bmin[ids] = np.minimum(bmin[ids], np.minimum.reduceat(p, starts, axis=0))
            bmax[ids] = np.maximum(bmax[ids], np.maximum.reduceat(p, starts, axis=0))
            bsum[ids] += np.add.reduceat(p, starts, axis=0)
            bcount[ids] += np.diff(np.r_[starts, len(p)])
        s0 += len(lens)
    seen = bcount > 0
    header = {k: v for k, v in trx.header.items()
              if k not in ("VOXEL_TO_RASMM", "DIMENSIONS", "NB_STREAMLINES", "NB_VERTICES")}
    src = trx.source_arrays()
    entry: dict[str, Any] = {
        "kind": "tractogram",
        "nb_streamlines": n,
        "nb_vertices": trx.nb_vertices,
        "affine": trx.affine.tolist(),
        "dimensions": trx.dimensions.tolist(),
        "header": json.loads(json.dumps(header, default=lambda o: np.asarray(o).tolist())),
        "lengths_sha256": hashlib.sha256(_le(lengths)).hexdigest(),
        "positions": {
            "dtype": trx.positions_dtype.name,
            "sha256": exact.hexdigest(),
            "rounded_sha256": rounded.hexdigest(),
            "decimals": decimals,
            "nan_points": nan,
            "block_streamlines": per_block,
            "block_min": [_plain(r) if s else None for r, s in zip(bmin, seen, strict=True)],
            "block_max": [_plain(r) if s else None for r, s in zip(bmax, seen, strict=True)],
            "block_mean": [_plain(r / c) if s else None
                           for r, c, s in zip(bsum, bcount, seen, strict=True)],
        },
        "dps": {k: _array_entry(trx.dps, src.dps, k, lambda c: c.streamlines, chunks)
                for k in sorted(trx.dps)},
        "dpv": {k: _array_entry(trx.dpv, src.dpv, k, lambda c: c.vertices, chunks)
                for k in sorted(trx.dpv)},
        "groups": {g: {"count": int(len(idx)), "sha256": hashlib.sha256(
            _le(np.sort(np.asarray(idx, dtype=np.int64)))).hexdigest()}
            for g, idx in sorted(trx.groups.items())},
        "dpg": {g: {k: {"dtype": np.asarray(v).dtype.name,
                        "values": np.asarray(v, dtype=np.float64).ravel().tolist()}
                    for k, v in sorted(trx.dpg[g].items())} for g in sorted(trx.dpg)},
    }
    return entry


def image_entry(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest entry of a NIfTI image: shape, affine, dtype, digest and voxel statistics."""
    import nibabel as nib

    img = nib.load(os.fspath(path))
    data = np.asanyarray(img.dataobj)
    stats = _Stats(1, data.dtype.kind in "iub")
    stats.add(data.reshape(-1, 1))
    return {"kind": "image", "shape": list(img.shape), "affine": img.affine.tolist(),
            "dtype": img.get_data_dtype().name, "sha256": hashlib.sha256(_le(data)).hexdigest(),
            **stats.as_dict()}


def file_entry(path: Path, *, reference: Any = None, decimals: int = DEFAULT_DECIMALS,
               chunk_vertices: int = COMPARE_CHUNK_VERTICES) -> dict[str, Any]:
    """The manifest entry of one output file (or TRX folder), by its kind."""
    kind = file_kind(path)
    if kind == "tractogram":
        try:
            trx, _ = open_for_comparison(path, reference)
        except ImportError:  # .vtk without fury: bytes only
            kind = "file"
        else:
            with trx:
                return tractogram_entry(trx, decimals=decimals, chunk_vertices=chunk_vertices)
    if kind == "json":
        doc = strip_provenance(read_json(path))
        text = json.dumps(doc, sort_keys=True)
        if len(text) > MAX_JSON_CHARS:
            return {"kind": "json", "sha256": hashlib.sha256(text.encode()).hexdigest()}
        return {"kind": "json", "content": doc}
    if kind == "image":
        return image_entry(path)
    return {"kind": "file", "size": path.stat().st_size, "sha256": file_sha256(path)}


def make_manifest(path: str | os.PathLike, *, reference: Any = None,
                  decimals: int = DEFAULT_DECIMALS, exclude: tuple[str | os.PathLike, ...] = (),
                  chunk_vertices: int = COMPARE_CHUNK_VERTICES,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The manifest of an output folder (every output) or of one tractogram.

    Parameters
    ----------
    path : str or os.PathLike
        A folder (its outputs, as :func:`~trx_nipype.core.operations.compare.tree_files`
        lists them) or a single tractogram (one entry, named after it).
    reference : optional
        The space of tractograms without one (TCK, VTK, DPY).
    decimals : int
        Decimals of the rounded positions digest.
    exclude : tuple of paths
        Files to leave out (the manifest itself, when written inside the folder).
    chunk_vertices : int
        Vertices read per chunk.
    progress : callable, optional
        Called with each file's relative path.

    Returns
    -------
    dict
        ``{"TrxNipypeManifest": 1, "Generator": {...}, "Decimals": n, "Files": {...}}``
        (JSON-ready, no path of the machine in it).
    """
    from ... import __version__

    files = outputs_of(path, exclude=exclude)
    entries = {}
    for rel, file in files.items():
        if progress is not None:
            progress(rel)
        entries[rel] = file_entry(file, reference=reference, decimals=decimals,
                                  chunk_vertices=chunk_vertices)
    return {"TrxNipypeManifest": MANIFEST_VERSION, "Generator": {"trx-nipype": __version__},
            "Decimals": decimals, "Files": entries}


def write_manifest(path: str | os.PathLike, out: str | os.PathLike, *, force: bool = False,
                   **options: Any) -> Path:
    """Write :func:`make_manifest` of ``path`` to ``out`` (JSON, atomically).

    Raises
    ------
    FileExistsError
        If ``out`` exists and ``force`` is false, or is not a file.
    """
    out = Path(out)
    if out.exists() and not out.is_file():
        raise FileExistsError(f"{out}: exists and is not a file; not replaced")
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: exists; pass {param('force', True)} to replace it")
    manifest = make_manifest(path, exclude=(out,), **options)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(manifest, out, indent=1, allow_nan=False)
    return out


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """A manifest written by :func:`write_manifest`, checked.

    Raises
    ------
    ValueError
        If the file cannot be read or is not a trx-nipype manifest (the
        message names it; a :class:`~trx_nipype.core.errors.ParameterError`
        naming the ``manifest`` parameter when it cannot be read).
    """
    try:
        doc = read_json(path)
    except OSError as exc:  # missing, a folder, no permission
        raise ParameterError(f"{param('manifest', os.fspath(path))}: cannot be read "
                             f"({exc.strerror or exc})") from None
    if not isinstance(doc, dict) or "Files" not in doc or not isinstance(doc["Files"], dict):
        raise ValueError(f"{os.fspath(path)}: not a trx-nipype manifest (no 'Files' object)")
    if doc.get("TrxNipypeManifest") != MANIFEST_VERSION:
        raise ValueError(f"{os.fspath(path)}: manifest version "
                         f"{doc.get('TrxNipypeManifest')!r}; this trx-nipype reads "
                         f"{MANIFEST_VERSION}")
    return doc


# ---------------------------------------------------------------------- check
def _largest(a: list[Any] | None, b: list[Any] | None) -> tuple[float, int]:
    """Largest absolute difference between two lists of rows (None rows: empty), and where."""
    worst, where = 0.0, -1
    for i, (x, y) in enumerate(zip(a or [], b or [], strict=False)):
        if x is None and y is None:
            continue
        if x is None or y is None:
            return math.inf, i
        xs = np.asarray(x, dtype=np.float64).ravel()
        ys = np.asarray(y, dtype=np.float64).ravel()
        both_nan = np.isnan(xs) & np.isnan(ys)
        dev = np.where(both_nan, 0.0, np.abs(xs - ys))
        dev[np.isnan(dev)] = math.inf
        if dev.size and float(dev.max()) > worst:
            worst, where = float(dev.max()), i
    return worst, where


class _Check:
    """The comparison of one file's stored entry (E) with its fresh one (F)."""

    def __init__(self, rel: str, atol: float, data_atol: float, check_dtypes: bool) -> None:
        self.rel = rel
        self.atol, self.data_atol = atol, data_atol
        self.check_dtypes = check_dtypes
        self.differences: list[Difference] = []
        self.notes: list[str] = []

    def differ(self, what: str, message: str) -> None:
        self.differences.append(Difference(what, message, self.rel))

    def run(self, e: dict[str, Any], f: dict[str, Any]) -> None:
        if e.get("kind") != f.get("kind"):
            self.differ("file", f"a {e.get('kind')} in the manifest, a {f.get('kind')} now")
        elif f["kind"] == "tractogram":
            self.tractogram(e, f)
        elif f["kind"] == "json":
            if "content" in e and "content" in f:
                for key, message in json_differences(e["content"], f["content"],
                                                     atol=self.data_atol):
                    self.differ(key, message)
            elif e.get("sha256") != f.get("sha256") or ("content" in e) != ("content" in f):
                self.differ("json", "the document differs from the manifest's")
        elif f["kind"] == "image":
            self.image(e, f)
        elif e.get("sha256") != f.get("sha256"):
            size = "" if e.get("size") == f.get("size") else \
                f" ({e.get('size')} bytes in the manifest, {f.get('size')} now)"
            self.differ("bytes", f"the file's bytes differ from the manifest's{size}")

    def tractogram(self, e: dict[str, Any], f: dict[str, Any]) -> None:
        counts = True
        for key in ("nb_streamlines", "nb_vertices"):
            if e[key] != f[key]:
                self.differ(key, f"{e[key]} in the manifest, {f[key]} now")
                counts = False
        if e["dimensions"] != f["dimensions"]:
            self.differ("dimensions", f"{e['dimensions']} in the manifest, {f['dimensions']} now")
        dev, _ = _largest(e["affine"], f["affine"])
        if dev > self.atol:
            self.differ("affine", f"largest difference {dev:.3g} > atol {self.atol:g}")
        for key, message in json_differences(e.get("header", {}), f.get("header", {}),
                                             ignore=lambda _p: False):
            self.differ(f"header/{key}", message)
        same_lengths = counts and e["lengths_sha256"] == f["lengths_sha256"]
        if counts and not same_lengths:
            self.differ("lengths", "the numbers of points per streamline differ from the "
                                   "manifest's")
        self.positions(e["positions"], f["positions"], same_lengths)
        self.tables("dps", e["dps"], f["dps"], counts)
        self.tables("dpv", e["dpv"], f["dpv"], same_lengths)
        self.groups(e["groups"], f["groups"])
        for key, message in json_differences(e["dpg"], f["dpg"], atol=self.data_atol,
                                             ignore=lambda _p: False):
            self.differ(f"dpg/{key.replace('.', '/')}", message)

    def positions(self, e: dict[str, Any], f: dict[str, Any], comparable: bool) -> None:
        if self.check_dtypes and e["dtype"] != f["dtype"]:
            self.differ("positions", f"dtype {e['dtype']} in the manifest, {f['dtype']} now")
        if not comparable or e["sha256"] == f["sha256"]:
            return
        if e.get("block_streamlines") != f.get("block_streamlines"):
            self.differ("positions", "differ from the manifest (digest)")
            return
        dev, block = 0.0, -1
        for stat in ("block_min", "block_max", "block_mean"):
            d, b = _largest(e[stat], f[stat])
            if d > dev:
                dev, block = d, b
        span = ""
        if block >= 0:
            first = block * f["block_streamlines"]
            span = f" in streamlines {first}..{first + f['block_streamlines'] - 1}"
        step = 10.0 ** -e["decimals"]
        if self.atol > 0 and e["rounded_sha256"] == f["rounded_sha256"] and self.atol >= step \
                and e["decimals"] == f["decimals"]:
            self.notes.append(f"{self.rel}: positions: equal when rounded to {step:g} mm, "
                              f"within atol {self.atol:g} mm")
            return
        stats = (f"largest change of a block's min/max/mean {dev:.3g} mm{span}" if dev > 0
                 else "every block's min/max/mean unchanged")
        if self.atol > 0 and dev <= self.atol + _SLACK and e.get("nan_points") == \
                f.get("nan_points"):
            self.notes.append(f"{self.rel}: positions: digest differs; {stats}, within atol "
                              f"{self.atol:g} mm")
            return
        self.differ("positions", f"differ from the manifest (digest); {stats}"
                    + (f" > atol {self.atol:g} mm" if self.atol > 0 else ""))

    def tables(self, label: str, e: dict[str, Any], f: dict[str, Any], comparable: bool
               ) -> None:
        for key in sorted(set(e) - set(f)):
            self.differ(f"{label}/{key}", "in the manifest, missing now")
        for key in sorted(set(f) - set(e)):
            self.differ(f"{label}/{key}", "not in the manifest")
        for key in sorted(set(e) & set(f)):
            self.values(f"{label}/{key}", e[key], f[key], comparable)

    def values(self, what: str, e: dict[str, Any], f: dict[str, Any], comparable: bool) -> None:
        if self.check_dtypes and e["dtype"] != f["dtype"]:
            self.differ(what, f"dtype {e['dtype']} in the manifest, {f['dtype']} now")
        if e.get("ncols", 1) != f.get("ncols", 1):
            self.differ(what, f"{e.get('ncols')} columns in the manifest, {f.get('ncols')} now")
            return
        if not comparable or e["sha256"] == f["sha256"]:
            return
        dev = max(_largest([e[s]], [f[s]])[0] for s in ("min", "max", "mean"))
        stats = f"largest change of a column's min/max/mean {dev:.3g}"
        integer = np.dtype(f["dtype"]).kind in "iub"
        if self.data_atol > 0 and not integer and dev <= self.data_atol + _SLACK \
                and e.get("nan") == f.get("nan"):
            self.notes.append(f"{self.rel}: {what}: digest differs; {stats}, within atol "
                              f"{self.data_atol:g}")
            return
        self.differ(what, f"values differ from the manifest (digest); {stats}")

    def groups(self, e: dict[str, Any], f: dict[str, Any]) -> None:
        for name in sorted(set(e) - set(f)):
            self.differ(f"groups/{name}", f"in the manifest ({e[name]['count']} streamlines), "
                                          f"missing now")
        for name in sorted(set(f) - set(e)):
            self.differ(f"groups/{name}", f"not in the manifest ({f[name]['count']} "
                                          f"streamlines)")
        for name in sorted(set(e) & set(f)):
            if e[name]["count"] != f[name]["count"]:
                self.differ(f"groups/{name}", f"{e[name]['count']} members in the manifest, "
                                              f"{f[name]['count']} now")
            elif e[name]["sha256"] != f[name]["sha256"]:
                self.differ(f"groups/{name}", f"{f[name]['count']} members, not the same "
                                              f"streamlines as in the manifest")

    def image(self, e: dict[str, Any], f: dict[str, Any]) -> None:
        for key in ("shape", "dtype"):
            if e[key] != f[key]:
                self.differ(key, f"{e[key]} in the manifest, {f[key]} now")
        dev, _ = _largest(e["affine"], f["affine"])
        if dev > self.atol:
            self.differ("affine", f"largest difference {dev:.3g} > atol {self.atol:g}")
        if e["shape"] == f["shape"]:
            self.values("data", {**e, "ncols": 1}, {**f, "ncols": 1}, True)


def check_manifest(manifest: str | os.PathLike | Mapping[str, Any], path: str | os.PathLike, *,
                   atol: float = 0.0, data_atol: float | None = None,
                   check_dtypes: bool = True, reference: Any = None,
                   chunk_vertices: int = COMPARE_CHUNK_VERTICES,
                   progress: Callable[[str], None] | None = None) -> Comparison:
    """Check an output folder (or one tractogram) against a stored manifest.

    Parameters
    ----------
    manifest : path or mapping
        The manifest file (:func:`write_manifest`) or its document.
    path : str or os.PathLike
        The folder (or tractogram) to check.
    atol : float
        Tolerance on positions, in mm (see the module docstring).
    data_atol : float, optional
        Tolerance on float data (default: ``atol``).
    check_dtypes : bool
        Report dtypes that changed.
    reference : optional
        The space of tractograms without one.
    chunk_vertices : int
        Vertices read per chunk.
    progress : callable, optional
        Called with each file's relative path.

    Returns
    -------
    Comparison
        A is the manifest, B the folder; a file missing or extra is a
        difference naming it.
    """
    data_tol = check_tolerances(atol, data_atol)
    label = os.fspath(manifest) if isinstance(manifest, str | os.PathLike) else "manifest"
    exclude = (manifest,) if isinstance(manifest, str | os.PathLike) else ()
    doc = read_manifest(manifest) if isinstance(manifest, str | os.PathLike) else manifest
    decimals = int(doc.get("Decimals", DEFAULT_DECIMALS))
    files = outputs_of(path, exclude=exclude)
    expected: dict[str, Any] = doc["Files"]
    single = not (os.path.isdir(path) and file_kind(path) != "tractogram")
    if single and len(expected) == 1:  # one tractogram against one: whatever their names
        files = {next(iter(expected)): next(iter(files.values()))}
    result = Comparison(label, os.fspath(path), float(atol), data_tol)

    def each(rel: str) -> tuple[list[Difference], list[str]]:
        fresh = file_entry(files[rel], reference=reference, decimals=decimals,
                           chunk_vertices=chunk_vertices)
        check = _Check(rel, float(atol), data_tol, check_dtypes)
        check.run(expected[rel], fresh)
        return check.differences, check.notes

    pair_files(result, expected, files, each, missing="in the manifest, missing now",
               extra="extra: not in the manifest", progress=progress)
    return result
