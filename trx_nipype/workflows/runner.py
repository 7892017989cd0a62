"""Running a workflow: cache in a work dir, progress a person can follow, failures as lines.

:func:`run_workflow` is how to run a workflow of this package -- or your own
Nipype workflow -- with any plugin. It fills in the Nipype options the
pipelines rely on when the workflow leaves them unset (crash files in
``<work_dir>/crash``, ``stop_on_first_crash`` off so that one bad subject does
not stop the others), runs the workflow, waits until the work is done and
returns a :class:`RunReport`: which nodes ran, which were cached, and one
line per failure naming the subject (or bundle), the node and the problem.

Every plugin gives the same report:

- ``Linear``, ``MultiProc`` and the non-graph cluster plugins (``SLURM``,
  ``SGE``, ...) report each node through Nipype's ``status_callback``
  (``MultiProc`` and ``SLURM`` are this package's faster subclasses, see
  :mod:`trx_nipype.workflows.plugins`);
- ``SLURMGraph`` submits every job with its dependencies at once; the run then
  follows its jobs in the queue and the nodes' result and crash files until
  none is left, and reports the same way (``wait=False``: submit and return).
  A job that waits for a failed job forever (a Slurm without
  ``DependencyParameters=kill_invalid_depend``) is cancelled, and the report
  says so. Other graph plugins (``SGEGraph``, ``PBSGraph``) submit and return.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: plugins that run in this process
LOCAL_PLUGINS = ("Linear", "MultiProc", "LegacyMultiProc")
#: plugins that submit every job at once and return (their jobs are followed in the queue)
GRAPH_PLUGINS = ("SLURMGraph", "SGEGraph", "PBSGraph", "CondorDAGMan")
#: the execution plugins of Nipype 1.x (``nipype.pipeline.plugins.<name>Plugin``), known
#: without importing Nipype; another name is looked up there
NIPYPE_PLUGINS = ("Condor", "CondorDAGMan", "Debug", "IPython", "LSF", "LegacyMultiProc",
                  "Linear", "MultiProc", "OAR", "PBS", "PBSGraph", "SGE", "SGEGraph", "SLURM",
                  "SLURMGraph", "SomaFlow")

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
    #: jobs handed to a graph plugin (None: not a graph plugin)
    submitted: int | None = None
    #: False when a graph plugin's jobs were submitted and not followed (``wait=False``)
    waited: bool = True
    #: the warning (also in ``warnings``) naming files of earlier runs in the output folder
    stale: str | None = None

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


#: iterable names whose values are subject (session) labels: shown as ``sub-<value>``
_SUBJECT_FIELDS = ("subject", "participant")
_SESSION_FIELDS = ("session",)


def _shown(key: str, value: str) -> str:
    low = key.lower()
    if low == "sub" or any(f in low for f in _SUBJECT_FIELDS):
        return value if value.startswith("sub-") else f"sub-{value}"
    if low == "ses" or any(f in low for f in _SESSION_FIELDS):
        return value if value.startswith("ses-") else f"ses-{value}"
    return f"{key}-{value}"


def _iterable(part: str, fields: tuple[str, ...]) -> tuple[str, str] | None:
    """``_<field>_<value>`` -> (field, value); known field names first (they may hold ``_``)."""
    for name in fields:
        if part.startswith(f"_{name}_") and len(part) > len(name) + 2:
            return name, part[len(name) + 2:]
    match = _PARAM.match(part)
    return match.groups() if match and not part.startswith("_0x") else None


def node_context(output_dir: str | os.PathLike, work_dir: str | os.PathLike, *,
                 fields: tuple[str, ...] = (), folders: Mapping[str, str] | None = None) -> str:
    """Where a node runs, from its folder: the subject, session or bundle it belongs to.

    ``.../_subject_sub-01/...`` and ``.../_subject_id_01/...`` (iterables, with
    ``fields`` naming the workflow's iterable fields, longest first) give
    ``sub-01``; ``.../_bundle_AF_L/...`` gives ``bundle-AF_L``; a folder named
    in ``folders`` (a pipeline's per-subject workflows) gives its value.

    >>> node_context("/w/wf/_subject_id_01/load", "/w", fields=("subject_id",))
    'sub-01'
    >>> node_context("/w/wf/sub-02/assemble", "/w", folders={"sub-02": "sub-02"})
    'sub-02'
    """
    try:
        parts = Path(output_dir).relative_to(work_dir).parts
    except ValueError:
        parts = Path(output_dir).parts
    values = []
    for part in parts:
        if folders and part in folders:
            values.append(folders[part])
            continue
        found = _iterable(part, fields)
        if found:
            values.append(_shown(*found))
    return " ".join(values)


def iterable_fields(wf: Any) -> tuple[str, ...]:
    """The iterable field names of every node of ``wf`` (and its sub-workflows), longest first."""
    names: set[str] = set()
    for name in wf.list_node_names():
        iterables = getattr(wf.get_node(name), "iterables", None)
        if not iterables:
            continue
        if isinstance(iterables, tuple) and len(iterables) == 2 and isinstance(iterables[0],
                                                                               str):
            iterables = [iterables]
        for item in iterables if isinstance(iterables, list) else []:
            if isinstance(item, tuple) and item and isinstance(item[0], str):
                names.add(item[0])
    return tuple(sorted(names, key=len, reverse=True))


def _node_label(node: Any) -> str:
    name = node.name
    match = re.match(r"^_(.+?)(\d+)$", name)
    if match:  # a MapNode's subnode: _load2 -> load[2]
        return f"{match.group(1)}[{match.group(2)}]"
    return name


@dataclass
class _Where:
    """How node folders map to subjects and bundles in this run."""

    work_dir: Path
    fields: tuple[str, ...] = ()
    folders: Mapping[str, str] = field(default_factory=dict)

    def context(self, output_dir: str | os.PathLike) -> str:
        return node_context(output_dir, self.work_dir, fields=self.fields, folders=self.folders)


class _Progress:
    """Nipype ``status_callback``: records each node's outcome, echoes a line.

    With ``scrub`` (nodes run by processes that Nipype's writers were not wrapped
    in: cluster jobs), the files of each node that ran or failed are cleaned of
    the environment (:func:`~trx_nipype.workflows.workdir.strip_environment`).
    """

    def __init__(self, where: _Where, started: float,
                 echo: Callable[[str], None] | None, linear: bool,
                 scrub: bool = False) -> None:
        self.where, self.started, self.echo, self.linear = where, started, echo, linear
        self.scrub = scrub
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
        self.add(NodeEvent(_node_label(node), self.where.context(outdir), state, seconds,
                           outdir))

    def add(self, event: NodeEvent) -> None:
        if self.scrub and event.status in ("ran", "failed") and event.output_dir:
            from .workdir import strip_environment

            strip_environment(event.output_dir)
        self.events.append(event)
        if self.echo is not None:
            self.echo(event_line(len(self.events), event))


def event_line(number: int, event: NodeEvent) -> str:
    """The progress line of a finished node: ``  [  3] ran     sub-01  assemble  0.52 s``."""
    timing = f"{event.seconds:6.2f} s" if event.status == "ran" and event.seconds else ""
    shown = event.status.upper() if event.status == "failed" else event.status
    return (f"  [{number:3d}] {shown:7s} {event.context or '-':22s} "
            f"{event.node:16s} {timing}").rstrip()


def cached_report(work_dir: str | os.PathLike, plugin: str, nodes: Sequence[Sequence[str]],
                  echo: Callable[[str], None] | None = None) -> RunReport:
    """The report of a run that found every node cached without running Nipype.

    ``nodes`` are ``(node, context)`` pairs, in the order of the run that made
    them (:mod:`~trx_nipype.workflows.runrecord`); each is echoed as
    ``cached``, as a cached rerun through Nipype does.
    """
    started = time.time()
    report = RunReport(work_dir=str(work_dir), plugin=plugin)
    for number, (node, context) in enumerate(nodes, start=1):
        event = NodeEvent(node, context, "cached", 0.0, "")
        report.events.append(event)
        if echo is not None:
            echo(event_line(number, event))
    report.seconds = time.time() - started
    return report


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
    return set(glob.glob(str(crash_dir / "crash-*.pklz"))) | \
        set(glob.glob(str(crash_dir / "crash-*.txt")))


def _read_crash(path: str) -> tuple[Any, str, str]:
    """(node or None, its folder, the traceback text) of a .pklz or .txt crash file."""
    if path.endswith(".txt"):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        folder = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                       if ln.startswith("Working directory:")), "")
        return None, folder, text
    from nipype.utils.filemanip import loadcrash

    crash = loadcrash(path)
    node = crash.get("node")
    return node, node.output_dir() if node is not None else "", crash.get("traceback", "")


def _failure(path: str, where: _Where) -> tuple[Failure, str]:
    """The failure a crash file tells, and the folder of its node ("" when unknown)."""
    try:
        node, folder, traceback = _read_crash(path)
    except Exception as exc:  # an unreadable crash file still names a failure
        return Failure(Path(path).name, "", f"(unreadable crash file: {exc})", path), ""
    label = _node_label(node) if node is not None else (Path(folder).name if folder else "?")
    return Failure(label, where.context(folder) if folder else "",
                   exception_message(traceback), path), folder


def read_failures(crash_dir: Path, before: set[str], work_dir: Path | _Where) -> list[Failure]:
    """Failures from the crash files in ``crash_dir`` that are not in ``before``."""
    where = work_dir if isinstance(work_dir, _Where) else _Where(Path(work_dir))
    return [_failure(path, where)[0]
            for path in sorted(_crash_files(crash_dir) - before, key=os.path.getmtime)]


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


#: Nipype execution options this package relies on, filled in when the workflow leaves
#: them at Nipype's default (crashdump_dir is set per run: ``<work_dir>/crash``)
FILLED_SETTINGS = {"crashfile_format": "pklz", "stop_on_first_crash": "false",
                   "hash_method": "timestamp"}


def nipype_defaults() -> dict[str, str]:
    """Nipype's default ``[execution]`` settings (``crashdump_dir``: the cwd it recorded)."""
    import configparser

    from nipype import config
    from nipype.utils.config import DEFAULT_CONFIG_TPL

    parser = configparser.ConfigParser()
    parser.read_string(DEFAULT_CONFIG_TPL.format(log_dir=os.path.expanduser("~"),
                                                 crashdump_dir=config.cwd))
    return dict(parser["execution"])


def fill_execution_settings(wf: Any, values: Mapping[str, str]) -> dict[str, str]:
    """Set each of ``values`` in ``wf.config["execution"]`` where the workflow has none.

    A setting counts as unset when it is missing or equal to Nipype's default
    (a workflow's config starts as a copy of Nipype's): what the user set is
    never overwritten. Returns the settings in effect for ``values``' keys.
    """
    execution = wf.config.setdefault("execution", {})
    defaults = nipype_defaults()
    for key, value in values.items():
        current = execution.get(key)
        if current is None or str(current) == defaults.get(key):
            execution[key] = value
    return {key: str(execution[key]) for key in values}


def _runs_here(plugin: str, args: Mapping[str, Any]) -> bool:
    """Whether every node runs in this process or in workers forked from it."""
    if plugin not in LOCAL_PLUGINS:
        return False
    context = args.get("mp_context")
    return context in (None, "fork") or plugin == "Linear"


def default_work_dir(output_dir: str | os.PathLike) -> Path:
    """``<OUTPUT_DIR>-work``, beside the output folder: the default work dir of a run.

    Nipype's cache (and, for the demo, its data) stays out of the tree that
    users share or publish: node results hold absolute paths, host names and
    node reports. The same command finds it again (a rerun is cached).

    >>> default_work_dir("/data/derivatives/trx").as_posix()
    '/data/derivatives/trx-work'
    >>> default_work_dir("/").as_posix()
    '/trx-nipype-work'
    """
    out = Path(os.path.abspath(output_dir))
    return out.parent / f"{out.name or 'trx-nipype'}-work"


def _plugin(plugin: str, args: dict[str, Any]) -> Any:
    """Our subclass of a Nipype plugin (see :mod:`.plugins`), else the plugin's name."""
    from .plugins import PLUGIN_CLASSES

    cls = PLUGIN_CLASSES.get(plugin)
    return cls(plugin_args=args) if cls is not None else plugin


def run_workflow(wf: Any, work_dir: str | os.PathLike, *, plugin: str = "Linear",
                 plugin_args: Mapping[str, Any] | None = None, nprocs: int | None = None,
                 echo: Callable[[str], None] | None = None, verbose: bool = False,
                 wait: bool = True, poll: float = 0.5,
                 wait_for_lock: float | None = 0.0) -> RunReport:
    """Run ``wf`` with its cache in ``work_dir``, wait for it; never raise for a failed node.

    This is how to run your own workflows too: compared with
    ``wf.run(plugin="MultiProc")`` it schedules MultiProc nodes without
    Nipype's fixed polling (a cached rerun of a 200-node workflow takes a
    fraction of a second instead of about 5 s), follows graph-plugin jobs to
    the end, and reports every failure in one line.

    Parameters
    ----------
    wf : nipype.pipeline.engine.Workflow
        The workflow (its ``base_dir`` is set to ``work_dir``).
    work_dir : str or os.PathLike
        Nipype's cache: reuse it across runs to skip what is up to date.
    plugin : str
        A Nipype plugin: ``Linear``, ``MultiProc``, ``SLURM``, ``SLURMGraph``,
        ``SGE``, ``SGEGraph``, ``PBSGraph``, ...
    plugin_args : mapping, optional
        Passed to the plugin (e.g. ``{"sbatch_args": "--mem=4G"}``); they win
        over everything this function would choose (``n_procs``,
        ``dont_resubmit_completed_jobs`` ...).
    nprocs : int, optional
        Processes for ``MultiProc`` (``n_procs``).
    echo : callable, optional
        Called with one line per finished node (None: silent).
    verbose : bool
        Keep Nipype's own INFO logging.
    wait : bool
        For graph plugins (``SLURMGraph``): follow the submitted jobs until
        they are done (default). False: submit and return (``report.waited``
        is False, and ``report.submitted`` says how many jobs went out).
    poll : float
        Seconds between looks at the queue while following graph jobs.
    wait_for_lock : float or None
        Seconds to wait for another run that holds the work dir (or the
        pipeline's output folder): 0 refuses at once, None waits as long as it
        takes (see :mod:`~trx_nipype.workflows.runlock`).

    Returns
    -------
    RunReport
        ``failures`` is empty when every node succeeded; ``warnings`` holds the
        distinct warnings of the nodes run in this process and, after a
        successful run of a pipeline of :mod:`trx_nipype.workflows.pipelines`,
        one naming the files in its output folder that an earlier run of the
        same pipeline wrote and this one did not (they are not deleted).

    Raises
    ------
    RunLockedError
        When another run (another process, here or on another host sharing the
        folder) still holds the work dir or the output folder after
        ``wait_for_lock`` seconds; its message names that process.

    Notes
    -----
    The run holds a lock on the work dir, and on the output folder of a
    pipeline of :mod:`trx_nipype.workflows.pipelines`, from start to end: two
    runs never mix their files or race in Nipype's cache. A lock left by a
    process that died is taken over. With a graph plugin and ``wait=False`` the
    lock covers the submission only: the jobs then run unlocked.

    Before the workflow runs, a node whose cached result names a file that is
    gone (an intermediate deleted from the work dir, an export deleted from
    the output folder) is made to run again, and with it what depends on its
    files (:func:`~trx_nipype.workflows.workdir.forget_missing_outputs`). For a
    pipeline of :mod:`trx_nipype.workflows.pipelines` (an
    :class:`~trx_nipype.workflows.derivatives.OutputTree` attached by its
    builder, which touches no disk), the output folder's
    ``dataset_description.json`` is written first.

    The environment of the process, which Nipype stores in every node result
    and report, is kept out of them (:mod:`~trx_nipype.workflows.workdir`):
    written without it in this process and its forked workers, cleaned from
    the files of cluster jobs as they end.

    Execution settings are only filled in where the workflow has none of its
    own (a value equal to Nipype's default counts as none): ``crashdump_dir``
    (``<work_dir>/crash``), ``crashfile_format`` (``pklz``), ``stop_on_first_crash``
    (``false``), ``hash_method`` (``timestamp``) and, per plugin,
    ``poll_sleep_duration``. ``LOGNAME``, which Nipype's cluster plugins need,
    is set from the user id for the run when the environment lacks it.
    """
    from .runlock import run_lock

    work_dir = Path(work_dir).absolute()
    tree = getattr(wf, "trx_nipype_outputs", None)  # a pipeline's OutputTree
    folders = [work_dir] + ([Path(tree.output_dir)] if tree is not None else [])

    def waiting(holder: Any, folder: Path) -> None:
        if echo is not None:
            echo(f"waiting for the run that holds {folder}: "
                 f"{holder.describe() if holder else 'unknown process'}")

    with run_lock(folders, wait=wait_for_lock, purpose=f"run_workflow {wf.name}",
                  waiting=waiting, option="run_workflow(..., wait_for_lock=SECONDS)"):
        return _run(wf, work_dir, tree, plugin=plugin, plugin_args=plugin_args, nprocs=nprocs,
                    echo=echo, verbose=verbose, wait=wait, poll=poll)


def _run(wf: Any, work_dir: Path, tree: Any, *, plugin: str,
         plugin_args: Mapping[str, Any] | None, nprocs: int | None,
         echo: Callable[[str], None] | None, verbose: bool, wait: bool, poll: float
         ) -> RunReport:
    """:func:`run_workflow` once its folders are locked."""
    from ..core.operations.compare import WORK_DIR_MARKER
    from .plugins import ensure_logname
    from .workdir import environment_stripped, forget_missing_outputs, strip_environment

    (work_dir / "crash").mkdir(parents=True, exist_ok=True)
    (work_dir / WORK_DIR_MARKER).touch()  # find_dataset skips work dirs inside a dataset
    wf.base_dir = str(work_dir)
    if tree is not None:
        tree.describe()  # dataset_description.json: the run writes it, not the builder
    forget_missing_outputs(work_dir / wf.name)  # files deleted since: rerun their nodes
    fills = dict(FILLED_SETTINGS, crashdump_dir=str(work_dir / "crash"))
    if plugin == "MultiProc":
        fills["poll_sleep_duration"] = "0"  # our MultiProc waits for its workers instead
    elif plugin in LOCAL_PLUGINS:
        fills["poll_sleep_duration"] = "0.05"
    elif plugin not in GRAPH_PLUGINS:
        fills["poll_sleep_duration"] = "0.5"  # one squeue call per poll (plugins.SLURMPlugin)
    settings = fill_execution_settings(wf, fills)
    crash_dir = Path(settings["crashdump_dir"])
    crash_dir.mkdir(parents=True, exist_ok=True)
    graph = plugin in GRAPH_PLUGINS
    args = dict(plugin_args or {})
    if nprocs is not None and plugin in ("MultiProc", "LegacyMultiProc"):
        args.setdefault("n_procs", nprocs)
    where = _Where(work_dir, iterable_fields(wf), dict(getattr(wf, "trx_nipype_contexts", {})))
    before = _crash_files(crash_dir)
    started = time.time()
    progress = _Progress(where, started, echo, plugin == "Linear",
                         scrub=not _runs_here(plugin, args))
    if not graph:
        args["status_callback"] = progress
    report = RunReport(work_dir=str(work_dir), plugin=plugin)
    saved = _quiet_nipype(verbose)
    logname = ensure_logname()
    caught: list[warnings.WarningMessage] = []
    execgraph = None
    runner = _plugin(plugin, args)
    # MultiProc runs gc.collect() after every job: with the objects alive now frozen
    # out of the collector's view, each collection is cheap.
    gc.freeze()
    try:
        with warnings.catch_warnings(record=True) as caught, environment_stripped():
            warnings.simplefilter("always")
            execgraph = wf.run(plugin=runner, plugin_args=args)
    except RuntimeError as exc:
        report.failures = read_failures(crash_dir, before, where)
        if not report.failures:
            raise RuntimeError(f"{wf.name}: {exc}") from exc
    finally:
        gc.unfreeze()
        if progress.scrub:  # a cluster plugin's crash files hold its jobs' results
            strip_environment(crash_dir)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        if logname is not None:
            os.environ.pop("LOGNAME", None)
        report.warnings = list(dict.fromkeys(str(w.message) for w in caught
                                             if issubclass(w.category, UserWarning)))
    if graph and execgraph is not None:
        report.submitted = getattr(runner, "submitted", None)
        if wait and plugin == "SLURMGraph":
            _follow(execgraph, runner, where, started, progress, report, crash_dir, before, poll)
            strip_environment(crash_dir)  # the crash files of the jobs followed
        else:
            report.waited = False
    report.seconds = time.time() - started
    report.events = progress.events
    if report.ok and tree is not None and report.waited:
        message = stale_message(tree.output_dir, tree.pipeline, list(tree.outputs))
        if message:
            report.warnings.append(message)
            report.stale = message
    return report


def _submitted_nodes(batch_dir: Path) -> set[int]:
    """Indices (in ``nodes``' topological order) of the jobs in ``submit_jobs.sh``."""
    script = batch_dir / "submit_jobs.sh"
    if not script.is_file():
        return set()
    found = re.findall(r"^j(\d+)_\S*=\$\(sbatch ", script.read_text(encoding="utf-8"), re.M)
    return {int(i) for i in found}


def _follow(execgraph: Any, runner: Any, where: _Where, started: float, progress: _Progress,
            report: RunReport, crash_dir: Path, before: set[str], poll: float) -> None:
    """Follow a graph plugin's jobs in the queue until none is left; record each node.

    A node is judged once its job has left the queue (its result or crash file is
    then written): a crash file makes it failed, a result written by this run ran.
    At the end, nodes that were not submitted are cached, and submitted nodes
    without either file were cancelled behind a failure (skipped) or died
    without a word (failed).
    """
    import networkx as nx

    from .plugins import SlurmQueue

    nodes = list(nx.topological_sort(execgraph))  # the order the plugin numbered its jobs
    index = {node.output_dir(): i for i, node in enumerate(nodes)}
    batch_dirs = {Path(n.base_dir, n._hierarchy.split(".")[0] if n._hierarchy else "",
                       "batch") for n in nodes}
    submitted = set().union(*(_submitted_nodes(d) for d in batch_dirs))
    queue = SlurmQueue(runner.tag)
    state: dict[int, str] = {}
    crashed: dict[int, Failure] = {}
    seen: set[str] = set(before)
    cancelled: list[str] = []

    def record(i: int, status: str) -> None:
        state[i] = status
        progress.add(NodeEvent(_node_label(nodes[i]), where.context(nodes[i].output_dir()),
                               status, 0.0, nodes[i].output_dir()))

    def fresh(i: int) -> bool:
        result = Path(nodes[i].output_dir(), f"result_{nodes[i].name}.pklz")
        return result.is_file() and result.stat().st_mtime >= started

    def look(live: set[int]) -> None:
        for path in sorted(_crash_files(crash_dir) - seen, key=os.path.getmtime):
            seen.add(path)
            failure, folder = _failure(path, where)
            report.failures.append(failure)
            if folder in index:
                crashed[index[folder]] = failure
        for i in sorted(submitted - set(state) - live):
            if i in crashed:
                record(i, "failed")
            elif fresh(i):
                record(i, "ran")

    while True:
        jobs = queue.jobs()
        live = {int(m.group(1)) for m in (re.match(r"^j(\d+)_", j.name) for j in jobs) if m}
        look(live)
        stuck = [j for j in jobs if "DependencyNeverSatisfied" in j.reason]
        if stuck:
            queue.cancel(j.job_id for j in stuck)
            cancelled.extend(j.name for j in stuck)
        if not jobs:
            break
        time.sleep(poll)
    look(set())
    if cancelled:
        report.warnings.append(
            f"{len(cancelled)} Slurm job(s) waited for a job that failed and could never run "
            f"(reason DependencyNeverSatisfied); they were cancelled. With "
            f"DependencyParameters=kill_invalid_depend in slurm.conf, Slurm cancels such jobs "
            f"itself (otherwise they stay pending when the run is not followed: --no-wait)")
    known: list[str] = []  # what scontrol says of the finished jobs, asked once if needed
    for i, node in enumerate(nodes):
        if i in state:
            continue
        upstream = [index[p.output_dir()] for p in execgraph.predecessors(node)]
        result = Path(node.output_dir(), f"result_{node.name}.pklz")
        if i not in submitted:
            record(i, "cached" if result.is_file() else "skipped")
        elif any(state.get(j) in ("failed", "skipped") for j in upstream):
            record(i, "skipped")
        elif result.is_file():
            record(i, "cached")  # submitted, and found its result in the cache
        else:
            ended = _graph_job_end(i, runner.tag, known)
            report.failures.append(Failure(
                _node_label(node), where.context(node.output_dir()),
                f"its Slurm job {ended}, and left no result or crash file" if ended else
                "its job ended without a result or a crash file (killed by the scheduler? "
                "see the batchscript_*.e files in the work dir's batch folder)", ""))
            record(i, "failed")


def _graph_job_end(index: int, tag: str, known: list[str]) -> str | None:
    """How the SLURMGraph job of node ``index`` ended (a signal, out of memory...), from
    ``scontrol`` (``known``: its lines, filled on the first call); None if Slurm forgot it."""
    from .plugins import slurm_job_end, slurm_jobs

    if not known:
        known.extend(slurm_jobs() or [""])
    name = re.compile(rf"\bJobName=j{index}_\S*")
    for line in known:
        if name.search(line) and re.search(rf"\bComment={re.escape(tag)}(\s|$)", line):
            return slurm_job_end(line)
    return None


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
