"""Concatenation of tractogram files: ``trx-nipype concatenate`` and
:class:`~trx_nipype.interfaces.ConcatenateTrx`.

:func:`concatenate_files` is :func:`trx_nipype.core.concatenate` (one streaming
pass from the inputs' maps into the output) with what the CLI and the nodes
need around it: inputs of any readable format (converted on the fly), the
output's format from its name, and the output checks of
:mod:`~trx_nipype.core.operations.outputs` before any work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from ..concatenating import concatenate
from ..errors import UsageError, param
from ..loader import load
from ..tempfiles import make_temp_dir, remove_temp_dir
from .inputs import check_inputs, open_tractogram
from .outputs import Written, plan_output, write_tractogram, written

log = logging.getLogger(__name__)


def concatenate_files(in_paths: Sequence[str | os.PathLike], out_path: str | os.PathLike, *,
                      reference: Any = None, overwrite: bool = False,
                      compression: str | None = None, positions_dtype: Any = None,
                      offsets_dtype: Any = None, **options: Any) -> Written:
    """Concatenate tractograms of any readable format into ``out_path``.

    Parameters
    ----------
    in_paths : sequence of paths
        TRX zips or folders, TRK, TCK, ... in output order.
    out_path : str or os.PathLike
        The output; its name picks the format. ``group_by_input`` needs one
        that holds groups (TRX, TRK).
    reference : optional
        Space of spaceless inputs (TCK...) when the output needs one.
    overwrite : bool
        Replace an existing output (only ever a tractogram).
    compression, positions_dtype, offsets_dtype : optional
        TRX output encoding.
    **options
        Passed to :func:`trx_nipype.core.concatenate` (``group_by_input``,
        ``group_names``, ``delete_dps``, ``delete_dpv``, ``delete_groups``,
        ``delete_dpg``, ...). A per-input group is named after its input's
        file without the format extension (``AF_L.trk`` -> ``AF_L``).

    Returns
    -------
    Written

    Raises
    ------
    UsageError, FileExistsError
        If the options or the output cannot be used (before any work).
    ValueError
        What :func:`trx_nipype.core.concatenate` refuses (spaces, keys...).
    """
    paths = list(in_paths)
    if not paths:
        raise UsageError(f"concatenate: no inputs given in {param('in_paths')}")
    names = options.get("group_names")
    if names is not None and not options.get("group_by_input"):
        raise UsageError(f"{param('group_names')} needs {param('group_by_input', True)}")
    if names is not None and len(names) != len(paths):
        raise UsageError(f"{param('group_names')} has {len(names)} names for {len(paths)} "
                         "inputs")
    check_inputs(*paths, reference)
    group_by = options.get("group_by_input")
    output = plan_output(out_path, inputs=[*paths, reference], overwrite=overwrite,
                         groups_from=("group_by_input", True) if group_by else None,
                         encoding={"compression": compression,
                                   "positions_dtype": positions_dtype,
                                   "offsets_dtype": offsets_dtype})
    with ExitStack() as stack:
        inputs = [stack.enter_context(open_tractogram(p, reference,
                                                      needs_space=output.needs_space))
                  for p in paths]
        if output.format == "trx":
            concatenate(inputs, output.path, compression=compression or "stored",
                        positions_dtype=positions_dtype, offsets_dtype=offsets_dtype,
                        **options)
            with load(output.path) as trx:
                result = written(trx, output)
        else:
            stage = make_temp_dir("concat")
            try:
                staged = concatenate(inputs, stage / "staged.trx", **options)
                with load(staged) as trx:
                    result = write_tractogram(trx, output)
            finally:
                remove_temp_dir(stage)
    log.info("concatenate_files: %d inputs -> %s (%d streamlines)", len(paths), result.path,
             result.nb_streamlines)
    return result

