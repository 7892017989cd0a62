"""Each ready pipeline of the top-level ``workflows/`` folder, run as its ``main``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np
import pytest
from trx.trx_file_memmap import load as trx_python_load

from trx_nipype.workflows import default_work_dir

from .conftest import digests

ROOT = Path(__file__).resolve().parents[2]
SUBJECTS = ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"]

#: ``bundles_pipeline.py --streamlines-per-subject 20 --seed 42``: population files
PINNED_BALANCED = {
    "population/tract-AF_L_tractogram.trx":
        "1f104d5b1b9eaa670ea009c727ce5910d02b0a3a451797a15c9858da20cb4321",
    "population/tract-CC_ForcepsMajor_tractogram.trx":
        "87cbce13c2bcd19ef3b95c94b4d9c86a8d408fa9d99bc98f3d4cf95608e5e2a8",
    "population/tract-CST_R_tractogram.trx":
        "6fba7a064567b813f91fb8c03ad367e46956fc821ddd7145dc5ff6a0877b32ea",
}


def load_script(name: str) -> ModuleType:
    """Import ``workflows/<name>.py`` as a module."""
    path = ROOT / "workflows" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"ready_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_ready_pipeline_is_tested() -> None:
    scripts = sorted(p.stem for p in (ROOT / "workflows").glob("*.py"))
    assert scripts == ["bundles_pipeline", "convert_dataset", "population_from_subjects",
                       "tractography_pipeline"]  # the last: test_tractography_pipeline.py


@pytest.fixture(scope="module")
def balanced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("balanced") / "out"
    module = load_script("bundles_pipeline")
    assert module.main(["--output-dir", str(out), "--streamlines-per-subject", "20",
                        "--seed", "42", "-q"]) == 0
    return out


def test_bundles_pipeline_balances_subjects_with_a_seed(balanced: Path) -> None:
    written = digests(balanced)
    assert {p: written[p] for p in PINNED_BALANCED} == PINNED_BALANCED
    demo = default_work_dir(balanced) / "demo-data"
    trx = trx_python_load(str(balanced / "population/tract-AF_L_tractogram.trx"))
    assert {g: len(i) for g, i in trx.groups.items()} == {s: 20 for s in SUBJECTS}
    # each subject's 20 are streamlines of its own file, in file order
    for k, subject in enumerate(SUBJECTS):
        original = nib.streamlines.load(str(demo / subject / "dwi" / "AF_L.trk")).streamlines
        firsts = np.array([s[0] for s in original])
        picked = [int(np.argmin(np.abs(firsts - trx.streamlines[20 * k + i][0]).sum(1)))
                  for i in range(20)]
        assert picked == sorted(set(picked))
        for i, j in enumerate(picked):
            np.testing.assert_allclose(trx.streamlines[20 * k + i], original[j], atol=1e-5)
    trx.close()
    side = json.loads((balanced / "population/tract-AF_L_tractogram.json")
                      .read_text(encoding="utf-8"))
    assert side["Parameters"]["nb_streamlines"] == 20 and side["Parameters"]["seed"] == 42


def test_population_from_subjects_reuses_existing_subject_files(balanced: Path,
                                                                tmp_path: Path) -> None:
    module = load_script("population_from_subjects")
    out = tmp_path / "pop"
    argv = [str(balanced), "--bundles", "AF_L", "CST_R", "--output-dir", str(out),
            "--streamlines-per-subject", "10", "--seed", "7", "-q"]
    assert module.main(argv) == 0
    assert sorted(digests(out)) == ["population/tract-AF_L_tractogram.trx",
                                    "population/tract-CST_R_tractogram.trx"]
    trx = trx_python_load(str(out / "population/tract-CST_R_tractogram.trx"))
    assert {g: len(i) for g, i in trx.groups.items()} == {s: 10 for s in SUBJECTS}
    trx.close()
    first = digests(out)
    assert module.main(argv) == 0  # cached, same bytes
    assert digests(out) == first
    # an unknown bundle fails, naming the subject's file and the groups present
    assert module.main([*argv[:2], "NOPE", *argv[4:]]) == 1


def test_convert_dataset_to_tck_keeps_layout_and_coordinates(demo_copy: Path,
                                                             tmp_path: Path) -> None:
    module = load_script("convert_dataset")
    out = tmp_path / "tck"
    assert module.main([str(demo_copy), "--output-dir", str(out), "--format", "tck",
                        "-q"]) == 0
    converted = sorted(p.relative_to(out).as_posix() for p in out.glob("sub-*/dwi/*.tck"))
    assert converted == sorted(p.relative_to(demo_copy).with_suffix(".tck").as_posix()
                               for p in demo_copy.glob("sub-*/dwi/*.trk"))
    for rel in ("sub-01/dwi/AF_L", "sub-05/dwi/CST_R"):
        tck = nib.streamlines.load(str(out / f"{rel}.tck")).streamlines
        trk = nib.streamlines.load(str(demo_copy / f"{rel}.trk")).streamlines
        assert len(tck) == len(trk) == 50
        np.testing.assert_allclose(tck.get_data(), trk.get_data(), atol=1e-4)
        side = json.loads((out / f"{rel}.json").read_text(encoding="utf-8"))
        assert side["Counts"]["NB_STREAMLINES"] == 50
        assert side["Parameters"]["out_format"] == "tck"


def test_population_from_subjects_recreates_a_deleted_output(balanced: Path,
                                                            tmp_path: Path) -> None:
    module = load_script("population_from_subjects")
    out = tmp_path / "pop"
    argv = [str(balanced), "--bundles", "AF_L", "CST_R", "--output-dir", str(out),
            "--streamlines-per-subject", "10", "-q"]
    assert module.main(argv) == 0
    first = digests(out)
    gone = out / "population/tract-AF_L_tractogram.trx"
    gone.unlink()
    assert module.main(argv) == 0
    assert digests(out) == first


@pytest.mark.parametrize("script", ["bundles_pipeline", "population_from_subjects"])
def test_ready_pipelines_parse_streamlines_per_subject_like_the_cli(script: str,
                                                                    tmp_path: Path) -> None:
    module = load_script(script)
    head = [] if script == "bundles_pipeline" else [str(tmp_path), "--bundles", "AF_L"]
    for bad in ("0", "-3", "many"):
        with pytest.raises(SystemExit) as info:
            module.main([*head, "--output-dir", str(tmp_path / "o"),
                         "--streamlines-per-subject", bad])
        assert info.value.code == 2
    if script == "bundles_pipeline":
        assert module.per_subject("all") is None and module.per_subject("min") == "min"
        assert module.per_subject("12") == 12
