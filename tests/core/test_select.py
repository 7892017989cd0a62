"""select / get_group / select_groups: views that follow the selection, checked against
trx-python where it agrees and against hand-computed expectations where it does not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import trx.trx_file_memmap as tmm
from trx_test_helpers import assert_arrays_equal, assert_trx_equal

from trx_nipype.core import TrxFile, load, save
from trx_nipype.core.arrays import LazyArrays
from trx_nipype.core.saving import trx_members, write_members
from trx_nipype.core.source import Source

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
DIMS = (30, 40, 50)


def make_trx(n: int, seed: int = 0, *, groups: Mapping[str, Sequence[int]] | None = None,
             dpg: Mapping[str, Mapping[str, np.ndarray]] | None = None,
             lengths: Sequence[int] | None = None, positions_dtype: str = "<f4",
             dps: bool = True, dpv: bool = True, affine: np.ndarray = AFFINE,
             dims: Sequence[int] = DIMS) -> TrxFile:
    """A small random in-memory tractogram (``w`` dps, ``rgb`` 3-column dps, ``fa`` dpv)."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, 6, n) if lengths is None else np.asarray(lengths)
    v = int(lens.sum())
    return TrxFile.from_arrays(
        rng.normal(size=(v, 3)).astype(positions_dtype), lengths=lens, affine=affine,
        dimensions=dims,
        dps={"w": rng.random(n).astype("<f4"),
             "rgb": rng.integers(0, 255, (n, 3)).astype("u1")} if dps else None,
        dpv={"fa": rng.random(v).astype("<f4")} if dpv else None,
        groups=groups, dpg=dpg)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    trx = make_trx(12, groups={"A": [0, 2, 5, 11], "B": [1, 2, 3], "C": [7]},
                   dpg={"A": {"mean": np.array([1.5], "<f4")},
                        "C": {"color": np.array([1, 2, 3], "u1")}})
    return save(trx, tmp_path / "in.trx")


def expected_rows(trx: TrxFile, idx: Sequence[int]) -> dict[str, np.ndarray]:
    """What a selection must hold, from whole arrays."""
    idx = np.asarray(idx, dtype=np.int64)
    seqs = [np.asarray(trx.streamlines[i]) for i in idx]
    starts = np.asarray(trx.offsets, np.int64)[:-1]
    vert = np.concatenate([np.arange(starts[i], starts[i] + trx.lengths[i]) for i in idx]) \
        if len(idx) else np.zeros(0, np.int64)
    return {"positions": np.concatenate(seqs) if seqs else np.zeros((0, 3), "<f4"),
            "lengths": trx.lengths[idx], "w": np.asarray(trx.dps["w"])[idx],
            "rgb": np.asarray(trx.dps["rgb"])[idx], "fa": np.asarray(trx.dpv["fa"])[vert]}


def check_view(view: TrxFile, exp: dict[str, np.ndarray]) -> None:
    assert_arrays_equal(view.positions, exp["positions"].astype(view.positions.dtype))
    np.testing.assert_array_equal(view.lengths, exp["lengths"])
    for key in ("w", "rgb"):
        assert_arrays_equal(view.dps[key], exp[key], key)
    assert_arrays_equal(view.dpv["fa"], exp["fa"], "fa")


@pytest.mark.parametrize("idx", [[0, 1, 2], [5, 3, 9, 0], [4], list(range(12))[::-1]],
                         ids=["sorted", "unsorted", "one", "reversed"])
def test_select_matches_trx_python(saved: Path, tmp_path: Path, idx: list[int]) -> None:
    # trx-python objects are left to the garbage collector: their close() unmaps arrays
    # that a failing assertion's report may still show
    ref = tmm.load(str(saved)).select(np.array(idx), keep_group=True)
    with load(saved) as trx:
        view = trx.select(idx)
        assert view.is_view and len(view) == len(idx)
        assert_arrays_equal(view.positions, ref.streamlines.get_data(), "positions")
        np.testing.assert_array_equal(view.lengths, ref.streamlines._lengths)
        for key in ("w", "rgb"):
            np.testing.assert_array_equal(
                np.asarray(view.dps[key]).reshape(len(view), -1),
                np.asarray(ref.data_per_streamline[key]).reshape(len(view), -1))
        np.testing.assert_array_equal(np.ravel(view.dpv["fa"]),
                                      np.ravel(ref.data_per_vertex["fa"].get_data()))
        # without repeats, groups agree as sets of new positions
        assert sorted(view.groups) == sorted(ref.groups)
        for g in view.groups:
            np.testing.assert_array_equal(view.groups[g], np.sort(ref.groups[g]))
        assert sorted(view.dpg) == sorted(ref.data_per_group)
        out = save(view, tmp_path / "sel.trx")
        with load(out) as back:
            assert_trx_equal(back, view)


def test_repeated_indices_keep_every_copy_in_groups(saved: Path) -> None:
    # trx-python puts a repeated streamline in its groups once; the selection holds it twice
    with load(saved) as trx:
        idx = [2, 0, 2, 11, 2]
        view = trx.select(idx)
        check_view(view, expected_rows(trx, idx))
        # 2 is in A and B, 0 and 11 in A; C (7) is not selected: dropped with its dpg
        assert_arrays_equal(view.groups["A"], np.array([0, 1, 2, 3, 4], "<u4"))
        assert_arrays_equal(view.groups["B"], np.array([0, 2, 4], "<u4"))
        assert sorted(view.groups) == ["A", "B"]
        assert sorted(view.dpg) == ["A"]
        assert_arrays_equal(view.dpg["A"]["mean"], np.array([1.5], "<f4"))


def test_keep_empty_groups_keeps_their_dpg(saved: Path) -> None:
    with load(saved) as trx:
        view = trx.select([1], keep_empty_groups=True)
        assert {g: v.tolist() for g, v in view.groups.items()} == {"A": [], "B": [0], "C": []}
        assert sorted(view.dpg) == ["A", "C"]


def test_empty_selection_saves_an_empty_file(saved: Path, tmp_path: Path) -> None:
    with load(saved) as trx:
        view = trx.select([])
        assert len(view) == 0 and view.nb_vertices == 0 and view.groups == {}
        assert view.positions.shape == (0, 3)
        assert view.dps["rgb"].shape == (0, 3)
        out = save(view, tmp_path / "empty.trx")
        assert tmm.load(str(out)).header["NB_STREAMLINES"] == 0
        with load(out) as back:
            assert len(back) == 0 and sorted(back.dps) == ["rgb", "w"]
            assert back.dps["rgb"].shape == (0, 3)


def test_negative_masks_generators_and_views_of_views(saved: Path) -> None:
    with load(saved) as trx:
        check_view(trx.select([-1, 0]), expected_rows(trx, [11, 0]))
        mask = np.zeros(12, bool)
        mask[[3, 7]] = True
        check_view(trx.select(mask), expected_rows(trx, [3, 7]))
        check_view(trx.select(i for i in (4, 1)), expected_rows(trx, [4, 1]))
        check_view(trx.select(range(10, 4, -3)), expected_rows(trx, [10, 7]))
        inner = trx.select([9, 5, 2, 0]).select([3, 1, 1])
        check_view(inner, expected_rows(trx, [0, 5, 5]))
        assert_arrays_equal(inner.groups["A"], np.array([0, 1, 2], "<u4"))


@pytest.mark.parametrize("bad", [[12], [0, -13], [1.5]])
def test_out_of_range_or_non_integer_indices_raise(saved: Path, bad: list) -> None:
    with load(saved) as trx, pytest.raises(IndexError) as err:
        trx.select(bad)
    assert "out of range" in str(err.value) or "integers" in str(err.value)
    if bad != [1.5]:
        assert "12 streamlines" in str(err.value) and "in.trx" in str(err.value)


def test_get_group_matches_trx_python(saved: Path, tmp_path: Path) -> None:
    ref = tmm.load(str(saved)).get_group("B")
    with load(saved) as trx:
        view = trx.get_group("B")
        assert_arrays_equal(view.positions, ref.streamlines.get_data())
        np.testing.assert_array_equal(view.lengths, ref.streamlines._lengths)
        assert {g: v.tolist() for g, v in view.groups.items()} == \
            {"A": [1], "B": [0, 1, 2]}
        assert {g: v.tolist() for g, v in ref.groups.items()} == \
            {"A": [1], "B": [0, 1, 2]}
        with load(save(view, tmp_path / "B.trx")) as back:
            assert_trx_equal(back, view)


def test_select_groups_is_a_union_in_streamline_order(saved: Path) -> None:
    with load(saved) as trx:
        view = trx.select_groups(["C", "B"])
        check_view(view, expected_rows(trx, [1, 2, 3, 7]))
        assert {g: v.tolist() for g, v in view.groups.items()} == \
            {"A": [1], "B": [0, 1, 2], "C": [3]}
        assert sorted(view.dpg) == ["A", "C"]
        assert len(trx.select_groups([])) == 0


def test_missing_group_lists_the_groups_present(saved: Path) -> None:
    with load(saved) as trx, pytest.raises(KeyError) as err:
        trx.get_group("CST")
    assert "'CST'" in str(err.value) and "A, B, C" in str(err.value)


class _Recording:
    """An array whose reads are counted (rows requested per call)."""

    def __init__(self, arr: np.ndarray, log: list[int]) -> None:
        self.arr, self.log = arr, log
        self.shape, self.dtype = arr.shape, arr.dtype

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        out = self.arr[key]
        self.log.append(len(out))
        return out


def test_saving_a_view_reads_only_the_selected_rows_in_chunks(tmp_path: Path) -> None:
    base = make_trx(40, seed=3)
    src = base.source_arrays()
    reads: list[int] = []
    positions = LazyArrays()
    positions.add("positions", src.positions_dtype, base.positions.shape,
                  lambda: _Recording(np.asarray(base.positions), reads))
    spied = TrxFile(Source(src.header, positions, src.offsets, src.dps, src.dpv, {}, {}))
    idx = [30, 2, 17, 17, 5]
    view = spied.select(idx)
    header, members = trx_members(view, chunk_vertices=7)
    out = write_members(tmp_path / "view.trx", header, members)
    exp = expected_rows(base, idx)
    assert sum(reads) == int(exp["lengths"].sum())  # only the selected vertices
    assert max(reads) <= max(7, int(exp["lengths"].max()))  # in chunks
    with load(out) as back:
        check_view(back, exp)


def test_sample_is_seeded_in_file_order_and_skips_unused_capacity() -> None:
    lengths = [3, 2, 4, 1, 5, 2, 0, 0]  # two trailing zero-length streamlines: capacity
    trx = TrxFile.from_arrays(np.arange(51, dtype=np.float32).reshape(17, 3),
                              lengths=lengths, dps={"i": np.arange(8)})
    a, b = trx.sample(4, seed=3), trx.sample(4, seed=3)
    picked = np.asarray(a.dps["i"])
    np.testing.assert_array_equal(picked, b.dps["i"])
    assert len(a) == 4 and np.all(np.diff(picked) > 0) and picked.max() < 6
    expected = np.sort(np.random.default_rng(3).choice(6, size=4, replace=False))
    np.testing.assert_array_equal(picked, expected)
    assert len(trx.sample(6, seed=0)) == 6
    with pytest.raises(ValueError, match="cannot draw 7 streamlines from 6"):
        trx.sample(7)



def test_view_of_every_streamline_saves_the_same_bytes(tmp_path: Path) -> None:
    trx = TrxFile.from_arrays(np.arange(12, dtype=np.float32).reshape(4, 3), lengths=[2, 2],
                              groups={"g": np.array([1], dtype=np.uint32)})
    save(trx, tmp_path / "a.trx")
    with load(tmp_path / "a.trx") as a:
        save(a.select([0, 1]), tmp_path / "b.trx")
        save(a.resize(), tmp_path / "c.trx")
    data = (tmp_path / "a.trx").read_bytes()
    assert (tmp_path / "b.trx").read_bytes() == data == (tmp_path / "c.trx").read_bytes()
