"""Converting a list of tractogram files (one subject's bundles, say) into one folder.

One call, one Nipype node for a subject's files (instead of one node per file):
each file goes through :func:`trx_nipype.core.convert` in turn, named after
the input with the format's extension (``AF_L.trk`` -> ``AF_L.tck``). A
failure removes what this call has already written, so that a half-converted
list is never left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..converting import convert
from ..formats import compound_suffix

log = logging.getLogger(__name__)


def output_name(in_file: str | os.PathLike, ext: str) -> str:
    """``AF_L.trk.gz`` + ``.tck`` -> ``AF_L.tck`` (``ext`` ``""``: a TRX folder name).

    >>> output_name("/data/sub-01/dwi/AF_L.trk.gz", ".tck"), output_name("CST.trx", "")
    ('AF_L.tck', 'CST')
    """
    name = Path(os.fspath(in_file).rstrip("/\\")).name
    suffix = compound_suffix(name)
    return (name[: -len(suffix)] if suffix else name) + ext


def _remove(path: Path) -> None:
    """Remove an output this call wrote (a file or TRX folder, and a TRK's groups sidecar)."""
    from ..formats.trk_groups import groups_sidecar_path

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
        groups_sidecar_path(path).unlink(missing_ok=True)


def convert_files(in_files: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                  ext: str, *, out_format: str | None = None, reference: Any = None,
                  **options: Any) -> list[Path]:
    """Convert each file to ``out_dir/<name><ext>``, in order.

    Parameters
    ----------
    in_files : sequence of path
        Tractograms of any readable format.
    out_dir : str or os.PathLike
        Folder of the outputs (it must exist).
    ext : str
        Extension of the outputs (``.trx``, ``.tck``, ...; ``""``: TRX folders).
    out_format : str, optional
        The core's format name when ``ext`` does not say it (``"trx"`` for folders).
    reference : optional
        Space of the formats without one (see :func:`~trx_nipype.core.convert`).
    **options
        Passed to :func:`~trx_nipype.core.convert` (``positions_dtype``,
        ``compression``, ``bbox_check``, ``keep_outside``).

    Returns
    -------
    list of pathlib.Path
        The outputs, in the order of ``in_files``.

    Raises
    ------
    ValueError
        If two inputs would give the same output name, or what
        :func:`~trx_nipype.core.convert` raises for a file (its message names it).
    """
    out_dir = Path(out_dir)
    names = [output_name(f, ext) for f in in_files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"convert_files: several inputs would be written as {dupes} in "
                         f"{out_dir}; convert them in separate folders")
    written: list[Path] = []
    try:
        for src, name in zip(in_files, names, strict=True):
            dest = out_dir / name
            written.append(convert(src, dest, reference=reference, out_format=out_format,
                                   **options))
            log.info("convert_files: %s -> %s", src, dest)
    except BaseException:
        for path in written:
            _remove(path)
        raise
    return written
