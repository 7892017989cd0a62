"""compare and manifest (core.operations): content, not bytes; what differs, and where.

Files from other tools (dipy's and nibabel's TRK/TCK, TRX written by trx-python
with unaligned members) are compared with our conversions of them; changed
copies are made by hand (numpy arrays through ``TrxFile.from_arrays``) so that
the expected difference is known exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import trx.trx_file_memmap as tmm
from trx_test_helpers import real_tractograms

from trx_nipype.core import TrxFile, convert, load, save
from trx_nipype.core.build import reference_header
from trx_nipype.core.operations.compare import (
    compare,
    compare_tractograms,
    compare_trees,
    compare_trx,
    is_provenance,
    tree_files,
)
from trx_nipype.core.operations.manifest import check_manifest, make_manifest, write_manifest


def arrays(path: str | Path) -> dict[str, Any]:
    """Everything of a TRX as in-memory arrays (for editing copies)."""
    with load(path) as trx:
        return {"positions": np.array(trx.positions), "lengths": np.array(trx.lengths),
                "affine": trx.affine, "dimensions": trx.dimensions.tolist(),
                "dps": {k: np.array(v) for k, v in trx.dps.items()},
                "dpv": {k: np.array(v) for k, v in trx.dpv.items()},
                "groups": {k: np.array(v) for k, v in trx.groups.items()},
                "dpg": {g: {k: np.array(v) for k, v in d.items()} for g, d in trx.dpg.items()}}


def write(parts: dict[str, Any], dest: Path, **save_kw: Any) -> Path:
    trx = TrxFile.from_arrays(parts["positions"], lengths=parts["lengths"],
                              affine=parts["affine"], dimensions=parts["dimensions"],
                              dps=parts["dps"], dpv=parts["dpv"], groups=parts["groups"],
                              dpg=parts["dpg"])
    save(trx, dest, **save_kw)
    return dest


def example_trx(folder: Path, name: str = "bundle.trx") -> Path:
    """6 streamlines (3, 2, 4, 2, 5, 3 points) with groups, dps, dpv and dpg."""
    lengths = np.array([3, 2, 4, 2, 5, 3])
    rng = np.random.default_rng(0)
    v = int(lengths.sum())
    trx = TrxFile.from_arrays(
        (rng.random((v, 3)) * 40 + 10).astype(np.float32), lengths=lengths,
        affine=np.diag([2.0, 2.0, 2.0, 1.0]), dimensions=(40, 40, 40),
        dps={"weight": np.linspace(0, 1, 6, dtype=np.float32)},
        dpv={"fa": rng.random(v).astype(np.float32)},
        groups={"AF": np.array([0, 2, 4], np.uint32), "CST": np.array([1, 3, 5], np.uint32)},
        dpg={"AF": {"color": np.array([255, 0, 0], dtype=np.uint8)}})
    folder.mkdir(parents=True, exist_ok=True)
    return save(trx, folder / name)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A small TRX zip (:func:`example_trx`)."""
    return example_trx(tmp_path / "example")


def test_identical_and_reencoded_files_are_equal(example: Path, tmp_path: Path) -> None:
    with load(example) as trx:
        save(trx, tmp_path / "deflated.trx", compression="deflate")
        save(trx, tmp_path / "folder")
    for other in (example, tmp_path / "deflated.trx", tmp_path / "folder"):
        result = compare(example, other)
        assert result.equal, result.report()
        assert result.differences == [] and result.notes == []
    assert "equal" in compare(example, tmp_path / "folder").report()


def test_positions_moved_by_1e4_differ_unless_atol(example: Path, tmp_path: Path) -> None:
    parts = arrays(example)
    parts["positions"] = parts["positions"] + np.float32(1e-4)
    moved = write(parts, tmp_path / "moved.trx")
    result = compare(example, moved)
    assert not result.equal
    assert [d.what for d in result.differences] == ["positions"]
    message = result.differences[0].message
    assert "largest deviation 0.00017" in message and "> atol 0 mm" in message
    assert f"{len(parts['positions'])} of {len(parts['positions'])} points" in message
    tolerant = compare(example, moved, atol=1e-3)
    assert tolerant.equal, tolerant.report()
    assert tolerant.notes and "within atol 0.001 mm" in tolerant.notes[0]


def test_the_largest_deviation_is_located_across_chunks(example: Path, tmp_path: Path) -> None:
    parts = arrays(example)
    lengths = parts["lengths"]
    start = int(lengths[:4].sum())  # streamline 4, its 3rd point
    parts["positions"][start + 2, 1] += 0.5
    parts["positions"][0, 0] += 0.01  # a smaller one in streamline 0
    moved = write(parts, tmp_path / "moved.trx")
    for chunk in (1, 3, 7, 1_000_000):  # chunk boundaries everywhere
        result = compare_tractograms(example, moved, chunk_vertices=chunk)
        (diff,) = result.differences
        assert diff.details["streamline"] == 4 and diff.details["point"] == 2, chunk
        assert diff.details["max_deviation_mm"] == pytest.approx(0.5, abs=1e-6)
        assert diff.details["points"] == 2 and diff.details["streamlines"] == 2
        assert f"at streamline 4, point 2 (of {lengths[4]})" in diff.message


def test_every_kind_of_difference_is_named(example: Path, tmp_path: Path) -> None:
    parts = arrays(example)
    base = write(parts, tmp_path / "base.trx")
    changed = arrays(example)
    changed["dps"].pop(sorted(changed["dps"])[0])
    changed["dps"]["extra"] = np.zeros(len(changed["lengths"]), np.float32)
    key = sorted(changed["dpv"])[0]
    changed["dpv"][key] = changed["dpv"][key].copy()
    changed["dpv"][key][5] += 1
    group = sorted(changed["groups"])[0]
    changed["groups"][group] = np.array([1, 3], changed["groups"][group].dtype)
    changed["groups"]["NEW"] = np.array([0], np.uint32)
    g = sorted(changed["dpg"])[0]
    k = sorted(changed["dpg"][g])[0]
    changed["dpg"][g][k] = changed["dpg"][g][k] + 1
    changed["affine"] = np.array(changed["affine"]) * 2
    changed["affine"][3, 3] = 1
    other = write(changed, tmp_path / "changed.trx")
    result = compare(base, other)
    named = {d.what: d.message for d in result.differences}
    assert named[f"dps/{sorted(parts['dps'])[0]}"] == "only in A"
    assert named["dps/extra"] == "only in B"
    assert "largest difference 1 at streamline" in named[f"dpv/{key}"]
    assert "only in A" in named[f"groups/{group}"] and "only in B" in named[f"groups/{group}"]
    assert named["groups/NEW"] == "only in B (1 streamlines)"
    assert f"dpg/{g}/{k}" in named and "affine" in named
    assert "positions" not in named
    report = result.report()
    assert all(what in report for what in named)


def test_counts_and_lengths(example: Path, tmp_path: Path) -> None:
    parts = arrays(example)
    with load(example) as trx:
        save(trx.select(range(5)), tmp_path / "fewer.trx")
    result = compare(example, tmp_path / "fewer.trx")
    named = {d.what: d.message for d in result.differences}
    assert named["nb_streamlines"] == "6 != 5"
    assert "nb_vertices" in named
    # same counts, one point moved from streamline 0 to streamline 1
    parts["lengths"] = parts["lengths"].copy()
    parts["lengths"][0] -= 1
    parts["lengths"][1] += 1
    other = write(parts, tmp_path / "lengths.trx")
    (diff,) = [d for d in compare(example, other).differences if d.what == "lengths"]
    assert "2 of 6 streamlines have another number of points (first: streamline 0" \
        in diff.message


def test_dtypes_are_content_unless_ignored(example: Path, tmp_path: Path) -> None:
    with load(example) as trx:
        save(trx, tmp_path / "f64.trx", positions_dtype="float64")
    result = compare(example, tmp_path / "f64.trx")
    assert [d.line() for d in result.differences] == ["positions: dtype float32 != float64"]
    assert compare(example, tmp_path / "f64.trx", check_dtypes=False).equal


@pytest.mark.parametrize(("label", "path"), list(real_tractograms()))
def test_real_files_equal_their_conversions(label: str, path: Path, tmp_path: Path) -> None:
    """dipy's and nibabel's TRK/TCK against our TRX of them, and that TRX re-encoded."""
    ref = (np.eye(4), (100, 100, 100)) if path.suffix == ".tck" else None
    out = convert(path, tmp_path / "x.trx", reference=ref, bbox_check=False)
    result = compare(path, out)
    assert result.equal, result.report()
    if path.suffix == ".tck":  # no space in a TCK: not compared, and said so
        assert any("space not compared" in n for n in result.notes)
    with load(out) as trx:
        save(trx, tmp_path / "folder")
    assert compare(out, tmp_path / "folder").equal


def test_trx_python_files_with_unaligned_members(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(2, 9, 40)
    points = rng.normal(0, 10, (int(lengths.sum()), 3)).astype(np.float32)
    tg = nib.streamlines.Tractogram(
        nib.streamlines.ArraySequence(np.split(points, np.cumsum(lengths)[:-1])),
        data_per_streamline={"w": rng.random((40, 1)).astype(np.float32)},
        data_per_point={"fa": [rng.random((n, 1)).astype(np.float32) for n in lengths]},
        affine_to_rasmm=np.eye(4))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    t = tmm.TrxFile.from_tractogram(tg, reference_header(affine, [50, 50, 50]))
    t.groups = {"G": np.array([1, 5, 7], np.uint32)}
    theirs = tmp_path / "theirs.trx"
    tmm.save(t, str(theirs))  # deflated, unaligned members
    t.close()
    with load(theirs) as trx:
        save(trx, tmp_path / "ours.trx")
    assert compare(theirs, tmp_path / "ours.trx").equal
    t2 = tmm.load(str(tmp_path / "ours.trx"))
    t2.streamlines._data[3, 0] += 0.25  # trx-python loads into a writable copy in memory
    tmm.save(t2, str(tmp_path / "theirs_moved.trx"))
    t2.close()
    result = compare(theirs, tmp_path / "theirs_moved.trx")
    assert [d.what for d in result.differences] == ["positions"]
    assert result.differences[0].details["max_deviation_mm"] == pytest.approx(0.25, abs=1e-5)


def test_views_compare_without_saving(example: Path) -> None:
    with load(example) as trx:
        group = sorted(trx.groups)[0]
        view = trx.get_group(group)
        assert compare_trx(view, trx.select(np.sort(trx.groups[group]))).equal
        assert not compare_trx(view, trx).equal


def test_json_provenance_is_not_content() -> None:
    assert is_provenance(("Software",))
    assert is_provenance(("Sources", 2, "sha256"))
    assert not is_provenance(("Sources", 2, "path"))
    assert not is_provenance(("Counts", "NB_STREAMLINES"))


def _tree(root: Path, example: Path) -> Path:
    (root / "sub-01" / "dwi").mkdir(parents=True)
    shutil.copyfile(example, root / "sub-01" / "dwi" / "sub-01_tractogram.trx")
    (root / "sub-01" / "dwi" / "sub-01_tractogram.json").write_text(json.dumps({
        "Counts": {"NB_STREAMLINES": 6}, "Software": {"dipy": "1.0"},
        "Sources": [{"path": "bids:raw:sub-01/dwi/AF.trk", "sha256": "ab"}]}))
    (root / "qc.tsv").write_text("file\tstreamlines\nsub-01\t6\n")
    (root / "population").mkdir()
    shutil.copyfile(example, root / "population" / "AF.trx")
    work = root / "work"  # a trx-nipype work dir: not part of the tree
    work.mkdir()
    (work / ".trx-nipype-work").touch()
    (work / "result.pklz").write_bytes(root.name.encode())
    (root / ".hidden.tmp").write_text(root.name)
    return root


def test_trees(example: Path, tmp_path: Path) -> None:
    a, b = _tree(tmp_path / "a", example), _tree(tmp_path / "b", example)
    assert sorted(tree_files(a)) == ["population/AF.trx", "qc.tsv",
                                     "sub-01/dwi/sub-01_tractogram.json",
                                     "sub-01/dwi/sub-01_tractogram.trx"]
    # software versions and byte digests are provenance; a deflated TRX is the same content
    side = b / "sub-01" / "dwi" / "sub-01_tractogram.json"
    doc = json.loads(side.read_text())
    doc["Software"]["dipy"], doc["Sources"][0]["sha256"] = "9.9", "cd"
    side.write_text(json.dumps(doc, indent=3))
    with load(example) as trx:
        save(trx, b / "population" / "AF.trx", compression="deflate")
    result = compare(a, b)
    assert result.equal and result.files == 4, result.report()
    # a file removed, one changed, one added, a sidecar count changed
    (b / "population" / "AF.trx").unlink()
    (b / "qc.tsv").write_text("file\tstreamlines\nsub-01\t5\n")
    (b / "extra.txt").write_text("x")
    doc["Counts"]["NB_STREAMLINES"] = 5
    side.write_text(json.dumps(doc))
    result = compare_trees(a, b)
    lines = [d.line() for d in result.differences]
    assert lines == [
        "extra.txt: file: extra in B (not in A)",
        "population/AF.trx: file: missing in B (only in A)",
        "qc.tsv: bytes: same size, other bytes; first at line 2: \"sub-01\\t6\" != "
        "\"sub-01\\t5\"",
        "sub-01/dwi/sub-01_tractogram.json: Counts.NB_STREAMLINES: 6 != 5",
    ]
    with pytest.raises(ValueError, match="a folder of files"):
        compare(a, example)
    with pytest.raises(FileNotFoundError):
        compare(a, tmp_path / "nope")


def test_a_long_line_is_shown_around_its_first_difference(tmp_path: Path) -> None:
    """The excerpt was the line's first 77 characters: both sides looked the same."""
    for side, value in (("a", "100"), ("b", "101")):
        (tmp_path / side).mkdir()
        (tmp_path / side / "page.html").write_text(
            "<html>\n" + "<td>" + "x" * 200 + f"</td><td>{value} streamlines</td>\n")
    lines = [d.line() for d in compare(tmp_path / "a", tmp_path / "b").differences]
    assert lines == ["page.html: bytes: same size, other bytes; first at line 2, character "
                     "216: \"...xxxxxxxxx</td><td>100 streamlines</td>\" != "
                     "\"...xxxxxxxxx</td><td>101 streamlines</td>\""], lines


def test_manifest_passes_on_a_copy_and_names_what_changed(example: Path,
                                                          tmp_path: Path) -> None:
    a = _tree(tmp_path / "a", example)
    manifest = write_manifest(a, a / "expected.json")  # inside the tree: left out of it
    text = manifest.read_text()
    assert str(tmp_path) not in text and "Software" not in text
    doc = json.loads(text)
    assert sorted(doc["Files"]) == sorted(tree_files(a, exclude=(manifest,)))
    assert check_manifest(manifest, a).equal
    b = _tree(tmp_path / "b", example)
    with load(example) as trx:  # re-encoded: the same content
        save(trx, b / "population" / "AF.trx", compression="deflate")
    result = check_manifest(manifest, b)
    assert result.equal, result.report()
    parts = arrays(example)
    parts["positions"] = parts["positions"] + np.float32(1e-4)
    write(parts, b / "population" / "AF.trx")
    (b / "qc.tsv").unlink()
    result = check_manifest(manifest, b)
    assert [d.line() for d in result.differences] == [
        "population/AF.trx: positions: differ from the manifest (digest); largest change of "
        "a block's min/max/mean 0.0001 mm in streamlines 0..0",
        "qc.tsv: file: in the manifest, missing now"]
    (b / "qc.tsv").write_bytes((a / "qc.tsv").read_bytes())
    tolerant = check_manifest(manifest, b, atol=1e-3)
    assert tolerant.equal, tolerant.report()
    parts["positions"][7, 2] += 0.01
    write(parts, b / "population" / "AF.trx")
    result = check_manifest(manifest, b, atol=1e-3)
    assert [d.file for d in result.differences] == ["population/AF.trx"]
    assert "> atol 0.001 mm" in result.differences[0].message


def test_manifest_of_real_files_and_changes_in_data(tmp_path: Path) -> None:
    for label, path in real_tractograms():
        if path.suffix != ".trk":
            continue
        doc = make_manifest(path)
        assert check_manifest(doc, path).equal, label
        out = convert(path, tmp_path / (path.stem + ".trx"), bbox_check=False)
        entry = make_manifest(out)["Files"][out.name]
        # the TRK and its TRX conversion describe the same content
        assert entry == doc["Files"][path.name], label
    example = example_trx(tmp_path / "ex")
    doc = make_manifest(example)
    parts = arrays(example)
    key = sorted(parts["dps"])[0]
    parts["dps"][key] = parts["dps"][key] + 1
    group = sorted(parts["groups"])[0]
    parts["groups"][group] = parts["groups"][group][:-1]
    (tmp_path / "changed").mkdir()
    write(parts, tmp_path / "changed" / example.name)
    result = check_manifest(doc, tmp_path / "changed" / example.name)
    named = {d.what: d.message for d in result.differences}
    assert named[f"dps/{key}"].startswith("values differ from the manifest (digest)")
    assert "members in the manifest" in named[f"groups/{group}"]
    with pytest.raises(FileExistsError):
        write_manifest(example, tmp_path / "changed" / example.name)
    # one tractogram against a one-file manifest: compared whatever its name
    renamed = Path(shutil.copyfile(example, tmp_path / "renamed.trx"))
    assert check_manifest(doc, renamed).equal
