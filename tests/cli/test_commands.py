"""Every ``trx-nipype`` subcommand, its output, and its error paths (one line, exit code)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from trx.trx_file_memmap import load as trx_python_load

from trx_nipype.core import load
from trx_nipype.interfaces import ResizeTrx
from trx_nipype.workflows.runner import default_work_dir

from .conftest import Run


def one_error(err: str) -> str:
    """The single error line of stderr (and no traceback)."""
    lines = [ln for ln in err.splitlines() if not ln.startswith("trx-nipype: warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("trx-nipype: error: ") and "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------ info / validate
def test_info_human(cli: Run, trx_path: Path) -> None:
    code, out, _ = cli("info", trx_path)
    assert code == 0
    assert "streamlines  6" in out and "groups (2)   AF 3, CST 3" in out
    assert "dps          weight (float32)" in out and "dimensions   40 x 40 x 40" in out


def test_info_json(cli: Run, trx_path: Path, trk_dir: Path) -> None:
    code, out, _ = cli("info", trx_path, "--json")
    info = json.loads(out)
    assert code == 0 and info["nb_streamlines"] == 6 and info["groups"] == {"AF": 3, "CST": 3}
    assert info["container"] == "zip" and info["compression"] == "stored"
    assert info["dpv"] == {"fa": {"dtype": "float32", "ncols": 1}}
    code, out, _ = cli("info", trk_dir / "sub-01/dwi/AF_L.trk", "--json")
    info = json.loads(out)
    assert code == 0 and (info["nb_streamlines"], info["nb_vertices"]) == (50, 1000)


def test_info_describes_the_files_it_can_read_and_reports_the_others(
        cli: Run, trx_path: Path, tmp_path: Path) -> None:
    """``info a.trx nope.trx`` printed nothing of a.trx."""
    code, out, err = cli("info", trx_path, tmp_path / "nope.trx")
    assert code == 3 and out.startswith(f"{trx_path} (zip, stored)") and "streamlines" in out
    assert one_error(err).endswith("nope.trx: no such file or directory")
    code, out, err = cli("info", tmp_path / "nope.trx", trx_path, "--json")
    assert code == 3 and [i["nb_streamlines"] for i in json.loads(out)] == [6]


def test_split_groups_force_help_reads(cli: Run) -> None:
    code, out, _ = cli("split-groups", "--help")
    text = " ".join(out.split())
    assert code == 0 and "replace the files of the same names already in the folder" in text
    assert "if it exists" not in text


@pytest.mark.parametrize("command", ["info", "validate"])
def test_missing_file(cli: Run, tmp_path: Path, command: str) -> None:
    code, _, err = cli(command, tmp_path / "nope.trx")
    assert code == 3 and "nope.trx" in one_error(err)


def test_validate(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    code, out, err = cli("validate", trx_path, "--deep")
    assert code == 0 and "valid TRX (zip, 6 streamlines" in out and err == ""
    bad = tmp_path / "bad.trx"
    bad.write_bytes(trx_path.read_bytes()[:-200])
    code, out, err = cli("validate", trx_path, bad)
    assert code == 3 and "bad.trx" in one_error(err) and "valid TRX" in out
    code, out, _ = cli("validate", bad, "--json")
    assert code == 3 and json.loads(out)["ok"] is False


# ------------------------------------------------------------------ convert
def test_convert_trk_to_trx_and_back(cli: Run, trk_dir: Path, tmp_path: Path) -> None:
    src = trk_dir / "sub-02/dwi/CST_R.trk"
    code, out, _ = cli("convert", src, tmp_path / "cst.trx", "--positions-dtype", "float32")
    assert code == 0 and out.strip() == str(tmp_path / "cst.trx")
    original = nib.streamlines.load(str(src)).streamlines
    trx = trx_python_load(str(tmp_path / "cst.trx"))
    np.testing.assert_allclose(trx.streamlines.get_data(), original.get_data(), atol=1e-5)
    trx.close()
    code, _, _ = cli("convert", tmp_path / "cst.trx", tmp_path / "cst.trk")
    assert code == 0
    back = nib.streamlines.load(str(tmp_path / "cst.trk")).streamlines
    np.testing.assert_allclose(back.get_data(), original.get_data(), atol=1e-5)


def test_convert_errors(cli: Run, trk_dir: Path, tmp_path: Path) -> None:
    trk = nib.streamlines.load(str(trk_dir / "sub-01/dwi/AF_L.trk"))
    tck = tmp_path / "af.tck"
    nib.streamlines.save(trk.tractogram, str(tck))
    code, _, err = cli("convert", tck, tmp_path / "af.trx")  # TCK has no space
    assert code == 3 and "af.tck" in (line := one_error(err)) and "reference" in line
    code, _, err = cli("convert", tck, tmp_path / "af.trx", "--reference", tmp_path / "no.nii")
    assert code == 3 and "no.nii: no such file" in one_error(err)
    code, _, _ = cli("convert", tck, tmp_path / "af.trx", "--reference",
                     trk_dir / "sub-01/dwi/AF_L.trk")
    assert code == 0 and not (tmp_path / "no.nii").exists()
    with load(tmp_path / "af.trx") as trx:
        assert len(trx) == 50


# ------------------------------------------------------------------ concatenate
def test_concatenate(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.trx"
    shutil.copy(trx_path, other)
    out = tmp_path / "both.trx"
    code, stdout, _ = cli("concatenate", trx_path, other, "-o", out, "--group-by-input",
                          "--group-names", "left", "right")
    assert code == 0 and "12 streamlines" in stdout
    with load(out) as trx:
        assert {g: len(i) for g, i in trx.groups.items()} == {
            "AF": 6, "CST": 6, "left": 6, "right": 6}
    code, _, err = cli("concatenate", trx_path, other, "-o", out, "--group-names", "a", "b")
    assert code == 2 and "needs --group-by-input" in one_error(err)
    code, _, err = cli("concatenate", trx_path, other, "-o", out, "--group-by-input",
                       "--group-names", "a")
    assert code == 2 and "1 names for 2 inputs" in one_error(err)
    code, _, err = cli("concatenate", trx_path, tmp_path / "gone.trx", "-o", out)
    assert code == 3 and "gone.trx" in one_error(err)


def test_concatenate_one_group_of_each_input_sampled(cli: Run, trx_path: Path,
                                                     tmp_path: Path) -> None:
    # a population bundle in one command: no select-group / resize files in between
    other = tmp_path / "other.trx"
    shutil.copy(trx_path, other)
    out = tmp_path / "af.trx"
    code, stdout, _ = cli("concatenate", trx_path, other, "-o", out, "--select-group", "AF",
                          "--nb-streamlines", "2", "--seed", "3", "--group-by-input",
                          "--group-names", "sub-01", "sub-02")
    assert code == 0 and "4 streamlines" in stdout
    with load(out) as trx, load(trx_path) as src:
        assert {g: len(i) for g, i in trx.groups.items()} == {"sub-01": 2, "sub-02": 2}
        picked = src.get_group("AF").sample(2, seed=3)
        np.testing.assert_array_equal(trx.positions[:picked.nb_vertices], picked.positions)
    code, _, err = cli("concatenate", trx_path, other, "-o", out, "-f", "--select-group", "UF")
    assert code == 3 and "no group 'UF'" in one_error(err)
    code, _, err = cli("concatenate", trx_path, other, trx_path, "-o", out, "--select-group",
                       "AF", "CST")
    assert code == 2 and "one per input: 2 for 3 inputs" in one_error(err)
    code, _, err = cli("concatenate", trx_path, other, "-o", out, "--nb-streamlines", "0")
    assert code == 2 and "--nb-streamlines" in err


# ------------------------------------------------------------------ select-group
def test_select_group(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "af.trx"
    code, stdout, _ = cli("select-group", trx_path, "AF", "-o", out)
    assert code == 0 and "3 streamlines" in stdout
    with load(out) as trx, load(trx_path) as src:
        np.testing.assert_array_equal(trx.positions, src.get_group("AF").positions)
    code, _, _ = cli("select-group", trx_path, "AF", "CST", "-o", out, "--drop-groups",
                     "--force")  # replacing an output needs --force since issue 16 item 5
    with load(out) as trx:
        assert code == 0 and len(trx) == 6 and trx.groups == {}


def test_select_unknown_group(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    code, _, err = cli("select-group", trx_path, "UF", "-o", tmp_path / "x.trx")
    line = one_error(err)
    assert code == 3 and "no group 'UF'" in line and "groups present: AF, CST" in line
    assert str(trx_path) in line and not (tmp_path / "x.trx").exists()


# ------------------------------------------------------------------ resize
def test_resize(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    code, _, _ = cli("resize", trx_path, "-n", "2", "-o", tmp_path / "first.trx")
    with load(tmp_path / "first.trx") as trx, load(trx_path) as src:
        assert code == 0
        np.testing.assert_array_equal(trx.positions, src.select([0, 1]).positions)
    # the same seeded subset as the ResizeTrx interface
    code, _, _ = cli("resize", trx_path, "-n", "4", "--random", "--seed", "7",
                     "-o", tmp_path / "cli.trx")
    node = ResizeTrx(in_file=str(trx_path), nb_streamlines=4, random=True, seed=7).run(
        cwd=str(tmp_path))
    assert code == 0
    assert (tmp_path / "cli.trx").read_bytes() == Path(node.outputs.out_file).read_bytes()


def test_resize_errors(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    code, _, err = cli("resize", trx_path, "--random", "-o", tmp_path / "x.trx")
    assert code == 2 and "--random needs" in one_error(err)
    code, _, err = cli("resize", trx_path, "-n", "99", "--random", "-o", tmp_path / "x.trx")
    assert code == 3 and "cannot draw 99 streamlines from 6" in one_error(err)


# ------------------------------------------------------------------ split-groups
@pytest.mark.parametrize(("fmt", "ext"), [("trx", ".trx"), ("trk", ".trk")])
def test_split_groups(cli: Run, trx_path: Path, tmp_path: Path, fmt: str, ext: str) -> None:
    out = tmp_path / "split"
    code, stdout, _ = cli("split-groups", trx_path, "-o", out, "--format", fmt)
    assert code == 0 and stdout.count("3 streamlines") == 2
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"bundle_AF{ext}", f"bundle_CST{ext}"]
    if fmt == "trk":
        trk = nib.streamlines.load(str(out / "bundle_CST.trk")).streamlines
        with load(trx_path) as src:
            np.testing.assert_allclose(trk.get_data(), src.get_group("CST").positions,
                                       atol=1e-4)


def test_split_without_groups(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    cli("select-group", trx_path, "AF", "-o", tmp_path / "flat.trx", "--drop-groups")
    code, _, err = cli("split-groups", tmp_path / "flat.trx", "-o", tmp_path / "s")
    assert code == 3 and "no groups to split" in one_error(err)


# ------------------------------------------------------------------ run: option errors
@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--plugin-args", "{nope"], 2, "--plugin-args is not valid JSON"),
    (["--plugin-args", "[1]"], 2, "--plugin-args must be a JSON object"),
    (["--reference", "missing.nii.gz"], 3, "missing.nii.gz: reference image not found"),
    (["--subjects", "09"], 3, "no subject 'sub-09'"),
])
def test_run_option_errors(cli: Run, trk_dir: Path, tmp_path: Path, extra: list[str],
                           code: int, message: str) -> None:
    got, _, err = cli("run", trk_dir, "--output-dir", tmp_path / "out", "-q", *extra)
    assert got == code and message in one_error(err)


def test_run_missing_input_dir(cli: Run, tmp_path: Path) -> None:
    code, _, err = cli("run", tmp_path / "nope", "--output-dir", tmp_path / "out")
    assert code == 3 and "input folder not found" in one_error(err)


def test_run_subset_and_no_population(cli: Run, trk_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, _ = cli("run", trk_dir, "--output-dir", out, "--subjects", "02", "sub-04",
                          "--no-population", "--work-dir", tmp_path / "w")
    assert code == 0 and "2 subjects (sub-02, sub-04)" in stdout
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.trx")) == [
        "sub-02/dwi/sub-02_desc-bundles_tractogram.trx",
        "sub-04/dwi/sub-04_desc-bundles_tractogram.trx"]


def test_run_convert_pipeline(cli: Run, trk_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, _ = cli("run", trk_dir, "--output-dir", out, "--pipeline", "convert",
                          "--subjects", "01", "--compression", "deflate")
    assert code == 0 and "2 nodes ran" in stdout  # convert, ds_converted: one node each
    report = json.loads(cli("validate", out / "sub-01/dwi/AF_L.trx", "--json")[1])
    assert report["ok"] and report["compression"] == "deflate"


# ------------------------------------------------------------------ usage
@pytest.mark.parametrize(("argv", "code"), [
    ([], 2), (["frobnicate"], 2), (["info"], 2), (["select-group", "a.trx", "G"], 2),
    (["run", "--output-dir", "o", "--streamlines-per-subject", "0"], 2),
    (["--version"], 0), (["run", "--help"], 0),
])
def test_usage(cli: Run, argv: list[str], code: int) -> None:
    assert cli(*argv)[0] == code


def test_console_script_exit_code_and_one_line(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("trx-nipype")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "trx_nipype.cli.main"]
    env = {**os.environ, "NIPYPE_NO_ET": "1"}
    proc = subprocess.run([*cmd, "info", str(tmp_path / "x.trx")], capture_output=True,
                          text=True, env=env, check=False)
    assert proc.returncode == 3
    assert proc.stderr.strip() == f"trx-nipype: error: {tmp_path / 'x.trx'}: no such file or " \
                                  "directory"


# ------------------------------------------------------------------ review fixes
def test_split_groups_names_that_collapse_stay_distinct(cli: Run, trx_path: Path,
                                                        tmp_path: Path) -> None:
    both = tmp_path / "odd.trx"
    code, _, err = cli("concatenate", trx_path, trx_path, "-o", both, "--group-by-input",
                       "--group-names", "AF L", "AF_L")
    assert code == 0, err
    code, out, _ = cli("split-groups", both, "-o", tmp_path / "sg")
    names = sorted(p.name for p in (tmp_path / "sg").iterdir())
    assert code == 0 and len(names) == 4 == len(set(n.lower() for n in names)), names


def test_outputs_that_are_not_trx_are_never_replaced(cli: Run, trx_path: Path,
                                                     tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious", encoding="utf-8")
    for argv in (("convert", trx_path, mine), ("select-group", trx_path, "AF", "-o", mine),
                 ("concatenate", trx_path, trx_path, "-o", mine)):
        code, _, err = cli(*argv)
        assert code == 2 and "is not a TRX folder" in one_error(err)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("extra", [["--plugin", "Bogus"], ["--nprocs", "0"],
                                   ["--nprocs", "-1"]])
def test_run_bad_plugin_or_nprocs_is_a_usage_error(cli: Run, trk_dir: Path, tmp_path: Path,
                                                   extra: list[str]) -> None:
    code, _, err = cli("run", trk_dir, "--output-dir", tmp_path / "out", "-q", *extra)
    assert code == 2 and ("unknown Nipype plugin" in err or "whole number >= 1" in err)


def test_encoding_options_are_applied_or_refused(cli: Run, trx_path: Path, trk_dir: Path,
                                                 tmp_path: Path) -> None:
    for argv in (("select-group", trx_path, "AF", "-o", tmp_path / "s.trx"),
                 ("resize", trx_path, "-n", "2", "-o", tmp_path / "r.trx")):
        code, _, err = cli(*argv, "--positions-dtype", "float64")
        assert code == 0, err
        with load(argv[-1]) as out:
            assert out.positions_dtype == np.float64
    code, _, err = cli("run", trk_dir, "--output-dir", tmp_path / "o", "-q",
                       "--positions-dtype", "float16")
    assert code == 2 and "apply to --pipeline convert" in one_error(err)


# ------------------------------------------------------------------ run: folders it refuses
RAW = {"Name": "My raw data", "BIDSVersion": "1.9.0", "DatasetType": "raw"}


def small_dataset(trk_dir: Path, root: Path) -> Path:
    """Two subjects of the demo data, with a raw dataset description."""
    for sub in ("sub-01", "sub-02"):
        shutil.copytree(trk_dir / sub, root / sub)
    (root / "dataset_description.json").write_text(json.dumps(RAW), encoding="utf-8")
    return root


@pytest.mark.parametrize(("output", "work", "message"), [
    ("ds", None, "--output-dir {ds}: is the same folder as INPUT_DIR {ds}; the outputs "
                 "could replace the dataset's own files"),
    (".", None, "--output-dir {tmp}: holds INPUT_DIR {ds};"),
    ("o", "o", "--work-dir {tmp}/o: is the same folder as --output-dir {tmp}/o; Nipype's "
               "cache"),
    ("o", "o/work", "--work-dir {tmp}/o/work: is inside --output-dir {tmp}/o;"),
    ("o/x", "o", "--work-dir {tmp}/o: holds --output-dir {tmp}/o/x;"),
    ("o", "ds", "--work-dir {ds}: is the same folder as INPUT_DIR {ds}; Nipype's cache does "
                "not belong in the dataset"),
    ("o", "afile", "--work-dir {tmp}/afile: is a file, not a folder"),
    ("afile", None, "--output-dir {tmp}/afile: is a file, not a folder"),
    ("afile/o", None, "--output-dir {tmp}/afile/o: its parent {tmp}/afile is a file, not "
                      "a folder"),
])
def test_run_refuses_overlapping_folders_and_files(cli: Run, trk_dir: Path, tmp_path: Path,
                                                   output: str, work: str | None,
                                                   message: str) -> None:
    # they were run: the raw description replaced, Nipype's cache in the output folder or
    # the dataset, an empty report, or "[Errno 17] File exists"
    ds = small_dataset(trk_dir, tmp_path / "ds")
    (tmp_path / "afile").write_text("mine", encoding="utf-8")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, _, err = cli("run", ds, "--output-dir", tmp_path / output, "-q",
                       *(["--work-dir", tmp_path / work] if work else []))
    assert code == 2 and message.format(ds=ds, tmp=tmp_path) in one_error(err)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert json.loads((ds / "dataset_description.json").read_text()) == RAW


def test_run_writes_derivatives_inside_the_dataset(cli: Run, trk_dir: Path,
                                                  tmp_path: Path) -> None:
    # BIDS's layout: ds/derivatives/trx-nipype, its work dir beside it (inside ds too);
    # a second run over the same dataset does not take the first run's files as input
    ds = small_dataset(trk_dir, tmp_path / "ds")
    out = ds / "derivatives" / "trx-nipype"
    for _ in range(2):
        code, _, err = cli("run", ds, "--output-dir", out, "-q")
        assert code == 0, err
        rows = (out / "qc.tsv").read_text(encoding="utf-8").splitlines()
        assert len(rows) == 1 + 2 * 3  # header, 2 subjects x 3 bundles, none twice
    assert default_work_dir(out).is_dir() and default_work_dir(out).is_relative_to(ds)
    assert json.loads((ds / "dataset_description.json").read_text()) == RAW


def test_run_never_replaces_another_dataset_description(cli: Run, trk_dir: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "other"
    out.mkdir()
    theirs = {**RAW, "DatasetType": "derivative", "GeneratedBy": [{"Name": "fmriprep"}]}
    (out / "dataset_description.json").write_text(json.dumps(theirs), encoding="utf-8")
    code, _, err = cli("run", trk_dir, "--output-dir", out, "-q", "--subjects", "01")
    assert code == 2 and one_error(err).endswith(
        f"{out}/dataset_description.json: describes another dataset ('My raw data', "
        f"DatasetType 'derivative', written by 'fmriprep'); trx-nipype never replaces a "
        f"dataset description it did not write: choose another --output-dir (a new or "
        f"empty folder, or one of an earlier trx-nipype run)")
    assert [p.name for p in out.iterdir()] == ["dataset_description.json"]
    assert json.loads((out / "dataset_description.json").read_text()) == theirs
    assert not default_work_dir(out).exists()  # refused before any work
    # its own description is rewritten by the next run
    code, _, err = cli("run", trk_dir, "--output-dir", tmp_path / "mine", "-q",
                       "--subjects", "01", "--no-population")
    assert code == 0, err
    assert cli("run", trk_dir, "--output-dir", tmp_path / "mine", "-q", "--subjects", "01",
               "--no-population")[0] == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--out-format", "tck", "--compression", "deflate"],
     "--out-format tck: --compression deflate applies to TRX outputs; a TCK file has its own "
     "encoding"),
    (["--out-format", "tck", "--positions-dtype", "float16"],
     "--out-format tck: --positions-dtype float16 applies to TRX outputs"),
    (["--streamlines-per-subject", "5"],
     "--streamlines-per-subject applies to --pipeline bundles"),
    (["--no-population"], "--no-population applies to --pipeline bundles"),
])
def test_run_convert_refuses_options_it_would_not_use(cli: Run, trk_dir: Path, tmp_path: Path,
                                                      extra: list[str], message: str) -> None:
    code, _, err = cli("run", trk_dir, "--output-dir", tmp_path / "o", "-q", "--pipeline",
                       "convert", *extra)
    assert code == 2 and message in one_error(err)
    assert not (tmp_path / "o").exists()


def test_run_where_every_subject_failed_says_so(cli: Run, trk_dir: Path,
                                                tmp_path: Path) -> None:
    # was "...; the other subjects' results are in OUT" with no result anywhere
    for sub in ("sub-01", "sub-02"):
        (tmp_path / "ds" / sub / "dwi").mkdir(parents=True)
        (tmp_path / "ds" / sub / "dwi" / "AF_L.trk").write_bytes(b"x")
    code, _, err = cli("run", tmp_path / "ds", "--output-dir", tmp_path / "o", "-q")
    assert code == 1 and f"; no output file is in {tmp_path / 'o'}; crash files in" in err
    shutil.copytree(trk_dir / "sub-03", tmp_path / "ds" / "sub-03")
    code, _, err = cli("run", tmp_path / "ds", "--output-dir", tmp_path / "o", "-q",
                       "--no-population")
    assert code == 1 and f"; 1 of the 3 output files are in {tmp_path / 'o'};" in err


def test_run_refuses_more_streamlines_per_subject_than_a_bundle_has(cli: Run, trk_dir: Path,
                                                                    tmp_path: Path) -> None:
    # was one failure per bundle during the run ("concat: cannot draw 1000 streamlines")
    out = tmp_path / "o"
    code, _, err = cli("run", trk_dir, "--output-dir", out, "-q",
                       "--streamlines-per-subject", "1000")
    assert code == 2 and one_error(err).startswith(
        f"trx-nipype: error: run: --streamlines-per-subject 1000: sub-01's bundle AF_L "
        f"({trk_dir / 'sub-01/dwi/AF_L.trk'}) has 50 streamlines; the population files draw "
        f"as many from every subject: give at most 50, or 'min'")
    assert not out.exists() and not default_work_dir(out).exists()
    trx = tmp_path / "trx"  # TRX inputs are counted too
    code, _, err = cli("run", trk_dir, "--output-dir", trx, "-q", "--pipeline", "convert",
                       "--subjects", "01", "02")
    assert code == 0, err
    code, _, err = cli("run", trx, "--output-dir", tmp_path / "o2", "-q",
                       "--streamlines-per-subject", "51")
    assert code == 2 and "sub-01's bundle AF_L" in err and "has 50 streamlines" in err
    code, _, err = cli("run", trx, "--output-dir", tmp_path / "o2", "-q",
                       "--streamlines-per-subject", "50")
    assert code == 0, err
