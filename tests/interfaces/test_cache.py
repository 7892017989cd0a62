"""Nipype's cache over TRX inputs: reruns exactly when an input changed, under both hash methods.

The workflow, per subject ``i``: ``load<i>`` (LoadTrx) -> ``select<i>``
(SelectGroup); both selections -> ``merge`` -> ``concat`` (ConcatenateTrx).
Subject 0 is a TRX *directory*, subject 1 a ``.trx`` zip. A node "executed"
when its ``result_<node>.pklz`` was rewritten (a cached node only reads it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from nipype import config
from nipype.interfaces.utility import Merge
from nipype.pipeline import engine as pe

from trx_nipype.interfaces import ConcatenateTrx, LoadTrx, SelectGroup
from trx_nipype.interfaces._examples import example_trx
from trx_nipype.interfaces._hashing import STATS, reset_stats

ALL = {"load0", "select0", "load1", "select1", "merge", "concat"}


def build(base: Path, inputs: list[str]) -> pe.Workflow:
    wf = pe.Workflow(name="wf", base_dir=str(base))
    merge = pe.Node(Merge(len(inputs)), name="merge")
    concat = pe.Node(ConcatenateTrx(group_by_input=True), name="concat")
    for i, path in enumerate(inputs):
        load = pe.Node(LoadTrx(in_file=path), name=f"load{i}")
        select = pe.Node(SelectGroup(group_names="AF"), name=f"select{i}")
        wf.connect(load, "out_file", select, "in_file")
        wf.connect(select, "out_file", merge, f"in{i + 1}")
    wf.connect(merge, "out", concat, "in_files")
    return wf


def stamps(base: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for name in ALL:
        result = base / "wf" / name / f"result_{name}.pklz"
        if result.exists():
            st = result.stat()
            out[name] = (st.st_ino, st.st_mtime_ns)
    return out


def run(base: Path, inputs: list[str], plugin: str = "Linear") -> set[str]:
    """Run the workflow (a fresh graph, as a new session would); return the nodes executed."""
    before = stamps(base)
    args = {} if plugin == "Linear" else {"n_procs": 2}
    build(base, inputs).run(plugin=plugin, plugin_args=args)
    after = stamps(base)
    return {name for name in after if before.get(name) != after[name]}


def change_member_in_place(path: Path) -> None:
    """Rewrite one member's bytes (same size, same inode) and move its mtime on."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[:4] = bytes(b ^ 0x5A for b in data[:4])
    with open(path, "r+b") as fh:
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    data = tmp_path / "data"
    data.mkdir()
    return [example_trx(data, "sub-01"), example_trx(data, "sub-02.trx", seed=1)]


@pytest.mark.usefixtures("no_racy_window")
@pytest.mark.parametrize("method", ["timestamp", "content"])
def test_reruns_exactly_what_changed(tmp_path: Path, inputs: list[str], method: str) -> None:
    config.set("execution", "hash_method", method)
    base = tmp_path / "work"
    assert run(base, inputs) == ALL

    reset_stats()
    assert run(base, inputs) == set()
    assert STATS["bytes_read"] == 0  # a cached rerun re-reads no TRX data, whatever the method

    change_member_in_place(Path(inputs[0]) / "dps" / "weight.float32")
    assert run(base, inputs) == {"load0", "select0", "merge", "concat"}
    assert run(base, inputs) == set()

    upstream = base / "wf" / "select0" / "sub-01_AF.trx"  # read by concat, never written
    kept = (upstream.stat().st_ino, upstream.stat().st_mtime_ns, upstream.read_bytes())
    example_trx(Path(inputs[1]).parent, "sub-02.trx", seed=9)  # same path, new content
    assert run(base, inputs) == {"load1", "select1", "merge", "concat"}
    assert run(base, inputs) == set()
    assert (upstream.stat().st_ino, upstream.stat().st_mtime_ns, upstream.read_bytes()) == kept


@pytest.mark.parametrize("method", ["timestamp", "content"])
def test_zip_changed_in_place(tmp_path: Path, inputs: list[str], method: str) -> None:
    """Bytes of a stored zip rewritten in place (same inode, same size) rerun its nodes."""
    config.set("execution", "hash_method", method)
    base = tmp_path / "work"
    assert run(base, inputs) == ALL
    zipped = Path(inputs[1])
    data = bytearray(zipped.read_bytes())
    at = data.index(b"positions.3.float32") + 200  # inside the positions
    data[at] ^= 0x01
    st = zipped.stat()
    with open(zipped, "r+b") as fh:
        fh.write(data)
    os.utime(zipped, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert run(base, inputs) == {"load1", "select1", "merge", "concat"}
    assert run(base, inputs) == set()


def test_content_cache_without_racy_shortcut_is_still_exact(tmp_path: Path,
                                                            inputs: list[str]) -> None:
    """Files younger than the racy window are re-read, never trusted from the cache."""
    config.set("execution", "hash_method", "content")
    base = tmp_path / "work"
    assert run(base, inputs) == ALL
    change_member_in_place(Path(inputs[0]) / "positions.3.float32")
    assert run(base, inputs) == {"load0", "select0", "merge", "concat"}


@pytest.mark.usefixtures("no_racy_window")
def test_multiproc_workers_share_the_digest_cache(tmp_path: Path, inputs: list[str],
                                                  digest_cache: Path) -> None:
    config.set("execution", "hash_method", "content")
    base = tmp_path / "work"
    assert run(base, inputs, plugin="MultiProc") == ALL
    assert list(digest_cache.glob("digests-v*/*/*.json"))
    change_member_in_place(Path(inputs[0]) / "dpv" / "fa.float32")
    assert run(base, inputs, plugin="MultiProc") == {"load0", "select0", "merge", "concat"}
    assert run(base, inputs, plugin="MultiProc") == set()


@pytest.mark.parametrize("method", ["timestamp", "content"])
def test_mapnode_over_trx_directories(tmp_path: Path, inputs: list[str], method: str) -> None:
    """A MapNode hashes its iterfield through a list of the trait *type*: still member-wise."""
    config.set("execution", "hash_method", method)
    dirs = [inputs[0], example_trx(Path(inputs[0]).parent, "sub-03", seed=3)]
    base = tmp_path / "work"

    def run_map() -> set[str]:
        node = pe.MapNode(SelectGroup(group_names="CST"), iterfield=["in_file"], name="sel",
                          base_dir=str(base))
        node.inputs.in_file = dirs
        folder = base / "sel" / "mapflow"
        before = {p.parent.name: p.stat().st_mtime_ns for p in folder.glob("*/result_*.pklz")}
        node.run()
        after = {p.parent.name: p.stat().st_mtime_ns for p in folder.glob("*/result_*.pklz")}
        return {k for k, v in after.items() if before.get(k) != v}

    assert run_map() == {"_sel0", "_sel1"}
    assert run_map() == set()
    change_member_in_place(Path(dirs[1]) / "positions.3.float32")
    assert run_map() == {"_sel1"}
