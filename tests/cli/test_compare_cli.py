"""``trx-nipype compare`` and ``trx-nipype manifest``: exit codes and readable reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trx_nipype.core import TrxFile, load, save

from .conftest import Run


def moved_copy(src: Path, dest: Path, delta: float) -> Path:
    """``src`` with every coordinate moved by ``delta`` mm (everything else the same)."""
    with load(src) as trx:
        moved = TrxFile.from_arrays(
            np.asarray(trx.positions, np.float64) + delta, lengths=trx.lengths,
            affine=trx.affine, dimensions=trx.dimensions,
            dps={k: np.array(v) for k, v in trx.dps.items()},
            dpv={k: np.array(v) for k, v in trx.dpv.items()},
            groups={k: np.array(v) for k, v in trx.groups.items()},
            dpg={g: {k: np.array(v) for k, v in d.items()} for g, d in trx.dpg.items()})
        save(moved, dest, positions_dtype=trx.positions_dtype)
    return dest


def test_compare_files(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    code, out, err = cli("compare", trx_path, trx_path)
    assert (code, err) == (0, "") and "equal" in out
    with load(trx_path) as trx:
        save(trx, tmp_path / "deflated.trx", compression="deflate")
        save(trx, tmp_path / "folder")
    assert cli("compare", trx_path, tmp_path / "deflated.trx")[0] == 0
    assert cli("compare", tmp_path / "folder", tmp_path / "deflated.trx")[0] == 0
    moved = moved_copy(trx_path, tmp_path / "moved.trx", 1e-4)
    code, out, _ = cli("compare", trx_path, moved)
    assert code == 1
    assert "differ: 1 difference" in out and "  positions: largest deviation" in out
    assert cli("compare", trx_path, moved, "--atol", "1e-3")[0] == 0
    code, out, _ = cli("compare", trx_path, moved, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["equal"] is False
    assert [d["what"] for d in doc["differences"]] == ["positions"]
    assert doc["differences"][0]["details"]["max_deviation_mm"] > 1e-4


def test_compare_real_trk_with_its_conversion(cli: Run, trk_dir: Path, tmp_path: Path) -> None:
    trk = trk_dir / "sub-01" / "dwi" / "AF_L.trk"
    assert cli("convert", trk, tmp_path / "af.trx")[0] == 0
    assert cli("compare", trk, tmp_path / "af.trx")[0] == 0
    assert cli("convert", trk_dir / "sub-02" / "dwi" / "AF_L.trk", tmp_path / "af2.trx")[0] == 0
    code, out, _ = cli("compare", trk, tmp_path / "af2.trx")
    assert code == 1 and "positions: largest deviation" in out


def test_compare_trees_names_the_removed_and_the_changed_file(cli: Run, trx_path: Path,
                                                             tmp_path: Path) -> None:
    a = tmp_path / "a"
    (a / "sub-01").mkdir(parents=True)
    shutil.copyfile(trx_path, a / "sub-01" / "x.trx")
    shutil.copyfile(trx_path, a / "sub-01" / "y.trx")
    (a / "sub-01" / "x.json").write_text(json.dumps({"Counts": 6, "Software": {"a": "1"}}))
    b = Path(shutil.copytree(a, tmp_path / "b"))
    (b / "sub-01" / "x.json").write_text(json.dumps({"Counts": 6, "Software": {"a": "2"}}))
    assert cli("compare", a, b)[0] == 0  # software versions are provenance
    (b / "sub-01" / "y.trx").unlink()
    moved_copy(trx_path, b / "sub-01" / "x.trx", 1e-4)
    code, out, _ = cli("compare", a, b)
    assert code == 1
    assert "sub-01/y.trx: file: missing in B (only in A)" in out
    assert "sub-01/x.trx: positions: largest deviation" in out


def test_compare_usage_and_invalid_input(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    assert cli("compare", trx_path)[0] == 2
    assert cli("compare", trx_path, trx_path, "--atol", "-1")[0] == 2
    assert cli("compare", trx_path, trx_path, "--atol", "nan")[0] == 2
    code, _, err = cli("compare", trx_path, tmp_path / "missing.trx")
    assert code == 3 and "missing.trx: no such file" in err
    (tmp_path / "bad.trx").write_bytes(b"not a zip")
    code, _, err = cli("compare", trx_path, tmp_path / "bad.trx")
    assert code == 3 and "bad.trx" in err
    code, _, err = cli("compare", tmp_path, trx_path)
    assert code == 3 and "a folder of files" in err


def test_manifest_write_and_check(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copyfile(trx_path, tree / "x.trx")
    (tree / "notes.txt").write_text("hello\n")
    expected = tmp_path / "expected.json"
    code, out, _ = cli("manifest", tree, "-o", expected)
    assert code == 0 and out.strip() == str(expected)
    assert str(tmp_path) not in expected.read_text()
    assert cli("manifest", tree, "-o", expected)[0] == 2  # never replaced without --force
    assert cli("manifest", tree, "-o", expected, "--force")[0] == 0
    code, out, _ = cli("manifest", "--check", expected, tree)
    assert code == 0 and "equal (2 files compared" in out
    # a fresh copy elsewhere, re-encoded, passes
    other = tmp_path / "elsewhere" / "tree"
    other.mkdir(parents=True)
    with load(trx_path) as trx:
        save(trx, other / "x.trx", compression="deflate")
    (other / "notes.txt").write_text("hello\n")
    assert cli("manifest", "--check", expected, other)[0] == 0
    # a changed tree fails, naming the files
    moved_copy(trx_path, other / "x.trx", 1e-4)
    (other / "notes.txt").write_text("bye\n")
    code, out, _ = cli("manifest", "--check", expected, other)
    assert code == 1
    assert "x.trx: positions: differ from the manifest" in out
    assert "notes.txt: bytes: the file's bytes differ from the manifest's" in out
    (other / "notes.txt").write_text("hello\n")
    assert cli("manifest", "--check", expected, other, "--atol", "1e-3")[0] == 0
    code, out, _ = cli("manifest", "--check", expected, other, "--json")
    assert code == 1 and json.loads(out)["differences"][0]["file"] == "x.trx"


@pytest.mark.parametrize("argv", [["manifest", "DIR"], ["manifest", "DIR", "-o", "x.json",
                                                        "--check", "y.json"],
                                  ["manifest", "DIR", "-o", "x.json", "--decimals", "20"]])
def test_manifest_usage(cli: Run, tmp_path: Path, argv: list[str]) -> None:
    assert cli(*[str(tmp_path) if a == "DIR" else a for a in argv])[0] == 2


def test_manifest_invalid_input(cli: Run, trx_path: Path, tmp_path: Path) -> None:
    (tmp_path / "not-a-manifest.json").write_text("{}")
    code, _, err = cli("manifest", "--check", tmp_path / "not-a-manifest.json", trx_path)
    assert code == 3 and "not a trx-nipype manifest" in err
    code, _, err = cli("manifest", tmp_path / "nope", "-o", tmp_path / "m.json")
    assert code == 3 and "nope: no such file" in err


def test_manifest_check_of_a_missing_or_folder_manifest_names_the_option(
        cli: Run, tmp_path: Path) -> None:
    # was "[Errno 2] No such file or directory: 'nope.json'"
    code, _, err = cli("manifest", "--check", tmp_path / "nope.json", tmp_path)
    assert code == 3
    assert f"--check {tmp_path / 'nope.json'}: cannot be read (No such file" in err
    code, _, err = cli("manifest", "--check", tmp_path, tmp_path)
    assert code == 3 and f"--check {tmp_path}: cannot be read (Is a directory)" in err
