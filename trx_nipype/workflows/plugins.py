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
import shutil
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

log = logging.getLogger(__name__)

#: plugins that submit every job at once and return (their jobs are followed in the queue)
GRAPH_PLUGINS = ("SLURMGraph", "SGEGraph", "PBSGraph", "CondorDAGMan")
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


class MultiProcPlugin(_NipypeMultiProc):
    """Nipype's MultiProc, woken up by finished workers instead of a fixed sleep.

    The scheduling loop of Nipype's ``DistributedPluginBase`` sleeps
    ``poll_sleep_duration`` after each round; :func:`run_workflow` sets it to 0
    for this plugin and this class waits, at the end of a round, until a worker
    reports (or at most ``max_wait`` seconds) when nothing else can be done.
    """

    max_wait = 1.0

    def __init__(self, plugin_args: dict[str, Any] | None = None) -> None:
        super().__init__(plugin_args=plugin_args)
        self._wake = threading.Event()

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

    def _async_callback(self, args: Any) -> None:
        super()._async_callback(args)
        self._wake.set()

    def _send_procs_to_workers(self, updatehash: bool = False, graph: Any = None) -> None:
        self._wake.clear()
        before = int(np.count_nonzero(self.proc_done))
        super()._send_procs_to_workers(updatehash=updatehash, graph=graph)
        if not self.pending_tasks or int(np.count_nonzero(self.proc_done)) != before:
            return  # nothing running, or this round handed something out: go round again
        if any(taskid in self._taskresult for taskid, _ in self.pending_tasks):
            return  # a result is waiting to be collected
        self._wake.wait(self.max_wait)


@dataclass(frozen=True)
class QueuedJob:
    """A job of ours still in the Slurm queue."""

    job_id: str
    name: str
    state: str
    reason: str


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
