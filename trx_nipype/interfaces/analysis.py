"""Tractography analysis nodes: filter, density map, sampling a map, tract profiles, resampling.

Each interface calls one function of :mod:`trx_nipype.core.operations` (the
same one the ``trx-nipype`` command calls) and writes its output in the node's
working directory, atomically. Tractogram outputs take the format of their
``out_filename``'s extension (default ``.trx``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from nipype.interfaces.base import File, InputMultiObject, SimpleInterface, TraitedSpec, traits

from trx_nipype.core.operations.density import density_map
from trx_nipype.core.operations.filtering import ROI_MODES, filter_streamlines
from trx_nipype.core.operations.resampling import resample_streamlines
from trx_nipype.core.operations.scalars import sample_scalar_map, tract_profile

from ._traits import TrxInputSpec, TrxPath, optional, output_path

log = logging.getLogger("nipype.interface")

_REFERENCE = ("reference image (NIfTI): the space of an input without one (TCK...), needed "
              "for a TRX or TRK {}")
_OUT_NAME = ("output name, a bare file name written in the node's directory; its extension "
             "picks the format (.trx zip, none: a TRX folder, .trk, .tck...; default: {})")


# ------------------------------------------------------------------ filter
class _FilterInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True, desc="tractogram to filter")
    min_length = traits.Float(desc="keep streamlines at least this long (mm)")
    max_length = traits.Float(desc="keep streamlines at most this long (mm)")
    include = InputMultiObject(File(exists=True), desc="NIfTI masks on the tractogram's grid: "
                               "keep streamlines that reach every one (nonzero voxels)")
    exclude = InputMultiObject(File(exists=True), desc="NIfTI masks on the tractogram's grid: "
                               "drop streamlines that reach any of them")
    roi_mode = traits.Enum(*ROI_MODES, usedefault=True,
                           desc="'any': some vertex in the mask (dipy.tracking.utils.target); "
                                "'endpoints': the first or last vertex in the mask")
    dps_ranges = traits.List(traits.Str, desc="'KEY:MIN:MAX' bounds (inclusive; a bound may be "
                             "empty) on data per streamline")
    reference = File(exists=True, desc=_REFERENCE.format("output or masks"))
    out_filename = traits.Str(desc=_OUT_NAME.format("<input>_filtered.trx"))


class _FilterOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="the streamlines kept, with their groups (re-indexed, "
                                         "kept even when emptied), dps, dpv and dpg")
    nb_streamlines = traits.Int(desc="streamlines kept")
    nb_removed = traits.Int(desc="streamlines removed")


class FilterStreamlines(SimpleInterface):
    """Keep streamlines by length in mm, by regions of interest, by per-streamline values.

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> res = FilterStreamlines(in_file=example_trx(tmp), dps_ranges=["weight:0.5:"]).run(
    ...     cwd=tmp)
    >>> os.path.basename(res.outputs.out_file), res.outputs.nb_streamlines
    ('bundle_filtered.trx', 3)
    """

    input_spec = _FilterInputSpec
    output_spec = _FilterOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        dest = output_path(self.inputs.in_file, "_filtered", ".trx", self.inputs.out_filename)
        res = filter_streamlines(
            self.inputs.in_file, dest, min_length=optional(self.inputs.min_length),
            max_length=optional(self.inputs.max_length),
            include=optional(self.inputs.include) or (),
            exclude=optional(self.inputs.exclude) or (), roi_mode=self.inputs.roi_mode,
            dps_ranges=optional(self.inputs.dps_ranges) or (),
            reference=optional(self.inputs.reference), overwrite=True)
        self._results.update(out_file=os.fspath(res.out_file), nb_streamlines=res.nb_streamlines,
                             nb_removed=res.nb_input - res.nb_streamlines)
        return runtime


# ------------------------------------------------------------------ density
class _DensityInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True, desc="tractogram")
    reference = File(exists=True, desc="NIfTI image whose grid to count in (default: the "
                                       "tractogram's own grid); also the space of an input "
                                       "without one (TCK...), which needs it")
    group_names = traits.List(traits.Str, desc="count only these groups' streamlines (union)")
    binary = traits.Bool(False, usedefault=True,
                         desc="1 where at least one streamline passes, else 0 (uint8)")
    out_filename = traits.Str(desc="output name, .nii or .nii.gz (default: "
                                   "<input>_density.nii.gz)")


class _DensityOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="streamlines per voxel (int32; uint8 when binary)")
    nb_streamlines = traits.Int(desc="streamlines counted")
    nb_voxels = traits.Int(desc="voxels reached by at least one streamline")


class DensityMap(SimpleInterface):
    """Streamlines per voxel, equal to ``dipy.tracking.utils.density_map``.

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> res = DensityMap(in_file=example_trx(tmp), group_names=["AF"]).run(cwd=tmp)
    >>> os.path.basename(res.outputs.out_file), res.outputs.nb_streamlines
    ('bundle_density.nii.gz', 3)
    """

    input_spec = _DensityInputSpec
    output_spec = _DensityOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        dest = output_path(self.inputs.in_file, "_density", ".nii.gz", self.inputs.out_filename)
        res = density_map(self.inputs.in_file, dest, reference=optional(self.inputs.reference),
                          groups=optional(self.inputs.group_names), binary=self.inputs.binary,
                          overwrite=True)
        self._results.update(out_file=os.fspath(res.out_file), nb_streamlines=res.nb_streamlines,
                             nb_voxels=res.nb_voxels)
        return runtime


# ------------------------------------------------------------------ sample
class _SampleInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True, desc="tractogram")
    image = File(exists=True, mandatory=True,
                 desc="3-D NIfTI image on the tractogram's grid (FA, MD...)")
    name = traits.Str(mandatory=True, desc="key of the new data: dpv <name> (the value at "
                                           "every vertex) and dps <name>_mean")
    out_filename = traits.Str(desc=_OUT_NAME.format("<input>_<name>.trx"))


class _SampleOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="the tractogram with the new dpv and dps")
    dpv_key = traits.Str(desc="the new data-per-vertex key")
    dps_key = traits.Str(desc="the new data-per-streamline key (mean per streamline)")


class SampleScalarMap(SimpleInterface):
    """An image trilinearly interpolated at every vertex (dpv) and its mean per streamline (dps).

    Examples
    --------
    >>> import tempfile
    >>> import nibabel as nib, numpy as np
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> nib.save(nib.Nifti1Image(np.ones((40, 40, 40), np.float32), np.diag([2, 2, 2, 1.0])),
    ...          f"{tmp}/md.nii.gz")
    >>> res = SampleScalarMap(in_file=example_trx(tmp), image=f"{tmp}/md.nii.gz",
    ...                       name="md").run(cwd=tmp)
    >>> os.path.basename(res.outputs.out_file), res.outputs.dps_key
    ('bundle_md.trx', 'md_mean')
    """

    input_spec = _SampleInputSpec
    output_spec = _SampleOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        dest = output_path(self.inputs.in_file, f"_{self.inputs.name}", ".trx",
                           self.inputs.out_filename)
        res = sample_scalar_map(self.inputs.in_file, self.inputs.image, dest,
                                name=self.inputs.name, overwrite=True)
        self._results.update(out_file=os.fspath(res.out_file), dpv_key=res.dpv_key,
                             dps_key=res.dps_key)
        return runtime


# ------------------------------------------------------------------ profile
class _ProfileInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True, desc="tractogram (one tract per group)")
    image = File(exists=True, mandatory=True, desc="3-D NIfTI image on the tractogram's grid")
    nb_points = traits.Range(low=2, value=100, usedefault=True, desc="nodes per profile")
    group_names = traits.List(traits.Str, desc="the groups to profile (default: every group; "
                                               "a file without groups is one tract, 'all')")
    metric = traits.Str(desc="the table's metric column (default: the image's name)")
    out_filename = traits.Str(desc="output name, .csv or .tsv (default: <input>_profile.csv)")


class _ProfileOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="tidy table: tract, node, metric, value, n_streamlines")
    tracts = traits.List(traits.Str, desc="the tracts profiled, in table order")


class TractProfile(SimpleInterface):
    """One N-point profile per group, equal to ``dipy.stats.analysis.afq_profile``
    (``orient_by`` the group's first streamline), as a tidy CSV/TSV.

    Examples
    --------
    >>> import tempfile
    >>> import nibabel as nib, numpy as np
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> nib.save(nib.Nifti1Image(np.ones((40, 40, 40), np.float32), np.diag([2, 2, 2, 1.0])),
    ...          f"{tmp}/fa.nii.gz")
    >>> res = TractProfile(in_file=example_trx(tmp), image=f"{tmp}/fa.nii.gz",
    ...                    nb_points=10).run(cwd=tmp)
    >>> os.path.basename(res.outputs.out_file), res.outputs.tracts
    ('bundle_profile.csv', ['AF', 'CST'])
    """

    input_spec = _ProfileInputSpec
    output_spec = _ProfileOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        dest = output_path(self.inputs.in_file, "_profile", ".csv", self.inputs.out_filename)
        res = tract_profile(self.inputs.in_file, self.inputs.image, dest,
                            nb_points=self.inputs.nb_points,
                            groups=optional(self.inputs.group_names),
                            metric=optional(self.inputs.metric), overwrite=True)
        self._results.update(out_file=os.fspath(res.out_file), tracts=res.tracts)
        return runtime


# ------------------------------------------------------------------ resample
class _ResampleInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True, desc="tractogram")
    nb_points = traits.Range(low=2, xor=["step"],
                             desc="points per streamline (dipy's set_number_of_points)")
    step = traits.Range(low=0.0, exclude_low=True, xor=["nb_points"],
                        desc="largest distance between consecutive points, in mm")
    drop_dpv = traits.Bool(False, usedefault=True,
                           desc="leave data per vertex out (float dpv is interpolated; integer "
                                "dpv cannot be, and is refused unless dropped)")
    reference = File(exists=True, desc=_REFERENCE.format("output"))
    out_filename = traits.Str(desc=_OUT_NAME.format("<input>_resampled.trx"))


class _ResampleOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="the resampled tractogram")
    nb_vertices = traits.Int(desc="vertices of the output")


class ResampleStreamlines(SimpleInterface):
    """Resample streamlines to N points (``set_number_of_points``) or to a step in mm.

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> res = ResampleStreamlines(in_file=example_trx(tmp), nb_points=10).run(cwd=tmp)
    >>> os.path.basename(res.outputs.out_file), res.outputs.nb_vertices
    ('bundle_resampled.trx', 60)
    """

    input_spec = _ResampleInputSpec
    output_spec = _ResampleOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        nb_points, step = optional(self.inputs.nb_points), optional(self.inputs.step)
        if nb_points is None and step is None:
            raise ValueError("ResampleStreamlines: set nb_points or step")
        dest = output_path(self.inputs.in_file, "_resampled", ".trx", self.inputs.out_filename)
        res = resample_streamlines(self.inputs.in_file, dest, nb_points=nb_points, step=step,
                                   drop_dpv=self.inputs.drop_dpv,
                                   reference=optional(self.inputs.reference), overwrite=True)
        self._results.update(out_file=os.fspath(res.out_file), nb_vertices=res.nb_vertices)
        return runtime
