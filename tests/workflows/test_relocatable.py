"""Relocatable outputs: the same job in two folders gives byte-identical trees, and no
output names a path of the machine (sources are BIDS URIs); the regression tools
(compare, manifest) agree on the project's own pipelines.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from trx_test_helpers import tree_bytes

from trx_nipype.cli.main import main
from trx_nipype.core import load, save
from trx_nipype.core.operations.compare import tree_files
from trx_nipype.data import DEMO_DATASET_URI
from trx_nipype.interfaces import TrxInfo

SUBJECTS = ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"]
BUNDLES = ["AF_L", "CC_ForcepsMajor", "CST_R"]


def outputs(out: Path) -> dict[str, bytes]:
    """Every output file's bytes (the work dir aside)."""
    return {rel: p.read_bytes() for rel, p in tree_files(out).items()}


def strings(doc: Any) -> list[str]:
    """Every string (keys and values) of a JSON document."""
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in [k, *strings(v)]]
    if isinstance(doc, list):
        return [s for v in doc for s in strings(v)]
    return [doc] if isinstance(doc, str) else []


def assert_no_machine_path(out: Path, *roots: Path) -> None:
    for rel, data in outputs(out).items():
        if not rel.endswith((".json", ".html", ".tsv", ".svg")):
            continue
        text = data.decode("utf-8")
        for root in roots:
            assert str(root) not in text, (rel, root)
        if not rel.endswith(".json"):
            continue
        absolute = [s for s in strings(json.loads(text)) if s.startswith("/")]
        assert not absolute, (rel, absolute)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The README's main job in two folders: other cwd, output dir (relative, with ..) and
    work dir (the default beside the output, then elsewhere)."""
    base = tmp_path_factory.mktemp("relocatable")
    first, second = base / "first", base / "second" / "deep" / "cwd"
    first.mkdir()
    second.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(first)
        assert main(["run", "--output-dir", "demo-out", "-q"]) == 0
        mp.chdir(second)
        assert main(["run", "--output-dir", "../out2", "--work-dir", str(base / "w2"),
                     "-q"]) == 0
    return base, first / "demo-out", base / "second" / "deep" / "out2"


def test_main_job_in_two_folders_is_byte_identical(two_runs: tuple[Path, Path, Path]) -> None:
    base, a, b = two_runs
    files_a, files_b = outputs(a), outputs(b)
    report = {rel for rel in files_a if rel in ("report.html", "qc.tsv")
              or rel.startswith("figures/")}
    assert len(set(files_a) - report) == 17  # 8 TRX + 8 sidecars + dataset_description.json
    assert {"report.html", "qc.tsv"} < report  # the QC report is relocatable too
    assert sorted(files_a) == sorted(files_b)
    different = [rel for rel in files_a if files_a[rel] != files_b[rel]]
    assert different == []
    assert_no_machine_path(a, base)
    assert_no_machine_path(b, base)
    # sidecars get the same permissions as the data files (mkstemp made them owner-only)
    trx = a / "sub-01/dwi/sub-01_desc-bundles_tractogram.trx"
    for rel in ("sub-01/dwi/sub-01_desc-bundles_tractogram.json", "dataset_description.json"):
        assert (a / rel).stat().st_mode == trx.stat().st_mode, rel


def test_sources_are_bids_uris(two_runs: tuple[Path, Path, Path]) -> None:
    _, out, _ = two_runs
    desc = json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
    assert desc["DatasetLinks"] == {"raw": DEMO_DATASET_URI}
    side = json.loads((out / "sub-02/dwi/sub-02_desc-bundles_tractogram.json")
                      .read_text(encoding="utf-8"))
    assert [s["path"] for s in side["Sources"]] == [f"bids:raw:sub-02/dwi/{b}.trk"
                                                    for b in BUNDLES]
    pop = json.loads((out / "population/tract-CST_R_tractogram.json").read_text("utf-8"))
    assert [s["path"] for s in pop["Sources"]] == [
        f"bids::{s}/dwi/{s}_desc-bundles_tractogram.trx" for s in SUBJECTS]


def test_compare_and_manifest_across_the_two_runs(two_runs: tuple[Path, Path, Path],
                                                  tmp_path: Path, capsys) -> None:
    _, a, b = two_runs
    assert main(["compare", str(a), str(b)]) == 0
    expected = tmp_path / "expected.json"
    assert main(["manifest", str(a), "-o", str(expected)]) == 0
    assert main(["manifest", "--check", str(expected), str(b)]) == 0
    capsys.readouterr()
    # a changed tree (a copy of the second run): one file re-encoded (same content), one
    # population file with a streamline less, one subject file removed
    changed = Path(shutil.copytree(b, tmp_path / "changed", ignore=shutil.ignore_patterns(
        "work")))
    with load(b / "sub-01/dwi/sub-01_desc-bundles_tractogram.trx") as trx:
        save(trx, changed / "sub-01/dwi/sub-01_desc-bundles_tractogram.trx",
             compression="deflate")
    with load(b / "population/tract-AF_L_tractogram.trx") as trx:
        save(trx.select(range(1, len(trx))), changed / "population/tract-AF_L_tractogram.trx")
    (changed / "sub-03/dwi/sub-03_desc-bundles_tractogram.trx").unlink()
    assert main(["manifest", "--check", str(expected), str(changed)]) == 1
    out = capsys.readouterr().out
    assert "population/tract-AF_L_tractogram.trx: nb_streamlines: 250 in the manifest, 249 " \
           "now" in out
    assert "sub-03/dwi/sub-03_desc-bundles_tractogram.trx: file: in the manifest, missing now" \
        in out
    assert "sub-01/dwi/sub-01_desc-bundles_tractogram.trx" not in out  # re-encoded: equal
    assert main(["compare", str(b), str(changed)]) == 1
    out = capsys.readouterr().out
    assert "population/tract-AF_L_tractogram.trx: nb_streamlines: 250 != 249" in out
    assert "population/tract-AF_L_tractogram.trx: groups/sub-01: 50 != 49 members" in out
    assert "sub-03/dwi/sub-03_desc-bundles_tractogram.trx: file: missing in B" in out


def test_a_user_dataset_moved_with_its_outputs_gives_the_same_bytes(demo_source: Path,
                                                                     tmp_path: Path) -> None:
    """sourcedata and derivatives side by side, run, moved elsewhere, run again."""
    study = tmp_path / "one" / "study"
    shutil.copytree(demo_source, study / "rawdata")
    out = study / "derivatives" / "trx"
    assert main(["run", str(study / "rawdata"), "--output-dir", str(out), "--pipeline",
                 "convert", "--out-format", "trk", "--work-dir", str(tmp_path / "w1"),
                 "-q"]) == 0
    desc = json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
    assert desc["DatasetLinks"] == {"raw": "../../rawdata"}
    side = json.loads((out / "sub-04/dwi/CST_R.json").read_text(encoding="utf-8"))
    assert [s["path"] for s in side["Sources"]] == ["bids:raw:sub-04/dwi/CST_R.trk"]
    assert_no_machine_path(out, tmp_path)
    moved = tmp_path / "two" / "elsewhere" / "study"
    shutil.copytree(study / "rawdata", moved / "rawdata")
    assert main(["run", str(moved / "rawdata"), "--output-dir",
                 str(moved / "derivatives" / "trx"), "--pipeline", "convert", "--out-format",
                 "trk", "--work-dir", str(tmp_path / "w2"), "-q"]) == 0
    assert outputs(moved / "derivatives" / "trx") == outputs(out)


def test_trx_info_json_names_no_machine_path(tmp_path: Path, demo_source: Path) -> None:
    trx_file = tmp_path / "in" / "af.trx"
    trx_file.parent.mkdir()
    assert main(["convert", str(demo_source / "sub-01/dwi/AF_L.trk"), str(trx_file)]) == 0
    (tmp_path / "node").mkdir()
    result = TrxInfo(in_file=str(trx_file)).run(cwd=str(tmp_path / "node"))
    text = Path(result.outputs.out_json).read_text(encoding="utf-8")
    assert str(tmp_path) not in text
    assert json.loads(text)["path"] == "af.trx"


def test_tree_bytes_helper_agrees_with_tree_files(two_runs: tuple[Path, Path, Path]) -> None:
    _, a, _ = two_runs
    every = tree_bytes(a)
    assert {k: v for k, v in every.items() if not k.startswith("work/")} == outputs(a)
