"""One run at a time on a work dir and an output folder, on one machine or a cluster.

Two runs on the same folders mix their outputs (population files of one run,
subject files of the other) and race inside Nipype's cache: two MultiProc runs
at once hung. :func:`run_lock` takes a lock on each folder for the length of a
run; a second run is refused at once (:class:`RunLockedError`, naming the
holder's process id, host and start time) or waits for it when asked.

How the lock works, on a local disk and on a filesystem shared by a cluster's
nodes (NFS, Lustre, GPFS, BeeGFS):

- The lock is a file, ``<folder>/.trx-nipype-run.lock``, holding its owner's
  host name, process id, the process's start time (``/proc/<pid>/stat``), the
  boot id of its machine (``/proc/sys/kernel/random/boot_id``), the time the
  run started and a random token. It is written whole under a private name and
  then hard-linked to the lock's name: ``link`` fails when the name exists, on
  every such filesystem (an ``O_EXCL`` create is the fallback where hard links
  are not supported). Nobody ever sees a half-written lock.
- It is removed when the run ends (an exception and SIGTERM included), and only
  by its owner (the token is checked).
- A lock left by a dead process is taken over: same host name, and either
  another boot id, or no process with that id, or a process with that id that
  started at another time (the id was reused). A lock of another host is never
  judged from here (its processes cannot be seen): the message says how to
  remove it by hand if no run is going on there.
- Taking over is serialized with an ``fcntl`` lock on the stale lock file
  itself (the holder is dead, so only the processes taking over contend for
  it; they all run on the holder's host, where ``fcntl`` locks are coherent
  whatever the filesystem); the file is removed only if it is still the stale
  one (same inode, same token). Where ``fcntl`` locks are not available, the
  stale file is renamed to a private name first, and put back if it turns out
  not to be the stale one.
- Locks are reentrant within a process: ``trx-nipype run`` takes them, and the
  :func:`~trx_nipype.workflows.runner.run_workflow` it calls takes them again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from ..core.tempfiles import pid_alive

log = logging.getLogger(__name__)

#: the lock file's name, in each locked folder (hidden: not an output)
LOCK_NAME = ".trx-nipype-run.lock"
#: seconds between two looks at a lock while waiting for it
POLL = 0.5
#: a lock file without a readable holder (being written by a filesystem without hard links,
#: or left empty by a crash right after its O_EXCL create) counts as held for this long
UNREADABLE_GRACE = 30.0

_held_lock = threading.Lock()
_held: dict[str, int] = {}  # realpath of a folder -> times this process holds its lock


class RunLockedError(RuntimeError):
    """A folder of the run is locked by another run (it may still be going on)."""

    def __init__(self, folder: Path, holder: Holder | None, lock: Path,
                 waited: float | None = None, option: str = "") -> None:
        self.folder, self.holder, self.lock, self.waited = folder, holder, lock, waited
        who = holder.describe() if holder else "a process that did not say who it is"
        tail = f" (waited {waited:.0f} s)" if waited is not None else ""
        remote = holder is not None and holder.host != socket.gethostname()
        hint = f"; wait for it with {option}" if option and waited is None else ""
        if remote:
            hint += f"; if no run is going on on {holder.host}, remove {lock}"
        super().__init__(f"{folder} is in use by another run: {who}{tail}{hint}")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: what its file says."""

    host: str
    pid: int
    started: str
    token: str
    boot_id: str = ""
    pid_start: str = ""
    purpose: str = ""

    def describe(self) -> str:
        """``pid 123 on node7, started 2026-12-02 15:30:01 (trx-nipype run)``."""
        what = f" ({self.purpose})" if self.purpose else ""
        return f"pid {self.pid} on {self.host}, started {self.started}{what}"

    def is_dead(self) -> bool:
        """True when this is a process of this host that has ended (never for other hosts)."""
        if self.host != socket.gethostname():
            return False
        boot = _boot_id()
        if boot and self.boot_id and boot != self.boot_id:
            return True  # the machine has rebooted since
        if not pid_alive(self.pid):
            return True
        start = _pid_start(self.pid)
        return bool(start and self.pid_start and start != self.pid_start)  # id reused


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _pid_start(pid: int) -> str:
    """The start time of a process (clock ticks after boot, ``/proc``), or "" unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()  # after "pid (comm)"; comm may hold spaces
    return fields[19] if len(fields) > 19 else ""


def _me(purpose: str) -> Holder:
    return Holder(host=socket.gethostname(), pid=os.getpid(),
                  started=datetime.now().astimezone().isoformat(sep=" ", timespec="seconds"),
                  token=uuid.uuid4().hex, boot_id=_boot_id(), pid_start=_pid_start(os.getpid()),
                  purpose=purpose)


def read_holder(lock: str | os.PathLike) -> Holder | None:
    """The holder a lock file names, or None (missing, empty or unreadable)."""
    try:
        doc = json.loads(Path(lock).read_text(encoding="utf-8"))
        return Holder(host=str(doc["host"]), pid=int(doc["pid"]), started=str(doc["started"]),
                      token=str(doc["token"]), boot_id=str(doc.get("boot_id", "")),
                      pid_start=str(doc.get("pid_start", "")),
                      purpose=str(doc.get("purpose", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sweep(lock: Path, me: Holder) -> None:
    """Remove the private names (``<lock>.<host>.<pid>.<token>``) left by dead processes of
    this host, killed between writing one and linking it."""
    for tmp in lock.parent.glob(f"{lock.name}.{me.host}.*.*"):
        pid = tmp.name[len(lock.name) + len(me.host) + 2:].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _create(lock: Path, me: Holder) -> bool:
    """Make ``lock`` name ``me`` if nobody holds it; True when done."""
    text = json.dumps(asdict(me), indent=1) + "\n"
    tmp = lock.with_name(f"{lock.name}.{me.host}.{me.pid}.{me.token[:8]}")
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, lock)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if tmp.stat().st_nlink == 2:  # NFS: the link was made, its reply was lost
            return True
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                             errno.EMLINK, errno.EXDEV):
            raise
    finally:
        tmp.unlink(missing_ok=True)
    try:  # no hard links here: an exclusive create, then the holder is written into it
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return True


def _same_file(path: Path, fd: int) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _remove_stale(lock: Path, stale: Holder | None) -> None:
    """Remove ``lock`` if it still names the dead ``stale`` holder (see the module notes)."""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return  # someone else took it over already
    except PermissionError:  # another user's lock file: its folder lets us rename it
        _remove_stale_by_rename(lock, stale)
        return
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        except OSError as exc:  # no fcntl locks on this filesystem
            log.debug("%s: no fcntl lock (%s): taking over by renaming", lock, exc)
            _remove_stale_by_rename(lock, stale)
            return
        if _same_file(lock, fd) and read_holder(lock) == stale:
            log.info("%s: taking over the lock of %s (ended)", lock,
                     stale.describe() if stale else "a process that wrote nothing")
            lock.unlink()
    finally:
        os.close(fd)


def _remove_stale_by_rename(lock: Path, stale: Holder | None) -> None:
    aside = lock.with_name(f"{lock.name}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if read_holder(aside) != stale:  # a live lock made meanwhile: put it back
        with contextlib.suppress(OSError):
            os.link(aside, lock)
    aside.unlink(missing_ok=True)


def _release(lock: Path, me: Holder) -> None:
    holder = read_holder(lock)
    if holder is not None and holder.token == me.token:
        lock.unlink(missing_ok=True)
    else:
        log.warning("%s: not ours any more (%s); left as it is", lock,
                    holder.describe() if holder else "unreadable")


def _acquire(folder: Path, me: Holder, deadline: float | None,
             waiting: Callable[[Holder | None, Path], None] | None, option: str,
             patient: bool) -> Path:
    lock = folder / LOCK_NAME
    said = False
    started = time.monotonic()
    _sweep(lock, me)
    while True:
        if _create(lock, me):
            return lock
        holder = read_holder(lock)
        if holder is not None and holder.is_dead():
            _remove_stale(lock, holder)
            continue
        if holder is None:
            try:
                age = time.time() - lock.stat().st_mtime
            except FileNotFoundError:
                continue  # released meanwhile
            if age > UNREADABLE_GRACE:
                _remove_stale(lock, holder)  # only removed if still unreadable
                continue
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise RunLockedError(folder, holder, lock, option=option,
                                 waited=now - started if patient else None)
        if not said and waiting is not None:
            waiting(holder, folder)
            said = True
        time.sleep(POLL if deadline is None else max(0.0, min(POLL, deadline - now)))


@contextlib.contextmanager
def run_lock(folders: Sequence[str | os.PathLike], *, wait: float | None = 0.0,
             purpose: str = "", waiting: Callable[[Holder | None, Path], None] | None = None,
             option: str = "") -> Iterator[list[Path]]:
    """Hold the run lock of every folder (created if missing) for the ``with`` block.

    Parameters
    ----------
    folders : sequence of path-like
        The folders of the run (its work dir and output folder). Locked in one
        order (by real path), so that two runs never wait for each other; a
        folder given twice is locked once.
    wait : float or None
        Seconds to wait for a run that holds one of them: 0 refuses at once,
        None waits as long as it takes.
    purpose : str
        What the lock is for, shown to the runs it keeps out (``trx-nipype run``).
    waiting : callable, optional
        Called once per folder with ``(holder, folder)`` when the run starts waiting.
    option : str
        How the caller asks to wait, named in the error (``--wait-for-lock [SECONDS]``).

    Yields
    ------
    list of pathlib.Path
        The folders, absolute.

    Raises
    ------
    RunLockedError
        When a folder is still locked by another run after ``wait`` seconds.
    OSError
        When a folder cannot be created.

    Notes
    -----
    Folders that the lock created and that are still empty at the end are
    removed (a run refused before writing anything leaves no trace).
    """
    paths = [Path(os.path.abspath(f)) for f in folders]
    order = sorted({os.path.realpath(p): p for p in paths}.items())
    me = _me(purpose)
    deadline = None if wait is None else time.monotonic() + max(0.0, wait)
    created: list[Path] = []
    taken: list[tuple[str, Path | None]] = []  # None: held already (reentrant)
    try:
        for real, path in order:
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                created.append(path)
            with _held_lock:
                if _held.get(real):
                    _held[real] += 1
                    taken.append((real, None))
                    continue
            lock = _acquire(path, me, deadline, waiting, option, patient=wait != 0)
            with _held_lock:
                _held[real] = 1
            taken.append((real, lock))
        yield paths
    finally:
        for real, lock in reversed(taken):
            with _held_lock:
                _held[real] -= 1
                last = not _held[real]
                if last:
                    del _held[real]
            if last and lock is not None:
                _release(lock, me)
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()  # only when empty
