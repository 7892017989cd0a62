"""convert() and load_any(): round trips, metadata accounting, references, bbox, formats."""

from __future__ import annotations

import importlib.resources
import importlib.util
import warnings
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dipy.io.streamline import load_tractogram

import trx_nipype.core as core
from trx_nipype.core import TrxFile, TrxFormatError, load, save
from trx_nipype.core.converting import convert, load_any
from trx_nipype.core.formats.dipy_formats import MissingOptionalDependency

NIB = Path(str(importlib.resources.files("nibabel") / "tests" / "data"))
DIPY = Path(str(importlib.resources.files("dipy") / "data" / "files"))
REF = NIB / "standard.nii.gz"
AFFINE = np.array([[2.0, 0, 0, -10], [0, 2, 0, -12], [0, 0, 2, 5], [0, 0, 0, 1]])
DIMS = (20, 30, 40)


def synthetic(n: int = 40, seed: int = 0, *, outside: int = 0) -> TrxFile:
    """Streamlines inside the grid (the first ``outside`` pushed out), with all kinds of data."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 25, n)
    v = int(lengths.sum())
    vox = rng.uniform(0.5, np.array(DIMS) - 1.5, (v, 3))
    pos = (vox @ AFFINE[:3, :3].T + AFFINE[:3, 3]).astype(np.float32)
    if outside:
        pos[: int(lengths[:outside].sum())] += 500
    return TrxFile.from_arrays(
        pos, lengths=lengths, affine=AFFINE, dimensions=DIMS,
        dpv={"fa": rng.random(v).astype(np.float32),
             "rgb": rng.random((v, 3)).astype(np.float32)},
        dps={"weight": rng.random(n).astype(np.float32), "label": np.arange(n, dtype=np.int16)},
        groups={"CST": np.arange(0, n, 3, dtype=np.uint32),
                "AF": np.arange(0, n, 2, dtype=np.uint32)},
        dpg={"CST": {"mean": np.array([0.5], np.float32)}})


@pytest.fixture
def trx_path(tmp_path: Path) -> Path:
    return save(synthetic(), tmp_path / "in.trx")


def _no_warnings_load(path: Path, reference: str = "same"):
    """Read with nibabel, and dipy (which does not take .gz), turning warnings into errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tgm = nib.streamlines.load(path).tractogram
        if str(path).endswith(".gz"):
            return tgm
        return load_tractogram(str(path), reference, bbox_valid_check=False)


# ------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", [".trk", ".trk.gz"])
def test_trx_trk_trx_keeps_positions_data_and_groups(tmp_path: Path, trx_path: Path,
                                                     suffix: str) -> None:
    with pytest.warns(UserWarning) as rec:
        trk = convert(trx_path, tmp_path / f"mid{suffix}")
    messages = "\n".join(str(w.message) for w in rec)
    assert "data per group; dropped 'CST/mean'" in messages
    assert "'label'" not in messages  # int16 values fit float32 exactly
    sft = _no_warnings_load(trk)
    back = convert(trk, tmp_path / "back.trx")
    with load(trx_path) as a, load(back) as b:
        np.testing.assert_allclose(sft.streamlines.get_data(), a.positions, atol=1e-4)
        np.testing.assert_allclose(b.positions, a.positions, atol=1e-4)
        np.testing.assert_array_equal(b.lengths, a.lengths)
        np.testing.assert_array_equal(b.affine, a.affine)
        for key in ("fa", "rgb"):
            np.testing.assert_array_equal(b.dpv[key], a.dpv[key])
        np.testing.assert_array_equal(b.dps["weight"], a.dps["weight"])
        np.testing.assert_array_equal(b.dps["label"], a.dps["label"].astype(np.float32))
        assert b.dps["label"].dtype == np.float32
        assert {k: v.tolist() for k, v in b.groups.items()} == \
            {k: v.tolist() for k, v in a.groups.items()}


def test_trx_tck_trx_keeps_positions_and_reports_the_rest(tmp_path: Path,
                                                          trx_path: Path) -> None:
    with pytest.warns(UserWarning) as rec:
        tck = convert(trx_path, tmp_path / "mid.tck")
    messages = "\n".join(str(w.message) for w in rec)
    for what in ("data per vertex; dropped 'fa', 'rgb'",
                 "data per streamline; dropped 'label', 'weight'",
                 "groups; dropped 'AF', 'CST'", "data per group; dropped 'CST/mean'"):
        assert what in messages
    _no_warnings_load(tck, str(trx_path))
    back = convert(tck, tmp_path / "back.trx", reference=trx_path)
    with load(trx_path) as a, load(back) as b:
        np.testing.assert_array_equal(b.positions, a.positions)  # RAS+ float32 both ways
        np.testing.assert_array_equal(b.lengths, a.lengths)
        np.testing.assert_array_equal(b.affine, a.affine)


def test_trk_to_tck_to_trk_through_streaming(tmp_path: Path) -> None:
    tck = convert(NIB / "standard.trk", tmp_path / "s.tck", chunk_bytes=64)
    trk = convert(tck, tmp_path / "s.trk", reference=NIB / "standard.trk", chunk_bytes=64)
    a = load_tractogram(str(NIB / "standard.trk"), "same", bbox_valid_check=False)
    b = _no_warnings_load(trk)
    np.testing.assert_allclose(b.streamlines.get_data(), a.streamlines.get_data(), atol=1e-4)


@pytest.mark.parametrize("name", ["standard.trk", "standard.LPS.trk", "complex.trk",
                                  "complex_big_endian.trk", "empty.trk"])
def test_real_trk_to_trx_agrees_with_dipy(tmp_path: Path, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # complex*.trk leave their [1, 1, 1] grid
        out = convert(NIB / name, tmp_path / "out.trx", chunk_bytes=100)
    sft = load_tractogram(str(NIB / name), "same", bbox_valid_check=False)
    with load(out) as trx:
        assert len(trx) == len(sft)
        if len(sft):
            np.testing.assert_allclose(trx.positions, sft.streamlines.get_data(), atol=1e-4)
        np.testing.assert_allclose(trx.affine, sft.affine, atol=1e-6)
        for key, val in sft.data_per_point.items():
            np.testing.assert_array_equal(np.asarray(trx.dpv[key]).reshape(len(trx.positions),
                                                                           -1), val.get_data())


def test_real_tck_with_reference_agrees_with_dipy(tmp_path: Path) -> None:
    out = convert(NIB / "standard.tck", tmp_path / "out.trx", reference=REF)
    sft = load_tractogram(str(NIB / "standard.tck"), str(REF), bbox_valid_check=False)
    with load(out) as trx:
        np.testing.assert_allclose(trx.positions, sft.streamlines.get_data(), atol=1e-4)
        np.testing.assert_allclose(trx.affine, sft.affine, atol=1e-6)
        np.testing.assert_array_equal(trx.dimensions, sft.dimensions)


def test_minimal_bundles_to_trx_and_back(tmp_path: Path) -> None:
    with zipfile.ZipFile(DIPY / "minimal_bundles.zip") as zf:
        zf.extractall(tmp_path)
    for path in sorted(tmp_path.rglob("*.trk")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = convert(path, path.with_suffix(".trx"))
            back = convert(out, path.with_suffix(".back.trk"))
        sft = load_tractogram(str(path), "same", bbox_valid_check=False)
        with load(out) as trx:
            np.testing.assert_allclose(trx.positions, sft.streamlines.get_data(), atol=1e-4)
        again = load_tractogram(str(back), "same", bbox_valid_check=False)
        np.testing.assert_allclose(again.streamlines.get_data(), sft.streamlines.get_data(),
                                   atol=1e-4)


def test_trk_output_is_read_by_trx_python_converted_file(tmp_path: Path,
                                                         trx_path: Path) -> None:
    from trx import trx_file_memmap as tmm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trk = convert(trx_path, tmp_path / "x.trk")
    out = convert(trk, tmp_path / "x.trx")
    theirs = tmm.load(str(out))
    try:
        with load(trx_path) as ours:
            np.testing.assert_allclose(theirs.streamlines._data, ours.positions, atol=1e-4)
            assert sorted(theirs.groups) == ["AF", "CST"]
    finally:
        theirs.close()


# ------------------------------------------------------------------ TRX->TRX
def test_trx_reencode_dtype_compression_and_directory(tmp_path: Path, trx_path: Path) -> None:
    zipped = convert(trx_path, tmp_path / "d.trx", compression="deflate",
                     positions_dtype="float16", offsets_dtype="uint32")
    with zipfile.ZipFile(zipped) as zf:
        names = zf.namelist()
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    assert "positions.3.float16" in names and "offsets.uint32" in names
    directory = convert(zipped, tmp_path / "as_dir")
    assert (directory / "header.json").is_file()
    dotted = convert(trx_path, tmp_path / "v1.0", out_format="trx")
    assert (dotted / "header.json").is_file()
    with load(trx_path) as a, load(directory) as b:
        np.testing.assert_allclose(b.positions, a.positions, atol=0.05)
        assert sorted(b.dpg) == ["CST"] and sorted(b.dps) == ["label", "weight"]
        assert b.dps["label"].dtype == np.int16


# ---------------------------------------------------------------------- bbox
def test_bbox_warns_keeps_or_drops(tmp_path: Path) -> None:
    src = save(synthetic(12, outside=2), tmp_path / "o.trx")
    with pytest.warns(UserWarning) as rec:
        kept = convert(src, tmp_path / "kept.trk")
        dropped = convert(src, tmp_path / "dropped.trx", keep_outside=False)
        dropped_trk = convert(src, tmp_path / "dropped.trk", keep_outside=False)
    outside = [str(w.message) for w in rec if "fall outside" in str(w.message)]
    assert len(outside) == 3
    assert "2 of 12 streamlines fall outside the bounding box" in outside[0]
    assert outside[0].endswith("kept (keep_outside=False drops them)")
    assert outside[1].endswith("dropped") and outside[2].endswith("dropped")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert(dropped, tmp_path / "clean.trx")  # nothing outside any more
        convert(src, tmp_path / "unchecked.trx", bbox_check=False)
    assert len(load_tractogram(str(kept), "same", bbox_valid_check=False)) == 12
    sft = load_tractogram(str(dropped_trk), "same")  # dipy's own bbox check passes
    assert len(sft) == 10
    with load(src) as a, load(dropped) as b:
        assert len(b) == 10
        np.testing.assert_array_equal(b.positions, a.select(range(2, 12)).positions)
        assert b.groups["CST"].tolist() == [1, 4, 7]  # 3, 6, 9 re-indexed
    via_trk = convert(dropped_trk, tmp_path / "via.trx")
    with load(via_trk) as c:
        assert c.groups["CST"].tolist() == [1, 4, 7]


def test_bbox_agrees_with_dipy_on_real_files(tmp_path: Path) -> None:
    for path in (NIB / "standard.trk", DIPY / "tracks300.trk"):
        sft = load_tractogram(str(path), "same", bbox_valid_check=False)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            convert(path, tmp_path / (path.stem + ".trx"))
        flagged = any("fall outside" in str(w.message) for w in rec)
        assert flagged == (not sft.is_bbox_in_vox_valid())


# ----------------------------------------------------------------- references
def test_tck_needs_a_reference_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"standard\.tck: \.tck files carry no space"):
        convert(NIB / "standard.tck", tmp_path / "x.trx")
    with pytest.raises(ValueError, match="carry no space"):
        load_any(NIB / "standard.tck")
    assert len(load_any(NIB / "standard.tck", REF)) == 120
    assert len(load_any(NIB / "standard.tck", reference=NIB / "standard.trk")) == 120
    convert(NIB / "standard.tck", tmp_path / "x.tck")  # no space needed: copied as is


def test_reference_that_disagrees_is_an_error(tmp_path: Path, trx_path: Path) -> None:
    with pytest.raises(ValueError, match="differs from the reference"):
        convert(NIB / "standard.trk", tmp_path / "x.trx", reference=trx_path)
    with pytest.raises(FileNotFoundError, match="nope.nii"):
        convert(NIB / "standard.tck", tmp_path / "x.trx", reference=tmp_path / "nope.nii")


def test_space_mismatches_are_format_errors_naming_both_and_how(tmp_path: Path,
                                                                trx_path: Path) -> None:
    """A space that disagrees is a format problem (SpaceMismatchError, a TrxFormatError):
    convert and load_any against a reference, concatenate, append."""
    from trx_nipype.core import SpaceMismatchError, concatenate

    trk = NIB / "standard.trk"
    with pytest.raises(SpaceMismatchError) as err:
        convert(trk, tmp_path / "x.trx", reference=trx_path)
    text = str(err.value)
    assert isinstance(err.value, TrxFormatError) and err.value.path == str(trk)
    assert text.startswith(f"{trk}: its space") and f"reference's ({trx_path}: " in text
    assert "DIMENSIONS" in text or "VOXEL_TO_RASMM differs by up to" in text
    with pytest.raises(SpaceMismatchError, match=rf"^{trx_path}: its space .*{REF}"):
        load_any(trx_path, reference=REF)
    with pytest.raises(SpaceMismatchError, match=rf"^{trk}: its space"):
        load_any(trk, reference=trx_path)
    other = save(TrxFile.from_arrays(np.zeros((2, 3), np.float32), lengths=[2],
                                     affine=np.eye(4), dimensions=[5, 5, 5]),
                 tmp_path / "other.trx")
    with pytest.raises(SpaceMismatchError, match=rf"^{other}: cannot concatenate: input 1 "
                                                 r"\(other.trx\) is not in the space of input 0"):
        concatenate([trx_path, other], tmp_path / "both.trx")
    with load(trx_path) as trx, TrxFile.empty(like=trx) as grown, load(other) as alien:
        with pytest.raises(SpaceMismatchError, match=rf"^{other}: cannot append other.trx: "
                                                     "its space differs"):
            grown.append(alien)


# -------------------------------------------------------------------- others
@pytest.mark.parametrize("suffix", [".vtk", ".vtp", ".fib"])
def test_vtk_formats_agree_with_dipy_both_ways(tmp_path: Path, trx_path: Path,
                                               suffix: str) -> None:
    from dipy.io.streamline import save_tractogram

    ref = tmp_path / "ref.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(DIMS, np.uint8), AFFINE), ref)
    with load(trx_path) as trx, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # data that VTK cannot hold: warned, tested elsewhere
        ours = convert(trx_path, tmp_path / f"ours{suffix}")
        sft = load_tractogram(str(ours), str(ref), bbox_valid_check=False)
        np.testing.assert_array_equal(sft.streamlines._lengths, trx.lengths)
        np.testing.assert_allclose(sft.streamlines.get_data(), trx.positions, atol=1e-4)
        theirs = tmp_path / f"theirs{suffix}"
        save_tractogram(sft, str(theirs), bbox_valid_check=False)
        with load_any(theirs, reference=ref) as back:
            np.testing.assert_array_equal(back.lengths, trx.lengths)
            np.testing.assert_allclose(back.positions, trx.positions, atol=1e-4)
            np.testing.assert_allclose(back.affine, AFFINE)


@pytest.mark.parametrize("suffix", [".vtk", ".vtp", ".fib"])
def test_vtk_output_does_not_pass_on_furys_numpy_warning(tmp_path: Path, suffix: str) -> None:
    """fury's line colours made numpy warn "'where' used without 'out'" on every VTK write."""
    pytest.importorskip("fury")
    trx = TrxFile.from_arrays(np.arange(12, dtype=np.float32).reshape(4, 3), lengths=[2, 2],
                              affine=AFFINE, dimensions=DIMS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert(trx, tmp_path / f"out{suffix}")
    assert [str(w.message) for w in caught if "'where'" in str(w.message)] == []


def test_vtk_without_fury_names_the_missing_package(tmp_path: Path, trx_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fury" else real(name, *a))
    for suffix in (".vtk", ".vtp", ".fib"):
        with pytest.raises(MissingOptionalDependency, match="pip install fury"):
            convert(trx_path, tmp_path / f"x{suffix}")
        assert not (tmp_path / f"x{suffix}").exists()
    (tmp_path / "in.vtk").write_bytes(b"# vtk DataFile Version 3.0\n")
    with pytest.raises(ImportError, match="optional package"):
        load_any(tmp_path / "in.vtk", reference=trx_path)


def test_dpy_round_trip(tmp_path: Path, trx_path: Path) -> None:
    with pytest.warns(UserWarning, match="DPY cannot hold"):
        dpy = convert(trx_path, tmp_path / "x.dpy")
    with load_any(dpy, reference=trx_path) as back, load(trx_path) as a:
        np.testing.assert_array_equal(back.positions, a.positions)
        np.testing.assert_array_equal(back.lengths, a.lengths)


def test_format_detection_and_public_names(tmp_path: Path, trx_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell the output format"):
        convert(trx_path, tmp_path / "x.trkk")
    with pytest.raises(FileNotFoundError):
        convert(tmp_path / "missing.trk", tmp_path / "x.trx")
    assert core.convert is convert and core.load_any is load_any
    assert core.converting.convert is convert  # the module has a name of its own


def test_malformed_input_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.trk"
    bad.write_bytes((NIB / "standard.trk").read_bytes()[:-7])
    with pytest.raises(TrxFormatError, match="bad.trk"):
        convert(bad, tmp_path / "x.trx")
    assert not (tmp_path / "x.trx").exists()


def test_load_any_reads_every_format_into_a_trxfile(trx_path: Path) -> None:
    with load_any(trx_path) as a:
        assert a.path == str(trx_path)
    with load_any(NIB / "complex.trk") as t:
        assert sorted(t.dpv) == ["colors", "fa"] and t.dpv["colors"].shape == (8, 3)
        assert t.dps["mean_curvature"].shape == (3,)


def test_spool_is_removed(tmp_path: Path, temp_root: Path) -> None:
    convert(NIB / "complex.trk", tmp_path / "x.trx", bbox_check=False)
    assert not any(temp_root.iterdir()) if temp_root.exists() else True


def test_groups_sidecar_of_another_trk_version_is_not_applied(tmp_path: Path,
                                                              trx_path: Path) -> None:
    """A kill between the TRK's and the sidecar's renames leaves a mismatched pair."""
    trk = tmp_path / "out.trk"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dpg cannot go to TRK: warned, tested elsewhere
        convert(trx_path, trk)
        old_sidecar = (tmp_path / "out.trk.groups.json").read_bytes()
        other = synthetic(30, seed=5)
        other.groups = {"UF": np.arange(1, 30, 4, dtype=np.uint32)}  # another sidecar
        other.dpg = {}
        convert(save(other, tmp_path / "other.trx"), trk)
    assert (tmp_path / "out.trk.groups.json").read_bytes() != old_sidecar
    with load_any(trk) as ok:  # the matching pair: groups read back
        np.testing.assert_array_equal(ok.groups["UF"], other.groups["UF"])
    (tmp_path / "out.trk.groups.json").write_bytes(old_sidecar)  # as if killed in between
    with pytest.warns(UserWarning, match="another version of this file"):
        stale = load_any(trk)
    with stale:
        assert stale.groups == {} and len(stale) == 30


def test_trk_output_with_groups_is_byte_deterministic(tmp_path: Path, trx_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = convert(trx_path, tmp_path / "a.trk"), convert(trx_path, tmp_path / "b.trk")
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a.trk.groups.json").read_bytes() == \
        (tmp_path / "b.trk.groups.json").read_bytes()


def test_bbox_check_skips_a_degenerate_grid(tmp_path: Path) -> None:
    """TRK headers written without a reference declare 1x1x1: nothing to check against."""
    trx = TrxFile.from_arrays(np.array([[5, 5, 5], [9, 9, 9]], np.float32), lengths=[2],
                              dimensions=(1, 1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert(save(trx, tmp_path / "a.trx"), tmp_path / "a.trk")
        convert(tmp_path / "a.trk", tmp_path / "b.trx")
    with load(tmp_path / "b.trx") as out:
        assert len(out) == 1
    trx = TrxFile.from_arrays(np.array([[5, 5, 5], [9, 9, 9]], np.float32), lengths=[2],
                              dimensions=(2, 2, 2))
    with pytest.warns(UserWarning, match="1 of 1 streamlines fall outside"):
        convert(save(trx, tmp_path / "c.trx"), tmp_path / "c.trk")


def test_convert_refuses_a_folder_it_must_not_replace_before_reading(tmp_path: Path,
                                                                    trx_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a TRX folder"):
        convert(NIB / "standard.trk", folder)
    with pytest.raises(FileExistsError, match="is a folder"):
        convert(trx_path, folder, out_format="trk")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
