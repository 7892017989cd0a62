"""The README's main job (``trx-nipype run`` on the demo data): pinned outputs, caching.

The digests pin the exact bytes of every output: the pipeline must be
deterministic (same bytes across runs and across the Linear and MultiProc
plugins). Coordinates are checked with trx-python, an independent reader,
against the original TRK files read by nibabel.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from trx.trx_file_memmap import load as trx_python_load

from trx_nipype.cli.main import main
from trx_nipype.workflows import (
    default_work_dir,
    find_dataset,
    init_bundles_pipeline_wf,
    run_workflow,
)

from .conftest import digests

SUBJECTS = ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"]
BUNDLES = ["AF_L", "CC_ForcepsMajor", "CST_R"]

#: sha256 of every output of ``trx-nipype run --output-dir out``
PINNED = {
    "population/tract-AF_L_tractogram.trx":
        "af318528d3e9aa80a849011bd022ad1a9545cfa9fe5556f0daa1278928db3d7e",
    "population/tract-CC_ForcepsMajor_tractogram.trx":
        "a90fa3c66db2a87b9c46a4051850be43742852ae4bf98b63dcbca322e8625934",
    "population/tract-CST_R_tractogram.trx":
        "3ae4fd060ce49d644ccf498318b1c29053acf8dc01e581540f04dbc0d9bc4312",
    "sub-01/dwi/sub-01_desc-bundles_tractogram.trx":
        "125fadea556a6f3cdf6fc17f30d1899589a01308de8a4665a8fe498981373154",
    "sub-02/dwi/sub-02_desc-bundles_tractogram.trx":
        "b6b04289dccf1e03c4b906fe6da9ea7a02aae8c492b15484efbe5ab0dc26ef30",
    "sub-03/dwi/sub-03_desc-bundles_tractogram.trx":
        "8e5902b4e0e5358a0c311f64756d914e69b2cefb97fd153a69304c72600b21ad",
    "sub-04/dwi/sub-04_desc-bundles_tractogram.trx":
        "89b73a62feb482177c1184c0e7ff8ccaf8a4c0755fdd5a964b9808ef880cd65a",
    "sub-05/dwi/sub-05_desc-bundles_tractogram.trx":
        "bd8564c0787ea193164ad5bec952a57a93bc636b9ac03ddffe686359b80d7038",
}

#: (file, streamline index) -> (first point, last point), RAS+ mm
PINNED_POINTS = {
    ("sub-03/dwi/sub-03_desc-bundles_tractogram.trx", 0):
        ([-57.52045440673828, -19.622314453125, 13.25381851196289],
         [-31.80101776123047, 36.742576599121094, 61.698814392089844]),
    ("sub-03/dwi/sub-03_desc-bundles_tractogram.trx", 75):
        ([-16.51410675048828, -54.531768798828125, -6.903598785400391],
         [7.569068908691406, -56.23625946044922, 6.772296905517578]),
    ("population/tract-CST_R_tractogram.trx", 0):
        ([8.419502258300781, 14.859947204589844, -81.18666076660156],
         [36.932228088378906, 4.072303771972656, 12.47216796875]),
    ("population/tract-CST_R_tractogram.trx", 249):
        ([3.2620162963867188, 12.650489807128906, -47.81045150756836],
         [34.40831756591797, 13.011001586914062, 68.32897186279297]),
}


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``trx-nipype run --output-dir <tmp>/demo-out`` (the README's command), run once."""
    out = tmp_path_factory.mktemp("main") / "demo-out"
    assert main(["run", "--output-dir", str(out), "-q"]) == 0
    return out


def _result_mtimes(work: Path) -> dict[str, int]:
    return {str(p.relative_to(work)): p.stat().st_mtime_ns for p in work.rglob("result_*.pklz")}


def _dataset(out: Path):  # the dataset the CLI used: the demo data inside the work dir
    return find_dataset(default_work_dir(out) / "demo-data")


def test_main_job_writes_the_pinned_outputs(main_job: Path) -> None:
    assert digests(main_job) == PINNED
    expected = {"dataset_description.json"} | {str(Path(p).with_suffix(".json"))
                                                for p in PINNED}
    sidecars = {p.relative_to(main_job).as_posix() for p in main_job.rglob("*.json")
                if "work" not in p.relative_to(main_job).parts}
    assert sidecars == expected


def test_main_job_group_counts_read_by_trx_python(main_job: Path) -> None:
    for subject in SUBJECTS:
        path = main_job / f"{subject}/dwi/{subject}_desc-bundles_tractogram.trx"
        trx = trx_python_load(str(path))
        assert {g: len(i) for g, i in trx.groups.items()} == {b: 50 for b in BUNDLES}
        assert len(trx.streamlines) == 150
        trx.close()
    for bundle in BUNDLES:
        trx = trx_python_load(str(main_job / f"population/tract-{bundle}_tractogram.trx"))
        groups = {g: np.asarray(i).tolist() for g, i in trx.groups.items()}
        assert groups == {s: list(range(50 * k, 50 * k + 50)) for k, s in enumerate(SUBJECTS)}
        trx.close()


def test_main_job_coordinates_match_pins_and_the_original_trk(main_job: Path) -> None:
    for (rel, index), (first, last) in PINNED_POINTS.items():
        trx = trx_python_load(str(main_job / rel))
        line = np.array(trx.streamlines[index], copy=True)
        trx.close()
        assert line.shape == (20, 3)
        np.testing.assert_allclose(line[0], first, rtol=0, atol=1e-5)
        np.testing.assert_allclose(line[-1], last, rtol=0, atol=1e-5)
    # every streamline equals the original TRK's (nibabel), in bundle then subject order
    demo = default_work_dir(main_job) / "demo-data"
    trx = trx_python_load(str(main_job / "population/tract-CST_R_tractogram.trx"))
    for k, subject in enumerate(SUBJECTS):
        original = nib.streamlines.load(str(demo / subject / "dwi" / "CST_R.trk")).streamlines
        for i in (0, 17, 49):
            np.testing.assert_allclose(trx.streamlines[50 * k + i], original[i], atol=1e-5)
    trx.close()


def test_sidecars_say_how_each_file_was_made(main_job: Path) -> None:
    side = json.loads((main_job / "sub-02/dwi/sub-02_desc-bundles_tractogram.json")
                      .read_text(encoding="utf-8"))
    assert side["Pipeline"] == "bundles"
    assert side["sha256"] == PINNED["sub-02/dwi/sub-02_desc-bundles_tractogram.trx"]
    assert side["Counts"]["Groups"] == {b: 50 for b in BUNDLES}
    assert side["Counts"]["NB_STREAMLINES"] == 150 and side["Counts"]["NB_VERTICES"] == 3000
    assert [Path(s["path"]).name for s in side["Sources"]] == [f"{b}.trk" for b in BUNDLES]
    assert all(len(s["sha256"]) == 64 for s in side["Sources"])
    assert {"trx-nipype", "nipype", "dipy", "nibabel", "numpy", "python"} <= set(side["Software"])
    pop = json.loads((main_job / "population/tract-AF_L_tractogram.json")
                     .read_text(encoding="utf-8"))
    assert pop["Counts"]["Groups"] == {s: 50 for s in SUBJECTS}
    assert [s["sha256"] for s in pop["Sources"]] == [
        PINNED[f"{s}/dwi/{s}_desc-bundles_tractogram.trx"] for s in SUBJECTS]
    assert pop["Parameters"]["nb_streamlines"] is None


def test_second_run_executes_no_node(main_job: Path) -> None:
    work = default_work_dir(main_job)
    before = _result_mtimes(work)
    wf = init_bundles_pipeline_wf(_dataset(main_job), main_job)
    report = run_workflow(wf, work)
    assert report.ok and report.ran == []
    # 5 x (assemble, export) + 2 collectors + 3 x (concat, export): subjects + bundles, no
    # node per file or per subject and bundle
    assert len(report.cached) == 18
    assert _result_mtimes(work) == before
    assert digests(main_job) == PINNED


def test_cli_second_run_prints_cached_progress(main_job: Path, capsys) -> None:
    assert main(["run", "--output-dir", str(main_job)]) == 0
    out = capsys.readouterr().out
    assert "0 nodes ran, 18 cached, 0 failed" in out
    assert "cached  sub-03" in out and "population/tract-AF_L_tractogram.trx" in out


def test_multiproc_gives_the_same_bytes(demo_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    wf = init_bundles_pipeline_wf(find_dataset(demo_copy), out)
    report = run_workflow(wf, tmp_path / "work", plugin="MultiProc", nprocs=2)
    assert report.ok, [f.line() for f in report.failures]
    assert {e.status for e in report.events} == {"ran"}
    assert digests(out) == PINNED


def test_changing_one_subject_reruns_only_it_and_the_joins(demo_copy: Path,
                                                           tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    assert run_workflow(init_bundles_pipeline_wf(find_dataset(demo_copy), out), work).ok
    before = _result_mtimes(work)
    # sub-03's AF_L loses its last 10 streamlines
    path = demo_copy / "sub-03" / "dwi" / "AF_L.trk"
    trk = nib.streamlines.load(str(path))
    nib.streamlines.TrkFile(trk.tractogram[:40], header=trk.header).save(str(path))

    report = run_workflow(init_bundles_pipeline_wf(find_dataset(demo_copy), out), work)
    assert report.ok
    after = _result_mtimes(work)
    rerun = sorted(k for k in after if after[k] != before.get(k))
    subject_level = [k for k in rerun if "/sub-0" in k]
    assert subject_level and all("/sub-03/" in k for k in subject_level)
    # one node assembles the subject (all its files), one exports it
    assert {Path(k).parent.name for k in subject_level} == {"assemble", "ds_subject"}
    population = sorted(k for k in rerun if "/sub-0" not in k)
    assert "trx_bundles_wf/collect_subjects/result_collect_subjects.pklz" in population
    assert "trx_bundles_wf/collect_exports/result_collect_exports.pklz" in population
    for bundle in BUNDLES:
        for node in ("concat", "ds_population"):
            assert any(f"_bundle_{bundle}/{node}/" in k for k in population), (bundle, node)
    # nothing else: no node per subject and bundle
    assert len(population) == 2 + 2 * len(BUNDLES)
    assert {e.context for e in report.ran} == {"sub-03", "", *(f"bundle-{b}" for b in BUNDLES)}
    side = json.loads((out / "population/tract-AF_L_tractogram.json").read_text(encoding="utf-8"))
    assert side["Counts"]["Groups"]["sub-03"] == 40
    assert side["Counts"]["Groups"]["sub-02"] == 50
    new = digests(out)
    unchanged = [p for p in PINNED if "sub-03" not in p and "AF_L" not in p]
    assert {p: new[p] for p in unchanged} == {p: PINNED[p] for p in unchanged}


def test_a_deleted_output_is_exported_again(demo_copy: Path, tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    assert run_workflow(init_bundles_pipeline_wf(find_dataset(demo_copy), out), work).ok
    (out / "sub-02/dwi/sub-02_desc-bundles_tractogram.trx").unlink()
    report = run_workflow(init_bundles_pipeline_wf(find_dataset(demo_copy), out), work)
    assert report.ok
    # exports only (the population sidecars list the re-exported files): nothing recomputed
    assert {e.node for e in report.ran} == {"ds_subject", "collect_exports", "ds_population"}
    assert [e.context for e in report.ran if e.node == "ds_subject"] == ["sub-02"]
    assert digests(out) == PINNED


def test_deleted_intermediates_rerun_their_nodes(demo_copy: Path, tmp_path: Path) -> None:
    # a file of a node's folder in the work dir deleted between runs: Nipype alone takes the
    # cached result as it is and the next node fails forever ("DerivativesSink requires a
    # value for input 'in_file'"); the run reruns the node, and what depends on its file
    out, work = tmp_path / "out", tmp_path / "work"
    assert run_workflow(init_bundles_pipeline_wf(find_dataset(demo_copy), out), work).ok
    nodes = work / "trx_bundles_wf"
    (nodes / "sub-01/assemble/sub-01_desc-bundles_tractogram.trx").unlink()
    (nodes / "population_bundles_wf/_bundle_CST_R/concat/tract-CST_R_tractogram.trx").unlink()
    report = run_workflow(init_bundles_pipeline_wf(find_dataset(demo_copy), out), work)
    assert report.ok, [f.line() for f in report.failures]
    assert {(e.context, e.node) for e in report.ran} == {
        ("sub-01", "assemble"), ("sub-01", "ds_subject"), ("", "collect_subjects"),
        ("", "collect_exports"),
        *((f"bundle-{b}", n) for b in BUNDLES for n in ("concat", "ds_population"))}
    assert digests(out) == PINNED
    # and a sink's result whose export is gone, with the subject's intermediate, at once
    (nodes / "sub-04/assemble/sub-04_desc-bundles_tractogram.trx").unlink()
    (out / "sub-04/dwi/sub-04_desc-bundles_tractogram.json").unlink()
    report = run_workflow(init_bundles_pipeline_wf(find_dataset(demo_copy), out), work)
    assert report.ok and ("sub-04", "assemble") in {(e.context, e.node) for e in report.ran}
    assert digests(out) == PINNED
    assert run_workflow(init_bundles_pipeline_wf(find_dataset(demo_copy), out), work).ran == []


def test_bad_inputs_name_subject_file_and_problem(demo_copy: Path, tmp_path: Path,
                                                  capsys) -> None:
    # sub-03: a truncated TRK; sub-02: a TCK (no space) and no reference image
    bad = demo_copy / "sub-03" / "dwi" / "CST_R.trk"
    bad.write_bytes(bad.read_bytes()[:3000])
    trk = nib.streamlines.load(str(demo_copy / "sub-02" / "dwi" / "AF_L.trk"))
    nib.streamlines.save(trk.tractogram, str(demo_copy / "sub-02" / "dwi" / "AF_L.tck"))
    (demo_copy / "sub-02" / "dwi" / "AF_L.trk").unlink()
    out = tmp_path / "out"

    code = main(["run", str(demo_copy), "--output-dir", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    errors = [ln for ln in err.splitlines() if ln.startswith("trx-nipype: error: ")]
    assert len(errors) == 2, err
    assert "sub-02: assemble: " in errors[0] and "sub-02/dwi/AF_L.tck" in errors[0]
    assert "reference" in errors[0]
    assert "sub-03: assemble: " in errors[1] and "sub-03/dwi/CST_R.trk" in errors[1]
    assert "truncated" in errors[1]
    assert "Traceback" not in err
    # the other subjects' results are there, the population files (which need all) are not
    written = digests(out)
    assert sorted(written) == [f"{s}/dwi/{s}_desc-bundles_tractogram.trx"
                               for s in ("sub-01", "sub-04", "sub-05")]
    assert all(written[p] == PINNED[p] for p in written)
    assert len(list((default_work_dir(out) / "crash").glob("crash-*.pklz"))) == 2


def test_a_missing_bundle_is_refused_before_running(demo_copy: Path, tmp_path: Path,
                                                    capsys) -> None:
    # a subject without one of the bundles: every population branch would fail at run
    # time, so the run is refused up front (exit 3), naming the subject and the bundle
    (demo_copy / "sub-04" / "dwi" / "CC_ForcepsMajor.trk").unlink()
    out = tmp_path / "out"
    code = main(["run", str(demo_copy), "--output-dir", str(out), "-q",
                 "--work-dir", str(tmp_path / "work")])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "sub-04: no bundle 'CC_ForcepsMajor'" in err and "--no-population" in err
    assert "Traceback" not in err
    assert digests(out) == {}
    # without the population step, every subject's file is written
    code = main(["run", str(demo_copy), "--output-dir", str(out), "-q", "--no-population",
                 "--work-dir", str(tmp_path / "work")])
    assert code == 0, capsys.readouterr().err
    written = digests(out)
    assert sorted(written) == sorted(p for p in PINNED if "population" not in p)
    assert all(written[p] == PINNED[p] for p in written if "sub-04" not in p)


def test_demo_data_extraction_is_idempotent(demo_source: Path, tmp_path: Path) -> None:
    from trx_nipype.data import fetch_demo_dataset

    copy = Path(shutil.copytree(demo_source, tmp_path / "d"))
    stamps = {p: p.stat().st_mtime_ns for p in copy.rglob("*.trk")}
    assert len(stamps) == 15
    fetch_demo_dataset(copy)
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*.trk")} == stamps
    # a fresh extraction gets the same timestamps (the zip's): Nipype's cache stays valid
    fresh = fetch_demo_dataset(tmp_path / "fresh")
    assert {p.relative_to(fresh): p.stat().st_mtime_ns for p in fresh.rglob("*.trk")} == \
        {p.relative_to(copy): s for p, s in stamps.items()}


@pytest.mark.parametrize("hash_method", ["timestamp", "content"])
def test_a_trx_folder_changed_in_place_reruns_its_subject(demo_copy: Path, tmp_path: Path,
                                                          hash_method: str) -> None:
    # Nipype hashes a directory input by its path alone: without our TRX-aware hashing a
    # bundle stored as a TRX folder and rewritten in place would leave every node cached
    from trx_nipype.core import convert

    dwi = demo_copy / "sub-02" / "dwi"
    convert(dwi / "AF_L.trk", dwi / "AF_L", out_format="trx")  # a TRX folder, no extension
    (dwi / "AF_L.trk").unlink()
    out, work = tmp_path / "out", tmp_path / "work"

    def run():  # noqa: ANN202
        wf = init_bundles_pipeline_wf(find_dataset(demo_copy), out)
        wf.config["execution"]["hash_method"] = hash_method
        return run_workflow(wf, work)

    assert run().ok
    first = digests(out)
    positions = next((dwi / "AF_L").glob("positions.3.*"))
    data = bytearray(positions.read_bytes())
    data[:12] = bytes(12)  # the first point moves to the origin: same size, same name
    positions.write_bytes(bytes(data))
    report = run()
    assert report.ok
    assert {(e.context, e.node) for e in report.ran} == {
        ("sub-02", "assemble"), ("sub-02", "ds_subject"), ("", "collect_subjects"),
        ("", "collect_exports"),
        *((f"bundle-{b}", n) for b in BUNDLES for n in ("concat", "ds_population"))}
    second = digests(out)
    changed = sorted(p for p in first if first[p] != second[p])
    assert changed == ["population/tract-AF_L_tractogram.trx",
                       "sub-02/dwi/sub-02_desc-bundles_tractogram.trx"]
    assert run().ran == []  # and then nothing is stale


def test_hash_method_content_sees_an_edit_that_keeps_size_and_mtime(demo_copy: Path,
                                                                   tmp_path: Path,
                                                                   capsys) -> None:
    out = tmp_path / "out"
    run = ["run", str(demo_copy), "--output-dir", str(out), "--work-dir", str(tmp_path / "w"),
           "--no-report", "--hash-method", "content"]
    assert main(run) == 0
    assert "hash method content" in capsys.readouterr().out
    first = digests(out)
    # sub-03's AF_L: one coordinate changed, same size, modification time put back (as a
    # tool that restores timestamps does): timestamp hashing cannot see it
    path = demo_copy / "sub-03" / "dwi" / "AF_L.trk"
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[1004:1008] = np.float32(12.5).tobytes()  # the first point's x
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size,
                                                             before.st_mtime_ns)
    assert main([*run, "-q"]) == 0
    second = digests(out)
    assert sorted(p for p in first if first[p] != second[p]) == [
        "population/tract-AF_L_tractogram.trx", "sub-03/dwi/sub-03_desc-bundles_tractogram.trx"]


def test_convert_pipeline_runs_two_nodes_per_subject(demo_copy: Path, tmp_path: Path) -> None:
    from trx_nipype.workflows import init_convert_pipeline_wf

    wf = init_convert_pipeline_wf(find_dataset(demo_copy), tmp_path / "out", out_format="tck")
    report = run_workflow(wf, tmp_path / "work")
    assert report.ok
    assert sorted((e.context, e.node) for e in report.ran) == sorted(
        (s, n) for s in SUBJECTS for n in ("convert", "ds_converted"))
    assert len(list((tmp_path / "out").rglob("*.tck"))) == 15
