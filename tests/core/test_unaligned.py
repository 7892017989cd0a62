"""Files written by trx-python (unaligned members): no operation copies a whole member.

trx-python's zips leave members at whatever offset the headers before them
end on (its positions at offset % 4 == 3 on a 1M-streamline file). numpy's
``take`` on such an unaligned map first copied the whole array (1.2 GB for
1.2 GB of positions) before gathering. Here every operation runs on a
trx-python file under ``tracemalloc`` (numpy reports its buffers to it), with
small chunks, and its peak of traced memory must stay far below the size of
the positions member: nothing reads a member whole into memory.
"""

from __future__ import annotations

import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import trx_nipype.core.formats.tck  # noqa: F401  (the writers' first import, compiled by
import trx_nipype.core.formats.trk  # noqa: F401  pytest's rewriter, must not be traced)
import trx_nipype.core.trxfile as trxfile
from trx_nipype.core import TrxFile, concatenate, load, reading, save, zipio
from trx_nipype.core import concatenating as concatenate_module
from trx_nipype.core import convert as convert_fn
from trx_nipype.core import converting as convert_module

CHUNK = 20_000  # vertices per chunk (240 KB of positions)


def _data_offset(path: Path, prefix: str) -> int:
    import struct

    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        info = next(i for i in zf.infolist() if i.filename.startswith(prefix))
        fh.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", fh.read(4))
        return info.header_offset + 30 + name_len + extra_len


@pytest.fixture(scope="module")
def tpy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500k vertices written by trx-python, its positions at an offset not a multiple of 4."""
    import trx.trx_file_memmap as tmm

    folder = tmp_path_factory.mktemp("tpy")
    rng = np.random.default_rng(3)
    lengths = rng.integers(20, 60, 12_500)
    v = int(lengths.sum())
    for shift in np.arange(0.0, 2.0, 0.25):  # the header's length decides the alignment
        affine = np.diag([1.25, 1.25, 1.25, 1.0])
        affine[:3, 3] = [-90.0 - shift, -126.0, -72.0]
        ours = save(TrxFile.from_arrays(
            rng.uniform(-50, 50, (v, 3)).astype(np.float32), lengths=lengths, affine=affine,
            dimensions=(145, 174, 145), dpv={"fa": rng.random(v).astype(np.float32)},
            dps={"w": rng.random(len(lengths)).astype(np.float32)},
            groups={"G": np.arange(0, len(lengths), 3, dtype=np.uint32)}),
            folder / f"ours-{shift}")
        theirs = folder / f"tpy-{shift}.trx"
        trx = tmm.load(str(ours))
        tmm.save(trx, str(theirs), zipfile.ZIP_STORED)
        trx.close()
        if _data_offset(theirs, "positions") % 4:
            return theirs
    raise AssertionError("trx-python aligned every layout tried")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trxfile, "CHUNK_VERTICES", CHUNK)
    monkeypatch.setattr(concatenate_module, "CHUNK_VERTICES", CHUNK)
    monkeypatch.setattr(convert_module, "BLOCK_VERTICES", CHUNK)
    monkeypatch.setattr(reading, "WINDOW_BYTES", 256 << 10)
    monkeypatch.setattr(zipio, "DEFLATE_BLOCK", 256 << 10)


def _peak(func) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracemalloc.start()
        try:
            func()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def _ops(src: Path, out: Path) -> dict[str, object]:
    def with_loaded(action):
        def run():
            with load(src) as trx:
                action(trx)
        return run
    return {
        "select + save": with_loaded(lambda t: save(t.select(np.arange(0, len(t), 3)),
                                                    out / "sel.trx")),
        "reversed selection + save": with_loaded(lambda t: save(t.select(np.arange(len(t))[::-1]),
                                                                out / "rev.trx")),
        "get_group + save": with_loaded(lambda t: save(t.get_group("G"), out / "g.trx")),
        "save stored": with_loaded(lambda t: save(t, out / "all.trx")),
        "save deflated": with_loaded(lambda t: save(t, out / "all-d.trx", compression="deflate")),
        "save folder": with_loaded(lambda t: save(t, out / "all_dir")),
        "read positions": with_loaded(lambda t: [b.sum() for _, b in t.iter_positions()]),
        "concatenate": lambda: concatenate([src, src], out / "cat.trx"),
        "convert to TRK": lambda: convert_fn(src, out / "o.trk"),
        "convert to TCK": lambda: convert_fn(src, out / "o.tck"),
        "convert to a folder": lambda: convert_fn(src, out / "o_dir"),
    }


@pytest.mark.parametrize("op", list(_ops(Path("a"), Path("b"))))
def test_no_operation_copies_a_whole_member(tpy_file: Path, tmp_path: Path, small_chunks: None,
                                            op: str) -> None:
    with load(tpy_file) as trx:
        member = trx.nb_vertices * 12  # the positions member, float32
        assert not trx.positions.flags.aligned  # the case that copied whole arrays
    peak = _peak(_ops(tpy_file, tmp_path)[op])
    assert peak < member / 2, \
        f"{op}: {peak / 1e6:.1f} MB traced, positions are {member / 1e6:.1f} MB"


def test_outputs_from_the_unaligned_file_are_right(tpy_file: Path, tmp_path: Path,
                                                    small_chunks: None) -> None:
    ops = _ops(tpy_file, tmp_path)
    for name in ("select + save", "get_group + save", "concatenate", "save deflated"):
        ops[name]()
    with load(tpy_file) as src:
        pos = np.array(src.positions)
        fa = np.array(src.dpv["fa"])
        sel = src.select(np.arange(0, len(src), 3))
        with load(tmp_path / "sel.trx") as out:
            np.testing.assert_array_equal(out.positions, pos[sel._vertices()])
            np.testing.assert_array_equal(out.dpv["fa"], fa[sel._vertices()])
        with load(tmp_path / "cat.trx") as out:
            np.testing.assert_array_equal(out.positions, np.concatenate([pos, pos]))
        with load(tmp_path / "all-d.trx") as out:
            np.testing.assert_array_equal(out.positions, pos)
        group = src.get_group("G")
        with load(tmp_path / "g.trx") as out:
            np.testing.assert_array_equal(out.positions, pos[group._vertices()])


@pytest.mark.parametrize("leases", [True, False])
def test_gathers_with_and_without_a_lease_give_the_same_bytes(tpy_file: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               leases: bool) -> None:
    """Without a read lease (another OS, another user's file) gathers read pread windows.

    Both ways give the rows numpy's fancy indexing gives, in any order, with repeats,
    across runs far apart (gaps skipped) and within one window.
    """
    monkeypatch.setattr(reading, "_LEASES", leases)
    monkeypatch.setattr(reading, "WINDOW_BYTES", 64 << 10)
    monkeypatch.setattr(reading, "GAP_BYTES", 8 << 10)
    rng = np.random.default_rng(7)
    with load(tpy_file) as trx:
        n = len(trx)
        picks = {"sorted": np.sort(rng.choice(n, n // 7, replace=False)),
                 "shuffled with repeats": rng.integers(0, n, n // 5),
                 "far apart": np.array([0, n // 2, n - 1, 1]),
                 "reversed": np.arange(n)[::-1]}
        pos, fa = np.array(trx.positions), np.array(trx.dpv["fa"])
        for name, idx in picks.items():
            out = save(trx.select(idx), tmp_path / f"{name}.trx")
            held = trx.source_arrays().container._files["<zip>"]._leasable
            assert held == leases, "the lease path was not the one asked for"
            rows = trx.select(idx)._vertices()
            with load(out) as back:
                np.testing.assert_array_equal(back.positions, pos[rows], err_msg=name)
                np.testing.assert_array_equal(back.dpv["fa"], fa[rows], err_msg=name)
