"""The zip layer: standard zips every reader reads, a zlib fallback, flags we cannot honour.

Outputs are written by ``core.zipio`` (zip records written by hand, CRC-32 and
deflate through ISA-L when installed). They must stay standard zips: Python's
``zipfile`` (with its CRC check), Info-ZIP's ``unzip -t`` and trx-python read
them; without ISA-L the same code runs on zlib, stored outputs keep their
bytes and deflated ones stay readable; a member whose flags or method the
reader cannot handle is a ``TrxFormatError`` naming it.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trx_nipype.core import TrxFile, TrxFormatError, load, save, zipio
from trx_nipype.core.writer import TrxWriter


def sample(n: int = 2000, seed: int = 0) -> TrxFile:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 60, n)
    v = int(lengths.sum())
    return TrxFile.from_arrays(rng.normal(size=(v, 3)).astype(np.float32) * 40,
                               lengths=lengths, dpv={"fa": rng.random(v).astype(np.float32)},
                               dps={"id": np.arange(n, dtype=np.int32)},
                               groups={"A": np.arange(0, n, 2, dtype=np.uint32)},
                               dpg={"A": {"mean": np.array([0.5], np.float32)}})


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("zips")
    trx = sample()
    return {"stored": save(trx, folder / "stored.trx"),
            "deflate": save(trx, folder / "deflated.trx", compression="deflate")}


@pytest.mark.parametrize("kind", ["stored", "deflate"])
def test_python_zipfile_reads_and_checks_every_crc(outputs: dict, kind: str) -> None:
    with zipfile.ZipFile(outputs[kind]) as zf:
        assert zf.testzip() is None  # every member read, every CRC checked
        methods = {i.compress_type for i in zf.infolist()}
        assert methods == {zipfile.ZIP_STORED if kind == "stored" else zipfile.ZIP_DEFLATED}
        positions = np.frombuffer(zf.read(next(n for n in zf.namelist()
                                               if n.startswith("positions"))), "<f4")
    np.testing.assert_array_equal(positions.reshape(-1, 3), sample().positions)


@pytest.mark.parametrize("kind", ["stored", "deflate"])
def test_unzip_tests_the_archive(outputs: dict, kind: str) -> None:
    res = subprocess.run(["unzip", "-t", str(outputs[kind])], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No errors detected" in res.stdout


@pytest.mark.parametrize("kind", ["stored", "deflate"])
def test_trx_python_reads_it(outputs: dict, kind: str) -> None:
    import trx.trx_file_memmap as tmm

    theirs = tmm.load(str(outputs[kind]))
    try:
        ref = sample()
        np.testing.assert_array_equal(theirs.streamlines._data, ref.positions)
        np.testing.assert_array_equal(np.asarray(theirs.data_per_vertex["fa"]._data).ravel(),
                                      ref.dpv["fa"])
        np.testing.assert_array_equal(theirs.groups["A"], ref.groups["A"])
    finally:
        theirs.close()


def test_deflate_blocks_are_deterministic_and_independent_of_chunking(tmp_path: Path) -> None:
    """The blocks are cut from the member's bytes, not from how the chunks arrive."""
    data = np.random.default_rng(1).normal(size=3_000_000).astype("<f4")
    outs = []
    for step in (1 << 20, 3_333_333, 7_777):
        out = tmp_path / f"d{step}.trx"
        with TrxWriter(out, compression="deflate") as w:
            w.add("dps/x.float32", (data[i:i + step] for i in range(0, len(data), step)),
                  data.nbytes)
        outs.append(out.read_bytes())
        with zipfile.ZipFile(out) as zf:
            assert np.array_equal(np.frombuffer(zf.read("dps/x.float32"), "<f4"), data)
    assert outs[0] == outs[1] == outs[2]


def test_without_isal_the_same_code_runs_on_zlib(tmp_path: Path, outputs: dict) -> None:
    """A platform without ISA-L: zlib does the work; stored bytes do not depend on it."""
    script = """
import sys
sys.modules["isal"] = None  # as if not installed
sys.path.insert(0, sys.argv[2])
from test_zipio import sample
from trx_nipype.core import load, save, zipio
out = sys.argv[1]
save(sample(), out + "/stored.trx")
save(sample(), out + "/deflated.trx", compression="deflate")
with load(out + "/deflated.trx") as trx:
    assert (trx.positions == sample().positions).all()
print(zipio.LIBRARY)
"""
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(Path(__file__).parent)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "zlib"
    assert (tmp_path / "stored.trx").read_bytes() == outputs["stored"].read_bytes()
    with zipfile.ZipFile(tmp_path / "deflated.trx") as zf:
        assert zf.testzip() is None
    with load(tmp_path / "deflated.trx") as a, load(outputs["deflate"]) as b:
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.dpv["fa"], b.dpv["fa"])


def test_the_library_in_use_is_isal_here() -> None:
    """This machine has ISA-L (a dependency): the fast path is the one measured."""
    assert zipio.LIBRARY == "isal"


def _patch_member(path: Path, member: str, *, flags: int | None = None,
                  method: int | None = None, where: str = "both") -> None:
    """Set ``member``'s flag bits or method in its local header and/or central record."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    if where in ("local", "both"):
        at = info.header_offset
        if flags is not None:
            struct.pack_into("<H", raw, at + 6, flags)
        if method is not None:
            struct.pack_into("<H", raw, at + 8, method)
    if where in ("central", "both"):
        at = raw.index(b"PK\x01\x02")
        while True:  # find the member's central record
            name_len = struct.unpack_from("<H", raw, at + 28)[0]
            extra_len, comment_len = struct.unpack_from("<HH", raw, at + 30)
            if raw[at + 46:at + 46 + name_len].decode() == member:
                break
            at = raw.index(b"PK\x01\x02", at + 46 + name_len + extra_len + comment_len)
        if flags is not None:
            struct.pack_into("<H", raw, at + 8, flags)
        if method is not None:
            struct.pack_into("<H", raw, at + 10, method)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(("flags", "what"), [(0x40, "strongly encrypted"), (0x1, "encrypted"),
                                             (0x20, "patched data"),
                                             (0x2000, "encrypted central directory")])
@pytest.mark.parametrize("where", ["both", "local", "central"])
def test_flags_the_reader_cannot_honour(tmp_path: Path, outputs: dict, flags: int, what: str,
                                        where: str) -> None:
    path = tmp_path / "flagged.trx"
    path.write_bytes(outputs["stored"].read_bytes())
    _patch_member(path, "positions.3.float32", flags=flags, where=where)
    with pytest.raises(TrxFormatError, match=what) as err:
        with load(path) as trx:
            trx.positions  # noqa: B018
    assert err.value.member == "positions.3.float32"
    assert str(path) in str(err.value)


@pytest.mark.parametrize("where", ["both", "local", "central"])
def test_unknown_compression_method(tmp_path: Path, outputs: dict, where: str) -> None:
    path = tmp_path / "bzip.trx"
    path.write_bytes(outputs["deflate"].read_bytes())
    _patch_member(path, "dpv/fa.float32", method=12, where=where)
    with pytest.raises(TrxFormatError, match="method") as err:
        with load(path) as trx:
            trx.dpv["fa"]  # noqa: B018
    assert err.value.member == "dpv/fa.float32"


def test_header_json_of_a_stored_output_is_plain(outputs: dict) -> None:
    with zipfile.ZipFile(outputs["stored"]) as zf:
        header = json.loads(zf.read("header.json"))
    assert header["NB_STREAMLINES"] == 2000


@pytest.mark.parametrize("out_name", ["cat.trx", "cat_dir"])
def test_concatenation_copied_by_the_kernel_has_the_bytes_of_the_streamed_one(
        tmp_path: Path, outputs: dict, monkeypatch: pytest.MonkeyPatch, out_name: str) -> None:
    """Inputs' members end to end: copy_file_range, CRC combined from the zip's and computed."""
    from trx_nipype.core import concatenate

    folder = save(sample(500, seed=4), tmp_path / "b_dir")  # no CRC recorded: computed
    inputs = [outputs["stored"], folder, outputs["deflate"]]
    kernel = concatenate(inputs, tmp_path / f"k-{out_name}")
    from trx_nipype.core import concatenating as concatenate_module
    monkeypatch.setattr(concatenate_module, "_pieces", lambda *args: None)
    streamed = concatenate(inputs, tmp_path / f"s-{out_name}")

    def tree(p: Path) -> dict:
        return {q.relative_to(p).as_posix(): q.read_bytes() for q in p.rglob("*")
                if q.is_file()} if p.is_dir() else {"": p.read_bytes()}
    assert tree(kernel) == tree(streamed)
    if out_name.endswith(".trx"):
        with zipfile.ZipFile(kernel) as zf:
            assert zf.testzip() is None
