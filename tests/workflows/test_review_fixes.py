"""Datasets that broke the workflows layer: odd names, layouts, formats and reruns."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from trx_nipype.core import concatenate, convert, load
from trx_nipype.core.naming import sidecar_path
from trx_nipype.interfaces.bids import export_derivative
from trx_nipype.workflows import (
    DatasetError,
    find_dataset,
    init_bundles_pipeline_wf,
    init_convert_pipeline_wf,
    run_workflow,
)
from trx_nipype.workflows.derivatives import converted_path


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def small(demo_source: Path, root: Path, subjects: tuple[str, ...] = ("sub-01", "sub-02"),
          bundles: tuple[str, ...] = ("AF_L", "CST_R")) -> Path:
    """A few subjects and bundles of the demo data (TRK files, timestamps kept)."""
    for s in subjects:
        (root / s / "dwi").mkdir(parents=True)
        for b in bundles:
            shutil.copy2(demo_source / s / "dwi" / f"{b}.trk", root / s / "dwi" / f"{b}.trk")
    return root


def reference_of(trk: Path, dest: Path) -> Path:
    """A NIfTI image in the space of a TRK file."""
    header = nib.streamlines.load(str(trk), lazy_load=True).header
    vox2ras = header["voxel_to_rasmm"]
    nib.save(nib.Nifti1Image(np.zeros(header["dimensions"], np.uint8), vox2ras), str(dest))
    return dest


# 1 -------------------------------------------------------------------------------------
def test_bundle_names_sharing_a_nipype_folder_are_refused(tmp_path: Path) -> None:
    touch(tmp_path, "sub-01/dwi/AF L.trk", "sub-01/dwi/CST.trk", "sub-02/dwi/AFL.trk")
    with pytest.raises(DatasetError) as info:
        find_dataset(tmp_path)
    message = str(info.value)
    assert "AF L.trk" in message and "AFL.trk" in message and "'AFL'" in message


def test_subject_labels_sharing_a_nipype_folder_are_refused(tmp_path: Path) -> None:
    touch(tmp_path, "s(1)/A.trk", "s1/A.trk")
    with pytest.raises(DatasetError, match=r"subjects 's\(1\)' .* and 's1'"):
        find_dataset(tmp_path, patterns="*/*.trk")


# 2 -------------------------------------------------------------------------------------
def test_a_match_outside_a_subject_folder_is_refused(tmp_path: Path) -> None:
    touch(tmp_path, "loose.trk", "s1/A.trk")
    with pytest.raises(DatasetError, match=r"loose\.trk: .*not inside a subject folder"):
        find_dataset(tmp_path, patterns=("*.trk", "*/*.trk"))


@pytest.mark.parametrize("rel", ["/dwi/x.trx", "../x.trx", "a/../../x.trx", ""])
def test_export_refuses_destinations_outside_the_output_folder(tmp_path: Path,
                                                                rel: str) -> None:
    src = tmp_path / "in.trx"
    src.write_bytes(b"not read")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="not inside the output folder"):
        export_derivative(src, out, rel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.trx", "out"]


# 3 -------------------------------------------------------------------------------------
def test_convert_pipeline_keeps_trk_groups(demo_source: Path, tmp_path: Path) -> None:
    dwi = demo_source / "sub-01" / "dwi"
    convert(dwi / "AF_L.trk", tmp_path / "a.trx")
    convert(dwi / "CST_R.trk", tmp_path / "b.trx")
    concatenate([tmp_path / "a.trx", tmp_path / "b.trx"], tmp_path / "ab.trx",
                group_by_input=True, group_names=["AF_L", "CST_R"])
    root = tmp_path / "data"
    (root / "sub-01" / "dwi").mkdir(parents=True)
    convert(tmp_path / "ab.trx", root / "sub-01" / "dwi" / "both.trk")
    assert (root / "sub-01" / "dwi" / "both.trk.groups.json").is_file()
    out = tmp_path / "out"
    wf = init_convert_pipeline_wf(find_dataset(root), out, out_format="trk")
    report = run_workflow(wf, tmp_path / "work")
    assert report.ok, report.failures
    assert (out / "sub-01/dwi/both.trk.groups.json").is_file()
    side = json.loads((out / "sub-01/dwi/both.json").read_text(encoding="utf-8"))
    assert side["Counts"]["Groups"] == {"AF_L": 50, "CST_R": 50}


# 4 -------------------------------------------------------------------------------------
def test_gzipped_trk_and_tck_are_bundles(demo_source: Path, tmp_path: Path) -> None:
    (tmp_path / "sub-01" / "dwi").mkdir(parents=True)
    data = (demo_source / "sub-01" / "dwi" / "AF_L.trk").read_bytes()
    (tmp_path / "sub-01" / "dwi" / "AF_L.trk.gz").write_bytes(gzip.compress(data, mtime=0))
    touch(tmp_path, "sub-01/dwi/sub-01_bundle-CST_R_tractogram.tck.gz")
    ds = find_dataset(tmp_path)
    assert ds.bundles == ["AF_L", "CST_R"]
    gz = ds.subject("sub-01").files[0]
    assert converted_path(ds, gz, "trx") == "sub-01/dwi/AF_L.trx"
    assert converted_path(ds, ds.subject("sub-01").files[1], "tck") == \
        "sub-01/dwi/sub-01_bundle-CST_R_tractogram.tck"
    (tmp_path / "sub-01/dwi/sub-01_bundle-CST_R_tractogram.tck.gz").unlink()
    out = tmp_path / "out"
    report = run_workflow(init_convert_pipeline_wf(find_dataset(tmp_path), out),
                          tmp_path / "work")
    assert report.ok, [f.line() for f in report.failures]
    with load(out / "sub-01/dwi/AF_L.trx") as trx:
        assert len(trx) == 50


# 5 -------------------------------------------------------------------------------------
def test_convert_pipeline_tck_to_tck_with_a_reference(demo_source: Path,
                                                      tmp_path: Path) -> None:
    trk = demo_source / "sub-01" / "dwi" / "AF_L.trk"
    dwi = tmp_path / "data" / "sub-01" / "dwi"
    dwi.mkdir(parents=True)
    nib.streamlines.save(nib.streamlines.load(str(trk)).tractogram, str(dwi / "AF_L.tck"))
    ref = reference_of(trk, dwi / "sub-01_dwi.nii.gz")
    out = tmp_path / "out"
    for fmt in ("tck", "vtk"):
        wf = init_convert_pipeline_wf(find_dataset(tmp_path / "data"), out, out_format=fmt,
                                      name=f"to_{fmt}")
        report = run_workflow(wf, tmp_path / "work")
        assert report.ok, [f.line() for f in report.failures]
        side = json.loads((out / "sub-01/dwi/AF_L.json").read_text(encoding="utf-8"))
        assert side["Counts"]["NB_STREAMLINES"] == 50
        # sources as BIDS URIs of the input dataset (issue 13: no absolute paths)
        assert ref == dwi / "sub-01_dwi.nii.gz"
        assert [s["path"] for s in side["Sources"]] == ["bids:raw:sub-01/dwi/AF_L.tck",
                                                        "bids:raw:sub-01/dwi/sub-01_dwi.nii.gz"]


def test_an_export_whose_sidecar_fails_leaves_no_file(demo_source: Path,
                                                      tmp_path: Path) -> None:
    tck = tmp_path / "AF_L.tck"
    trk = demo_source / "sub-01" / "dwi" / "AF_L.trk"
    nib.streamlines.save(nib.streamlines.load(str(trk)).tractogram, str(tck))
    out = tmp_path / "out"
    with pytest.raises(ValueError):
        export_derivative(tck, out, "sub-01/dwi/AF_L.tck", sources=[str(tck)])
    assert not (out / "sub-01/dwi/AF_L.tck").exists()
    assert [p.name for p in (out / "sub-01/dwi").iterdir()] == []


# 6 -------------------------------------------------------------------------------------
def test_subjects_selects_non_bids_folders(tmp_path: Path) -> None:
    touch(tmp_path, "subjA/A.trk", "subjB/A.trk", "01/A.trk", "sub-01/A.trk")
    assert find_dataset(tmp_path, patterns="*/*.trk", subjects=["subjB"]).labels == ["subjB"]
    # an exact folder name first, then sub-<name>
    assert find_dataset(tmp_path, patterns="*/*.trk", subjects=["01"]).labels == ["01"]
    assert find_dataset(tmp_path, patterns="*/*.trk", subjects=["sub-01"]).labels == ["sub-01"]


# 7 -------------------------------------------------------------------------------------
def test_sidecars_of_dotted_names_and_folders_do_not_collide(tmp_path: Path) -> None:
    assert sidecar_path("o/AF.L") == Path("o/AF.L.json")
    assert sidecar_path("o/AF.R") == Path("o/AF.R.json")
    assert sidecar_path("o/AF.L.trx") == Path("o/AF.L.json")
    assert sidecar_path("o/x.trk.gz") == Path("o/x.json")
    assert sidecar_path("o/sub-01_desc-bundles_tractogram.trx") == \
        Path("o/sub-01_desc-bundles_tractogram.json")


def test_convert_to_trx_dir_with_dotted_bundle_names(demo_source: Path,
                                                     tmp_path: Path) -> None:
    dwi = tmp_path / "data" / "sub-01" / "dwi"
    dwi.mkdir(parents=True)
    shutil.copy2(demo_source / "sub-01/dwi/AF_L.trk", dwi / "AF.L.trk")
    shutil.copy2(demo_source / "sub-01/dwi/CST_R.trk", dwi / "AF.R.trk")
    out = tmp_path / "out"
    wf = init_convert_pipeline_wf(find_dataset(tmp_path / "data"), out, out_format="trx_dir")
    assert run_workflow(wf, tmp_path / "work").ok
    for name in ("AF.L", "AF.R"):
        side = json.loads((out / f"sub-01/dwi/{name}.json").read_text(encoding="utf-8"))
        assert side["Sources"][0]["path"] == f"bids:raw:sub-01/dwi/{name}.trk"  # issue 13


# 8 -------------------------------------------------------------------------------------
def test_bundles_pipeline_on_split_groups_files(demo_source: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for s in ("sub-01", "sub-02"):
        (root / s / "dwi").mkdir(parents=True)
        for b in ("AF_L", "CST_R"):
            convert(demo_source / s / "dwi" / f"{b}.trk", tmp_path / f"{s}{b}.trx")
            # what `trx-nipype split-groups` writes: one file per bundle, group included
            concatenate([tmp_path / f"{s}{b}.trx"], root / s / "dwi" / f"{b}.trx",
                        group_by_input=True, group_names=[b])
    out = tmp_path / "out"
    report = run_workflow(init_bundles_pipeline_wf(find_dataset(root), out), tmp_path / "work")
    assert report.ok, [f.line() for f in report.failures]
    with load(out / "sub-01/dwi/sub-01_desc-bundles_tractogram.trx") as trx:
        assert {g: len(i) for g, i in trx.groups.items()} == {"AF_L": 50, "CST_R": 50}


def test_a_dataset_skips_this_tools_own_outputs(demo_source: Path, tmp_path: Path) -> None:
    root = small(demo_source, tmp_path / "data")
    before = find_dataset(root)
    # outputs written into the dataset itself, the work dir inside it too
    report = run_workflow(init_bundles_pipeline_wf(before, root), root / "work")
    assert report.ok, [f.line() for f in report.failures]
    assert (root / "sub-01/dwi/sub-01_desc-bundles_tractogram.trx").is_file()
    again = find_dataset(root)
    assert again.bundles == ["AF_L", "CST_R"] and again.subjects == before.subjects
    # with a pattern that reaches into the work dir and an output folder inside the input
    shutil.copytree(root / "sub-02", root / "derivatives" / "sub-03")
    (root / "derivatives" / "dataset_description.json").write_text(
        json.dumps({"GeneratedBy": [{"Name": "trx-nipype"}]}), encoding="utf-8")
    wide = find_dataset(root, patterns="**/sub-*/dwi/*")
    assert wide.labels == ["sub-01", "sub-02"] and wide.bundles == ["AF_L", "CST_R"]
    assert find_dataset(root, patterns="*/*/*", exclude=[root / "derivatives"]).labels == [
        "sub-01", "sub-02"]


# 10 ------------------------------------------------------------------------------------
def test_population_needs_every_bundle_of_every_subject(demo_source: Path,
                                                        tmp_path: Path) -> None:
    root = small(demo_source, tmp_path / "data")
    (root / "sub-02/dwi/CST_R.trk").unlink()
    ds = find_dataset(root)
    with pytest.raises(DatasetError, match="sub-02: no bundle 'CST_R'"):
        init_bundles_pipeline_wf(ds, tmp_path / "out")
    init_bundles_pipeline_wf(ds, tmp_path / "out", population=False)  # fine without


# 11 ------------------------------------------------------------------------------------
def test_outputs_of_earlier_runs_are_reported(demo_source: Path, tmp_path: Path) -> None:
    root = small(demo_source, tmp_path / "data")
    out, work = tmp_path / "out", tmp_path / "work"
    first = run_workflow(init_bundles_pipeline_wf(find_dataset(root), out), work)
    assert first.ok and not [w for w in first.warnings if "earlier" in w]
    second = run_workflow(init_bundles_pipeline_wf(
        find_dataset(root, subjects=["01"], patterns="sub-*/dwi/AF_L.trk"), out), work)
    assert second.ok
    stale = [w for w in second.warnings if "earlier 'bundles' run" in w]
    assert len(stale) == 1, second.warnings
    assert "sub-02/dwi/sub-02_desc-bundles_tractogram.trx" in stale[0]
    assert "population/tract-CST_R_tractogram.trx" in stale[0]
    assert "sub-01/dwi/sub-01_desc-bundles_tractogram.trx" not in stale[0]
    assert (out / "sub-02/dwi/sub-02_desc-bundles_tractogram.trx").is_file()  # not deleted


# counts of a spaceless export: the sink's reference, never a source guessed by suffix ----
def test_export_of_a_tck_with_a_tck_gz_source_uses_the_reference(demo_source: Path,
                                                                 tmp_path: Path) -> None:
    trk = demo_source / "sub-01" / "dwi" / "AF_L.trk"
    tck = tmp_path / "AF_L.tck"
    nib.streamlines.save(nib.streamlines.load(str(trk)).tractogram, str(tck))
    source = tmp_path / "AF_L.tck.gz"
    source.write_bytes(gzip.compress(tck.read_bytes(), mtime=0))
    ref = reference_of(trk, tmp_path / "ref.nii.gz")
    out = tmp_path / "out"
    dest, side = export_derivative(tck, out, "sub-01/dwi/AF_L.tck", sources=[str(source)],
                                   reference=str(ref))
    assert dest.read_bytes() == tck.read_bytes()
    doc = json.loads(side.read_text(encoding="utf-8"))
    assert doc["Counts"]["NB_STREAMLINES"] == 50
    # no dataset links given: named relative to the output folder (issue 13: never absolute)
    assert [s["path"] for s in doc["Sources"]] == ["../AF_L.tck.gz", "../ref.nii.gz"]
    with pytest.raises(ValueError, match=r"carries no space.*reference"):
        export_derivative(tck, out, "sub-01/dwi/AF_M.tck", sources=[str(source)])
    assert not (out / "sub-01/dwi/AF_M.tck").exists()


# sources are hashed through the digest cache: one read per file, whichever sink asks ------
def test_source_digests_are_read_once(demo_source: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from trx_nipype.interfaces import _hashing
    from trx_nipype.interfaces.bids import sha256_path

    monkeypatch.setenv(_hashing.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(_hashing, "RACY_WINDOW_NS", -1)
    trk = demo_source / "sub-01" / "dwi" / "AF_L.trk"
    folder = tmp_path / "dir.trx"
    (folder / "dps").mkdir(parents=True)
    (folder / "header.json").write_text("{}", encoding="utf-8")
    (folder / "dps" / "w.float32").write_bytes(b"\0" * 8)
    expected_dir = hashlib.sha256()
    for rel in ("dps/w.float32", "header.json"):
        member = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
        expected_dir.update(f"{rel}\0{member}\n".encode())
    _hashing.reset_stats()
    assert sha256_path(trk) == hashlib.sha256(trk.read_bytes()).hexdigest()
    assert sha256_path(folder) == expected_dir.hexdigest()
    assert _hashing.reset_stats()["files_read"] == 3
    assert sha256_path(trk) == hashlib.sha256(trk.read_bytes()).hexdigest()
    assert sha256_path(folder) == expected_dir.hexdigest()
    assert _hashing.reset_stats()["files_read"] == 0


# AssembleBundles (which replaced LoadBundle + ConcatenateTrx) names its output like every
# interface output, and drops a group named like its file's bundle -------------------
def test_assembled_output_is_absolute_from_a_relative_cwd(demo_source: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from trx_nipype.interfaces import AssembleBundles

    convert(demo_source / "sub-01" / "dwi" / "AF_L.trk", tmp_path / "a.trx")
    bundle = tmp_path / "AF_L.trx"
    concatenate([tmp_path / "a.trx"], bundle, group_by_input=True, group_names=["AF_L"])
    (tmp_path / "node").mkdir()
    monkeypatch.chdir(tmp_path)
    stale = tmp_path / "node" / "bundles.trx"
    # a previous run's output: a TRX (since issue 18 item 4 a node never replaces a file
    # that is not a tractogram, even in its own folder)
    shutil.copy(tmp_path / "a.trx", stale)
    res = AssembleBundles(in_files=[str(bundle)], bundle_names=["AF_L"]).run(cwd="node")
    out = Path(res.outputs.out_file)
    assert out.is_absolute() and out == stale
    assert res.outputs.group_names == ["AF_L"]
    with load(out) as trx:
        assert len(trx) == 50 and list(trx.groups) == ["AF_L"]
        assert len(trx.groups["AF_L"]) == 50


# RunReport.finish prints what `trx-nipype run` prints ----------------------------------
def test_run_report_finish_prefix_and_max_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    from trx_nipype.workflows.runner import Failure, RunReport

    report = RunReport("work", "Linear", warnings=[f"w{i}\n  more" for i in range(5)],
                       failures=[Failure("load", "sub-03", "bad file", "crash.pklz")])
    assert report.finish("trx-nipype: ", max_warnings=3,
                         warnings_hint=" (--verbose shows them)", summary=False) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "trx-nipype: warning: w0 more", "trx-nipype: warning: w1 more",
        "trx-nipype: warning: w2 more",
        "trx-nipype: ... and 2 more warnings (--verbose shows them)",
        "trx-nipype: error: sub-03: load: bad file"]
    assert RunReport("work", "Linear", warnings=["w"]).finish() == 0
    out, err = capsys.readouterr()
    assert err == "warning: w\n" and out.startswith("0 nodes ran, 0 cached, 0 failed")
