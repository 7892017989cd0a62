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
    # issue 16 item 10: real dataset names (BEP046's tract- entity, other entities dropped)
    ("sub-01_space-MNI_bundle-CC_tractogram.trk", "CC"),
    ("sub-01_space-MNI_tract-CC_tractogram.trk", "CC"),
    ("sub-01_ses-1_space-MNI_desc-filtered_track-prob_tract-AF_tractogram.trk.gz", "AF"),
    ("sub-01_space-MNI_tract-CC_hemi-L_tractogram.trk", "CC_L"),
    ("sub-01_hemi-R_tract-CST_tractogram.tck", "CST_R"),
    ("sub-01_space-MNI_AF_L_tractogram.trk", "AF_L"), ("sub-01_desc-x_CST_R.trx", "CST_R"),
    ("AF-L.trk", "AF-L"),
])
def test_bundle_names(name: str, bundle: str) -> None:
    assert bundle_name(name) == bundle


@pytest.mark.parametrize(("name", "ext", "side"), [
    ("AF_L.trk.gz", ".trk.gz", "AF_L.json"), ("AF.L.TCK.GZ", ".tck.gz", "AF.L.json"),
    ("x.trx", ".trx", "x.json"), ("AF.L", None, "AF.L.json"), (".trx", None, ".trx.json"),
    ("x.zip", None, "x.zip.json"), ("x.gz", None, "x.gz.json")])
def test_one_extension_rule(name: str, ext: str | None, side: str) -> None:
    from trx_nipype.core.naming import sidecar_path, tractogram_extension

    assert tractogram_extension(name) == ext
    assert sidecar_path(f"d/{name}").as_posix() == f"d/{side}"


# ------------------------------------------------------- issue 16 item 10: real datasets
def bids_subject(root: Path, label: str, images: tuple[str, ...] = ("dwi", "FA", "mask"),
                 tck: bool = False) -> None:
    names = [f"sub-{label}/dwi/sub-{label}_space-MNI_tract-CC_tractogram.trk",
             f"sub-{label}/dwi/sub-{label}_space-MNI_bundle-AF_hemi-L_tractogram.trk"]
    if tck:
        names.append(f"sub-{label}/dwi/sub-{label}_space-MNI_tract-CST_tractogram.tck")
    names += [f"sub-{label}/dwi/sub-{label}_space-MNI_{kind}.nii.gz" for kind in images]
    touch(root, *names)


def test_bids_names_and_the_space_they_share(tmp_path: Path) -> None:
    bids_subject(tmp_path, "01")
    bids_subject(tmp_path, "02")
    ds = find_dataset(tmp_path)
    assert ds.bundles == ["AF_L", "CC"]
    # three images, but every file carries its space: none needed, none taken
    assert ds.subject("sub-01").reference is None
    assert ds.subject("sub-01").space == "MNI" and ds.space == "MNI"
    from trx_nipype.workflows.derivatives import pipeline_outputs

    assert pipeline_outputs(ds) == [
        "sub-01/dwi/sub-01_space-MNI_desc-bundles_tractogram.trx",
        "sub-02/dwi/sub-02_space-MNI_desc-bundles_tractogram.trx",
        "population/space-MNI_tract-AF_L_tractogram.trx",
        "population/space-MNI_tract-CC_tractogram.trx"]


def test_a_reference_pattern_picks_each_subjects_image(tmp_path: Path) -> None:
    bids_subject(tmp_path, "01", tck=True)
    bids_subject(tmp_path, "02", tck=True)
    with pytest.raises(DatasetError, match=r"sub-01: 3 reference images .*--reference-pattern "
                                           r".*sub-01_space-MNI_tract-CST_tractogram\.tck "
                                           r"carry no space"):
        find_dataset(tmp_path)
    ds = find_dataset(tmp_path, reference_pattern="sub-{subject}/dwi/*_FA.nii.gz")
    assert [Path(s.reference).name for s in ds.subjects] == [
        "sub-01_space-MNI_FA.nii.gz", "sub-02_space-MNI_FA.nii.gz"]
    assert ds.bundles == ["AF_L", "CC", "CST"]
    with pytest.raises(DatasetError, match=r"sub-01: --reference-pattern .* must match one "
                                           r"image, found nothing"):
        find_dataset(tmp_path, reference_pattern="sub-{subject}/anat/*_T1w.nii.gz")
    with pytest.raises(DatasetError, match="must match one image, found sub-01_space-MNI_FA"):
        find_dataset(tmp_path, reference_pattern="sub-{subject}/dwi/*.nii.gz")
    with pytest.raises(DatasetError, match=r"only \{subject\} and \{session\}"):
        find_dataset(tmp_path, reference_pattern="{sub}/dwi/*_FA.nii.gz")
    with pytest.raises(DatasetError, match="not both"):
        find_dataset(tmp_path, reference=tmp_path / "sub-01/dwi/sub-01_space-MNI_FA.nii.gz",
                     reference_pattern="sub-{subject}/dwi/*_FA.nii.gz")


def test_spaces_that_differ_are_not_carried(tmp_path: Path) -> None:
    touch(tmp_path, "sub-01/dwi/sub-01_space-MNI_tract-CC_tractogram.trk",
          "sub-01/dwi/sub-01_space-T1w_tract-AF_tractogram.trk",
          "sub-02/dwi/sub-02_space-MNI_tract-CC_tractogram.trk")
    ds = find_dataset(tmp_path)
    assert ds.subject("sub-01").space == "" and ds.subject("sub-02").space == "MNI"
    assert ds.space == ""
