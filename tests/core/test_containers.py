"""Zip containers as other tools write them: zip64 and padded local extras, directory
entries, mixed methods; stored members mapped in place; deflated ones extracted safely."""

from __future__ import annotations

import mmap
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from trx_test_helpers import (
    assert_trx_equal,
    valid_arrays,
    valid_members,
    write_trx_dir,
    write_trx_zip,
)

from trx_nipype.core import TrxFormatError, load, validate
from trx_nipype.core.tempfiles import live_temp_dirs


def _base(arr: np.ndarray) -> object:
    while isinstance(arr, np.ndarray) and arr.base is not None:
        arr = arr.base
    return arr.obj if isinstance(arr, memoryview) else arr


def _mapped_in_place(trx) -> bool:
    """Every data array of a stored zip is a view of one map of the zip itself.

    Groups (like offsets) are read into memory at load, not mapped: a map that
    another process truncates kills the reader with SIGBUS (issue 18).
    """
    container = trx.source_arrays().container
    arrays = [trx.positions, *trx.dps.values(), *trx.dpv.values()]
    return (not container._extracted and container._extract_dir is None
            and all(isinstance(_base(a), mmap.mmap) for a in arrays))


def raw_zip(entries: list[tuple[str, bytes, bytes, bytes, int]]) -> bytes:
    """A zip written byte by byte: (name, data, local extra, central extra, method) each.

    Lets the local header's extra field differ from the central directory's, as
    in files written by other tools (padding, zip64, timestamps).
    """
    out, central = bytearray(), bytearray()
    for name, data, local_extra, central_extra, method in entries:
        raw_name = name.encode()
        crc = zlib.crc32(data)
        body = data if method == zipfile.ZIP_STORED else \
            zlib.compress(data, 6)[2:-4]  # raw deflate stream
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(body),
                           len(data), len(raw_name), len(local_extra))
        out += raw_name + local_extra + body
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 0x031E, 20, 0, method, 0, 0x21,
                               crc, len(body), len(data), len(raw_name), len(central_extra), 0,
                               0, 0, 0o100644 << 16, offset)
        central += raw_name + central_extra
    start = len(out)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                       len(central), start, 0)
    return bytes(out)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip64_local_extras(tmp_path: Path, temp_root: Path, method: int) -> None:
    """``force_zip64`` writes a zip64 extra in each local header only."""
    path = write_trx_zip(tmp_path / "z64.trx", valid_members(), method, force_zip64=True)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("positions.3.float32")
        raw = path.read_bytes()
        local_extra_len = struct.unpack_from("<H", raw, info.header_offset + 28)[0]
        assert local_extra_len == 20 and info.extra == b""  # they differ
    reference = load(write_trx_dir(tmp_path / "ref", valid_members()))
    with load(path) as trx, reference:
        assert_trx_equal(trx, reference)
        if method == zipfile.ZIP_STORED:
            assert _mapped_in_place(trx)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_local_extra_differs_from_central(tmp_path: Path, temp_root: Path, method: int) -> None:
    """Local extras of odd sizes (and an extra only in the central directory)."""
    entries = []
    for i, (name, data) in enumerate(valid_members().items()):
        local = struct.pack("<HH", 0xCAFE, 3 + i) + b"\x07" * (3 + i)  # unaligned on purpose
        central = struct.pack("<HHB", 0x5455, 1, 1) if i % 2 else b""
        entries.append((name, data, local, central, method))
    path = tmp_path / "extras.trx"
    path.write_bytes(raw_zip(entries))
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None  # a valid zip, by Python's reading
    expected = valid_arrays()
    with load(path) as trx:
        np.testing.assert_array_equal(trx.positions, expected["positions.3.float32"])
        np.testing.assert_array_equal(trx.dpv["fa"], expected["dpv/fa.float16"])
        np.testing.assert_array_equal(trx.dpg["AF"]["color"], expected["dpg/AF/color.3.uint8"])
        if method == zipfile.ZIP_STORED:
            assert _mapped_in_place(trx)
    assert validate(path, deep=True).ok


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_directory_entries(tmp_path: Path, temp_root: Path, method: int) -> None:
    path = write_trx_zip(tmp_path / "dirs.trx", valid_members(), method,
                         dirs=("dps/", "dpv/", "groups/", "dpg/", "dpg/AF/", "empty/"))
    with load(path) as trx:
        assert sorted(trx.dps) == ["rgb", "weight"] and sorted(trx.dpg) == ["AF", "CST"]


def test_mixed_methods(tmp_path: Path, temp_root: Path) -> None:
    members = valid_members()
    entries = [(name, data, b"", b"",
                zipfile.ZIP_DEFLATED if i % 2 else zipfile.ZIP_STORED)
               for i, (name, data) in enumerate(members.items())]
    path = tmp_path / "mixed.trx"
    path.write_bytes(raw_zip(entries))
    reference = load(write_trx_dir(tmp_path / "ref", members))
    with load(path) as trx, reference:
        assert_trx_equal(trx, reference)
    assert validate(path).compression == "mixed"


def test_stored_zip_is_mapped_not_extracted(tmp_path: Path, temp_root: Path) -> None:
    path = write_trx_zip(tmp_path / "s.trx", valid_members())
    with load(path) as trx:
        trx.dpv["fa"], trx.dps["rgb"]  # noqa: B018
        assert _mapped_in_place(trx)
        assert not any(temp_root.iterdir())


def test_deflated_extraction_under_temp_root(tmp_path: Path, temp_root: Path) -> None:
    path = write_trx_zip(tmp_path / "d.trx", valid_members(), zipfile.ZIP_DEFLATED)
    with load(path) as trx:
        container = trx.source_arrays().container
        trx.positions  # noqa: B018
        folder = container._extract_dir
        assert folder.parent == temp_root and str(folder) in live_temp_dirs()
        # member names never become file names: the folder holds our own names only
        assert all(p.name.startswith("member-") for p in folder.iterdir())
    assert not folder.exists() and str(folder) not in live_temp_dirs()


def test_absurd_declared_size_refused_before_extraction(tmp_path: Path, temp_root: Path) -> None:
    """A deflated positions member claiming 16 MB for 10 vertices: refused, nothing inflated."""
    members = valid_members()
    members["positions.3.float32"] = bytes(16 << 20)  # compresses to ~16 kB
    path = write_trx_zip(tmp_path / "bomb.trx", members, zipfile.ZIP_DEFLATED)
    with pytest.raises(TrxFormatError, match=r"positions\.3\.float32.*expected 120 bytes"):
        load(path)
    assert not any(p.is_file() for p in temp_root.rglob("*"))


def test_member_inflating_past_its_declared_size(tmp_path: Path, temp_root: Path) -> None:
    """Sizes patched to the expected ones, but the stream holds more: refused on use."""
    members = valid_members()
    good = members["positions.3.float32"]
    members["positions.3.float32"] = good + bytes(4096)
    path = write_trx_zip(tmp_path / "liar.trx", members, zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("positions.3.float32")
    struct.pack_into("<L", raw, info.header_offset + 22, len(good))  # local size
    cd = raw.index(b"PK\x01\x02")
    while True:
        name_len, extra, comment = struct.unpack_from("<3H", raw, cd + 28)
        if raw[cd + 46:cd + 46 + name_len] == b"positions.3.float32":
            struct.pack_into("<L", raw, cd + 24, len(good))  # central size
            break
        cd += 46 + name_len + extra + comment
    path.write_bytes(bytes(raw))
    with load(path) as trx, pytest.raises(TrxFormatError, match="positions.3.float32"):
        trx.positions  # noqa: B018
    assert not validate(path, deep=True).ok


def test_corrupt_deflate_stream(tmp_path: Path, temp_root: Path) -> None:
    path = write_trx_zip(tmp_path / "c.trx", valid_members(), zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("dpv/fa.float16")
    start = info.header_offset + 30 + len(info.filename)
    raw[start:start + info.compress_size] = b"\xff" * info.compress_size
    path.write_bytes(bytes(raw))
    with load(path) as trx, pytest.raises(TrxFormatError, match="dpv/fa.float16"):
        trx.dpv["fa"]  # noqa: B018
    report = validate(path, deep=True)
    assert not report.ok and "dpv/fa.float16" in report.errors[0]


def test_directory_member_not_a_regular_file(tmp_path: Path) -> None:
    """A directory container member must be a regular file (not a FIFO, a socket...)."""
    path = write_trx_dir(tmp_path / "t", valid_members())
    os.mkfifo(path / "dps" / "odd.float32")
    with pytest.raises(TrxFormatError, match="dps/odd.float32.*regular file"):
        load(path)


def test_validate_report(tmp_path: Path) -> None:
    members = valid_members()
    members["offsets.uint64"] = members["offsets.uint64"][:-8]  # N entries
    path = write_trx_zip(tmp_path / "r.trx", members)
    report = validate(path)
    assert report.ok and report.container == "zip" and report.compression == "stored"
    assert report.nb_streamlines == 4 and report.nb_vertices == 10
    assert "positions.3.float32" in report.members
    assert any("NB_STREAMLINES entries" in w for w in report.warnings)
    assert report.as_dict()["ok"] is True
    report.raise_for_errors()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("container", ["dir", "stored", "deflate"])
def test_validate_deep_finds_non_finite_positions(tmp_path: Path, temp_root: Path,
                                                  container: str, bad: float) -> None:
    members = valid_members()
    pos = valid_arrays()["positions.3.float32"].copy()
    pos[7, 1] = bad
    members["positions.3.float32"] = pos.tobytes()
    if container == "dir":
        path = write_trx_dir(tmp_path / "t", members)
    else:
        path = write_trx_zip(tmp_path / "t.trx", members, zipfile.ZIP_STORED
                             if container == "stored" else zipfile.ZIP_DEFLATED)
    assert validate(path).ok  # shallow: sizes only
    report = validate(path, deep=True)
    assert not report.ok
    assert "positions.3.float32" in report.errors[0] and "vertex 7" in report.errors[0]
    assert str(path) in report.errors[0]
    with pytest.raises(TrxFormatError):
        report.raise_for_errors()


def test_validate_missing_and_malformed(tmp_path: Path) -> None:
    report = validate(tmp_path / "none.trx")
    assert not report.ok and "none.trx" in report.errors[0]
    path = tmp_path / "bad.trx"
    path.write_bytes(b"garbage")
    assert not validate(path).ok
