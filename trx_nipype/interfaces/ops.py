"""TRX operations: ConcatenateTrx, SelectGroup, ResizeTrx, SplitGroups.

Each interface is one call of the function of :mod:`trx_nipype.core.operations`
that the ``trx-nipype`` command of the same name calls. Inputs may be in any
readable format (TRX, TRK, TCK, ...: converted on the fly); the output is written
(atomically, by the core writer) in the node's working directory under a name
derived from the input, or ``out_filename``, whose extension picks the format.
A TRK output with groups comes with its ``.groups.json`` sidecar, declared as
``out_groups`` (and kept beside the TRK by Nipype's clean-up and DataSinks).
"""

from __future__ import annotations

import logging
import os  # noqa: F401 (the examples use it)
from typing import Any

from nipype.interfaces.base import (
    File,
    OutputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from trx_nipype.core.dtypes import OFFSET_DTYPES, POSITION_DTYPES
from trx_nipype.core.formats import OUTPUT_CHOICES
from trx_nipype.core.naming import concatenation_name, safe_name, tractogram_stem
from trx_nipype.core.operations import (
    Written,
    concatenate_files,
    resize,
    select_groups,
    split_groups,
)

from ._traits import (
    TrxInputSpec,
    TrxPath,
    TrxPathList,
    compression_option,
    optional,
    output_path,
)

log = logging.getLogger("nipype.interface")

_OUT_FILENAME = ("output name (default: {default}); its extension picks the format: .trx "
                 "(zip), .trk (groups in a .groups.json sidecar), .tck, ...; none: a TRX "
                 "directory")
_OUT_GROUPS = ("[the .groups.json sidecar] of a TRK output with groups (the group names; keep "
               "it beside the TRK); empty for other outputs")


def _sidecar(written: Written) -> list[str]:
    return [os.fspath(written.groups_sidecar)] if written.groups_sidecar else []


# ------------------------------------------------------------------ concatenate
class _ConcatenateInputSpec(TrxInputSpec):
    in_files = TrxPathList(mandatory=True, desc="tractograms to concatenate, in order (TRX "
                                                "zip or directory, TRK, TCK, ...)")
    group_by_input = traits.Bool(False, usedefault=True,
                                 desc="add one group per input, holding its streamlines")
    group_names = traits.List(traits.Str, minlen=1,
                              desc="names of the per-input groups (one per input; needs "
                                   "group_by_input; default: the inputs' names)")
    delete_dps = traits.Bool(False, usedefault=True,
                             desc="drop the dps keys that some input lacks or holds with "
                                  "another dtype/shape, instead of failing (shared keys stay)")
    delete_dpv = traits.Bool(False, usedefault=True,
                             desc="drop the dpv keys that some input lacks or holds with "
                                  "another dtype/shape, instead of failing (shared keys stay)")
    delete_groups = traits.Bool(False, usedefault=True,
                                desc="drop the inputs' groups and their dpg")
    reference = File(exists=True, trx_hash=True,
                     desc="reference image (NIfTI) or TRK for inputs without a space (TCK...)")
    positions_dtype = traits.Enum(*POSITION_DTYPES, desc="dtype of the output positions "
                                                    "(default: the first input's)")
    offsets_dtype = traits.Enum(*OFFSET_DTYPES, desc="dtype of the output offsets (default: "
                                                "the first input's, uint64 when needed)")
    compression = traits.Enum("stored", "deflate", usedefault=True,
                              desc="zip compression of a .trx output")
    out_filename = traits.Str(desc=_OUT_FILENAME.format(
        default="what it holds: <group names or input names joined by +>_concat.trx"))
    groups = traits.Either(traits.Str, traits.List(traits.Str, minlen=1),
                           desc="take only the streamlines of this group from every input (or "
                                "of one group per input), with no file in between; the "
                                "inputs' groups are then dropped")
    nb_streamlines = traits.Either(traits.Range(low=0), traits.Enum("min"),
                                   desc="keep a seeded random sample of this many streamlines "
                                        "of every (selected) input, in file order ('min': the "
                                        "smallest input's count)")
    seed = traits.Int(0, usedefault=True, desc="seed of the samples (nb_streamlines)")


class _ConcatenateOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="the concatenated tractogram")
    out_groups = traits.List(File(exists=True), desc=_OUT_GROUPS)
    nb_streamlines = traits.Int(desc="number of streamlines of the output")
    group_names = traits.List(traits.Str, desc="groups of the output, sorted")


class ConcatenateTrx(SimpleInterface):
    """Concatenate tractograms, optionally with one group per input.

    With ``groups`` (and ``nb_streamlines``), each input contributes only the
    streamlines of a group (a seeded sample of them): a population bundle from
    every subject's TRX in one node, with no selected or resized file in
    between.

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> a, b = example_trx(tmp, "a.trx"), example_trx(tmp, "b.trx", seed=1)
    >>> res = ConcatenateTrx(in_files=[a, b], group_by_input=True, delete_groups=True,
    ...                      group_names=["left", "right"]).run(cwd=tmp)
    >>> os.path.basename(res.outputs.out_file), res.outputs.nb_streamlines
    ('left+right_concat.trx', 12)
    >>> res.outputs.group_names
    ['left', 'right']
    """

    input_spec = _ConcatenateInputSpec
    output_spec = _ConcatenateOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        inputs = list(self.inputs.in_files)
        names = optional(self.inputs.group_names)
        default = concatenation_name(names or [tractogram_stem(p) for p in inputs], ".trx")
        dest = output_path(inputs[0], "", "", self.inputs.out_filename, inputs=inputs,
                           name=default)
        out = concatenate_files(
            inputs, dest, reference=optional(self.inputs.reference), overwrite=True,
            group_by_input=self.inputs.group_by_input, group_names=names,
            delete_dps=self.inputs.delete_dps, delete_dpv=self.inputs.delete_dpv,
            delete_groups=self.inputs.delete_groups, delete_dpg=self.inputs.delete_groups,
            positions_dtype=optional(self.inputs.positions_dtype),
            offsets_dtype=optional(self.inputs.offsets_dtype),
            compression=compression_option(self.inputs.compression),
            groups=optional(self.inputs.groups),
            nb_streamlines=optional(self.inputs.nb_streamlines), seed=self.inputs.seed)
        self._results.update(out_file=os.fspath(out.path), out_groups=_sidecar(out),
                             nb_streamlines=out.nb_streamlines, group_names=sorted(out.groups))
        log.info("ConcatenateTrx: %d inputs -> %s", len(inputs), out.summary())
        return runtime


# ------------------------------------------------------------------ select
class _SelectGroupInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True,
                      desc="tractogram with groups (TRX, or TRK with its .groups.json)")
    group_names = traits.Either(
        traits.Str, traits.List(traits.Str, minlen=1), mandatory=True,
        desc="group (or groups: their union, in streamline order) to keep")
    keep_groups = traits.Bool(False, usedefault=True,
                              desc="keep the group memberships (re-indexed to the selection) "
                                   "and their dpg in the output. Default False: the output is "
                                   "the selection alone, so that assembling selections (one "
                                   "group per subject) gives no stray group beside them")
    out_filename = traits.Str(desc=_OUT_FILENAME.format(default="<input>_<group>.trx"))


class _SelectGroupOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="the streamlines of the selected groups")
    out_groups = traits.List(File(exists=True), desc=_OUT_GROUPS)
    nb_streamlines = traits.Int(desc="number of streamlines selected")


class SelectGroup(SimpleInterface):
    """Keep the streamlines of one or several groups.

    By default the output holds no groups: it *is* the selection (set
    ``keep_groups=True`` to keep the memberships, re-indexed).

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> res = SelectGroup(in_file=example_trx(tmp), group_names="CST").run(cwd=tmp)
    >>> os.path.basename(res.outputs.out_file), res.outputs.nb_streamlines
    ('bundle_CST.trx', 3)
    """

    input_spec = _SelectGroupInputSpec
    output_spec = _SelectGroupOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        names = self.inputs.group_names
        names = [names] if isinstance(names, str) else list(names)
        suffix = "_" + "_".join(safe_name(n) for n in names)
        dest = output_path(self.inputs.in_file, suffix, ".trx", self.inputs.out_filename)
        out = select_groups(self.inputs.in_file, names, dest,
                            keep_groups=self.inputs.keep_groups, overwrite=True)
        self._results.update(out_file=os.fspath(out.path), out_groups=_sidecar(out),
                             nb_streamlines=out.nb_streamlines)
        log.info("SelectGroup: %s %s -> %s", self.inputs.in_file, names, out.summary())
        return runtime


# ------------------------------------------------------------------ resize
class _ResizeInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True, desc="tractogram (TRX, TRK, TCK, ...)")
    nb_streamlines = traits.Range(low=0, desc="streamlines to keep (default: all of them, "
                                              "trimming unused capacity)")
    random = traits.Bool(False, usedefault=True,
                         desc="keep a seeded random subset of nb_streamlines (in file order) "
                              "instead of the first ones (needs nb_streamlines)")
    seed = traits.Int(0, usedefault=True, desc="seed of the random subset")
    reference = File(exists=True, trx_hash=True,
                     desc="reference image (NIfTI) or TRK for an input without a space (TCK...) "
                          "written as TRX or TRK")
    out_filename = traits.Str(desc=_OUT_FILENAME.format(default="<input>_resized.trx"))


class _ResizeOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="the resized tractogram")
    out_groups = traits.List(File(exists=True), desc=_OUT_GROUPS)
    nb_streamlines = traits.Int(desc="number of streamlines of the output")


class ResizeTrx(SimpleInterface):
    """Trim unused capacity, or keep N streamlines (the first N, or a seeded random subset).

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> res = ResizeTrx(in_file=example_trx(tmp), nb_streamlines=4, random=True,
    ...                 seed=7).run(cwd=tmp)
    >>> os.path.basename(res.outputs.out_file), res.outputs.nb_streamlines
    ('bundle_resized.trx', 4)
    """

    input_spec = _ResizeInputSpec
    output_spec = _ResizeOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        dest = output_path(self.inputs.in_file, "_resized", ".trx", self.inputs.out_filename)
        out = resize(self.inputs.in_file, dest, optional(self.inputs.nb_streamlines),
                     random=self.inputs.random, seed=self.inputs.seed,
                     reference=optional(self.inputs.reference), overwrite=True)
        self._results.update(out_file=os.fspath(out.path), out_groups=_sidecar(out),
                             nb_streamlines=out.nb_streamlines)
        log.info("ResizeTrx: %s -> %s", self.inputs.in_file, out.summary())
        return runtime


# ------------------------------------------------------------------ split
class _SplitGroupsInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True,
                      desc="tractogram with groups (TRX, or TRK with its .groups.json)")
    out_format = traits.Enum(*OUTPUT_CHOICES, usedefault=True,
                             desc="format of the per-group files ('trx_dir': TRX directories)")
    reference = File(exists=True, trx_hash=True,
                     desc="reference image (NIfTI) or TRK for an input without a space, when "
                          "the format needs one")


class _SplitGroupsOutputSpec(TraitedSpec):
    out_files = OutputMultiObject(TrxPath(exists=True),
                                  desc="one file per group, in group_names order")
    group_names = traits.List(traits.Str, desc="the groups, sorted (one per output file)")


class SplitGroups(SimpleInterface):
    """Write one file per group, for tools that want one bundle per file.

    Names are ``<input>_<group><ext>`` (safe, distinct; a name too long for a
    filesystem is shortened by a stable rule, with a warning).

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> res = SplitGroups(in_file=example_trx(tmp)).run(cwd=tmp)
    >>> [os.path.basename(f) for f in res.outputs.out_files], res.outputs.group_names
    (['bundle_AF.trx', 'bundle_CST.trx'], ['AF', 'CST'])
    """

    input_spec = _SplitGroupsInputSpec
    output_spec = _SplitGroupsOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        split = split_groups(self.inputs.in_file, runtime.cwd,
                             out_format=self.inputs.out_format,
                             reference=optional(self.inputs.reference), overwrite=True)
        self._results.update(out_files=[os.fspath(p) for p in split.paths],
                             group_names=split.groups)
        log.info("SplitGroups: %s -> %d files", self.inputs.in_file, len(split.paths))
        return runtime
