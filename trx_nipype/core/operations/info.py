"""What a tractogram holds: ``trx-nipype info`` and :class:`~trx_nipype.interfaces.TrxInfo`.

:func:`tractogram_info` is :func:`trx_nipype.core.summary.summarize` (any
readable format; counting streamlines needs no reference, placing them does);
:func:`write_info` writes it as JSON, atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import OutputExistsError, param
from ..formats import write_json
from ..summary import summarize
from .inputs import check_inputs
from .outputs import check_apart

#: keys that make a JSON file a summary written here (and so replaceable by another)
SUMMARY_KEYS = ("nb_streamlines", "nb_vertices", "groups", "dps", "dpv")


def tractogram_info(path: str | os.PathLike, reference: Any = None, *,
                    length_mm: bool = True) -> dict[str, Any]:
    """The summary of a tractogram (``info --json``); ``affine`` and ``dimensions`` are None
    for a spaceless file (TCK...) given no reference.

    Raises
    ------
    FileNotFoundError
        If ``path`` (or ``reference``) does not exist.
    TrxFormatError
        If the file is malformed.
    """
    check_inputs(path, reference)
    return summarize(path, reference=reference, length_mm=length_mm)


def is_summary_file(path: Path) -> bool:
    """A JSON object with the keys of a summary: what :func:`write_info` wrote."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and all(k in doc for k in SUMMARY_KEYS)


def check_info_replaceable(path: Path) -> None:
    """A summary JSON may replace nothing but another summary (or nothing).

    Raises
    ------
    FileExistsError
        If ``path`` is a link, a folder or a file that is not a summary.
    """
    path = Path(path)
    if path.is_symlink() or path.is_dir() or (path.exists() and not is_summary_file(path)):
        raise FileExistsError(f"{path}: exists and is not a summary written by trx-nipype; "
                              "refusing to replace it: choose another name")


def write_info(in_path: str | os.PathLike, out_json: str | os.PathLike, *,
               reference: Any = None, overwrite: bool = False) -> dict[str, Any]:
    """Summarize ``in_path`` (:func:`tractogram_info`) into the JSON file ``out_json``."""
    out = Path(out_json)
    check_apart(out, [in_path, reference])
    check_info_replaceable(out)
    if not overwrite and out.exists():
        raise OutputExistsError(f"{out}: exists; pass {param('overwrite', True)} to replace it")
    # the file's name, not its path: an output names no path of the machine
    info = {**tractogram_info(in_path, reference), "path": Path(in_path).name}
    write_json(info, out)
    return info
