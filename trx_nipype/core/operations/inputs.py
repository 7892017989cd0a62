"""Opening an operation's inputs: any readable tractogram, as a TRX.

A TRX (zip or folder) is loaded as it is (read-only maps). Any other format
(TRK, TCK, VTK, ...) is converted on the fly -- streamed, by
:func:`~trx_nipype.core.convert` -- into a private TRX folder under the
temporary root, removed when the operation ends. So every operation takes every
format ``convert`` reads, and none ever calls a valid TRK a corrupt zip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..converting import convert
from ..errors import ParameterError, param
from ..formats import detect_format
from ..loader import load
from ..naming import tractogram_stem
from ..reference import space_from_reference
from ..space import NO_SPACE, Space, space_mismatch
from ..tempfiles import make_temp_dir, remove_temp_dir
from ..trxfile import TrxFile


def check_inputs(*paths: str | os.PathLike | None) -> None:
    """Every given path exists (before any work).

    Raises
    ------
    FileNotFoundError
        Naming the first missing path.
    """
    for path in paths:
        if path is not None and not os.path.exists(path):
            raise FileNotFoundError(f"{os.fspath(path)}: no such file or directory")


@contextmanager
def open_tractogram(path: str | os.PathLike, reference: Any = None, *,
                    needs_space: bool = True) -> Iterator[TrxFile]:
    """Open any readable tractogram as a :class:`~trx_nipype.core.TrxFile`; closed on exit.

    Parameters
    ----------
    path : str or os.PathLike
        A TRX zip or folder, ``.trk[.gz]``, ``.tck[.gz]``, ``.vtk``/``.vtp``/``.fib``
        or ``.dpy``.
    reference : optional
        The space of formats that carry none (TCK, VTK, DPY); for the others,
        it must agree with the file's space.
    needs_space : bool
        The output holds a space (TRX, TRK): a spaceless input then needs
        ``reference``. Otherwise (TCK, VTK output) it is opened without one.

    Yields
    ------
    TrxFile
        The loaded TRX, or a TRX converted from the input; its groups are
        those of the input (a TRK's ``.groups.json`` sidecar included).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ParameterError
        If a needed reference is missing, or disagrees with the file's space.
    TrxFormatError
        If the file is malformed.
    """
    check_inputs(path)
    if detect_format(path) == "trx":
        trx = load(path)
        try:
            if reference is not None:
                _check_space(path, Space.from_affine(trx.affine, trx.dimensions), reference)
            yield trx
        finally:
            trx.close()
        return
    folder = make_temp_dir("input")
    try:
        # named after the input, as concatenate names an input's group after its file
        staged = folder / tractogram_stem(path)
        if reference is None and not needs_space:
            reference = _own_space_or_none(path)
        convert(path, staged, reference=reference, out_format="trx", bbox_check=False)
        with load(staged) as trx:
            trx.show_as(path)  # messages name the user's file, not the private copy
            yield trx
    finally:
        remove_temp_dir(folder)


def _own_space_or_none(path: str | os.PathLike) -> Space | None:
    """None for a file with a space (it is used); :data:`NO_SPACE` for one without."""
    return None if detect_format(path) == "trk" else NO_SPACE


def _check_space(path: str | os.PathLike, space: Space, reference: Any) -> None:
    ref = space_from_reference(reference)
    diff = space_mismatch(space.affine, space.dimensions, ref.affine, ref.dimensions, 1e-3)
    if diff:
        raise ParameterError(f"{os.fspath(path)}: its space differs from the space of "
                             f"{param('reference')}: {diff}; give the reference of this file, "
                             "or none")
