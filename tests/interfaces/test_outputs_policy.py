"""Interfaces: TRK group sidecars through Nipype (issue 16 item 1), every readable input
(item 3), the format from ``out_filename`` (item 4), the defaults (item 11), and never
replacing the user's data (issue 18 item 4)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nibabel as nib
import pytest
from nipype.interfaces.io import DataSink
from nipype.interfaces.utility import IdentityInterface
from nipype.pipeline import engine as pe
from trx_test_helpers import real_tractograms, tree_bytes

from trx_nipype.core import convert, load
from trx_nipype.core.formats.trk_groups import groups_sidecar_path as sidecar_path
from trx_nipype.interfaces import (
    ConcatenateTrx,
    ConvertTractogram,
    ResizeTrx,
    SelectGroup,
    SplitGroups,
    TrxInfo,
)
from trx_nipype.interfaces._examples import example_trx

pytestmark = pytest.mark.filterwarnings("ignore:.*cannot hold:UserWarning")
REAL = dict(real_tractograms())


def groups_of_trk(path: Path, tmp: Path) -> dict[str, int]:
    """The groups a TRK carries (through its sidecar), read back by converting it."""
    back = tmp / f"{path.stem}-back.trx"
    convert(path, back)
    with load(back) as trx:
        return {g: len(i) for g, i in trx.groups.items()}


# ------------------------------------------------------------- 16.1: the groups sidecar
def test_trk_group_names_survive_cleanup_and_a_datasink(tmp_path: Path) -> None:
    """Only out_file is connected: Nipype's clean-up kept, and the DataSink copied, the
    TRK alone, so the viewer saw meaningless trx_group values."""
    src = example_trx(tmp_path, "sub-01.trx", dpg=False)
    wf = pe.Workflow(name="wf", base_dir=str(tmp_path / "work"))
    inputnode = pe.Node(IdentityInterface(fields=["in_file"]), name="inputnode")
    inputnode.inputs.in_file = src
    to_trk = pe.Node(ConvertTractogram(out_format="trk"), name="to_trk")
    select = pe.Node(SelectGroup(group_names=["AF", "CST"], keep_groups=True,
                                 out_filename="both.trk"), name="select")
    sink = pe.Node(DataSink(base_directory=str(tmp_path / "out")), name="sink")
    wf.connect([(inputnode, to_trk, [("in_file", "in_file")]),
                (inputnode, select, [("in_file", "in_file")]),
                (to_trk, sink, [("out_file", "converted")]),
                (select, sink, [("out_file", "selected")])])
    wf.config["execution"]["remove_unnecessary_outputs"] = True
    wf.run()
    for trk in (tmp_path / "out" / "converted" / "sub-01.trk",
                tmp_path / "out" / "selected" / "both.trk"):
        assert trk.is_file() and sidecar_path(trk).is_file(), sorted(trk.parent.iterdir())
        assert groups_of_trk(trk, tmp_path) == {"AF": 3, "CST": 3}
    kept = tmp_path / "work" / "wf" / "to_trk" / "sub-01.trk"
    assert sidecar_path(kept).is_file()  # kept in the node folder by the clean-up too


def test_trk_outputs_declare_their_sidecar(tmp_path: Path) -> None:
    src = example_trx(tmp_path, dpg=False)
    outs = [ConvertTractogram(in_file=src, out_format="trk").run(cwd=str(tmp_path)).outputs,
            ResizeTrx(in_file=src, nb_streamlines=4, out_filename="r.trk").run(
                cwd=str(tmp_path)).outputs,
            ConcatenateTrx(in_files=[src, src], group_by_input=True, group_names=["a", "b"],
                           out_filename="c.trk").run(cwd=str(tmp_path)).outputs]
    for out in outs:
        assert out.out_groups == [str(sidecar_path(out.out_file))]
        assert Path(out.out_groups[0]).is_file()
    plain = ConvertTractogram(in_file=src, out_format="tck").run(cwd=str(tmp_path)).outputs
    assert plain.out_groups == []


# ------------------------------------------------------------- 16.3, 16.4: formats
def test_operations_take_a_trk_and_write_the_format_asked(tmp_path: Path) -> None:
    trk = REAL["dipy/tracks300.trk"]
    n = len(nib.streamlines.load(str(trk)).streamlines)
    res = ResizeTrx(in_file=str(trk), nb_streamlines=5, out_filename="five.tck").run(
        cwd=str(tmp_path)).outputs
    assert Path(res.out_file).is_file() and res.out_file.endswith("five.tck")
    assert len(nib.streamlines.load(res.out_file).streamlines) == 5
    cat = ConcatenateTrx(in_files=[str(trk), str(trk)], out_filename="twice.trk").run(
        cwd=str(tmp_path)).outputs
    assert Path(cat.out_file).is_file() and cat.nb_streamlines == 2 * n
    grouped = tmp_path / "grouped.trk"
    convert(example_trx(tmp_path, dpg=False), grouped)
    sel = SelectGroup(in_file=str(grouped), group_names="AF").run(cwd=str(tmp_path)).outputs
    assert sel.nb_streamlines == 3 and sel.out_file.endswith("grouped_AF.trx")
    split = SplitGroups(in_file=str(grouped), out_format="tck").run(cwd=str(tmp_path)).outputs
    assert [Path(f).name for f in split.out_files] == ["grouped_AF.tck", "grouped_CST.tck"]


# ------------------------------------------------------------- 16.11: defaults
def test_defaults_that_pipelines_expect(tmp_path: Path) -> None:
    subjects = [example_trx(tmp_path, f"sub-0{i}.trx", seed=i) for i in (1, 2)]
    selected = [SelectGroup(in_file=s, group_names="AF").run(cwd=str(tmp_path)).outputs.out_file
                for s in subjects]
    pop = ConcatenateTrx(in_files=selected, group_by_input=True,
                         group_names=["sub-01", "sub-02"]).run(cwd=str(tmp_path)).outputs
    # one group per subject, and no extra "AF" group beside them
    assert pop.group_names == ["sub-01", "sub-02"]
    assert Path(pop.out_file).name == "sub-01+sub-02_concat.trx"  # what it holds
    bundles = [example_trx(tmp_path, f"{b}.trx") for b in ("AF_L", "CST_R")]
    cat = ConcatenateTrx(in_files=bundles, delete_groups=True).run(cwd=str(tmp_path)).outputs
    assert Path(cat.out_file).name == "AF_L+CST_R_concat.trx"  # it was AF_L_concat.trx
    info = TrxInfo(in_file=str(REAL["nibabel/standard.tck"])).run(cwd=str(tmp_path)).outputs
    assert info.nb_streamlines == len(
        nib.streamlines.load(str(REAL["nibabel/standard.tck"])).streamlines)


# ------------------------------------------------------------- 18.4: the user's data
@pytest.mark.parametrize("interface", ["select", "convert", "resize", "info"])
def test_a_folder_of_user_files_named_as_the_output_is_kept(tmp_path: Path,
                                                            interface: str) -> None:
    (tmp_path / "in").mkdir()
    src = example_trx(tmp_path / "in", "b.trx")
    cwd = tmp_path / "node"
    (cwd / "results").mkdir(parents=True)
    (cwd / "results" / "mine.txt").write_text("precious", encoding="utf-8")
    node: Any = {
        "select": SelectGroup(in_file=src, group_names="AF", out_filename="results"),
        "convert": ConvertTractogram(in_file=src, out_filename="results"),
        "resize": ResizeTrx(in_file=src, out_filename="results"),
        "info": TrxInfo(in_file=src, out_filename="results"),
    }[interface]
    with pytest.raises(FileExistsError, match="results"):
        node.run(cwd=str(cwd))
    assert (cwd / "results" / "mine.txt").read_text(encoding="utf-8") == "precious"


def test_a_default_name_that_hits_a_user_file_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    src = example_trx(tmp_path / "in", "notes.trx")
    cwd = tmp_path / "node"
    cwd.mkdir()
    for name, node in (("notes", ConvertTractogram(in_file=src, out_format="trx_dir")),
                       ("notes_info.json", TrxInfo(in_file=src)),
                       ("notes_AF.trx", SelectGroup(in_file=src, group_names="AF"))):
        (cwd / name).write_text("my notes", encoding="utf-8")
        with pytest.raises(FileExistsError, match=name):
            node.run(cwd=str(cwd))
        assert (cwd / name).read_text(encoding="utf-8") == "my notes"
    # a previous run's outputs are replaced as before
    (cwd / "notes_AF.trx").unlink()
    first = SelectGroup(in_file=src, group_names="AF").run(cwd=str(cwd)).outputs.out_file
    again = SelectGroup(in_file=src, group_names="CST").run(cwd=str(cwd))
    assert Path(first).is_file() and again.outputs.nb_streamlines == 3
    TrxInfo(in_file=src, out_filename="i.json").run(cwd=str(cwd))
    TrxInfo(in_file=src, out_filename="i.json").run(cwd=str(cwd))  # its own summary: fine


def test_the_input_folder_and_links_are_never_outputs(tmp_path: Path) -> None:
    folder = Path(example_trx(tmp_path, "subject"))  # a TRX folder in the node's folder
    before = tree_bytes(folder)
    with pytest.raises(ValueError, match="overwrite the input"):
        SelectGroup(in_file=str(folder), group_names="AF", out_filename="subject").run(
            cwd=str(tmp_path))
    with pytest.raises(ValueError, match="inside the input TRX folder"):
        SelectGroup(in_file=str(folder), group_names="AF").run(cwd=str(folder))
    data = tmp_path / "results"
    data.mkdir()
    inner = Path(example_trx(data, "in.trx"))
    with pytest.raises(ValueError, match="holds the input"):
        ResizeTrx(in_file=str(inner), out_filename="results").run(cwd=str(tmp_path))
    assert inner.is_file() and tree_bytes(folder) == before
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("precious", encoding="utf-8")
    cwd = tmp_path / "node"
    cwd.mkdir()
    os.symlink(elsewhere, cwd / "linked", target_is_directory=True)
    with pytest.raises(FileExistsError, match="symbolic link"):  # refused, not followed
        SelectGroup(in_file=str(folder), group_names="AF", out_filename="linked").run(
            cwd=str(cwd))
    assert (cwd / "linked").is_symlink()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]
    assert tree_bytes(folder) == before
