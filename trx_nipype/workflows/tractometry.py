"""Tractometry: filter a tractogram, sample a scalar map along it, profile its tracts, map it.

:func:`init_tractometry_wf` chains the analysis nodes of
:mod:`trx_nipype.interfaces.analysis`; :class:`~trx_nipype.interfaces.AnalysisSink`
exports any result (tractogram, NIfTI image, table) into a derivatives tree
with a JSON sidecar whose sources are named without the machine's paths. The
ready pipeline ``workflows/tractography_pipeline.py`` tracks a DWI with dipy and
runs both.
"""

from __future__ import annotations

from collections.abc import Sequence

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
