"""Traits and spec machinery shared by the TRX interfaces.

- :class:`TrxPath`: a tractogram path, a file (``.trx`` zip, TRK, TCK...) or a
  TRX directory. It carries ``trx_hash=True``.
- :class:`TrxInputSpec`: the base of every input spec here. It hashes the
  inputs marked ``trx_hash=True`` with
  :func:`trx_nipype.interfaces._hashing.fingerprint` (members of directories,
  cached content digests) and every other input exactly as Nipype does. See
  :mod:`trx_nipype.interfaces._hashing` for why and how.
- :func:`output_path`: ``fname_presuffix``-style output names inside the
  node's working directory, that never point at an input.

>>> class _Spec(TrxInputSpec):
...     in_file = TrxPath(exists=False, desc="a tractogram")
>>> spec = _Spec(in_file="/no/such/file.trx")
>>> spec.trait("in_file").trx_hash
True
>>> hashed, value = spec.get_hashval("timestamp")
>>> hashed
[('in_file', ('/no/such/file.trx', 'missing'))]
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from hashlib import md5
from pathlib import Path
from typing import Any

from nipype import config
from nipype.interfaces.base import BaseInterfaceInputSpec, InputMultiObject, Undefined, isdefined
from nipype.interfaces.base.traits_extension import BasePath

from ._hashing import fingerprint

#: extensions stripped from an input's name to make an output's
TRACTOGRAM_EXTENSIONS = (".trk.gz", ".tck.gz", ".trx", ".zip", ".trk", ".tck", ".vtk", ".vtp",
                         ".fib", ".dpy")


class TrxPath(BasePath):
    """A tractogram: a file (``.trx`` zip or another format) or a TRX directory.

    Hashed by its members (see :mod:`trx_nipype.interfaces._hashing`): the
    trait carries ``trx_hash=True`` metadata, which :class:`TrxInputSpec` reads.
    """

    @property
    def info_text(self) -> str:
        """The trait's description for error messages and help."""
        what = "a tractogram path (TRX zip or directory, or TRK/TCK/...)"
        return ("an existing " + what[2:]) if self.exists else what

    def __init__(self, value: Any = Undefined, exists: bool = False, resolve: bool = True,
                 **metadata: Any) -> None:
        # resolve: made absolute when set, so that a node running in another folder
        # (``run(cwd=...)``) still knows where its input is (and never mistakes it)
        metadata.setdefault("trx_hash", True)
        super().__init__(value, exists=exists, resolve=resolve, **metadata)


def TrxPathList(**metadata: Any) -> InputMultiObject:  # noqa: N802 (a trait factory)
    """One or more existing tractogram paths, hashed like :class:`TrxPath`."""
    metadata.setdefault("trx_hash", True)
    return InputMultiObject(TrxPath(exists=True), **metadata)


def holds_trx(trait: Any) -> bool:
    """Whether an input is hashed as TRX: ``trx_hash`` metadata, or TrxPath values.

    The trait type counts too: a ``MapNode`` hashes its iterfields through a
    new list trait over the original trait *type*, without the metadata.
    """
    if trait is None:
        return False
    if trait.trx_hash:
        return True
    trait_type = trait.trait_type
    if isinstance(trait_type, TrxPath):
        return True
    inner = getattr(trait_type, "inner_traits", None)
    return callable(inner) and any(holds_trx(t) for t in inner())


class TrxInputSpec(BaseInterfaceInputSpec):
    """An input spec whose ``trx_hash`` inputs are hashed by their content or members."""

    def get_hashval(self, hash_method: str | None = None) -> tuple[list, str]:
        """Nipype's ``(hashed inputs, hash value)``, with TRX-aware path hashing.

        Inputs marked ``trx_hash=True`` contribute ``(path, digest)`` (the path
        is part of the hash: see :mod:`trx_nipype.interfaces._hashing`); the
        others are hashed by Nipype's own rules.
        """
        if hash_method is None:
            hash_method = config.get("execution", "hash_method")
        with_hash: list[tuple[str, Any]] = []
        no_filename: list[tuple[str, Any]] = []
        for name, val in sorted(self.trait_get().items()):
            if not isdefined(val) or self.has_metadata(name, "nohash", True):
                continue
            if holds_trx(self.trait(name)):
                value = fingerprint(val, hash_method)
                with_hash.append((name, value))
                no_filename.append((name, value))
                continue
            hash_files = not self.has_metadata(name, "hash_files", False) and \
                not self.has_metadata(name, "name_source")
            no_filename.append((name, self._get_sorteddict(
                val, hash_method=hash_method, hash_files=hash_files)))
            with_hash.append((name, self._get_sorteddict(
                val, True, hash_method=hash_method, hash_files=hash_files)))
        return with_hash, md5(str(no_filename).encode()).hexdigest()


def written_trx(path: str | os.PathLike) -> dict[str, Any]:
    """The outputs of an interface that wrote one TRX: ``out_file``, ``nb_streamlines``,
    ``group_names`` (sorted)."""
    from trx_nipype.core import load

    with load(path) as trx:
        return {"out_file": os.fspath(path), "nb_streamlines": len(trx),
                "group_names": sorted(trx.groups)}


def optional(value: Any) -> Any:
    """``value``, or None when it is Nipype's ``Undefined`` (for core keyword arguments)."""
    return value if isdefined(value) else None


# ------------------------------------------------------------------ outputs
def stem(path: str | os.PathLike) -> str:
    """An input's name without its tractogram extension (``sub-01.trx`` -> ``sub-01``)."""
    name = Path(os.fspath(path).rstrip("/\\")).name
    lower = name.lower()
    for ext in TRACTOGRAM_EXTENSIONS:
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name


def output_path(in_file: str | os.PathLike, suffix: str, ext: str, out_filename: Any = None,
                inputs: Iterable[str | os.PathLike] = (), cwd: str | None = None) -> Path:
    """Where an interface writes: ``<cwd>/<input stem><suffix><ext>`` or ``out_filename``.

    Parameters
    ----------
    in_file : str or os.PathLike
        The input the name derives from.
    suffix, ext : str
        Added to the input's stem (``ext`` ``""`` makes a directory name).
    out_filename : str, optional
        A file name chosen by the user (Undefined or None: derive it). It must
        be a bare name: outputs live in the node's working directory.
    inputs : iterable of paths
        Paths the output must never be (checked with ``samefile``).
    cwd : str, optional
        The working directory (default: ``os.getcwd()``, the node's folder).

    Returns
    -------
    pathlib.Path
        An absolute path. Whatever was there (a previous run's output) is
        removed, so a failure leaves no output behind.

    Raises
    ------
    ValueError
        If ``out_filename`` names a folder, or the output would be an input.
    """
    cwd = os.getcwd() if cwd is None else cwd
    if out_filename is not None and isdefined(out_filename):
        name = os.fspath(out_filename)
        if not name or os.path.basename(name) != name or name in (".", ".."):
            raise ValueError(f"out_filename must be a file name without a folder "
                             f"(outputs are written in the working directory), got {name!r}")
    else:
        name = f"{stem(in_file)}{suffix}{ext}"
    path = Path(cwd, name).absolute()
    for src in (in_file, *inputs):
        if _same(src, path):
            raise ValueError(f"{path}: the output would overwrite the input {src}; "
                             "choose another out_filename")
    remove_output(path)
    return path


def _same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def remove_output(path: str | os.PathLike) -> None:
    """Remove a file, link or directory we wrote (missing is fine)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
