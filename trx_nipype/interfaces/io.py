"""LoadTrx and ConvertTractogram: tractograms into and out of TRX."""

from __future__ import annotations

import logging
import os
from typing import Any

from nipype.interfaces.base import File, SimpleInterface, TraitedSpec, traits

from trx_nipype.core.formats import OUTPUT_CHOICES
from trx_nipype.core.operations import as_trx, convert_file, is_trx, tractogram_info

from ._traits import TrxInputSpec, TrxPath, compression_option, optional, output_path
from .info import node_fields

log = logging.getLogger("nipype.interface")

#: ``out_format`` -> (extension of the output, format name of the core); ``""``: a directory


class _LoadTrxInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True,
                      desc="tractogram: TRX (zip or directory), or any format convert reads "
                           "(TRK, TCK, VTK, ...)")
    reference = File(exists=True, trx_hash=True,
                     desc="reference image (NIfTI), TRK or TRX giving the space of formats "
                          "without one (TCK, VTK, ...); TRX and TRK inputs carry their own, "
                          "which it must match (else SpaceMismatchError, a TrxFormatError)")


class _LoadTrxOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="a valid TRX: the input itself when it is one, "
                                         "else the converted file in the node directory")
    nb_streamlines = traits.Int(desc="number of streamlines")
    nb_vertices = traits.Int(desc="number of vertices")
    group_names = traits.List(traits.Str, desc="names of the groups, sorted")
    dps_keys = traits.List(traits.Str, desc="data-per-streamline keys, sorted")
    dpv_keys = traits.List(traits.Str, desc="data-per-vertex keys, sorted")
    affine = traits.List(traits.List(traits.Float), desc="VOXEL_TO_RASMM, 4x4 (rows)")
    dimensions = traits.List(traits.Int, desc="DIMENSIONS of the reference grid (3 ints)")


class LoadTrx(SimpleInterface):
    """Validate a TRX and hand it on, or convert another format to TRX.

    A valid TRX is never copied: ``out_file`` is the input's own path (it is
    hashed by its members downstream, so an in-place change still reruns what
    depends on it). Other formats are converted into ``<name>.trx`` in the
    node directory.

    Examples
    --------
    >>> import os, tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> path = example_trx(tmp)
    >>> res = LoadTrx(in_file=path).run(cwd=tmp)
    >>> res.outputs.out_file == os.path.abspath(path)
    True
    >>> res.outputs.nb_streamlines, res.outputs.group_names, res.outputs.dimensions
    (6, ['AF', 'CST'], [40, 40, 40])
    """

    input_spec = _LoadTrxInputSpec
    output_spec = _LoadTrxOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        in_file = os.path.abspath(self.inputs.in_file)
        dest = None if is_trx(in_file) else output_path(in_file, "", ".trx")
        out = os.fspath(as_trx(in_file, dest, reference=optional(self.inputs.reference),
                               overwrite=True))
        log.info("LoadTrx: %s -> %s", in_file, out)
        # counts and keys from the headers; lengths in mm would read every position
        info = node_fields(tractogram_info(out, length_mm=False))
        self._results.update(out_file=out, **{k: info[k] for k in (
            "nb_streamlines", "nb_vertices", "group_names", "dps_keys", "dpv_keys", "affine",
            "dimensions")})
        return runtime


class _ConvertInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True,
                      desc="tractogram to convert (TRX zip or directory, TRK, TCK, ...)")
    out_format = traits.Enum(*OUTPUT_CHOICES, mandatory=True, xor=["out_format", "out_filename"],
                             desc="output format; the output is named after the input "
                                  "('trx_dir': a TRX directory)")
    out_filename = traits.Str(mandatory=True, xor=["out_format", "out_filename"],
                              desc="output file name; its extension gives the format (none: a "
                                   "TRX directory)")
    reference = File(exists=True, trx_hash=True,
                     desc="reference image (NIfTI) or TRK for formats without a space "
                          "(TCK, VTK, ... as input or output)")
    positions_dtype = traits.Enum("float16", "float32", "float64",
                                  desc="dtype of the output's positions (TRX output; "
                                       "default: the input's)")
    compression = traits.Enum("stored", "deflate", usedefault=True,
                               desc="zip compression of a .trx output ('stored' can be "
                                    "memory-mapped)")
    bbox_check = traits.Bool(True, usedefault=True,
                             desc="check that streamlines lie inside the reference grid")
    keep_outside = traits.Bool(True, usedefault=True,
                               desc="with bbox_check, keep streamlines outside the grid "
                                    "(with a warning) instead of removing them")


class _ConvertOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="the converted tractogram, in the node directory")
    out_groups = traits.List(File(exists=True),
                             desc="[the .groups.json sidecar] of a TRK output with groups (the "
                                  "group names; keep it beside the TRK); empty otherwise")


class ConvertTractogram(SimpleInterface):
    """Convert between TRX and the other tractogram formats (TRK, TCK, VTK, ...).

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> trx = example_trx(tmp, dpg=False)  # TRK holds groups, not data per group
    >>> res = ConvertTractogram(in_file=trx, out_format="trk").run(cwd=tmp)
    >>> os.path.basename(res.outputs.out_file)
    'bundle.trk'
    """

    input_spec = _ConvertInputSpec
    output_spec = _ConvertOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        in_file = self.inputs.in_file
        ext, fmt = OUTPUT_CHOICES.get(optional(self.inputs.out_format), ("", None))
        dest = output_path(in_file, "", ext, self.inputs.out_filename)
        files = convert_file(in_file, dest, reference=optional(self.inputs.reference),
                             out_format=fmt, overwrite=True,
                             compression=compression_option(self.inputs.compression),
                             positions_dtype=optional(self.inputs.positions_dtype),
                             bbox_check=self.inputs.bbox_check,
                             keep_outside=self.inputs.keep_outside)
        log.info("ConvertTractogram: %s -> %s", in_file, files[0])
        self._results.update(out_file=os.fspath(files[0]),
                             out_groups=[os.fspath(f) for f in files[1:]])
        return runtime
