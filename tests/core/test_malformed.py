"""Malformed TRX inputs: each one raises TrxFormatError naming the file and the member.

Every case edits the members of a small valid TRX (``tests/conftest.py``) and is
written as a directory, a stored zip and a deflated zip; the zip-only cases
(truncation, duplicates, disagreeing headers, unsafe names) write raw zips.
"""

from __future__ import annotations

import re
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from trx_test_helpers import (
    header_bytes,
    valid_members,
    write_trx_dir,
    write_trx_zip,
)

from trx_nipype.core import TrxFormatError, load, validate

Members = dict[str, bytes]


def _drop(name: str) -> Callable[[Members], None]:
    return lambda m: m.pop(name)


def _header(**fields) -> Callable[[Members], None]:
    def edit(m: Members) -> None:
        m["header.json"] = header_bytes(**fields)
    return edit


def _set(name: str, value: bytes | np.ndarray, drop: str | None = None) -> Callable:
    def edit(m: Members) -> None:
        if drop:
            m.pop(drop)
        m[name] = value.tobytes() if isinstance(value, np.ndarray) else value
    return edit


def _rename(old: str, new: str) -> Callable[[Members], None]:
    def edit(m: Members) -> None:
        m[new] = m.pop(old)
    return edit


OFF = "offsets.uint64"
POS = "positions.3.float32"

# (id, edit of the valid members, the member the message must name, a regex of the problem)
CASES: list[tuple[str, Callable[[Members], None], str, str]] = [
    ("header-missing", _drop("header.json"), "header.json", "missing"),
    ("header-unparsable", _set("header.json", b"{not json"), "header.json", "JSON"),
    ("header-not-object", _set("header.json", b"[1, 2]"), "header.json", "object"),
    ("header-not-utf8", _set("header.json", b"\xff\xfe{}"), "header.json", "JSON"),
    ("key-missing-vertices", _header(NB_VERTICES=None), "header.json", "NB_VERTICES"),
    ("key-missing-affine", _header(VOXEL_TO_RASMM=None), "header.json", "VOXEL_TO_RASMM"),
    ("nb-streamlines-string", _header(NB_STREAMLINES="4"), "header.json", "NB_STREAMLINES"),
    ("nb-vertices-float", _header(NB_VERTICES=10.5), "header.json", "NB_VERTICES"),
    ("nb-vertices-negative", _header(NB_VERTICES=-1), "header.json", "NB_VERTICES"),
    ("nb-streamlines-bool", _header(NB_STREAMLINES=True), "header.json", "NB_STREAMLINES"),
    ("affine-3x3", _header(VOXEL_TO_RASMM=np.eye(3).tolist()), "header.json", "4x4"),
    ("affine-nan", _header(VOXEL_TO_RASMM=[[float("nan")] * 4] * 4), "header.json",
     "finite|NaN"),
    ("affine-inf", _header(VOXEL_TO_RASMM=[[1e400, 0, 0, 0]] + np.eye(4)[1:].tolist()),
     "header.json", "finite|Infinity"),
    ("affine-strings", _header(VOXEL_TO_RASMM=[["a"] * 4] * 4), "header.json", "VOXEL_TO_RASMM"),
    ("dimensions-two", _header(DIMENSIONS=[10, 10]), "header.json", "DIMENSIONS"),
    ("dimensions-zero", _header(DIMENSIONS=[10, 0, 10]), "header.json", "DIMENSIONS"),
    ("dimensions-fraction", _header(DIMENSIONS=[10, 1.5, 10]), "header.json", "DIMENSIONS"),
    ("dimensions-string", _header(DIMENSIONS="10 10 10"), "header.json", "DIMENSIONS"),
    ("nb-vertices-vs-positions", _header(NB_VERTICES=11), POS, "NB_VERTICES"),
    ("nb-streamlines-vs-offsets", _header(NB_STREAMLINES=2), OFF, "offsets"),
    ("nb-streamlines-0-vertices-10", lambda m: (_header(NB_STREAMLINES=0)(m),
                                                _set(OFF, b"")(m)), OFF, "NB_VERTICES=0"),
    ("positions-not-multiple", _set(POS, np.zeros(10 * 3 * 4 - 2, "u1")), POS, "bytes"),
    ("positions-2-columns", _rename(POS, "positions.2.float32"), "positions.2.float32",
     "3 columns"),
    ("positions-int-dtype", _rename(POS, "positions.3.int32"), "positions.3.int32", "float"),
    ("positions-missing", _drop(POS), "positions", "missing"),
    ("offsets-missing", _drop(OFF), "offsets", "missing"),
    ("offsets-float", _rename(OFF, "offsets.float64"), "offsets.float64", "uint32 or uint64"),
    ("offsets-not-multiple", _set(OFF, np.zeros(5 * 8 - 3, "u1")), OFF, "multiple"),
    ("offsets-decreasing", _set(OFF, np.array([0, 3, 2, 8, 10], "<u8")), OFF, "non-decreasing"),
    ("offsets-first-not-0", _set(OFF, np.array([1, 3, 4, 8, 10], "<u8")), OFF, "first offset"),
    ("offsets-last-not-nb-vertices", _set(OFF, np.array([0, 3, 4, 8, 9], "<u8")), OFF,
     "NB_VERTICES"),
    ("offsets-n-beyond-vertices", _set(OFF, np.array([0, 3, 4, 11], "<u8")), OFF,
     "NB_VERTICES"),
    ("offsets-duplicate", _set("offsets.uint32", np.array([0, 3, 4, 8, 10], "<u4")),
     "offsets.uint32", "duplicate"),
    ("dps-first-dim", _set("dps/weight.float32", np.zeros(5, "<f4")), "dps/weight.float32",
     "NB_STREAMLINES"),
    ("dps-not-multiple-of-ncols", _set("dps/rgb.3.uint8", np.zeros(13, "u1")),
     "dps/rgb.3.uint8", "bytes"),
    ("dpv-first-dim", _set("dpv/fa.float16", np.zeros(9, "<f2")), "dpv/fa.float16",
     "NB_VERTICES"),
    ("dpv-duplicate-key", _set("dpv/fa.float32", np.zeros(10, "<f4")), "dpv/fa.float",
     "duplicate"),
    ("group-index-too-large", _set("groups/CST.uint32", np.array([0, 4], "<u4")),
     "groups/CST.uint32", "0..3"),
    ("group-index-negative", _set("groups/N.int32", np.array([-1, 2], "<i4")),
     "groups/N.int32", "-1"),
    ("group-float-dtype", _set("groups/CST.float32", np.array([0, 2], "<f4"),
                               drop="groups/CST.uint32"), "groups/CST.float32", "integer"),
    ("group-bit-dtype", _set("groups/B.bit", np.array([1, 0], "u1")), "groups/B.bit", "integer"),
    ("group-not-multiple", _set("groups/CST.uint32", b"\x00" * 7), "groups/CST.uint32",
     "multiple"),
    ("group-2-columns", _rename("groups/AF.uint16", "groups/AF.2.uint16"), "groups/AF.2.uint16",
     "one column"),
    ("dpg-undeclared-group", _set("dpg/OR/mean.float32", np.zeros(1, "<f4")),
     "dpg/OR/mean.float32", "undeclared"),
    ("dpg-not-multiple", _set("dpg/AF/color.3.uint8", np.zeros(4, "u1")),
     "dpg/AF/color.3.uint8", "multiple"),
    ("unknown-dtype", _set("dps/weight.float128", np.zeros(4, "<f8")), "dps/weight.float128",
     "dtype"),
    ("no-dtype", _set("dps/notes.txt", b"hello"), "dps/notes.txt", "dtype"),
    ("unexpected-folder", _set("extra/x.float32", np.zeros(4, "<f4")), "extra/x.float32",
     "unexpected"),
    ("nested-dps", _set("dps/sub/x.float32", np.zeros(4, "<f4")), "dps/sub/x.float32",
     "unexpected"),
]


@pytest.mark.parametrize("container", ["dir", "stored", "deflate"])
@pytest.mark.parametrize(("edit", "member", "word"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_member(tmp_path: Path, temp_root: Path, container: str, edit: Callable,
                          member: str, word: str) -> None:
    members = valid_members()
    edit(members)
    if container == "dir":
        path = write_trx_dir(tmp_path / "bad", members)
    else:
        method = zipfile.ZIP_STORED if container == "stored" else zipfile.ZIP_DEFLATED
        path = write_trx_zip(tmp_path / "bad.trx", members, method)
    with pytest.raises(TrxFormatError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    assert member in message
    assert re.search(word, message), message
    assert isinstance(info.value, ValueError)
    report = validate(path)
    assert not report.ok and member in report.errors[0]


# ------------------------------------------------------------------ zip-only cases
def _zip_bytes(members: Members, method: int = zipfile.ZIP_STORED) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _truncated(members: Members) -> bytes:
    return _zip_bytes(members)[:-40]


def _truncated_middle(members: Members) -> bytes:
    """A chunk cut out of member data: the central directory points past real headers."""
    raw = _zip_bytes(members)
    return raw[:60] + raw[100:]


def _not_a_zip(members: Members) -> bytes:
    return b"this is not a zip file at all" * 10


def _empty_file(members: Members) -> bytes:
    return b""


def _duplicate(members: Members) -> bytes:
    import io

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
            zf.writestr("dps/weight.float32", members["dps/weight.float32"])
    return buf.getvalue()


def _local_name_differs(members: Members) -> bytes:
    """Rename ``dps/weight.float32`` in its local header only (same length)."""
    raw = bytearray(_zip_bytes(members))
    old, new = b"dps/weight.float32", b"dps/wEIght.float32"
    first = raw.index(old)  # the local header comes before the central directory
    raw[first:first + len(old)] = new
    return bytes(raw)


def _bad_local_signature(members: Members) -> bytes:
    raw = bytearray(_zip_bytes(members))
    with zipfile.ZipFile(__import__("io").BytesIO(bytes(raw))) as zf:
        offset = zf.getinfo("dpv/fa.float16").header_offset
    raw[offset:offset + 4] = b"XXXX"
    return bytes(raw)


def _named(name: str, *, symlink: bool = False, method: int = zipfile.ZIP_DEFLATED) -> Callable:
    def build(members: Members) -> bytes:
        import io

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=method) as zf:
            for key, data in members.items():
                zf.writestr(key, data)
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            if symlink:
                info.external_attr = 0o120777 << 16
                info.create_system = 3
            zf.writestr(info, b"../../etc/passwd" if symlink else b"\x00" * 4)
        return buf.getvalue()
    return build


def _stored_sizes_disagree(members: Members) -> bytes:
    """A stored member whose central directory claims a compressed size != size."""
    raw = bytearray(_zip_bytes(members))
    cd = raw.index(b"PK\x01\x02")
    while True:  # find the member's central entry and lower its compressed size
        name_len = struct.unpack_from("<H", raw, cd + 28)[0]
        name = bytes(raw[cd + 46:cd + 46 + name_len])
        if name == b"dps/weight.float32":
            size = struct.unpack_from("<L", raw, cd + 20)[0]
            struct.pack_into("<L", raw, cd + 20, size - 4)
            return bytes(raw)
        extra, comment = struct.unpack_from("<HH", raw, cd + 30)
        cd += 46 + name_len + extra + comment


ZIP_CASES: list[tuple[str, Callable[[Members], bytes], str | None, str]] = [
    ("truncated-end", _truncated, None, "zip"),
    ("truncated-middle", _truncated_middle, "header.json", "header"),
    ("not-a-zip", _not_a_zip, None, "zip"),
    ("empty-file", _empty_file, None, "zip"),
    ("duplicate-member", _duplicate, "dps/weight.float32", "duplicate"),
    ("local-name-differs", _local_name_differs, "dps/weight.float32", "disagree"),
    ("bad-local-signature", _bad_local_signature, "dpv/fa.float16", "signature"),
    ("dotdot-name", _named("dps/../../evil.float32"), "dps/../../evil.float32", "unsafe"),
    ("absolute-name", _named("/tmp/evil.float32"), "/tmp/evil.float32", "unsafe"),
    ("backslash-name", _named("dps\\..\\evil.float32"), "evil.float32", "unsafe"),
    ("symlink-member", _named("dps/link.float32", symlink=True), "dps/link.float32",
     "symbolic link"),
    ("stored-sizes-disagree", _stored_sizes_disagree, "dps/weight.float32", "compressed size"),
]


@pytest.mark.parametrize(("build", "member", "word"), [c[1:] for c in ZIP_CASES],
                         ids=[c[0] for c in ZIP_CASES])
def test_malformed_zip(tmp_path: Path, temp_root: Path, build: Callable, member: str | None,
                       word: str) -> None:
    path = tmp_path / "bad.trx"
    path.write_bytes(build(valid_members()))
    with pytest.raises(TrxFormatError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    if member is not None:
        assert member in message
    assert word in message
    assert not validate(path).ok


def test_valid_members_load(tmp_path: Path) -> None:
    """The base of every malformed case is itself valid (so each case tests one thing)."""
    for path in (write_trx_dir(tmp_path / "ok", valid_members()),
                 write_trx_zip(tmp_path / "ok.trx", valid_members())):
        with load(path) as trx:
            assert len(trx) == 4 and trx.nb_vertices == 10
        assert validate(path, deep=True).ok


def test_error_names_file_member_expected_found(tmp_path: Path) -> None:
    members = valid_members()
    members["header.json"] = header_bytes(NB_VERTICES=12)
    path = write_trx_zip(tmp_path / "bundle.trx", members)
    with pytest.raises(TrxFormatError) as info:
        load(path)
    err = info.value
    assert err.path == str(path) and err.member == POS
    assert "expected 144 bytes" in err.problem and "found 120" in err.problem
    # picklable (Nipype crash files, MultiProc)
    import pickle

    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)


def test_header_json_with_nan_is_refused() -> None:
    """Python's json writes and reads NaN; TRX headers must not carry it."""
    assert "NaN" in header_bytes(VOXEL_TO_RASMM=[[float("nan")] * 4] * 4).decode()
