"""Re-indexing many groups at once (``GroupIndex``, ``TrxFile.group_views``): the same views
as one ``get_group`` per group, computed in one pass (issue 18 item 8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trx_nipype.core import TrxFile, load, save
from trx_nipype.core.trxfile import MASKED_GROUPS, GroupIndex


def masked_reindex(groups: dict[str, np.ndarray], n: int, idx: np.ndarray) -> dict:
    """The definition: position j of the selection is in G if idx[j] was (one mask per group)."""
    out = {}
    for name, members in groups.items():
        mask = np.zeros(n, dtype=bool)
        mask[np.asarray(members, dtype=np.int64)] = True
        new = np.flatnonzero(mask[idx])
        if new.size:
            out[name] = new.tolist()
    return out


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_group_index_equals_one_mask_per_group(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 30))
    names = data.draw(st.lists(st.text(min_size=1, max_size=3), max_size=8, unique=True))
    groups = {g: np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=12)),
                          dtype=np.uint32) for g in names}  # overlaps and repeats allowed
    idx = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=40)), dtype=np.int64)
    got = GroupIndex(groups, n).reindex(idx, np.dtype("<u4"))
    assert {g: v.tolist() for g, v in got.items()} == masked_reindex(groups, n, idx)
    assert list(got) == [g for g in names if g in got]  # the groups' order is kept


def many_groups(n_groups: int, per: int = 3, overlap: bool = True) -> TrxFile:
    """``n_groups`` groups of ``per`` streamlines, each also in a few wide overlapping groups."""
    n = n_groups * per
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 6, n)
    groups = {f"g{i:05d}": np.arange(i * per, (i + 1) * per, dtype=np.uint32)
              for i in range(n_groups)}
    if overlap:
        groups["even"] = np.arange(0, n, 2, dtype=np.uint32)
        groups["tail"] = np.arange(n // 2, n, dtype=np.uint32)
    return TrxFile.from_arrays(rng.normal(size=(int(lengths.sum()), 3)).astype("<f4"),
                               lengths=lengths, groups=groups,
                               dps={"w": np.arange(n, dtype="<f4")},
                               dpg={"even": {"c": np.array([1, 2, 3], "u1")}})


def test_group_views_are_get_group(tmp_path: Path) -> None:
    save(many_groups(300), tmp_path / "many.trx")
    with load(tmp_path / "many.trx") as trx:
        assert len(trx.groups) > MASKED_GROUPS  # select takes the GroupIndex path too
        names = ["g00000", "g00157", "even", "tail", "g00299"]
        for name, view in trx.group_views(names):
            ref = trx.get_group(name)
            assert view.lengths.tolist() == ref.lengths.tolist()
            assert np.asarray(view.dps["w"]).tolist() == np.asarray(ref.dps["w"]).tolist()
            assert {g: v.tolist() for g, v in view.groups.items()} == \
                {g: v.tolist() for g, v in ref.groups.items()}
            assert sorted(view.dpg) == sorted(ref.dpg)
        # and get_group itself equals the definition (one mask per group)
        ref = trx.get_group("tail")
        idx = np.flatnonzero(np.isin(np.arange(len(trx)), trx.groups["tail"]))
        assert {g: v.tolist() for g, v in ref.groups.items()} == \
            masked_reindex(trx.groups, len(trx), idx)


def test_group_views_keep_empty_and_missing(tmp_path: Path) -> None:
    trx = many_groups(20)
    try:
        next(trx.group_views(["g00001", "nope"]))
    except KeyError as exc:
        assert "no group 'nope'" in str(exc) and "g00001" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a missing group must raise before the first view")
    view = trx.select([3, 3, 0], keep_empty_groups=True)
    assert list(view.groups) == list(trx.groups)  # every group, in order, empty ones too
    assert view.groups["g00001"].tolist() == [0, 1] and view.groups["g00000"].tolist() == [2]
