"""Interoperability both ways with trx-python (an independent reader and writer), and real
tractograms shipped inside dipy and nibabel round-tripping exactly."""

from __future__ import annotations

import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.streamlines import Tractogram
from trx_test_helpers import real_tractograms

from trx_nipype.core import TrxFile, load, save, validate
from trx_nipype.core.build import reference_header

tmm = pytest.importorskip("trx.trx_file_memmap")

AFFINE = np.array([[1.5, 0, 0, -20], [0, 1.5, 0, -30], [0, 0, 2, -10], [0, 0, 0, 1]])
DIMS = (40, 50, 30)
WRITES = [("stored", "t.trx", zipfile.ZIP_STORED), ("deflate", "t.trx", zipfile.ZIP_DEFLATED),
          ("dir", "t_dir", None)]


def _tractogram(rng: np.random.Generator, n: int = 6) -> Tractogram:
    lengths = rng.integers(1, 9, n)
    streamlines = [(rng.random((k, 3)) * 50).astype(np.float32) for k in lengths]
    return Tractogram(
        streamlines,
        data_per_streamline={"w": rng.random((n, 1)).astype(np.float32),
                             "rgb": rng.random((n, 3)).astype(np.float32)},
        data_per_point={"fa": [rng.random((k, 1)).astype(np.float32) for k in lengths],
                        "dir": [rng.random((k, 3)).astype(np.float32) for k in lengths]},
        affine_to_rasmm=np.eye(4))


def _trxpython_file(tmp_path: Path, name: str, method: int | None, positions: str,
                    offsets: str) -> tuple[Path, object]:
    """Write a tractogram with dps, dpv, groups and dpg with trx-python."""
    rng = np.random.default_rng(7)
    tg = _tractogram(rng)
    t = tmm.TrxFile.from_tractogram(
        tg, reference_header(AFFINE, DIMS),
        dtype_dict={"positions": np.dtype(positions), "offsets": np.dtype(offsets),
                    "dpv": {"dir": np.float64}, "dps": {"rgb": np.float16}})
    t.groups = {"CST": np.array([0, 2, 5], np.uint32), "AF": np.array([1, 2], np.int32)}
    t.data_per_group = {"CST": {"mean": np.array([[1.5, 2.5, 3.5]], np.float32)},
                        "AF": {"n": np.array([[7]], np.int16)}}
    path = tmp_path / name
    if method is None:
        tmm.save(t, str(path))
    else:
        tmm.save(t, str(path), method)
    return path, t


@pytest.mark.parametrize(("positions", "offsets"), [("float32", "uint64"),
                                                    ("float16", "uint32"),
                                                    ("float64", "uint32")])
@pytest.mark.parametrize(("kind", "name", "method"), WRITES)
def test_trxpython_files_load(tmp_path: Path, temp_root: Path, kind: str, name: str,
                              method: int | None, positions: str, offsets: str) -> None:
    path, t = _trxpython_file(tmp_path, name, method, positions, offsets)
    try:
        theirs = tmm.load(str(path))
        with load(path) as ours:
            assert len(ours) == len(theirs.streamlines)
            np.testing.assert_array_equal(ours.affine, AFFINE)
            assert ours.dimensions.tolist() == list(DIMS)
            assert ours.positions.dtype == np.dtype(positions)
            assert ours.offsets.dtype == np.dtype(offsets)
            np.testing.assert_array_equal(ours.positions, theirs.streamlines._data)
            np.testing.assert_array_equal(ours.offsets[:-1], theirs.streamlines._offsets)
            np.testing.assert_array_equal(ours.lengths, theirs.streamlines._lengths)
            assert sorted(ours.dps) == sorted(theirs.data_per_streamline)
            for key, arr in theirs.data_per_streamline.items():
                assert ours.dps[key].dtype == arr.dtype
                np.testing.assert_array_equal(ours.dps[key].reshape(arr.shape), arr)
            assert sorted(ours.dpv) == sorted(theirs.data_per_vertex)
            for key, seq in theirs.data_per_vertex.items():
                assert ours.dpv[key].dtype == seq._data.dtype
                np.testing.assert_array_equal(ours.dpv[key].reshape(seq._data.shape), seq._data)
            assert sorted(ours.groups) == sorted(theirs.groups)
            for key, arr in theirs.groups.items():
                assert ours.groups[key].dtype == arr.dtype
                np.testing.assert_array_equal(ours.groups[key], arr)
            assert sorted(ours.dpg) == sorted(theirs.data_per_group)
            for group, table in theirs.data_per_group.items():
                for key, arr in table.items():
                    np.testing.assert_array_equal(ours.dpg[group][key], arr.reshape(-1))
        theirs.close()
    finally:
        t.close()
    assert validate(path, deep=True).ok


def _ours() -> TrxFile:
    rng = np.random.default_rng(3)
    lengths = np.array([3, 1, 4, 0, 2, 5])
    v = int(lengths.sum())
    return TrxFile.from_arrays(
        (rng.random((v, 3)) * 80).astype(np.float32), lengths=lengths, affine=AFFINE,
        dimensions=DIMS,
        dps={"w": rng.random(6).astype(np.float32), "rgb": rng.integers(0, 255, (6, 3))
             .astype(np.uint8)},
        dpv={"fa": rng.random(v).astype(np.float16), "dir": rng.random((v, 3))},
        groups={"CST": np.array([0, 4], np.uint32), "AF": np.array([1, 2, 5], np.uint16)},
        dpg={"CST": {"mean": np.array([1.0, 2.0], np.float32)},
             "AF": {"n": np.array([9], np.int32)}})


@pytest.mark.parametrize(("compression", "name"), [("stored", "o.trx"), ("deflate", "o.trx"),
                                                    ("stored", "o_dir")])
def test_our_files_load_in_trxpython(tmp_path: Path, name: str, compression: str) -> None:
    ours = _ours()
    out = tmp_path / name
    save(ours, out, compression=compression)
    theirs = tmm.load(str(out))
    try:
        np.testing.assert_array_equal(np.asarray(theirs.header["VOXEL_TO_RASMM"]), AFFINE)
        assert list(theirs.header["DIMENSIONS"]) == list(DIMS)
        assert theirs.header["NB_STREAMLINES"] == 6 and theirs.header["NB_VERTICES"] == 15
        np.testing.assert_array_equal(theirs.streamlines._data, ours.positions)
        np.testing.assert_array_equal(theirs.streamlines._offsets, ours.offsets[:-1])
        np.testing.assert_array_equal(theirs.streamlines._lengths, ours.lengths)
        for key, arr in ours.dps.items():
            got = theirs.data_per_streamline[key]
            assert got.dtype == arr.dtype
            np.testing.assert_array_equal(got.reshape(arr.shape), arr)
        for key, arr in ours.dpv.items():
            got = theirs.data_per_vertex[key]._data
            assert got.dtype == arr.dtype
            np.testing.assert_array_equal(got.reshape(arr.shape), arr)
        for key, arr in ours.groups.items():
            np.testing.assert_array_equal(theirs.groups[key], arr)
            assert theirs.groups[key].dtype == arr.dtype
        for group, table in ours.dpg.items():
            for key, arr in table.items():
                got = theirs.data_per_group[group][key]
                assert got.shape == (1, arr.size)
                np.testing.assert_array_equal(got.reshape(arr.shape), arr)
    finally:
        theirs.close()


def test_our_empty_file_loads_in_trxpython(tmp_path: Path) -> None:
    empty = TrxFile.from_arrays(np.zeros((0, 3), np.float32), lengths=[])
    save(empty, tmp_path / "e.trx")
    theirs = tmm.load(str(tmp_path / "e.trx"))
    assert theirs.header["NB_STREAMLINES"] == 0 and len(theirs.streamlines) == 0
    theirs.close()


REAL = list(real_tractograms())


@pytest.mark.parametrize("label_path", REAL, ids=[label for label, _ in REAL])
def test_real_tractograms_round_trip(tmp_path: Path, temp_root: Path,
                                     label_path: tuple[str, Path]) -> None:
    label, path = label_path
    assert path.is_file(), f"{label}: shipped file not found at {path}"
    tfile = nib.streamlines.load(str(path))
    tgm = tfile.tractogram.to_world()
    expected = [np.asarray(s) for s in tgm.streamlines]
    trx = TrxFile.from_tractogram(tfile)
    if hasattr(tfile.header, "get") and "voxel_to_rasmm" in tfile.header \
            and "dimensions" in tfile.header:
        np.testing.assert_array_equal(trx.affine, tfile.header["voxel_to_rasmm"])
    assert len(trx) == len(expected)
    for compression, name in (("stored", "r.trx"), ("deflate", "r.trx"), ("stored", "r_dir")):
        out = tmp_path / compression / name
        out.parent.mkdir(exist_ok=True)
        save(trx, out, compression=compression)
        with load(out) as back:
            assert len(back) == len(expected)
            for got, want in zip(back.streamlines, expected, strict=True):
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
            for key, arr in tgm.data_per_streamline.items():
                np.testing.assert_array_equal(back.dps[key], arr)
            for key, seq in tgm.data_per_point.items():
                np.testing.assert_array_equal(back.dpv[key], seq.get_data())
            np.testing.assert_array_equal(back.affine, trx.affine)
            np.testing.assert_array_equal(back.dimensions, trx.dimensions)
            assert back.header["NB_VERTICES"] == sum(len(s) for s in expected)
    theirs = tmm.load(str(tmp_path / "stored" / "r.trx"))
    try:
        np.testing.assert_array_equal(theirs.streamlines._data, trx.positions)
    finally:
        theirs.close()


def test_real_tractogram_through_dipy_sft(tmp_path: Path) -> None:
    """dipy's StatefulTractogram in, and back out, with groups kept as data."""
    from dipy.io.streamline import load_tractogram

    label, path = next((lbl, p) for lbl, p in REAL if lbl == "nibabel/standard.trk")
    sft = load_tractogram(str(path), "same", bbox_valid_check=False)
    trx = TrxFile.from_sft(sft)
    save(trx, tmp_path / "s.trx")
    with load(tmp_path / "s.trx") as back:
        sft.to_rasmm()
        np.testing.assert_array_equal(back.positions, sft.streamlines.get_data())
        out = back.select(range(len(back))).to_sft()
        assert len(out) == len(sft)
