"""LoadTrx and ConvertTractogram: tractograms into and out of TRX."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from nipype.interfaces.base import File, SimpleInterface, TraitedSpec, traits

from trx_nipype.core.convert import convert
from trx_nipype.core.formats import OUTPUT_CHOICES
from trx_nipype.core.reference import require_same_space, space_from_reference
from trx_nipype.core.summary import summarize

from ._traits import TrxInputSpec, TrxPath, optional, output_path
from .info import node_fields

log = logging.getLogger("nipype.interface")

#: ``out_format`` -> (extension of the output, format name of the core); ``""``: a directory
FORMATS = OUTPUT_CHOICES  # out_format choice -> (extension, format)


def is_trx(path: str | os.PathLike) -> bool:
    """A TRX container: a directory, or a ``.trx``/``.zip`` file."""
    return os.path.isdir(path) or Path(path).suffix.lower() in (".trx", ".zip")


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
        if is_trx(in_file):
            out = in_file
            if optional(self.inputs.reference) is not None:  # a TRX's own space must match
                require_same_space(in_file, space_from_reference(in_file),
                                   self.inputs.reference)
            log.info("LoadTrx: %s is a TRX: validated, handed on as it is", in_file)
        else:
            dest = output_path(in_file, "", ".trx")
            reference = optional(self.inputs.reference)
            out = os.fspath(convert(in_file, dest, reference=reference))
            log.info("LoadTrx: converted %s to %s", in_file, out)
        info = node_fields(summarize(out))
        self._results.update(out_file=out, **{k: info[k] for k in (
            "nb_streamlines", "nb_vertices", "group_names", "dps_keys", "dpv_keys", "affine",
            "dimensions")})
        return runtime


class _ConvertInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True,
                      desc="tractogram to convert (TRX zip or directory, TRK, TCK, ...)")
    out_format = traits.Enum(*FORMATS, mandatory=True, xor=["out_format", "out_filename"],
                             desc="output format; the output is named after the input "
                                  "('trx_dir': a TRX directory)")
    out_filename = traits.Str(mandatory=True, xor=["out_format", "out_filename"],
                              desc="output file name; its extension gives the format (no "
                                   "known extension: a TRX directory)")
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
        ext, fmt = FORMATS.get(optional(self.inputs.out_format), ("", None))
        dest = output_path(in_file, "", ext, self.inputs.out_filename)
        kwargs: dict[str, Any] = dict(out_format=fmt, compression=self.inputs.compression,
                                      bbox_check=self.inputs.bbox_check,
                                      keep_outside=self.inputs.keep_outside)
        if self.inputs.positions_dtype:
            kwargs["positions_dtype"] = self.inputs.positions_dtype
        out = convert(in_file, dest, reference=optional(self.inputs.reference), **kwargs)
        log.info("ConvertTractogram: %s -> %s", in_file, out)
        self._results["out_file"] = os.fspath(out)
        return runtime
