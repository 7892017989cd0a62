"""The fast paths of the format readers and writers give what the plain numpy ones gave.

Each fast path (rows moved as opaque records, one comparison for the TRK record
chain, grouped min/max reductions) is checked against a plain numpy computation
or against nibabel, on the edge cases where a vectorised shortcut could slip:
one-vertex and empty streamlines, rows with one non-finite coordinate, the tail
of a reduction that does not fill a group, unaligned input arrays.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from trx_nipype.core.arrays import RUNS_PER_LENGTH, gather_runs, ranges_index
from trx_nipype.core.formats import Block
from trx_nipype.core.formats.tck import iter_tck_blocks, write_tck
from trx_nipype.core.reading import MemberReader
from trx_nipype.core.space import column_range


def _blocks_of(path: Path, **kw) -> Block:
    blocks = list(iter_tck_blocks(path, **kw))
    return Block(np.concatenate([b.lengths for b in blocks]),
                 np.concatenate([b.positions for b in blocks]))


@pytest.mark.parametrize("n", [1, 7, 1023, 1024, 1025, 5000])
@pytest.mark.parametrize("special", [None, "nan_first", "nan_tail", "inf_tail", "ninf_mid"])
def test_column_range_equals_numpy(n: int, special: str | None) -> None:
    rng = np.random.default_rng(n)
    pts = rng.normal(0, 50, (n, 3)).astype(np.float32)
    if special == "nan_first":
        pts[0, 1] = np.nan
    elif special == "nan_tail":
        pts[-1, 2] = np.nan
    elif special == "inf_tail":
        pts[-1, 0] = np.inf
    elif special == "ninf_mid":
        pts[n // 2, 1] = -np.inf
    lo, hi = column_range(pts)
    np.testing.assert_array_equal(lo, pts.min(axis=0).astype(np.float64))
    np.testing.assert_array_equal(hi, pts.max(axis=0).astype(np.float64))


def _random_streamlines(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 6, n)
    lengths[::7] = 1  # one-vertex streamlines
    return lengths, rng.normal(0, 30, (int(lengths.sum()), 3)).astype(np.float32)


def test_tck_data_are_nibabels_bytes_from_an_unaligned_array(tmp_path: Path) -> None:
    lengths, pts = _random_streamlines(1, 500)
    raw = bytearray(1 + pts.nbytes)
    raw[1:] = pts.tobytes()
    unaligned = np.frombuffer(raw, "<f4", offset=1).reshape(-1, 3)
    assert not unaligned.flags.aligned
    ours = write_tck(tmp_path / "ours.tck", [Block(lengths[:200], unaligned[:lengths[:200].sum()]),
                                             Block(lengths[200:],
                                                   unaligned[lengths[:200].sum():])])
    theirs = tmp_path / "nib.tck"
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    streamlines = [pts[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    nib.streamlines.save(nib.streamlines.Tractogram(streamlines, affine_to_rasmm=np.eye(4)),
                         str(theirs))

    def data(path: Path) -> bytes:
        raw = path.read_bytes()
        head = raw[:raw.index(b"END\n") + 4].decode()
        offset = int(head.split("file: . ")[1].split()[0])
        return raw[offset:]
    assert data(ours) == data(theirs)
    block = _blocks_of(ours)
    np.testing.assert_array_equal(block.lengths, lengths)
    np.testing.assert_array_equal(block.positions.view(np.uint32), pts.view(np.uint32))


@pytest.mark.parametrize("chunk", [24, 36, 120, 1 << 20])
def test_tck_rows_with_one_odd_coordinate_are_points(tmp_path: Path, chunk: int) -> None:
    nan, inf = np.nan, np.inf
    rows = np.array([[1, 2, 3], [inf, 1, 2], [nan, nan, nan],        # a point with x = Inf
                     [nan, 3, 4], [5, 6, 7], [nan, nan, nan],        # a point with x = NaN
                     [nan, nan, nan],                                # an empty streamline
                     [8, inf, 9], [nan, nan, nan],                   # one vertex, y = Inf
                     [inf, inf, inf]], dtype="<f4")
    head = b"mrtrix tracks\ncount: 3\ndatatype: Float32LE\nfile: . 64\nEND\n"
    path = tmp_path / "odd.tck"
    path.write_bytes(head.ljust(64, b"\0") + rows.tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = _blocks_of(path, chunk_bytes=chunk)
    np.testing.assert_array_equal(block.lengths, [2, 2, 1])
    np.testing.assert_array_equal(block.positions, rows[[0, 1, 3, 4, 7]])


def _reference_transform(affine: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The affine term by term in float64 (nonzero terms in column order, then the shift
    when nonzero), rounded once to float32: what transform_points promises."""
    x = pts.astype(np.float64)
    out = np.empty(pts.shape, np.float32)
    for i in range(3):
        terms = [j for j in range(3) if affine[i, j] != 0] or [0]
        acc = x[:, terms[0]] * affine[i, terms[0]]
        for j in terms[1:]:
            acc = acc + x[:, j] * affine[i, j]
        if affine[i, 3] != 0:
            acc = acc + affine[i, 3]
        out[:, i] = acc
    return out


AFFINES = {
    "unit_shift": [[1, 0, 0, -90.875], [0, 1, 0, -126.875], [0, 0, 1, 0], [0, 0, 0, 1]],
    "scaled_flipped": [[0.8, 0, 0, -90.25], [0, -1.25, 0, 126.5], [0, 0, 1, -72.3],
                       [0, 0, 0, 1]],
    "permuted": [[0, 1, 0, 3.5], [1.0, 0, 0, 0], [0, 0, -1, 7.25], [0, 0, 0, 1]],
    "oblique": [[0.9, 0.1, 0, 1.5], [-0.1, 0.9, 0.05, -2], [0, 0.2, 1.1, 0], [0, 0, 0, 1]],
    # shifts float32 cannot hold (float64 path) beside ones it can (float32 sums)
    "unit_inexact_shift": [[1, 0, 0, 0.1], [0, 1, 0, -126.875], [0, 0, 1, 1e300],
                           [0, 0, 0, 1]],
    "unit_tiny_and_huge": [[1, 0, 0, 1e-40], [0, 1, 0, 3e38], [0, 0, 1, -2.0 ** -149],
                           [0, 0, 0, 1]],
}


@pytest.mark.parametrize("name", sorted(AFFINES))
@pytest.mark.parametrize("strided", [False, True])
def test_transform_points_is_the_float64_sum_rounded_once(name: str, strided: bool) -> None:
    from trx_nipype.core.space import transform_points

    affine = np.array(AFFINES[name], dtype=np.float64)
    rng = np.random.default_rng(3)
    table = rng.normal(0, 80, (70_001, 4)).astype(np.float32)
    table[::97, 0] = -0.0
    table[5, 1], table[6, 2], table[7, 0] = np.nan, np.inf, -np.inf
    pts = table[:, :3] if strided else np.ascontiguousarray(table[:, :3])
    with np.errstate(over="ignore"):  # 3e38 and 1e300 send points past float32, on purpose
        got = transform_points(affine, pts, np.float32, block=4096)
    into = np.zeros((len(pts), 5), np.float32)
    with np.errstate(over="ignore"):
        transform_points(affine, pts, out=into, block=4096)
        expected = _reference_transform(affine, pts)
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    np.testing.assert_array_equal(into[:, :3], got)


@pytest.mark.parametrize("alongside", [True, False], ids=["in a thread", "one after the other"])
@pytest.mark.parametrize("to_zip", [True, False], ids=["zip", "folder"])
def test_a_folder_to_zip_conversion_copies_the_inspected_positions_in_the_kernel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alongside: bool, to_zip: bool
) -> None:
    """The bounding-box count reads the positions once (with their CRC) while the kernel
    copies them: same zip, same count of streamlines outside the grid."""
    import os
    import zipfile

    from trx_nipype.core import TrxFile, convert, load, save, writer
    from trx_nipype.core.errors import SpaceWarning

    monkeypatch.setattr(writer, "ALONGSIDE_BYTES", 0 if alongside else 1 << 40)

    lengths, pts = _random_streamlines(5, 3000)
    pts = np.clip(np.abs(pts), 1, 90)
    pts[:lengths[0]] += 500  # the first streamline leaves the 100 mm grid
    trx = TrxFile.from_arrays(pts, lengths=lengths, affine=np.eye(4), dimensions=(100,) * 3,
                              dpv={"fa": np.linspace(0, 1, len(pts), dtype=np.float32)})
    folder = save(trx, tmp_path / "in")
    copied: dict[int, int] = {}
    real = os.copy_file_range

    def counting(src: int, dst: int, count: int, *args: int) -> int:
        n = real(src, dst, count, *args)
        copied[src] = copied.get(src, 0) + n
        return n
    monkeypatch.setattr(os, "copy_file_range", counting)
    with pytest.warns(SpaceWarning, match="1 of 3000 streamlines"):
        out = convert(folder, tmp_path / ("out.trx" if to_zip else "out"))
    assert pts.nbytes in copied.values()  # the positions went through the kernel
    if not to_zip:
        with load(out) as back:
            np.testing.assert_array_equal(back.positions, pts)
        return
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None  # every CRC right
    with load(out) as back:
        np.testing.assert_array_equal(back.positions, pts)
        np.testing.assert_array_equal(back.lengths, lengths)
        np.testing.assert_array_equal(back.dpv["fa"], trx.dpv["fa"])
    monkeypatch.setattr(os, "copy_file_range", real)
    save(trx, tmp_path / "direct.trx")
    assert (tmp_path / "direct.trx").read_bytes() == out.read_bytes()


@pytest.mark.parametrize("order", ["sorted", "reversed", "repeats"])
@pytest.mark.parametrize("path", ["small chunks", "runs by length", "prefetched"])
def test_a_saved_view_equals_the_same_data_saved_whole(tmp_path: Path, order: str, path: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Views gathered chunk by chunk (small chunks: few runs of each length, through a
    vertex index reused across chunks of different sizes; whole chunks: runs copied by
    length; with the member's pages mapped ahead in a thread), empty and one-vertex
    streamlines among them, give the bytes of the same data saved from memory."""
    from trx_nipype.core import TrxFile, load, save, saving, trxfile

    lengths, pts = _random_streamlines(7, 400)
    lengths[::11] = 0
    pts = np.random.default_rng(8).normal(0, 30, (int(lengths.sum()), 3)).astype(np.float32)
    fa = np.arange(len(pts), dtype=np.float32)
    src = save(TrxFile.from_arrays(pts, lengths=lengths, affine=np.eye(4), dimensions=(9,) * 3,
                                   dpv={"fa": fa}), tmp_path / "src.trx")
    rows = np.arange(3, 400, 3)
    rows = {"sorted": rows, "reversed": rows[::-1],
            "repeats": np.concatenate([rows[:20], rows[:20], [5, 5, 399]])}[order]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    picked = np.concatenate([np.arange(starts[r], starts[r] + lengths[r]) for r in rows])
    expected = TrxFile.from_arrays(pts[picked], lengths=lengths[rows], affine=np.eye(4),
                                   dimensions=(9,) * 3, dpv={"fa": fa[picked]})
    save(expected, tmp_path / "expected.trx")
    if path == "small chunks":
        monkeypatch.setattr(trxfile, "CHUNK_VERTICES", 37)  # many chunks, of varying sizes
    elif path == "prefetched":
        monkeypatch.setattr(saving, "PREFETCH_MIN_BYTES", 0)
        monkeypatch.setattr(saving, "DENSE_BYTES", 1 << 40)
    started = []
    real = MemberReader.prefetch
    monkeypatch.setattr(MemberReader, "prefetch",
                        lambda self, a, b: started.append(real(self, a, b)) or started[-1])
    with load(src) as trx:
        save(trx.select(rows), tmp_path / "view.trx")
    assert any(started) == (path == "prefetched")
    assert (tmp_path / "view.trx").read_bytes() == (tmp_path / "expected.trx").read_bytes()


def test_a_read_alongside_a_kernel_copy_that_fails_raises_once_both_are_done() -> None:
    from trx_nipype.core.writer import alongside

    done = []

    def read() -> int:
        raise ValueError("the read side")

    with pytest.raises(ValueError, match="the read side"):
        alongside(read, lambda: done.append("copied"), 1 << 30)
    assert done == ["copied"]
    assert alongside(lambda: 7, lambda: None, 1 << 30) == 7
    assert alongside(None, lambda: done.append("again"), 1 << 30) is None


@pytest.mark.parametrize("unaligned", [False, True])
@pytest.mark.parametrize("tail", [(), (3,), (2, 2)])
@pytest.mark.parametrize("distinct", [3, 200])  # few lengths: by length; many: the index
def test_gather_runs_equals_the_vertex_index_gather(unaligned: bool, tail: tuple[int, ...],
                                                    distinct: int) -> None:
    rng = np.random.default_rng(distinct + len(tail))
    n = 3000
    values = rng.normal(0, 1, (n, *tail)).astype("<f4")
    if unaligned:  # a member of another writer's zip, mapped at an odd offset
        raw = np.frombuffer(bytes(1) + values.tobytes(), np.uint8)[1:]
        values = raw.view("<f4").reshape(values.shape)
        assert not values.flags.aligned
    k = 400
    lengths = rng.integers(0, distinct, k)
    lengths[::7] = 0
    starts = rng.integers(0, n - lengths.max(), k)
    by_length = (len(np.unique(lengths)) * RUNS_PER_LENGTH) <= k
    assert by_length == (distinct == 3)
    got = gather_runs(values, starts, lengths)
    np.testing.assert_array_equal(got, values[ranges_index(starts, lengths)])
    with pytest.raises(IndexError):
        gather_runs(values, np.array([n - 1]), np.array([2]))
