"""The derivatives tree as a whole: its ``dataset_description.json`` and its sidecars.

Each file of the tree is exported with its JSON sidecar by the sinks of
:mod:`trx_nipype.interfaces.bids` (:class:`~trx_nipype.interfaces.bids.DerivativesSink`,
sources named by BIDS URIs: :func:`~trx_nipype.interfaces.bids.source_uri`).
Here: :func:`write_dataset_description` writes the ``dataset_description.json``
of the output folder (the run does, before its nodes: a pipeline builder
touches no disk; :func:`check_description` refuses to replace one this tool
did not write), with ``DatasetLinks`` saying where each linked dataset is
(:func:`dataset_link`); :func:`resolve_source` finds the file a source names;
:func:`pipeline_sidecars` and :func:`stale_outputs` read a tree's sidecars;
:func:`pipeline_outputs` names the files a pipeline of
:mod:`~trx_nipype.workflows.pipelines` writes (without Nipype: a rerun that
finds nothing changed lists them without building the workflow).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import UsageError, param
from ..core.formats import OUTPUT_CHOICES, write_json
from ..core.naming import sidecar_path, strip_tractogram_extension
from ..core.operations.compare import WORK_DIR_MARKER
from .dataset import GENERATOR, Dataset, Subject


def resolve_source(name: str, out_dir: str | os.PathLike) -> Path | None:
    """The file a sidecar's source names (the inverse of :func:`source_uri`), or None.

    ``bids::<path>`` is inside ``out_dir``; ``bids:<name>:<path>`` inside the
    dataset that ``out_dir/dataset_description.json`` links as ``<name>``
    (None when that link is not a folder, e.g. the demo data's URL); any
    other name is a path relative to ``out_dir``.
    """
    out = Path(out_dir)
    if not name.startswith("bids:"):
        return out / name
    dataset, _, rel = name[len("bids:"):].partition(":")
    if not dataset:
        return out / rel
    try:
        doc = json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
        link = doc["DatasetLinks"][dataset]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(link, str) or "://" in link:
        return None
    return out / link / rel


def dataset_link(folder: str | os.PathLike, out_dir: str | os.PathLike) -> str:
    """The ``DatasetLinks`` value of a dataset: where it is, relative to the output folder.

    A URI (``https://...``, a dataset named by where it comes from) is kept as it is.

    >>> dataset_link("/data/bids", "/data/derivatives/trx")
    '../../bids'
    """
    if "://" in os.fspath(folder):
        return os.fspath(folder)
    return Path(os.path.relpath(os.path.abspath(os.fspath(folder)),
                                os.path.abspath(os.fspath(out_dir)))).as_posix()


def check_description(out_dir: str | os.PathLike) -> None:
    """Refuse an output folder whose ``dataset_description.json`` this tool did not write.

    Ours is a derivative description whose first ``GeneratedBy`` is
    :data:`GENERATOR`; anything else there (a raw dataset's description,
    another tool's, a file that cannot be read) describes another dataset,
    which a run must not take over. None at all is fine.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The output folder of a run.

    Raises
    ------
    UsageError
        Naming the file, what it describes, and the parameter to change
        (``output_dir``; ``--output-dir`` in the CLI).
    """
    path = Path(out_dir) / "dataset_description.json"
    if not os.path.lexists(path):
        return
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problem = f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
    else:
        doc = doc if isinstance(doc, dict) else {}
        by = doc.get("GeneratedBy")
        first = by[0] if isinstance(by, list) and by and isinstance(by[0], dict) else {}
        if doc.get("DatasetType") == "derivative" and first.get("Name") == GENERATOR \
                and path.is_file() and not path.is_symlink():
            return
        name = f"{doc['Name']!r}, " if isinstance(doc.get("Name"), str) else ""
        kind = doc.get("DatasetType", "raw")  # BIDS: raw when absent
        maker = f"by {first['Name']!r}" if isinstance(first.get("Name"), str) else \
            "by another tool or by hand"
        problem = f"describes another dataset ({name}DatasetType {kind!r}, written {maker})"
    raise UsageError(f"{path}: {problem}; {GENERATOR} never replaces a dataset description it "
                     f"did not write: choose another {param('output_dir')} (a new or empty "
                     f"folder, or one of an earlier {GENERATOR} run)")


def write_dataset_description(out_dir: str | os.PathLike, pipeline: str,
                              description: str,
                              dataset_links: Mapping[str, str | os.PathLike] | None = None
                              ) -> Path:
    """Write ``<out_dir>/dataset_description.json`` (BIDS derivatives).

    ``dataset_links`` (name -> folder, as given to the sinks) becomes its
    ``DatasetLinks``, each folder named by :func:`dataset_link` (relative to
    ``out_dir``: no absolute path). A description this tool did not write is
    never replaced (:func:`check_description` raises ``UsageError``).
    """
    out = Path(out_dir)
    check_description(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "dataset_description.json"
    doc: dict[str, Any] = {
        "Name": f"{GENERATOR} {pipeline}",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": GENERATOR, "Version": __version__,
                         "Description": description}],
    }
    if dataset_links:
        doc["DatasetLinks"] = {name: dataset_link(folder, out)
                               for name, folder in sorted(dataset_links.items())}
    write_json(doc, path)
    return path


def pipeline_sidecars(output_dir: str | os.PathLike
                      ) -> Iterator[tuple[Path, dict[str, Any], list[Path]]]:
    """Every JSON sidecar below ``output_dir`` that names a ``Pipeline``, with its data.

    Hidden folders and this tool's work dirs are not searched, and the
    root's ``dataset_description.json`` is not a sidecar.

    Parameters
    ----------
    output_dir : str or os.PathLike
        Root of the derivatives tree.

    Yields
    ------
    tuple
        ``(sidecar path, parsed sidecar, data files)``: the files (or TRX
        folders) next to it whose sidecar it is, sorted (empty when the data
        is gone); in walking order, folders and names sorted.
    """
    root = Path(output_dir)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if WORK_DIR_MARKER in filenames:
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            side = here / name
            if not name.endswith(".json") or name.startswith(".") \
                    or (here == root and name == "dataset_description.json"):
                continue
            try:
                doc = json.loads(side.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict) or not isinstance(doc.get("Pipeline"), str):
                continue
            yield side, doc, [here / d for d in sorted(filenames + dirnames)
                              if d != name and sidecar_path(here / d) == side]


def stale_outputs(output_dir: str | os.PathLike, pipeline: str, outputs: Sequence[str]
                  ) -> list[Path]:
    """Files of ``output_dir`` whose sidecar names ``pipeline`` but that are not in ``outputs``.

    They come from earlier runs over other subjects or bundles, and may
    contradict this run's files. Nothing is deleted. Folders of this tool's
    work dirs are not searched.

    Parameters
    ----------
    output_dir : str or os.PathLike
        Root of the derivatives tree.
    pipeline : str
        The ``Pipeline`` of this run's sidecars.
    outputs : sequence of str
        This run's files, relative to ``output_dir``.

    Returns
    -------
    list of pathlib.Path
        The data files (or, when none is found, the sidecars), sorted.
    """
    root = Path(output_dir)
    expected = {sidecar_path(root / rel) for rel in outputs}
    found: list[Path] = []
    for side, doc, data in pipeline_sidecars(root):
        if side not in expected and doc["Pipeline"] == pipeline:
            found.extend(data or [side])
    return sorted(found)


@dataclass(frozen=True)
class OutputTree:
    """The derivatives tree a pipeline writes, as its builder tells the run.

    A builder touches no disk: it attaches this to its workflow
    (``wf.trx_nipype_outputs``), and :func:`~trx_nipype.workflows.runner.run_workflow`
    locks :attr:`output_dir` for the run, writes its ``dataset_description.json``
    (:meth:`describe`) before any node runs, and afterwards warns about files
    of earlier runs of the same pipeline that this one did not write.
    """

    #: root of the tree (absolute)
    output_dir: str
    #: the ``Pipeline`` of its sidecars
    pipeline: str
    #: ``GeneratedBy[0].Description`` of its dataset description
    description: str
    #: the files the run writes, relative to :attr:`output_dir` (sidecars aside)
    outputs: tuple[str, ...] = ()
    #: ``DatasetLinks``: dataset name -> folder or URI
    links: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> Path:
        """Write ``<output_dir>/dataset_description.json`` (unchanged when it says the same)."""
        return write_dataset_description(self.output_dir, self.pipeline, self.description,
                                         self.links)


def subject_bundles_path(subject: Subject) -> str:
    """``sub-01/[ses-02/]dwi/sub-01[_ses-02][_space-X]_desc-bundles_tractogram.trx``.

    A ``desc-`` name (the file holds every bundle); ``space-`` when all the
    subject's files share one.
    """
    space = f"_space-{subject.space}" if subject.space else ""
    return "/".join((*subject.parts, "dwi",
                     f"{subject.label}{space}_desc-bundles_tractogram.trx"))


def population_bundle_path(bundle: str, space: str = "") -> str:
    """``population/[space-X_]tract-<name>_tractogram.trx`` (BEP046's ``tract-`` entity).

    Self-contained: a Nipype connection function (``space`` as its extra argument).
    """
    return f"population/{f'space-{space}_' if space else ''}tract-{bundle}_tractogram.trx"


def converted_path(dataset: Dataset, in_file: str, out_format: str) -> str:
    """The input's path relative to the dataset root, with the extension of ``out_format``."""
    rel = Path(os.path.relpath(in_file, dataset.root))
    name = strip_tractogram_extension(rel.name)  # x.trk.gz -> x
    return (rel.parent / (name + OUTPUT_CHOICES[out_format][0])).as_posix()


def pipeline_outputs(dataset: Dataset, pipeline: str = "bundles", *, population: bool = True,
                     out_format: str = "trx") -> list[str]:
    """The files a pipeline writes, relative to the output folder (sidecars aside)."""
    if pipeline == "convert":
        return [converted_path(dataset, f, out_format) for s in dataset.subjects
                for f in s.files]
    subjects = [subject_bundles_path(s) for s in dataset.subjects]
    return subjects + ([population_bundle_path(b, dataset.space) for b in dataset.bundles]
                       if population else [])
