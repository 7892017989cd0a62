"""Traits and spec machinery shared by the TRX interfaces.

- :class:`TrxPath`: a tractogram path, a file (``.trx`` zip, TRK, TCK...) or a
  TRX directory. It carries ``trx_hash=True``.
- :class:`TrxInputSpec`: the base of every input spec here. It hashes the
  inputs marked ``trx_hash=True`` with
  :func:`trx_nipype.interfaces._hashing.fingerprint` (members of directories,
  cached content digests) and every other input exactly as Nipype does. See
  :mod:`trx_nipype.interfaces._hashing` for why and how.
- :func:`output_path`: ``fname_presuffix``-style output names inside the
  node's working directory, that never point at (or into) an input and never
  replace what is not a previous output.
- :func:`register_groups_sidecar`: a TRK's ``.groups.json`` travels with it.

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
from collections.abc import Callable, Iterable
from hashlib import md5
from pathlib import Path
from typing import Any

from nipype import config
from nipype.interfaces.base import BaseInterfaceInputSpec, InputMultiObject, Undefined, isdefined
from nipype.interfaces.base.traits_extension import BasePath

from trx_nipype.core.formats.trk_groups import SIDECAR_SUFFIX
from trx_nipype.core.naming import fit_file_name, tractogram_stem
from trx_nipype.core.operations.outputs import check_apart, remove_tractogram
from trx_nipype.core.writer import check_replaceable

from ._hashing import fingerprint


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


def compression_option(value: str) -> str | None:
    """A ``compression`` trait for the operations: its default (``stored``) is None, so that
    only an explicit ``deflate`` is refused for outputs other than a ``.trx`` zip."""
    return None if value == "stored" else value


# ------------------------------------------------------------------ outputs
def stem(path: str | os.PathLike) -> str:
    """An input's name without its tractogram extension (``sub-01.trx`` -> ``sub-01``)."""
    return tractogram_stem(path)


def output_path(in_file: str | os.PathLike, suffix: str, ext: str, out_filename: Any = None,
                inputs: Iterable[str | os.PathLike] = (), cwd: str | None = None, *,
                name: str | None = None,
                replaceable: Callable[[Path], None] = check_replaceable) -> Path:
    """Where an interface writes: ``<cwd>/<input stem><suffix><ext>``, ``name`` or ``out_filename``.

    Parameters
    ----------
    in_file : str or os.PathLike
        The input the name derives from.
    suffix, ext : str
        Added to the input's stem (``ext`` ``""`` makes a TRX folder name); a
        name longer than a filesystem holds is shortened by
        :func:`~trx_nipype.core.naming.fit_file_name`'s stable rule.
    out_filename : str, optional
        A file name chosen by the user (Undefined or None: derive it). It must
        be a bare name: outputs live in the node's working directory. Its
        extension picks the output's format.
    inputs : iterable of paths
        The other inputs: the output is never one of them, never inside an
        input TRX folder, and never holds one (:func:`~trx_nipype.core.operations.
        outputs.check_apart`).
    cwd : str, optional
        The working directory (default: ``os.getcwd()``, the node's folder).
    name : str, optional
        The default name, instead of the one made from ``in_file``.
    replaceable : callable
        The rule of what an existing output there may be (default: a tractogram).

    Returns
    -------
    pathlib.Path
        An absolute path. A previous output there (a tractogram: a previous
        run's) is removed, so that a failure leaves no output behind.

    Raises
    ------
    ValueError
        If ``out_filename`` names a folder, or the output would be, or be
        inside, or hold an input.
    FileExistsError
        If what is there is not a previous output (a folder of other files, a
        file that is not a tractogram, a link): it is kept, never replaced.
    """
    cwd = os.getcwd() if cwd is None else cwd
    if out_filename is not None and isdefined(out_filename):
        name = os.fspath(out_filename)
        if not name or os.path.basename(name) != name or name in (".", ".."):
            raise ValueError(f"out_filename must be a file name without a folder "
                             f"(outputs are written in the working directory), got {name!r}")
    elif name is None:
        name = fit_file_name(f"{stem(in_file)}{suffix}", ext)
    path = Path(cwd, name).absolute()
    check_apart(path, [in_file, *inputs])
    remove_tractogram(path, check=replaceable)
    return path


def register_groups_sidecar() -> None:
    """Make Nipype treat a TRK's ``.groups.json`` sidecar as part of the TRK.

    Nipype keeps and copies "related files" with a file (``.hdr``/``.img``):
    with ``.trk`` -> ``.trk.groups.json`` among them, cleaning a node's folder
    (``remove_unnecessary_outputs``) keeps the sidecar of a TRK output that is
    needed, and a DataSink copies it beside the TRK (under the TRK's new name),
    so the group names reach the viewer.
    """
    from nipype.utils import filemanip

    pair = (".trk", ".trk" + SIDECAR_SUFFIX)
    if pair not in filemanip.related_filetype_sets:
        filemanip.related_filetype_sets.append(pair)
