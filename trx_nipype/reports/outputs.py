"""A run's outputs, found through their sidecars, and paths shown without the machine's.

:func:`find_run_outputs` walks an output folder for JSON sidecars that name a
``Pipeline`` (what :class:`~trx_nipype.workflows.derivatives.DerivativesSink`
writes) and pairs each with its tractogram. Names are not assumed: a file
below a ``sub-<label>[/ses-<label>]`` folder belongs to that subject, any
other to the population; its label comes from a ``tract-``/``bundle-``
entity of its name (BIDS BEP046 or this tool's older names), else from the
name itself.

:func:`display_path` and :func:`scrub_paths` keep absolute paths of the
machine out of a report: a path inside the output folder is shown relative
to it, any other absolute path by its tail from the subject folder on
(``…/sub-01/dwi/AF_L.trk``) or by its name.

>>> output_label("sub-01_tract-AF_L_tractogram.trx"), output_label("bundle-CST_R_tractogram.trx")
('AF_L', 'CST_R')
>>> display_path("/data/study/sub-01/dwi/AF_L.trk", "/data/out")
'…/sub-01/dwi/AF_L.trk'
>>> scrub_paths("/data/out/sub-02/x.trx: truncated (see /tmp/crash.pklz)", "/data/out")
'sub-02/x.trx: truncated (see …/crash.pklz)'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..core.naming import strip_tractogram_extension
from ..workflows.dataset import SESSION_FOLDER, SUBJECT_FOLDER, bundle_name, is_tractogram

_LABEL = re.compile(r"(?:^|_)(?:tract|bundle)-(.+?)(?=_(?:desc|space|ses|run|acq|rec|res|den)-"
                    r"|$)")
#: an absolute POSIX path inside a message (not the ``//`` of a URL)
_ABSOLUTE = re.compile(r"(?<![\w.~:/-])/[^\s'\"`,;()<>\[\]{}]+")


@dataclass(frozen=True)
class RunOutput:
    """One tractogram of an output folder and its sidecar.

    Attributes
    ----------
    path : pathlib.Path
        The file (or TRX directory).
    rel : str
        Its path relative to the output folder (``/``-separated).
    sidecar : dict
        The parsed JSON sidecar (``Pipeline``, ``Sources``, ``Parameters``,
        ``Counts``, ``Software``, ...).
    subject : str or None
        ``sub-01`` or ``sub-01_ses-02`` for a subject's file, None for a
        population file.
    label : str
        The bundle (or file) label: see :func:`output_label`.
    """

    path: Path
    rel: str
    sidecar: dict[str, Any] = field(repr=False)
    subject: str | None
    label: str

    @property
    def stem(self) -> str:
        """The file name without extension and ``_tractogram`` suffix."""
        return strip_tractogram_extension(self.path.name).removesuffix("_tractogram")


def output_label(filename: str) -> str:
    """A bundle's label from a file name: its ``tract-`` or ``bundle-`` entity, else its name."""
    stem = strip_tractogram_extension(Path(filename).name).removesuffix("_tractogram")
    match = _LABEL.search(stem)
    return match.group(1) if match else bundle_name(filename)


def subject_of(rel: str) -> str | None:
    """``sub-01`` or ``sub-01_ses-02`` from a path's folders, None outside a subject folder."""
    parts = PurePosixPath(rel).parts[:-1]
    subject = next((p for p in parts if SUBJECT_FOLDER.match(p)), None)
    if subject is None:
        return None
    session = next((p for p in parts if SESSION_FOLDER.match(p)), None)
    return f"{subject}_{session}" if session else subject


def find_run_outputs(out_dir: str | os.PathLike) -> list[RunOutput]:
    """Every tractogram of ``out_dir`` whose sidecar names a ``Pipeline``, sorted by path.

    Hidden folders and this tool's work folders are not searched
    (:func:`~trx_nipype.workflows.derivatives.pipeline_sidecars`).
    """
    from ..workflows.derivatives import pipeline_sidecars

    root = Path(out_dir)
    found: list[RunOutput] = []
    for _side, doc, data in pipeline_sidecars(root):
        for path in data:
            if is_tractogram(path):
                rel = path.relative_to(root).as_posix()
                found.append(RunOutput(path, rel, doc, subject_of(rel), output_label(path.name)))
    return sorted(found, key=lambda o: o.rel)


def display_path(path: str, out_dir: str | os.PathLike) -> str:
    """``path`` as a report shows it: never an absolute path of this machine.

    Relative paths and URIs are shown as they are; an absolute path inside
    ``out_dir`` relative to it; any other absolute path from its last
    ``sub-<label>`` folder on, or by its name, after ``…/``.
    """
    if not os.path.isabs(path):
        return path
    for root in {os.path.abspath(out_dir), os.path.realpath(out_dir)}:
        rel = os.path.relpath(os.path.abspath(path), root)
        if rel != "." and not rel.startswith(".."):
            return PurePosixPath(*Path(rel).parts).as_posix()
    parts = PurePosixPath(path).parts[1:]
    subs = [k for k, p in enumerate(parts) if SUBJECT_FOLDER.match(p)]
    tail = parts[subs[-1]:] if subs and subs[-1] < len(parts) - 1 else parts[-1:]
    return "…/" + "/".join(tail)


def scrub_paths(text: str, out_dir: str | os.PathLike) -> str:
    """``text`` with every absolute path replaced by :func:`display_path`'s form."""
    return _ABSOLUTE.sub(lambda m: display_path(m.group(0), out_dir), text)
