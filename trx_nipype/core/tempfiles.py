"""One root for every temporary file the engine makes, cleaned up on exit.

The root is, in order: what :func:`set_temp_root` was given, the environment
variable ``TRX_NIPYPE_TMPDIR``, or the system's temporary directory. Every
private folder made by :func:`make_temp_dir` is removed by its owner's
``close()``, on error, and at the latest at interpreter exit.

Atomic writes use a different mechanism: a temporary *sibling* of the
destination (same filesystem, so that the final rename is atomic), named
``.<destination name>.trx-tmp-<host>-<pid>-<random>``.

A process killed outright (SIGKILL, OOM killer, a lost node) runs no clean-up.
Both kinds of names carry the host and process id of their owner, so
:func:`sweep_stale_siblings` (beside a destination) and
:func:`sweep_stale_temp_dirs` (under the temp root; run once per process, when
it first makes a folder) remove what *dead processes of this host* left. Files
of live processes, and of other hosts sharing the filesystem (a cluster's
scratch space), are never touched.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path

_ENV = "TRX_NIPYPE_TMPDIR"
_PREFIX = "trx_nipype-"
SIBLING_MARK = ".trx-tmp-"
_HOST = "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"

_lock = threading.Lock()
_root: Path | None = None
_live: set[str] = set()
_swept_root: Path | None = None


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def install_sigterm_cleanup() -> bool:
    """Let SIGTERM unwind the stack, so writers abort and temporary folders go.

    By default SIGTERM ends the process at once: no ``finally``, no ``atexit``,
    and a half-written temporary sibling stays behind. This replaces *only the
    default* handler (never one the application set) with one that raises
    ``SystemExit(143)``: the process still ends with the conventional status,
    after its clean-up ran. It acts in the main thread only, and returns whether
    it installed the handler. Writers call it; applications may call it early.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    except (ValueError, OSError):  # embedded interpreters without signals
        return False
    return True


def set_temp_root(path: str | os.PathLike | None) -> None:
    """Use ``path`` (created if needed) as the root of temporary folders.

    ``None`` restores the default (``$TRX_NIPYPE_TMPDIR`` or the system's).
    """
    global _root
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
    _root = Path(path) if path is not None else None


def get_temp_root() -> Path:
    """The folder under which private temporary folders are made."""
    if _root is not None:
        return _root
    env = os.environ.get(_ENV)
    if env:
        Path(env).mkdir(parents=True, exist_ok=True)
        return Path(env)
    return Path(tempfile.gettempdir())


def make_temp_dir(purpose: str = "") -> Path:
    """A new private (mode 0700) folder under the temp root, registered for cleanup."""
    global _swept_root
    install_sigterm_cleanup()
    root = get_temp_root()
    if _swept_root != root:
        _swept_root = root
        sweep_stale_temp_dirs(root)
    path = tempfile.mkdtemp(prefix=f"{_PREFIX}{purpose or 'tmp'}-{_HOST}-{os.getpid()}-",
                            dir=root)
    with _lock:
        _live.add(path)
    return Path(path)


def remove_temp_dir(path: str | os.PathLike | None) -> None:
    """Remove a folder made by :func:`make_temp_dir`; safe to call twice."""
    if path is None:
        return
    path = os.fspath(path)
    shutil.rmtree(path, ignore_errors=True)
    with _lock:
        _live.discard(path)


def live_temp_dirs() -> list[str]:
    """Folders made here and not yet removed (for tests and diagnostics)."""
    with _lock:
        return sorted(_live)


@atexit.register
def _cleanup_at_exit() -> None:
    for path in live_temp_dirs():
        remove_temp_dir(path)


#: bytes a file name may hold (ext4, XFS, APFS...), less room for a suffix a writer adds
_NAME_ROOM = 255 - 16


def sibling_temp_path(dest: str | os.PathLike) -> Path:
    """A fresh, unused temporary path beside ``dest`` (same filesystem).

    The name fits in a file name whatever ``dest``'s length: a long destination
    name is cut (its owner mark and random tail are kept, for sweeping).
    """
    dest = Path(dest)
    tail = f"{SIBLING_MARK}{_HOST}-{os.getpid()}-{os.urandom(6).hex()}"
    room = _NAME_ROOM - len(("." + tail).encode("utf-8"))
    name = dest.name.encode("utf-8")[:max(room, 1)].decode("utf-8", "ignore")
    return dest.with_name(f".{name}{tail}")


def pid_alive(pid: int) -> bool:
    """Whether a process of this host has that id (another user's counts; an id out of
    range does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:
        return False
    return True


def _dead_owner(tail: str) -> bool:
    """True when ``<host>-<pid>-<random>`` names a process of this host that has ended."""
    parts = tail.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit():
        return False
    return not pid_alive(int(parts[1]))


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def sweep_stale_temp_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove private folders under the temp root left by dead processes of this host.

    Returns what was removed. Folders of live processes, of other hosts and of
    other users are left alone.
    """
    root = Path(root) if root is not None else get_temp_root()
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    uid = os.getuid()
    for entry in entries:
        name = entry.name
        if not name.startswith(_PREFIX) or name.count("-") < 3:
            continue
        tail = name[len(_PREFIX):].split("-", 1)[1]  # drop the purpose
        try:
            if entry.lstat().st_uid != uid or not _dead_owner(tail):
                continue
        except OSError:
            continue
        _remove(entry)
        removed.append(entry)
    return removed


def sweep_stale_siblings(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary siblings in ``folder`` left by dead processes of this host.

    Only names that this module makes are considered, and only when the
    process they name is not alive. Returns what was removed.
    """
    removed = []
    for entry in Path(folder).iterdir():
        if SIBLING_MARK not in entry.name or not entry.name.startswith("."):
            continue
        if _dead_owner(entry.name.rsplit(SIBLING_MARK, 1)[1]):
            _remove(entry)
            removed.append(entry)
    return removed
