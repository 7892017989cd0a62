"""The work dir between runs: cached results whose files are gone.

Nipype decides that a node is cached from its hash file and its
``result_<node>.pklz`` alone: a result whose files were deleted since (an
intermediate in the work dir, an export in the output folder) is taken as it
is, and the next node fails forever on an input that does not exist ("requires
a value for input 'in_file'"). :func:`forget_missing_outputs`, run before the
workflow, removes such results, so that Nipype reruns those nodes -- and,
as their files are new, what depends on them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _paths(value: Any) -> Iterator[str]:
    """The absolute paths among an output value (strings, walking lists and dicts)."""
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if os.path.isabs(text):
            yield text
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _paths(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths(item)


def stale_result(result_file: str | os.PathLike) -> str | None:
    """Why a node's cached result cannot be used (None when it can).

    It names an output path that no longer exists; or it cannot be read at all
    -- an output declared as an existing file that is gone fails to unpickle,
    and so does a result of an interface that moved -- where Nipype would hand
    its outputs on undefined.
    """
    from nipype.interfaces.base import isdefined
    from nipype.pipeline.engine.utils import load_resultfile

    quiet = logging.getLogger("nipype.utils")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "No metadata was found in the pkl file" on failures
    try:
        result = load_resultfile(result_file)
        outputs = result.outputs.get() if getattr(result, "outputs", None) else {}
    except Exception as exc:  # noqa: BLE001 -- any unreadable result is rerun
        return f"its result cannot be read ({' '.join(str(exc).split())[:200]})"
    finally:
        quiet.setLevel(level)
    gone = [path for value in outputs.values() if isdefined(value)
            for path in _paths(value) if not os.path.lexists(path)]
    return f"its output {', '.join(gone)} is gone" if gone else None


def forget_missing_outputs(folder: str | os.PathLike) -> list[tuple[Path, str]]:
    """Remove the cached results under ``folder`` whose output files are gone.

    Every ``result_<node>.pklz`` below ``folder`` (a workflow's folder in the
    work dir: its nodes, MapNode subnodes included) is read; one that names an
    output path that no longer exists, or cannot be read (:func:`stale_result`),
    is removed, so that Nipype runs the node again instead of handing a missing
    file on. Costs one small read per node (0.2 ms each).

    Parameters
    ----------
    folder : str or os.PathLike
        The workflow's folder (``<work_dir>/<workflow name>``); missing is fine.

    Returns
    -------
    list of (pathlib.Path, str)
        Each node folder whose result was removed, and why.
    """
    forgotten = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_report"))]
        for name in filenames:
            if not (name.startswith("result_") and name.endswith(".pklz")):
                continue
            result = Path(dirpath, name)
            why = stale_result(result)
            if why is not None:
                log.info("%s: %s: rerun", dirpath, why)
                result.unlink(missing_ok=True)
                forgotten.append((Path(dirpath), why))
    return forgotten
