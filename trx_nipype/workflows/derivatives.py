"""Results out of the work dir: a derivatives tree with a JSON sidecar per file.

:class:`DerivativesSink` copies one result from a node's working directory to
``<out_dir>/<rel_path>`` (to a temporary sibling first, then renamed into
place, so a reader never sees a partial file) and writes
``<rel_path without extension>.json`` next to it, saying how the file was
made::

    {
      "Pipeline": "bundles",
      "Description": "...",
      "Parameters": {...},
      "Sources": [{"path": ".../AF_L.trk", "sha256": "..."}, ...],
      "Counts": {"NB_STREAMLINES": 150, "NB_VERTICES": 3000,
                 "Groups": {"AF_L": 50, ...}, "DPS": [...], "DPV": [...]},
      "sha256": "<digest of the file>",
      "Software": {"trx-nipype": "0.1.0", "nipype": "...", "dipy": "...", ...}
    }

Sidecars carry no dates or host names: the same inputs and parameters give
the same sidecar. :func:`write_dataset_description` writes the
``dataset_description.json`` of the output folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nipype.interfaces.base import File, SimpleInterface, TraitedSpec, traits

from .. import __version__
from ..interfaces._traits import TrxInputSpec, TrxPath

_CHUNK = 1 << 20


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
    """SHA-256 of a file, or of a directory's members (sorted ``name\\0digest\\n`` lines)."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for member in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = member.relative_to(path).as_posix()
            digest.update(f"{rel}\0{sha256_path(member)}\n".encode())
        return digest.hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def tractogram_counts(path: str | os.PathLike, reference: str | None = None
                      ) -> dict[str, Any]:
    """Streamline, vertex and per-group counts of a tractogram file (any readable format).

    ``reference`` gives the space of formats without one (TCK, VTK, ...); the
    counts do not depend on it, any tractogram or image of a compatible space
    does.
    """
    from ..core import load
    from ..core.save import is_zip_path

    path = Path(path)
    if path.is_dir() or is_zip_path(path):
        trx = load(path)
    else:
        from ..core.convert import load_any

        try:
            trx = load_any(path)
        except ValueError:
            if reference is None:
                raise
            trx = load_any(path, reference=reference)
    with trx:
        return {"NB_STREAMLINES": len(trx), "NB_VERTICES": trx.nb_vertices,
                "Groups": {g: int(len(idx)) for g, idx in sorted(trx.groups.items())},
                "DPS": sorted(trx.dps), "DPV": sorted(trx.dpv)}


def _atomic_json(path: Path, payload: Mapping[str, Any]) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_atomic(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a file or directory to ``dest`` through a temporary sibling and a rename.

    A directory already at ``dest`` is moved aside and removed after the
    rename, so ``dest`` is always either the old or the new tree.
    """
    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        staged = tmp / dest.name
        if src.is_dir():
            shutil.copytree(src, staged)
        else:
            shutil.copyfile(src, staged)
        if dest.is_dir() and not dest.is_symlink():
            old = tmp / ".old"
            os.replace(dest, old)
        os.replace(staged, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def sidecar_path(path: str | os.PathLike) -> Path:
    """``x.trx`` -> ``x.json`` (``.nii.gz``-style double extensions are not used here)."""
    path = Path(path)
    return path.with_name(path.name[: -len(path.suffix)] + ".json" if path.suffix
                          else path.name + ".json")


def export_derivative(in_file: str | os.PathLike, out_dir: str | os.PathLike, rel_path: str,
                      *, sources: Sequence[str] = (), metadata: Mapping[str, Any] | None = None
                      ) -> tuple[Path, Path]:
    """Copy ``in_file`` to ``out_dir/rel_path`` atomically and write its sidecar.

    Returns
    -------
    tuple of pathlib.Path
        The copied file and its sidecar.
    """
    dest = Path(out_dir) / rel_path
    copy_atomic(in_file, dest)
    payload: dict[str, Any] = dict(metadata or {})
    payload["Sources"] = [{"path": os.fspath(s), "sha256": sha256_path(s)}
                          if Path(s).exists() else {"path": os.fspath(s)} for s in sources]
    spaced = [s for s in sources if Path(s).suffix.lower() in (".trx", ".trk", ".nii", ".gz")]
    payload["Counts"] = tractogram_counts(dest, reference=spaced[0] if spaced else None)
    payload["sha256"] = sha256_path(dest)
    payload["Software"] = software_versions()
    side = sidecar_path(dest)
    _atomic_json(side, payload)
    return dest, side


def write_dataset_description(out_dir: str | os.PathLike, pipeline: str,
                              description: str) -> Path:
    """Write ``<out_dir>/dataset_description.json`` (BIDS derivatives)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "dataset_description.json"
    _atomic_json(path, {
        "Name": f"trx-nipype {pipeline}",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "trx-nipype", "Version": __version__,
                         "Description": description}],
    })
    return path


class _DerivativesSinkInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True,
                      desc="result to export (a tractogram file or a TRX directory)")
    out_dir = traits.Str(mandatory=True, desc="root of the derivatives tree (absolute)")
    rel_path = traits.Str(mandatory=True, desc="destination, relative to out_dir")
    sources = traits.List(traits.Str, desc="files the result was made from (recorded, with "
                          "their SHA-256, in the sidecar)")
    metadata = traits.Dict(desc="pipeline name, description and parameters for the sidecar")


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
                                       metadata=self.inputs.metadata)
        self._results["out_file"] = str(dest)
        self._results["out_json"] = str(side)
        return runtime
