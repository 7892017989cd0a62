"""Interfaces over many files at once: one node per subject, not one per file.

- :class:`AssembleBundles`: a subject's bundle files (any format) -> one TRX
  with one group per file (:func:`trx_nipype.core.operations.assemble.assemble_bundles`).
- :class:`ConvertTractograms`: a list of files converted to one format
  (:func:`trx_nipype.core.operations.convert_files.convert_files`).

On a cluster every node is a job that costs seconds: these keep the node
count of a pipeline at one per subject, whatever its number of bundles.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from nipype.interfaces.base import File, OutputMultiObject, SimpleInterface, TraitedSpec, traits

from trx_nipype.core.formats import OUTPUT_CHOICES
from trx_nipype.core.operations.assemble import assemble_bundles
from trx_nipype.core.operations.convert_files import convert_files

from ._hashing import companions
from ._traits import TrxInputSpec, TrxPath, TrxPathList, optional, output_path, written_trx

log = logging.getLogger("nipype.interface")


class _AssembleInputSpec(TrxInputSpec):
    in_files = TrxPathList(mandatory=True, desc="the bundle files: TRX (zip or directory), "
                           "TRK, TCK, ... (one group each, in this order)")
    bundle_names = traits.List(traits.Str, minlen=1,
                               desc="the group of each file (default: the file names); a group "
                                    "of that name inside the file is dropped")
    reference = File(exists=True, trx_hash=True,
                     desc="reference image (NIfTI), TRK or TRX giving the space of formats "
                          "without one (TCK, VTK, ...); files with a space must agree with it")
    delete_dps = traits.Bool(False, usedefault=True,
                             desc="drop the dps keys that some file lacks or holds with another "
                                  "dtype/shape, instead of failing (shared keys stay)")
    delete_dpv = traits.Bool(False, usedefault=True,
                             desc="drop the dpv keys that some file lacks or holds with another "
                                  "dtype/shape, instead of failing (shared keys stay)")
    compression = traits.Enum("stored", "deflate", usedefault=True,
                              desc="zip compression of a .trx output")
    out_filename = traits.Str(desc="output name (default: bundles.trx; no .trx/.zip "
                                   "extension: a TRX directory)")


class _AssembleOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="the assembled TRX, one group per file")
    nb_streamlines = traits.Int(desc="number of streamlines of the output")
    group_names = traits.List(traits.Str, desc="groups of the output, sorted")


class AssembleBundles(SimpleInterface):
    """Many bundle files (any readable format) -> one TRX with one group per file.

    TRK and TCK files are streamed into the output (no TRX per bundle in
    between); the bytes are those of converting each file and concatenating
    with one group per input.

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> a, b = example_trx(tmp, "a.trx"), example_trx(tmp, "b.trx", seed=1)
    >>> res = AssembleBundles(in_files=[a, b], bundle_names=["AF_L", "CST_R"]).run(cwd=tmp)
    >>> os.path.basename(res.outputs.out_file), res.outputs.nb_streamlines
    ('bundles.trx', 12)
    >>> res.outputs.group_names
    ['AF', 'AF_L', 'CST', 'CST_R']
    """

    input_spec = _AssembleInputSpec
    output_spec = _AssembleOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        files = list(self.inputs.in_files)
        dest = output_path("bundles", "", ".trx", self.inputs.out_filename, inputs=files)
        out = assemble_bundles(files, dest, names=optional(self.inputs.bundle_names),
                               reference=optional(self.inputs.reference),
                               delete_dps=self.inputs.delete_dps,
                               delete_dpv=self.inputs.delete_dpv,
                               compression=self.inputs.compression)
        self._results.update(written_trx(out))
        log.info("AssembleBundles: %d files -> %s (%d streamlines)", len(files), out,
                 self._results["nb_streamlines"])
        return runtime


class _ConvertManyInputSpec(TrxInputSpec):
    in_files = TrxPathList(mandatory=True, desc="tractograms to convert (TRX zip or directory, "
                           "TRK, TCK, ...); each output is named after its input")
    out_format = traits.Enum(*OUTPUT_CHOICES, mandatory=True,
                             desc="output format ('trx_dir': TRX directories)")
    reference = File(exists=True, trx_hash=True,
                     desc="reference image (NIfTI) or TRK for formats without a space "
                          "(TCK, VTK, ... as input or output)")
    positions_dtype = traits.Enum("float16", "float32", "float64",
                                  desc="dtype of the outputs' positions (TRX outputs; "
                                       "default: the input's)")
    compression = traits.Enum("stored", "deflate", usedefault=True,
                              desc="zip compression of .trx outputs")
    bbox_check = traits.Bool(True, usedefault=True,
                             desc="check that streamlines lie inside the reference grid")
    keep_outside = traits.Bool(True, usedefault=True,
                               desc="with bbox_check, keep streamlines outside the grid "
                                    "(with a warning) instead of removing them")


class _ConvertManyOutputSpec(TraitedSpec):
    out_files = OutputMultiObject(TrxPath(exists=True),
                                  desc="the converted files, in the order of in_files")
    out_groups = traits.List(File(exists=True),
                               desc="the .groups.json sidecars of the TRK outputs that have "
                                    "groups (TRK keeps group names there): declared, so that "
                                    "Nipype's output cleanup keeps them")


class ConvertTractograms(SimpleInterface):
    """Convert a list of tractograms (one subject's bundles, say) in one node.

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> files = [example_trx(tmp, "a.trx", dpg=False), example_trx(tmp, "b.trx", dpg=False)]
    >>> res = ConvertTractograms(in_files=files, out_format="trk").run(cwd=tmp)
    >>> [os.path.basename(f) for f in res.outputs.out_files]
    ['a.trk', 'b.trk']
    """

    input_spec = _ConvertManyInputSpec
    output_spec = _ConvertManyOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        files = list(self.inputs.in_files)
        ext, fmt = OUTPUT_CHOICES[self.inputs.out_format]
        for f in files:  # never an input; a previous run's output is replaced
            output_path(f, "", ext, inputs=files)
        options: dict[str, Any] = dict(compression=self.inputs.compression,
                                       bbox_check=self.inputs.bbox_check,
                                       keep_outside=self.inputs.keep_outside)
        if self.inputs.positions_dtype:
            options["positions_dtype"] = self.inputs.positions_dtype
        out = convert_files(files, os.getcwd(), ext, out_format=fmt,
                            reference=optional(self.inputs.reference), **options)
        self._results["out_files"] = [os.fspath(p) for p in out]
        self._results["out_groups"] = [str(c) for p in out for c in companions(os.fspath(p))
                                         if c.is_file()]
        log.info("ConvertTractograms: %d files -> %s", len(out), self.inputs.out_format)
        return runtime
