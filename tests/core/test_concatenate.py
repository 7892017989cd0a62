"""concatenate: one streaming pass; checked against trx-python where it is right, by hand
where it is not (mixed groups, dpg, shared dps with delete_dps)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import trx.trx_file_memmap as tmm
from trx_test_helpers import assert_arrays_equal, assert_trx_equal, tree_bytes

from trx_nipype.core import TrxFile, concatenate, concatenating, load, save

from .test_select import AFFINE, make_trx


def _groups(trx: TrxFile) -> dict[str, list[int]]:
    return {g: np.asarray(v).tolist() for g, v in trx.groups.items()}


def _stack(*parts: TrxFile, key: str, table: str) -> np.ndarray:
    return np.concatenate([np.asarray(getattr(p, table)[key]) for p in parts])


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    u4 = np.dtype("<u4")  # the group dtype concatenate writes: a single input saves alike
    a = make_trx(5, seed=1, groups={"A": np.array([0, 3], u4), "B": np.array([1, 2, 4], u4)})
    b = make_trx(4, seed=2, groups={"A": np.array([2], u4), "B": np.array([0, 3], u4)})
    return save(a, tmp_path / "sub-01_AF_L.trx"), save(b, tmp_path / "sub-02_AF_L.trx")


def test_matches_trx_python(pair: tuple[Path, Path], tmp_path: Path) -> None:
    ours = concatenate(list(pair), tmp_path / "ours.trx")
    theirs = tmm.concatenate([tmm.load(str(p)) for p in pair])
    tmm.save(theirs, str(tmp_path / "theirs.trx"))
    with load(ours) as o, load(tmp_path / "theirs.trx") as t:
        assert len(o) == 9 and o.nb_vertices == t.nb_vertices
        assert_arrays_equal(o.positions, t.positions, "positions")
        np.testing.assert_array_equal(o.offsets, np.asarray(t.offsets, np.uint64))
        for key in ("w", "rgb"):
            np.testing.assert_array_equal(np.asarray(o.dps[key]).reshape(9, -1),
                                          np.asarray(t.dps[key]).reshape(9, -1))
        np.testing.assert_array_equal(np.ravel(o.dpv["fa"]), np.ravel(t.dpv["fa"]))
        assert _groups(o) == {g: sorted(v) for g, v in _groups(t).items()}
        assert _groups(o) == {"A": [0, 3, 7], "B": [1, 2, 4, 5, 8]}
        np.testing.assert_array_equal(o.affine, AFFINE)


def test_single_input_gives_the_bytes_of_save(pair: tuple[Path, Path], tmp_path: Path) -> None:
    with load(pair[0]) as trx:
        saved = save(trx, tmp_path / "saved.trx")
    out = concatenate(pair[0], tmp_path / "alone.trx")
    assert out == tmp_path / "alone.trx"
    assert tree_bytes(out) == tree_bytes(saved)


def test_inputs_may_be_views_and_objects_and_stay_open(pair: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    with load(pair[0]) as a, load(pair[1]) as b:
        view = b.select([3, 0, 0])
        mem = make_trx(2, seed=5)
        out = concatenate([a, view, mem], tmp_path / "mixed", group_by_input=True)
        expected = TrxFile.from_arrays(
            np.concatenate([a.positions, view.positions, mem.positions]),
            lengths=np.concatenate([a.lengths, view.lengths, mem.lengths]),
            affine=AFFINE, dimensions=a.dimensions,
            dps={k: _stack(a, view, mem, key=k, table="dps") for k in ("w", "rgb")},
            dpv={"fa": _stack(a, view, mem, key="fa", table="dpv")},
            groups={k: np.array(v, "<u4") for k, v in {
                "A": [0, 3], "B": [1, 2, 4, 5, 6, 7], "sub-01_AF_L": range(5),
                "sub-02_AF_L": [5, 6, 7], "input_2": [8, 9]}.items()})
        with load(out) as back:
            assert out.is_dir()
            assert_trx_equal(back, expected)
        assert len(a.positions) == a.nb_vertices  # still open


def test_mixed_groups_and_dpg(tmp_path: Path) -> None:
    # trx-python fails here (KeyError on the group an input lacks); expectations by hand
    a = make_trx(3, seed=1, groups={"A": [0, 2]}, dpg={"A": {"m": np.array([1.0], "<f4")}})
    b = make_trx(2, seed=2, groups={"A": [1], "B": [0, 1]},
                 dpg={"A": {"m": np.array([1.0], "<f4"), "n": np.array([7], "u1")},
                      "B": {"c": np.array([1, 2, 3], "u1")}})
    c = make_trx(2, seed=3)
    with load(concatenate([a, b, c], tmp_path / "out.trx")) as out:
        assert _groups(out) == {"A": [0, 2, 4], "B": [3, 4]}
        assert {g: sorted(t) for g, t in out.dpg.items()} == {"A": ["m", "n"], "B": ["c"]}
        assert_arrays_equal(out.dpg["A"]["m"], np.array([1.0], "<f4"))
        assert_arrays_equal(np.ravel(out.dpg["B"]["c"]), np.array([1, 2, 3], "u1"))


def test_conflicting_dpg_raises_unless_deleted(tmp_path: Path) -> None:
    a = make_trx(2, seed=1, groups={"A": [0]},
                 dpg={"A": {"m": np.array([1.0], "<f4"), "same": np.array([3], "u1")}})
    b = make_trx(2, seed=2, groups={"A": [1]},
                 dpg={"A": {"m": np.array([2.0], "<f4"), "same": np.array([3], "u1")}})
    with pytest.raises(ValueError, match=r"dpg A/m conflicts.*input 0.*input 1.*delete_dpg"):
        concatenate([a, b], tmp_path / "x.trx")
    assert not (tmp_path / "x.trx").exists()
    with load(concatenate([a, b], tmp_path / "x.trx", delete_dpg=True)) as out:
        assert sorted(out.dpg["A"]) == ["same"]  # only the conflicting entry dropped


def test_shared_dps_survive_delete_dps(tmp_path: Path) -> None:
    # trx-python's delete_dps drops every key, even those all inputs share
    a = make_trx(3, seed=1)
    b = TrxFile.from_arrays(np.ones((4, 3), "<f4"), lengths=[2, 2], affine=AFFINE,
                            dimensions=a.dimensions,
                            dps={"w": np.array([5, 6], "<f4"), "rgb": np.zeros((2, 3), "u2"),
                                 "extra": np.ones(2, "<f4")},
                            dpv={"fa": np.zeros(4, "<f4"), "curv": np.zeros(4, "<f4")})
    with pytest.raises(ValueError) as err:
        concatenate([a, b], tmp_path / "x.trx")
    msg = str(err.value)
    assert "dps 'extra' is missing from input 0 (in memory)" in msg
    assert "dps 'rgb' differs: uint8 x 3 in input 0 (in memory), uint16 x 3 in input 1" in msg
    assert "delete_dps=True" in msg
    with pytest.raises(ValueError, match="dpv 'curv' is missing from input 0"):
        concatenate([a, b], tmp_path / "x.trx", delete_dps=True)
    out = concatenate([a, b], tmp_path / "x.trx", delete_dps=True, delete_dpv=True)
    with load(out) as back:
        assert sorted(back.dps) == ["w"] and sorted(back.dpv) == ["fa"]
        assert_arrays_equal(back.dps["w"], np.concatenate([a.dps["w"], [5, 6]]).astype("<f4"))
        assert_arrays_equal(back.dpv["fa"], np.concatenate([a.dpv["fa"], np.zeros(4, "<f4")]))


def test_one_column_and_flat_dps_agree(tmp_path: Path) -> None:
    a = make_trx(2, seed=1, dpv=False)
    b = make_trx(3, seed=2, dpv=False)
    b2 = TrxFile.from_arrays(b.positions, lengths=b.lengths, affine=AFFINE,
                             dimensions=b.dimensions,
                             dps={"w": np.asarray(b.dps["w"]).reshape(3, 1),
                                  "rgb": b.dps["rgb"]})
    with load(concatenate([a, b2], tmp_path / "o.trx")) as out:
        assert out.dps["w"].shape == (5,)
        assert_arrays_equal(out.dps["w"], _stack(a, b, key="w", table="dps"))


def test_space_mismatch_names_the_input_and_how(tmp_path: Path) -> None:
    a = make_trx(2, seed=1)
    near = make_trx(2, seed=2, affine=AFFINE + 1e-4)
    far = make_trx(2, seed=3, affine=AFFINE + np.diag([0.5, 0, 0, 0]))
    dims = make_trx(2, seed=4, dims=(1, 2, 3))
    concatenate([a, near], tmp_path / "ok.trx")  # within atol
    with pytest.raises(ValueError, match=r"input 2 \(in memory\) is not in the space of "
                                         r"input 0.*VOXEL_TO_RASMM differs by up to 0.5"):
        concatenate([a, near, far], tmp_path / "x.trx")
    concatenate([a, far], tmp_path / "loose.trx", atol=1.0)
    with pytest.raises(ValueError, match=r"input 1.*DIMENSIONS \[1, 2, 3\] instead of "
                                         r"\[30, 40, 50\]"):
        concatenate([a, dims], tmp_path / "x.trx")


def test_group_by_input_names(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    folder = tmp_path / "sub-03"
    save(make_trx(2, seed=3), folder)
    out = concatenate([*pair, folder], tmp_path / "pop.trx", group_by_input=True,
                      delete_groups=True)
    with load(out) as back:
        assert _groups(back) == {"sub-01_AF_L": [0, 1, 2, 3, 4], "sub-02_AF_L": [5, 6, 7, 8],
                                 "sub-03": [9, 10]}
    out = concatenate(pair, tmp_path / "named.trx", group_by_input=True,
                      group_names=["s1", "s2"])
    with load(out) as back:
        assert sorted(back.groups) == ["A", "B", "s1", "s2"]
        assert _groups(back)["s2"] == [5, 6, 7, 8]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"group_names": ["A", "s2"]}, r"\['A'\] already exist"),
    ({"group_names": ["s", "s"]}, r"same group name\(s\) \['s'\]"),
    ({"group_names": ["s"]}, "1 names for 2 inputs"),
    ({"group_names": ["a/b", "c"]}, "invalid group name"),
])
def test_group_by_input_name_errors(pair: tuple[Path, Path], tmp_path: Path, kwargs: dict,
                                    match: str) -> None:
    with pytest.raises(ValueError, match=match):
        concatenate(pair, tmp_path / "x.trx", group_by_input=True, **kwargs)


def test_group_names_need_group_by_input_and_stems_must_differ(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = save(make_trx(2), tmp_path / "a" / "bundle.trx")
    b = save(make_trx(2, seed=1), tmp_path / "b" / "bundle.trx")
    with pytest.raises(ValueError, match="only used with group_by_input"):
        concatenate([a, b], tmp_path / "x.trx", group_names=["x", "y"])
    with pytest.raises(ValueError, match=r"\['bundle'\]; pass unique group_names"):
        concatenate([a, b], tmp_path / "x.trx", group_by_input=True)
    concatenate([a, b], tmp_path / "x.trx")  # no groups asked for: fine


def test_widest_dtypes_unless_given(tmp_path: Path) -> None:
    a = make_trx(2, seed=1, positions_dtype="<f2")
    b = make_trx(2, seed=2)
    with load(concatenate([a, b], tmp_path / "w.trx")) as out:
        assert out.positions_dtype == np.dtype("<f4")
        assert_arrays_equal(out.positions, np.concatenate(
            [a.positions.astype("<f4"), b.positions]))
    a32 = load(save(a, tmp_path / "a32.trx", offsets_dtype="uint32"))
    b64 = load(save(b, tmp_path / "b64.trx", offsets_dtype="uint64"))
    with a32, b64:
        with load(concatenate([a32, a32], tmp_path / "o32.trx")) as out:
            assert out.offsets.dtype == np.dtype("<u4")
        with load(concatenate([a32, b64], tmp_path / "o64.trx")) as out:
            assert out.offsets.dtype == np.dtype("<u8")
        out = concatenate([a32, b64], tmp_path / "given.trx", positions_dtype="float64",
                          offsets_dtype="uint32", compression="deflate")
        with zipfile.ZipFile(out) as zf:
            assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
        with load(out) as back:
            assert back.positions_dtype == np.dtype("<f8") and back.offsets.dtype == "<u4"
    with pytest.raises(ValueError, match="positions dtype must be one of"):
        concatenate([a, b], tmp_path / "bad.trx", positions_dtype="int32")


def test_zero_streamline_inputs(tmp_path: Path) -> None:
    a = make_trx(3, seed=1, groups={"A": [1]})
    empty = TrxFile.from_arrays(np.zeros((0, 3), "<f8"), lengths=[], affine=AFFINE,
                                dimensions=a.dimensions, groups={"Z": []})
    out = concatenate([empty, a, empty], tmp_path / "o.trx", group_by_input=True,
                      group_names=["e1", "a", "e2"])
    with load(out) as back:
        assert len(back) == 3 and sorted(back.dps) == ["rgb", "w"]  # empty lacks them: fine
        assert back.positions_dtype == np.dtype("<f4")  # the empty float64 does not widen
        assert _groups(back) == {"A": [1], "Z": [], "a": [0, 1, 2], "e1": [], "e2": []}
        assert_arrays_equal(back.positions, a.positions)
    with load(concatenate([empty, empty], tmp_path / "none.trx")) as back:
        assert len(back) == 0 and back.nb_vertices == 0 and _groups(back) == {"Z": []}
    with pytest.raises(ValueError, match="no inputs"):
        concatenate([], tmp_path / "x.trx")


def test_chunked_pass_is_deterministic_and_refuses_its_input(pair: tuple[Path, Path],
                                                            tmp_path: Path,
                                                            monkeypatch) -> None:
    mod = concatenating
    first = tree_bytes(concatenate(pair, tmp_path / "one.trx"))
    monkeypatch.setattr(mod, "CHUNK_VERTICES", 3)  # many chunks per input
    monkeypatch.setattr(mod, "_BLOCK", 2)
    with load(pair[0]) as a:
        view = a.select([4, 1, 0])
        chunked = concatenate([pair[0], view, pair[1]], tmp_path / "many.trx")
        whole = concatenate([pair[0], view, pair[1]], tmp_path / "many2.trx")
    assert tree_bytes(concatenate(pair, tmp_path / "one-again.trx")) == first
    with load(chunked) as c, load(pair[0]) as a, load(pair[1]) as b:
        assert_arrays_equal(c.positions, np.concatenate(
            [a.positions, a.select([4, 1, 0]).positions, b.positions]))
        assert _groups(c)["A"] == [0, 3, 7, 10]  # the view's row 0 is at 5 + 2
    assert tree_bytes(chunked) == tree_bytes(whole)
    with pytest.raises(ValueError, match="cannot write over input 0"):
        concatenate(pair, pair[0])


# ----------------------------------------------------- per-input group selection, sampling
@pytest.fixture
def subjects(tmp_path: Path) -> list[Path]:
    """Three subject files with groups AF (every other streamline) and CST, different sizes."""
    out = []
    for i, n in enumerate((9, 12, 7)):
        u4 = np.dtype("<u4")
        trx = make_trx(n, seed=10 + i, groups={"AF": np.arange(0, n, 2, dtype=u4),
                                               "CST": np.arange(1, n, 2, dtype=u4)})
        out.append(save(trx, tmp_path / f"sub-0{i + 1}.trx"))
    return out


@pytest.mark.parametrize("nb", [None, 3, "min"])
def test_groups_and_sampling_give_the_bytes_of_select_then_resize_files(
        subjects: list[Path], tmp_path: Path, nb: int | str | None) -> None:
    # the population step used to write SelectGroup(keep_groups=False) and ResizeTrx(random)
    # files per subject, then concatenate them: the views give the same streamlines, bytes
    staged = []
    for i, path in enumerate(subjects):
        with load(path) as trx:
            view = trx.get_group("AF")
            view.groups, view.dpg = {}, {}
            staged.append(save(view, tmp_path / f"sel{i}.trx"))
    if nb is not None:
        n = min(len(load(p)) for p in staged) if nb == "min" else nb
        resized = []
        for i, path in enumerate(staged):
            with load(path) as trx:
                resized.append(save(trx.sample(n, seed=5), tmp_path / f"res{i}.trx"))
        staged = resized
    names = ["sub-01", "sub-02", "sub-03"]
    old = concatenate(staged, tmp_path / "old.trx", group_by_input=True, group_names=names)
    new = concatenate(subjects, tmp_path / "new.trx", group_by_input=True, group_names=names,
                      groups="AF", nb_streamlines=nb, seed=5)
    assert new.read_bytes() == old.read_bytes()
    with load(new) as trx:
        sizes = {g: len(i) for g, i in trx.groups.items()}
    assert sizes == ({"sub-01": 5, "sub-02": 6, "sub-03": 4} if nb is None else
                     {s: (3 if nb == 3 else 4) for s in names})


def test_one_group_per_input(subjects: list[Path], tmp_path: Path) -> None:
    out = concatenate(subjects, tmp_path / "o.trx", groups=["AF", "CST", "AF"])
    with load(out) as trx, load(subjects[1]) as second:
        assert len(trx) == 5 + 6 + 4 and not trx.groups
        cst = second.get_group("CST")
        assert_arrays_equal(trx.streamlines[5], cst.streamlines[0])


def test_a_missing_group_names_the_input(subjects: list[Path], tmp_path: Path) -> None:
    with pytest.raises(KeyError, match=r"input 1 \(sub-02.trx\): no group 'UF'.*AF, CST"):
        concatenate(subjects, tmp_path / "o.trx", groups=["AF", "UF", "AF"])
    with pytest.raises(ValueError, match="groups has 2 names for 3 inputs"):
        concatenate(subjects, tmp_path / "o.trx", groups=["AF", "CST"])
    with pytest.raises(ValueError, match=r"cannot draw 5 streamlines from input 2 .*has 4"):
        concatenate(subjects, tmp_path / "o.trx", groups="AF", nb_streamlines=5)
    with pytest.raises(ValueError, match="nb_streamlines must be"):
        concatenate(subjects, tmp_path / "o.trx", nb_streamlines="max")
    assert not (tmp_path / "o.trx").exists()
