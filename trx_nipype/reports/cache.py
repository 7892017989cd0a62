"""What the run report drew for each output, kept so that a rerun draws nothing again.

``trx-nipype run`` writes its report after every run, cached or not; reading
every output and drawing its figures again would make a rerun with nothing
changed cost a read of every tractogram. An entry records, for one output
in one state, the page's numbers for it and the SHA-256 of each figure it
drew; it is used only while the output is unchanged and every figure file is
still there with those bytes, and only by the same code (this package's
sources and the versions of Pillow and matplotlib are part of the key).

An output's state is the ``stat`` of its file (or of each member of a TRX
directory): real path, device, inode, size, modification and change times.
Any write moves the change time, and this tool's writers replace a file by
renaming a new one into place (a new inode). Entries live in the digest
cache's folder (:func:`trx_nipype.interfaces.digest_cache_dir`, under
``reports-v1/``), never in the output folder, so that the output tree stays
the same bytes wherever it is made; :func:`prune_report_cache` removes those
not used for a while. A cache that cannot be written is skipped.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "a.trx"
>>> _ = path.write_bytes(b"x")
>>> state_key(path, seed=0) == state_key(path, seed=0) != state_key(path, seed=1)
True
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("trx_nipype.reports")

#: bumped when the entries or the figures change meaning
CACHE_VERSION = 1


def _stat_row(path: str) -> list[Any]:
    st = os.stat(path)
    return [path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def state_key(path: str | os.PathLike, **settings: Any) -> str:
    """A key of an output's current state and of everything else its figures depend on.

    Parameters
    ----------
    path : str or os.PathLike
        The output (a file, or a TRX directory: each member counts).
    **settings
        JSON-serialisable values the entry depends on (seed, colours, names...).

    Returns
    -------
    str
        A SHA-256 hex digest.
    """
    real = os.path.realpath(path)
    rows = [_stat_row(real)]
    if os.path.isdir(real):
        for folder, dirs, files in os.walk(real):
            dirs.sort()
            rows.extend(_stat_row(os.path.join(folder, f)) for f in sorted(files))
    return content_key(state=rows, **settings)


@functools.cache
def _code_digest() -> str:
    """SHA-256 of the code that measures and draws (an edited checkout is another version)."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in [*sorted(here.glob("*.py")), here.parent / "core" / "metrics.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _drawing_versions() -> list[str]:
    """The versions of what draws the figures: Pillow (text, PNG) and matplotlib (the font)."""
    # the installed versions, not imports: a cached rerun would pay for them
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("pillow", "matplotlib"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} -")
    return out


def content_key(**values: Any) -> str:
    """A key of JSON-serialisable ``values``, this tool's code and the drawing libraries'
    versions."""
    from .. import __version__

    text = json.dumps([CACHE_VERSION, __version__, _code_digest(), _drawing_versions(),
                       values],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _folder() -> Path:
    from ..interfaces import digest_cache_dir

    return digest_cache_dir() / f"reports-v{CACHE_VERSION}"


def load_entry(key: str) -> dict[str, Any] | None:
    """The entry stored under ``key``, or None (an entry used is marked as recently used)."""
    path = _folder() / f"{key}.json"
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # for prune_report_cache
    return entry


def prune_report_cache(max_age_days: float = 90.0) -> int:
    """Remove entries not used for ``max_age_days``; return how many."""
    limit = time.time() - max_age_days * 86400
    removed = 0
    for entry in _folder().glob("*.json"):
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < limit:
                entry.unlink()
                removed += 1
    return removed


def store_entry(key: str, entry: dict[str, Any]) -> None:
    """Store ``entry`` under ``key`` (atomically; a folder that cannot be written: skipped)."""
    folder = _folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".entry.", dir=folder)
    except OSError as exc:
        log.debug("report cache not written (%s)", exc)
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({**entry, "key": key}, fh)
        os.replace(tmp, folder / f"{key}.json")
    except OSError as exc:
        log.debug("report cache not written (%s)", exc)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def readable_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 of a file's bytes (:func:`~trx_nipype.core.operations.compare.file_sha256`),
    None if it cannot be read."""
    from ..core.operations.compare import file_sha256

    try:
        return file_sha256(path)
    except OSError:
        return None
