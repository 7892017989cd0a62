"""TCK reading and writing: agreement with nibabel/dipy, chunking, malformed files."""

from __future__ import annotations

import gzip
import importlib.resources
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dipy.io.streamline import load_tractogram

from trx_nipype.core import TrxFormatError
from trx_nipype.core.formats import Block
from trx_nipype.core.formats.tck import iter_tck_blocks, read_tck_header, write_tck

NIB = Path(str(importlib.resources.files("nibabel") / "tests" / "data"))
REF = NIB / "standard.nii.gz"
GOOD = ["standard.tck", "simple.tck", "empty.tck", "simple_big_endian.tck",
        "multiline_header_field.tck", "matlab_nan.tck"]


def read_all(path: Path, **kw) -> Block:
    blocks = list(iter_tck_blocks(path, **kw))
    if not blocks:
        return Block(np.zeros(0, np.int64), np.zeros((0, 3), np.float32))
    return Block(np.concatenate([b.lengths for b in blocks]),
                 np.concatenate([b.positions for b in blocks]))


@pytest.mark.parametrize("name", GOOD)
def test_read_matches_dipy(name: str) -> None:
    path = NIB / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matlab_nan.tck's count is stale, on purpose
        block = read_all(path)
        tiny = read_all(path, chunk_bytes=24)
    sft = load_tractogram(str(path), str(REF), bbox_valid_check=False)
    np.testing.assert_array_equal(block.lengths, [len(s) for s in sft.streamlines])
    np.testing.assert_allclose(block.positions, sft.streamlines.get_data().reshape(-1, 3),
                               atol=1e-4)
    np.testing.assert_array_equal(tiny.positions, block.positions)
    np.testing.assert_array_equal(tiny.lengths, block.lengths)


def test_stale_count_is_reported_not_fatal() -> None:
    with pytest.warns(UserWarning, match=r"count \(615000\) differs from the 1 streamlines"):
        assert len(read_all(NIB / "matlab_nan.tck")) == 1


def test_multiline_fields_are_joined() -> None:
    info = read_tck_header(NIB / "multiline_header_field.tck")
    assert "\n" in info.fields["command_history"]
    assert info.dtype == np.dtype("<f4") and info.count == 1


def test_float64_big_endian_data(tmp_path: Path) -> None:
    pts = np.array([[1, 2, 3], [4, 5, 6], [np.nan] * 3, [7, 8, 9], [np.nan] * 3,
                    [np.inf] * 3], dtype=">f8")
    head = b"mrtrix tracks\ncount: 2\ndatatype: Float64BE\nfile: . 64\nEND\n"
    path = tmp_path / "f64.tck"
    path.write_bytes(head.ljust(64, b"\0") + pts.tobytes())
    block = read_all(path)
    np.testing.assert_array_equal(block.lengths, [2, 1])
    np.testing.assert_array_equal(block.positions, pts[[0, 1, 3]].astype(np.float32))


def test_written_file_reads_back_without_warnings(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lengths = np.array([3, 0, 5, 1, 2])
    pos = rng.uniform(-50, 50, (lengths.sum(), 3)).astype(np.float32)
    out = tmp_path / "out.tck"
    with pytest.warns(UserWarning, match="TCK cannot hold empty streamlines; 1 left out"):
        write_tck(out, [Block(lengths[:2], pos[:3]), Block(lengths[2:], pos[3:])],
                  fields={"step_size": "0.5"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tck = nib.streamlines.load(out)
        sft = load_tractogram(str(out), str(REF), bbox_valid_check=False)
    assert tck.header["count"] == "0000000004" and tck.header["step_size"] == "0.5"
    np.testing.assert_array_equal(sft.streamlines.get_data(), pos)
    np.testing.assert_array_equal([len(s) for s in tck.streamlines], [3, 5, 1, 2])
    with pytest.warns(UserWarning, match="1 left out"):
        gz = write_tck(tmp_path / "out.tck.gz", [Block(lengths, pos)],
                       fields={"step_size": "0.5"})
    with gzip.open(gz) as fh:
        assert fh.read() == out.read_bytes()


def test_empty_output(tmp_path: Path) -> None:
    out = write_tck(tmp_path / "e.tck", [])
    assert len(nib.streamlines.load(out).streamlines) == 0
    assert len(read_all(out)) == 0


CASES = {
    "no_magic_number.tck": "magic line",
    "no_header_end.tck": "'END' line",
    "no_header_end_eof.tck": "'END' line",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_nibabel_malformed_files(name: str) -> None:
    with pytest.raises(TrxFormatError) as err:
        list(iter_tck_blocks(NIB / name))
    assert name in str(err.value) and CASES[name] in str(err.value)


def _edit(raw: bytes, case: str) -> bytes:
    if case == "no_inf":
        return raw[:-12]
    if case == "stray":
        return raw[:-12] + b"\0\0"
    if case == "no_delimiter":
        return raw[:-24] + raw[-12:]
    if case == "datatype":
        return raw.replace(b"Float32LE", b"Int32LE__")
    if case == "offset":
        return raw.replace(b"file: . 67", b"file: . 12")
    if case == "offset_past_end":
        return raw.replace(b"file: . 67", b"file: . 99")[:90]
    raise AssertionError(case)


PROBLEMS = {"no_inf": "end-of-data marker", "stray": "stray byte",
            "no_delimiter": "no NaN delimiter", "datatype": "datatype: expected one of",
            "offset": "at or after the header's end", "offset_past_end": "past the end"}


@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_malformed_tck_names_the_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.tck"
    path.write_bytes(_edit((NIB / "simple.tck").read_bytes(), case))
    with pytest.raises(TrxFormatError) as err:
        list(iter_tck_blocks(path))
    assert str(path) in str(err.value) and PROBLEMS[case] in str(err.value)
