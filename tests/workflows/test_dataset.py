"""Finding subjects, sessions, bundles and references in a dataset folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from trx_nipype.workflows.dataset import DatasetError, bundle_name, find_dataset


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_demo_layout(demo_source: Path) -> None:
    ds = find_dataset(demo_source)
    assert ds.labels == ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"]
    assert ds.bundles == ["AF_L", "CC_ForcepsMajor", "CST_R"]
    assert [Path(f).name for f in ds.subject("sub-02").files] == [
        "AF_L.trk", "CC_ForcepsMajor.trk", "CST_R.trk"]
    assert ds.subject("sub-02").reference is None


def test_sessions_references_and_other_files(tmp_path: Path) -> None:
    touch(tmp_path, "sub-01/ses-1/dwi/sub-01_ses-1_bundle-AF_L_tractogram.tck",
          "sub-01/ses-1/dwi/sub-01_ses-1_dwi.nii.gz", "sub-01/ses-1/dwi/notes.json",
          "sub-01/ses-2/dwi/AF_L.trx", "sub-02/dwi/CST_R.trk", "sub-02/dwi/.hidden.trk",
          "README")
    (tmp_path / "sub-02/dwi/AF_L.trx").mkdir()
    (tmp_path / "sub-02/dwi/AF_L.trx/header.json").write_text("{}", encoding="utf-8")
    ds = find_dataset(tmp_path)
    assert ds.labels == ["sub-01_ses-1", "sub-01_ses-2", "sub-02"]
    s = ds.subject("sub-01_ses-1")
    assert (s.subject, s.session, s.parts) == ("sub-01", "ses-1", ("sub-01", "ses-1"))
    assert s.bundles == ("AF_L",) and s.reference.endswith("sub-01_ses-1_dwi.nii.gz")
    assert ds.subject("sub-02").bundles == ("AF_L", "CST_R")  # a TRX directory counts
    assert [s.label for s in find_dataset(tmp_path, subjects=["01"]).subjects] == [
        "sub-01_ses-1", "sub-01_ses-2"]
    assert find_dataset(tmp_path, subjects=["sub-01_ses-2"]).labels == ["sub-01_ses-2"]
    ref = tmp_path / "sub-01/ses-1/dwi/sub-01_ses-1_dwi.nii.gz"
    assert find_dataset(tmp_path, reference=ref).subject("sub-02").reference == str(ref)


def test_custom_pattern(tmp_path: Path) -> None:
    touch(tmp_path, "sub_1/AF_L.trk", "sub_1/CST_R.trk", "sub_2/AF_L.trk")
    ds = find_dataset(tmp_path, patterns="sub_*/*.trk")
    assert ds.labels == ["sub_1", "sub_2"] and ds.bundles == ["AF_L", "CST_R"]


@pytest.mark.parametrize(("files", "kwargs", "message"), [
    ((), {}, "no tractogram matches sub-*/dwi/* or sub-*/ses-*/dwi/*"),
    (("sub-01/dwi/AF_L.trk", "sub-01/dwi/sub-01_AF_L.tck"), {}, "bundle name 'AF_L'"),
    (("sub-01/dwi/A.tck", "sub-01/dwi/a.nii", "sub-01/dwi/b.nii.gz"), {},
     "sub-01: 2 reference images (a.nii, b.nii.gz); keep one or pass --reference"),
    (("sub-01/dwi/A.trk",), {"subjects": ["07"]}, "no subject 'sub-07'; subjects found: sub-01"),
    (("sub-01/dwi/A.trk",), {"reference": "missing.nii.gz"},
     "missing.nii.gz: reference image not found"),
])
def test_errors(tmp_path: Path, files: tuple[str, ...], kwargs: dict, message: str) -> None:
    touch(tmp_path, *files)
    with pytest.raises(DatasetError, match=None) as info:
        find_dataset(tmp_path, **kwargs)
    assert message in str(info.value)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="input folder not found"):
        find_dataset(tmp_path / "nope")


@pytest.mark.parametrize(("name", "bundle"), [
    ("AF_L.trk", "AF_L"), ("sub-01_ses-2_bundle-CST_R_tractogram.tck", "CST_R"),
    ("sub-01_CC_ForcepsMajor.trx", "CC_ForcepsMajor"), ("bundle-UF.vtk", "UF"),
])
def test_bundle_names(name: str, bundle: str) -> None:
    assert bundle_name(name) == bundle


@pytest.mark.parametrize(("name", "ext", "side"), [
    ("AF_L.trk.gz", ".trk.gz", "AF_L.json"), ("AF.L.TCK.GZ", ".tck.gz", "AF.L.json"),
    ("x.trx", ".trx", "x.json"), ("AF.L", None, "AF.L.json"), (".trx", None, ".trx.json"),
    ("x.zip", None, "x.zip.json"), ("x.gz", None, "x.gz.json")])
def test_one_extension_rule(name: str, ext: str | None, side: str) -> None:
    from trx_nipype.workflows.dataset import sidecar_path, tractogram_extension

    assert tractogram_extension(name) == ext
    assert sidecar_path(f"d/{name}").as_posix() == f"d/{side}"
