"""TractogramReportlet in a user's workflow: select a bundle, draw it."""

from __future__ import annotations

from pathlib import Path

import pytest
from nipype.pipeline import engine as pe
from PIL import Image

from trx_nipype.interfaces import SelectGroup, TractogramReportlet
from trx_nipype.interfaces._examples import example_trx
from trx_nipype.reports.figures import tractogram_figure
from trx_nipype.workflows import run_workflow


def _workflow(in_file: str, name: str = "qc_wf") -> pe.Workflow:
    wf = pe.Workflow(name=name)
    select = pe.Node(SelectGroup(in_file=in_file, group_names="AF"), name="select")
    projections = pe.Node(TractogramReportlet(max_streamlines=50, seed=2), name="projections")
    lengths = pe.Node(TractogramReportlet(figure="lengths", title="AF"), name="lengths")
    wf.connect([(select, projections, [("out_file", "in_file")]),
                (select, lengths, [("out_file", "in_file")])])
    return wf


def test_reportlets_in_a_workflow(tmp_path: Path) -> None:
    src = example_trx(tmp_path, nb_streamlines=300)
    report = run_workflow(_workflow(src), tmp_path / "work")
    assert report.ok, [f.line() for f in report.failures]
    node_dir = tmp_path / "work" / "qc_wf"
    png = next((node_dir / "projections").glob("*_projections.png"))
    svg = next((node_dir / "lengths").glob("*_lengths.svg"))
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 300
    assert b"<svg" in svg.read_bytes() and b">AF<" in svg.read_bytes()  # the title
    # the node's figure is the module function's, byte for byte
    selected = next((node_dir / "select").glob("*.trx"))
    expected = tractogram_figure(selected, tmp_path / "expected.png", max_streamlines=50,
                                 seed=2)
    assert png.read_bytes() == expected.read_bytes()
    # a second run is cached: nothing is drawn again
    again = run_workflow(_workflow(src), tmp_path / "work")
    assert again.ok and again.ran == []


def test_reportlet_out_filename_picks_the_format(tmp_path: Path) -> None:
    src = example_trx(tmp_path)
    res = TractogramReportlet(in_file=src, out_filename="bundle.svg").run(cwd=str(tmp_path))
    assert Path(res.outputs.out_report).read_bytes().startswith(b"<?xml")
    with pytest.raises(ValueError, match="must be .png or .svg"):
        TractogramReportlet(in_file=src, out_filename="bundle.pdf").run(cwd=str(tmp_path))
