"""``trx-nipype filter|density|sample|profile|resample``: the same functions as the nodes,
the output conventions (``--force``, never replacing other files, the extension picks the
format), errors in CLI words, and ``info``'s points per streamline and length in mm."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dipy.tracking.streamline import length
from dipy.tracking.utils import density_map

from trx_nipype.core import load, load_any

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])  # example_trx's grid: 40^3 voxels of 2 mm


@pytest.fixture
def fa(tmp_path: Path) -> Path:
    data = np.random.default_rng(0).random((40, 40, 40)).astype(np.float32)
    path = tmp_path / "sub-01_FA.nii.gz"
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    return path


def test_filter_by_length_writes_the_format_of_the_extension(cli, trx_path: Path,
                                                             tmp_path: Path) -> None:
    with load(trx_path) as trx:
        lens = length([np.array(s, np.float64) for s in trx.streamlines])
    cut = float(np.median(lens))
    out = tmp_path / "long.trk"
    code, stdout, err = cli("filter", trx_path, "-o", out, "--min-length", str(cut))
    assert code == 0, err
    want = int((lens >= cut).sum())
    assert stdout.startswith(f"{out}: kept {want} of 6 streamlines (removed by length ")
    assert out.read_bytes()[:5] == b"TRACK"  # a TRK, not a TRX folder named .trk
    with load_any(out) as got:
        assert len(got) == want
    code, _, err = cli("filter", trx_path, "-o", out, "--dps", "weight:0.5:")
    assert code == 2 and "long.trk: exists; add -f/--force to replace it" in err
    code, stdout, err = cli("filter", trx_path, "-o", out, "--dps", "weight:0.5:", "-f")
    assert code == 0 and "kept 3 of 6" in stdout, err


def test_outputs_that_are_not_of_their_kind_are_never_replaced(cli, trx_path: Path, fa: Path,
                                                               tmp_path: Path) -> None:
    notes = tmp_path / "notes.trx"
    notes.write_text("my notes")
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    text_nii = tmp_path / "d.nii.gz"
    text_nii.write_text("not an image")
    for argv in (("filter", trx_path, "-o", notes, "-f"),
                 ("resample", trx_path, "-o", notes, "--points", "5", "-f"),
                 ("sample", trx_path, fa, "-o", notes, "--name", "x", "-f"),
                 ("profile", trx_path, fa, "-o", table, "-f"),
                 ("density", trx_path, "-o", text_nii, "-f")):
        code, _, err = cli(*argv)
        assert code == 2 and "is never replaced" in err, (argv, err)
    assert notes.read_text() == "my notes" and table.read_text() == "a,b\n1,2\n"
    assert text_nii.read_text() == "not an image"


def test_analysis_outputs_never_touch_inputs(cli, trx_path: Path, fa: Path,
                                             tmp_path: Path) -> None:
    # as for every other command: refused before any work, the input unchanged. Before,
    # filter wrote into the input TRX folder (which no longer loaded: "out.trx: unknown
    # dtype extension") and resample -f replaced its own input
    folder = tmp_path / "in_dir"
    with load(trx_path) as trx:
        from trx_nipype.core import save

        save(trx, folder)
    before = sorted(p.name for p in folder.iterdir())
    code, _, err = cli("filter", folder, "-o", folder / "out.trx")
    assert code == 2 and "is inside the input TRX folder" in err, err
    assert sorted(p.name for p in folder.iterdir()) == before
    load(folder).close()
    data = trx_path.read_bytes()
    for argv in (("resample", trx_path, "-o", trx_path, "--points", "5", "-f"),
                 ("sample", trx_path, fa, "-o", trx_path, "--name", "x", "-f"),
                 ("filter", trx_path, "-o", tmp_path, "-f")):
        code, _, err = cli(*argv)
        assert code == 2 and "input" in err, (argv, err)
    assert trx_path.read_bytes() == data


def test_analysis_outputs_are_checked_before_any_work(cli, trx_path: Path,
                                                      tmp_path: Path) -> None:
    # a missing folder (exit 1 after the work, before), an unknown suffix (exit 3 after
    # the work) and a link (refused only by the writer, after the work) are usage errors
    other = tmp_path / "other.trx"
    other.write_bytes(trx_path.read_bytes())
    link = tmp_path / "link.trx"
    link.symlink_to(other)
    for argv, words in ((("filter", trx_path, "-o", tmp_path / "nodir" / "x.trx"),
                         "the output's folder does not exist"),
                        (("resample", trx_path, "-o", tmp_path / "x.xyz", "--points", "5"),
                         "cannot tell the output format"),
                        (("filter", trx_path, "-o", link, "-f"), "is a symbolic link")):
        code, _, err = cli(*argv)
        assert code == 2 and words in err, (argv, err)
    assert link.is_symlink()


def test_the_analysis_operations_check_their_outputs_in_python_too(trx_path: Path,
                                                                   tmp_path: Path) -> None:
    from trx_nipype.core.errors import OutputExistsError
    from trx_nipype.core.operations.filtering import filter_streamlines

    out = tmp_path / "kept.trx"
    filter_streamlines(trx_path, out)
    with pytest.raises(OutputExistsError, match="kept.trx: exists; add overwrite=True"):
        filter_streamlines(trx_path, out)
    assert filter_streamlines(trx_path, out, overwrite=True).nb_streamlines == 6


def test_density_command_equals_dipy(cli, trx_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "density.nii.gz"
    code, stdout, err = cli("density", trx_path, "-o", out, "--group", "AF")
    assert code == 0, err
    with load(trx_path) as trx:
        af = [np.array(s) for s in trx.get_group("AF").streamlines]
    np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj),
                                  density_map(af, AFFINE, (40, 40, 40)))
    assert stdout.startswith(f"{out}: 3 streamlines over ")
    code, _, err = cli("density", trx_path, "-o", tmp_path / "x.nii.gz", "--group", "CC")
    assert code == 3 and "no group 'CC'; groups present: AF, CST" in err
    code, _, err = cli("density", trx_path, "-o", tmp_path / "x.trx")
    assert code == 3 and "name it .nii or .nii.gz" in err


def test_sample_and_profile_commands(cli, trx_path: Path, fa: Path, tmp_path: Path) -> None:
    out = tmp_path / "sampled.trx"
    code, stdout, err = cli("sample", trx_path, fa, "-o", out, "--name", "FA")
    assert code == 0 and "dpv FA and dps FA_mean over 6 streamlines" in stdout, err
    with load(out) as trx:
        assert {"FA", "fa"} <= set(trx.dpv) and "FA_mean" in trx.dps
    table = tmp_path / "profiles.tsv"
    code, stdout, err = cli("profile", out, fa, "-o", table, "--points", "8", "--group", "CST")
    assert code == 0 and "1 tracts x 8 points (CST 3 streamlines)" in stdout, err
    with open(table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["node"] for r in rows] == [str(i) for i in range(8)]
    assert {r["tract"] for r in rows} == {"CST"} and {r["metric"] for r in rows} == \
        {"sub-01_FA"}
    code, _, err = cli("profile", out, fa, "-o", tmp_path / "p.csv", "--points", "1")
    assert code == 2 and "at least 2 points, got 1" in err
    other = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((40, 40, 41), np.float32), AFFINE), other)
    code, _, err = cli("sample", trx_path, other, "-o", tmp_path / "s.trx", "--name", "x")
    assert code == 3 and "other.nii.gz: expected an image on the grid of the tractogram" in err
    assert "DIMENSIONS [40, 40, 41] instead of [40, 40, 40]" in err


def test_resample_command(cli, trx_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    code, stdout, err = cli("resample", trx_path, "-o", out, "--points", "4")
    assert code == 0 and stdout.strip() == f"{out}: 6 streamlines, 24 vertices", err
    assert (out / "header.json").is_file()  # no extension: a TRX folder
    code, _, err = cli("resample", trx_path, "-o", tmp_path / "s.trx")
    assert code == 2 and "one of the arguments --points --step is required" in err
    code, _, err = cli("resample", trx_path, "-o", tmp_path / "s.trx", "--step", "0")
    assert code == 2 and "above 0 mm" in err


def test_info_says_points_per_streamline_and_length_in_mm(cli, trx_path: Path) -> None:
    code, stdout, _ = cli("info", trx_path, "--json")
    info = json.loads(stdout)
    assert "lengths" not in info
    assert info["points_per_streamline"] == {"min": 2, "max": 5, "mean": 3.167}
    with load(trx_path) as trx:
        mm = length([np.array(s, np.float64) for s in trx.streamlines])
    assert info["length_mm"] == {"min": round(mm.min(), 3), "max": round(mm.max(), 3),
                                 "mean": round(mm.mean(), 3)}
    code, stdout, _ = cli("info", trx_path)
    assert "  points       2..5 per streamline (mean 3.167)" in stdout
    assert f"  length       {round(mm.min(), 3):g}..{round(mm.max(), 3):g} mm" in stdout


@pytest.fixture
def tck_path(trx_path: Path, tmp_path: Path) -> Path:
    """The streamlines of ``trx_path`` as a TCK (no space of its own)."""
    from trx_nipype.core import convert
    from trx_nipype.core.errors import DataLossWarning

    path = tmp_path / "bundle.tck"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataLossWarning)  # its groups, dps and dpv
        convert(trx_path, path)
    return path


def test_filter_and_resample_take_a_tck_and_a_reference(cli, tck_path: Path, fa: Path,
                                                        tmp_path: Path) -> None:
    # TCK -> TCK needs no space; before, both asked for a --reference they did not have
    code, stdout, err = cli("filter", tck_path, "-o", tmp_path / "f.tck", "--min-length", "0")
    assert code == 0 and "kept 6 of 6" in stdout, err
    code, stdout, err = cli("resample", tck_path, "-o", tmp_path / "r.tck", "--points", "4")
    assert code == 0 and "6 streamlines, 24 vertices" in stdout, err
    for argv in (("filter", tck_path, "-o", tmp_path / "f.trx"),
                 ("resample", tck_path, "-o", tmp_path / "r.trk", "--points", "4"),
                 ("filter", tck_path, "-o", tmp_path / "f2.tck", "--include", fa)):
        code, _, err = cli(*argv)
        assert code == 3 and "bundle.tck: .tck files carry no space" in err, (argv, err)
        assert "give --reference a NIfTI image" in err
        code, _, err = cli(*argv, "--reference", fa)
        assert code == 0, (argv, err)
    with load_any(tmp_path / "f.trx") as got:
        np.testing.assert_array_equal(got.affine, AFFINE)
    for command in ("filter", "resample"):
        _, stdout, _ = cli(command, "-h")
        assert "--reference IMG" in stdout


def test_density_of_a_tck_counts_in_the_reference_which_is_its_space(
        cli, trx_path: Path, tck_path: Path, fa: Path, tmp_path: Path) -> None:
    # before: "give --reference" although --reference was given
    code, stdout, err = cli("density", tck_path, "-o", tmp_path / "tck.nii.gz",
                            "--reference", fa)
    assert code == 0 and stdout.startswith(f"{tmp_path / 'tck.nii.gz'}: 6 streamlines"), err
    code, _, err = cli("density", trx_path, "-o", tmp_path / "trx.nii.gz")
    assert code == 0, err
    np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / "tck.nii.gz").dataobj),
                                  np.asarray(nib.load(tmp_path / "trx.nii.gz").dataobj))
    _, stdout, _ = cli("density", "-h")
    assert "also the space of an input without one (TCK...)" in " ".join(stdout.split())


def test_sample_and_profile_refuse_an_image_no_vertex_is_in(cli, trx_path: Path,
                                                            tck_path: Path,
                                                            tmp_path: Path) -> None:
    # before: all-zero values and an all-zero profile, where density refuses
    far = tmp_path / "far.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((40, 40, 40), np.float32),
                             AFFINE @ np.array([[1, 0, 0, 500], [0, 1, 0, 0], [0, 0, 1, 0],
                                                [0, 0, 0, 1.0]])), far)
    with load(trx_path) as trx:
        total = trx.nb_vertices
    for argv in (("sample", tck_path, far, "-o", tmp_path / "s.trx", "--name", "x"),
                 ("profile", tck_path, far, "-o", tmp_path / "p.csv")):
        code, _, err = cli(*argv)
        assert code == 3, (argv, err)
        assert f"bundle.tck: none of its {total} vertices lies inside the image {far} " \
               "(DIMENSIONS [40, 40, 40])" in err
    assert not (tmp_path / "s.trx").exists() and not (tmp_path / "p.csv").exists()
    # some vertices outside: a warning naming how many (and the same for both)
    half = tmp_path / "half.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((40, 40, 15), np.float32), AFFINE), half)
    with load(trx_path) as trx:
        z = np.asarray(trx.positions)[:, 2] / 2.0
    outside = int(np.count_nonzero(np.floor(z + 0.5) >= 15))
    assert 0 < outside < total
    for argv in (("sample", tck_path, half, "-o", tmp_path / "s.trx", "--name", "x"),
                 ("profile", tck_path, half, "-o", tmp_path / "p.csv")):
        code, _, err = cli(*argv)
        assert code == 0, (argv, err)
        assert f"warning: {tck_path}: {outside} of {total} vertices lie outside the image " \
               f"{half}" in err, (argv, err)


@pytest.mark.parametrize(("argv", "words"), [
    (("filter", "--min-length", "nan"), "argument --min-length: expected a length of 0 mm"),
    (("filter", "--max-length", "inf"), "argument --max-length: expected a length of 0 mm"),
    (("filter", "--min-length", "-1"), "argument --min-length: expected a length of 0 mm"),
    (("filter", "--dps", "weight:nan:"), "MIN and MAX must be numbers (or empty), not nan"),
    (("filter", "--min-length", "50", "--max-length", "40"),
     "--min-length 50.0 is above --max-length 40.0"),
    (("resample", "--step", "inf"), "argument --step: expected a distance above 0 mm"),
    (("resample", "--step", "nan"), "argument --step: expected a distance above 0 mm"),
])
def test_analysis_numbers_must_make_sense(cli, trx_path: Path, tmp_path: Path,
                                          argv: tuple[str, ...], words: str) -> None:
    # before: --min-length nan was taken, and dropped every streamline
    code, _, err = cli(argv[0], trx_path, "-o", tmp_path / "out.trx", *argv[1:])
    assert code == 2 and words in err, err
    assert not (tmp_path / "out.trx").exists()
