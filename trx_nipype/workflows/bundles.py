"""Bundle workflows: one subject's bundles into one TRX, and population bundles.

Both builders are plain sub-workflows (``inputnode`` in, ``outputnode`` out):
they do not iterate over subjects themselves, and each runs one node per
subject (or per bundle), whatever the number of files: on a cluster every
node is a job. :mod:`trx_nipype.workflows.pipelines` wires them over a
dataset (one subject workflow per subject, the population step over their
collected outputs).
"""

from __future__ import annotations

from nipype.interfaces.utility import IdentityInterface
from nipype.pipeline import engine as pe

from ..interfaces import AssembleBundles, ConcatenateTrx


def undefined_if_none(value):  # noqa: ANN001, ANN201 (a Nipype connection function)
    """A connection function: None (no reference given) as an unset input."""
    from nipype.interfaces.base import Undefined

    return Undefined if value is None else value


def _population_filename(bundle):  # noqa: ANN001, ANN202 (a Nipype connection function)
    return f"tract-{bundle}_tractogram.trx"


def init_subject_bundles_wf(*, drop_mismatched_data: bool = True,
                            name: str = "subject_bundles_wf") -> pe.Workflow:
    """Assemble one subject's bundle files into one TRX with one group per bundle.

    Workflow graph::

        inputnode -> assemble (AssembleBundles: every file, one node) -> outputnode

    ``assemble`` (:class:`~trx_nipype.interfaces.AssembleBundles`) writes the
    files into one TRX, in input order, with one group per file named by
    ``bundle_names``: TRX inputs are read through their maps, TRK and TCK
    files are streamed in (no TRX per bundle in between), other formats (VTK,
    ...) are read whole; ``reference`` gives the space of formats without one.
    The inputs' own groups, dps and dpv are carried, except a group named like
    its own file's bundle (e.g. files made by ``trx-nipype split-groups``):
    the bundle's group is the whole file. One node per subject, whatever its
    number of bundles.

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
    ['assemble', 'inputnode', 'outputnode']
    """
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(
        fields=["in_files", "bundle_names", "reference", "out_filename"]), name="inputnode")
    outputnode = pe.Node(IdentityInterface(
        fields=["out_file", "nb_streamlines", "group_names"]), name="outputnode")
    assemble = pe.Node(AssembleBundles(delete_dps=drop_mismatched_data,
                                       delete_dpv=drop_mismatched_data), name="assemble")
    wf.connect([
        (inputnode, assemble, [("in_files", "in_files"), ("bundle_names", "bundle_names"),
                               (("reference", undefined_if_none), "reference"),
                               ("out_filename", "out_filename")]),
        (assemble, outputnode, [("out_file", "out_file"), ("nb_streamlines", "nb_streamlines"),
                                ("group_names", "group_names")]),
    ])
    return wf


def init_population_bundles_wf(*, bundles: list[str], nb_streamlines: int | str | None = None,
                               seed: int = 0, drop_mismatched_data: bool = True,
                               name: str = "population_bundles_wf") -> pe.Workflow:
    """For each bundle, that group of every subject -> one TRX with one group per subject.

    Workflow graph (one branch per bundle: ``bundlesource`` iterates over
    ``bundles``)::

        inputnode ---------\
        bundlesource -> concat (ConcatenateTrx: every subject, one node) -> outputnode

    ``concat`` (:class:`~trx_nipype.interfaces.ConcatenateTrx` with ``groups``)
    takes the bundle's group out of each subject's TRX (dropping the other
    groups), keeps (when ``nb_streamlines`` is given) the same number of
    streamlines for every subject, a seeded random subset in file order, and
    writes ``tract-<name>_tractogram.trx`` with one group per subject, named by
    ``subjects``: one node per bundle, with no file per subject in between.
    Subjects must share one space (same ``VOXEL_TO_RASMM`` and
    ``DIMENSIONS``), as bundles in a template space do.

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
        :func:`init_subject_bundles_wf`, collected).
    subjects : list of str
        The group name of each subject in the outputs (e.g. ``sub-01``).

    Outputs (``outputnode``, one per bundle)
    ----------------------------------------
    out_file : str
        ``tract-<name>_tractogram.trx`` (in the work dir).
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
    ['bundlesource', 'concat', 'inputnode', 'outputnode']
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
    concat = pe.Node(ConcatenateTrx(group_by_input=True, delete_dps=drop_mismatched_data,
                                    delete_dpv=drop_mismatched_data, seed=seed), name="concat")
    if nb_streamlines is not None:
        concat.inputs.nb_streamlines = nb_streamlines
    wf.connect([
        (inputnode, concat, [("in_files", "in_files"), ("subjects", "group_names")]),
        (bundlesource, concat, [("bundle", "groups"),
                                (("bundle", _population_filename), "out_filename")]),
        (bundlesource, outputnode, [("bundle", "bundle")]),
        (concat, outputnode, [("out_file", "out_file"), ("nb_streamlines", "nb_streamlines"),
                              ("group_names", "group_names")]),
    ])
    return wf
