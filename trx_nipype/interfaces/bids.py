"""BIDS derivatives: a result exported from the work dir with a JSON sidecar beside it.

:class:`DerivativesSink` copies one result from a node's working directory to
``<out_dir>/<rel_path>`` (to a temporary sibling first, then renamed into
place, so a reader never sees a partial file) and writes
``<rel_path without extension>.json`` next to it (:func:`~trx_nipype.core.naming.sidecar_path`),
saying how the file was made; :class:`DerivativesListSink` does the same for a
list of results in one node, and :class:`AnalysisSink` for any result of the
analysis nodes (a tractogram, a NIfTI image or a table) whose sources lie in
no dataset (named by their file name). All call :func:`export_derivative`::

    {
      "Pipeline": "bundles",
      "Description": "...",
      "Parameters": {...},
      "Sources": [{"path": "bids:raw:sub-01/dwi/AF_L.trk", "sha256": "..."}, ...],
      "Counts": {"NB_STREAMLINES": 150, "NB_VERTICES": 3000,
                 "Groups": {"AF_L": 50, ...}, "DPS": [...], "DPV": [...]},
      "sha256": "<digest of the file>",
      "Software": {"trx-nipype": "0.1.0", "nipype": "...", "dipy": "...", ...}
    }

Sidecars carry no dates, host names or absolute paths: the same inputs and
parameters give the same sidecar, wherever the input, output and work folders
are. A source is named by a BIDS URI (:func:`source_uri`):
``bids:<name>:<path>`` for a file of a linked dataset (``dataset_links``:
name -> folder, e.g. ``{"raw": "/data/bids"}``), ``bids::<path>`` for a file of
this output folder (a derivative made from another one), else its path
relative to the output folder. The dataset-level files (``dataset_description.json``
with its ``DatasetLinks``, the sidecars of a whole tree) are
:mod:`trx_nipype.workflows.derivatives`'.

The sinks are the niworkflows ``DerivativesDataSink`` of this package (kept in
``interfaces/bids.py`` there too). Every path input (the result, its sources
and reference) is hashed as tractograms are (:mod:`trx_nipype.interfaces._hashing`):
under ``hash_method = content`` a cached rerun reads none of them again.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from .. import __version__
from ..core.formats import carries_space, write_json
from ..core.naming import sidecar_path
from ._hashing import companions, file_digest
from ._traits import TrxInputSpec, TrxPath, TrxPathList


def software_versions() -> dict[str, str]:
    """Versions of trx-nipype, its dependencies and Python."""
    import dipy
    import nibabel
    import nipype
    import numpy

    return {"trx-nipype": __version__, "nipype": nipype.__version__, "dipy": dipy.__version__,
            "nibabel": nibabel.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def sha256_path(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of a directory's members (sorted ``name\\0digest\\n`` lines).

    File digests come from the persistent digest cache
    (:func:`trx_nipype.interfaces._hashing.file_digest`, keyed by ``stat``): a
    source already hashed is not read again, whichever sink asks.
    """
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for member in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = member.relative_to(path).as_posix()
            digest.update(f"{rel}\0{file_digest(member, member.stat())}\n".encode())
        return digest.hexdigest()
    return file_digest(path)


def tractogram_counts(path: str | os.PathLike, reference: str | None = None
                      ) -> dict[str, Any]:
    """Streamline, vertex and per-group counts of a tractogram file (any readable format).

    ``reference`` gives the space of formats without one (TCK, VTK, DPY); the
    counts do not depend on it, but those files cannot be read without one. It
    is not used for TRX and TRK files, which carry their own space.

    Raises
    ------
    ValueError
        If ``path`` is in a format without a space and no ``reference`` is given.
    """
    from ..core import load_any
    from ..core.formats import detect_format

    fmt = detect_format(path)
    if carries_space(path):
        reference = None
    elif reference is None:
        raise ValueError(f"{os.fspath(path)}: a .{fmt} output carries no space, and counting "
                         "its streamlines needs one: give the export a reference image "
                         "(DerivativesSink's reference input)")
    with load_any(path, reference=reference) as trx:
        return {"NB_STREAMLINES": len(trx), "NB_VERTICES": trx.nb_vertices,
                "Groups": {g: int(len(idx)) for g, idx in sorted(trx.groups.items())},
                "DPS": sorted(trx.dps), "DPV": sorted(trx.dpv)}


def result_counts(path: str | os.PathLike, reference: str | None = None) -> dict[str, Any]:
    """Counts for a sidecar: a tractogram's (:func:`tractogram_counts`), an image's shape
    and nonzero voxels, a table's rows."""
    name = os.fspath(path).lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib
        import numpy as np

        img = nib.load(os.fspath(path))
        data = np.asanyarray(img.dataobj)
        return {"Shape": [int(s) for s in img.shape], "NonzeroVoxels": int(np.count_nonzero(data))}
    if name.endswith((".csv", ".tsv")):
        with open(path, encoding="utf-8") as fh:
            return {"Rows": max(sum(1 for _ in fh) - 1, 0)}
    return tractogram_counts(path, reference=reference)


def _inside(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` (POSIX), or None when it is not inside it."""
    rel = os.path.relpath(path, root)
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return Path(rel).as_posix()


def source_uri(path: str | os.PathLike, out_dir: str | os.PathLike,
               dataset_links: Mapping[str, str | os.PathLike] | None = None) -> str:
    """How a sidecar names a source: a BIDS URI, never an absolute path.

    ``bids:<name>:<relative path>`` for a file inside the folder of
    ``dataset_links[name]``, ``bids::<relative path>`` for a file inside
    ``out_dir`` (this dataset); the innermost folder wins (a raw dataset
    inside the output folder is still ``raw``). Any other file is named by
    its path relative to ``out_dir``.

    >>> links = {"raw": "/data/bids"}
    >>> source_uri("/data/bids/sub-01/dwi/AF_L.trk", "/out", links)
    'bids:raw:sub-01/dwi/AF_L.trk'
    >>> source_uri("/out/sub-01/dwi/sub-01_tractogram.trx", "/out", links)
    'bids::sub-01/dwi/sub-01_tractogram.trx'
    >>> source_uri("/refs/t1.nii.gz", "/out", links)
    '../refs/t1.nii.gz'
    """
    roots = [("", os.fspath(out_dir))] + [(name, os.fspath(folder)) for name, folder
                                          in sorted((dataset_links or {}).items())]
    for resolve in (os.path.abspath, os.path.realpath):  # as given, then links resolved
        target = resolve(os.fspath(path))
        found = [(len(resolve(root)), name, rel) for name, root in roots
                 if (rel := _inside(target, resolve(root))) is not None]
        if found:
            _, name, rel = max(found)
            return f"bids:{name}:{rel}"
    return Path(os.path.relpath(os.path.abspath(os.fspath(path)),
                                os.path.abspath(os.fspath(out_dir)))).as_posix()


def _stage(src: Path, staged: Path) -> Path:
    """Copy ``src`` (and its companions, renamed after ``staged``) to ``staged``."""
    if src.is_dir():
        shutil.copytree(src, staged)
    else:
        shutil.copyfile(src, staged)
        for have, want in zip(companions(os.fspath(src)), companions(os.fspath(staged)),
                              strict=True):
            if have.is_file():
                shutil.copyfile(have, want)
    return staged


def _commit(staged: Path, dest: Path, tmp: Path) -> None:
    """Rename a staged file (companions first) or tree into place at ``dest``.

    A directory already at ``dest`` is moved aside into ``tmp`` (removed with
    it), so ``dest`` is always either the old or the new tree. A stale
    companion at the destination is removed when the staged file has none.
    """
    pairs = [] if staged.is_dir() else zip(companions(os.fspath(staged)),
                                          companions(os.fspath(dest)), strict=True)
    for have, want in pairs:
        if have.is_file():
            os.replace(have, want)
        else:
            want.unlink(missing_ok=True)
    if dest.is_dir() and not dest.is_symlink():
        os.replace(dest, tmp / ".old")
    os.replace(staged, dest)


def destination(out_dir: str | os.PathLike, rel_path: str) -> Path:
    """``out_dir/rel_path``, refused (``ValueError``) unless it resolves inside ``out_dir``."""
    root = Path(os.path.realpath(out_dir))
    dest = Path(os.path.realpath(Path(out_dir) / rel_path))
    if not rel_path or os.path.isabs(rel_path) or root not in dest.parents:
        raise ValueError(f"{rel_path!r}: destination is not inside the output folder {root}")
    return Path(out_dir) / rel_path


def export_derivative(in_file: str | os.PathLike, out_dir: str | os.PathLike, rel_path: str,
                      *, sources: Sequence[str] = (), metadata: Mapping[str, Any] | None = None,
                      reference: str | None = None,
                      dataset_links: Mapping[str, str | os.PathLike] | None = None,
                      sources_by_name: bool = False) -> tuple[Path, Path]:
    """Copy ``in_file`` to ``out_dir/rel_path`` atomically and write its sidecar.

    The copy (and its companions: a TRK's ``.groups.json``) is staged in a
    temporary sibling, counted and hashed there, the sidecar is written, and
    only then is the data renamed into place: an exported file never lacks
    its sidecar.

    Parameters
    ----------
    in_file : str or os.PathLike
        The result: a tractogram (a file or a TRX directory), a NIfTI image
        (``.nii[.gz]``) or a table (``.csv``, ``.tsv``).
    out_dir : str or os.PathLike
        Root of the derivatives tree.
    rel_path : str
        Destination relative to ``out_dir``; it must stay inside ``out_dir``.
    sources : sequence of str
        Files the result was made from (recorded with their SHA-256).
    metadata : mapping, optional
        Pipeline, description and parameters.
    reference : str, optional
        Reference image giving the space of formats without one (recorded
        among the sources, and needed to count the streamlines of a TCK, VTK
        or DPY output: without it, such an export is refused).
    dataset_links : mapping, optional
        Dataset name -> folder: sources inside a linked folder are named
        ``bids:<name>:<path>`` (see :func:`source_uri`).
    sources_by_name : bool
        Name each source by its file name instead (``{"name": ..., "sha256":
        ...}``): for sources that lie in no dataset (files of a package, say).

    Returns
    -------
    tuple of pathlib.Path
        The copied file and its sidecar.

    Raises
    ------
    ValueError
        If the destination is not inside ``out_dir``, or the result is in a
        format without a space (TCK, VTK, DPY) and no ``reference`` is given.
    """
    dest = destination(out_dir, rel_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    all_sources = list(sources) + ([reference] if reference and reference not in sources
                                   else [])
    payload: dict[str, Any] = dict(metadata or {})
    if sources_by_name:
        payload["Sources"] = [{"name": Path(s).name, "sha256": sha256_path(s)}
                              for s in all_sources]
    else:
        payload["Sources"] = [dict(path=source_uri(s, out_dir, dataset_links),
                                   **({"sha256": sha256_path(s)} if Path(s).exists() else {}))
                              for s in all_sources]
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        staged = _stage(Path(in_file), tmp / dest.name)
        payload["Counts"] = result_counts(staged, reference=reference)
        payload["sha256"] = sha256_path(staged)
        payload["Software"] = software_versions()
        side = sidecar_path(dest)
        write_json(payload, side)
        _commit(staged, dest, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest, side


class _DerivativesSinkInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True,
                      desc="result to export (a tractogram file or a TRX directory)")
    out_dir = traits.Str(mandatory=True, desc="root of the derivatives tree (absolute)")
    rel_path = traits.Str(mandatory=True, desc="destination, relative to out_dir")
    sources = traits.List(traits.Str, trx_hash=True,
                          desc="files the result was made from (recorded, with their SHA-256, "
                               "in the sidecar)")
    metadata = traits.Dict(desc="pipeline name, description and parameters for the sidecar")
    reference = traits.Either(None, File(exists=True), Directory(exists=True), default=None,
                              usedefault=True, trx_hash=True,
                              desc="reference of formats without a space (TCK, VTK, ...): a "
                                   "NIfTI image, or a TRK/TRX file or TRX directory of the "
                                   "output's space; needed to count such an output, recorded "
                                   "among the sources")
    dataset_links = traits.Dict(traits.Str, traits.Str,
                                desc="dataset name -> folder (absolute): sources inside it are "
                                     "named bids:<name>:<path> in the sidecar")


class _DerivativesSinkOutputSpec(TraitedSpec):
    out_file = traits.Str(desc="the exported file")
    out_json = File(desc="its JSON sidecar")


class DerivativesSink(SimpleInterface):
    """Export one result to the derivatives tree, atomically, with a JSON sidecar."""

    input_spec = _DerivativesSinkInputSpec
    output_spec = _DerivativesSinkOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        dest, side = export_derivative(self.inputs.in_file, self.inputs.out_dir,
                                       self.inputs.rel_path, sources=self.inputs.sources,
                                       metadata=self.inputs.metadata,
                                       reference=self.inputs.reference or None,
                                       dataset_links=self.inputs.dataset_links)
        self._results["out_file"] = str(dest)
        self._results["out_json"] = str(side)
        return runtime


class _DerivativesListSinkInputSpec(TrxInputSpec):
    in_files = TrxPathList(mandatory=True, desc="results to export, in order")
    out_dir = traits.Str(mandatory=True, desc="root of the derivatives tree (absolute)")
    rel_paths = traits.List(traits.Str, mandatory=True,
                            desc="destination of each result, relative to out_dir")
    sources = traits.List(traits.List(traits.Str), trx_hash=True,
                          desc="for each result, the files it was made from (recorded, with "
                               "their SHA-256, in its sidecar)")
    references = traits.List(traits.Either(None, File(exists=True), Directory(exists=True)),
                             trx_hash=True,
                             desc="for each result, the reference of a format without a space "
                                  "(see DerivativesSink.reference), or None")
    metadata = traits.Dict(desc="pipeline name, description and parameters for the sidecars")
    dataset_links = traits.Dict(traits.Str, traits.Str,
                                desc="dataset name -> folder (absolute): sources inside it are "
                                     "named bids:<name>:<path> in the sidecars")


class _DerivativesListSinkOutputSpec(TraitedSpec):
    out_files = traits.List(traits.Str, desc="the exported files")
    out_jsons = traits.List(traits.Str, desc="their JSON sidecars")


class DerivativesListSink(SimpleInterface):
    """Export a list of results (one subject's converted files, say) in one node.

    Each file is exported as :class:`DerivativesSink` exports one.
    """

    input_spec = _DerivativesListSinkInputSpec
    output_spec = _DerivativesListSinkOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        files = list(self.inputs.in_files)
        n = len(files)
        rel = list(self.inputs.rel_paths)
        sources = list(self.inputs.sources) if self.inputs.sources else [[]] * n
        refs = list(self.inputs.references) if self.inputs.references else [None] * n
        if not len(rel) == len(sources) == len(refs) == n:
            raise ValueError(f"DerivativesListSink: {n} files but {len(rel)} rel_paths, "
                             f"{len(sources)} sources and {len(refs)} references")
        written = [export_derivative(f, self.inputs.out_dir, r, sources=s,
                                     metadata=self.inputs.metadata, reference=ref or None,
                                     dataset_links=self.inputs.dataset_links)
                   for f, r, s, ref in zip(files, rel, sources, refs, strict=True)]
        self._results["out_files"] = [str(d) for d, _ in written]
        self._results["out_jsons"] = [str(j) for _, j in written]
        return runtime


class _AnalysisSinkInputSpec(BaseInterfaceInputSpec):
    in_file = traits.Either(File(exists=True), traits.Directory(exists=True), mandatory=True,
                            desc="result to export: a tractogram, a NIfTI image or a table")
    out_dir = traits.Str(mandatory=True, desc="root of the derivatives tree (absolute)")
    rel_path = traits.Str(mandatory=True, desc="destination, relative to out_dir")
    sources = traits.List(File(exists=True), desc="files the result was made from (recorded "
                                                  "by name and SHA-256)")
    metadata = traits.Dict(desc="pipeline name, description and parameters for the sidecar")


class AnalysisSink(SimpleInterface):
    """Export a tractogram, image or table to the derivatives tree, with a JSON sidecar.

    As :class:`DerivativesSink` exports a tractogram; the sources are named by
    their file name (they lie in no dataset: a DWI shipped inside a package).
    """

    input_spec = _AnalysisSinkInputSpec
    output_spec = _DerivativesSinkOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        dest, side = export_derivative(self.inputs.in_file, self.inputs.out_dir,
                                       self.inputs.rel_path, sources=self.inputs.sources,
                                       metadata=self.inputs.metadata, sources_by_name=True)
        self._results["out_file"] = str(dest)
        self._results["out_json"] = str(side)
        return runtime
