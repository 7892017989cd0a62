"""Pipeline builders build and touch no disk (issue 17): the run writes, the builder does not."""

from __future__ import annotations

import os
from pathlib import Path

from trx_nipype.workflows import (
    find_dataset,
    init_bundles_pipeline_wf,
    init_convert_bundles_wf,
    init_convert_pipeline_wf,
    init_population_bundles_wf,
    init_subject_bundles_wf,
    init_tractometry_wf,
    run_workflow,
)

from .test_ready_pipelines import load_script


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def test_building_every_pipeline_creates_nothing_on_disk(demo_source: Path, tmp_path: Path,
                                                         monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    data = _tree(demo_source)
    dataset = find_dataset(demo_source)
    subjects = [str(demo_source / s / "dwi" / "AF_L.trk") for s in ("sub-01", "sub-02")]
    built = [
        init_bundles_pipeline_wf(dataset, "out"),
        init_bundles_pipeline_wf(dataset, empty / "balanced" / "out", nb_streamlines="min"),
        init_convert_pipeline_wf(dataset, "converted", out_format="tck"),
        init_subject_bundles_wf(name="sub_01"),
        init_population_bundles_wf(bundles=dataset.bundles),
        init_convert_bundles_wf(out_format="trk"),
        init_tractometry_wf(min_length=5.0),
        load_script("population_from_subjects").build(subjects, ["sub-01", "sub-02"], ["AF_L"],
                                                  "pop-out", streamlines_per_subject="min",
                                                  seed=0),
        load_script("tractography_pipeline").init_tractography_pipeline_wf(
            "dwi.nii.gz", "dwi.bval", "dwi.bvec", "tracto-out"),
    ]
    assert all(wf.list_node_names() for wf in built)
    assert os.listdir(empty) == []  # no output folder, no dataset_description.json
    assert _tree(demo_source) == data  # and nothing read was touched


def test_the_run_writes_the_dataset_description(demo_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    wf = init_convert_pipeline_wf(find_dataset(demo_source, subjects=["sub-01"]), out)
    assert not out.exists()
    assert run_workflow(wf, tmp_path / "work").ok
    assert sorted(p.name for p in out.iterdir()) == ["dataset_description.json", "sub-01"]


def test_the_tractography_builder_does_not_look_at_the_output_folder(tmp_path: Path) -> None:
    # it set each sink's ``overwrite`` from whether its export existed: the same call built
    # another workflow once the outputs were there (a deleted export is the run's business)
    build = load_script("tractography_pipeline").init_tractography_pipeline_wf
    out = tmp_path / "out"
    sinks = ("ds_fa", "ds_sampled", "ds_profiles", "ds_density")
    before = [build("dwi.nii.gz", "b", "v", out).get_node(n).overwrite for n in sinks]
    folder = out / "sub-01" / "dwi"
    folder.mkdir(parents=True)
    for rel in ("model-dti_param-fa_dwimap.nii.gz", "desc-filtered_tractogram.trx",
                "desc-fa_tractprofiles.csv", "desc-filtered_tdi.nii.gz"):
        (folder / f"sub-01_space-dwi_{rel}").write_bytes(b"")
    after = [build("dwi.nii.gz", "b", "v", out).get_node(n).overwrite for n in sinks]
    assert before == after
