"""Selections written to a file: the streamlines of some groups, the first N, a seeded sample.

``trx-nipype select-group`` / :class:`~trx_nipype.interfaces.SelectGroup` call
:func:`select_groups`; ``trx-nipype resize`` / :class:`~trx_nipype.interfaces.ResizeTrx`
call :func:`resize`. Both take any readable tractogram, write the format their
output's name says, and copy nothing but the selected rows.

>>> import os, tempfile, numpy as np
>>> from trx_nipype.core import TrxFile, save
>>> tmp = tempfile.mkdtemp()
>>> src = save(TrxFile.from_arrays(np.zeros((6, 3), np.float32), lengths=[2, 2, 2],
...                                groups={"AF": [0, 2], "CST": [1]}), f"{tmp}/in.trx")
>>> select_groups(src, "AF", f"{tmp}/af.trx").summary().endswith("2 streamlines, 4 vertices")
True
>>> resize(src, f"{tmp}/two.trk", 2, random=True, seed=0).groups   # a TRK keeps the groups
{'AF': 1, 'CST': 1}
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from ..errors import ParameterError, UsageError, param
from .inputs import check_inputs, open_tractogram
from .outputs import Written, plan_output, write_tractogram

log = logging.getLogger(__name__)


def select_groups(in_path: str | os.PathLike, groups: str | Sequence[str],
                  out_path: str | os.PathLike, *, keep_groups: bool = False,
                  reference: Any = None, overwrite: bool = False,
                  compression: str | None = None, positions_dtype: Any = None) -> Written:
    """Write the streamlines of one or more groups (their union, in file order).

    Parameters
    ----------
    in_path : str or os.PathLike
        Any readable tractogram with groups (a TRX, a TRK with its groups sidecar).
    groups : str or sequence of str
        The group(s) to keep.
    out_path : str or os.PathLike
        The output; its name picks the format (see
        :mod:`~trx_nipype.core.operations.outputs`).
    keep_groups : bool
        Keep the group memberships (re-indexed to the selection) and their dpg
        in the output. Default False: the output *is* the selection, and a
        pipeline that assembles selections (one group per subject) gets no
        stray group beside its own. True needs a format with groups (TRX, TRK).
    reference : optional
        Space of a spaceless input (only needed for formats without groups).
    overwrite : bool
        Replace an existing output (only ever a tractogram).
    compression, positions_dtype : optional
        TRX output encoding (``"stored"``/``"deflate"``; ``float16/32/64``).

    Returns
    -------
    Written

    Raises
    ------
    KeyError
        If a group is not in the input (the message lists those that are).
    UsageError, FileExistsError
        If the output cannot be written (before any work).
    """
    names = [groups] if isinstance(groups, str) else list(groups)
    if not names:
        raise UsageError(f"select_groups: no group given: name one or more with "
                         f"{param('groups')}")
    check_inputs(in_path, reference)
    output = plan_output(out_path, inputs=[in_path, reference], overwrite=overwrite,
                         groups_from=("keep_groups", True) if keep_groups else None,
                         encoding={"compression": compression,
                                   "positions_dtype": positions_dtype})
    with open_tractogram(in_path, reference, needs_space=output.needs_space) as trx:
        view = trx.select_groups(names)
        if not keep_groups:
            view.groups, view.dpg = {}, {}
        result = write_tractogram(view, output, compression=compression,
                                  positions_dtype=positions_dtype)
    log.info("select_groups: %s %s -> %s (%d streamlines)", in_path, names, result.path,
             result.nb_streamlines)
    return result


def resize(in_path: str | os.PathLike, out_path: str | os.PathLike,
           nb_streamlines: int | None = None, *, random: bool = False, seed: int = 0,
           reference: Any = None, overwrite: bool = False, compression: str | None = None,
           positions_dtype: Any = None) -> Written:
    """Write the first ``nb_streamlines``, a seeded random sample of them, or all but the
    unused capacity (trailing empty streamlines).

    Parameters
    ----------
    in_path : str or os.PathLike
        Any readable tractogram.
    out_path : str or os.PathLike
        The output; its name picks the format.
    nb_streamlines : int, optional
        How many to keep (default: every used streamline).
    random : bool
        Draw ``nb_streamlines`` at random, without replacement, kept in file
        order (:meth:`~trx_nipype.core.TrxFile.sample`: the same file and seed
        give the same subset on every machine).
    seed : int
        Seed of the draw.
    reference, overwrite, compression, positions_dtype
        As for :func:`select_groups`. Groups, dps, dpv and dpg follow the
        selection (groups left empty are dropped).

    Returns
    -------
    Written

    Raises
    ------
    UsageError
        ``random`` without ``nb_streamlines``, a negative count, or an output
        that cannot be written (before any work).
    ParameterError
        More streamlines asked for than the input has.
    """
    if random and nb_streamlines is None:
        raise UsageError(f"{param('random', True)} needs {param('nb_streamlines')} "
                         "(how many to draw)")
    if nb_streamlines is not None and nb_streamlines < 0:
        raise UsageError(f"{param('nb_streamlines', nb_streamlines)}: must be 0 or more")
    check_inputs(in_path, reference)
    output = plan_output(out_path, inputs=[in_path, reference], overwrite=overwrite,
                         encoding={"compression": compression,
                                   "positions_dtype": positions_dtype})
    with open_tractogram(in_path, reference, needs_space=output.needs_space) as trx:
        if random:
            used = trx.resize()  # the draw is over the used streamlines
            if nb_streamlines > len(used):
                raise ParameterError(f"{param('nb_streamlines', nb_streamlines)}: cannot draw "
                                     f"{nb_streamlines} streamlines from {len(used)} in "
                                     f"{in_path}: a random draw takes each at most once")
            view = used.sample(nb_streamlines, seed=seed)
        else:
            if nb_streamlines is not None and nb_streamlines > len(trx):
                raise ParameterError(f"{param('nb_streamlines', nb_streamlines)}: {in_path} "
                                     f"has {len(trx)} streamlines; resize keeps the first N "
                                     "and never adds any")
            view = trx.resize(nb_streamlines=nb_streamlines)
        result = write_tractogram(view, output, compression=compression,
                                  positions_dtype=positions_dtype)
    log.info("resize: %s -> %s (%d streamlines)", in_path, result.path, result.nb_streamlines)
    return result
