"""Fingerprints of TRX inputs for Nipype's cache: never stale, never slow.

Why Nipype alone is not enough
------------------------------
Nipype hashes a ``Directory`` input by its path string only, so a TRX
*directory* changed in place (same path) never invalidates a node: a stale
result. Under ``hash_method = content`` it md5s every ``File`` input whole, on
every run, so a cached rerun over gigabytes of ``.trx`` zips re-reads
gigabytes before deciding that nothing has to run: a slow result.

The design
----------
Inputs that hold tractograms are declared with the traits of
:mod:`trx_nipype.interfaces._traits`, which carry ``trx_hash=True``. Their
input spec (:class:`~trx_nipype.interfaces._traits.TrxInputSpec`) hashes those
values with :func:`fingerprint`, and every other input exactly as Nipype does.

- **A directory is its members.** Both methods list the directory as the
  loader does (:func:`trx_nipype.core.container.scan_folder`) and hash the
  sorted list of its members, so adding, removing, renaming, growing or
  rewriting any member changes the fingerprint. Nothing else is read: hidden
  files are skipped, and an entry the loader refuses (a link leaving the
  folder, such as ``zz_link -> /usr``, a link loop) is hashed by its name and
  ``lstat``, never followed.
- ``timestamp``: one ``stat`` per member, ``(member, size, mtime_ns)``.
  Nothing is read. This is Nipype's own timestamp rule (size + mtime) applied
  to every member, with nanosecond rather than float-second times.
- ``content``: the SHA-256 of each member's bytes. Digests are kept in a small
  persistent *digest cache* keyed by ``(realpath, st_dev, st_ino, size,
  mtime_ns, ctime_ns)``. A cached rerun therefore costs one ``stat`` and one
  tiny read per member, whatever the size of the data. The key cannot go
  stale: any write to a file moves its mtime and ctime, ctime cannot be set
  back by user code (``touch -d``/``os.utime`` move ctime forward), and a file
  replaced by rename has a new inode. The one hole is the filesystem's
  timestamp granularity (a file rewritten within the same clock tick, at the
  same size, keeps its key); like git's "racily clean" index entries, a digest
  is therefore only *stored* once the file is older than :data:`RACY_WINDOW_NS`
  (2 s) -- a file younger than that is simply re-read next time.
- A zip (``.trx``) is one file: its digest is cached the same way, so a cached
  rerun never re-reads it (Nipype would md5 it whole every time).
- A file is hashed with its *companions*, the files read along with it: a
  TRK's ``.groups.json`` sidecar (present or not) decides its groups.
- The path is part of the fingerprint. Outputs may name the input (``LoadTrx``
  hands a valid TRX on as it is), so a moved input must rerun the node; moving
  a Nipype base directory reruns it, which is what its outputs' paths require.

The cache lives in ``$TRX_NIPYPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/trx-nipype``,
else ``~/.cache/trx-nipype`` (:func:`set_digest_cache_dir` sets the variable, so
worker processes of MultiProc and cluster plugins inherit it). It is never
written inside an input. Each entry is its own small JSON file, named by the
hash of its key, written to a temporary name and renamed into place: readers in
concurrent processes see a whole entry or none, and two writers of one entry
write the same value. An entry whose recorded key differs from the asked one
(a hash collision, a damaged file) is ignored. When the folder cannot be
written, digests are computed and not stored -- slower, never wrong.
:func:`prune_digest_cache` removes entries not used for a while.

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> with open(os.path.join(d, "header.json"), "w", encoding="utf-8") as fh:
...     _ = fh.write("{}")
>>> a = fingerprint(d, "timestamp")
>>> a == fingerprint(d, "timestamp"), a[0] == d
(True, True)
>>> a[1].startswith("timestamp:")
True
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from trx_nipype.core.container import FolderEntry, scan_folder

log = logging.getLogger("nipype.interface")

#: environment variable naming the digest cache folder
CACHE_ENV = "TRX_NIPYPE_CACHE_DIR"
#: a digest is stored only for files whose mtime and ctime are older than this
RACY_WINDOW_NS = 2_000_000_000
#: the content digest
ALGORITHM = "sha256"
_BLOCK = 1 << 20
_VERSION = 1

#: counters for tests and benchmarks: bytes and files digested, cache hits, stats
STATS: dict[str, int] = {"bytes_read": 0, "files_read": 0, "cache_hits": 0, "stats": 0}


def reset_stats() -> dict[str, int]:
    """Zero :data:`STATS` and return the values it held."""
    old = dict(STATS)
    for key in STATS:
        STATS[key] = 0
    return old


# ----------------------------------------------------------------- cache dir
def set_digest_cache_dir(path: str | os.PathLike | None) -> None:
    """Use ``path`` for the digest cache (``None``: back to the default).

    Sets ``$TRX_NIPYPE_CACHE_DIR`` so that worker processes inherit it.
    """
    if path is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = os.fspath(Path(path).absolute())


def digest_cache_dir() -> Path:
    """The folder of the digest cache (not created here)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "trx-nipype"


def _entry_path(key: list[Any]) -> Path:
    name = hashlib.sha256(json.dumps(key).encode("utf-8", "surrogateescape")).hexdigest()
    return digest_cache_dir() / f"digests-v{_VERSION}" / name[:2] / f"{name}.json"


def _cache_get(key: list[Any]) -> str | None:
    path = _entry_path(key)
    try:
        with open(path, encoding="utf-8") as fh:
            entry = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    digest = entry.get("digest")
    return digest if isinstance(digest, str) else None


def _cache_put(key: list[Any], digest: str) -> None:
    path = _entry_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".entry-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"key": key, "digest": digest}, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.debug("trx-nipype digest cache %s not writable (%s): digest not stored",
                  path.parent, exc)


def prune_digest_cache(max_age_days: float = 90.0) -> int:
    """Remove cache entries not modified for ``max_age_days``; return how many.

    Entries are rewritten only when a file changes, so an old entry may still
    be valid: pruning costs at most one re-read of that file.
    """
    root = digest_cache_dir() / f"digests-v{_VERSION}"
    limit = time.time() - max_age_days * 86400
    removed = 0
    for entry in root.glob("*/*.json"):
        try:
            if entry.stat().st_mtime < limit:
                entry.unlink()
                removed += 1
        except OSError:
            continue
    return removed


# -------------------------------------------------------------------- digests
def _stat_key(real: str, st: os.stat_result) -> list[Any]:
    return [ALGORITHM, real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _read_digest(path: str) -> str:
    h = hashlib.new(ALGORITHM)
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    total = 0
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            total += n
    STATS["bytes_read"] += total
    STATS["files_read"] += 1
    return h.hexdigest()


def file_digest(path: str | os.PathLike, st: os.stat_result | None = None) -> str:
    """The content digest of one file, from the cache when its key is known.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (symbolic links are followed).
    st : os.stat_result, optional
        Its ``os.stat``, when the caller has it already.

    Returns
    -------
    str
        The hexadecimal SHA-256 of the file's bytes.
    """
    real = os.path.realpath(path)
    if st is None:
        st = os.stat(real)
        STATS["stats"] += 1
    key = _stat_key(real, st)
    cached = _cache_get(key)
    if cached is not None:
        STATS["cache_hits"] += 1
        return cached
    digest = _read_digest(real)
    after = os.stat(real)
    STATS["stats"] += 1
    if _stat_key(real, after) != key:  # changed while read: do not trust, do not store
        return digest
    newest = max(after.st_mtime_ns, after.st_ctime_ns)
    if time.time_ns() - newest > RACY_WINDOW_NS:
        _cache_put(key, digest)
    return digest


# --------------------------------------------------------------- fingerprints
def _members(root: str) -> list[FolderEntry]:
    """The entries of a TRX folder exactly as the loader lists them (its members, and
    what it refuses: links leaving the folder are never followed, hidden files skipped)."""
    entries = scan_folder(root)
    STATS["stats"] += len(entries)
    return entries


def _method(hash_method: str | None) -> str:
    if hash_method is None:
        from nipype import config

        hash_method = config.get("execution", "hash_method")
    method = hash_method.lower()
    if method not in ("timestamp", "content"):
        raise ValueError(f"unknown hash method {hash_method!r} (timestamp or content)")
    return method


def companions(path: str) -> list[Path]:
    """Files the readers consult beside ``path``: a TRK's groups sidecar.

    Adding, removing or editing ``<file>.trk.groups.json`` changes what is read
    from the TRK, so it is part of the TRK's fingerprint (``"missing"`` when absent).
    """
    if path.lower().endswith((".trk", ".trk.gz")):
        from trx_nipype.core.formats.trk_groups import groups_sidecar_path

        return [groups_sidecar_path(path)]
    return []


def path_digest(path: str | os.PathLike, hash_method: str | None = None) -> str:
    """A digest of a file or directory tree (``"<method>:<hex>"``); no path inside.

    A missing path gives ``"missing"`` (Nipype's traits reject missing inputs
    before hashing; this keeps hashing total).
    """
    method = _method(hash_method)
    path = os.fspath(path)
    try:
        st = os.stat(path)
        STATS["stats"] += 1
    except FileNotFoundError:
        return "missing"
    h = hashlib.sha256()
    if stat.S_ISDIR(st.st_mode):
        for entry in _members(path):
            mst = entry.stat
            if entry.problem is not None:  # the loader refuses it: hashed, never read
                row = [entry.name, "refused", entry.problem,
                       *([mst.st_size, mst.st_mtime_ns] if mst is not None else [])]
            elif method == "timestamp":
                row = [entry.name, mst.st_size, mst.st_mtime_ns]
            else:
                row = [entry.name, mst.st_size, file_digest(entry.path, mst)]
            h.update(json.dumps(row).encode("utf-8", "surrogateescape") + b"\n")
        kind = "dir"
    else:
        row = [st.st_size, st.st_mtime_ns] if method == "timestamp" else \
            [st.st_size, file_digest(path, st)]
        for companion in companions(path):  # files read along with this one
            row.append(path_digest(companion, method))
        h.update(json.dumps(row).encode())
        kind = "file"
    return f"{method}:{kind}:{h.hexdigest()}"


def fingerprint(value: Any, hash_method: str | None = None) -> Any:
    """What a ``trx_hash`` input contributes to a node's hash.

    A path becomes ``(path, digest)``; lists, tuples and dicts are walked;
    anything else is returned as it is.
    """
    if isinstance(value, (str, os.PathLike)):
        return (os.fspath(value), path_digest(value, hash_method))
    if isinstance(value, (list, tuple)):
        out = [fingerprint(v, hash_method) for v in value]
        return tuple(out) if isinstance(value, tuple) else out
    if isinstance(value, dict):
        return [(k, fingerprint(v, hash_method)) for k, v in sorted(value.items())]
    return value
