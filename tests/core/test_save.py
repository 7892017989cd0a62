"""save(): N+1 offsets, determinism, re-encoding, overflow, atomicity, alignment."""

from __future__ import annotations

import json
import logging
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from trx_test_helpers import (
    assert_trx_equal,
    header_bytes,
    tree_bytes,
    valid_arrays,
    valid_members,
    write_trx_dir,
    write_trx_zip,
)

from trx_nipype.core import TrxFile, load, save
from trx_nipype.core import saving as save_module
from trx_nipype.core.saving import MemberStream, check_offsets_dtype, write_members
from trx_nipype.core.tempfiles import SIBLING_MARK
from trx_nipype.core.writer import ALIGNMENT, TrxWriter

TARGETS = [("stored", "out.trx"), ("deflate", "out.trx"), ("stored", "out_dir")]


def _siblings(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if SIBLING_MARK in p.name]


def _member_bytes(path: Path, name: str) -> bytes:
    if path.is_dir():
        return (path / name).read_bytes()
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def sample() -> TrxFile:
    """An in-memory tractogram equal to tests/conftest.py's valid members."""
    a = valid_arrays()
    return TrxFile.from_arrays(
        a["positions.3.float32"], a["offsets.uint64"], affine=json.loads(header_bytes())[
            "VOXEL_TO_RASMM"], dimensions=[20, 30, 40],
        dps={"weight": a["dps/weight.float32"], "rgb": a["dps/rgb.3.uint8"]},
        dpv={"fa": a["dpv/fa.float16"]},
        groups={"CST": a["groups/CST.uint32"], "AF": a["groups/AF.uint16"]},
        dpg={"CST": {"mean": a["dpg/CST/mean.float32"]},
             "AF": {"color": a["dpg/AF/color.3.uint8"]}})


@pytest.mark.parametrize(("compression", "name"), TARGETS)
def test_round_trip_and_n_plus_1_offsets(tmp_path: Path, temp_root: Path, compression: str,
                                         name: str) -> None:
    members = valid_members()
    members["offsets.uint64"] = members["offsets.uint64"][:-8]  # the source has N entries
    src = write_trx_dir(tmp_path / "src", members)
    out = tmp_path / name
    with load(src) as trx:
        assert save(trx, out, compression=compression) == out
        with load(out) as back:
            assert_trx_equal(back, trx)
    raw = np.frombuffer(_member_bytes(out, "offsets.uint64"), "<u8")
    assert raw.tolist() == [0, 3, 4, 8, 10]
    assert out.is_dir() == (name == "out_dir")
    if out.is_file():
        with zipfile.ZipFile(out) as zf:
            methods = {i.compress_type for i in zf.infolist()}
        assert methods == {zipfile.ZIP_DEFLATED if compression == "deflate"
                           else zipfile.ZIP_STORED}
    assert _siblings(tmp_path) == []


@pytest.mark.parametrize(("compression", "name"), TARGETS)
def test_deterministic(tmp_path: Path, temp_root: Path, compression: str, name: str) -> None:
    """Same content, same bytes: saved twice, and saved from memory or from a loaded file."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    save(sample(), a / name, compression=compression)
    save(sample(), b / name, compression=compression)
    src = write_trx_zip(tmp_path / "src.trx", valid_members(), zipfile.ZIP_DEFLATED)
    with load(src) as trx:
        save(trx, c / name, compression=compression)
    assert tree_bytes(a / name) == tree_bytes(b / name) == tree_bytes(c / name)


def test_header_extra_keys_kept(tmp_path: Path) -> None:
    members = valid_members()
    members["header.json"] = header_bytes(COMMENT="kept", SOFTWARE={"v": [1, 2]})
    with load(write_trx_dir(tmp_path / "src", members)) as trx:
        save(trx, tmp_path / "o.trx")
    header = json.loads(_member_bytes(tmp_path / "o.trx", "header.json"))
    assert header["COMMENT"] == "kept" and header["SOFTWARE"] == {"v": [1, 2]}
    assert list(header)[:4] == ["VOXEL_TO_RASMM", "DIMENSIONS", "NB_VERTICES", "NB_STREAMLINES"]


@pytest.mark.parametrize("positions_dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("offsets_dtype", ["uint32", "uint64"])
def test_dtype_re_encoding(tmp_path: Path, positions_dtype: str, offsets_dtype: str) -> None:
    trx = sample()
    out = tmp_path / "o.trx"
    save(trx, out, positions_dtype=positions_dtype, offsets_dtype=offsets_dtype)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
    assert f"positions.3.{positions_dtype}" in names and f"offsets.{offsets_dtype}" in names
    with load(out) as back:
        assert back.positions.dtype == np.dtype(positions_dtype)
        assert back.offsets.dtype == np.dtype(offsets_dtype)
        np.testing.assert_array_equal(back.positions, trx.positions.astype(positions_dtype))
        assert back.offsets.tolist() == trx.offsets.tolist()


def test_bad_dtypes_and_compression(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positions"):
        save(sample(), tmp_path / "o.trx", positions_dtype="int32")
    with pytest.raises(ValueError, match="offsets"):
        save(sample(), tmp_path / "o.trx", offsets_dtype="int64")
    with pytest.raises(ValueError, match="compression"):
        save(sample(), tmp_path / "o.trx", compression="bzip2")
    assert list(tmp_path.iterdir()) == []


def test_uint32_offsets_overflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_offsets_dtype(np.dtype("<u4"), 2**32 - 1, "x.trx")  # the largest that fits
    with pytest.raises(OverflowError, match=r"x\.trx: 4294967296 vertices .*uint64"):
        check_offsets_dtype(np.dtype("<u4"), 2**32, "x.trx")
    check_offsets_dtype(np.dtype("<u8"), 2**40, "x.trx")
    # through save, without allocating 4 G vertices: pretend the count
    monkeypatch.setattr(TrxFile, "nb_vertices", property(lambda self: 2**32 + 5))
    out = tmp_path / "big.trx"
    with pytest.raises(OverflowError, match="uint64"):
        save(sample(), out, offsets_dtype="uint32")
    assert list(tmp_path.iterdir()) == []


def test_uint32_source_offsets_widened_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit dtype, a uint32 source is written with uint64 offsets if needed."""
    trx = TrxFile.from_arrays(np.zeros((3, 3), "<f4"), np.array([0, 3], "<u4"))
    monkeypatch.setattr(TrxFile, "nb_vertices", property(lambda self: 2**32))
    _, members = save_module.trx_members(trx)
    assert members[0].name == "offsets.uint64"


@pytest.mark.parametrize(("compression", "name"), TARGETS)
def test_failure_leaves_destination_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              compression: str, name: str) -> None:
    dest = tmp_path / name
    save(sample(), dest, compression=compression)
    before = tree_bytes(dest)

    def failing(lengths_chunks, dtype):
        yield np.zeros(1, dtype=dtype)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(save_module, "offsets_chunks", failing)
    other = sample().select([2, 1])
    with pytest.raises(RuntimeError, match="disk on fire"):
        save(other, dest, compression=compression)
    assert tree_bytes(dest) == before
    assert _siblings(tmp_path) == []
    # and a fresh destination is not created at all
    with pytest.raises(RuntimeError):
        save(other, tmp_path / ("new" + dest.suffix), compression=compression)
    assert not (tmp_path / ("new" + dest.suffix)).exists() and _siblings(tmp_path) == []


@pytest.mark.parametrize("zipped", [True, False])
def test_writer_failure_mid_member(tmp_path: Path, zipped: bool) -> None:
    dest = tmp_path / ("w.trx" if zipped else "w")

    def chunks():
        yield np.zeros(4, "<f4")
        raise KeyboardInterrupt  # even a BaseException aborts cleanly

    with pytest.raises(KeyboardInterrupt):
        write_members(dest, json.loads(header_bytes()),
                      [MemberStream("dps/x.float32", 32, chunks)])
    assert list(tmp_path.iterdir()) == []
    # a chunk iterator that lies about its size is a bug, reported, nothing left
    with pytest.raises(RuntimeError, match="announced"):
        write_members(dest, json.loads(header_bytes()),
                      [MemberStream("dps/x.float32", 32, lambda: iter([np.zeros(2, "<f4")]))])
    assert list(tmp_path.iterdir()) == []


def test_destination_folder_missing(tmp_path: Path) -> None:
    from trx_nipype.core import TrxWriteError

    with pytest.raises(TrxWriteError, match="does not exist"):
        save(sample(), tmp_path / "no" / "such" / "o.trx")


@pytest.mark.parametrize("container", ["stored", "dir"])
def test_saving_over_the_input_is_refused(tmp_path: Path, container: str) -> None:
    path = (write_trx_zip(tmp_path / "in.trx", valid_members()) if container == "stored"
            else write_trx_dir(tmp_path / "in", valid_members()))
    before = tree_bytes(path)
    link = tmp_path / "link"
    link.symlink_to(path)
    with load(path) as trx:
        for target in (path, link, str(path)):
            with pytest.raises(ValueError, match="read from"):
                save(trx, target)
            with pytest.raises(ValueError, match="read from"):
                save(trx.select([0]), target)
    assert tree_bytes(path) == before


def test_replacing_an_existing_output(tmp_path: Path) -> None:
    for name in ("o.trx", "o_dir"):
        dest = tmp_path / name
        save(sample(), dest)
        save(sample().select([0]), dest)
        with load(dest) as back:
            assert len(back) == 1
    assert _siblings(tmp_path) == []


def _local_data_offsets(path: Path) -> dict[str, int]:
    raw = path.read_bytes()
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
            out[info.filename] = info.header_offset + 30 + name_len + extra_len
    return out


def test_stored_members_aligned(tmp_path: Path) -> None:
    members = valid_members()
    members["dps/odd name  .with.dots.float64"] = np.arange(4, dtype="<f8").tobytes()
    with load(write_trx_dir(tmp_path / "src", members)) as trx:
        save(trx, tmp_path / "o.trx")
    offsets = _local_data_offsets(tmp_path / "o.trx")
    assert len(offsets) == len(members)
    for name, offset in offsets.items():
        assert offset % ALIGNMENT == 0, name


def test_alignment_with_zip64_sized_member() -> None:
    """The padding accounts for the zip64 extra that large members get."""
    for header_offset in range(0, 200, 7):
        for nbytes, zip64 in ((100, 0), (2**32, 20)):
            pad = TrxWriter._padding(header_offset, "positions.3.float32", nbytes)
            start = header_offset + 30 + len("positions.3.float32") + zip64 + len(pad)
            assert start % ALIGNMENT == 0


def test_member_order_fixed(tmp_path: Path) -> None:
    save(sample(), tmp_path / "o.trx")
    with zipfile.ZipFile(tmp_path / "o.trx") as zf:
        names = zf.namelist()
    assert names == ["header.json", "offsets.uint64", "positions.3.float32",
                     "dps/rgb.3.uint8", "dps/weight.float32", "dpv/fa.float16",
                     "groups/AF.uint16", "groups/CST.uint32", "dpg/AF/color.3.uint8",
                     "dpg/CST/mean.float32"]


def test_dpg_vector_named_with_columns(tmp_path: Path) -> None:
    """A per-group vector of k values is written as one row of k columns (other readers'
    layout) and loads back as (k,)."""
    trx = TrxFile.from_arrays(np.zeros((2, 3), "<f4"), lengths=[1, 1], groups={"G": [0]},
                              dpg={"G": {"v": np.array([1.0, 2.0, 3.0], "<f4"),
                                         "row": np.array([[4, 5]], "<i2"),
                                         "one": np.float64(7.0)}})
    save(trx, tmp_path / "o.trx")
    with zipfile.ZipFile(tmp_path / "o.trx") as zf:
        names = {n for n in zf.namelist() if n.startswith("dpg/")}
    assert names == {"dpg/G/v.3.float32", "dpg/G/row.2.int16", "dpg/G/one.float64"}
    with load(tmp_path / "o.trx") as back:
        assert back.dpg["G"]["v"].tolist() == [1.0, 2.0, 3.0]
        assert back.dpg["G"]["row"].tolist() == [4, 5]
        assert back.dpg["G"]["one"].tolist() == [7.0]
        assert_trx_equal(back, trx)


def test_save_streams_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Positions go to disk one chunk of streamlines at a time, never as one big copy."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 20, 300)
    trx = TrxFile.from_arrays(rng.random((int(lengths.sum()), 3)).astype("<f4"),
                              lengths=lengths, dpv={"c": rng.random(int(lengths.sum()))})
    sizes: list[int] = []
    original = TrxWriter.add

    def spy(self, name, chunks, nbytes):
        def counted():
            for chunk in chunks:
                if name.startswith("positions"):
                    sizes.append(len(chunk))
                yield chunk
        return original(self, name, counted(), nbytes)

    monkeypatch.setattr(TrxWriter, "add", spy)
    header, members = save_module.trx_members(trx, chunk_vertices=100)
    write_members(tmp_path / "o.trx", header, members)
    assert len(sizes) > 10 and max(sizes) <= 100 + 20
    with load(tmp_path / "o.trx") as back:
        assert_trx_equal(back, trx)


def test_large_members_report_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    from trx_nipype.core import writer

    monkeypatch.setattr(writer, "PROGRESS_BYTES", 1000)
    trx = TrxFile.from_arrays(np.zeros((400, 3), np.float32), lengths=[100] * 4)
    with caplog.at_level(logging.INFO, logger="trx_nipype.core.writer"):
        save(trx, tmp_path / "p.trx")
    lines = [r.getMessage() for r in caplog.records]
    assert "p.trx: positions.3.float32: writing 0.0 MB" in lines
    assert [m for m in lines if m.endswith("%")][-1] == "p.trx: positions.3.float32: 75%"


def test_never_replaces_what_is_not_a_trx(tmp_path: Path) -> None:
    """A folder of other files, or a file that is not a TRX zip, is kept: FileExistsError."""
    trx = TrxFile.from_arrays(np.zeros((4, 3), np.float32), lengths=[2, 2])
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a TRX folder"):
        save(trx, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    text = tmp_path / "notes"
    text.write_text("precious", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a TRX file"):
        save(trx, text)  # no .trx suffix: a TRX folder would replace the file
    assert text.read_text(encoding="utf-8") == "precious"
    assert not [p for p in tmp_path.iterdir() if SIBLING_MARK in p.name]
    empty = tmp_path / "empty"
    empty.mkdir()
    save(trx, empty)  # an empty folder, a TRX folder and a TRX zip may be replaced
    save(trx, empty)
    save(trx, tmp_path / "a.trx")
    save(trx, tmp_path / "a.trx")
    save(trx, tmp_path / "b.trx")
    (tmp_path / "b.trx").rename(tmp_path / "b")
    save(trx, tmp_path / "b")  # a TRX folder replacing a TRX zip
    assert (tmp_path / "b" / "header.json").is_file()
