"""The work dir between runs: cached results whose files are gone, and what results keep.

Nipype decides that a node is cached from its hash file and its
``result_<node>.pklz`` alone: a result whose files were deleted since (an
intermediate in the work dir, an export in the output folder) is taken as it
is, and the next node fails forever on an input that does not exist ("requires
a value for input 'in_file'"). :func:`forget_missing_outputs`, run before the
workflow, removes such results, so that Nipype reruns those nodes -- and,
as their files are new, what depends on them.

Nipype also stores the whole environment of the process in every result
(``runtime.environ``, pickled in ``result_<node>.pklz`` and listed in
``_report/report.rst``): API tokens and passwords end up in the work dir.
:func:`environment_stripped` keeps it out of the results and reports written in
this process and its forked workers (``Linear``, ``MultiProc``);
:func:`strip_environment` cleans the files of a node that ran elsewhere (a
cluster job) once the run learns that it ended. The environment is still given
to the interfaces while they run (command lines need it); only what is stored
is cleaned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from ..core.naming import sidecar_path

log = logging.getLogger(__name__)

#: what results and reports hold instead of the environment
ENVIRON_NOTE = {"trx-nipype": "environment not stored"}
_ENVIRON_SECTION = re.compile(r"\nEnvironment\n~+\n.*\Z", re.S)
_patch_lock = threading.Lock()
_patch_depth = 0


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


def stale_result(result_file: str | os.PathLike, changed: Collection[str] = ()
                 ) -> str | None:
    """Why a node's cached result cannot be used (None when it can).

    It names an output path that no longer exists; or it cannot be read at all
    -- an output declared as an existing file that is gone fails to unpickle,
    and so does a result of an interface that moved -- where Nipype would hand
    its outputs on undefined; or one of its inputs or outputs (or an output's
    JSON sidecar) is among ``changed``, files known to have changed since the
    node ran in a way Nipype's cache does not see.
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
    written = [path for value in outputs.values() if isdefined(value)
               for path in _paths(value)]
    gone = [path for path in written if not os.path.lexists(path)]
    if gone:
        return f"its output {', '.join(gone)} is gone"
    if changed:
        changed = set(changed)
        inputs = getattr(result, "inputs", None) or {}
        named = [*written, *(os.fspath(sidecar_path(path)) for path in written),
                 *_paths(inputs if isinstance(inputs, dict) else {})]
        edited = sorted({path for path in named if path in changed})
        if edited:
            return f"{', '.join(edited)} changed since it ran"
    return None


def forget_missing_outputs(folder: str | os.PathLike, changed: Collection[str] = ()
                           ) -> list[tuple[Path, str]]:
    """Remove the cached results under ``folder`` whose output files are gone.

    Every ``result_<node>.pklz`` below ``folder`` (a workflow's folder in the
    work dir: its nodes, MapNode subnodes included) is read; one that names an
    output path that no longer exists, or cannot be read, or names a file of
    ``changed`` (:func:`stale_result`), is removed, so that Nipype runs the node
    again instead of handing a missing or edited file on (and, as its files are
    new, what depends on them). Costs one small read per node (0.2 ms each).

    Parameters
    ----------
    folder : str or os.PathLike
        The workflow's folder (``<work_dir>/<workflow name>``); missing is fine.
    changed : collection of str
        Absolute paths of files changed since the last run where Nipype does
        not look (:func:`~trx_nipype.workflows.runrecord.changed_files`): an
        export or an intermediate edited in place, an input whose size and
        modification time were put back.

    Returns
    -------
    list of (pathlib.Path, str)
        Each node folder whose result was removed, and why.
    """
    forgotten = []
    changed = frozenset(changed)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_report"))]
        for name in filenames:
            if not (name.startswith("result_") and name.endswith(".pklz")):
                continue
            result = Path(dirpath, name)
            why = stale_result(result, changed)
            if why is not None:
                log.info("%s: %s: rerun", dirpath, why)
                result.unlink(missing_ok=True)
                forgotten.append((Path(dirpath), why))
    return forgotten


@contextlib.contextmanager
def _no_environ(result: Any) -> Iterator[None]:
    """``result.runtime.environ`` replaced by :data:`ENVIRON_NOTE` for the time of a write."""
    runtime = getattr(result, "runtime", None)
    env = getattr(runtime, "environ", None) if runtime is not None else None
    if env is None:
        yield
        return
    runtime.environ = dict(ENVIRON_NOTE)
    try:
        yield
    finally:
        runtime.environ = env


@contextlib.contextmanager
def environment_stripped() -> Iterator[None]:
    """Within: Nipype writes results and node reports without the process environment.

    Nipype's node module saves results and reports through two functions it
    imported (``save_resultfile`` as ``_save_resultfile``, ``write_node_report``);
    they are wrapped for the time of the run (nesting is fine) and put back
    after. Worker processes forked during the run (``MultiProc``) inherit the
    wrapping; processes started afresh (cluster jobs, a ``spawn`` or
    ``forkserver`` pool) do not: :func:`strip_environment` cleans their files.
    """
    global _patch_depth
    from nipype.pipeline.engine import nodes

    with _patch_lock:
        if _patch_depth == 0:
            save, report = nodes._save_resultfile, nodes.write_node_report

            def save_resultfile(result: Any, cwd: str, name: str, rebase: Any = None) -> None:
                with _no_environ(result):
                    save(result, cwd, name, rebase=rebase)

            def write_node_report(node: Any, result: Any = None, is_mapnode: bool = False
                                  ) -> None:
                with _no_environ(result):
                    report(node, result=result, is_mapnode=is_mapnode)

            save_resultfile.trx_nipype_wraps = save
            write_node_report.trx_nipype_wraps = report
            nodes._save_resultfile, nodes.write_node_report = save_resultfile, write_node_report
        _patch_depth += 1
    try:
        yield
    finally:
        with _patch_lock:
            _patch_depth -= 1
            if _patch_depth == 0:
                nodes._save_resultfile = nodes._save_resultfile.trx_nipype_wraps
                nodes.write_node_report = nodes.write_node_report.trx_nipype_wraps


def _strip_crash_file(path: Path) -> bool:
    """The environment out of a crash file's node result (a cluster plugin's crash files
    hold the result its job wrote)."""
    from nipype.utils.filemanip import loadpkl, savepkl

    try:
        crash = loadpkl(path)
    except Exception as exc:  # noqa: BLE001 -- not ours to judge here
        log.debug("%s: not read (%s)", path, exc)
        return False
    node = crash.get("node") if isinstance(crash, dict) else None
    runtime = getattr(getattr(node, "_result", None), "runtime", None)
    if getattr(runtime, "environ", ENVIRON_NOTE) == ENVIRON_NOTE:
        return False
    runtime.environ = dict(ENVIRON_NOTE)
    savepkl(os.fspath(path), crash)
    return True


def strip_environment(node_dir: str | os.PathLike) -> bool:
    """Remove the environment from the result files and report of one node's folder.

    For nodes run by another process (a cluster job): the result is read,
    its ``runtime.environ`` replaced by :data:`ENVIRON_NOTE`, and written back
    atomically; the report's ``Environment`` section likewise; the crash files
    of a crash folder likewise. Returns whether anything was changed (a file
    that cannot be read is left as it is).
    """
    from nipype.utils.filemanip import loadpkl, savepkl

    folder = Path(node_dir)
    changed = False
    for result_file in folder.rglob("result_*.pklz"):  # a MapNode's subnodes included
        try:
            result = loadpkl(result_file)
        except Exception as exc:  # noqa: BLE001 -- not ours to judge here
            log.debug("%s: not read (%s)", result_file, exc)
            continue
        runtime = getattr(result, "runtime", None)
        if getattr(runtime, "environ", ENVIRON_NOTE) != ENVIRON_NOTE:
            runtime.environ = dict(ENVIRON_NOTE)
            savepkl(os.fspath(result_file), result)
            changed = True
    note = "\nEnvironment\n~~~~~~~~~~~\n\n* trx-nipype : environment not stored\n"
    for crash_file in folder.glob("crash-*.pklz"):  # a crash folder: the node's result in it
        changed |= _strip_crash_file(crash_file)
    for report in folder.rglob("_report/report.rst"):
        try:
            text = report.read_text(encoding="utf-8")
        except OSError:
            continue
        cleaned = _ENVIRON_SECTION.sub(lambda _: note, text)
        if cleaned != text:
            tmp = report.with_name(".report.rst.tmp")
            tmp.write_text(cleaned, encoding="utf-8")
            os.replace(tmp, report)
            changed = True
    return changed
