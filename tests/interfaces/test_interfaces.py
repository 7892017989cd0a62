"""Behaviour of each interface, run inside real ``nipype.Node`` objects with a ``base_dir``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from nipype.pipeline import engine as pe

from trx_nipype.core import TrxFile, load, save
from trx_nipype.core.operations import split as split_module
from trx_nipype.interfaces import (
    ConcatenateTrx,
    ConvertTractogram,
    LoadTrx,
    ResizeTrx,
    SelectGroup,
    SplitGroups,
    TrxInfo,
)
from trx_nipype.interfaces._examples import EXAMPLE_LENGTHS, example_trx

pytestmark = pytest.mark.filterwarnings("ignore:.*cannot hold:UserWarning")


def run_node(interface: Any, base: Path, name: str = "node", **inputs: Any) -> Any:
    """Run ``interface`` in a Node under ``base``; return its result."""
    node = pe.Node(interface, name=name, base_dir=str(base))
    for key, value in inputs.items():
        setattr(node.inputs, key, value)
    return node.run()


def node_dir(base: Path, name: str = "node") -> Path:
    return base / name


def user_files(folder: Path) -> list[str]:
    """What an interface left in its node folder (Nipype's own files excluded)."""
    skip = ("_0x", "result_", "_inputs.pklz", "_node.pklz", "_report", "_nipype")
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(skip))


def snapshot(path: Path) -> dict[str, tuple[int, int, str]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns,
                     hashlib.sha256(p.read_bytes()).hexdigest()) for p in files}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


def reference_nifti(folder: Path) -> str:
    path = folder / "ref.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((40, 40, 40), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0])),
             path)
    return str(path)


# ------------------------------------------------------------------ LoadTrx
@pytest.mark.parametrize("name", ["bundle.trx", "bundle"])
def test_load_hands_a_valid_trx_on(data: Path, work: Path, name: str) -> None:
    path = example_trx(data, name)
    before = snapshot(Path(path))
    out = run_node(LoadTrx(), work, in_file=path).outputs
    assert out.out_file == os.path.abspath(path)
    assert user_files(node_dir(work)) == []  # nothing copied
    assert (out.nb_streamlines, out.nb_vertices) == (6, sum(EXAMPLE_LENGTHS))
    assert out.group_names == ["AF", "CST"]
    assert (out.dps_keys, out.dpv_keys) == (["weight"], ["fa"])
    assert out.affine == np.diag([2.0, 2.0, 2.0, 1.0]).tolist()
    assert out.dimensions == [40, 40, 40]
    assert snapshot(Path(path)) == before


def test_load_converts_other_formats(data: Path, work: Path) -> None:
    trk = run_node(ConvertTractogram(), work, "to_trk", in_file=example_trx(data, dpg=False),
                   out_format="trk").outputs.out_file
    out = run_node(LoadTrx(), work, "load", in_file=trk).outputs
    assert out.out_file == str(node_dir(work, "load") / "bundle.trx")
    assert out.nb_streamlines == 6 and out.dimensions == [40, 40, 40]
    with load(out.out_file) as trx, load(example_trx(data, "again.trx")) as ref:
        np.testing.assert_allclose(trx.positions, ref.positions, atol=1e-3)


def test_load_tck_needs_a_reference(data: Path, work: Path) -> None:
    tck = run_node(ConvertTractogram(), work, "to_tck", in_file=example_trx(data),
                   out_format="tck").outputs.out_file
    with pytest.raises(Exception, match="reference"):
        run_node(LoadTrx(), work, "noref", in_file=tck)
    assert user_files(node_dir(work, "noref")) == []
    out = run_node(LoadTrx(), work, "withref", in_file=tck,
                   reference=reference_nifti(data)).outputs
    assert out.nb_streamlines == 6 and out.affine[0][0] == 2.0


@pytest.mark.parametrize("name", ["bundle.trx", "bundle.trk"])
def test_load_checks_a_trx_or_trk_against_its_reference(data: Path, work: Path,
                                                        name: str) -> None:
    """The reference of a file that carries a space must match it (as its docs say)."""
    path = example_trx(data, "bundle.trx", dpg=False)
    if name.endswith(".trk"):
        path = run_node(ConvertTractogram(), work, "to_trk", in_file=path,
                        out_format="trk").outputs.out_file
    elsewhere = data / "elsewhere.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 10), np.uint8), np.eye(4)), elsewhere)
    with pytest.raises(Exception, match=rf"{Path(path).name}: its space .*differs from the "
                                        r"reference's .*elsewhere\.nii\.gz"):
        run_node(LoadTrx(), work, "bad", in_file=path, reference=str(elsewhere))
    out = run_node(LoadTrx(), work, "good", in_file=path, reference=reference_nifti(data))
    assert out.outputs.nb_streamlines == 6
    assert "which it must match" in LoadTrx.input_spec().trait("reference").desc


def test_load_rejects_a_broken_trx(data: Path, work: Path) -> None:
    path = Path(example_trx(data, "broken"))
    member = path / "positions.3.float32"
    member.write_bytes(member.read_bytes()[:-12])
    with pytest.raises(Exception, match="positions.3.float32"):
        run_node(LoadTrx(), work, in_file=str(path))


# ------------------------------------------------------------------ ConcatenateTrx
def test_concatenate_with_groups_by_input(data: Path, work: Path) -> None:
    a, b = example_trx(data, "a.trx"), example_trx(data, "b", seed=3)
    out = run_node(ConcatenateTrx(), work, in_files=[a, b], group_by_input=True,
                   group_names=["first", "second"], positions_dtype="float16").outputs
    # named after what it holds (issue 16 item 11; it was a_concat.trx, after the first input)
    assert out.out_file == str(node_dir(work) / "first+second_concat.trx")
    assert out.nb_streamlines == 12
    assert out.group_names == ["AF", "CST", "first", "second"]
    with load(out.out_file) as trx:
        assert trx.positions_dtype == np.float16
        assert trx.groups["second"].tolist() == list(range(6, 12))


def test_concatenate_options(data: Path, work: Path) -> None:
    a, b = example_trx(data, "a.trx"), example_trx(data, "b.trx")
    save(TrxFile.from_arrays(np.ones((4, 3), np.float32), lengths=[2, 2],
                             dps={"other": np.zeros(2, np.int16)},
                             affine=np.diag([2.0, 2.0, 2.0, 1.0]), dimensions=(40, 40, 40)),
         data / "c.trx")
    c = str(data / "c.trx")
    with pytest.raises(Exception, match="weight"):
        run_node(ConcatenateTrx(), work, "mismatch", in_files=[a, c], delete_dpv=True)
    out = run_node(ConcatenateTrx(), work, "plain", in_files=[a, c], delete_dps=True,
                   delete_dpv=True, delete_groups=True, out_filename="merged",
                   offsets_dtype="uint32").outputs
    assert Path(out.out_file).is_dir() and out.out_file.endswith("merged")
    assert out.group_names == [] and out.nb_streamlines == 8
    with load(out.out_file) as trx:
        assert list(trx.dps) == [] and list(trx.dpv) == []
        assert trx.offsets_dtype == np.uint32
    with pytest.raises(Exception, match="group_by_input"):
        run_node(ConcatenateTrx(), work, "names", in_files=[a, b], group_names=["x", "y"])
    with pytest.raises(Exception, match="2 inputs"):
        run_node(ConcatenateTrx(), work, "count", in_files=[a, b], group_by_input=True,
                 group_names=["x"])
    with pytest.raises(Exception, match="without a folder"):
        run_node(ConcatenateTrx(), work, "folder", in_files=[a, b], out_filename="../x.trx")


# ------------------------------------------------------------------ SelectGroup
def test_select_group(data: Path, work: Path) -> None:
    path = example_trx(data)
    out = run_node(SelectGroup(), work, "cst", in_file=path, group_names="CST",
                   keep_groups=True).outputs  # the default is False since issue 16 item 11
    assert out.out_file == str(node_dir(work, "cst") / "bundle_CST.trx")
    assert out.nb_streamlines == 3
    with load(out.out_file) as trx, load(path) as src:
        assert trx.lengths.tolist() == src.lengths[1::2].tolist()
        assert trx.groups["CST"].tolist() == [0, 1, 2] and "AF" not in trx.groups

    both = run_node(SelectGroup(), work, "both", in_file=path, group_names=["AF", "CST"],
                    keep_groups=False).outputs
    assert both.nb_streamlines == 6
    with load(both.out_file) as trx:
        assert trx.groups == {} and trx.dpg == {}


def test_select_missing_group_leaves_nothing(data: Path, work: Path) -> None:
    path = example_trx(data)
    run_node(SelectGroup(), work, in_file=path, group_names="AF", out_filename="out.trx")
    assert user_files(node_dir(work)) == ["out.trx"]
    with pytest.raises(Exception, match="no group 'nope'"):  # same node folder, same output
        run_node(SelectGroup(), work, in_file=path, group_names="nope", out_filename="out.trx")
    assert user_files(node_dir(work)) == []


def test_failure_outside_a_node_removes_the_previous_output(data: Path, tmp_path: Path) -> None:
    path = example_trx(data)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    SelectGroup(in_file=path, group_names="AF", out_filename="out.trx").run(cwd=str(cwd))
    assert (cwd / "out.trx").exists()
    with pytest.raises(KeyError):
        SelectGroup(in_file=path, group_names="nope", out_filename="out.trx").run(cwd=str(cwd))
    assert not (cwd / "out.trx").exists()


def test_output_never_overwrites_an_input(data: Path) -> None:
    path = example_trx(data, "bundle.trx")
    before = snapshot(Path(path))
    with pytest.raises(ValueError, match="overwrite the input"):
        ConvertTractogram(in_file=path, out_format="trx").run(cwd=str(data))
    assert snapshot(Path(path)) == before


# ------------------------------------------------------------------ ResizeTrx
def test_resize_trims_capacity(data: Path, work: Path) -> None:
    trx = TrxFile.from_arrays(np.ones((5, 3), np.float32), lengths=[3, 2, 0, 0])
    save(trx, data / "padded.trx")
    out = run_node(ResizeTrx(), work, in_file=str(data / "padded.trx")).outputs
    assert out.nb_streamlines == 2
    assert out.out_file == str(node_dir(work) / "padded_resized.trx")


def test_resize_first_and_random(data: Path, work: Path) -> None:
    path = example_trx(data, nb_streamlines=20)
    first = run_node(ResizeTrx(), work, "first", in_file=path, nb_streamlines=5).outputs
    with load(first.out_file) as trx:
        assert trx.lengths.tolist() == list(np.resize(EXAMPLE_LENGTHS, 5))
    picks = []
    for i, seed in enumerate((7, 7, 8)):
        out = run_node(ResizeTrx(), work, f"random{i}", in_file=path, nb_streamlines=5,
                       random=True, seed=seed).outputs
        assert out.nb_streamlines == 5
        with load(out.out_file) as trx:
            picks.append(np.asarray(trx.dps["weight"]).tolist())
    assert picks[0] == picks[1] != picks[2]
    assert picks[0] == sorted(picks[0])  # file order kept
    expected = np.sort(np.random.default_rng(7).choice(20, 5, replace=False))
    assert picks[0] == np.linspace(0, 1, 20, dtype=np.float32)[expected].tolist()


def test_resize_errors(data: Path, work: Path) -> None:
    path = example_trx(data)
    with pytest.raises(Exception, match="random=True needs nb_streamlines"):
        run_node(ResizeTrx(), work, "noval", in_file=path, random=True)
    out = run_node(ResizeTrx(), work, "norandom", in_file=path, random=False).outputs
    assert out.nb_streamlines == 6  # random=False spelled out: trim capacity, keep all
    with pytest.raises(Exception, match="cannot draw 9"):
        run_node(ResizeTrx(), work, "toomany", in_file=path, nb_streamlines=9, random=True)


# ------------------------------------------------------------------ ConvertTractogram
@pytest.mark.parametrize(("fmt", "name"), [("trk", "bundle.trk"), ("tck", "bundle.tck"),
                                           ("trx_dir", "bundle")])
def test_convert_formats(data: Path, work: Path, fmt: str, name: str) -> None:
    out = run_node(ConvertTractogram(), work, in_file=example_trx(data), out_format=fmt,
                   reference=reference_nifti(data)).outputs
    assert out.out_file == str(node_dir(work) / name)
    back = run_node(LoadTrx(), work, "back", in_file=out.out_file,
                    reference=reference_nifti(data)).outputs
    assert back.nb_streamlines == 6


def test_convert_options_and_xor(data: Path, work: Path) -> None:
    trk = run_node(ConvertTractogram(), work, "trk", in_file=example_trx(data, dpg=False),
                   out_filename="custom.trk").outputs.out_file
    assert trk.endswith("custom.trk")
    out = run_node(ConvertTractogram(), work, "trx", in_file=trk, out_format="trx",
                   positions_dtype="float64", compression="deflate").outputs
    with load(out.out_file) as trx:
        assert trx.positions_dtype == np.float64 and len(trx) == 6
    with pytest.raises(ValueError, match="requires a value for one of the inputs"):
        run_node(ConvertTractogram(), work, "none", in_file=trk)
    with pytest.raises(OSError, match="mutually exclusive"):
        run_node(ConvertTractogram(), work, "both", in_file=trk, out_format="trx",
                 out_filename="x.trx")


# ------------------------------------------------------------------ TrxInfo
def test_info(data: Path, work: Path) -> None:
    out = run_node(TrxInfo(), work, in_file=example_trx(data, "bundle")).outputs
    assert out.out_json == str(node_dir(work) / "bundle_info.json")
    info = json.loads(Path(out.out_json).read_text(encoding="utf-8"))
    assert info["container"] == out.container == "directory"
    assert (out.nb_streamlines, out.group_sizes, out.positions_dtype) == (6, [3, 3], "float32")
    assert {g: list(t) for g, t in info["dpg"].items()} == {"AF": ["color"]}
    assert info["points_per_streamline"]["max"] == max(EXAMPLE_LENGTHS)


# ------------------------------------------------------------------ SplitGroups
def test_split_groups(data: Path, work: Path) -> None:
    path = example_trx(data)
    out = run_node(SplitGroups(), work, "trx", in_file=path).outputs
    assert out.group_names == ["AF", "CST"]
    assert out.out_files == [str(node_dir(work, "trx") / f"bundle_{g}.trx")
                             for g in ("AF", "CST")]
    with load(out.out_files[1]) as trx:
        assert len(trx) == 3
    trk = run_node(SplitGroups(), work, "trk", in_file=path, out_format="trk").outputs
    assert [Path(f).name for f in trk.out_files] == ["bundle_AF.trk", "bundle_CST.trk"]


def test_split_names_are_safe_and_unique(data: Path, work: Path) -> None:
    trx = TrxFile.from_arrays(np.ones((4, 3), np.float32), lengths=[2, 2],
                              groups={"a:b": [0], "a b": [1], "A_B": [0, 1]})
    save(trx, data / "odd.trx")
    out = run_node(SplitGroups(), work, in_file=str(data / "odd.trx")).outputs
    assert out.group_names == ["A_B", "a b", "a:b"]
    assert [Path(f).name for f in out.out_files] == ["odd_A_B.trx", "odd_a_b-2.trx",
                                                     "odd_a_b-3.trx"]


def test_split_failure_removes_what_it_wrote(data: Path, work: Path, monkeypatch) -> None:
    calls = []
    real = split_module.write_tractogram  # the interface calls the operation, which writes

    def failing(trx: Any, output: Any, **kw: Any) -> Any:
        calls.append(output.path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(trx, output, **kw)

    monkeypatch.setattr(split_module, "write_tractogram", failing)
    with pytest.raises(Exception, match="disk full"):
        run_node(SplitGroups(), work, in_file=example_trx(data))
    assert len(calls) == 2 and user_files(node_dir(work)) == []


def test_split_without_groups_fails(data: Path, work: Path) -> None:
    save(TrxFile.from_arrays(np.ones((2, 3), np.float32), lengths=[2]), data / "plain.trx")
    with pytest.raises(Exception, match="no groups"):
        run_node(SplitGroups(), work, in_file=str(data / "plain.trx"))


# ------------------------------------------------------------------ all of them
def test_inputs_untouched_and_outputs_small(data: Path, work: Path, caplog) -> None:
    folder = example_trx(data, "bundle")
    zipped = example_trx(data, "other.trx", seed=2)
    before = {**snapshot(Path(folder)), **snapshot(Path(zipped))}
    listing = sorted(p.name for p in data.rglob("*"))
    caplog.set_level(logging.INFO, logger="nipype.interface")
    results = [
        run_node(LoadTrx(), work, "a", in_file=folder),
        run_node(ConcatenateTrx(), work, "b", in_files=[folder, zipped]),
        run_node(SelectGroup(), work, "c", in_file=folder, group_names="AF"),
        run_node(ResizeTrx(), work, "d", in_file=zipped, nb_streamlines=2),
        run_node(ConvertTractogram(), work, "e", in_file=folder, out_format="tck"),
        run_node(TrxInfo(), work, "f", in_file=zipped),
        run_node(SplitGroups(), work, "g", in_file=folder),
    ]
    assert {**snapshot(Path(folder)), **snapshot(Path(zipped))} == before
    assert sorted(p.name for p in data.rglob("*")) == listing
    for result in results:
        outputs = result.outputs.get()
        assert len(pickle.dumps(outputs)) < 4096
        for value in outputs.values():
            assert isinstance(value, (str, int, float, list))
    assert {r.name for r in caplog.records} == {"nipype.interface"} or any(
        "SplitGroups" in r.getMessage() for r in caplog.records)
    assert any(r.getMessage().startswith("SplitGroups") for r in caplog.records)


def test_relative_input_and_another_cwd_never_touch_the_input(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths are made absolute when set: running in the input's folder cannot mistake it."""
    data = tmp_path / "data"
    data.mkdir()
    src = Path(example_trx(data, "s1"))
    before = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(src.rglob("*"))
                                     if p.is_file())).hexdigest() if src.is_dir() else \
        hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.chdir(tmp_path)
    rel = os.path.relpath(src, tmp_path)
    with pytest.raises(ValueError, match="would overwrite the input"):
        SelectGroup(in_file=rel, group_names="AF", out_filename=src.name).run(cwd=str(data))
    res = SelectGroup(in_file=rel, group_names="AF").run(cwd=str(data))
    assert Path(res.outputs.out_file).parent == data and src.exists()
    after = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(src.rglob("*"))
                                    if p.is_file())).hexdigest() if src.is_dir() else \
        hashlib.sha256(src.read_bytes()).hexdigest()
    assert after == before
