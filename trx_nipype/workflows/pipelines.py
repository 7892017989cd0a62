"""Whole pipelines over a dataset: one workflow per subject, population steps over them.

Each builder takes a :class:`~trx_nipype.workflows.dataset.Dataset` and an
output folder and returns a Nipype workflow that writes a derivatives tree
(see :mod:`trx_nipype.workflows.derivatives`)::

    <output_dir>/dataset_description.json
    <output_dir>/sub-01/dwi/sub-01_desc-bundles_tractogram.trx  (+ .json)
    <output_dir>/population/tract-AF_L_tractogram.trx           (+ .json)

Node count grows with subjects + bundles, never with their product: each
subject is a small workflow named after it (``sub-01/assemble``,
``sub-01/ds_subject``) whose inputs are set when the pipeline is built (no
lookup node, no iterables over subjects), and each population bundle is one
node over every subject's file. On a cluster every node is a job.

Nipype caches every node in the work dir: a rerun with nothing changed
executes no node, and a changed input file reruns only what depends on it.

Building touches no disk: the builders neither write nor look at the output
folder. The run (:func:`~trx_nipype.workflows.runner.run_workflow`, which
``trx-nipype run`` calls) writes ``dataset_description.json``
(:class:`~trx_nipype.workflows.derivatives.OutputTree`, attached to the
workflow) and reruns a node whose files have gone missing, in the output
folder (an export) or in the work dir (an intermediate).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nipype.interfaces.utility import Merge
from nipype.pipeline import engine as pe

from ..core.formats import OUTPUT_CHOICES, carries_space
from ..interfaces.bids import DerivativesListSink, DerivativesSink
from .bundles import init_population_bundles_wf, init_subject_bundles_wf
from .conversion import init_convert_bundles_wf
from .dataset import Dataset, DatasetError, Subject
from .derivatives import (
    OutputTree,
    converted_path,
    pipeline_outputs,
    population_bundle_path,
    subject_bundles_path,
)

#: the pipelines of ``trx-nipype run --pipeline``
PIPELINES = ("bundles", "convert")

#: the ``Description`` of a population file's sidecar
POPULATION_DESCRIPTION = ("One bundle of every subject in one TRX: one group per subject "
                          "(ConcatenateTrx with groups, and nb_streamlines when balanced).")

def node_name(label: str, taken: set[str]) -> str:
    """A Nipype workflow name for ``label`` (``[\\w-]+``), unique among ``taken``."""
    name = re.sub(r"[^\w-]", "_", label) or "_"
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _subject_workflows(dataset: Dataset) -> list[tuple[Subject, str]]:
    """Each subject with the name of its workflow; the run reports it by its label."""
    if not dataset.subjects:
        raise ValueError(f"{dataset.root}: no subjects to process")
    taken: set[str] = set()
    return [(s, node_name(s.label, taken)) for s in dataset.subjects]


def _pipeline_workflow(name: str) -> pe.Workflow:
    """The top workflow of a pipeline: every output a node writes is kept in the work dir.

    (Nipype's default ``remove_unnecessary_outputs`` deletes the files a node wrote
    beside its declared outputs, such as a TRK's ``.groups.json``.)
    """
    wf = pe.Workflow(name=name)
    wf.config["execution"]["remove_unnecessary_outputs"] = "false"
    return wf


def _contexts(wf: pe.Workflow, names: list[tuple[Subject, str]]) -> None:
    """Tell :func:`~trx_nipype.workflows.runner.run_workflow` which subject each folder is."""
    wf.trx_nipype_contexts = {name: s.label for s, name in names}


def check_population(dataset: Dataset) -> None:
    """Refuse a population run where a subject lacks a bundle another subject has.

    Raises
    ------
    DatasetError
        Naming the first subject and the bundles it lacks.
    """
    for s in dataset.subjects:
        missing = [b for b in dataset.bundles if b not in s.bundles]
        if missing:
            raise DatasetError(
                f"{s.label}: no bundle {', '.join(map(repr, missing))} (found: "
                f"{', '.join(s.bundles)}); population files need every subject to have every "
                f"bundle: add the files, select subjects with --subjects, or turn the "
                f"population step off (--no-population)")


def _expect(wf: pe.Workflow, output_dir: Path, pipeline: str, description: str,
            outputs: list[str], links: dict[str, str]) -> None:
    """Tell :func:`~trx_nipype.workflows.runner.run_workflow` what this run writes: it locks
    the output folder, writes its ``dataset_description.json`` and warns about files of
    earlier runs that this one did not write."""
    wf.trx_nipype_outputs = OutputTree(str(output_dir), pipeline, description,
                                       tuple(outputs), links)


def dataset_links(dataset: Dataset) -> dict[str, str]:
    """The datasets that sidecars name sources in: ``{"raw": <the dataset's root>}``."""
    return {"raw": os.path.abspath(dataset.root)}


def described_links(dataset: Dataset) -> dict[str, str]:
    """``DatasetLinks`` of the output: the dataset's :attr:`~Dataset.uri`, else its root."""
    return {"raw": dataset.uri or os.path.abspath(dataset.root)}


def sink_node(name: str, output_dir: str | os.PathLike, pipeline: str, description: str,
              parameters: dict[str, Any], *, many: bool = False,
              links: dict[str, str] | None = None) -> pe.Node:
    """A :class:`~trx_nipype.interfaces.bids.DerivativesSink` node exporting to ``output_dir``.

    ``many`` makes it a :class:`~trx_nipype.interfaces.bids.DerivativesListSink` (a
    list of files, one node); ``links`` (name -> folder, :func:`dataset_links`) names
    the sources as BIDS URIs. Nothing is looked at on disk: a file of the sink that
    has gone missing is seen by the run, which reruns the sink
    (:func:`~trx_nipype.workflows.workdir.forget_missing_outputs`).
    """
    output_dir = Path(output_dir).absolute()
    kwargs = dict(out_dir=str(output_dir), dataset_links=dict(links or {}), metadata={
        "Pipeline": pipeline, "Description": description, "Parameters": parameters})
    return pe.Node((DerivativesListSink if many else DerivativesSink)(**kwargs), name=name)


def init_bundles_pipeline_wf(dataset: Dataset, output_dir: str | os.PathLike, *,
                             population: bool = True, nb_streamlines: int | str | None = None,
                             seed: int = 0, drop_mismatched_data: bool = True,
                             name: str = "trx_bundles_wf") -> pe.Workflow:
    """Subject assembly for every subject, then population bundles.

    Workflow graph::

        sub-01 (init_subject_bundles_wf: assemble) -> ds_subject --------\
        sub-02 ...                 |                                        |
        collect_subjects (Merge) <-/            collect_exports (Merge) <---/
             -> population_bundles_wf (iterables: bundle; concat) -> ds_population

    Nodes run: 2 per subject (``assemble``, ``ds_subject``), 2 per bundle
    (``concat``, ``ds_population``) and the two collectors. Per subject,
    :func:`~trx_nipype.workflows.bundles.init_subject_bundles_wf` assembles its
    bundle files into ``sub-XX/dwi/sub-XX_desc-bundles_tractogram.trx`` (one
    group per bundle). ``collect_subjects`` gathers every subject's TRX, and
    :func:`~trx_nipype.workflows.bundles.init_population_bundles_wf` writes
    ``population/tract-<name>_tractogram.trx`` (one group per subject) for
    each bundle. Each file is exported with a JSON sidecar. A subject that
    fails loses only its own outputs and the population files.

    Parameters
    ----------
    dataset : Dataset
        Subjects and their bundle files (:func:`~trx_nipype.workflows.dataset.find_dataset`).
    output_dir : str or os.PathLike
        Root of the derivatives tree.
    population : bool
        Also write the population bundles (needs every subject to have every
        bundle, in one common space: checked here, see :func:`check_population`).
    nb_streamlines : int, "min" or None
        Streamlines per subject in the population files (see
        :func:`~trx_nipype.workflows.bundles.init_population_bundles_wf`).
    seed : int
        Seed of the random subsets.
    drop_mismatched_data : bool
        Drop dps/dpv keys not shared by every input (else an error).
    name : str
        Name of the workflow (and of its folder in the work dir).

    Returns
    -------
    nipype.pipeline.engine.Workflow
        Run it with :func:`trx_nipype.workflows.runner.run_workflow` (or ``.run()``).

    Raises
    ------
    DatasetError
        If ``population`` and a subject lacks a bundle that another one has.
    """
    if population:
        check_population(dataset)
    output_dir = Path(output_dir).absolute()
    parameters = {"population": population, "nb_streamlines": nb_streamlines, "seed": seed,
                  "drop_mismatched_data": drop_mismatched_data}
    subjects = _subject_workflows(dataset)
    wf = _pipeline_workflow(name)
    description = ("One subject's bundle files assembled into one TRX: one group per bundle "
                   "(AssembleBundles).")
    links = dataset_links(dataset)
    subject_wfs = []
    for subject, wf_name in subjects:
        subject_wf = init_subject_bundles_wf(drop_mismatched_data=drop_mismatched_data,
                                             name=wf_name)
        inputnode = subject_wf.get_node("inputnode")  # (wf.inputs walks every node)
        inputnode.inputs.in_files = list(subject.files)
        inputnode.inputs.bundle_names = list(subject.bundles)
        inputnode.inputs.reference = subject.reference
        inputnode.inputs.out_filename = f"{subject.label}_desc-bundles_tractogram.trx"
        rel_path = subject_bundles_path(subject)
        ds_subject = sink_node("ds_subject", output_dir, "bundles", description, parameters,
                               links=links)
        ds_subject.inputs.rel_path = rel_path
        ds_subject.inputs.sources = list(subject.files)
        ds_subject.inputs.reference = subject.reference
        subject_wf.connect(subject_wf.get_node("outputnode"), "out_file", ds_subject, "in_file")
        subject_wfs.append(subject_wf)
    wf.add_nodes(subject_wfs)
    if population:
        n = len(subjects)
        # the subjects' TRX files, and their exports (the population sidecars' sources: the
        # population exports wait for them); tiny, so run where the run is (not submitted)
        collect = pe.Node(Merge(n), name="collect_subjects", run_without_submitting=True)
        exports = pe.Node(Merge(n), name="collect_exports", run_without_submitting=True)
        for node in (collect, exports):  # they hand paths on: the nodes that read the files
            node.config = {"execution": {"hash_method": "timestamp"}}  # hash their bytes
        for i, subject_wf in enumerate(subject_wfs, start=1):
            wf.connect([(subject_wf, collect, [("outputnode.out_file", f"in{i}")]),
                        (subject_wf, exports, [("ds_subject.out_file", f"in{i}")])])
        population_wf = init_population_bundles_wf(
            bundles=dataset.bundles, nb_streamlines=nb_streamlines, seed=seed,
            drop_mismatched_data=drop_mismatched_data)
        population_wf.inputs.inputnode.subjects = dataset.labels
        ds_population = sink_node("ds_population", output_dir, "bundles",
                                  POPULATION_DESCRIPTION, parameters, links=links)
        wf.connect([
            (collect, population_wf, [("out", "inputnode.in_files")]),
            (population_wf, ds_population, [("outputnode.out_file", "in_file"),
                                            (("outputnode.bundle", population_bundle_path,
                                              dataset.space), "rel_path")]),
            (exports, ds_population, [("out", "sources")]),
        ])
    _expect(wf, output_dir, "bundles", "Subject bundles assembled into TRX files, and "
            "population bundles (one group per subject).",
            pipeline_outputs(dataset, "bundles", population=population),
            described_links(dataset))
    _contexts(wf, subjects)
    return wf


def init_convert_pipeline_wf(dataset: Dataset, output_dir: str | os.PathLike, *,
                             out_format: str = "trx", positions_dtype: str | None = None,
                             compression: str = "stored", name: str = "trx_convert_wf"
                             ) -> pe.Workflow:
    """Convert every bundle file of a dataset to ``out_format``, keeping the layout.

    Workflow graph::

        sub-01 (init_convert_bundles_wf: convert) -> ds_converted
        sub-02 ...

    Two nodes per subject (all its files in each).

    ``<root>/sub-01/dwi/AF_L.trk`` becomes ``<output_dir>/sub-01/dwi/AF_L.<ext>``
    (with a JSON sidecar). The sidecar counts of a TCK/VTK/DPY output read it
    in the space of its conversion: the subject's reference image, else the
    source file itself when it is a TRX or TRK.

    Parameters
    ----------
    dataset : Dataset
        Subjects and their bundle files.
    output_dir : str or os.PathLike
        Root of the derivatives tree.
    out_format : str
        See :func:`~trx_nipype.workflows.conversion.init_convert_bundles_wf`.
    positions_dtype : str, optional
        Positions dtype of TRX outputs.
    compression : {"stored", "deflate"}
        Zip compression of ``.trx`` outputs.
    name : str
        Name of the workflow.

    Returns
    -------
    nipype.pipeline.engine.Workflow
    """
    if out_format not in OUTPUT_CHOICES:
        raise ValueError(f"unknown out_format {out_format!r}; one of {', '.join(OUTPUT_CHOICES)}")
    output_dir = Path(output_dir).absolute()
    subjects = _subject_workflows(dataset)
    wf = _pipeline_workflow(name)
    links = dataset_links(dataset)
    subject_wfs = []
    for subject, wf_name in subjects:
        convert_wf = init_convert_bundles_wf(out_format=out_format,
                                             positions_dtype=positions_dtype,
                                             compression=compression, name=wf_name)
        inputnode = convert_wf.get_node("inputnode")
        inputnode.inputs.in_files = list(subject.files)
        inputnode.inputs.reference = subject.reference
        rel_paths = [converted_path(dataset, f, out_format) for f in subject.files]
        ds = sink_node("ds_converted", output_dir, "convert",
                       f"A bundle file converted to {out_format} (ConvertTractograms).",
                       {"out_format": out_format, "positions_dtype": positions_dtype,
                        "compression": compression}, many=True, links=links)
        ds.inputs.rel_paths = rel_paths
        ds.inputs.sources = [[f] for f in subject.files]
        ds.inputs.references = [subject.reference or (f if carries_space(f) else None)
                                for f in subject.files]
        convert_wf.connect(convert_wf.get_node("outputnode"), "out_files", ds, "in_files")
        subject_wfs.append(convert_wf)
    wf.add_nodes(subject_wfs)
    _expect(wf, output_dir, "convert", f"Bundle files converted to {out_format}.",
            pipeline_outputs(dataset, "convert", out_format=out_format),
            described_links(dataset))
    _contexts(wf, subjects)
    return wf
