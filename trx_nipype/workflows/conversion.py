"""Batch conversion of tractogram files between formats."""

from __future__ import annotations

from nipype.interfaces.utility import IdentityInterface
from nipype.pipeline import engine as pe

from ..interfaces import ConvertTractograms
from .bundles import undefined_if_none


def init_convert_bundles_wf(*, out_format: str = "trx", positions_dtype: str | None = None,
                            compression: str = "stored", bbox_check: bool = True,
                            keep_outside: bool = True,
                            name: str = "convert_bundles_wf") -> pe.Workflow:
    """Convert a list of tractogram files (one subject's, say) to ``out_format``.

    Workflow graph::

        inputnode -> convert (ConvertTractograms: every file, one node) -> outputnode

    One node for the list, whatever its length (on a cluster every node is a
    job); each output is named after its input (``AF_L.trk`` -> ``AF_L.tck``).

    Parameters
    ----------
    out_format : str
        ``trx``, ``trx_dir`` (a TRX directory), ``trk``, ``tck``, ``vtk``,
        ``vtp``, ``fib`` or ``dpy``.
    positions_dtype : str, optional
        ``float16``/``float32``/``float64`` positions of TRX outputs (default:
        the input's).
    compression : {"stored", "deflate"}
        Zip compression of ``.trx`` outputs.
    bbox_check, keep_outside : bool
        Check that streamlines lie inside the reference grid; keep (with a
        warning) or drop those outside.
    name : str
        Name of the workflow.

    Inputs (``inputnode``)
    ----------------------
    in_files : list of str
        Tractogram files (TRX zips or directories, TRK, TCK, ...).
    reference : str or None
        Reference image for formats without a space (TCK, VTK, ...).

    Outputs (``outputnode``)
    ------------------------
    out_files : list of str
        The converted files (in the work dir), in the order of ``in_files``.

    Examples
    --------
    >>> wf = init_convert_bundles_wf(out_format="tck")
    >>> sorted(wf.list_node_names())
    ['convert', 'inputnode', 'outputnode']
    """
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["in_files", "reference"]), name="inputnode")
    outputnode = pe.Node(IdentityInterface(fields=["out_files"]), name="outputnode")
    convert = pe.Node(ConvertTractograms(out_format=out_format, compression=compression,
                                         bbox_check=bbox_check, keep_outside=keep_outside),
                      name="convert")
    if positions_dtype is not None:
        convert.inputs.positions_dtype = positions_dtype
    wf.connect([
        (inputnode, convert, [("in_files", "in_files"),
                              (("reference", undefined_if_none), "reference")]),
        (convert, outputnode, [("out_files", "out_files")]),
    ])
    return wf
