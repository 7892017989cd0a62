"""Finding the subjects, bundles and reference images of a dataset on disk.

The default layout is BIDS-derivatives-like: ``sub-<label>/[ses-<label>/]dwi/*``.
Every tractogram file found there (``.trx`` zips and directories, ``.trk``,
``.tck``, ``.vtk``, ``.vtp``, ``.fib``, ``.dpy``) is one bundle of its subject
(or subject and session); a single NIfTI image (``.nii``/``.nii.gz``) next to
them is that subject's reference. Other files (JSON sidecars, ...) are ignored.

A bundle's name is its file name without the extension, without leading
``sub-<label>_``/``ses-<label>_`` entities, without a ``bundle-`` prefix and
without a ``_tractogram`` suffix: ``sub-01/dwi/sub-01_bundle-AF_L_tractogram.trk``
and ``sub-01/dwi/AF_L.trk`` are both the bundle ``AF_L``.

>>> bundle_name("sub-01_ses-2_bundle-AF_L_tractogram.trk")
'AF_L'
>>> bundle_name("CST_R.trx")
'CST_R'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: extensions of tractogram files (a ``.trx`` may also be a directory)
TRACTOGRAM_EXTENSIONS = (".trx", ".trk", ".tck", ".vtk", ".vtp", ".fib", ".dpy")
#: extensions of reference images
REFERENCE_EXTENSIONS = (".nii.gz", ".nii")
#: the default ``--pattern``s, relative to the dataset root
DEFAULT_PATTERNS = ("sub-*/dwi/*", "sub-*/ses-*/dwi/*")

_SUB = re.compile(r"^sub-[A-Za-z0-9]+$")
_SES = re.compile(r"^ses-[A-Za-z0-9]+$")
_ENTITY_PREFIX = re.compile(r"^(sub|ses)-[A-Za-z0-9]+_")


class DatasetError(ValueError):
    """The dataset cannot be used as asked (nothing found, ambiguous names, ...)."""


@dataclass(frozen=True)
class Subject:
    """One unit of processing: a subject (or a subject's session) and its bundle files.

    Attributes
    ----------
    label : str
        ``sub-01`` or ``sub-01_ses-02``: the prefix of output names, the
        iterable value in the work dir and the group name in population files.
    subject, session : str
        ``sub-01`` and ``ses-02`` (``session`` is ``""`` without sessions).
    files : tuple of str
        Bundle files, sorted by bundle name.
    bundles : tuple of str
        Bundle names, in the order of ``files``.
    reference : str or None
        The reference image for formats that need one (``.tck``, ``.vtk``, ...).
    """

    label: str
    subject: str
    session: str = ""
    files: tuple[str, ...] = ()
    bundles: tuple[str, ...] = ()
    reference: str | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        """Output folders of this subject: ``("sub-01",)`` or ``("sub-01", "ses-02")``."""
        return (self.subject, self.session) if self.session else (self.subject,)


@dataclass
class Dataset:
    """Subjects found under ``root`` (see :func:`find_dataset`)."""

    root: Path
    subjects: list[Subject] = field(default_factory=list)
    patterns: tuple[str, ...] = DEFAULT_PATTERNS

    @property
    def bundles(self) -> list[str]:
        """Every bundle name of any subject, sorted."""
        return sorted({b for s in self.subjects for b in s.bundles})

    @property
    def labels(self) -> list[str]:
        """The subjects' labels, in processing order."""
        return [s.label for s in self.subjects]

    def subject(self, label: str) -> Subject:
        """The subject (or session) called ``label``."""
        for s in self.subjects:
            if s.label == label:
                return s
        raise KeyError(label)


def _extension(path: Path) -> str | None:
    name = path.name.lower()
    for ext in TRACTOGRAM_EXTENSIONS + REFERENCE_EXTENSIONS:
        if name.endswith(ext):
            return ext
    return None


def is_tractogram(path: str | os.PathLike) -> bool:
    """A tractogram file (by extension), or a TRX directory."""
    path = Path(path)
    if path.is_dir():
        return (path / "header.json").is_file()
    return _extension(path) in TRACTOGRAM_EXTENSIONS


def bundle_name(filename: str) -> str:
    """The bundle name of a file name (see the module docstring)."""
    name = Path(filename).name
    ext = _extension(Path(name))
    if ext:
        name = name[: -len(ext)]
    while True:
        stripped = _ENTITY_PREFIX.sub("", name, count=1)
        if stripped == name:
            break
        name = stripped
    name = name.removeprefix("bundle-")
    name = name.removesuffix("_tractogram")
    return name


def _labels(rel: Path) -> tuple[str, str]:
    """(subject, session) of a path relative to the root."""
    parts = rel.parts[:-1]
    subject = next((p for p in parts if _SUB.match(p)), parts[0] if parts else "")
    session = next((p for p in parts if _SES.match(p)), "")
    return subject, session


def find_dataset(root: str | os.PathLike, patterns: Sequence[str] | str | None = None,
                 subjects: Iterable[str] | None = None,
                 reference: str | os.PathLike | None = None) -> Dataset:
    """Find the subjects and bundle files under ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        The dataset folder.
    patterns : str or sequence of str, optional
        Glob patterns relative to ``root`` (default :data:`DEFAULT_PATTERNS`).
        The subject is the first folder of a match named ``sub-<label>`` (else
        its first folder); the session the first named ``ses-<label>``.
    subjects : iterable of str, optional
        Keep only these subjects (``sub-01`` or ``01``; a ``sub-01`` keeps all
        its sessions, ``sub-01_ses-02`` one of them).
    reference : str or os.PathLike, optional
        A reference image for every subject (instead of one found next to the
        bundles).

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        If ``root`` or ``reference`` does not exist, nothing matches, a subject
        asked for is not there, a subject has two bundles of the same name or
        two candidate reference images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: input folder not found")
    if reference is not None and not Path(reference).is_file():
        raise DatasetError(f"{reference}: reference image not found")
    if isinstance(patterns, str):
        patterns = (patterns,)
    patterns = tuple(patterns or DEFAULT_PATTERNS)
    found: dict[tuple[str, str], dict[str, list[Path]]] = {}
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path.name.startswith("."):
                continue
            rel = path.relative_to(root)
            kind = "bundles" if is_tractogram(path) else (
                "references" if _extension(path) in REFERENCE_EXTENSIONS else None)
            if kind is None:
                continue
            entry = found.setdefault(_labels(rel), {"bundles": [], "references": []})
            if path not in entry[kind]:
                entry[kind].append(path)
    if not found:
        raise DatasetError(f"{root}: no tractogram matches {' or '.join(patterns)}")
    dataset = Dataset(root=root, patterns=patterns)
    for (subject, session), entry in sorted(found.items()):
        label = f"{subject}_{session}" if session else subject
        if not entry["bundles"]:
            continue
        dataset.subjects.append(_subject(label, subject, session, entry, reference))
    if not dataset.subjects:
        raise DatasetError(f"{root}: no tractogram matches {' or '.join(patterns)}")
    if subjects is not None:
        dataset.subjects = _keep(dataset, list(subjects))
    return dataset


def _subject(label: str, subject: str, session: str, entry: dict[str, list[Path]],
             reference: str | os.PathLike | None) -> Subject:
    by_name: dict[str, Path] = {}
    for path in entry["bundles"]:
        name = bundle_name(path.name)
        if name in by_name:
            raise DatasetError(f"{label}: {path}: bundle name {name!r} is also the name of "
                               f"{by_name[name]}")
        by_name[name] = path
    refs = entry["references"]
    if reference is not None:
        ref: str | None = os.path.abspath(reference)
    elif len(refs) > 1:
        raise DatasetError(f"{label}: {len(refs)} reference images "
                           f"({', '.join(p.name for p in refs)}); keep one or pass --reference")
    else:
        ref = os.path.abspath(refs[0]) if refs else None
    names = sorted(by_name)
    return Subject(label=label, subject=subject, session=session,
                   files=tuple(os.path.abspath(by_name[n]) for n in names),
                   bundles=tuple(names), reference=ref)


def _keep(dataset: Dataset, wanted: list[str]) -> list[Subject]:
    keep: list[Subject] = []
    for want in wanted:
        want = want if want.startswith("sub-") else f"sub-{want}"
        hits = [s for s in dataset.subjects if want in (s.label, s.subject)]
        if not hits:
            raise DatasetError(f"{dataset.root}: no subject {want!r}; subjects found: "
                               f"{', '.join(dataset.labels)}")
        keep.extend(s for s in hits if s not in keep)
    return [s for s in dataset.subjects if s in keep]
