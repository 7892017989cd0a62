"""Conversion of one tractogram file: ``trx-nipype convert``, :class:`~trx_nipype.interfaces.
ConvertTractogram` and :class:`~trx_nipype.interfaces.LoadTrx`.

:func:`convert_file` is :func:`trx_nipype.core.convert` behind the output checks
of :mod:`~trx_nipype.core.operations.outputs`; :func:`as_trx` hands a TRX on as it
is and converts anything else.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..converting import convert
from ..formats.trk_groups import groups_sidecar_path
from ..reference import require_same_space, space_from_reference
from ..saving import is_zip_path
from .inputs import check_inputs
from .outputs import plan_output

log = logging.getLogger(__name__)


def is_trx(path: str | os.PathLike) -> bool:
    """A TRX container: a folder, or a ``.trx``/``.zip`` file."""
    return os.path.isdir(path) or is_zip_path(path)


def convert_file(in_path: str | os.PathLike, out_path: str | os.PathLike, *,
                 reference: Any = None, out_format: str | None = None,
                 overwrite: bool = False, compression: str | None = None,
                 positions_dtype: Any = None, offsets_dtype: Any = None,
                 bbox_check: bool = True, keep_outside: bool = True) -> list[Path]:
    """Convert ``in_path`` to ``out_path`` (:func:`trx_nipype.core.convert`), after the checks.

    Parameters
    ----------
    in_path, out_path : str or os.PathLike
        The output's name picks its format (or ``out_format``).
    reference, bbox_check, keep_outside
        As for :func:`trx_nipype.core.convert`.
    overwrite : bool
        Replace an existing output (only ever a tractogram).
    compression, positions_dtype, offsets_dtype : optional
        TRX output encoding (refused for other formats).

    Returns
    -------
    list of pathlib.Path
        The output, and a TRK's groups sidecar when it has one.
    """
    check_inputs(in_path, reference)
    output = plan_output(out_path, inputs=[in_path, reference], overwrite=overwrite,
                         out_format=out_format,
                         encoding={"compression": compression,
                                   "positions_dtype": positions_dtype,
                                   "offsets_dtype": offsets_dtype})
    out = convert(in_path, output.path, reference=reference, out_format=output.format,
                  compression=compression or "stored", positions_dtype=positions_dtype,
                  offsets_dtype=offsets_dtype, bbox_check=bbox_check,
                  keep_outside=keep_outside)
    side = groups_sidecar_path(out)
    return [Path(out)] + ([side] if output.format == "trk" and side.is_file() else [])


def as_trx(in_path: str | os.PathLike, out_path: str | os.PathLike | None, *,
           reference: Any = None, overwrite: bool = False) -> Path:
    """A TRX of ``in_path``: the path itself when it is a TRX, else its conversion to
    ``out_path`` (a TRX name; required then)."""
    if is_trx(in_path):
        check_inputs(in_path, reference)
        if reference is not None:  # a TRX handed on as it is must still be in that space
            require_same_space(in_path, space_from_reference(in_path), reference)
        return Path(in_path)
    if out_path is None:
        raise ValueError(f"{in_path}: not a TRX; give where to write its conversion")
    return convert_file(in_path, out_path, reference=reference, overwrite=overwrite)[0]
