"""Nipype execution plugins as :func:`~trx_nipype.workflows.runner.run_workflow` uses them.

Subclasses of Nipype's own plugins, fixing what costs time or hides failures
at batch scale; they take the same ``plugin_args``:

- :class:`MultiProcPlugin`: Nipype's ``MultiProc`` sleeps ``poll_sleep_duration``
  between scheduling rounds, and a round hands out at most ``n_procs`` nodes
  even when they are cached; a cached rerun of 200 nodes on 2 processes took
  100 rounds. This one wakes up as soon as a worker finishes (or when a round
  freed a slot) instead of sleeping a fixed time.
- :class:`SLURMPlugin`: Nipype's ``SLURM`` runs one ``squeue -j <id>`` per
  pending job per poll; this one asks ``squeue`` once per poll for all of them.
- :class:`SLURMGraphPlugin`: Nipype's ``SLURMGraph`` submits every job with its
  dependencies and returns. This one tags its jobs (``sbatch --comment``) so
  that the run can follow them in the queue (:class:`SlurmQueue`) until they
  are done, and does not resubmit completed jobs unless asked to
  (``dont_resubmit_completed_jobs``, default True here).
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from nipype.pipeline.plugins.multiproc import MultiProcPlugin as _NipypeMultiProc
from nipype.pipeline.plugins.slurm import SLURMPlugin as _NipypeSLURM
from nipype.pipeline.plugins.slurmgraph import SLURMGraphPlugin as _NipypeSLURMGraph

from ..core.tempfiles import make_temp_dir, remove_temp_dir

log = logging.getLogger(__name__)

#: job states of ``squeue`` that mean "not finished"
_LIVE_STATES = "PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED,REQUEUED,RESIZING"


def ensure_logname() -> str | None:
    """Set ``LOGNAME`` from the user id when it is unset; return the value set (or None).

    Nipype's cluster plugins read ``os.environ["LOGNAME"]``, which batch
    environments and containers often leave unset.
    """
    if os.environ.get("LOGNAME"):
        return None
    os.environ["LOGNAME"] = name = _user()
    return name


def _user() -> str:
    """The user whose jobs ``squeue`` lists (``--me`` is Slurm >= 20.11 only)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def signal_text(number: int) -> str:
    """``SIGBUS (Bus error: often a memory-mapped file truncated while being read)``.

    >>> signal_text(9)
    'SIGKILL (Killed: out of memory, or killed by a user or a scheduler)'
    """
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    what = signal.strsignal(number) or name
    hint = _SIGNAL_HINTS.get(name)
    return f"{name} ({what}{': ' + hint if hint else ''})"


_SIGNAL_HINTS = {
    "SIGBUS": "often a memory-mapped file truncated or replaced while being read",
    "SIGKILL": "out of memory, or killed by a user or a scheduler",
    "SIGSEGV": "a crash in compiled code",
    "SIGABRT": "a crash in compiled code",
}


def exit_text(code: int) -> str:
    """What a worker's exit code says: ``killed by signal SIGBUS (...)`` or ``exited with 3``."""
    if code < 0:
        return f"killed by signal {signal_text(-code)}"
    if code > 128 and code - 128 < 65:  # a shell's, or SystemExit(128 + signal)
        return f"ended by signal {signal_text(code - 128)}"
    return f"exited with status {code}"


def run_node_in_worker(marker_dir: str, node: Any, updatehash: bool, taskid: int
                       ) -> dict[str, Any]:
    """Nipype's MultiProc ``run_node``, saying first which process runs ``taskid``.

    The marker (``<marker_dir>/<taskid>`` holding the pid) lets the main process
    tell which node a worker that died was running.
    """
    from nipype.pipeline.plugins.multiproc import run_node

    with open(os.path.join(marker_dir, str(taskid)), "w", encoding="ascii") as fh:
        fh.write(str(os.getpid()))
    return run_node(node, updatehash, taskid)


class MultiProcPlugin(_NipypeMultiProc):
    """Nipype's MultiProc, woken up by finished workers, and surviving a killed worker.

    The scheduling loop of Nipype's ``DistributedPluginBase`` sleeps
    ``poll_sleep_duration`` after each round; :func:`run_workflow` sets it to 0
    for this plugin and this class waits, at the end of a round, until a worker
    reports (or at most ``max_wait`` seconds) when nothing else can be done.

    A worker process killed by a signal (SIGBUS from a file truncated under a
    memory map, SIGKILL from the out-of-memory killer, SIGSEGV...) breaks the
    process pool: Nipype then either stops with "A child process terminated
    abruptly" and no node named, or waits forever for the lost tasks. Here the
    node whose worker died fails like any node (a crash file saying which
    signal), and the other nodes that were running or queued are handed to a
    new pool and run to the end.
    """

    max_wait = 1.0
    #: a node whose worker is lost this many times (killed with the others) fails
    max_losses = 3

    def __init__(self, plugin_args: dict[str, Any] | None = None) -> None:
        super().__init__(plugin_args=plugin_args)
        self._wake = threading.Event()
        self._markers = str(make_temp_dir("workers"))
        self._tasks: dict[int, tuple[Any, bool]] = {}  # taskid -> (node, updatehash)
        self._futures: dict[Any, int] = {}  # future -> taskid
        self._workers: dict[int, Any] = {}  # pid -> multiprocessing process
        self._lost: dict[int, str] = {}  # taskid -> the error its future raised
        self._losses: dict[int, int] = {}

    def run(self, graph: Any, config: Any, updatehash: bool = False) -> None:
        """Run the graph; the graph, its nodes and their inputs are left out of ``gc``.

        Nipype calls ``gc.collect()`` before every scheduling round: with the
        execution graph (thousands of objects) frozen first, each collection only
        looks at what was made since.
        """
        import gc

        gc.freeze()
        try:
            super().run(graph, config, updatehash=updatehash)
        finally:
            gc.unfreeze()
            remove_temp_dir(self._markers)

    def _new_pool(self) -> None:
        """A fresh pool in place of a broken one (the same settings as Nipype's)."""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from nipype.pipeline.plugins.multiproc import process_initializer

        self.pool.shutdown(wait=False)
        self.pool = ProcessPoolExecutor(
            max_workers=self.processors, initializer=process_initializer,
            initargs=(self._cwd,), mp_context=mp.get_context(self.plugin_args.get("mp_context")))

    def _submit_job(self, node: Any, updatehash: bool = False) -> int:
        self._taskid += 1
        if getattr(node.interface, "terminal_output", "") == "stream":  # as Nipype does
            node.interface.terminal_output = "allatonce"
        self._tasks[self._taskid] = (node, updatehash)
        self._submit(self._taskid)
        return self._taskid

    def _submit(self, taskid: int) -> None:
        node, updatehash = self._tasks[taskid]
        if getattr(self.pool, "_broken", False):
            self._new_pool()
        future = self.pool.submit(run_node_in_worker, self._markers, node, updatehash, taskid)
        self._workers.update(getattr(self.pool, "_processes", None) or {})
        self._futures[future] = taskid
        self._task_obj[taskid] = future
        future.add_done_callback(self._async_callback)

    def _async_callback(self, args: Any) -> None:
        taskid = self._futures.pop(args, None)
        try:
            result = args.result()
        except BaseException as exc:  # noqa: BLE001 -- a broken pool, a cancelled task
            if taskid is not None:
                self._lost[taskid] = type(exc).__name__
        else:
            self._taskresult[result["taskid"]] = result
        self._wake.set()

    def _why_lost(self, taskid: int, error: str) -> str | None:
        """Why a task's future failed: its worker died (a message), or None (innocent).

        When a worker dies, the pool fails every task it holds and terminates its
        other workers (SIGTERM). The task whose worker ended otherwise -- killed by
        another signal, or exiting on its own -- is the one that killed it; a task
        never started, or whose worker the pool terminated, is run again.
        """
        try:
            with open(os.path.join(self._markers, str(taskid)), encoding="ascii") as fh:
                pid = int(fh.read() or 0)
        except (OSError, ValueError):
            return None  # never started: queued behind the one that died
        process = self._workers.get(pid)
        if process is None:
            return None
        process.join(timeout=10)  # the pool is ending its workers
        code = process.exitcode
        if code is None or code in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
            return None  # alive, or terminated by the pool: another worker died
        return (f"WorkerKilledError: the worker process running this node (pid {pid}) was "
                f"{exit_text(code)}, and the node did not finish ({error})")

    def _get_result(self, taskid: int) -> dict[str, Any] | None:
        if taskid in self._lost:
            why = self._why_lost(taskid, self._lost.pop(taskid))
            self._losses[taskid] = self._losses.get(taskid, 0) + 1
            if why is None and self._losses[taskid] >= self.max_losses:
                why = (f"WorkerKilledError: the process pool broke {self.max_losses} times "
                       f"while this node was running or queued (its worker was terminated)")
            if why is not None:
                return {"result": None, "traceback": [why], "taskid": taskid}
            log.info("task %d: its worker pool broke; submitted again", taskid)
            self._submit(taskid)
            return None
        return super()._get_result(taskid)

    def _clear_task(self, taskid: int) -> None:
        super()._clear_task(taskid)
        self._tasks.pop(taskid, None)

    def _send_procs_to_workers(self, updatehash: bool = False, graph: Any = None) -> None:
        self._wake.clear()
        before = int(np.count_nonzero(self.proc_done))
        super()._send_procs_to_workers(updatehash=updatehash, graph=graph)
        if not self.pending_tasks or int(np.count_nonzero(self.proc_done)) != before:
            return  # nothing running, or this round handed something out: go round again
        if any(taskid in self._taskresult or taskid in self._lost
               for taskid, _ in self.pending_tasks):
            return  # a result (or a lost task) is waiting to be collected
        self._wake.wait(self.max_wait)


@dataclass(frozen=True)
class QueuedJob:
    """A job of ours still in the Slurm queue."""

    job_id: str
    name: str
    state: str
    reason: str


def slurm_job_end(fields: str) -> str:
    """How a finished Slurm job ended, from its ``scontrol -o show job`` line.

    >>> slurm_job_end("JobId=7 JobName=j0_x JobState=FAILED ExitCode=0:9")
    'was killed by signal SIGKILL (Killed: out of memory, or killed by a user or a scheduler)'
    >>> slurm_job_end("JobId=7 JobState=FAILED ExitCode=135:0")[:32]  # a shell's 128 + 7
    'was ended by signal SIGBUS (Bus '
    >>> slurm_job_end("JobId=8 JobState=OUT_OF_MEMORY ExitCode=0:125")
    'ran out of memory (Slurm: OUT_OF_MEMORY; ask for more with sbatch_args --mem)'
    """
    state = re.search(r"\bJobState=(\S+)", fields)
    code = re.search(r"\bExitCode=(\d+):(\d+)", fields)
    state_name = state.group(1) if state else "?"
    known = {"OUT_OF_MEMORY": "ran out of memory (Slurm: OUT_OF_MEMORY; ask for more with "
                              "sbatch_args --mem)",
             "TIMEOUT": "hit its time limit (Slurm: TIMEOUT; ask for more with sbatch_args "
                        "--time)",
             "NODE_FAIL": "was lost with its node (Slurm: NODE_FAIL)",
             "PREEMPTED": "was preempted (Slurm: PREEMPTED)",
             "CANCELLED": "was cancelled (Slurm: CANCELLED)"}
    if state_name in known:
        return known[state_name]
    if code:
        status, sig = int(code.group(1)), int(code.group(2))
        if sig:
            return f"was killed by signal {signal_text(sig)}"
        if status:
            return f"was {exit_text(status)}".replace("was exited", "exited")
    return f"ended in state {state_name}"


def slurm_jobs(job_id: str | None = None) -> list[str]:
    """``scontrol -o show job [ID]``: one line per job Slurm still knows (finished ones for
    ``MinJobAge``, 300 s by default); empty when it cannot tell."""
    try:
        proc = subprocess.run(["scontrol", "-o", "show", "job", *([job_id] if job_id else [])],
                              capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return proc.stdout.splitlines() if proc.returncode == 0 else []


class SlurmQueue:
    """``squeue``/``scancel`` for the jobs of one run (tagged with ``--comment``)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    @staticmethod
    def available() -> bool:
        """Whether ``squeue`` is on the PATH."""
        return shutil.which("squeue") is not None

    def jobs(self, tries: int = 10, wait: float = 2.0) -> list[QueuedJob]:
        """Our jobs that are not finished (pending, running, ...).

        ``squeue`` is asked again (``tries`` times, ``wait`` seconds apart) when it
        fails, as it does while a busy controller times out.
        """
        for attempt in range(tries):
            proc = subprocess.run(
                ["squeue", "--noheader", f"--user={_user()}", f"--states={_LIVE_STATES}",
                 "--format=%i|%j|%T|%r|%k"], capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                break
            log.warning("squeue failed (%s); asking again", proc.stderr.strip())
            if attempt + 1 < tries:
                time.sleep(wait)
        else:
            raise RuntimeError(f"squeue failed {tries} times: "
                               f"{proc.stderr.strip() or proc.returncode}; the jobs may still "
                               f"be running: see squeue, then run the same command again")
        out = []
        for line in proc.stdout.splitlines():
            parts = line.strip().split("|", 4)
            if len(parts) == 5 and parts[4] == self.tag:
                out.append(QueuedJob(*parts[:4]))
        return out

    @staticmethod
    def cancel(job_ids: Iterable[str]) -> None:
        """``scancel`` these jobs."""
        ids = list(job_ids)
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, check=False)


class SLURMPlugin(_NipypeSLURM):
    """Nipype's SLURM plugin, asking ``squeue`` once per poll for every pending job."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._snapshot: tuple[float, set[str]] | None = None

    def _queued(self) -> set[str] | None:
        now = time.monotonic()
        if self._snapshot is not None and now - self._snapshot[0] < 0.2:
            return self._snapshot[1]
        proc = subprocess.run(["squeue", "--noheader", f"--user={_user()}", "--format=%i"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return None  # ask job by job, as Nipype does
        self._snapshot = (now, {line.strip() for line in proc.stdout.splitlines()})
        return self._snapshot[1]

    def _is_pending(self, taskid: int) -> bool:  # noqa: D102 (Nipype's)
        queued = self._queued()
        if queued is None:
            return super()._is_pending(taskid)
        return str(taskid) in queued

    def _submit_batchtask(self, scriptfile: str, node: Any) -> int:
        self._snapshot = None
        return super()._submit_batchtask(scriptfile, node)

    def _get_result(self, taskid: int) -> dict[str, Any] | None:
        """Nipype's, and for a job that left no result, how Slurm says it ended (a signal,
        out of memory, its time limit...).

        The traceback is made a list of lines: Nipype gives a string there, on which
        its own crash-file writer fails (``str + list``), ending the whole run.
        """
        result = super()._get_result(taskid)
        trace = result.get("traceback") if result else None
        if isinstance(trace, str):
            result["traceback"] = trace = trace.splitlines(keepends=True)
        if trace and result.get("result") is None and \
                "results file does not exist" in "".join(trace):
            lines = slurm_jobs(str(taskid))
            if lines:
                trace.append(f"\nSlurmJobError: its Slurm job {taskid} "
                             f"{slurm_job_end(lines[0])}, and left no result\n")
        return result


class SLURMGraphPlugin(_NipypeSLURMGraph):
    """Nipype's SLURMGraph plugin, with its jobs tagged so that the run can follow them."""

    def __init__(self, **kwargs: Any) -> None:
        args = dict(kwargs.get("plugin_args") or {})
        args.setdefault("dont_resubmit_completed_jobs", True)
        self.tag = f"trx-nipype-{uuid.uuid4().hex[:12]}"
        sbatch = str(args.get("sbatch_args", ""))
        args["sbatch_args"] = f"{sbatch} --comment={self.tag}".strip()
        kwargs["plugin_args"] = args
        super().__init__(**kwargs)
        self.submitted = 0

    def _submit_graph(self, pyfiles: list[str], dependencies: dict[int, list[int]],
                      nodes: list[Any]) -> None:
        super()._submit_graph(pyfiles, dependencies, nodes)
        script = os.path.join(os.path.dirname(pyfiles[0]), "submit_jobs.sh")
        with open(script, encoding="utf-8") as fh:
            self.submitted = sum(1 for line in fh if "=$(sbatch " in line)


#: our subclasses, by Nipype plugin name
PLUGIN_CLASSES = {"MultiProc": MultiProcPlugin, "SLURM": SLURMPlugin,
                  "SLURMGraph": SLURMGraphPlugin}
