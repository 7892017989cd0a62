"""Tractometry: filter a tractogram, sample a scalar map along it, profile its tracts, map it.

:func:`init_tractometry_wf` chains the analysis nodes of
:mod:`trx_nipype.interfaces.analysis`; :class:`AnalysisSink` exports any result
(tractogram, NIfTI image, table) into a derivatives tree with a JSON sidecar
whose sources are named without the machine's paths. The ready pipeline
``workflows/tractography_pipeline.py`` tracks a DWI with dipy and runs both.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)
from nipype.interfaces.utility import IdentityInterface
from nipype.pipeline import engine as pe

from ..interfaces import DensityMap, FilterStreamlines, SampleScalarMap, TractProfile


def init_tractometry_wf(*, min_length: float | None = None, max_length: float | None = None,
                        roi_mode: str = "any", scalar_name: str = "fa", nb_points: int = 100,
                        groups: Sequence[str] | None = None,
                        name: str = "tractometry_wf") -> pe.Workflow:
    """Filter, sample, profile and map one tractogram (builds only; touches no disk).

    Workflow graph::

        inputnode -> filter (FilterStreamlines) -> sample (SampleScalarMap) -> profile
                                        \\                                   (TractProfile)
                                         -> density (DensityMap)          -> outputnode

    Parameters
    ----------
    min_length, max_length : float, optional
        Bounds on the streamline length in mm kept by ``filter``.
    roi_mode : {"any", "endpoints"}
        How ``include``/``exclude`` masks are reached.
    scalar_name : str
        Key of the sampled map: dpv ``<scalar_name>``, dps ``<scalar_name>_mean``,
        and the profile table's ``metric``.
    nb_points : int
        Nodes per tract profile.
    groups : sequence of str, optional
        Tracts (groups) to profile and map (default: every group / every streamline).
    name : str
        Name of the workflow.

    Inputs (``inputnode``)
    ----------------------
    in_file : str
        A tractogram (TRX, TRK, ...).
    scalar_map : str
        A 3-D NIfTI image on the tractogram's grid (FA, MD...).
    include, exclude : list of str
        NIfTI masks for ``filter`` (default: none).

    Outputs (``outputnode``)
    ------------------------
    filtered : str
        The streamlines kept (TRX).
    sampled : str
        The same, with dpv ``<scalar_name>`` and dps ``<scalar_name>_mean``.
    profiles : str
        The tract profiles (CSV: tract, node, metric, value, n_streamlines).
    density : str
        Streamlines per voxel of the kept streamlines (NIfTI, the tractogram's grid).
    nb_streamlines : int
        Streamlines kept.
    """
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["in_file", "scalar_map", "include",
                                                  "exclude"]), name="inputnode")
    inputnode.inputs.include = []
    inputnode.inputs.exclude = []
    outputnode = pe.Node(IdentityInterface(fields=["filtered", "sampled", "profiles", "density",
                                                   "nb_streamlines"]), name="outputnode")
    filt = pe.Node(FilterStreamlines(roi_mode=roi_mode), name="filter")
    if min_length is not None:
        filt.inputs.min_length = min_length
    if max_length is not None:
        filt.inputs.max_length = max_length
    sample = pe.Node(SampleScalarMap(name=scalar_name), name="sample")
    profile = pe.Node(TractProfile(nb_points=nb_points, metric=scalar_name), name="profile")
    density = pe.Node(DensityMap(), name="density")
    if groups:
        profile.inputs.group_names = list(groups)
        density.inputs.group_names = list(groups)
    wf.connect([
        (inputnode, filt, [("in_file", "in_file"), ("include", "include"),
                           ("exclude", "exclude")]),
        (inputnode, sample, [("scalar_map", "image")]),
        (inputnode, profile, [("scalar_map", "image")]),
        (filt, sample, [("out_file", "in_file")]),
        (sample, profile, [("out_file", "in_file")]),
        (filt, density, [("out_file", "in_file")]),
        (filt, outputnode, [("out_file", "filtered"), ("nb_streamlines", "nb_streamlines")]),
        (sample, outputnode, [("out_file", "sampled")]),
        (profile, outputnode, [("out_file", "profiles")]),
        (density, outputnode, [("out_file", "density")]),
    ])
    return wf


def describe_output(path: str | os.PathLike) -> dict[str, Any]:
    """Counts for a sidecar: streamlines of a tractogram, shape of an image, rows of a table."""
    from ..core.formats import detect_format
    from ..interfaces.bids import tractogram_counts

    name = os.fspath(path).lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib
        import numpy as np

        img = nib.load(os.fspath(path))
        data = np.asanyarray(img.dataobj)
        return {"Shape": [int(s) for s in img.shape], "NonzeroVoxels": int(np.count_nonzero(data))}
    if name.endswith((".csv", ".tsv")):
        with open(path, encoding="utf-8") as fh:
            return {"Rows": max(sum(1 for _ in fh) - 1, 0)}
    detect_format(path)  # a tractogram, or a ValueError naming the file
    return tractogram_counts(path)


def analysis_sidecar(path: str | os.PathLike) -> Path:
    """``x.nii.gz``, ``x.csv`` -> ``x.json``; tractograms as
    :func:`~trx_nipype.interfaces.bids.sidecar_path`."""
    from ..interfaces.bids import sidecar_path

    path = Path(path)
    for ext in (".nii.gz", ".nii", ".csv", ".tsv"):
        if path.name.lower().endswith(ext):
            return path.with_name(path.name[:-len(ext)] + ".json")
    return sidecar_path(path)


def export_file(in_file: str | os.PathLike, out_dir: str | os.PathLike, rel_path: str, *,
                sources: Sequence[str] = (), metadata: dict[str, Any] | None = None
                ) -> tuple[Path, Path]:
    """Copy a result to ``out_dir/rel_path`` atomically, with a JSON sidecar beside it.

    The sidecar holds ``metadata``, the sources by file name and SHA-256 (no
    folder of the machine), counts (:func:`describe_output`), the file's
    SHA-256 and the software versions: the same inputs give the same bytes
    wherever the job runs.
    """
    from ..core.formats import atomic_path
    from ..interfaces.bids import destination, sha256_path, software_versions

    dest = destination(out_dir, rel_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(metadata or {})
    payload["Sources"] = [{"name": Path(s).name, "sha256": sha256_path(s)} for s in sources]
    payload["Counts"] = describe_output(in_file)
    payload["sha256"] = sha256_path(in_file)
    payload["Software"] = software_versions()
    side = analysis_sidecar(dest)
    if Path(in_file).is_dir():
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(in_file, dest)
    else:
        with atomic_path(dest) as tmp:
            shutil.copyfile(in_file, tmp)
    with atomic_path(side) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return dest, side


class _AnalysisSinkInputSpec(BaseInterfaceInputSpec):
    in_file = traits.Either(File(exists=True), traits.Directory(exists=True), mandatory=True,
                            desc="result to export: a tractogram, a NIfTI image or a table")
    out_dir = traits.Str(mandatory=True, desc="root of the derivatives tree (absolute)")
    rel_path = traits.Str(mandatory=True, desc="destination, relative to out_dir")
    sources = traits.List(File(exists=True), desc="files the result was made from (recorded "
                                                  "by name and SHA-256)")
    metadata = traits.Dict(desc="pipeline name, description and parameters for the sidecar")


class _AnalysisSinkOutputSpec(TraitedSpec):
    out_file = traits.Str(desc="the exported file")
    out_json = File(desc="its JSON sidecar")


class AnalysisSink(SimpleInterface):
    """Export a tractogram, image or table to the derivatives tree, with a JSON sidecar."""

    input_spec = _AnalysisSinkInputSpec
    output_spec = _AnalysisSinkOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        dest, side = export_file(self.inputs.in_file, self.inputs.out_dir, self.inputs.rel_path,
                                 sources=self.inputs.sources, metadata=self.inputs.metadata)
        self._results.update(out_file=str(dest), out_json=str(side))
        return runtime
