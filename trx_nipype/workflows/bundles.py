"""Bundle workflows: one subject's bundles into one TRX, and population bundles.

Both builders are plain sub-workflows (``inputnode`` in, ``outputnode`` out):
they do not iterate over subjects themselves. :mod:`trx_nipype.workflows.pipelines`
wires them over a dataset (subjects as iterables, the population step behind a
JoinNode).
"""

from __future__ import annotations

from typing import Any

from nipype.interfaces.base import traits
from nipype.interfaces.utility import Function, IdentityInterface
from nipype.pipeline import engine as pe

from ..interfaces import ConcatenateTrx, LoadTrx, ResizeTrx, SelectGroup
from ..interfaces.io import _LoadTrxInputSpec


class _LoadBundleInputSpec(_LoadTrxInputSpec):
    bundle_name = traits.Str(desc="the file's bundle name: a group of that name in the file "
                                  "is dropped (the assembled TRX makes it again from the "
                                  "whole file)")


class LoadBundle(LoadTrx):
    """:class:`~trx_nipype.interfaces.LoadTrx` for one bundle file of a subject.

    A group named like the bundle (as in the per-bundle files of
    ``trx-nipype split-groups``) is dropped, with its dpg, into a copy in the
    node directory: the subject's TRX gets a group of that name holding the
    whole file anyway, and two groups of one name cannot be concatenated.
    Other groups are kept.
    """

    input_spec = _LoadBundleInputSpec

    def _run_interface(self, runtime: Any) -> Any:
        runtime = super()._run_interface(runtime)
        name = self.inputs.bundle_name
        if not name or name not in self._results["group_names"]:
            return runtime
        from ..core import load, save
        from ..interfaces._traits import output_path

        # A copy without the group: concatenate cannot yet take the clash itself (out of scope).
        loaded = self._results["out_file"]
        dest = output_path(self.inputs.in_file, "_bundle", ".trx", inputs=[loaded])
        with load(loaded) as trx:
            del trx.groups[name]
            trx.dpg.pop(name, None)
            save(trx, dest)
        self._results["out_file"] = str(dest)
        self._results["group_names"] = [g for g in self._results["group_names"] if g != name]
        return runtime


def _undefined_if_none(value):  # noqa: ANN001, ANN202 (a Nipype connection function)
    from nipype.interfaces.base import Undefined

    return Undefined if value is None else value


def _listify(value):  # noqa: ANN001, ANN202 (a Nipype connection function)
    return [value]


def _population_filename(bundle):  # noqa: ANN001, ANN202 (a Nipype connection function)
    return f"bundle-{bundle}_tractogram.trx"


def _smallest(counts):  # noqa: ANN001, ANN202 (a Nipype Function node)
    return min(int(c) for c in counts)


def init_subject_bundles_wf(*, drop_mismatched_data: bool = True,
                            name: str = "subject_bundles_wf") -> pe.Workflow:
    """Assemble one subject's bundle files into one TRX with one group per bundle.

    Workflow graph::

        inputnode -> load (MapNode: LoadTrx, one per bundle file) -> concat
                  (ConcatenateTrx, group_by_input) -> outputnode

    ``load`` (:class:`LoadBundle`) hands TRX inputs on as they are (validated)
    and converts the other formats (TRK, TCK, VTK, ...) to TRX, using
    ``reference`` for formats without a space. ``concat`` writes them into one
    TRX, in input order, with one group per input named by ``bundle_names``;
    the inputs' own groups, dps and dpv are carried, except a group named
    like its own file's bundle (e.g. files made by ``trx-nipype
    split-groups``), which ``load`` drops: the bundle's group is the whole
    file.

    Parameters
    ----------
    drop_mismatched_data : bool
        Drop the dps/dpv keys that not every bundle has with the same dtype and
        columns (keys that all share are always kept). False makes such a
        mismatch an error.
    name : str
        Name of the workflow.

    Inputs (``inputnode``)
    ----------------------
    in_files : list of str
        The subject's bundle files (any format :func:`trx_nipype.core.convert`
        reads).
    bundle_names : list of str
        One group name per file.
    reference : str or None
        Reference image for formats without a space (None: none needed).
    out_filename : str
        Name of the assembled TRX (e.g. ``sub-01_desc-bundles_tractogram.trx``).

    Outputs (``outputnode``)
    ------------------------
    out_file : str
        The assembled TRX (in the work dir).
    nb_streamlines : int
        Its number of streamlines.
    group_names : list of str
        Its groups, sorted.

    Examples
    --------
    >>> wf = init_subject_bundles_wf()
    >>> sorted(wf.list_node_names())
    ['concat', 'inputnode', 'load', 'outputnode']
    """
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(
        fields=["in_files", "bundle_names", "reference", "out_filename"]), name="inputnode")
    outputnode = pe.Node(IdentityInterface(
        fields=["out_file", "nb_streamlines", "group_names"]), name="outputnode")
    load = pe.MapNode(LoadBundle(), iterfield=["in_file", "bundle_name"], name="load")
    concat = pe.Node(ConcatenateTrx(group_by_input=True, delete_dps=drop_mismatched_data,
                                    delete_dpv=drop_mismatched_data), name="concat")
    wf.connect([
        (inputnode, load, [("in_files", "in_file"),
                           (("reference", _undefined_if_none), "reference")]),
        (inputnode, load, [("bundle_names", "bundle_name")]),
        (inputnode, concat, [("bundle_names", "group_names"),
                             ("out_filename", "out_filename")]),
        (load, concat, [("out_file", "in_files")]),
        (concat, outputnode, [("out_file", "out_file"), ("nb_streamlines", "nb_streamlines"),
                              ("group_names", "group_names")]),
    ])
    return wf


def init_population_bundles_wf(*, bundles: list[str], nb_streamlines: int | str | None = None,
                               seed: int = 0, drop_mismatched_data: bool = True,
                               name: str = "population_bundles_wf") -> pe.Workflow:
    """For each bundle, that group of every subject -> one TRX with one group per subject.

    Workflow graph (one branch per bundle: ``bundlesource`` iterates over
    ``bundles``)::

        inputnode ----------------------------------------------\\
        bundlesource -> select (MapNode: SelectGroup, one per subject)
                     -> [balance -> resize (MapNode: ResizeTrx)] -> concat -> outputnode

    ``select`` takes the bundle's group out of each subject's TRX (dropping
    the other groups); ``resize`` (when ``nb_streamlines`` is given) keeps the
    same number of streamlines for every subject, a seeded random subset in
    file order; ``concat`` writes ``bundle-<name>_tractogram.trx`` with one
    group per subject, named by ``subjects``. Subjects must share one space
    (same ``VOXEL_TO_RASMM`` and ``DIMENSIONS``), as bundles in a template
    space do.

    Parameters
    ----------
    bundles : list of str
        The bundles (group names) to collect; every subject must have them.
    nb_streamlines : int, "min" or None
        Streamlines per subject in each output: a number (every subject must
        have at least as many), ``"min"`` (the smallest subject's count, per
        bundle: balanced without failing) or None (keep all).
    seed : int
        Seed of the random subsets (the same for every subject and bundle: a
        subject's subset depends only on its own file).
    drop_mismatched_data : bool
        Drop dps/dpv keys that not every subject shares (else an error).
    name : str
        Name of the workflow.

    Inputs (``inputnode``)
    ----------------------
    in_files : list of str
        One TRX per subject, with the bundles as groups (the outputs of
        :func:`init_subject_bundles_wf`, joined).
    subjects : list of str
        The group name of each subject in the outputs (e.g. ``sub-01``).

    Outputs (``outputnode``, one per bundle)
    ----------------------------------------
    out_file : str
        ``bundle-<name>_tractogram.trx`` (in the work dir).
    bundle : str
        The bundle name.
    nb_streamlines : int
        Streamlines in ``out_file``.
    group_names : list of str
        Its groups (the subjects), sorted.

    Examples
    --------
    >>> wf = init_population_bundles_wf(bundles=["AF_L", "CST_R"], nb_streamlines="min")
    >>> sorted(wf.list_node_names())
    ['balance', 'bundlesource', 'concat', 'inputnode', 'outputnode', 'resize', 'select']
    """
    if isinstance(nb_streamlines, str) and nb_streamlines != "min":
        raise ValueError(f"nb_streamlines must be an int, 'min' or None, got {nb_streamlines!r}")
    if isinstance(nb_streamlines, int) and nb_streamlines < 1:
        raise ValueError(f"nb_streamlines must be positive, got {nb_streamlines}")
    if not bundles:
        raise ValueError("no bundles to collect")
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["in_files", "subjects"]), name="inputnode")
    outputnode = pe.Node(IdentityInterface(
        fields=["out_file", "bundle", "nb_streamlines", "group_names"]), name="outputnode")
    bundlesource = pe.Node(IdentityInterface(fields=["bundle"]), name="bundlesource")
    bundlesource.iterables = ("bundle", list(bundles))
    select = pe.MapNode(SelectGroup(keep_groups=False), iterfield=["in_file"], name="select")
    concat = pe.Node(ConcatenateTrx(group_by_input=True, delete_dps=drop_mismatched_data,
                                    delete_dpv=drop_mismatched_data), name="concat")
    wf.connect([
        (inputnode, select, [("in_files", "in_file")]),
        (bundlesource, select, [(("bundle", _listify), "group_names")]),
        (inputnode, concat, [("subjects", "group_names")]),
        (bundlesource, concat, [(("bundle", _population_filename), "out_filename")]),
        (bundlesource, outputnode, [("bundle", "bundle")]),
        (concat, outputnode, [("out_file", "out_file"), ("nb_streamlines", "nb_streamlines"),
                              ("group_names", "group_names")]),
    ])
    if nb_streamlines is None:
        wf.connect(select, "out_file", concat, "in_files")
        return wf
    resize = pe.MapNode(ResizeTrx(random=True, seed=seed), iterfield=["in_file"], name="resize")
    wf.connect([(select, resize, [("out_file", "in_file")]),
                (resize, concat, [("out_file", "in_files")])])
    if nb_streamlines == "min":
        balance = pe.Node(Function(input_names=["counts"], output_names=["nb_streamlines"],
                                   function=_smallest), name="balance")
        wf.connect([(select, balance, [("nb_streamlines", "counts")]),
                    (balance, resize, [("nb_streamlines", "nb_streamlines")])])
    else:
        resize.inputs.nb_streamlines = int(nb_streamlines)
    return wf
