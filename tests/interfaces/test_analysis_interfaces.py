"""The analysis nodes run in Nipype: outputs in the node folder, equal to the operations
(hence to dipy), specs pinned (every trait described), TrxInfo's length in mm."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from dipy.tracking.streamline import length
from dipy.tracking.utils import density_map
from nipype.pipeline import engine as pe
from test_auto_specs import check_spec

from trx_nipype.core import load
from trx_nipype.interfaces import (
    DensityMap,
    FilterStreamlines,
    ResampleStreamlines,
    SampleScalarMap,
    TractProfile,
    TrxInfo,
)
from trx_nipype.interfaces._examples import example_trx

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def run(interface: Any, base: Path, **inputs: Any) -> Any:
    node = pe.Node(interface, name="node", base_dir=str(base))
    for key, value in inputs.items():
        setattr(node.inputs, key, value)
    return node.run().outputs


@pytest.fixture
def trx_file(tmp_path: Path) -> str:
    (tmp_path / "data").mkdir()
    return example_trx(tmp_path / "data")


@pytest.fixture
def image(trx_file: str, tmp_path: Path) -> str:
    path = tmp_path / "data" / "fa.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((40, 40, 40)).astype(np.float32),
                             AFFINE), path)
    return str(path)


def test_filter_and_resample_nodes_take_a_tck_and_a_reference(trx_file: str, image: str,
                                                               tmp_path: Path) -> None:
    import warnings

    from trx_nipype.core import convert
    from trx_nipype.core.errors import DataLossWarning

    tck = tmp_path / "data" / "bundle.tck"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataLossWarning)  # its groups, dps and dpv
        convert(trx_file, tck)
    # TCK -> TCK needs no space; TCK -> TRX takes the reference's
    out = run(FilterStreamlines(), tmp_path / "f", in_file=str(tck), out_filename="kept.tck")
    assert out.nb_streamlines == 6
    out = run(FilterStreamlines(), tmp_path / "g", in_file=str(tck), reference=image,
              include=[image])
    with load(out.out_file) as got:
        np.testing.assert_array_equal(got.affine, AFFINE)
    out = run(ResampleStreamlines(), tmp_path / "r", in_file=str(tck), nb_points=4,
              reference=image)
    assert out.nb_vertices == 24
    with pytest.raises(ValueError, match=r"bundle\.tck: \.tck files carry no space.*"
                                         r"give reference= "):
        ResampleStreamlines(in_file=str(tck), nb_points=4).run(cwd=str(tmp_path))


def test_filter_node(trx_file: str, tmp_path: Path) -> None:
    out = run(FilterStreamlines(), tmp_path / "w", in_file=trx_file, dps_ranges=["weight::0.5"],
              out_filename="kept.trk")
    assert out.out_file == str(tmp_path / "w" / "node" / "kept.trk")
    assert Path(out.out_file).read_bytes()[:5] == b"TRACK"
    assert (out.nb_streamlines, out.nb_removed) == (3, 3)


def test_density_node_equals_dipy(trx_file: str, image: str, tmp_path: Path) -> None:
    out = run(DensityMap(), tmp_path / "w", in_file=trx_file, reference=image, binary=False)
    with load(trx_file) as trx:
        expected = density_map([np.array(s) for s in trx.streamlines], AFFINE, (40, 40, 40))
    np.testing.assert_array_equal(np.asarray(nib.load(out.out_file).dataobj), expected)
    assert out.nb_voxels == np.count_nonzero(expected)


def test_sample_profile_resample_nodes(trx_file: str, image: str, tmp_path: Path) -> None:
    sampled = run(SampleScalarMap(), tmp_path / "s", in_file=trx_file, image=image, name="FA")
    with load(sampled.out_file) as trx:
        assert (sampled.dpv_key, sampled.dps_key) == ("FA", "FA_mean")
        assert np.asarray(trx.dpv["FA"]).dtype == np.float32
    prof = run(TractProfile(), tmp_path / "p", in_file=sampled.out_file, image=image,
               nb_points=5, metric="FA", out_filename="profiles.tsv")
    with open(prof.out_file, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert prof.tracts == ["AF", "CST"] and len(rows) == 10
    assert {r["metric"] for r in rows} == {"FA"}
    res = run(ResampleStreamlines(), tmp_path / "r", in_file=trx_file, step=1.0)
    with load(trx_file) as src, load(res.out_file) as got:
        mm = length([np.array(s, np.float64) for s in src.streamlines])
        assert got.lengths.tolist() == (np.ceil(mm / 1.0).astype(int) + 1).tolist()
        assert res.nb_vertices == got.nb_vertices
    with pytest.raises(ValueError, match="set nb_points or step"):
        ResampleStreamlines(in_file=trx_file).run(cwd=str(tmp_path))


def test_trx_info_gives_lengths_in_mm(trx_file: str, tmp_path: Path) -> None:
    out = run(TrxInfo(), tmp_path / "w", in_file=trx_file)
    with load(trx_file) as trx:
        mm = length([np.array(s, np.float64) for s in trx.streamlines])
    assert (out.length_mm_min, out.length_mm_max) == (round(mm.min(), 3), round(mm.max(), 3))
    assert out.length_mm_mean == round(mm.mean(), 3)


def test_specs_pinned() -> None:
    path = dict(trait_type="TrxPath", exists=True, mandatory=True, trx_hash=True)
    out_trx = dict(trait_type="TrxPath", exists=True, trx_hash=True)
    check_spec(FilterStreamlines.input_spec, dict(
        in_file=path, min_length=dict(trait_type="Float"), max_length=dict(trait_type="Float"),
        include=dict(trait_type="InputMultiObject"), exclude=dict(trait_type="InputMultiObject"),
        roi_mode=dict(trait_type="Enum", values=("any", "endpoints"), default="any",
                      usedefault=True),
        dps_ranges=dict(trait_type="List"), reference=dict(trait_type="File", exists=True),
        out_filename=dict(trait_type="Str")))
    check_spec(FilterStreamlines.output_spec, dict(
        out_file=out_trx, nb_streamlines=dict(trait_type="Int"),
        nb_removed=dict(trait_type="Int")))
    check_spec(DensityMap.input_spec, dict(
        in_file=path, reference=dict(trait_type="File", exists=True),
        group_names=dict(trait_type="List"),
        binary=dict(trait_type="Bool", default=False, usedefault=True),
        out_filename=dict(trait_type="Str")))
    check_spec(DensityMap.output_spec, dict(
        out_file=dict(trait_type="File", exists=True), nb_streamlines=dict(trait_type="Int"),
        nb_voxels=dict(trait_type="Int")))
    check_spec(SampleScalarMap.input_spec, dict(
        in_file=path, image=dict(trait_type="File", exists=True, mandatory=True),
        name=dict(trait_type="Str", mandatory=True), out_filename=dict(trait_type="Str")))
    check_spec(SampleScalarMap.output_spec, dict(
        out_file=out_trx, dpv_key=dict(trait_type="Str"), dps_key=dict(trait_type="Str")))
    check_spec(TractProfile.input_spec, dict(
        in_file=path, image=dict(trait_type="File", exists=True, mandatory=True),
        nb_points=dict(trait_type="Range", default=100, usedefault=True),
        group_names=dict(trait_type="List"), metric=dict(trait_type="Str"),
        out_filename=dict(trait_type="Str")))
    check_spec(TractProfile.output_spec, dict(
        out_file=dict(trait_type="File", exists=True), tracts=dict(trait_type="List")))
    check_spec(ResampleStreamlines.input_spec, dict(
        in_file=path, nb_points=dict(trait_type="Range", xor=["step"]),
        step=dict(trait_type="Range", xor=["nb_points"]),
        drop_dpv=dict(trait_type="Bool", default=False, usedefault=True),
        reference=dict(trait_type="File", exists=True), out_filename=dict(trait_type="Str")))
    check_spec(ResampleStreamlines.output_spec, dict(
        out_file=out_trx, nb_vertices=dict(trait_type="Int")))
