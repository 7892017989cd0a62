"""The CLI conventions of issue 16 (items 3, 4, 5, 9, 11) and issue 18 (items 3, 7): every
input format, the output's extension picks its format, ``--force``, messages in the CLI's
words, exit codes, closed pipes, outputs kept out of inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from trx_test_helpers import real_tractograms, tree_bytes

from trx_nipype.core import TrxFile, convert, load, save
from trx_nipype.core.formats.trk_groups import groups_sidecar_path as sidecar_path
from trx_nipype.interfaces._examples import example_trx

from .conftest import Run

REAL = dict(real_tractograms())
TRACKS300 = REAL["dipy/tracks300.trk"]


def error_line(err: str) -> str:
    """The single error line of stderr (warnings aside), without a traceback."""
    lines = [ln for ln in err.splitlines() if not ln.startswith("trx-nipype: warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("trx-nipype: error: ") and "Traceback" not in err
    return lines[0]


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture
def grouped_trk(tmp_path: Path, trx_path: Path) -> Path:
    """A valid TRK with groups AF and CST (in its .groups.json sidecar)."""
    out = tmp_path / "grouped.trk"
    with pytest.warns(UserWarning):  # TRK holds no dpg
        convert(trx_path, out)
    return out


# ------------------------------------------------------------- 16.3: every readable format
def test_operations_take_a_valid_trk(cli: Run, tmp_path: Path, trx_path: Path,
                                     grouped_trk: Path) -> None:
    """They said "expected a zip archive, found a truncated or corrupt one"."""
    for argv in (("resize", TRACKS300, "-n", "10", "-o", tmp_path / "r.trx"),
                 ("select-group", grouped_trk, "CST", "-o", tmp_path / "s.trx"),
                 ("concatenate", grouped_trk, trx_path, "-o", tmp_path / "c.trx"),
                 ("split-groups", grouped_trk, "-o", tmp_path / "split")):
        code, _, err = cli(*argv)
        assert code == 0 and "corrupt" not in err, err
    with load(tmp_path / "r.trx") as trx:
        expected = nib.streamlines.load(str(TRACKS300)).streamlines[:10]
        np.testing.assert_allclose(trx.positions, expected.get_data(), atol=1e-4)
    with load(tmp_path / "s.trx") as trx:
        assert len(trx) == 3
    with load(tmp_path / "c.trx") as trx, load(trx_path) as src:
        assert len(trx) == 12 and {g: len(i) for g, i in trx.groups.items()} == {
            "AF": 6, "CST": 6}
        np.testing.assert_allclose(trx.positions[-src.nb_vertices:], src.positions)
    assert listing(tmp_path / "split") == ["grouped_AF.trx", "grouped_CST.trx"]
    # files in different spaces: a clear refusal naming them, not "corrupt"
    code, _, err = cli("concatenate", TRACKS300, grouped_trk, "-o", tmp_path / "x.trx")
    assert code == 3 and "not in the space of" in error_line(err) and "corrupt" not in err


def test_messages_name_the_users_file_not_its_converted_copy(cli: Run, tmp_path: Path,
                                                            grouped_trk: Path) -> None:
    """A TRK input is converted into a private TRX; messages named that temporary copy."""
    code, _, err = cli("select-group", grouped_trk, "NOPE", "-o", tmp_path / "x.trx")
    line = error_line(err)
    assert code != 0 and f"in {grouped_trk};" in line and "trx_nipype-" not in line, err
    code, _, err = cli("concatenate", grouped_trk, TRACKS300, "-o", tmp_path / "c.trx")
    line = error_line(err)
    assert code == 3 and line.startswith(f"trx-nipype: error: {TRACKS300}: "), err
    assert "input 1 (tracks300.trk)" in line and "trx_nipype-" not in line, err
    # a result written as TCK through a private TRX (all 300 outside their grid): no warning
    # naming that copy (nor the Python API's keep_outside); a TRX result gets none either
    code, _, err = cli("resample", TRACKS300, "-o", tmp_path / "r.tck", "--points", "5")
    assert code == 0 and "staged" not in err and "keep_outside" not in err, err


def test_refusals_name_the_option_in_the_clis_words(cli: Run, tmp_path: Path,
                                                    trx_path: Path) -> None:
    """They said "the output of split_groups", "not replaced" without --force, nothing of
    --group-names or --name, "corrupt zip" for a TRK, and "a number >= 0" for inf."""
    (tmp_path / "out.trk").write_bytes(b"")
    code, _, err = cli("split-groups", trx_path, "-o", tmp_path / "out.trk")
    assert code == 2 and error_line(err).endswith(
        "out.trk: exists and is not a folder; -o/--output must be a folder (it receives one "
        "file per group)"), err
    (tmp_path / "m.json").write_text("{}")
    code, _, err = cli("manifest", trx_path, "-o", tmp_path / "m.json")
    assert code == 2 and error_line(err).endswith(
        "m.json: exists; pass -f/--force to replace it"), err
    code, _, err = cli("concatenate", trx_path, trx_path, "-o", tmp_path / "c.trx",
                       "--group-by-input", "--group-names", "A", "")
    assert code != 0 and "error: --group-names: invalid group name(s) ['']" in err, err
    image = tmp_path / "image.nii.gz"
    with load(trx_path) as trx:
        nib.save(nib.Nifti1Image(np.zeros(trx.dimensions, np.float32), trx.affine), str(image))
    code, _, err = cli("sample", trx_path, image, "--name", "", "-o", tmp_path / "s.trx")
    assert code != 0 and "error: --name: '': " in err, err
    code, _, err = cli("validate", TRACKS300)
    assert code == 3 and "corrupt" not in err and "a .trk file, not a TRX: validate checks " \
        "TRX files" in error_line(err), err
    code, _, err = cli("compare", trx_path, trx_path, "--atol", "inf")
    assert code == 2 and "--atol: expected a finite number >= 0, got 'inf'" in err, err


# ------------------------------------------------------------- 16.4: extension picks format
def test_the_output_extension_picks_the_format(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    code, out, err = cli("select-group", trx_path, "AF", "-o", tmp_path / "af.trk")
    assert code == 0, err
    assert (tmp_path / "af.trk").is_file()  # it was a TRX folder named af.trk
    with load(trx_path) as src:
        trk = nib.streamlines.load(str(tmp_path / "af.trk")).streamlines
        np.testing.assert_allclose(trk.get_data(), src.get_group("AF").positions, atol=1e-4)
    code, _, err = cli("resize", trx_path, "-n", "4", "-o", tmp_path / "four.tck")
    assert code == 0 and len(nib.streamlines.load(str(tmp_path / "four.tck")).streamlines) == 4
    code, _, err = cli("concatenate", trx_path, trx_path, "-o", tmp_path / "both.trk",
                       "--group-by-input", "--group-names", "a", "b")
    assert code == 0 and (tmp_path / "both.trk").is_file()
    assert sidecar_path(tmp_path / "both.trk").is_file()  # the group names, beside it
    code, _, err = cli("convert", tmp_path / "both.trk", tmp_path / "back.trx")
    with load(tmp_path / "back.trx") as back:
        assert {g: len(i) for g, i in back.groups.items()} == {
            "AF": 6, "CST": 6, "a": 6, "b": 6}


def test_an_extension_that_cannot_hold_the_result_is_refused_first(
        cli: Run, trx_path: Path, tmp_path: Path) -> None:
    before = listing(tmp_path)
    for argv, words in [
        (("select-group", trx_path, "AF", "-o", tmp_path / "x.tck", "--keep-groups"),
         "TCK files cannot hold groups, which --keep-groups asks for"),
        (("concatenate", trx_path, trx_path, "-o", tmp_path / "x.vtk", "--group-by-input",
          "--group-names", "a", "b"), "VTK files cannot hold groups, which --group-by-input"),
        (("resize", trx_path, "-o", tmp_path / "x.txt"), "cannot tell the output format"),
        (("resize", trx_path, "-o", tmp_path / "x.trk", "--positions-dtype", "float64"),
         "--positions-dtype float64 applies to TRX outputs"),
    ]:
        code, _, err = cli(*argv)
        assert code == 2 and words in error_line(err), err
    assert listing(tmp_path) == before


# ------------------------------------------------------------- 16.5: --force
@pytest.mark.parametrize("argv", [
    ("convert", "{in}", "{out}"), ("concatenate", "{in}", "{in}", "-o", "{out}"),
    ("select-group", "{in}", "AF", "-o", "{out}"), ("resize", "{in}", "-n", "2", "-o", "{out}"),
])
def test_existing_outputs_need_force(cli: Run, trx_path: Path, tmp_path: Path,
                                     argv: tuple[str, ...]) -> None:
    out = tmp_path / "out.trx"
    args = [str(trx_path) if a == "{in}" else str(out) if a == "{out}" else a for a in argv]
    code, _, err = cli(*args)
    assert code == 0, err
    before = out.read_bytes()
    code, _, err = cli(*args)
    line = error_line(err)
    assert code == 2 and f"{out}: exists; pass -f/--force to replace it" in line
    assert "overwrite" not in line and out.read_bytes() == before
    code, _, err = cli(*args, "--force")
    assert code == 0, err
    text = tmp_path / "J.trx"  # a text file with a tractogram's name
    text.write_text("precious", encoding="utf-8")
    for extra in ([], ["-f"]):
        code, _, err = cli(*[str(text) if a == str(out) else a for a in args], *extra)
        assert code == 2 and "is not a TRX file or another tractogram" in error_line(err)
    assert text.read_text(encoding="utf-8") == "precious"


def test_split_groups_needs_force_for_existing_files(cli: Run, trx_path: Path,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "split"
    assert cli("split-groups", trx_path, "-o", out)[0] == 0
    before = tree_bytes(out / "bundle_AF.trx")
    code, _, err = cli("split-groups", trx_path, "-o", out)
    assert code == 2 and "bundle_AF.trx: exists; pass -f/--force" in error_line(err)
    assert tree_bytes(out / "bundle_AF.trx") == before
    (out / "bundle_CST.trx").unlink()
    (out / "bundle_CST.trx").write_text("not a bundle", encoding="utf-8")
    code, _, err = cli("split-groups", trx_path, "-o", out, "--force")
    assert code == 2 and "bundle_CST.trx: exists and is not a TRX file" in error_line(err)
    assert (out / "bundle_CST.trx").read_text(encoding="utf-8") == "not a bundle"
    assert tree_bytes(out / "bundle_AF.trx") == before  # refused before any file was written


# ------------------------------------------------------------- 16.9: the CLI's words
def test_messages_name_the_cli_options(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    tck = REAL["nibabel/standard.tck"]
    code, _, err = cli("convert", tck, tmp_path / "x.trx")
    line = error_line(err)
    assert code == 3 and "give --reference a NIfTI image" in line and "reference=" not in line
    other = tmp_path / "other.trx"
    save(TrxFile.from_arrays(np.ones((4, 3), np.float32), lengths=[2, 2],
                             affine=np.diag([2.0, 2.0, 2.0, 1.0]), dimensions=(40, 40, 40)),
         other)
    code, _, err = cli("concatenate", trx_path, other, "-o", tmp_path / "c.trx")
    line = error_line(err)
    assert code == 3 and "pass --delete-dps to drop only these keys" in line
    assert "delete_dps" not in line
    code, _, err = cli("resize", trx_path, "-n", "99", "-o", tmp_path / "r.trx")
    line = error_line(err)
    assert code == 3 and "-n/--nb-streamlines 99:" in line and "has 6 streamlines" in line
    assert "TrxFile" not in line and "nb_streamlines=" not in line
    code, _, err = cli("resize", trx_path, "--random", "-o", tmp_path / "r.trx")
    assert code == 2 and "--random needs -n/--nb-streamlines" in error_line(err)
    # a random draw of more than there are names the option and the user's file, even
    # when the input is converted first (it named the private converted copy)
    code, _, err = cli("resize", tck, "-n", "99999", "--random", "-o", tmp_path / "r.tck")
    line = error_line(err)
    assert code == 3 and "-n/--nb-streamlines 99999:" in line and f"in {tck}:" in line
    assert "trx_nipype-input" not in line and not (tmp_path / "r.tck").exists()


def test_warnings_name_the_cli_options(cli: Run, tmp_path: Path) -> None:
    trx = TrxFile.from_arrays(np.array([[0, 0, 0], [1, 1, 1], [500, 0, 0], [501, 0, 0]],
                                       np.float32), lengths=[2, 2],
                              affine=np.eye(4), dimensions=(10, 10, 10))
    save(trx, tmp_path / "out.trx")
    code, _, err = cli("convert", tmp_path / "out.trx", tmp_path / "o.trk")
    warning = [ln for ln in err.splitlines() if "outside the bounding box" in ln]
    assert code == 0 and len(warning) == 1
    assert "kept (--drop-outside drops them)" in warning[0] and "keep_outside" not in err


def test_a_missing_output_folder_is_a_usage_error(cli: Run, trx_path: Path,
                                                  tmp_path: Path) -> None:
    for argv in (("convert", trx_path, tmp_path / "no" / "x.trx"),
                 ("resize", trx_path, "-o", tmp_path / "no" / "x.trx"),
                 ("select-group", trx_path, "AF", "-o", tmp_path / "no" / "x.trk")):
        code, _, err = cli(*argv)
        line = error_line(err)
        assert code == 2 and "output's folder does not exist" in line
        assert "Errno" not in line
    assert not (tmp_path / "no").exists()


def test_exit_codes_do_not_depend_on_traceback(cli: Run, tmp_path: Path) -> None:
    for argv, code in ((("info", tmp_path / "nope.trx"), 3),
                       (("resize", tmp_path / "nope.trx", "-o", tmp_path / "x.trx"), 3)):
        plain, _, _ = cli(*argv)
        traced, _, err = cli("--traceback", *argv)
        assert plain == traced == code
        assert "Traceback (most recent call last)" in err and "trx-nipype: error:" in err


def test_a_closed_pipe_ends_quietly(trx_path: Path) -> None:
    exe = Path(sys.executable).with_name("trx-nipype")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "trx_nipype.cli.main"]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line: every write fails
    try:
        proc = subprocess.run([*cmd, "info", str(trx_path), str(trx_path)], stdout=write,
                              stderr=subprocess.PIPE, text=True, check=False,
                              env={**os.environ, "NIPYPE_NO_ET": "1"})
    finally:
        os.close(write)
    assert proc.returncode == 0 and proc.stderr == ""
    # a broken pipe that is not stdout's is an error like any other
    script = ("import sys\nfrom trx_nipype.cli import main, ops\n"
              "def boom(args):\n    raise BrokenPipeError(32, 'Broken pipe (a worker)')\n"
              "ops.cmd_info = boom\nsys.exit(main.main(['info', 'x']))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, env={**os.environ, "NIPYPE_NO_ET": "1"})
    assert proc.returncode == 1 and "Broken pipe (a worker)" in error_line(proc.stderr)


# ------------------------------------------------------------- 16.11: defaults
def test_info_counts_a_tck_without_reference(cli: Run) -> None:
    tck = REAL["nibabel/standard.tck"]
    code, out, err = cli("info", tck)
    assert code == 0, err
    n = len(nib.streamlines.load(str(tck)).streamlines)
    assert f"streamlines  {n}" in out and "carries no space" in out
    code, out, _ = cli("info", tck, "--reference", REAL["nibabel/standard.trk"])
    assert code == 0 and "carries no space" not in out


def test_select_group_gives_the_selection_alone(cli: Run, trx_path: Path,
                                                tmp_path: Path) -> None:
    code, _, _ = cli("select-group", trx_path, "AF", "-o", tmp_path / "af.trx")
    with load(tmp_path / "af.trx") as trx:
        assert code == 0 and len(trx) == 3 and trx.groups == {} and trx.dpg == {}
    code, _, _ = cli("select-group", trx_path, "AF", "-o", tmp_path / "kept.trx",
                     "--keep-groups")
    with load(tmp_path / "kept.trx") as trx:
        assert code == 0 and trx.groups["AF"].tolist() == [0, 1, 2]


# ------------------------------------------------------------- 18.3: outputs out of inputs
def test_outputs_inside_an_input_trx_folder_are_refused(cli: Run, tmp_path: Path) -> None:
    folder = Path(example_trx(tmp_path, "a_dir"))
    before = tree_bytes(folder)
    for argv in (("select-group", folder, "AF", "-o", folder / "sel.trx"),
                 ("split-groups", folder, "-o", folder / "dps"),
                 ("resize", folder, "-o", folder / "dps" / "x.trx"),
                 ("convert", folder, folder / "x.trk"),
                 ("concatenate", folder, folder, "-o", folder / "c.trx")):
        code, _, err = cli(*argv)
        assert code == 2 and "inside the input TRX folder" in error_line(err), argv
    assert tree_bytes(folder) == before
    code, out, _ = cli("validate", folder)
    assert code == 0 and "valid TRX" in out
    # an input inside the output: replacing the output would delete the input
    (tmp_path / "out").mkdir()
    inner = Path(example_trx(tmp_path / "out", "in.trx"))
    code, _, err = cli("concatenate", inner, inner, "-o", tmp_path / "out", "--force")
    assert code == 2 and "holds the input" in error_line(err) and inner.is_file()


# ------------------------------------------------------------- 18.7: names too long
def test_split_groups_shortens_names_too_long_for_a_filesystem(cli: Run,
                                                               tmp_path: Path) -> None:
    trx = TrxFile.from_arrays(np.ones((6, 3), np.float32), lengths=[2, 2, 2],
                              groups={"G" * 280: [0], "G" * 279 + "H": [1], "ok": [2]})
    save(trx, tmp_path / "long.trx")
    code, out, err = cli("split-groups", tmp_path / "long.trx", "-o", tmp_path / "s")
    assert code == 0, err
    names = listing(tmp_path / "s")
    assert len(names) == 3 and "long_ok.trx" in names
    assert all(len(n.encode()) <= 255 for n in names)
    warned = [ln for ln in err.splitlines() if "(280 characters) is written as" in ln]
    assert len(warned) == 2 and all(ln.startswith("trx-nipype: warning:") for ln in warned)
    code, again, _ = cli("split-groups", tmp_path / "long.trx", "-o", tmp_path / "s", "-f")
    assert code == 0 and again == out  # the same names: a stable rule
