"""TRK reading and writing: agreement with nibabel/dipy, chunking, malformed files."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import warnings
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dipy.io.streamline import load_tractogram

from trx_nipype.core import TrxFormatError
from trx_nipype.core.formats import Block
from trx_nipype.core.formats.trk import HEADER_DTYPE, iter_trk_blocks, read_trk_header, write_trk
from trx_nipype.core.formats.trk_groups import GROUP_PROPERTY
from trx_nipype.core.formats.trk_groups import groups_sidecar_path as sidecar_path
from trx_nipype.core.space import Space

NIB = Path(str(importlib.resources.files("nibabel") / "tests" / "data"))
DIPY = Path(str(importlib.resources.files("dipy") / "data" / "files"))
TRK_FILES = [NIB / n for n in ("standard.trk", "standard.LPS.trk", "complex.trk",
                               "complex_big_endian.trk", "simple.trk", "empty.trk")] + \
    [DIPY / "tracks300.trk", DIPY / "EuDX_small_25.trk"]


def read_all(path: Path, **kw) -> Block:
    blocks = list(iter_trk_blocks(path, **kw))
    if not blocks:
        return Block(np.zeros(0, np.int64), np.zeros((0, 3), np.float32))
    first = blocks[0]
    return Block(np.concatenate([b.lengths for b in blocks]),
                 np.concatenate([b.positions for b in blocks]),
                 {k: np.concatenate([b.dpv[k] for b in blocks]) for k in first.dpv},
                 {k: np.concatenate([b.dps[k] for b in blocks]) for k in first.dps},
                 {g: np.concatenate([b.groups[g] + sum(len(x) for x in blocks[:i])
                                     for i, b in enumerate(blocks)]) for g in first.groups})


def assert_matches_nibabel(block: Block, path: Path) -> None:
    ref = nib.streamlines.load(path).tractogram
    sft = load_tractogram(str(path), "same", bbox_valid_check=False)
    np.testing.assert_array_equal(block.lengths, [len(s) for s in ref.streamlines])
    np.testing.assert_allclose(block.positions, sft.streamlines.get_data().reshape(-1, 3),
                               atol=1e-4)
    assert sorted(block.dpv) == sorted(ref.data_per_point)
    assert sorted(block.dps) == sorted(ref.data_per_streamline)
    for k, v in ref.data_per_point.items():
        np.testing.assert_array_equal(block.dpv[k].reshape(len(block.positions), -1),
                                      v.get_data())
    for k, v in ref.data_per_streamline.items():
        np.testing.assert_array_equal(block.dps[k].reshape(len(block), -1), v)


@pytest.mark.parametrize("path", TRK_FILES, ids=lambda p: p.name)
def test_read_matches_dipy_and_nibabel(path: Path) -> None:
    assert_matches_nibabel(read_all(path), path)


@pytest.mark.parametrize("path", TRK_FILES[:4] + TRK_FILES[6:], ids=lambda p: p.name)
def test_tiny_chunks_give_the_same_result(path: Path) -> None:
    whole, tiny = read_all(path), read_all(path, chunk_bytes=64)
    np.testing.assert_array_equal(whole.lengths, tiny.lengths)
    np.testing.assert_array_equal(whole.positions, tiny.positions)
    for k in whole.dps:
        np.testing.assert_array_equal(whole.dps[k], tiny.dps[k])


def test_every_minimal_bundle_matches_dipy(tmp_path: Path) -> None:
    with zipfile.ZipFile(DIPY / "minimal_bundles.zip") as zf:
        zf.extractall(tmp_path)
    bundles = sorted(tmp_path.rglob("*.trk"))
    assert len(bundles) == 15
    for path in bundles:
        assert_matches_nibabel(read_all(path), path)


def test_header_space_and_big_endian() -> None:
    le, be = read_trk_header(NIB / "complex.trk"), read_trk_header(NIB / "complex_big_endian.trk")
    assert (le.byteorder, be.byteorder) == ("<", ">")
    assert be.nb_streamlines == 3 and be.scalars == le.scalars
    lps = read_trk_header(NIB / "standard.LPS.trk")
    assert lps.space.voxel_order == "LPS"
    np.testing.assert_array_equal(lps.space.dimensions, [4, 5, 7])


# ------------------------------------------------------------------ writing
def synthetic_block(n: int = 50, seed: int = 0, zeros: bool = False) -> Block:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 30, n)
    v = int(lengths.sum())
    pos = rng.uniform(1, 30, (v, 3)).astype(np.float32)
    if zeros:  # data words that read as plausible point counts (0.0 -> int 0)
        pos[::3] = 0.0
    return Block(lengths, pos,
                 {"fa": (np.zeros(v) if zeros else rng.random(v)).astype(np.float32),
                  "rgb": rng.random((v, 3)).astype(np.float32)},
                 {"w": rng.random(n).astype(np.float32)})


SPACE = Space.from_affine(np.array([[-2.0, 0, 0, 40], [0, 2, 0, -3], [0, 0, 2.5, 1],
                                    [0, 0, 0, 1]]), (32, 33, 34))


@pytest.mark.parametrize("zeros", [False, True])
def test_written_file_reads_back_in_nibabel_and_dipy_without_warnings(
        tmp_path: Path, zeros: bool) -> None:
    block = synthetic_block(zeros=zeros)
    out = tmp_path / "out.trk"
    write_trk(out, SPACE, [block], dpv={"fa": 1, "rgb": 3}, dps={"w": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trk = nib.streamlines.load(out)
        sft = load_tractogram(str(out), "same", bbox_valid_check=False)
    np.testing.assert_allclose(sft.streamlines.get_data(), block.positions, atol=1e-4)
    np.testing.assert_allclose(trk.tractogram.data_per_point["rgb"].get_data(),
                               block.dpv["rgb"])
    assert trk.header["nb_streamlines"] == len(block)
    assert trk.header["voxel_order"] == b"LAS"
    back = read_all(out, chunk_bytes=128)
    np.testing.assert_array_equal(back.lengths, block.lengths)
    np.testing.assert_allclose(back.positions, block.positions, atol=1e-4)
    np.testing.assert_array_equal(back.dpv["fa"], block.dpv["fa"])
    np.testing.assert_array_equal(back.dps["w"], block.dps["w"])


def test_gzip_and_several_blocks(tmp_path: Path) -> None:
    blocks = [synthetic_block(20, seed=s) for s in range(3)]
    out = write_trk(tmp_path / "out.trk.gz", SPACE, iter(blocks), dpv={"fa": 1},
                    nb_streamlines=0)
    with gzip.open(out) as fh:
        assert fh.read(5) == b"TRACK"
    back = read_all(out, chunk_bytes=100)
    np.testing.assert_allclose(back.positions, np.concatenate([b.positions for b in blocks]),
                               atol=1e-4)
    assert read_trk_header(out).nb_streamlines == 60
    assert "rgb" not in back.dpv


def test_groups_as_property_with_sidecar_and_overlaps(tmp_path: Path) -> None:
    block = synthetic_block(6)
    block.groups = {"CST": np.array([0, 1, 2]), "AF": np.array([2, 3]), "empty": np.array([])}
    out = write_trk(tmp_path / "g.trk", SPACE, [block], group_names=["AF", "CST", "empty"])
    doc = json.loads(sidecar_path(out).read_text(encoding="utf-8"))
    assert doc["groups"] == {"0": "AF", "1": "CST", "2": "empty"}
    assert doc["overlaps"] == {"3": ["AF", "CST"]}
    codes = nib.streamlines.load(out).tractogram.data_per_streamline[GROUP_PROPERTY].ravel()
    np.testing.assert_array_equal(codes, [1, 1, 3, 0, -1, -1])
    back = read_all(out)
    assert GROUP_PROPERTY not in back.dps
    assert {k: v.tolist() for k, v in back.groups.items()} == \
        {"AF": [2, 3], "CST": [0, 1, 2], "empty": []}
    sidecar_path(out).unlink()  # without the sidecar the index is plain data
    assert GROUP_PROPERTY in read_all(out).dps


def test_long_and_too_many_names_are_reported(tmp_path: Path) -> None:
    block = synthetic_block(4)
    v = len(block.positions)
    block.dpv = {f"scalar_{i:02d}": np.zeros(v, np.float32) for i in range(11)}
    block.dps = {"a_very_long_property_name": np.arange(4, dtype=np.float64) + 0.1}
    with pytest.warns(UserWarning) as rec:
        write_trk(tmp_path / "n.trk", SPACE, [block], dpv={k: 1 for k in block.dpv},
                  dps={"a_very_long_property_name": 1})
    text = "\n".join(str(w.message) for w in rec)
    assert "'scalar_10'" in text and "at most 10" in text
    assert "'a_very_long_property_name'" in text and "'a_very_long_property'" in text
    assert "changed in the conversion" in text  # float64 -> float32
    trk = nib.streamlines.load(tmp_path / "n.trk")
    assert "a_very_long_property" in trk.tractogram.data_per_streamline


# ---------------------------------------------------------------- malformed
def good_bytes() -> bytes:
    return (NIB / "complex.trk").read_bytes()


def _header(raw: bytes) -> np.ndarray:
    return np.frombuffer(bytearray(raw[:1000]), dtype=HEADER_DTYPE)


PROBLEMS = {"magic": "magic string", "short_header": "1000-byte TRK header",
            "hdr_size": "hdr_size 1000",
            "truncated": "streamline 2: truncated: 5 points need 164 bytes, found 154",
            "count_more": "n_count says 4 streamlines, the file holds 3",
            "count_less": "n_count says 2 streamlines, the file holds 3",
            "negative": "non-negative point count, found -5",
            "stray_bytes": "expected a 4-byte point count, found 2", "version": "version",
            "names": "names cover 4 values"}


@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_malformed_trk_names_the_file(tmp_path: Path, case: str) -> None:
    raw = good_bytes()
    hdr = _header(raw)
    if case == "magic":
        raw = b"TRACX" + raw[5:]
    elif case == "short_header":
        raw = raw[:500]
    elif case == "hdr_size":
        hdr["hdr_size"] = 999
        raw = hdr.tobytes() + raw[1000:]
    elif case == "truncated":
        raw = raw[:-10]
    elif case in ("count_more", "count_less"):
        hdr["n_count"] = 4 if case == "count_more" else 2
        raw = hdr.tobytes() + raw[1000:]
    elif case == "negative":
        raw = raw[:1000] + np.int32(-5).tobytes() + raw[1004:]
    elif case == "stray_bytes":
        raw = raw + b"\x00\x01"
    elif case == "version":
        hdr["version"] = 7
        raw = hdr.tobytes() + raw[1000:]
    elif case == "names":
        hdr["n_scalars"] = 2  # names cover 4 values
        raw = hdr.tobytes() + raw[1000:]
    path = tmp_path / f"{case}.trk"
    path.write_bytes(raw)
    with pytest.raises(TrxFormatError) as err:
        list(iter_trk_blocks(path))
    assert str(path) in str(err.value)
    assert PROBLEMS[case] in str(err.value)


def test_group_codes_follow_the_sorted_membership_rows() -> None:
    """Bit-packed rows give out codes in the order np.unique(member, axis=0) did."""
    from trx_nipype.core.formats.trk_groups import GroupCoder

    rng = np.random.default_rng(3)
    names = ["c", "a", "b"]
    groups = {g: np.flatnonzero(rng.random(200) < 0.4) for g in names}
    coder = GroupCoder(names)
    codes = coder.encode(200, groups)
    member = np.zeros((200, 3), dtype=bool)
    for j, g in enumerate(sorted(names)):
        member[groups[g], j] = True
    expected: dict[tuple[str, ...], int] = {(g,): i for i, g in enumerate(sorted(names))}
    for row in np.unique(member, axis=0):
        combo = tuple(sorted(names)[j] for j in np.flatnonzero(row))
        if combo:
            expected.setdefault(combo, len(expected))
    assert coder.codes == expected
    for i in range(200):
        combo = tuple(sorted(names)[j] for j in np.flatnonzero(member[i]))
        assert codes[i] == (expected[combo] if combo else -1)
