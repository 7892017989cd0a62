"""``.vtk``/``.vtp``/``.fib`` and ``.dpy`` tractograms, through dipy.

These formats hold streamlines only (no data, no groups) in RAS+ mm, with no
space: dipy's ``load_tractogram``/``save_tractogram`` conventions (``to_lps``
off: coordinates are written and read as they are). VTK needs the optional
``fury`` package (which brings ``vtk``); DPY needs ``h5py``. When one is
missing, :class:`MissingOptionalDependency` says which.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from . import Block, atomic_path

log = logging.getLogger(__name__)

_NEEDS = {"vtk": ("fury", "vtk"), "dpy": ("h5py",)}


class MissingOptionalDependency(ImportError):
    """A format needs a package that is not installed; the message names it."""


def require(fmt: str, path: str | os.PathLike) -> None:
    """Raise :class:`MissingOptionalDependency` if ``fmt``'s packages are missing."""
    missing = [m for m in _NEEDS.get(fmt, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingOptionalDependency(
            f"{path}: reading or writing .{Path(path).suffix.lstrip('.')} tractograms needs "
            f"the optional package(s) {', '.join(missing)} (pip install "
            f"{' '.join(missing)}); they are not installed")


def read_streamlines(path: str | os.PathLike, fmt: str) -> Block:
    """All streamlines of a VTK/VTP/FIB or DPY file as one :class:`Block` (RAS+ mm)."""
    require(fmt, path)
    if fmt == "vtk":
        from dipy.io.vtk import load_vtk_streamlines

        lines = list(load_vtk_streamlines(str(path), to_lps=False))
    else:
        from dipy.io.dpy import Dpy

        dpy = Dpy(str(path), mode="r")
        try:
            lines = list(dpy.read_tracks())
        finally:
            dpy.close()
    lengths = np.array([len(s) for s in lines], dtype=np.int64)
    positions = (np.concatenate([np.asarray(s, dtype=np.float32) for s in lines])
                 if lines else np.zeros((0, 3), np.float32))
    return Block(lengths, positions.reshape(-1, 3))


def write_streamlines(dest: str | os.PathLike, fmt: str, blocks: Iterable[Block]) -> Path:
    """Write blocks (RAS+ mm) to a VTK/VTP/FIB or DPY file (held in memory by dipy)."""
    require(fmt, dest)
    from nibabel.streamlines import ArraySequence

    seq = ArraySequence()
    for block in blocks:
        part = ArraySequence()
        part._data = np.asarray(block.positions, dtype=np.float32)
        part._lengths = np.asarray(block.lengths, dtype=np.intp)
        part._offsets = np.concatenate([[0], np.cumsum(part._lengths)[:-1]]).astype(np.intp)
        seq.extend(part)
    with atomic_path(dest, keep_suffix=True) as tmp:
        if fmt == "vtk":
            from dipy.io.vtk import save_vtk_streamlines

            with warnings.catch_warnings():
                # fury's line colours call a numpy ufunc with where= and no out=: numpy
                # warns of uninitialised memory there, which the user can do nothing about
                warnings.filterwarnings("ignore", message="'where' used without 'out'",
                                        category=UserWarning, module=r"fury\.")
                save_vtk_streamlines(seq, str(tmp), to_lps=False,
                                     binary=Path(dest).suffix.lower() in (".vtk", ".fib"))
        else:
            from dipy.io.dpy import Dpy

            dpy = Dpy(str(tmp), mode="w")
            try:
                dpy.write_tracks(seq)
            finally:
                dpy.close()
    log.info("wrote %s: %d streamlines", dest, len(seq))
    return Path(dest)
