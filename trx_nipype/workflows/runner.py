"""Running a workflow: cache in a work dir, progress a person can follow, failures as lines.

:func:`run_workflow` sets the Nipype options the pipelines rely on (crash
files in ``<work_dir>/crash``, ``stop_on_first_crash`` off so that one bad
subject does not stop the others), runs the workflow with the chosen plugin
and returns a :class:`RunReport`: which nodes ran, which were cached, and one
line per failure naming the subject (or bundle), the node and the problem.

Progress comes from Nipype's ``status_callback``, which the local plugins
(``Linear``, ``MultiProc``) and the non-graph cluster plugins call. The graph
cluster plugins (``SLURMGraph``, ``SGEGraph``, ...) submit every job at once
and return; their progress is the scheduler's.
"""

from __future__ import annotations

import gc
import glob
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: plugins that run in this process (and can report progress node by node)
LOCAL_PLUGINS = ("Linear", "MultiProc", "LegacyMultiProc")

_PARAM = re.compile(r"^_([A-Za-z0-9]+)_(.+)$")
_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)): (.+)$")


@dataclass
class NodeEvent:
    """A node that finished: ``status`` is ``"ran"``, ``"cached"``, ``"failed"`` or
    ``"skipped"`` (not run because a node it depends on failed)."""

    node: str
    context: str
    status: str
    seconds: float
    output_dir: str


@dataclass
class Failure:
    """A node that failed: where (``context``: subject or bundle), which node, why."""

    node: str
    context: str
    message: str
    crashfile: str

    def line(self) -> str:
        """One line: ``sub-03: load: <file>: <problem>``."""
        where = f"{self.context}: " if self.context else ""
        return f"{where}{self.node}: {self.message}"


@dataclass
class RunReport:
    """What :func:`run_workflow` did."""

    work_dir: str
    plugin: str
    seconds: float = 0.0
    events: list[NodeEvent] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no node failed."""
        return not self.failures

    @property
    def ran(self) -> list[NodeEvent]:
        """Nodes that executed (not taken from the cache)."""
        return [e for e in self.events if e.status == "ran"]

    @property
    def cached(self) -> list[NodeEvent]:
        """Nodes whose results came from the cache."""
        return [e for e in self.events if e.status == "cached"]

    @property
    def skipped(self) -> list[NodeEvent]:
        """Nodes not run because a node they depend on failed (reported by Linear)."""
        return [e for e in self.events if e.status == "skipped"]

    def finish(self, prefix: str = "", *, max_warnings: int | None = None,
               warnings_hint: str = "", summary: bool = True) -> int:
        """Print the warnings and failures (stderr) and the summary (stdout); return 0 or 1.

        Parameters
        ----------
        prefix : str
            Put before each ``warning: ...`` and ``error: ...`` line (a
            program's name: ``"trx-nipype: "``).
        max_warnings : int, optional
            Print at most this many warnings, then ``... and N more warnings``
            followed by ``warnings_hint`` (None: every warning).
        warnings_hint : str
            Appended to that line (``" (--verbose shows them)"``).
        summary : bool
            Also print :meth:`summary` on stdout (False: the caller says it).

        Returns
        -------
        int
            0 when no node failed, else 1 (an exit status).
        """
        shown = self.warnings if max_warnings is None else self.warnings[:max_warnings]
        for message in shown:
            print(f"{prefix}warning: {' '.join(message.split())}", file=sys.stderr)
        if len(shown) < len(self.warnings):
            print(f"{prefix}... and {len(self.warnings) - len(shown)} more warnings"
                  f"{warnings_hint}", file=sys.stderr)
        for failure in self.failures:
            print(f"{prefix}error: {failure.line()}", file=sys.stderr)
        if summary:
            print(self.summary())
        return 0 if self.ok else 1

    def summary(self) -> str:
        """``12 nodes ran, 3 cached, 1 failed in 4.2 s``."""
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return (f"{len(self.ran)} nodes ran, {len(self.cached)} cached, "
                f"{len(self.failures)} failed{skipped} in {self.seconds:.1f} s")


def node_context(output_dir: str | os.PathLike, work_dir: str | os.PathLike) -> str:
    """The iterable values in a node's folder: ``.../_subject_sub-01/...`` -> ``sub-01``."""
    try:
        parts = Path(output_dir).relative_to(work_dir).parts
    except ValueError:
        parts = Path(output_dir).parts
    values = []
    for part in parts:
        match = _PARAM.match(part)
        if match and not part.startswith("_0x"):
            key, value = match.groups()
            values.append(value if key == "subject" else f"{key}-{value}")
    return " ".join(values)


def _node_label(node: Any) -> str:
    name = node.name
    match = re.match(r"^_(.+?)(\d+)$", name)
    if match:  # a MapNode's subnode: _load2 -> load[2]
        return f"{match.group(1)}[{match.group(2)}]"
    return name


class _Progress:
    """Nipype ``status_callback``: records each node's outcome, echoes a line."""

    def __init__(self, work_dir: Path, started: float,
                 echo: Callable[[str], None] | None, linear: bool) -> None:
        self.work_dir, self.started, self.echo, self.linear = work_dir, started, echo, linear
        self.starts: dict[str, float] = {}
        self.events: list[NodeEvent] = []

    def __call__(self, node: Any, status: str) -> None:
        outdir = node.output_dir()
        if status == "start":
            self.starts[outdir] = time.time()
            return
        began = self.starts.pop(outdir, None)
        seconds = time.time() - began if began is not None else 0.0
        result = Path(outdir, f"result_{node.name}.pklz")
        if status == "exception":
            state = "failed"
        elif not result.exists() or (began is None and self.linear):
            state = "skipped"  # Linear calls back for nodes it skips after a failure
        else:
            state = "ran" if result.stat().st_mtime >= self.started else "cached"
        event = NodeEvent(_node_label(node), node_context(outdir, self.work_dir), state,
                          seconds, outdir)
        self.events.append(event)
        if self.echo is not None:
            timing = f"{seconds:6.2f} s" if state == "ran" else ""
            shown = state.upper() if state == "failed" else state
            self.echo(f"  [{len(self.events):3d}] {shown:7s} {event.context or '-':22s} "
                      f"{event.node:16s} {timing}".rstrip())


def exception_message(traceback: str | list[str]) -> str:
    """The last ``SomeError: message`` of a (possibly nested) traceback text."""
    text = "".join(traceback) if isinstance(traceback, list) else traceback
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    found = [m for m in (_EXC_LINE.match(ln) for ln in lines) if m]
    # Nipype wraps a node's error ("RuntimeError: Exception raised while executing Node
    # ..."): the innermost interesting error is the last one that is not such a wrapper.
    for match in reversed(found):
        msg = match.group(3)
        if "raised while executing Node" in msg or msg.startswith("Subnodes of node"):
            continue
        if match.group(1).endswith("KeyError") and len(msg) > 1 and msg[0] == msg[-1] in "'\"":
            msg = msg[1:-1]  # str(KeyError) quotes its message
        return msg
    return lines[-1] if lines else "unknown error (see the crash file)"


def _crash_files(crash_dir: Path) -> set[str]:
    return set(glob.glob(str(crash_dir / "crash-*.pklz")))


def read_failures(crash_dir: Path, before: set[str], work_dir: Path) -> list[Failure]:
    """Failures from the crash files in ``crash_dir`` that are not in ``before``."""
    from nipype.utils.filemanip import loadcrash

    failures = []
    for path in sorted(_crash_files(crash_dir) - before, key=os.path.getmtime):
        try:
            crash = loadcrash(path)
        except Exception as exc:  # an unreadable crash file still names a failure
            failures.append(Failure(Path(path).name, "", f"(unreadable crash file: {exc})",
                                    path))
            continue
        node = crash.get("node")
        outdir = node.output_dir() if node is not None else ""
        failures.append(Failure(_node_label(node) if node is not None else "?",
                                node_context(outdir, work_dir),
                                exception_message(crash.get("traceback", "")), path))
    return failures


def _quiet_nipype(verbose: bool) -> dict[str, int]:
    """Lower Nipype's console logging; return the previous levels."""
    saved = {}
    for name, level in (("nipype.workflow", logging.INFO if verbose else logging.CRITICAL),
                        ("nipype.interface", logging.INFO if verbose else logging.WARNING),
                        ("nipype.utils", logging.INFO if verbose else logging.WARNING)):
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(level)
    return saved


def run_workflow(wf: Any, work_dir: str | os.PathLike, *, plugin: str = "Linear",
                 plugin_args: Mapping[str, Any] | None = None, nprocs: int | None = None,
                 echo: Callable[[str], None] | None = None, verbose: bool = False
                 ) -> RunReport:
    """Run ``wf`` with its cache in ``work_dir``; never raise for a failed node.

    Parameters
    ----------
    wf : nipype.pipeline.engine.Workflow
        The workflow (its ``base_dir`` is set to ``work_dir``).
    work_dir : str or os.PathLike
        Nipype's cache: reuse it across runs to skip what is up to date.
    plugin : str
        A Nipype plugin: ``Linear``, ``MultiProc``, ``SLURMGraph``, ``SGEGraph``,
        ``PBSGraph``, ``SLURM``, ...
    plugin_args : mapping, optional
        Passed to the plugin (e.g. ``{"sbatch_args": "--mem=4G"}``).
    nprocs : int, optional
        Processes for ``MultiProc`` (``n_procs``).
    echo : callable, optional
        Called with one line per finished node (None: silent).
    verbose : bool
        Keep Nipype's own INFO logging.

    Returns
    -------
    RunReport
        ``failures`` is empty when every node succeeded; ``warnings`` holds the
        distinct warnings of the nodes run in this process and, after a
        successful run of a pipeline of :mod:`trx_nipype.workflows.pipelines`,
        one naming the files in its output folder that an earlier run of the
        same pipeline wrote and this one did not (they are not deleted).
    """
    from .dataset import WORK_DIR_MARKER

    work_dir = Path(work_dir).absolute()
    crash_dir = work_dir / "crash"
    crash_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / WORK_DIR_MARKER).touch()  # find_dataset skips work dirs inside a dataset
    wf.base_dir = str(work_dir)
    execution = {"crashdump_dir": str(crash_dir), "crashfile_format": "pklz",
                 "stop_on_first_crash": "false", "remove_unnecessary_outputs": "false",
                 "hash_method": "timestamp"}
    if plugin in LOCAL_PLUGINS:
        execution["poll_sleep_duration"] = "0.05"
    wf.config["execution"].update(execution)
    args = dict(plugin_args or {})
    if nprocs is not None and plugin in ("MultiProc", "LegacyMultiProc"):
        args.setdefault("n_procs", nprocs)
    before = _crash_files(crash_dir)
    started = time.time()
    progress = _Progress(work_dir, started, echo, plugin == "Linear")
    args["status_callback"] = progress
    report = RunReport(work_dir=str(work_dir), plugin=plugin)
    saved = _quiet_nipype(verbose)
    caught: list[warnings.WarningMessage] = []
    # MultiProc runs gc.collect() after every job: with the objects alive now frozen
    # out of the collector's view, each collection is cheap.
    gc.freeze()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wf.run(plugin=plugin, plugin_args=args)
    except RuntimeError as exc:
        report.failures = read_failures(crash_dir, before, work_dir)
        if not report.failures:
            raise RuntimeError(f"{wf.name}: {exc}") from exc
    finally:
        gc.unfreeze()
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        report.seconds = time.time() - started
        report.events = progress.events
        report.warnings = list(dict.fromkeys(str(w.message) for w in caught
                                             if issubclass(w.category, UserWarning)))
    expected = getattr(wf, "trx_nipype_outputs", None)
    if report.ok and expected and (plugin in LOCAL_PLUGINS or report.events):
        message = stale_message(**expected)
        if message:
            report.warnings.append(message)
    return report


def stale_message(output_dir: str, pipeline: str, outputs: list[str]) -> str | None:
    """A warning naming the files of earlier ``pipeline`` runs that this run did not write.

    Parameters
    ----------
    output_dir : str
        Root of the derivatives tree.
    pipeline : str
        The pipeline (the sidecars' ``Pipeline``).
    outputs : list of str
        This run's files, relative to ``output_dir``.

    Returns
    -------
    str or None
        None when there are none.
    """
    from .derivatives import stale_outputs

    stale = stale_outputs(output_dir, pipeline, outputs)
    if not stale:
        return None
    names = [os.path.relpath(p, output_dir) for p in stale]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (f"{len(names)} file(s) in {output_dir} come from an earlier '{pipeline}' run (other "
            f"subjects or bundles) and were not written by this one: {shown}; they may "
            f"contradict this run's outputs (not deleted)")
