"""AssembleBundles, ConvertTractograms and ConcatenateTrx(groups): a subject's files in one node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_interfaces import node_dir, reference_nifti, run_node, user_files

from trx_nipype.core import load
from trx_nipype.interfaces import (
    AssembleBundles,
    ConcatenateTrx,
    ConvertTractogram,
    ConvertTractograms,
)
from trx_nipype.interfaces._examples import example_trx

pytestmark = pytest.mark.filterwarnings("ignore:.*cannot hold:UserWarning")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def test_assemble_mixed_formats_one_group_per_file(data: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    trx = example_trx(data, "CST_R.trx", dpg=False)
    trk = run_node(ConvertTractogram(), work, "to_trk", in_file=example_trx(data, "AF.trx",
                                                                            seed=2, dpg=False),
                   out_format="trk").outputs.out_file
    tck = run_node(ConvertTractogram(), work, "to_tck", in_file=trx,
                   out_format="tck").outputs.out_file
    out = run_node(AssembleBundles(delete_dps=True, delete_dpv=True), work, "assemble",
                   in_files=[trk, trx, tck], bundle_names=["AF_L", "CST_R", "UF"],
                   reference=reference_nifti(data), out_filename="sub-01.trx").outputs
    assert out.out_file == str(node_dir(work, "assemble") / "sub-01.trx")
    assert out.nb_streamlines == 18
    assert out.group_names == ["AF", "AF_L", "CST", "CST_R", "UF"]
    with load(out.out_file) as got, load(trx) as src:
        assert got.groups["CST_R"].tolist() == list(range(6, 12))
        np.testing.assert_allclose(got.get_group("UF").positions, src.positions, atol=1e-4)


def test_assemble_failure_names_the_file_and_leaves_nothing(data: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    tck = run_node(ConvertTractogram(), work, "to_tck", in_file=example_trx(data),
                   out_format="tck").outputs.out_file
    with pytest.raises(Exception, match=r"bundle\.tck: \.tck files carry no space"):
        run_node(AssembleBundles(), work, "assemble", in_files=[example_trx(data, "a.trx"),
                                                                tck])
    assert user_files(node_dir(work, "assemble")) == []


def test_convert_many_in_one_node(data: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    files = [example_trx(data, "a.trx", dpg=False), example_trx(data, "b", seed=1, dpg=False)]
    out = run_node(ConvertTractograms(), work, "convert", in_files=files,
                   out_format="trk").outputs
    folder = node_dir(work, "convert")
    assert out.out_files == [str(folder / "a.trk"), str(folder / "b.trk")]
    assert out.out_groups == [f"{f}.groups.json" for f in out.out_files]
    # declared, so Nipype's cleanup of undeclared files keeps them
    assert user_files(folder) == ["a.trk", "a.trk.groups.json", "b.trk", "b.trk.groups.json"]


def test_convert_many_failure_leaves_no_partial_list(data: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    good = example_trx(data, "a.trx", dpg=False)
    broken = Path(example_trx(data, "broken"))
    (broken / "positions.3.float32").write_bytes(b"\0" * 5)
    with pytest.raises(Exception, match="positions"):
        run_node(ConvertTractograms(), work, "convert", in_files=[good, str(broken)],
                 out_format="tck")
    assert user_files(node_dir(work, "convert")) == []
    with pytest.raises(Exception, match=r"several inputs would be written as \['a.tck'\]"):
        run_node(ConvertTractograms(), work, "dupes",
                 in_files=[good, example_trx(data / "..", "a.trx")], out_format="tck")


def test_concatenate_groups_sampled_per_input(data: Path, tmp_path: Path) -> None:
    a, b = example_trx(data, "a.trx"), example_trx(data, "b.trx", seed=3)
    out = run_node(ConcatenateTrx(), tmp_path / "work", in_files=[a, b], groups="AF",
                   nb_streamlines="min", seed=1, group_by_input=True,
                   group_names=["sub-01", "sub-02"]).outputs
    assert out.nb_streamlines == 6 and out.group_names == ["sub-01", "sub-02"]
    with load(out.out_file) as trx, load(a) as src:
        np.testing.assert_array_equal(trx.get_group("sub-01").positions,
                                      src.get_group("AF").sample(3, seed=1).positions)
