"""Preallocation (TrxFile.empty), append and resize; against trx-python where it agrees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import trx.trx_file_memmap as tmm
from nibabel.streamlines import Tractogram
from trx_test_helpers import assert_arrays_equal, assert_trx_equal

from trx_nipype.core import TrxFile, load, save
from trx_nipype.core.growable import GROWTH, GrowableTrxFile
from trx_nipype.core.tempfiles import live_temp_dirs

from .test_select import AFFINE, DIMS, make_trx


def _groups(trx: TrxFile) -> dict[str, list[int]]:
    return {g: np.asarray(v).tolist() for g, v in trx.groups.items()}


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a = make_trx(6, seed=1, groups={"A": [0, 4], "B": [1, 5]},
                 dpg={"A": {"m": np.array([2.5], "<f4")}})
    b = make_trx(5, seed=2, groups={"A": [3], "C": [0, 1]})
    return save(a, tmp_path / "a.trx"), save(b, tmp_path / "b.trx")


def test_append_matches_trx_python_concatenate(pair: tuple[Path, Path], tmp_path: Path,
                                               temp_root: Path) -> None:
    ref = tmm.concatenate([tmm.load(str(p)) for p in pair], delete_groups=True)
    with load(pair[0]) as a, load(pair[1]) as b, TrxFile.empty(4, 8, like=a) as g:
        assert isinstance(g, GrowableTrxFile) and len(g) == 0 and g.capacity == (4, 8)
        assert g.append(a) is g
        g.append(b)
        assert len(g) == 11 and g.capacity[0] >= 11
        assert_arrays_equal(g.positions, ref.streamlines.get_data(), "positions")
        np.testing.assert_array_equal(g.lengths, ref.streamlines._lengths)
        for key in ("w", "rgb"):
            np.testing.assert_array_equal(np.asarray(g.dps[key]).reshape(11, -1),
                                          ref.data_per_streamline[key])
        np.testing.assert_array_equal(np.ravel(g.dpv["fa"]),
                                      np.ravel(ref.data_per_vertex["fa"].get_data()))
        # groups (trx-python's append cannot keep them): union, re-indexed
        assert _groups(g) == {"A": [0, 4, 9], "B": [1, 5], "C": [6, 7]}
        assert sorted(g.dpg) == ["A"]
        assert not g.positions.flags.writeable and not g.offsets.flags.writeable
        out = save(g, tmp_path / "grown.trx")
        with load(out) as back:
            assert_trx_equal(back, g)
            assert back.offsets.dtype == a.offsets.dtype  # like's dtypes
        folder = g._store.folder
        assert folder.is_dir() and str(folder).startswith(str(temp_root))
    assert not folder.exists() and str(folder) not in live_temp_dirs()
    with pytest.raises(ValueError, match="closed"):
        g.append(make_trx(1))


def test_capacity_grows_geometrically(temp_root: Path) -> None:
    parts = [make_trx(40, seed=s, groups={"A": [s % 40]}) for s in range(30)]
    with TrxFile.empty() as g:
        caps = []
        for part in parts:
            g.append(part)
            caps.append(g.capacity)
        stream_caps = sorted({c[0] for c in caps})
        assert len(stream_caps) <= 3 and stream_caps[-1] >= 1200
        for small, big in zip(stream_caps, stream_caps[1:], strict=False):
            assert big >= small * GROWTH
        assert_arrays_equal(g.positions, np.concatenate([p.positions for p in parts]))
        assert _groups(g)["A"] == [40 * s + s % 40 for s in range(30)]
        assert g.header["NB_STREAMLINES"] == 1200
        g.resize()
        assert g.capacity == (1200, g.nb_vertices)


def test_append_nibabel_and_dipy_objects_checking_the_space(temp_root: Path) -> None:
    src = make_trx(4, seed=7)
    sft = src.to_sft()
    with TrxFile.empty(like=src) as g:
        g.append(src.to_tractogram())  # plain Tractogram: RAS+ mm in g's space
        g.append(sft)
        assert len(g) == 8
        np.testing.assert_allclose(g.positions, np.concatenate([src.positions] * 2), atol=1e-5)
        assert_arrays_equal(g.dps["w"], np.concatenate([src.dps["w"]] * 2), "w")
        moved = src.to_sft()
        moved.to_vox()
        other = make_trx(2, seed=1, affine=np.diag([3.0, 3, 3, 1]))
        with pytest.raises(ValueError, match="space differs.*VOXEL_TO_RASMM differs by up to 1"):
            g.append(other.to_sft())
        with pytest.raises(ValueError, match=r"DIMENSIONS \[1, 2, 3\] instead of \[30, 40, 50\]"):
            g.append(make_trx(2, dims=(1, 2, 3)))
        g.append(moved)  # voxel space is converted back to RASMM
        np.testing.assert_allclose(g.positions[-src.nb_vertices:], src.positions, atol=1e-4)
        with pytest.raises(TypeError, match="cannot append a list"):
            g.append([1, 2])


def test_append_a_trk_file_checks_its_header_space(tmp_path: Path, temp_root: Path) -> None:
    src = make_trx(3, seed=4, dpv=False)
    tgm = Tractogram(src.streamlines, affine_to_rasmm=np.eye(4))
    trk = tmp_path / "x.trk"
    nib.streamlines.save(tgm, str(trk), header={nib.streamlines.Field.VOXEL_TO_RASMM: AFFINE,
                                                nib.streamlines.Field.DIMENSIONS: DIMS,
                                                nib.streamlines.Field.VOXEL_SIZES: (2, 2, 2)})
    with TrxFile.empty(affine=AFFINE, dimensions=DIMS) as g:
        g.append(nib.streamlines.load(str(trk)))
        np.testing.assert_allclose(g.positions, src.positions, atol=1e-4)
    with TrxFile.empty(affine=AFFINE, dimensions=(9, 9, 9)) as g, \
            pytest.raises(ValueError, match="DIMENSIONS"):
        g.append(nib.streamlines.load(str(trk)))


def test_first_append_fixes_space_and_keys(temp_root: Path) -> None:
    with TrxFile.empty(positions_dtype="float64", offsets_dtype="uint32") as g:
        g.append(make_trx(2, seed=1))
        np.testing.assert_array_equal(g.affine, AFFINE)
        assert sorted(g.dps) == ["rgb", "w"] and g.positions_dtype == np.dtype("<f8")
        assert g.offsets_dtype == np.dtype("<u4")
        with pytest.raises(ValueError, match="no dps 'rgb', 'w'"):
            g.append(make_trx(2, dps=False))


def test_append_key_checks(temp_root: Path) -> None:
    base = make_trx(2, seed=1, dpv=False)
    with TrxFile.empty(like=base) as g:
        extra = TrxFile.from_arrays(base.positions, lengths=base.lengths, affine=AFFINE,
                                    dimensions=DIMS, dps={**base.dps, "q": np.ones(2)})
        with pytest.raises(ValueError, match="dps 'q' would be lost"):
            g.append(extra)
        g.append(extra, ignore_extra_keys=True)
        wide = TrxFile.from_arrays(base.positions, lengths=base.lengths, affine=AFFINE,
                                   dimensions=DIMS, dps={"w": np.ones(2, "<f8"),
                                                         "rgb": np.ones((2, 3), "u1")})
        g.append(wide)  # float64 -> float32: same kind
        assert_arrays_equal(g.dps["w"][-2:], np.ones(2, "<f4"))
        for bad, match in (({"w": np.ones(2, "<f4"), "rgb": np.ones((2, 2), "u1")},
                            "'rgb' has 2 column"),
                           ({"w": np.ones(2, "<f4"), "rgb": np.ones((2, 3), "<f4")},
                            "'rgb' is float32, which does not cast to uint8")):
            with pytest.raises(ValueError, match=match):
                g.append(TrxFile.from_arrays(base.positions, lengths=base.lengths,
                                             affine=AFFINE, dimensions=DIMS, dps=bad))
        assert len(g) == 4  # failed appends changed nothing


def test_append_dpg_conflict_raises_before_writing(temp_root: Path) -> None:
    a = make_trx(2, seed=1, groups={"A": [0]}, dpg={"A": {"m": np.array([1.0], "<f4")}})
    b = make_trx(2, seed=2, groups={"A": [1]}, dpg={"A": {"m": np.array([2.0], "<f4")}})
    with TrxFile.empty(like=a) as g:
        g.append(a)
        with pytest.raises(ValueError, match=r"dpg A/m is \[2.0\] there and \[1.0\] here"):
            g.append(b)
        assert len(g) == 2 and _groups(g) == {"A": [0]}


def test_read_only_tractograms_cannot_append(pair: tuple[Path, Path]) -> None:
    with load(pair[0]) as a, pytest.raises(TypeError, match="read-only"):
        a.append(a)


def test_writable_resize_truncates_like_trx_python(pair: tuple[Path, Path],
                                                   temp_root: Path) -> None:
    ref = tmm.load(str(pair[0]))
    ref.resize(nb_streamlines=4)
    with load(pair[0]) as a, TrxFile.empty(like=a) as g:
        g.append(a)
        before = g.select([5, 0])
        kept_positions = np.array(before.positions)
        assert g.resize(4) is g
        assert len(g) == 4 and g.capacity == (4, g.nb_vertices)
        assert_arrays_equal(g.positions, ref.streamlines.get_data(), "positions")
        np.testing.assert_array_equal(g.lengths, ref.streamlines._lengths)
        np.testing.assert_array_equal(np.asarray(g.dps["w"]).reshape(4, 1),
                                      ref.data_per_streamline["w"])
        np.testing.assert_array_equal(np.ravel(g.dpv["fa"]),
                                      np.ravel(ref.data_per_vertex["fa"].get_data()))
        assert _groups(g) == {g_: np.asarray(v).tolist() for g_, v in ref.groups.items()} \
            == {"A": [0], "B": [1]}
        assert sorted(g.dpg) == ["A"]
        # a view made before keeps its data through resize and later appends
        g.append(a)
        assert_arrays_equal(before.positions, kept_positions)
        assert len(g) == 10
        g.resize(20, g.nb_vertices + 100)
        assert g.capacity == (20, g.nb_vertices + 100)
        with pytest.raises(ValueError, match="streamlines are never cut"):
            g.resize(10, g.nb_vertices - 1)
        g.resize(1, keep_empty_groups=True)
        assert _groups(g) == {"A": [0], "B": []}


def test_read_only_resize_trims_trailing_capacity_like_trx_python(tmp_path: Path) -> None:
    lengths = [3, 0, 2, 4, 0, 0]
    made = make_trx(6, seed=9, lengths=lengths, groups={"A": [0, 3], "Z": [5]},
                    dpg={"Z": {"v": np.array([1], "u1")}})
    path = save(made, tmp_path / "prealloc.trx")
    ref = tmm.load(str(path))
    ref.resize()
    with load(path) as trx:
        view = trx.resize()
        assert view.is_view and len(view) == 4 and view.nb_vertices == 9
        assert_arrays_equal(view.positions, ref.streamlines.get_data())
        np.testing.assert_array_equal(view.lengths, ref.streamlines._lengths)
        np.testing.assert_array_equal(np.asarray(view.dps["rgb"]),
                                      ref.data_per_streamline["rgb"])
        assert _groups(view) == {"A": [0, 3]}  # Z held only unused capacity: dropped
        assert view.dpg == {}
        assert _groups(trx.resize(keep_empty_groups=True)) == {"A": [0, 3], "Z": []}
        first = trx.resize(2)
        ref2 = tmm.load(str(path))
        ref2.resize(nb_streamlines=2)
        assert_arrays_equal(first.positions, ref2.streamlines.get_data())
        assert _groups(first) == {"A": [0]}
        assert len(trx.resize(6, 9)) == 6
        with load(save(view, tmp_path / "trimmed.trx")) as back:
            assert_trx_equal(back, view)
        with pytest.raises(ValueError, match="can only be truncated"):
            trx.resize(7)
        with pytest.raises(ValueError, match="streamlines are never cut"):
            trx.resize(4, 8)


def test_empty_growable_saves_an_empty_file(tmp_path: Path, temp_root: Path) -> None:
    with TrxFile.empty(10, 100, affine=AFFINE, dimensions=DIMS) as g:
        out = save(g, tmp_path / "empty.trx")
    with load(out) as back:
        assert len(back) == 0 and back.nb_vertices == 0
        np.testing.assert_array_equal(back.affine, AFFINE)
    with pytest.raises(ValueError, match="capacities must be >= 0"):
        TrxFile.empty(-1)
    with pytest.raises(ValueError, match="positions dtype"):
        TrxFile.empty(positions_dtype="int8")


def test_views_keep_their_data_across_truncation_and_append() -> None:
    """A view made before resize(N) + append must not see the rows written afterwards."""
    a = TrxFile.from_arrays(np.arange(15, dtype=np.float32).reshape(5, 3), lengths=[2, 3],
                            dps={"s": np.array([1.0, 2.0])})
    b = TrxFile.from_arrays(100 + np.arange(15, dtype=np.float32).reshape(5, 3),
                            lengths=[4, 1], dps={"s": np.array([7.0, 8.0])})
    g = TrxFile.empty(like=a)
    g.append(a)
    view, whole = g.select([1]), g.select([0, 1])
    g.resize(1)
    g.append(b)
    np.testing.assert_array_equal(view.positions, np.arange(6, 15).reshape(3, 3))
    np.testing.assert_array_equal(view.dps["s"], [2.0])
    np.testing.assert_array_equal(whole.positions, np.arange(15).reshape(5, 3))
    g.resize(0)
    np.testing.assert_array_equal(whole.positions, np.arange(15).reshape(5, 3))
    assert len(g) == 0
    g.close()


def test_empty_makes_a_growable_whatever_was_imported_first() -> None:
    # trxfile does not import growable (which imports trxfile): the growable class names
    # itself to TrxFile when defined, and trx_nipype.core always imports it
    code = ("from trx_nipype.core.trxfile import TrxFile\n"
            "g = TrxFile.empty(2, 8)\n"
            "print(type(g).__name__, g.capacity)\n"
            "g.close()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["GrowableTrxFile", "(2,", "8)"]
