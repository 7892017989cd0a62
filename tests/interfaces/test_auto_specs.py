"""Spec tests in the style of Nipype's generated ``test_auto_*.py``: every trait's metadata pinned.

Besides Nipype's per-key check, each test pins the *set* of traits (nothing
added or removed unnoticed), the trait type, ``exists`` for paths, enum
values and defaults, and that every trait has a ``desc``.
"""

from __future__ import annotations

from typing import Any

from nipype.interfaces.base.traits_extension import BasePath

from trx_nipype.interfaces import (
    AssembleBundles,
    ConcatenateTrx,
    ConvertTractogram,
    ConvertTractograms,
    LoadTrx,
    ResizeTrx,
    SelectGroup,
    SplitGroups,
    TractogramReportlet,
    TrxInfo,
)

_SPECIAL = ("trait_type", "exists", "values", "default")


def check_spec(spec: Any, expected: dict[str, dict[str, Any]]) -> None:
    traits = {k: v for k, v in spec().traits().items()
              if k not in ("trait_added", "trait_modified")}
    assert sorted(traits) == sorted(expected)
    for key, metadata in expected.items():
        trait = traits[key]
        assert trait.desc, f"{key} has no desc"
        for metakey, value in metadata.items():
            if metakey == "trait_type":
                assert type(trait.trait_type).__name__ == value, key
            elif metakey == "exists":
                assert isinstance(trait.trait_type, BasePath)
                assert trait.trait_type.exists == value, key
            elif metakey == "values":
                assert tuple(trait.trait_type.values) == value, key
            elif metakey == "default":
                assert trait.usedefault and trait.default == value, key
            else:
                assert getattr(trait, metakey) == value, (key, metakey)
        for metakey in ("mandatory", "usedefault", "xor", "requires", "trx_hash"):
            if metakey not in metadata:
                assert not getattr(trait, metakey), f"{key}.{metakey} is not pinned"


def test_ConcatenateTrx_inputs() -> None:
    input_map = dict(
        compression=dict(
            default='stored',
            trait_type='Enum',
            usedefault=True,
            values=('stored', 'deflate'),
        ),
        delete_dps=dict(
            default=False,
            trait_type='Bool',
            usedefault=True,
        ),
        delete_dpv=dict(
            default=False,
            trait_type='Bool',
            usedefault=True,
        ),
        delete_groups=dict(
            default=False,
            trait_type='Bool',
            usedefault=True,
        ),
        group_by_input=dict(
            default=False,
            trait_type='Bool',
            usedefault=True,
        ),
        group_names=dict(
            trait_type='List',
        ),
        groups=dict(
            trait_type='TraitCompound',
        ),
        in_files=dict(
            mandatory=True,
            trait_type='InputMultiObject',
            trx_hash=True,
        ),
        nb_streamlines=dict(
            trait_type='TraitCompound',
        ),
        offsets_dtype=dict(
            trait_type='Enum',
            values=('uint32', 'uint64'),
        ),
        out_filename=dict(
            trait_type='Str',
        ),
        positions_dtype=dict(
            trait_type='Enum',
            values=('float16', 'float32', 'float64'),
        ),
        reference=dict(
            exists=True,
            extensions=None,
            trait_type='File',
            trx_hash=True,
        ),
        seed=dict(
            default=0,
            trait_type='Int',
            usedefault=True,
        ),
    )
    check_spec(ConcatenateTrx.input_spec, input_map)


def test_ConcatenateTrx_outputs() -> None:
    output_map = dict(
        group_names=dict(
            trait_type='List',
        ),
        nb_streamlines=dict(
            trait_type='Int',
        ),
        out_file=dict(
            exists=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        out_groups=dict(
            trait_type='List',
        ),
    )
    check_spec(ConcatenateTrx.output_spec, output_map)


def test_ConvertTractogram_inputs() -> None:
    input_map = dict(
        bbox_check=dict(
            default=True,
            trait_type='Bool',
            usedefault=True,
        ),
        compression=dict(
            default='stored',
            trait_type='Enum',
            usedefault=True,
            values=('stored', 'deflate'),
        ),
        in_file=dict(
            exists=True,
            mandatory=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        keep_outside=dict(
            default=True,
            trait_type='Bool',
            usedefault=True,
        ),
        out_filename=dict(
            mandatory=True,
            trait_type='Str',
            xor=['out_format', 'out_filename'],
        ),
        out_format=dict(
            mandatory=True,
            trait_type='Enum',
            values=('trx', 'trx_dir', 'trk', 'tck', 'vtk', 'vtp', 'fib', 'dpy'),
            xor=['out_format', 'out_filename'],
        ),
        positions_dtype=dict(
            trait_type='Enum',
            values=('float16', 'float32', 'float64'),
        ),
        reference=dict(
            exists=True,
            extensions=None,
            trait_type='File',
            trx_hash=True,
        ),
    )
    check_spec(ConvertTractogram.input_spec, input_map)


def test_ConvertTractogram_outputs() -> None:
    output_map = dict(
        out_file=dict(
            exists=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        out_groups=dict(
            trait_type='List',
        ),
    )
    check_spec(ConvertTractogram.output_spec, output_map)


def test_LoadTrx_inputs() -> None:
    input_map = dict(
        in_file=dict(
            exists=True,
            mandatory=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        reference=dict(
            exists=True,
            extensions=None,
            trait_type='File',
            trx_hash=True,
        ),
    )
    check_spec(LoadTrx.input_spec, input_map)


def test_LoadTrx_outputs() -> None:
    output_map = dict(
        affine=dict(
            trait_type='List',
        ),
        dimensions=dict(
            trait_type='List',
        ),
        dps_keys=dict(
            trait_type='List',
        ),
        dpv_keys=dict(
            trait_type='List',
        ),
        group_names=dict(
            trait_type='List',
        ),
        nb_streamlines=dict(
            trait_type='Int',
        ),
        nb_vertices=dict(
            trait_type='Int',
        ),
        out_file=dict(
            exists=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
    )
    check_spec(LoadTrx.output_spec, output_map)


def test_ResizeTrx_inputs() -> None:
    input_map = dict(
        in_file=dict(
            exists=True,
            mandatory=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        nb_streamlines=dict(
            trait_type='Range',
        ),
        out_filename=dict(
            trait_type='Str',
        ),
        random=dict(
            default=False,
            trait_type='Bool',
            usedefault=True,
        ),
        reference=dict(
            exists=True,
            extensions=None,
            trait_type='File',
            trx_hash=True,
        ),
        seed=dict(
            default=0,
            trait_type='Int',
            usedefault=True,
        ),
    )
    check_spec(ResizeTrx.input_spec, input_map)


def test_ResizeTrx_outputs() -> None:
    output_map = dict(
        nb_streamlines=dict(
            trait_type='Int',
        ),
        out_file=dict(
            exists=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        out_groups=dict(
            trait_type='List',
        ),
    )
    check_spec(ResizeTrx.output_spec, output_map)


def test_SelectGroup_inputs() -> None:
    input_map = dict(
        group_names=dict(
            mandatory=True,
            trait_type='TraitCompound',
        ),
        in_file=dict(
            exists=True,
            mandatory=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        keep_groups=dict(
            default=False,  # issue 16 item 11: the selection alone, by default
            trait_type='Bool',
            usedefault=True,
        ),
        out_filename=dict(
            trait_type='Str',
        ),
    )
    check_spec(SelectGroup.input_spec, input_map)


def test_SelectGroup_outputs() -> None:
    output_map = dict(
        nb_streamlines=dict(
            trait_type='Int',
        ),
        out_file=dict(
            exists=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        out_groups=dict(
            trait_type='List',
        ),
    )
    check_spec(SelectGroup.output_spec, output_map)


def test_SplitGroups_inputs() -> None:
    input_map = dict(
        in_file=dict(
            exists=True,
            mandatory=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        out_format=dict(
            default='trx',
            trait_type='Enum',
            usedefault=True,
            values=('trx', 'trx_dir', 'trk', 'tck', 'vtk', 'vtp', 'fib', 'dpy'),
        ),
        reference=dict(
            exists=True,
            extensions=None,
            trait_type='File',
            trx_hash=True,
        ),
    )
    check_spec(SplitGroups.input_spec, input_map)


def test_SplitGroups_outputs() -> None:
    output_map = dict(
        group_names=dict(
            trait_type='List',
        ),
        out_files=dict(
            trait_type='OutputMultiObject',
        ),
    )
    check_spec(SplitGroups.output_spec, output_map)


def test_TrxInfo_inputs() -> None:
    input_map = dict(
        in_file=dict(
            exists=True,
            mandatory=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        out_filename=dict(
            trait_type='Str',
        ),
        reference=dict(
            exists=True,
            extensions=None,
            trait_type='File',
            trx_hash=True,
        ),
    )
    check_spec(TrxInfo.input_spec, input_map)


def test_TrxInfo_outputs() -> None:
    output_map = dict(
        container=dict(
            trait_type='Str',
        ),
        dps_keys=dict(
            trait_type='List',
        ),
        dpv_keys=dict(
            trait_type='List',
        ),
        group_names=dict(
            trait_type='List',
        ),
        group_sizes=dict(
            trait_type='List',
        ),
        length_mm_max=dict(
            trait_type='Float',
        ),
        length_mm_mean=dict(
            trait_type='Float',
        ),
        length_mm_min=dict(
            trait_type='Float',
        ),
        nb_streamlines=dict(
            trait_type='Int',
        ),
        nb_vertices=dict(
            trait_type='Int',
        ),
        out_json=dict(
            exists=True,
            extensions=None,
            trait_type='File',
        ),
        positions_dtype=dict(
            trait_type='Str',
        ),
    )
    check_spec(TrxInfo.output_spec, output_map)


def test_TractogramReportlet_inputs() -> None:
    input_map = dict(
        figure=dict(
            default='projections',
            trait_type='Enum',
            usedefault=True,
            values=('projections', 'lengths'),
        ),
        in_file=dict(
            exists=True,
            mandatory=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
        max_streamlines=dict(
            default=3000,
            trait_type='Range',
            usedefault=True,
        ),
        out_filename=dict(
            trait_type='Str',
        ),
        reference=dict(
            exists=True,
            trait_type='File',
        ),
        seed=dict(
            default=0,
            trait_type='Int',
            usedefault=True,
        ),
        title=dict(
            trait_type='Str',
        ),
    )
    check_spec(TractogramReportlet.input_spec, input_map)


def test_TractogramReportlet_outputs() -> None:
    output_map = dict(
        out_report=dict(
            exists=True,
            trait_type='File',
        ),
    )
    check_spec(TractogramReportlet.output_spec, output_map)


def test_AssembleBundles_inputs() -> None:
    input_map = dict(
        bundle_names=dict(
            trait_type='List',
        ),
        compression=dict(
            default='stored',
            trait_type='Enum',
            usedefault=True,
            values=('stored', 'deflate'),
        ),
        delete_dps=dict(
            default=False,
            trait_type='Bool',
            usedefault=True,
        ),
        delete_dpv=dict(
            default=False,
            trait_type='Bool',
            usedefault=True,
        ),
        in_files=dict(
            mandatory=True,
            trait_type='InputMultiObject',
            trx_hash=True,
        ),
        out_filename=dict(
            trait_type='Str',
        ),
        reference=dict(
            exists=True,
            trait_type='File',
            trx_hash=True,
        ),
    )
    check_spec(AssembleBundles.input_spec, input_map)


def test_AssembleBundles_outputs() -> None:
    output_map = dict(
        group_names=dict(
            trait_type='List',
        ),
        nb_streamlines=dict(
            trait_type='Int',
        ),
        out_file=dict(
            exists=True,
            trait_type='TrxPath',
            trx_hash=True,
        ),
    )
    check_spec(AssembleBundles.output_spec, output_map)


def test_ConvertTractograms_inputs() -> None:
    input_map = dict(
        bbox_check=dict(
            default=True,
            trait_type='Bool',
            usedefault=True,
        ),
        compression=dict(
            default='stored',
            trait_type='Enum',
            usedefault=True,
            values=('stored', 'deflate'),
        ),
        in_files=dict(
            mandatory=True,
            trait_type='InputMultiObject',
            trx_hash=True,
        ),
        keep_outside=dict(
            default=True,
            trait_type='Bool',
            usedefault=True,
        ),
        out_format=dict(
            mandatory=True,
            trait_type='Enum',
            values=('trx', 'trx_dir', 'trk', 'tck', 'vtk', 'vtp', 'fib', 'dpy'),
        ),
        positions_dtype=dict(
            trait_type='Enum',
            values=('float16', 'float32', 'float64'),
        ),
        reference=dict(
            exists=True,
            trait_type='File',
            trx_hash=True,
        ),
    )
    check_spec(ConvertTractograms.input_spec, input_map)


def test_ConvertTractograms_outputs() -> None:
    output_map = dict(
        out_files=dict(
            trait_type='OutputMultiObject',
        ),
        out_groups=dict(
            trait_type='List',
        ),
    )
    check_spec(ConvertTractograms.output_spec, output_map)
