"""Shared test helpers: small valid TRX members, writers for dirs and zips, real files.

The helpers build TRX containers *by hand* (plain files, :mod:`zipfile`), never
through ``trx_nipype``, so that malformed inputs can be derived from a valid one
by editing a ``{member name: bytes}`` dict::

    members = valid_members()
    members["header.json"] = header_bytes(NB_VERTICES=99)
    write_trx_zip(tmp_path / "bad.trx", members)
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("NIPYPE_NO_ET", "1")

#: lengths of the streamlines of :func:`valid_members`
LENGTHS = (3, 1, 4, 2)
AFFINE = [[2.0, 0.0, 0.0, -10.0], [0.0, 2.0, 0.0, -12.0], [0.0, 0.0, 2.0, 5.0],
          [0.0, 0.0, 0.0, 1.0]]
DIMS = [20, 30, 40]


def header_bytes(**fields: Any) -> bytes:
    """``header.json`` of :func:`valid_members`, with ``fields`` replaced (None removes a key)."""
    header: dict[str, Any] = {"VOXEL_TO_RASMM": AFFINE, "DIMENSIONS": DIMS,
                              "NB_VERTICES": sum(LENGTHS), "NB_STREAMLINES": len(LENGTHS)}
    for key, value in fields.items():
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value
    return json.dumps(header).encode()


def valid_arrays() -> dict[str, np.ndarray]:
    """The arrays of :func:`valid_members`, keyed by member name."""
    v, n = sum(LENGTHS), len(LENGTHS)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype("<u8")
    return {
        "positions.3.float32": (np.arange(v * 3, dtype="<f4").reshape(v, 3) / 4 - 3),
        "offsets.uint64": offsets,
        "dps/weight.float32": np.linspace(0, 1, n, dtype="<f4"),
        "dps/rgb.3.uint8": np.arange(n * 3, dtype="u1").reshape(n, 3),
        "dpv/fa.float16": np.linspace(0, 1, v).astype("<f2"),
        "groups/CST.uint32": np.array([0, 2], "<u4"),
        "groups/AF.uint16": np.array([1, 2, 3], "<u2"),
        "dpg/CST/mean.float32": np.array([0.5], "<f4"),
        "dpg/AF/color.3.uint8": np.array([10, 20, 30], "u1"),
    }


def valid_members() -> dict[str, bytes]:
    """A small valid TRX (4 streamlines, N+1 uint64 offsets, dps, dpv, groups, dpg) as bytes."""
    members = {"header.json": header_bytes()}
    members.update({name: arr.tobytes() for name, arr in valid_arrays().items()})
    return members


def write_trx_dir(path: str | os.PathLike, members: Mapping[str, bytes]) -> Path:
    """Write ``members`` (name -> bytes) as files under the directory ``path``."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    for name, data in members.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def write_trx_zip(path: str | os.PathLike, members: Mapping[str, bytes] | list[tuple[str, bytes]],
                  compression: int = zipfile.ZIP_STORED, *, force_zip64: bool = False,
                  dirs: tuple[str, ...] = ()) -> Path:
    """Write ``members`` into a zip with :mod:`zipfile` (a list of pairs allows duplicates).

    ``dirs`` adds directory entries (``"dps/"``) first; ``force_zip64`` gives every
    member a zip64 extra field in its local header.
    """
    items = list(members.items()) if isinstance(members, Mapping) else list(members)
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for d in dirs:
            zf.writestr(zipfile.ZipInfo(d), b"")
        for name, data in items:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            with zf.open(info, "w", force_zip64=force_zip64) as fh:
                fh.write(data)
    return Path(path)


def assert_arrays_equal(actual: Any, expected: Any, what: str = "") -> None:
    """Same shape, same dtype and the same values (NaN equal to NaN)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    np.testing.assert_array_equal(actual, expected, err_msg=what)


def assert_trx_equal(a: Any, b: Any) -> None:
    """Two TrxFiles (or views) hold the same header counts, arrays and groups."""
    assert len(a) == len(b)
    assert a.nb_vertices == b.nb_vertices
    np.testing.assert_array_equal(a.affine, b.affine)
    np.testing.assert_array_equal(a.dimensions, b.dimensions)
    assert_arrays_equal(a.positions, b.positions, "positions")
    np.testing.assert_array_equal(np.asarray(a.offsets, np.int64), np.asarray(b.offsets, np.int64))
    for label in ("dps", "dpv", "groups"):
        ta, tb = getattr(a, label), getattr(b, label)
        assert sorted(ta) == sorted(tb), label
        for key in ta:
            assert_arrays_equal(ta[key], tb[key], f"{label}/{key}")
    assert sorted(a.dpg) == sorted(b.dpg)
    for group in a.dpg:
        assert sorted(a.dpg[group]) == sorted(b.dpg[group])
        for key in a.dpg[group]:
            assert_arrays_equal(a.dpg[group][key], b.dpg[group][key], f"dpg/{group}/{key}")


def tree_bytes(path: str | os.PathLike) -> dict[str, bytes]:
    """``relative path -> bytes`` of every file under a folder (or of a single file)."""
    root = Path(path)
    if root.is_file():
        return {"": root.read_bytes()}
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def real_tractograms() -> Iterator[tuple[str, Path]]:
    """(label, path) of the TRK/TCK files shipped inside dipy and nibabel."""
    dipy_files = importlib.resources.files("dipy") / "data" / "files"
    for name in ("tracks300.trk", "EuDX_small_25.trk"):
        yield f"dipy/{name}", Path(str(dipy_files / name))
    nib_data = importlib.resources.files("nibabel") / "tests" / "data"
    for name in ("standard.trk", "standard.LPS.trk", "complex.trk", "complex_big_endian.trk",
                 "standard.tck", "simple.trk"):
        yield f"nibabel/{name}", Path(str(nib_data / name))


def files_holding(root: str | os.PathLike, needle: bytes) -> list[str]:
    """The files below ``root`` whose bytes hold ``needle``, gzip files (``.pklz``) read
    decompressed; relative POSIX paths, sorted."""
    root = Path(root)
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                pass
        if needle in data:
            found.append(path.relative_to(root).as_posix())
    return found
