"""Whole pipelines over a dataset: subjects as iterables, population steps as joins.

Each builder takes a :class:`~trx_nipype.workflows.dataset.Dataset` and an
output folder and returns a Nipype workflow that writes a derivatives tree
(see :mod:`trx_nipype.workflows.derivatives`)::

    <output_dir>/dataset_description.json
    <output_dir>/sub-01/dwi/sub-01_desc-bundles_tractogram.trx  (+ .json)
    <output_dir>/population/bundle-AF_L_tractogram.trx          (+ .json)

Nipype caches every node in the work dir: a rerun with nothing changed
executes no node, and a changed input file reruns only what depends on it.
An export node whose file has gone missing from the output folder is rerun.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nipype.interfaces.base import BaseInterfaceInputSpec, SimpleInterface, TraitedSpec, traits
from nipype.interfaces.utility import IdentityInterface
from nipype.pipeline import engine as pe

from .bundles import init_population_bundles_wf, init_subject_bundles_wf
from .conversion import init_convert_bundles_wf
from .dataset import Dataset, DatasetError, Subject, strip_tractogram_extension
from .derivatives import (
    DerivativesSink,
    carries_space,
    sidecar_path,
    write_dataset_description,
)

#: the pipelines of ``trx-nipype run --pipeline``
PIPELINES = ("bundles", "convert")

#: the ``Description`` of a population file's sidecar
POPULATION_DESCRIPTION = ("One bundle of every subject in one TRX: one group per subject "
                          "(SelectGroup, ResizeTrx when balanced, ConcatenateTrx).")

_FORMAT_EXT = {"trx": ".trx", "trx_dir": "", "trk": ".trk", "tck": ".tck", "vtk": ".vtk",
               "vtp": ".vtp", "fib": ".fib", "dpy": ".dpy"}


def subject_bundles_path(subject: Subject) -> str:
    """``sub-01/[ses-02/]dwi/sub-01[_ses-02]_desc-bundles_tractogram.trx``."""
    return "/".join((*subject.parts, "dwi", f"{subject.label}_desc-bundles_tractogram.trx"))


def population_bundle_path(bundle: str) -> str:
    """``population/bundle-<name>_tractogram.trx`` (self-contained: a connection function)."""
    return f"population/bundle-{bundle}_tractogram.trx"


def converted_path(dataset: Dataset, in_file: str, out_format: str) -> str:
    """The input's path relative to the dataset root, with the extension of ``out_format``."""
    rel = Path(os.path.relpath(in_file, dataset.root))
    name = strip_tractogram_extension(rel.name)  # x.trk.gz -> x
    return (rel.parent / (name + _FORMAT_EXT[out_format])).as_posix()


def pipeline_outputs(dataset: Dataset, pipeline: str = "bundles", *, population: bool = True,
                     out_format: str = "trx") -> list[str]:
    """The files a pipeline writes, relative to the output folder (sidecars aside)."""
    if pipeline == "convert":
        return [converted_path(dataset, f, out_format) for s in dataset.subjects
                for f in s.files]
    subjects = [subject_bundles_path(s) for s in dataset.subjects]
    return subjects + ([population_bundle_path(b) for b in dataset.bundles] if population
                       else [])


class _SubjectFieldsInputSpec(BaseInterfaceInputSpec):
    subject = traits.Str(mandatory=True, desc="the subject's label (the iterable value)")
    table = traits.Dict(mandatory=True, hash_files=False,
                        desc="label -> fields of every subject; hashed by value, not by the "
                             "files it names (a changed file reruns what reads it, not this)")


class _SubjectFieldsOutputSpec(TraitedSpec):
    in_files = traits.List(traits.Str, desc="the subject's bundle files")
    bundle_names = traits.List(traits.Str, desc="their bundle names")
    reference = traits.Any(desc="reference image or None")
    out_filename = traits.Str(desc="name of the assembled TRX")
    rel_path = traits.Str(desc="its path in the derivatives tree")
    rel_paths = traits.List(traits.Str, desc="converted files' paths in the derivatives tree")
    sources = traits.List(traits.List(traits.Str), desc="[[file] for each bundle file]")
    references = traits.List(traits.Any, desc="for each bundle file, the space of its "
                             "conversion: the reference image, else the file itself when it "
                             "carries one (TRX, TRK), else None")


class SubjectFields(SimpleInterface):
    """Look up one subject's files and output names in a table made at build time."""

    input_spec = _SubjectFieldsInputSpec
    output_spec = _SubjectFieldsOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        self._results.update(self.inputs.table[self.inputs.subject])
        return runtime


def _subject_table(dataset: Dataset, out_format: str | None = None) -> dict[str, dict[str, Any]]:
    table = {}
    for s in dataset.subjects:
        table[s.label] = {
            "in_files": list(s.files), "bundle_names": list(s.bundles),
            "reference": s.reference,
            "out_filename": f"{s.label}_desc-bundles_tractogram.trx",
            "rel_path": subject_bundles_path(s),
            "rel_paths": [converted_path(dataset, f, out_format) for f in s.files]
            if out_format else [],
            "sources": [[f] for f in s.files],
            "references": [s.reference or (f if carries_space(f) else None) for f in s.files]
            if out_format else [],
        }
    return table


def _subject_nodes(dataset: Dataset, table: dict[str, dict[str, Any]]
                   ) -> tuple[pe.Node, pe.Node]:
    """The subject iterable (``subjectsource``) and the lookup of its files (``subject_info``)."""
    if not dataset.subjects:
        raise ValueError(f"{dataset.root}: no subjects to process")
    subjectsource = pe.Node(IdentityInterface(fields=["subject"]), name="subjectsource")
    subjectsource.iterables = ("subject", dataset.labels)
    info = pe.Node(SubjectFields(), name="subject_info")
    info.inputs.table = table
    return subjectsource, info


def outputs_missing(output_dir: str | os.PathLike, destinations: Sequence[str]) -> bool:
    """True when a destination (or its sidecar) is not in ``output_dir``: rerun its export."""
    output_dir = Path(output_dir)
    return any(not (output_dir / d).exists() or not sidecar_path(output_dir / d).exists()
               for d in destinations)


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


def _expect(wf: pe.Workflow, output_dir: Path, pipeline: str, outputs: list[str]) -> None:
    """Tell :func:`~trx_nipype.workflows.runner.run_workflow` what this run writes (to warn
    about files of earlier runs that it did not write)."""
    wf.trx_nipype_outputs = {"output_dir": str(output_dir), "pipeline": pipeline,
                             "outputs": list(outputs)}


def dataset_links(dataset: Dataset) -> dict[str, str]:
    """The datasets that sidecars name sources in: ``{"raw": <the dataset's root>}``."""
    return {"raw": os.path.abspath(dataset.root)}


def sink_node(name: str, output_dir: str | os.PathLike, pipeline: str, description: str,
              parameters: dict[str, Any], destinations: Sequence[str],
              iterfield: Sequence[str] | None = None,
              links: dict[str, str] | None = None) -> pe.Node:
    """A :class:`DerivativesSink` node; rerun (only) when one of its files is missing.

    ``destinations`` are the files it writes, relative to ``output_dir``
    (:func:`outputs_missing` decides, at build time, whether to force a rerun);
    ``iterfield`` makes it a MapNode; ``links`` (name -> folder,
    :func:`dataset_links`) names the sources as BIDS URIs.
    """
    output_dir = Path(output_dir).absolute()
    kwargs = dict(out_dir=str(output_dir), dataset_links=dict(links or {}), metadata={
        "Pipeline": pipeline, "Description": description, "Parameters": parameters})
    node = pe.MapNode(DerivativesSink(**kwargs), iterfield=list(iterfield), name=name) \
        if iterfield else pe.Node(DerivativesSink(**kwargs), name=name)
    if outputs_missing(output_dir, destinations):
        node.overwrite = True
    return node


def init_bundles_pipeline_wf(dataset: Dataset, output_dir: str | os.PathLike, *,
                             population: bool = True, nb_streamlines: int | str | None = None,
                             seed: int = 0, drop_mismatched_data: bool = True,
                             name: str = "trx_bundles_wf") -> pe.Workflow:
    """Subject assembly for every subject, then population bundles.

    Workflow graph::

        subjectsource (iterables: subject) -> subject_info -> subject_bundles_wf -> ds_subject
                                                                      |
        join_subjects (JoinNode over subjectsource) <-----------------/
             -> population_bundles_wf (iterables: bundle) -> ds_population

    Per subject, :func:`~trx_nipype.workflows.bundles.init_subject_bundles_wf`
    assembles its bundle files into ``sub-XX/dwi/sub-XX_desc-bundles_tractogram.trx``
    (one group per bundle). The join collects every subject's TRX, and
    :func:`~trx_nipype.workflows.bundles.init_population_bundles_wf` writes
    ``population/bundle-<name>_tractogram.trx`` (one group per subject) for
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
    table = _subject_table(dataset)
    wf = pe.Workflow(name=name)
    subjectsource, info = _subject_nodes(dataset, table)
    subject_wf = init_subject_bundles_wf(drop_mismatched_data=drop_mismatched_data)
    links = dataset_links(dataset)
    ds_subject = sink_node("ds_subject", output_dir, "bundles", "One subject's bundle files "
                           "assembled into one TRX: one group per bundle (ConcatenateTrx, "
                           "group_by_input).", parameters,
                           [subject_bundles_path(s) for s in dataset.subjects], links=links)
    wf.connect([
        (subjectsource, info, [("subject", "subject")]),
        (info, subject_wf, [("in_files", "inputnode.in_files"),
                            ("bundle_names", "inputnode.bundle_names"),
                            ("reference", "inputnode.reference"),
                            ("out_filename", "inputnode.out_filename")]),
        (subject_wf, ds_subject, [("outputnode.out_file", "in_file")]),
        (info, ds_subject, [("rel_path", "rel_path"), ("in_files", "sources"),
                            ("reference", "reference")]),
    ])
    if population:
        join = pe.JoinNode(IdentityInterface(fields=["in_files", "subjects", "derivatives"]),
                           joinsource=subjectsource, joinfield=["in_files", "subjects",
                                                                "derivatives"],
                           name="join_subjects")
        population_wf = init_population_bundles_wf(
            bundles=dataset.bundles, nb_streamlines=nb_streamlines, seed=seed,
            drop_mismatched_data=drop_mismatched_data)
        ds_population = sink_node("ds_population", output_dir, "bundles",
                                  POPULATION_DESCRIPTION, parameters,
                                  [population_bundle_path(b) for b in dataset.bundles],
                                  links=links)
        wf.connect([
            (subject_wf, join, [("outputnode.out_file", "in_files")]),
            (subjectsource, join, [("subject", "subjects")]),
            (ds_subject, join, [("out_file", "derivatives")]),
            (join, population_wf, [("in_files", "inputnode.in_files"),
                                   ("subjects", "inputnode.subjects")]),
            (population_wf, ds_population, [("outputnode.out_file", "in_file"),
                                            (("outputnode.bundle", population_bundle_path),
                                             "rel_path")]),
            (join, ds_population, [("derivatives", "sources")]),
        ])
    write_dataset_description(output_dir, "bundles", "Subject bundles assembled into TRX "
                              "files, and population bundles (one group per subject).", links)
    _expect(wf, output_dir, "bundles", pipeline_outputs(dataset, "bundles",
                                                        population=population))
    return wf


def init_convert_pipeline_wf(dataset: Dataset, output_dir: str | os.PathLike, *,
                             out_format: str = "trx", positions_dtype: str | None = None,
                             compression: str = "stored", name: str = "trx_convert_wf"
                             ) -> pe.Workflow:
    """Convert every bundle file of a dataset to ``out_format``, keeping the layout.

    Workflow graph::

        subjectsource (iterables: subject) -> subject_info -> convert_bundles_wf
            -> ds_converted (MapNode: one export per file)

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
    if out_format not in _FORMAT_EXT:
        raise ValueError(f"unknown out_format {out_format!r}; one of {', '.join(_FORMAT_EXT)}")
    output_dir = Path(output_dir).absolute()
    table = _subject_table(dataset, out_format)
    wf = pe.Workflow(name=name)
    subjectsource, info = _subject_nodes(dataset, table)
    convert_wf = init_convert_bundles_wf(out_format=out_format, positions_dtype=positions_dtype,
                                         compression=compression)
    ds = sink_node("ds_converted", output_dir, "convert",
                   f"A bundle file converted to {out_format} (ConvertTractogram).",
                   {"out_format": out_format, "positions_dtype": positions_dtype,
                    "compression": compression},
                   [p for entry in table.values() for p in entry["rel_paths"]],
                   iterfield=["in_file", "rel_path", "sources", "reference"],
                   links=dataset_links(dataset))
    wf.connect([
        (subjectsource, info, [("subject", "subject")]),
        (info, convert_wf, [("in_files", "inputnode.in_files"),
                            ("reference", "inputnode.reference")]),
        (convert_wf, ds, [("outputnode.out_files", "in_file")]),
        (info, ds, [("rel_paths", "rel_path"), ("sources", "sources"),
                    ("references", "reference")]),
    ])
    write_dataset_description(output_dir, "convert", f"Bundle files converted to {out_format}.",
                              dataset_links(dataset))
    _expect(wf, output_dir, "convert", pipeline_outputs(dataset, "convert",
                                                        out_format=out_format))
    return wf
