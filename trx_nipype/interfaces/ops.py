"""TRX operations: ConcatenateTrx, SelectGroup, ResizeTrx, SplitGroups.

Each interface is one core call; the output is written (atomically, by the
core writer) in the node's working directory under a name derived from the
input.
"""

from __future__ import annotations

import logging
import os  # noqa: F401 (the examples use it)
from typing import Any

from nipype.interfaces.base import (
    OutputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from trx_nipype.core import load, save
from trx_nipype.core.concatenate import concatenate
from trx_nipype.core.convert import save_bundle as save_as  # one bundle per file
from trx_nipype.core.dtypes import OFFSET_DTYPES, POSITION_DTYPES
from trx_nipype.core.naming import safe_name, unique_safe_names

from ._traits import (
    TrxInputSpec,
    TrxPath,
    TrxPathList,
    optional,
    output_path,
    remove_output,
    written_trx,
)
from .io import FORMATS

log = logging.getLogger("nipype.interface")



# ------------------------------------------------------------------ concatenate
class _ConcatenateInputSpec(TrxInputSpec):
    in_files = TrxPathList(mandatory=True, desc="TRX tractograms to concatenate, in order")
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
    positions_dtype = traits.Enum(*POSITION_DTYPES, desc="dtype of the output positions "
                                                    "(default: the first input's)")
    offsets_dtype = traits.Enum(*OFFSET_DTYPES, desc="dtype of the output offsets (default: "
                                                "the first input's, uint64 when needed)")
    compression = traits.Enum("stored", "deflate", usedefault=True,
                              desc="zip compression of a .trx output")
    out_filename = traits.Str(desc="output name (default: <first input>_concat.trx; no "
                                   ".trx/.zip extension: a TRX directory)")
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
    out_file = TrxPath(exists=True, desc="the concatenated TRX")
    nb_streamlines = traits.Int(desc="number of streamlines of the output")
    group_names = traits.List(traits.Str, desc="groups of the output, sorted")


class ConcatenateTrx(SimpleInterface):
    """Concatenate TRX files, optionally with one group per input.

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
    ('a_concat.trx', 12)
    >>> res.outputs.group_names
    ['left', 'right']
    """

    input_spec = _ConcatenateInputSpec
    output_spec = _ConcatenateOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        inputs = list(self.inputs.in_files)
        names = optional(self.inputs.group_names)
        if names is not None and not self.inputs.group_by_input:
            raise ValueError("group_names needs group_by_input=True")
        if names is not None and len(names) != len(inputs):
            raise ValueError(f"group_names has {len(names)} names for {len(inputs)} inputs")
        dest = output_path(inputs[0], "_concat", ".trx", self.inputs.out_filename,
                           inputs=inputs)
        out = concatenate(
            inputs, dest, group_by_input=self.inputs.group_by_input, group_names=names,
            delete_dps=self.inputs.delete_dps, delete_dpv=self.inputs.delete_dpv,
            delete_groups=self.inputs.delete_groups,
            delete_dpg=self.inputs.delete_groups,
            positions_dtype=optional(self.inputs.positions_dtype),
            offsets_dtype=optional(self.inputs.offsets_dtype),
            compression=self.inputs.compression, groups=optional(self.inputs.groups),
            nb_streamlines=optional(self.inputs.nb_streamlines), seed=self.inputs.seed)
        self._results.update(written_trx(out))
        log.info("ConcatenateTrx: %d inputs -> %s (%d streamlines)", len(inputs), out,
                 self._results["nb_streamlines"])
        return runtime


# ------------------------------------------------------------------ select
class _SelectGroupInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True, desc="TRX tractogram with groups")
    group_names = traits.Either(
        traits.Str, traits.List(traits.Str, minlen=1), mandatory=True,
        desc="group (or groups: their union, in streamline order) to keep")
    keep_groups = traits.Bool(True, usedefault=True,
                              desc="keep the groups (re-indexed to the selection) and their "
                                   "dpg in the output; False drops them")
    out_filename = traits.Str(desc="output name (default: <input>_<group>.trx; no .trx/.zip "
                                   "extension: a TRX directory)")


class _SelectGroupOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="TRX with the streamlines of the selected groups")
    nb_streamlines = traits.Int(desc="number of streamlines selected")


class SelectGroup(SimpleInterface):
    """Keep the streamlines of one or several groups.

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
        with load(self.inputs.in_file) as trx:
            view = trx.select_groups(names)
            if not self.inputs.keep_groups:
                view.groups, view.dpg = {}, {}
            save(view, dest)
            self._results.update(out_file=str(dest), nb_streamlines=len(view))
        log.info("SelectGroup: %s %s -> %s (%d streamlines)", self.inputs.in_file, names, dest,
                 self._results["nb_streamlines"])
        return runtime


# ------------------------------------------------------------------ resize
class _ResizeInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True, desc="TRX tractogram")
    nb_streamlines = traits.Range(low=0, desc="streamlines to keep (default: all of them, "
                                              "trimming unused capacity)")
    random = traits.Bool(False, usedefault=True,
                         desc="keep a seeded random subset of nb_streamlines (in file order) "
                              "instead of the first ones (needs nb_streamlines)")
    seed = traits.Int(0, usedefault=True, desc="seed of the random subset")
    out_filename = traits.Str(desc="output name (default: <input>_resized.trx; no .trx/.zip "
                                   "extension: a TRX directory)")


class _ResizeOutputSpec(TraitedSpec):
    out_file = TrxPath(exists=True, desc="the resized TRX")
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
        n = optional(self.inputs.nb_streamlines)
        if self.inputs.random and n is None:
            raise ValueError("ResizeTrx: random=True needs nb_streamlines (how many to draw)")
        dest = output_path(self.inputs.in_file, "_resized", ".trx", self.inputs.out_filename)
        with load(self.inputs.in_file) as trx:
            if self.inputs.random:
                view = trx.sample(n, seed=self.inputs.seed)
            else:
                view = trx.resize(nb_streamlines=n)
            save(view, dest)
            self._results.update(out_file=str(dest), nb_streamlines=len(view))
        log.info("ResizeTrx: %s -> %s (%d streamlines)", self.inputs.in_file, dest,
                 self._results["nb_streamlines"])
        return runtime


# ------------------------------------------------------------------ split
class _SplitGroupsInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True, desc="TRX tractogram with groups")
    out_format = traits.Enum(*FORMATS, usedefault=True,
                             desc="format of the per-group files ('trx_dir': TRX directories)")


class _SplitGroupsOutputSpec(TraitedSpec):
    out_files = OutputMultiObject(TrxPath(exists=True),
                                  desc="one file per group, in group_names order")
    group_names = traits.List(traits.Str, desc="the groups, sorted (one per output file)")


class SplitGroups(SimpleInterface):
    """Write one file per group, for tools that want one bundle per file.

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
        in_file = self.inputs.in_file
        ext, fmt = FORMATS[self.inputs.out_format]
        written: list[str] = []
        try:
            with load(in_file) as trx:
                names = sorted(trx.groups)
                if not names:
                    raise ValueError(f"{in_file}: no groups to split")
                for name, safe in unique_safe_names(names).items():
                    dest = output_path(in_file, "_" + safe, ext)
                    written.append(str(dest))
                    save_as(trx.get_group(name), dest, fmt)
        except BaseException:
            for path in written:  # a failure leaves no partial set behind
                remove_output(path)
            raise
        self._results.update(out_files=written, group_names=names)
        log.info("SplitGroups: %s -> %d files", in_file, len(written))
        return runtime
