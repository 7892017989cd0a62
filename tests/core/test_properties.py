"""Property-based round trips (hypothesis): any small tractogram, any dtype, any container;
views (``select`` with unsorted/repeated indices, ``get_group``) against numpy."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trx_test_helpers import assert_arrays_equal, assert_trx_equal, tree_bytes

from trx_nipype.core import TrxFile, load, save
from trx_nipype.core.dtypes import DTYPES, INTEGER_DTYPES

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
TARGETS = [("stored", "t.trx"), ("deflate", "t.trx"), ("stored", "t_dir")]
# names as real files have them: spaces, dots (never a trailing ".<digits>", which the
# format reads as a column count, nor a leading dot, which a directory hides)
NAMES = st.sampled_from(["w", "a b", "a.b", "effect   ", "x_1", "FA"])


def _values(dtype: np.dtype, shape: tuple[int, ...]) -> st.SearchStrategy:
    if dtype.kind == "f":
        return hnp.arrays(dtype, shape, elements=st.floats(-1e3, 1e3, width=dtype.itemsize * 8))
    return hnp.arrays(dtype, shape)


@st.composite
def per_item(draw: Any, rows: int) -> dict[str, np.ndarray]:
    out = {}
    for name in draw(st.lists(NAMES, max_size=2, unique=True)):
        dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
        ncols = draw(st.sampled_from([None, 1, 3]))
        out[name] = draw(_values(dtype, (rows,) if ncols is None else (rows, ncols)))
    return out


@st.composite
def tractograms(draw: Any) -> TrxFile:
    lengths = draw(st.lists(st.integers(0, 5), max_size=8))
    n, v = len(lengths), sum(lengths)
    pos_dtype = DTYPES[draw(st.sampled_from(["float16", "float32", "float64"]))]
    positions = draw(_values(pos_dtype, (v, 3)))
    offsets_dtype = DTYPES[draw(st.sampled_from(["uint32", "uint64"]))]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(offsets_dtype)
    if n and lengths[-1] and draw(st.booleans()):
        # N entries, as some writers give (ambiguous, and so not used, when the last
        # streamline is empty: then only N+1 offsets or lengths say how many there are)
        offsets = offsets[:-1]
    groups, dpg = {}, {}
    for name in draw(st.lists(st.sampled_from(["CST", "AF L", "O.R"]), max_size=3,
                              unique=True)):
        members = draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=n, unique=True)) \
            if n else []
        dtype = DTYPES[draw(st.sampled_from(INTEGER_DTYPES))]
        groups[name] = np.array(members, dtype=dtype)
        if draw(st.booleans()):
            k = draw(st.integers(1, 3))
            dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
            dpg[name] = {"mean": draw(_values(dtype, (k,)))}
    affine = np.diag([draw(st.floats(0.5, 3.0)), 1.0, 2.0, 1.0])
    affine[:3, 3] = draw(st.lists(st.floats(-100, 100), min_size=3, max_size=3))
    return TrxFile.from_arrays(positions, offsets, affine=affine,
                               dimensions=draw(st.lists(st.integers(1, 300), min_size=3,
                                                        max_size=3)),
                               dps=draw(per_item(n)), dpv=draw(per_item(v)), groups=groups,
                               dpg=dpg, header={"EXTRA": draw(st.text(max_size=5))})


@SETTINGS
@given(trx=tractograms(), target=st.sampled_from(TARGETS))
def test_round_trip(tmp_path: Path, trx: TrxFile, target: tuple[str, str]) -> None:
    compression, name = target
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        out = Path(d) / name
        save(trx, out, compression=compression)
        with load(out) as back:
            assert_trx_equal(back, trx)
            assert back.header["EXTRA"] == trx.header["EXTRA"]
            assert back.positions.dtype == trx.positions_dtype
            assert back.offsets.dtype == trx.offsets_dtype
            # saved again from the loaded file: the same bytes
            again = Path(d) / ("again" + out.suffix)
            save(back, again, compression=compression)
        assert tree_bytes(again) == tree_bytes(out)


def _expected_view(trx: TrxFile, idx: np.ndarray) -> dict[str, Any]:
    """What a selection must contain, computed with plain numpy."""
    offsets = np.asarray(trx.offsets, np.int64)
    vertex_rows = [np.arange(offsets[i], offsets[i + 1]) for i in idx]
    vidx = np.concatenate(vertex_rows).astype(np.int64) if len(idx) else np.zeros(0, np.int64)
    groups = {}
    for g, members in trx.groups.items():
        new = [j for j, i in enumerate(idx) if i in set(np.asarray(members).tolist())]
        if new:
            groups[g] = np.array(new, np.uint32)
    return {
        "positions": np.asarray(trx.positions)[vidx],
        "lengths": np.asarray(trx.lengths)[idx],
        "dps": {k: np.asarray(a)[idx] for k, a in trx.dps.items()},
        "dpv": {k: np.asarray(a)[vidx] for k, a in trx.dpv.items()},
        "groups": groups,
        "dpg": {g: dict(t) for g, t in trx.dpg.items() if g in groups},
    }


def _check_view(view: TrxFile, want: dict[str, Any]) -> None:
    assert_arrays_equal(view.positions, want["positions"], "positions")
    assert view.lengths.tolist() == want["lengths"].tolist()
    assert view.offsets.tolist() == [0, *np.cumsum(want["lengths"]).tolist()]
    for label in ("dps", "dpv", "groups"):
        table = getattr(view, label)
        assert sorted(table) == sorted(want[label]), label
        for key, arr in want[label].items():
            assert_arrays_equal(table[key], arr, f"{label}/{key}")
    assert sorted(view.dpg) == sorted(want["dpg"])
    for g, table in want["dpg"].items():
        for key, arr in table.items():
            assert_arrays_equal(view.dpg[g][key], arr, f"dpg/{g}/{key}")


@SETTINGS
@given(trx=tractograms(), data=st.data(), target=st.sampled_from(TARGETS))
def test_views_saved_and_reloaded(tmp_path: Path, trx: TrxFile, data: Any,
                                  target: tuple[str, str]) -> None:
    compression, name = target
    n = len(trx)
    idx = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=10) if n
                             else st.just([])), dtype=np.int64)
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        src = Path(d) / ("src" + Path(name).suffix)
        save(trx, src, compression=compression)
        with load(src) as loaded:
            want = _expected_view(trx, idx)
            _check_view(trx.select(idx), want)  # in memory
            view = loaded.select(idx)  # over the maps of a file
            _check_view(view, want)
            out = Path(d) / ("view" + Path(name).suffix)
            save(view, out, compression=compression)
            with load(out) as back:
                _check_view(back, want)
            for base in (trx, loaded):
                for group in base.groups:
                    members = np.flatnonzero(np.isin(np.arange(n), base.groups[group]))
                    gview = base.get_group(group)
                    gwant = _expected_view(trx, members)
                    _check_view(gview, gwant)
                    if base is loaded:
                        save(gview, out, compression=compression)
                        with load(out) as back:
                            _check_view(back, gwant)
