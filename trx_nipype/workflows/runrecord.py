"""The record of a finished run: a rerun with nothing changed needs no Nipype at all.

A cached rerun through Nipype executes no node, but still costs about a second
at 100 subjects: importing Nipype, building the workflow, flattening and
copying its graph, and one cache check per node (each unpickles the node's
inputs and result). After a run in which every node succeeded, ``trx-nipype
run`` writes ``<work_dir>/trx-nipype-run.json``: what it was asked to do (its
key: pipeline, parameters, the dataset's subjects and files), the code that did
it (:func:`code_state`), the state of every input file taken *before* the run,
and the state of every file in the output folder and in the workflow's folder
of the work dir taken *after* it. The next run with the same command takes
the same states again; when every one is equal, nothing can have changed and
it says so without running Nipype (:func:`unchanged`).

A file's state is its size, modification and change times in nanoseconds and
its inode (:func:`file_state`): stricter than Nipype's ``timestamp`` hash
(size and modification time) and like the digest cache of the ``content``
hash, since an edit cannot keep the change time (``touch -d`` and ``cp -p``
restore the modification time, not the change time). Any difference
anywhere (an input edited, added or removed; an output or an intermediate
edited or deleted; a file left in the output folder; a parameter, the
package, Nipype, numpy, nibabel or dipy changed) sends the run through Nipype,
whose own cache then decides what to run again, and a new record is written
when it succeeds. A run starts by deleting the record, so a run that fails or
is killed leaves none.

An input changed within :data:`RACY_SECONDS` before the run looked at it could
be changed again within the same clock tick, keeping its times (the "racy"
case of git's index): the record then notes that it cannot be trusted, and
the next run goes through Nipype (and writes one that can).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .runlock import LOCK_NAME

#: the record's name, in the work dir
RECORD_NAME = "trx-nipype-run.json"
#: an input changed less than this before the run looked at it makes the record untrusted
#: (the digest cache's window: filesystems with 2 s timestamps, clocks a little apart)
RACY_SECONDS = 2.0
#: the libraries whose version is part of the code that made the outputs and the report
LIBRARIES = ("nipype", "numpy", "nibabel", "dipy", "pillow", "matplotlib")
_FORMAT = 2


def file_state(path: str | os.PathLike) -> list[int] | None:
    """``[size, mtime_ns, ctime_ns, inode]`` of a file (links followed), None if missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def file_states(paths: Iterable[str | os.PathLike]) -> dict[str, Any]:
    """:func:`file_state` of each path, by its absolute path; a folder (a TRX directory)
    by the states of the files in it (:func:`tree_state`): a member rewritten in place
    changes no time of its folder."""
    return {os.path.abspath(p): tree_state(p, skip=()) if os.path.isdir(p) else file_state(p)
            for p in paths}


def tree_state(folder: str | os.PathLike, skip: Iterable[str] = (LOCK_NAME, RECORD_NAME)
               ) -> dict[str, list[int]]:
    """The state of every file under ``folder``, by its path relative to it (posix).

    Directories count by their files (an empty one is not seen); symbolic links
    by themselves (not followed); names that start with one in ``skip`` (the
    run lock and the temporary files of runs waiting for it, this record)
    nowhere; a file gone between listing and looking is not there. A missing
    folder has no files.
    """
    skip = tuple(skip)
    found: dict[str, list[int]] = {}
    stack = [(os.fspath(folder), "")]
    while stack:
        here, rel = stack.pop()
        try:
            entries = list(os.scandir(here))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if skip and entry.name.startswith(skip):
                continue
            name = f"{rel}{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, name + "/"))
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found[name] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    return found


def code_state() -> dict[str, Any]:
    """The code that makes the outputs: Python, this package's sources, the libraries.

    The sources count by their names, sizes, modification and change times
    (an editable install edited counts as changed); the libraries by version.
    """
    from importlib.metadata import PackageNotFoundError, version

    package = Path(__file__).resolve().parents[1]
    listing = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        st = path.stat()
        listing.update(f"{path.relative_to(package).as_posix()}\0{st.st_size}\0"
                       f"{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode())
    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            libraries[name] = None
    return {"python": sys.version, "sources": listing.hexdigest(), "libraries": libraries}


@dataclass
class RunRecord:
    """What a successful run did, and the state of everything it depended on.

    ``events`` are the run's nodes (name, context) for the lines of a rerun;
    ``report`` what its QC report held (for its line); ``warnings`` the run's
    closing warnings (files of earlier runs in the output folder);
    ``hash_method`` Nipype's, as the run had it; ``workflow`` the name of the
    workflow's folder in the work dir.
    """

    key: dict[str, Any]
    code: dict[str, Any]
    inputs: dict[str, Any]
    taken_ns: int
    outputs: dict[str, list[int]] = field(default_factory=dict)
    work: dict[str, list[int]] = field(default_factory=dict)
    events: list[list[str]] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hash_method: str = "timestamp"
    workflow: str = ""
    trusted: bool = True
    format: int = _FORMAT

    def racy(self) -> bool:
        """Whether an input changed within :data:`RACY_SECONDS` before :attr:`taken_ns`."""
        limit = self.taken_ns - int(RACY_SECONDS * 1e9)
        states = [s for value in self.inputs.values() if value is not None
                  for s in (value.values() if isinstance(value, dict) else [value])]
        return any(max(state[1], state[2]) >= limit for state in states)


def record_path(work_dir: str | os.PathLike) -> Path:
    """``<work_dir>/trx-nipype-run.json``."""
    return Path(work_dir) / RECORD_NAME


@dataclass
class Looked:
    """The state of a run's files as one look took it: inputs (:func:`file_states`),
    and, when there is a record to compare with, the output folder and the
    workflow's folder in the work dir (:func:`tree_state`). ``taken_ns``: when
    the look began."""

    taken_ns: int
    inputs: dict[str, Any]
    outputs: dict[str, list[int]] | None = None
    work: dict[str, list[int]] | None = None


def look(inputs: Iterable[str | os.PathLike], output_dir: str | os.PathLike,
         work_dir: str | os.PathLike, record: RunRecord | None) -> Looked:
    """Take the state of the inputs and, to compare with ``record``, of its folders.

    Taken once per run: the unchanged-run check (:func:`unchanged`), the files
    changed since the record (:func:`changed_files`) and the new record
    (:func:`begin_run`) all read this one look.
    """
    now = Looked(taken_ns=time.time_ns(), inputs=file_states(inputs))
    if record is not None:
        now.outputs = tree_state(output_dir)
        now.work = tree_state(Path(work_dir, record.workflow)) if record.workflow else {}
    return now


def begin_run(work_dir: str | os.PathLike, key: Mapping[str, Any], now: Looked) -> RunRecord:
    """Before a run: forget the last record, take the state of the code; the inputs'
    is ``now``'s, taken before the run.

    The returned record is completed and saved by :func:`save_record` once the
    run has succeeded.
    """
    record_path(work_dir).unlink(missing_ok=True)
    record = RunRecord(key=json.loads(json.dumps(key)), code=code_state(),
                       inputs=now.inputs, taken_ns=now.taken_ns)
    record.trusted = not record.racy()
    return record


def save_record(record: RunRecord, work_dir: str | os.PathLike,
                output_dir: str | os.PathLike, workflow_dir: str | os.PathLike) -> Path:
    """After a successful run: take the state of its outputs and work, write the record.

    Written to a temporary name, then renamed: a reader sees a whole record or none.
    """
    record.workflow = Path(workflow_dir).name
    record.outputs = tree_state(output_dir)
    record.work = tree_state(workflow_dir)
    path = record_path(work_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(record), sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_record(work_dir: str | os.PathLike) -> RunRecord | None:
    """The record of the work dir's last successful run, or None (none, unreadable, old)."""
    try:
        data = json.loads(record_path(work_dir).read_text(encoding="utf-8"))
        if data.get("format") != _FORMAT:
            return None
        return RunRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def unchanged(record: RunRecord | None, key: Mapping[str, Any], now: Looked) -> bool:
    """Whether nothing has changed since the run that wrote ``record``.

    Nothing changed: a trusted record of the same key (command and dataset),
    every input, every file of the output folder and every file of the
    workflow's folder in the work dir in the state the record holds (no file
    added or removed either), and the same code (:func:`code_state`, taken
    last: the dearest).
    """
    return (record is not None and record.trusted
            and record.key == json.loads(json.dumps(key))
            and record.inputs == now.inputs and record.outputs == now.outputs
            and record.work == now.work and record.code == code_state())


def changed_files(record: RunRecord, now: Looked, output_dir: str | os.PathLike,
                  work_dir: str | os.PathLike) -> list[str]:
    """The files of the last run that are still there but not as it left them.

    Inputs whose state differs (a TRX folder as a whole when a file in it
    does), and the files of the output folder and of the workflow's folder in
    the work dir that the record holds and that now differ: absolute paths,
    for :func:`~trx_nipype.workflows.workdir.forget_missing_outputs` to
    rerun the nodes that read or wrote them. Nipype's own cache would not see
    an export or an intermediate edited in place (it reruns a node when its
    inputs change, not its outputs), nor, with its ``timestamp`` hash, an
    input whose size and modification time were put back. Files gone are
    not listed (the run sees them itself); files new to the record neither.
    ``now`` is :func:`look`'s, taken with ``record``.
    """
    changed = [path for path, state in now.inputs.items()
               if record.inputs.get(path, state) != state]
    folders = [(output_dir, record.outputs, now.outputs or {}),
               (Path(work_dir, record.workflow), record.work, now.work or {})]
    for folder, old_states, states in folders:
        changed += [os.path.join(os.path.abspath(folder), rel) for rel, state in states.items()
                    if rel in old_states and old_states[rel] != state]
    return changed
