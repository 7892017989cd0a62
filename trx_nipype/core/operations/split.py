"""One file per group, in one pass: ``trx-nipype split-groups`` and
:class:`~trx_nipype.interfaces.SplitGroups`.

The group memberships are indexed once (:meth:`~trx_nipype.core.TrxFile.group_views`),
so splitting costs streamlines + memberships, not groups x streamlines: 10,000
groups split in seconds.

File names are ``<stem>_<group><ext>``, made safe and distinct (also on
case-insensitive filesystems) by :func:`~trx_nipype.core.naming.group_file_names`;
a name longer than a filesystem holds (255 bytes) is shortened by a stable rule
(a prefix, ``-`` and 8 hex digits of the SHA-256 of the full name), with a
warning naming the group.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NamingWarning, UsageError, param
from ..formats import OUTPUT_CHOICES, SPACED_FORMATS
from ..naming import (
    MADE_NAME_MAX,
    NAME_MAX,
    fit_file_name,
    tractogram_stem,
    unique_safe_names,
)
from .inputs import check_inputs, open_tractogram
from .outputs import (
    Output,
    Written,
    check_apart,
    check_overwrite,
    remove_tractogram,
    write_tractogram,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """What :func:`split_groups` wrote: one :class:`Written` per group, in ``groups`` order."""

    folder: Path
    groups: list[str]
    outputs: list[Written]

    @property
    def paths(self) -> list[Path]:
        """The per-group outputs, in ``groups`` order."""
        return [w.path for w in self.outputs]


def split_groups(in_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                 out_format: str = "trx", stem: str | None = None, reference: Any = None,
                 overwrite: bool = False) -> Split:
    """Write each group of a tractogram to a file of its own, in ``out_dir``.

    Parameters
    ----------
    in_path : str or os.PathLike
        Any readable tractogram with groups.
    out_dir : str or os.PathLike
        The folder (created if missing; never inside an input TRX folder).
    out_format : str
        A choice of :data:`~trx_nipype.core.formats.OUTPUT_CHOICES`: ``trx``,
        ``trx_dir`` (TRX folders), ``trk``, ``tck``, ...
    stem : str, optional
        Start of the file names (default: the input's name without extension).
    reference : optional
        Space of a spaceless input, when the format needs one.
    overwrite : bool
        Replace existing files (only ever tractograms).

    Returns
    -------
    Split
        In sorted group order. A TRX file keeps the group and the groups that
        overlap it (re-indexed); other formats hold the bundle alone.

    Raises
    ------
    ValueError
        If the input has no groups.
    UsageError, FileExistsError
        If an output may not be written (all checked before the first file).

    Notes
    -----
    A failure part-way removes the files this call wrote.
    """
    if out_format not in OUTPUT_CHOICES:
        raise UsageError(f"{param('out_format', out_format)}: not a format; one of "
                         f"{', '.join(OUTPUT_CHOICES)}")
    ext, fmt = OUTPUT_CHOICES[out_format]
    check_inputs(in_path, reference)
    folder = Path(out_dir)
    check_apart(folder, [in_path, reference], folder=True)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: exists and is not a folder; {param('out_dir')} must be "
                         "a folder (it receives one file per group)")
    stem = tractogram_stem(in_path) if stem is None else stem
    with open_tractogram(in_path, reference, needs_space=fmt in SPACED_FORMATS) as trx:
        names = sorted(trx.groups)
        if not names:
            raise ValueError(f"{os.fspath(in_path)}: no groups to split")
        safe = unique_safe_names(names)
        outputs = []
        for group in names:  # every check before the first write
            base = f"{stem}_{safe[group]}"
            name = fit_file_name(base, ext)
            if name != base + ext:
                shown = repr(group) if len(group) <= 40 else \
                    f"{group[:40]!r}... ({len(group)} characters)"
                warnings.warn(f"{in_path}: group {shown} is written as {name}: a file name "
                              f"holds at most {NAME_MAX} bytes (names made here at most "
                              f"{MADE_NAME_MAX}, for a TRK's .groups.json)",
                              category=NamingWarning, stacklevel=2)
            outputs.append(Output(folder / name, fmt))
            check_apart(outputs[-1].path, [in_path, reference])
            check_overwrite(outputs[-1].path, overwrite)
        folder.mkdir(parents=True, exist_ok=True)
        done: list[Written] = []
        try:
            for i, (_, view) in enumerate(trx.group_views(names)):
                done.append(write_tractogram(view if fmt == "trx" else _bundle(view),
                                             outputs[i]))
                if (i + 1) % 1000 == 0:
                    log.info("split_groups: %d of %d groups written", i + 1, len(names))
        except BaseException:
            for w in done:  # a failure leaves no partial set behind
                remove_tractogram(w.path)
            raise
    log.info("split_groups: %s -> %d files in %s", in_path, len(done), folder)
    return Split(folder, names, done)


def _bundle(view: Any) -> Any:
    """The view without groups: in a format other than TRX, the file is the bundle."""
    view.groups, view.dpg = {}, {}
    return view
