"""The ready tractography pipeline (dipy's DWI -> tracks -> filter -> sample -> profile ->
density) and the tractometry builder."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dipy.stats.analysis import afq_profile
from dipy.tracking.streamline import Streamlines, length
from dipy.tracking.utils import density_map

from trx_nipype.core import load
from trx_nipype.workflows.tractometry import init_tractometry_wf

from .test_ready_pipelines import load_script

PREFIX = "sub-01/dwi/sub-01_space-dwi"


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tracto") / "out"
    module = load_script("tractography_pipeline")
    assert module.main(["--output-dir", str(out), "-q"]) == 0
    return out


def test_outputs_equal_dipy_on_the_tracked_streamlines(run_out: Path) -> None:
    trx_path = run_out / f"{PREFIX}_desc-filtered_tractogram.trx"
    fa_img = nib.load(run_out / f"{PREFIX}_model-dti_param-fa_dwimap.nii.gz")
    fa = np.asarray(fa_img.dataobj, dtype=np.float64)
    with load(trx_path) as trx:
        sls = [np.array(s) for s in trx.streamlines]
        assert len(sls) > 1000 and sorted(trx.groups) == ["AP", "LR", "SI"]
        assert length(sls).min() >= 5.0  # the filter's --min-length
        assert {"fa"} == set(trx.dpv) and {"fa_mean"} == set(trx.dps)
        tdi = nib.load(run_out / f"{PREFIX}_desc-filtered_tdi.nii.gz")
        np.testing.assert_array_equal(np.asarray(tdi.dataobj),
                                      density_map(sls, trx.affine, trx.dimensions))
        with open(run_out / f"{PREFIX}_desc-fa_tractprofiles.csv", newline="",
                  encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        for g in trx.groups:
            bundle = Streamlines([np.array(s) for s in trx.get_group(g).streamlines])
            want = afq_profile(fa, bundle, fa_img.affine, n_points=20, orient_by=bundle[0])
            got = [float(r["value"]) for r in rows if r["tract"] == g]
            np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sidecars_and_no_machine_paths(run_out: Path) -> None:
    files = [p for p in run_out.rglob("*") if p.is_file() and "work" not in p.parts]
    assert len(files) == 9  # 4 outputs + 4 sidecars + dataset_description.json
    for path in files:
        data = path.read_bytes()
        assert str(run_out).encode() not in data and b"/site-packages/" not in data, path
    side = json.loads((run_out / f"{PREFIX}_desc-fa_tractprofiles.json").read_text())
    assert side["Pipeline"] == "tractography" and side["Counts"] == {"Rows": 3 * 20}
    assert side["Sources"][0]["name"] == "small_64D.nii"
    side = json.loads((run_out / f"{PREFIX}_desc-filtered_tractogram.json").read_text())
    assert side["Counts"]["DPV"] == ["fa"]


def test_rerun_executes_nothing(run_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = load_script("tractography_pipeline")
    assert module.main(["--output-dir", str(run_out)]) == 0
    assert "0 nodes ran, 9 cached" in capsys.readouterr().out


def test_a_deleted_export_is_exported_again(run_out: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # the builder no longer looks at the output folder: the run sees the missing file
    tdi = run_out / f"{PREFIX}_desc-filtered_tdi.nii.gz"
    data = tdi.read_bytes()
    tdi.unlink()
    module = load_script("tractography_pipeline")
    assert module.main(["--output-dir", str(run_out)]) == 0
    assert "1 nodes ran, 8 cached" in capsys.readouterr().out
    assert tdi.read_bytes() == data


def test_builder_touches_no_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    wf = init_tractometry_wf(min_length=10, nb_points=30, groups=["AF"], name="t")
    assert os.listdir(tmp_path) == []
    names = sorted(wf.list_node_names())
    assert names == ["density", "filter", "inputnode", "outputnode", "profile", "sample"]
    assert wf.get_node("profile").inputs.nb_points == 30
    assert wf.get_node("density").inputs.group_names == ["AF"]
