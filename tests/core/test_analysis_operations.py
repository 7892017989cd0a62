"""The analysis operations (filter, density, sample, profile, resample) against dipy.

Every real tractogram shipped with dipy and nibabel is put on a grid that holds
it (same positions, a shifted copy of its own affine, so oblique and LPS
affines stay), given groups, dps, dpv and dpg, written by trx-python (unaligned
members: the files users have), and run through each operation with small
chunks (streamlines split over many chunk boundaries). dipy's functions run
on the same streamlines as writable float arrays.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dipy.stats.analysis import afq_profile
from dipy.tracking.streamline import Streamlines, length, set_number_of_points, values_from_volume
from dipy.tracking.utils import density_map as dipy_density_map
from dipy.tracking.utils import target
from trx.trx_file_memmap import load as trx_python_load
from trx.trx_file_memmap import save as trx_python_save
from trx_test_helpers import real_tractograms

from trx_nipype.core import TrxFile, TrxFormatError, load, load_any, save
from trx_nipype.core.errors import ParameterError, SpaceWarning, UsageError
from trx_nipype.core.metrics import iter_streamlines, lengths_mm
from trx_nipype.core.operations.analysis_io import Grid, grid_of
from trx_nipype.core.operations.density import count_streamlines, density_map
from trx_nipype.core.operations.filtering import DpsRange, filter_streamlines, roi_hits
from trx_nipype.core.operations.resampling import (
    counts_for_step,
    interpolation_weights,
    resample_streamlines,
)
from trx_nipype.core.operations.scalars import (
    bundle_profile,
    interpolate,
    sample_scalar_map,
    tract_profile,
)

REAL = list(real_tractograms())
SMALL_CHUNK = 37  # vertices: most streamlines straddle a chunk boundary somewhere


def covering(trx: TrxFile, seed: int = 0) -> TrxFile:
    """The same streamlines on a grid that holds them, with groups, dps, dpv and dpg."""
    pos = np.asarray(trx.positions)
    inv = np.linalg.inv(trx.affine)
    vox = pos @ inv[:3, :3].T + inv[:3, 3]
    lo = np.floor(vox.min(axis=0)) - 2
    shift = np.eye(4)
    shift[:3, 3] = lo
    affine = trx.affine @ shift
    dims = (np.ceil(vox.max(axis=0) - lo) + 3).astype(int)
    n = len(trx)
    rng = np.random.default_rng(seed)
    dps = {k: np.asarray(v) for k, v in trx.dps.items()}
    dps["weight"] = rng.random(n).astype(np.float32)
    dpv = {k: np.asarray(v) for k, v in trx.dpv.items()}
    dpv["x"] = pos[:, 0].astype(np.float32)  # linear in position: resampled exactly
    groups = {"A": np.flatnonzero(rng.random(n) < 0.6), "B": np.flatnonzero(rng.random(n) < 0.5)}
    groups = {g: i for g, i in groups.items() if len(i)}
    return TrxFile.from_arrays(pos, lengths=trx.lengths, affine=affine, dimensions=dims,
                               dps=dps, dpv=dpv, groups=groups,
                               dpg={g: {"volume": np.array([float(len(i))], np.float32)}
                                    for g, i in groups.items()})


def streamlines_of(trx: TrxFile, dtype=np.float32) -> list[np.ndarray]:
    return [np.array(s, dtype=dtype) for s in trx.streamlines]


@pytest.fixture(scope="module", params=REAL, ids=[r[0] for r in REAL])
def real(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tractogram on a covering grid, as a TRX written by trx-python."""
    name, path = request.param
    reference = path.with_suffix(".nii.gz") if path.suffix == ".tck" else None
    tmp = tmp_path_factory.mktemp("real")
    with load_any(path, reference=reference) as trx:
        ours = save(covering(trx), tmp / "ours.trx")
    theirs = trx_python_load(str(ours))
    trx_python_save(theirs, str(tmp / "theirs.trx"))
    theirs.close()
    return tmp / "theirs.trx"


def image_on(trx: TrxFile, path: Path, seed: int = 1, *, mask: bool = False) -> np.ndarray:
    """A smooth random image (or a sparse mask) on the tractogram's grid."""
    rng = np.random.default_rng(seed)
    dims = tuple(int(d) for d in trx.dimensions)
    if mask:
        data = (rng.random(dims) < 0.02).astype(np.uint8)
    else:
        grid = np.meshgrid(*[np.arange(d) for d in dims], indexing="ij")
        data = (0.5 + 0.3 * np.sin(grid[0] / 3.0) * np.cos(grid[1] / 4.0)
                + 0.01 * rng.random(dims)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, trx.affine), path)
    return data


# ----------------------------------------------------------------- lengths, dipy helpers
def test_dipy_functions_work_through_iter_streamlines(real: Path) -> None:
    with load(real) as trx:
        with pytest.raises(ValueError, match="read-only"):
            length(trx.streamlines)  # the issue: dipy refuses the read-only maps
        chunks = list(iter_streamlines(trx, chunk_vertices=SMALL_CHUNK))
        got = np.concatenate([length(c) for c in chunks])
        expected = length(streamlines_of(trx, np.float32))
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        np.testing.assert_allclose(lengths_mm(trx), expected, rtol=1e-5, atol=1e-5)
        resampled = [set_number_of_points(c, 7) for c in chunks]
        assert sum(len(r) for r in resampled) == len(trx)


# ----------------------------------------------------------------- density
def test_density_equals_dipy(real: Path, tmp_path: Path) -> None:
    with load(real) as trx:
        expected = dipy_density_map(streamlines_of(trx), trx.affine, trx.dimensions)
        res = density_map(real, tmp_path / "d.nii.gz", chunk_vertices=SMALL_CHUNK)
        img = nib.load(res.out_file)
        np.testing.assert_array_equal(np.asarray(img.dataobj), expected)
        np.testing.assert_allclose(img.affine, trx.affine, atol=1e-6)
        assert res.nb_voxels == np.count_nonzero(expected)
        for g in trx.groups:  # groups, and views as inputs of the core function
            view = trx.get_group(g)
            np.testing.assert_array_equal(
                count_streamlines(view, grid_of(trx), chunk_vertices=5),
                dipy_density_map(streamlines_of(view), trx.affine, trx.dimensions))
        both = density_map(real, tmp_path / "g.nii", groups=sorted(trx.groups), binary=True)
        union = trx.select_groups(sorted(trx.groups))
        np.testing.assert_array_equal(
            np.asarray(nib.load(both.out_file).dataobj),
            (dipy_density_map(streamlines_of(union), trx.affine, trx.dimensions) > 0))
        assert nib.load(both.out_file).get_data_dtype() == np.uint8


def test_density_in_a_reference_grid_and_outside_it(tmp_path: Path) -> None:
    pos = np.array([[0, 0, 0], [1, 1, 1], [5, 5, 5], [9.4, 0, 0]], dtype=np.float32)
    src = save(TrxFile.from_arrays(pos, lengths=[3, 1], dimensions=[4, 4, 4]),
               tmp_path / "in.trx")
    ref_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(np.zeros((6, 6, 6), np.uint8), ref_affine), tmp_path / "ref.nii")
    res = density_map(src, tmp_path / "d.nii.gz", reference=tmp_path / "ref.nii")
    expected = dipy_density_map([pos[:3], pos[3:]], ref_affine, (6, 6, 6))
    np.testing.assert_array_equal(np.asarray(nib.load(res.out_file).dataobj), expected)
    with pytest.raises(ValueError, match=r"in\.trx: 2 streamlines have points outside the "
                                         r"grid \(DIMENSIONS \[4, 4, 4\]\), the first is "
                                         r"streamline 0"):
        density_map(src, tmp_path / "e.nii.gz")
    assert not (tmp_path / "e.nii.gz").exists()
    with pytest.raises(KeyError, match="no group 'CST'; groups present: none"):
        density_map(src, tmp_path / "e.nii.gz", groups=["CST"])


def test_density_output_is_deterministic(tmp_path: Path) -> None:
    pos = np.random.default_rng(0).random((50, 3)).astype(np.float32) * 3
    src = save(TrxFile.from_arrays(pos, lengths=[10] * 5, dimensions=[4, 4, 4]),
               tmp_path / "in.trx")
    a = density_map(src, tmp_path / "a.nii.gz").out_file.read_bytes()
    b = density_map(src, tmp_path / "b.nii.gz").out_file.read_bytes()
    assert a == b


# ----------------------------------------------------------------- filter
def _kept(trx: TrxFile, out: Path) -> np.ndarray:
    """Which input streamlines are in ``out`` (matched by their first vertex and count)."""
    with load(out) as got:
        keys = {(tuple(np.asarray(s[0]).tolist()), len(s)) for s in got.streamlines}
        return np.array([(tuple(np.asarray(s[0]).tolist()), len(s)) in keys
                         if len(s) else False for s in trx.streamlines])


def test_filter_by_masks_equals_dipy_target(real: Path, tmp_path: Path) -> None:
    with load(real) as trx:
        inc = image_on(trx, tmp_path / "inc.nii.gz", seed=2, mask=True)
        exc = image_on(trx, tmp_path / "exc.nii.gz", seed=3, mask=True)
        sls = streamlines_of(trx)
        nonempty = [s for s in sls if len(s)]
        reach_inc = {id(s) for s in target(nonempty, trx.affine, inc)}
        reach_exc = {id(s) for s in target(nonempty, trx.affine, exc)}
        want = np.array([id(s) in reach_inc and id(s) not in reach_exc if len(s) else False
                         for s in sls])
        res = filter_streamlines(real, tmp_path / "out.trx", include=[tmp_path / "inc.nii.gz"],
                                 exclude=[tmp_path / "exc.nii.gz"], chunk_vertices=SMALL_CHUNK)
        assert res.nb_streamlines == int(want.sum())
        check_selection(trx, res.out_file, np.flatnonzero(want))
        # endpoints: the first or the last vertex in the mask
        ends = np.array([bool(len(s)) and bool(list(target([s[[0, -1]]], trx.affine, inc)))
                         for s in sls])
        res = filter_streamlines(real, tmp_path / "ends.trx", include=[tmp_path / "inc.nii.gz"],
                                 roi_mode="endpoints", chunk_vertices=SMALL_CHUNK)
        check_selection(trx, res.out_file, np.flatnonzero(ends))


def test_filter_by_length_and_dps_follow_everything(real: Path, tmp_path: Path) -> None:
    with load(real) as trx:
        lens = length(streamlines_of(trx, np.float64))
        # bounds off the values themselves: float rounding must not decide
        lo, hi = np.percentile(lens, [25, 80]) + [-1e-6, 1e-6]
        weight = np.asarray(trx.dps["weight"])
        want = (lens >= lo) & (lens <= hi) & (weight >= 0.2)
        res = filter_streamlines(real, tmp_path / "out.trx", min_length=lo, max_length=hi,
                                 dps_ranges=["weight:0.2:"], chunk_vertices=SMALL_CHUNK)
        assert res.nb_input == len(trx) and res.nb_streamlines == int(want.sum())
        check_selection(trx, res.out_file, np.flatnonzero(want))


def check_selection(trx: TrxFile, out: Path, idx: np.ndarray) -> None:
    """``out`` holds exactly streamlines ``idx`` of ``trx`` with their dps, dpv, groups, dpg."""
    got = trx_python_load(str(out))  # read back by an independent reader
    try:
        assert len(got) == len(idx)
        exp = trx.select(idx, keep_empty_groups=True)
        if len(idx) == 0:  # (trx-python skips members of zero bytes: read with ours)
            with load(out) as empty:
                assert len(empty) == 0 and sorted(empty.groups) == sorted(trx.groups)
            return
        np.testing.assert_array_equal(got.streamlines._data, exp.positions)
        np.testing.assert_array_equal(got.streamlines._lengths, exp.lengths)
        assert sorted(got.data_per_streamline) == sorted(exp.dps)
        for k in exp.dps:
            np.testing.assert_array_equal(np.asarray(got.data_per_streamline[k]).reshape(
                np.asarray(exp.dps[k]).shape), exp.dps[k])
        for k in exp.dpv:
            np.testing.assert_array_equal(np.asarray(got.data_per_vertex[k]._data).reshape(
                np.asarray(exp.dpv[k]).shape), exp.dpv[k])
        assert sorted(got.groups) == sorted(trx.groups)  # groups kept, even emptied ones
        for g in trx.groups:
            np.testing.assert_array_equal(np.asarray(got.groups[g]), exp.groups[g])
            np.testing.assert_array_equal(np.asarray(got.data_per_group[g]["volume"]).ravel(),
                                          np.asarray(trx.dpg[g]["volume"]).ravel())
    finally:
        got.close()


def test_filter_bad_inputs_name_the_file_and_the_problem(tmp_path: Path) -> None:
    pos = np.zeros((4, 3), np.float32)
    src = save(TrxFile.from_arrays(pos, lengths=[2, 2], dimensions=[4, 4, 4],
                                   dps={"w": np.ones(2, np.float32)}), tmp_path / "in.trx")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 5), np.uint8), np.eye(4)), tmp_path / "dims.nii")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.diag([2, 2, 2, 1.0])),
             tmp_path / "aff.nii")
    with pytest.raises(TrxFormatError, match=r"dims\.nii: expected a mask on the grid of the "
                                             r"tractogram .*in\.trx.*DIMENSIONS \[4, 4, 5\] "
                                             r"instead of \[4, 4, 4\]"):
        filter_streamlines(src, tmp_path / "o.trx", include=[tmp_path / "dims.nii"])
    with pytest.raises(TrxFormatError, match=r"aff\.nii: .*VOXEL_TO_RASMM differs by up to 1"):
        filter_streamlines(src, tmp_path / "o.trx", exclude=[tmp_path / "aff.nii"])
    with pytest.raises(KeyError, match=r"in\.trx: no data per streamline 'fa'; dps present: w"):
        filter_streamlines(src, tmp_path / "o.trx", dps_ranges=[DpsRange("fa", 0, 1)])
    with pytest.raises(FileNotFoundError, match="missing.nii"):
        filter_streamlines(src, tmp_path / "o.trx", include=[tmp_path / "missing.nii"])
    with pytest.raises(ValueError, match="KEY:MIN:MAX"):
        DpsRange.parse("w")
    assert not (tmp_path / "o.trx").exists()


def test_roi_hits_on_views_and_outside_points() -> None:
    pos = np.array([[0, 0, 0], [1, 0, 0], [3, 0, 0], [9, 9, 9], [1, 0, 0], [-5, 0, 0]],
                   dtype=np.float32)
    trx = TrxFile.from_arrays(pos, lengths=[2, 2, 2], dimensions=[4, 4, 4])
    mask = np.zeros((4, 4, 4), np.uint8)
    mask[1, 0, 0] = 1
    grid = grid_of(trx)
    assert roi_hits(trx, [mask], grid)[0].tolist() == [True, False, True]
    view = trx.select([2, 1, 0])
    assert roi_hits(view, [mask], grid, chunk_vertices=1)[0].tolist() == [True, False, True]
    assert roi_hits(view, [mask], grid, mode="endpoints")[0].tolist() == [True, False, True]


# ----------------------------------------------------------------- sample
def test_sample_equals_values_from_volume(real: Path, tmp_path: Path) -> None:
    with load(real) as trx:
        data = image_on(trx, tmp_path / "fa.nii.gz")
        seq = Streamlines(streamlines_of(trx))
        expected = values_from_volume(data, seq, trx.affine)
        if len(trx.positions):  # the very values of dipy, before the float32 of the dpv
            np.testing.assert_array_equal(
                interpolate(data.astype(np.float64), grid_of(trx),
                            np.asarray(trx.positions, np.float32)),
                np.concatenate([np.asarray(e, np.float64) for e in expected]))
        res = sample_scalar_map(real, tmp_path / "fa.nii.gz", tmp_path / "out.trx", name="img",
                                chunk_vertices=SMALL_CHUNK)
        assert (res.dpv_key, res.dps_key) == ("img", "img_mean")
    got = trx_python_load(str(res.out_file))
    try:
        vals = np.asarray(got.data_per_vertex["img"]._data).ravel()
        assert vals.dtype == np.float32
        flat = np.concatenate([np.asarray(e, np.float64) for e in expected]) if len(expected) \
            else np.zeros(0)
        np.testing.assert_allclose(vals, flat, rtol=1e-5, atol=1e-6)
        means = np.asarray(got.data_per_streamline["img_mean"]).ravel()
        want = np.array([np.mean(e) if len(e) else np.nan for e in expected])
        np.testing.assert_allclose(means, want, rtol=1e-5, atol=1e-6)
        # everything else is carried
        with load(real) as trx:
            assert sorted(got.data_per_vertex) == sorted([*trx.dpv, "img"])
            assert sorted(got.groups) == sorted(trx.groups)
            np.testing.assert_array_equal(got.streamlines._data, trx.positions)
    finally:
        got.close()


def test_sample_refuses_existing_keys_and_other_grids(tmp_path: Path) -> None:
    pos = np.zeros((4, 3), np.float32)
    src = save(TrxFile.from_arrays(pos, lengths=[2, 2], dimensions=[4, 4, 4],
                                   dpv={"fa": np.ones(4, np.float32)}), tmp_path / "in.trx")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), tmp_path / "fa.nii")
    with pytest.raises(ValueError, match=r"in\.trx: already holds dpv 'fa'; choose another"):
        sample_scalar_map(src, tmp_path / "fa.nii", tmp_path / "o.trx", name="fa")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4, 2), np.float32), np.eye(4)), tmp_path / "4d.nii")
    with pytest.raises(TrxFormatError, match=r"4d\.nii: expected a 3-D image, found shape"):
        sample_scalar_map(src, tmp_path / "4d.nii", tmp_path / "o.trx", name="md")
    assert not (tmp_path / "o.trx").exists()


# ----------------------------------------------------------------- profile
def test_profile_equals_afq_profile(real: Path, tmp_path: Path) -> None:
    with load(real) as trx:
        data = image_on(trx, tmp_path / "fa.nii.gz").astype(np.float64)
        res = tract_profile(real, tmp_path / "fa.nii.gz", tmp_path / "p.csv", nb_points=20,
                            chunk_vertices=SMALL_CHUNK)
        with open(res.out_file, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert list(rows[0]) == ["tract", "node", "metric", "value", "n_streamlines"]
        assert res.tracts == sorted(trx.groups)
        for g in trx.groups:
            bundle = Streamlines([s for s in streamlines_of(trx.get_group(g)) if len(s) > 1])
            got = [float(r["value"]) for r in rows if r["tract"] == g]
            if not len(bundle):  # dipy refuses: ours says NaN
                assert np.isnan(got).all()
                continue
            expected = afq_profile(data, bundle, trx.affine, n_points=20, orient_by=bundle[0])
            assert [int(r["node"]) for r in rows if r["tract"] == g] == list(range(20))
            assert {r["metric"] for r in rows} == {"fa"}
            np.testing.assert_allclose(got, expected, rtol=1e-5)
            assert {int(r["n_streamlines"]) for r in rows if r["tract"] == g} == \
                {len(trx.groups[g])}
            # a view in, with chunks of one streamline or a few vertices
            np.testing.assert_allclose(
                bundle_profile(trx.get_group(g), data, grid_of(trx), nb_points=20,
                               chunk_vertices=1), expected, rtol=1e-5)


def test_profile_orients_reversed_streamlines_as_dipy() -> None:
    # half the streamlines of a real bundle stored backwards: dipy's orient_by_streamline
    # turns them round before the profile; ours reads their values backwards instead
    import importlib.resources

    fornix = importlib.resources.files("dipy") / "data" / "files" / "tracks300.trk"
    original = nib.streamlines.load(str(fornix)).streamlines
    rng = np.random.default_rng(3)
    lines = [np.array(s, np.float32)[::-1].copy() if i and rng.random() < 0.5
             else np.array(s, np.float32) for i, s in enumerate(original)]
    low = np.floor(np.concatenate(lines).min(0)) - 2
    affine = np.eye(4)
    affine[:3, 3] = low
    dims = tuple(int(d) for d in np.ceil(np.concatenate(lines).max(0) - low) + 3)
    data = np.random.default_rng(0).random(dims) + 1.0
    trx = TrxFile.from_arrays(np.concatenate(lines), lengths=[len(s) for s in lines],
                              affine=affine, dimensions=dims)
    expected = afq_profile(data, Streamlines(lines), affine, n_points=50, orient_by=lines[0])
    for chunk in (SMALL_CHUNK, 10**6):
        np.testing.assert_allclose(bundle_profile(trx, data, grid_of(trx), nb_points=50,
                                                  chunk_vertices=chunk), expected, rtol=1e-6)


def test_profile_table_tsv_all_and_bad_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pos = (rng.random((60, 3)) * 3).astype(np.float32)
    src = save(TrxFile.from_arrays(pos, lengths=[20, 20, 20], dimensions=[4, 4, 4],
                                   groups={"CST": [0, 2]}), tmp_path / "in.trx")
    plain = save(TrxFile.from_arrays(pos, lengths=[20, 20, 20], dimensions=[4, 4, 4]),
                 tmp_path / "plain.trx")
    data = rng.random((4, 4, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "sub-01_MD.nii.gz")
    res = tract_profile(plain, tmp_path / "sub-01_MD.nii.gz", tmp_path / "p.tsv", nb_points=5)
    lines = res.out_file.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["tract", "node", "metric", "value", "n_streamlines"]
    assert [ln.split("\t")[0] for ln in lines[1:]] == ["all"] * 5
    assert lines[1].split("\t")[2] == "sub-01_MD"
    with pytest.raises(ValueError, match="at least 2 points, got 1"):
        tract_profile(src, tmp_path / "sub-01_MD.nii.gz", tmp_path / "q.csv", nb_points=1)
    with pytest.raises(KeyError, match=r"in\.trx: no group 'AF'; groups present: CST"):
        tract_profile(src, tmp_path / "sub-01_MD.nii.gz", tmp_path / "q.csv", groups=["AF"])
    assert not (tmp_path / "q.csv").exists()


# ----------------------------------------------------------------- resample
def test_resample_equals_set_number_of_points(real: Path, tmp_path: Path) -> None:
    with load(real) as trx:
        sls = [s for s in streamlines_of(trx) if len(s) > 1]
        if not sls:
            pytest.skip("no streamline of two points or more")
        res = resample_streamlines(real, tmp_path / "out.trx", nb_points=12,
                                   chunk_vertices=SMALL_CHUNK)
        expected = set_number_of_points(sls, nb_points=12)
        with load(res.out_file) as got:
            keep = np.asarray(trx.lengths) > 1
            out = got.select(np.flatnonzero(keep))
            assert set(out.lengths.tolist()) == {12}
            # a fixed count goes through dipy's own function, chunk by chunk: equal
            np.testing.assert_array_equal(out.positions, np.concatenate(expected))
            # dpv interpolated with the same weights: x is the first coordinate
            np.testing.assert_allclose(np.asarray(out.dpv["x"]), out.positions[:, 0],
                                       atol=1e-4, rtol=1e-5)
            assert sorted(got.groups) == sorted(trx.groups)
            assert sorted(got.dps) == sorted(trx.dps)


def test_resample_by_step_and_refusals(tmp_path: Path) -> None:
    pos = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 4], [5, 5, 5], [0, 0, 0], [3, 4, 0]],
                   dtype=np.float32)
    src = save(TrxFile.from_arrays(pos, lengths=[3, 1, 2, 0], dimensions=[9, 9, 9],
                                   dpv={"label": np.arange(6, dtype=np.uint8)}),
               tmp_path / "in.trx")
    with pytest.raises(ValueError, match=r"in\.trx: data per vertex 'label' holds integers"):
        resample_streamlines(src, tmp_path / "o.trx", step=1.0)
    with pytest.raises(ValueError, match="at least 2 points, got 1"):
        resample_streamlines(src, tmp_path / "o.trx", nb_points=1)
    res = resample_streamlines(src, tmp_path / "o.trx", step=1.5, drop_dpv=True)
    with load(res.out_file) as got:
        assert got.lengths.tolist() == [4, 2, 5, 0]  # ceil(L / 1.5) + 1; one point repeated
        np.testing.assert_allclose(got.streamlines[0][:, 2], [0, 4 / 3, 8 / 3, 4], rtol=1e-6)
        np.testing.assert_array_equal(got.streamlines[1], [[5, 5, 5], [5, 5, 5]])
        assert not got.dpv
    assert counts_for_step(np.array([3.0]), 1.0).tolist() == [4]


def test_interpolation_weights_hit_first_and_last_vertices_exactly() -> None:
    rng = np.random.default_rng(5)
    lens = np.array([5, 1, 0, 30, 2])
    pos = rng.normal(size=(int(lens.sum()), 3))
    pos[6] = pos[5]  # a zero-length segment
    k, t = interpolation_weights(pos, lens, np.array([7, 3, 4, 50, 2]))
    assert len(k) == 7 + 3 + 0 + 50 + 2
    ends = np.cumsum([7, 3, 0, 50, 2])
    starts = ends - [7, 3, 0, 50, 2]
    src_starts = np.cumsum(lens) - lens
    for s, e, ss, n in zip(starts, ends, src_starts, lens, strict=True):
        if e > s:
            assert k[s] == ss and t[s] == 0
            assert k[e - 1] == ss + n - 1 and t[e - 1] == 0


def test_resample_of_a_view_saved_and_a_directory_output(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lens = rng.integers(2, 30, size=40)
    pos = np.cumsum(rng.normal(size=(int(lens.sum()), 3)), axis=0).astype(np.float32)
    trx = TrxFile.from_arrays(pos, lengths=lens, dimensions=[9, 9, 9])
    src = save(trx.select(np.arange(40)[::-1]), tmp_path / "view.trx")
    res = resample_streamlines(src, tmp_path / "outdir", nb_points=9, chunk_vertices=20)
    assert (tmp_path / "outdir" / "header.json").is_file()
    expected = set_number_of_points([np.array(s) for s in trx.select(np.arange(40)[::-1])
                                     .streamlines], nb_points=9)
    with load(res.out_file) as got:
        np.testing.assert_allclose(got.positions, np.concatenate(expected), atol=1e-4)


def test_grid_voxels_match_dipy_at_borders() -> None:
    affine = np.array([[-1.25, 0, 0, 90], [0, 1.25, 0, -126], [0, 0, 1.25, -72], [0, 0, 0, 1]])
    grid = Grid.of(affine, (10, 10, 10))
    vox = np.array([[0.5, 0.5, 0.5], [-0.5000001, 0, 0], [-0.50001, 0, 0], [9.49, 9.5, 0]])
    pts = nib.affines.apply_affine(affine, vox).astype(np.float32)
    ijk, inside = grid.voxels(pts)
    assert inside.tolist() == [True, True, False, False]
    assert ijk[0].tolist() == [1, 1, 1] and ijk[1].tolist() == [0, 0, 0]


@pytest.mark.parametrize("affine", [
    np.diag([1.25, 1.25, 1.25, 1.0]),
    np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -126], [0, 0, -2.5, 72], [0, 0, 0, 1]]),
    np.array([[0, 0, 1.5, -10], [-1.5, 0, 0, 20], [0, 2.0, 0, -5], [0, 0, 0, 1]]),
    np.array([[0, -2, 0, 20], [-1.93974, 0, -0.487231, 25.1705],
              [-0.48723, 0, 1.93974, 12.3205], [0, 0, 0, 1]]),
], ids=["iso", "flipped", "permuted", "oblique"])
def test_linear_voxels_equal_the_voxels_dipy_finds(affine: np.ndarray) -> None:
    grid = Grid.of(affine, (7, 8, 9))
    rng = np.random.default_rng(4)
    vox = np.concatenate([rng.uniform(-1.5, 9.5, (5000, 3)),  # in and out of the grid
                          np.round(rng.uniform(-1, 9, (5000, 3))) - 0.5])  # on voxel borders
    pts = nib.affines.apply_affine(affine, vox).astype(np.float32)
    ijk, inside = grid.voxels(pts)
    lin, inside2 = grid.linear_voxels(pts)
    np.testing.assert_array_equal(inside2, inside)
    np.testing.assert_array_equal(lin[inside], grid.linear(ijk[inside]))
    # and dipy's own density map, point by point: the voxel it counts, or its refusal
    for p, ok, row in zip(pts[:300], inside[:300], ijk[:300], strict=True):
        try:
            counted = dipy_density_map([p[None]], affine, grid.dimensions)
        except IndexError:
            assert not ok
            continue
        assert ok and np.argwhere(counted).tolist() == [row.tolist()]


# ----------------------------------------------------------------- spaceless inputs, numbers
def _tck_of_a_grid(tmp_path: Path) -> tuple[Path, Path, TrxFile]:
    """A TCK of 3 streamlines in a 10^3 grid of 2 mm, and that grid's image."""
    from trx_nipype.core import convert

    pos = np.array([[2, 2, 2], [4, 4, 4], [6, 6, 6], [2, 4, 6], [8, 8, 8], [10, 2, 2]],
                   np.float32)
    trx = TrxFile.from_arrays(pos, lengths=[2, 2, 2], affine=np.diag([2.0, 2, 2, 1]),
                              dimensions=[10, 10, 10])
    src = save(trx, tmp_path / "in.trx")
    convert(src, tmp_path / "in.tck")
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.float32), trx.affine), tmp_path / "t1.nii")
    return tmp_path / "in.tck", tmp_path / "t1.nii", trx


def test_spaceless_inputs_need_a_reference_only_where_a_space_is_used(tmp_path: Path) -> None:
    tck, t1, trx = _tck_of_a_grid(tmp_path)
    assert filter_streamlines(tck, tmp_path / "f.tck", min_length=4).nb_streamlines == 2
    assert resample_streamlines(tck, tmp_path / "r.tck", nb_points=3).nb_vertices == 9
    with pytest.raises(ParameterError, match=r"in\.tck: \.tck files carry no space.*"
                                             r"give reference= "):
        filter_streamlines(tck, tmp_path / "f.trx", min_length=3)
    with pytest.raises(ParameterError, match=r"in\.tck: \.tck files carry no space"):
        filter_streamlines(tck, tmp_path / "f2.tck", include=[t1])
    with pytest.raises(ParameterError, match=r"in\.tck: \.tck files carry no space"):
        resample_streamlines(tck, tmp_path / "r.trk", nb_points=3)
    filter_streamlines(tck, tmp_path / "f.trx", include=[t1], reference=t1)
    resample_streamlines(tck, tmp_path / "r.trk", nb_points=3, reference=t1)
    for out in (tmp_path / "f.trx", tmp_path / "r.trk"):
        with load_any(out) as got:
            np.testing.assert_array_equal(got.affine, trx.affine)
    res = density_map(tck, tmp_path / "d.nii.gz", reference=t1)
    np.testing.assert_array_equal(np.asarray(nib.load(res.out_file).dataobj),
                                  dipy_density_map(streamlines_of(trx), trx.affine, (10,) * 3))
    with pytest.raises(ParameterError, match=r"in\.tck: .*give reference= "):
        density_map(tck, tmp_path / "d2.nii.gz")
    # sample and profile read the image's grid: it is the TCK's space too
    sample_scalar_map(tck, t1, tmp_path / "s.trx", name="t1")
    tract_profile(tck, t1, tmp_path / "p.csv", nb_points=4)


def test_sample_and_profile_refuse_or_warn_about_vertices_outside(tmp_path: Path) -> None:
    _, t1, trx = _tck_of_a_grid(tmp_path)
    shifted = trx.affine.copy()
    shifted[:3, 3] = 100
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.float32), shifted), tmp_path / "far.nii")
    tck = tmp_path / "in.tck"  # read in the space of the image, which does not hold it
    with pytest.raises(ValueError, match=r"in\.tck: none of its 6 vertices lies inside the "
                                         r"image .*far\.nii \(DIMENSIONS \[10, 10, 10\]\)"):
        sample_scalar_map(tck, tmp_path / "far.nii", tmp_path / "s.trx", name="x")
    with pytest.raises(ValueError, match=r"in\.tck: none of its 6 vertices lies inside"):
        tract_profile(tck, tmp_path / "far.nii", tmp_path / "p.csv")
    assert not (tmp_path / "s.trx").exists() and not (tmp_path / "p.csv").exists()
    # (10, 2, 2) mm is voxel 5 of 4 along x: one vertex out of 6
    nib.save(nib.Nifti1Image(np.ones((5, 10, 10), np.float32), trx.affine),
             tmp_path / "small.nii")
    for run in (lambda: sample_scalar_map(tck, tmp_path / "small.nii", tmp_path / "s.trx",
                                          name="x", chunk_vertices=1),
                lambda: tract_profile(tck, tmp_path / "small.nii", tmp_path / "p.csv",
                                      chunk_vertices=1)):
        with pytest.warns(SpaceWarning) as caught:
            run()
        assert [str(w.message) for w in caught] == [
            f"{tck}: 1 of 6 vertices lie outside the image {tmp_path / 'small.nii'} "
            "(DIMENSIONS [5, 10, 10]); their values are 0 (or partial within one voxel of "
            "its border)"]


def test_lengths_and_steps_must_be_finite(tmp_path: Path) -> None:
    _tck_of_a_grid(tmp_path)
    src = tmp_path / "in.trx"
    for kwargs, words in (({"min_length": float("nan")}, "min_length=nan: expected a length"),
                          ({"max_length": float("inf")}, "max_length=inf: expected a length"),
                          ({"min_length": -1}, "min_length=-1: expected a length")):
        with pytest.raises(ParameterError, match=words):
            filter_streamlines(src, tmp_path / "o.trx", **kwargs)
    with pytest.raises(UsageError, match=r"min_length=5 is above max_length=4"):
        filter_streamlines(src, tmp_path / "o.trx", min_length=5, max_length=4)
    with pytest.raises(ValueError, match=r"'w:nan:1': MIN and MAX must be numbers"):
        filter_streamlines(src, tmp_path / "o.trx", dps_ranges=["w:nan:1"])
    for step in (float("inf"), float("nan"), 0.0):
        with pytest.raises(ParameterError, match=rf"step={step}: expected a distance above 0"):
            resample_streamlines(src, tmp_path / "o.trx", step=step)
    assert not (tmp_path / "o.trx").exists()
