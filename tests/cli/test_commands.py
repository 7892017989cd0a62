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
