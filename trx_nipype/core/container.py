"""The three TRX containers, read: stored zip, deflated zip, directory.

A container lists its *members* (relative POSIX names such as
``dps/fa.float32``) with their sizes, and hands out read-only arrays over
them. Nothing is read beyond the zip directory and local headers until an
array is asked for:

- a **stored** zip member is mapped in place, at the data offset read from the
  member's own *local* header (its extra field may differ from the central
  directory's, e.g. zip64 or alignment padding);
- a **deflated** member is extracted once, on first use, into a private
  temporary folder under :func:`~trx_nipype.core.tempfiles.get_temp_root`, under
  a name of our own (so member names can never point outside it), and mapped
  from there; the folder goes with :meth:`Container.close`;
- a **directory** member is mapped from its file. The members of a folder are
  what :func:`scan_folder` lists: regular files whose real path lies inside the
  folder (a link to a file or folder elsewhere is refused, as are link loops,
  names that are not UTF-8 and entries that are not regular files); hidden
  entries (``.DS_Store``, ``.git``) are not members.

Every map is ``ACCESS_READ``: the arrays are not writeable and cannot be made so.
Every read is bounded by what the container declares: a small member read
whole (``header.json``) by the caller's limit, an array by its member's size
(a member file that no longer holds the bytes it held when the folder was
listed is an error naming it, not numpy's short-buffer error).
"""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import TrxFormatError
from .tempfiles import make_temp_dir, remove_temp_dir

_LOCAL_HEADER = struct.Struct("<4s5HL2L2H")  # signature .. extra length (30 bytes)
_LOCAL_SIGNATURE = b"PK\x03\x04"
_CHUNK = 1 << 22


def readonly_array(buffer: bytes | memoryview | mmap.mmap, dtype: np.dtype, shape: tuple[int, ...],
                   offset: int = 0) -> np.ndarray:
    """A read-only array over ``buffer`` (or an empty one for zero-size shapes)."""
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:  # over immutable bytes, so that writeable cannot be set back to True
        return np.frombuffer(b"", dtype=dtype).reshape(shape)
    arr = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(shape)
    arr.flags.writeable = False
    return arr


def _map_file(path: str | os.PathLike) -> mmap.mmap | None:
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return None
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def _nbytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _shrunk(path: str, name: str, expected: int, found: int) -> TrxFormatError:
    return TrxFormatError(path, name, f"expected {expected} bytes, found {found} (the file "
                          "changed or was truncated after it was opened)")


def _unreadable(path: str, name: str | None, exc: OSError) -> TrxFormatError:
    return TrxFormatError(path, name, f"cannot read: {exc.strerror or exc}")


def printable_name(name: str) -> str:
    """``name`` with bytes that are not UTF-8 (read from a folder as surrogates) shown as
    ``\\xff`` escapes, so that messages naming it can be printed and pickled."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class FolderEntry:
    """One entry of a TRX folder as the loader sees it.

    Attributes
    ----------
    name : str
        The member name (relative, ``/``-separated).
    path : str
        Where it is read from (inside the folder).
    stat : os.stat_result or None
        Of the file read (links inside the folder followed); for a refused
        entry, of the entry itself when it can be had (``lstat``), else None.
    problem : str or None
        Why the loader refuses the entry; None for a member.
    """

    name: str
    path: str
    stat: os.stat_result | None
    problem: str | None = None


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _refused(name: str, full: str, problem: str) -> FolderEntry:
    try:
        st: os.stat_result | None = os.lstat(full)
    except OSError:
        st = None
    return FolderEntry(printable_name(name), full, st, problem)


def scan_folder(root: str | os.PathLike) -> list[FolderEntry]:
    """The entries of a TRX folder, sorted by name: its members, and what the loader refuses.

    Hidden entries (a name starting with ``.``) are skipped and not walked
    into. A symbolic link is followed only when its real path lies inside
    ``root`` (a folder met twice is walked once); one that leaves the folder,
    a link loop or a dangling link, a name that is not UTF-8, an entry that
    is neither a regular file nor a folder, and a folder that cannot be listed
    are returned with a ``problem``. Nothing is opened: one ``stat`` per entry
    (the content hash of interface inputs reads exactly these members).

    Parameters
    ----------
    root : str or os.PathLike
        The TRX folder.

    Returns
    -------
    list of FolderEntry
    """
    root_s = os.fspath(root)
    root_real = os.path.realpath(root_s)
    st = os.stat(root_s)
    seen = {(st.st_dev, st.st_ino)}
    out: list[FolderEntry] = []
    stack = [("", root_s)]
    while stack:
        rel, folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            out.append(_refused(rel.rstrip("/"), folder, f"cannot list the folder: "
                                f"{exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files (.DS_Store, editors' swap files) are not members
            name, full = rel + entry.name, entry.path
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                out.append(_refused(name, full, "expected a UTF-8 name, found bytes that are "
                                    "not UTF-8 (a TRX member name is UTF-8 text)"))
                continue
            try:
                if entry.is_symlink():
                    real = os.path.realpath(full, strict=True)
                    if not _inside(real, root_real):
                        out.append(_refused(name, full, f"a symbolic link to {real}, outside "
                                            "the TRX folder; members must lie inside it"))
                        continue
                est = os.stat(full)
            except FileNotFoundError:
                out.append(_refused(name, full, "a symbolic link to nothing (dangling); "
                                    "expected a regular file"))
                continue
            except OSError as exc:  # a link loop (ELOOP), no permission to look...
                out.append(_refused(name, full, f"cannot be followed: "
                                    f"{exc.strerror or exc} (a symbolic link loop?)"
                                    if exc.errno == errno.ELOOP else
                                    f"cannot be read: {exc.strerror or exc}"))
                continue
            if stat.S_ISDIR(est.st_mode):
                if (est.st_dev, est.st_ino) not in seen:
                    seen.add((est.st_dev, est.st_ino))
                    stack.append((name + "/", full))
            elif stat.S_ISREG(est.st_mode):
                out.append(FolderEntry(name, full, est))
            else:
                out.append(_refused(name, full, "expected a regular file"))
    out.sort(key=lambda e: e.name)
    return out


def check_member_name(path: str, name: str) -> None:
    """Refuse names that could escape a folder: absolute, ``..``, backslashes, NULs."""
    parts = name.split("/")
    if (
        name.startswith(("/", "\\"))
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts)
        or (len(name) > 1 and name[1] == ":")
    ):
        raise TrxFormatError(path, name, "unsafe member name (absolute, empty, '.' or '..' "
                             "component, or backslash); a TRX member is a relative path "
                             "inside the container")
    if len(name.encode("utf-8", "surrogateescape")) > 4096:
        raise TrxFormatError(path, name[:64] + "...", "member name longer than 4096 bytes")


class Container:
    """Base class: ``members`` maps a member name to its size in bytes."""

    kind = "container"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.members: dict[str, int] = {}
        self._maps: list[mmap.mmap] = []

    def read_bytes(self, name: str, limit: int) -> bytes:  # pragma: no cover - abstract
        """The bytes of a small member, such as ``header.json``: at most ``limit`` of them.

        Raises
        ------
        TrxFormatError
            If the member holds more than ``limit`` bytes (nothing is read), or
            cannot be read.
        """
        raise NotImplementedError

    def _check_limit(self, name: str, size: int, limit: int) -> None:
        """Refuse a member of ``size`` bytes (``limit + 1``: at least that) over ``limit``."""
        if size > limit:
            found = "more" if size == limit + 1 else str(size)
            raise TrxFormatError(self.path, name, f"expected at most {limit} bytes, found "
                                 f"{found}")

    def array(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A read-only array of ``shape`` over member ``name``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def close(self) -> None:
        """Drop the maps (arrays still held by callers keep theirs alive)."""
        for mm in self._maps:
            try:
                mm.close()
            except BufferError:  # an array still uses it; the GC will release it
                pass
        self._maps.clear()


class DirectoryContainer(Container):
    """A TRX directory: one file per member (see :func:`scan_folder`)."""

    kind = "directory"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        try:
            entries = scan_folder(self.path)
        except OSError as exc:
            raise _unreadable(self.path, None, exc) from None
        for entry in entries:
            if entry.problem is not None:
                raise TrxFormatError(self.path, entry.name, entry.problem)
            if not os.access(entry.path, os.R_OK, effective_ids=os.access in
                             os.supports_effective_ids):
                raise TrxFormatError(self.path, entry.name, "cannot read: permission denied")
            self.members[entry.name] = entry.stat.st_size

    def read_bytes(self, name: str, limit: int) -> bytes:
        """The bytes of a small member file (at most ``limit``)."""
        self._check_limit(name, self.members[name], limit)
        try:
            with open(Path(self.path, name), "rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise _unreadable(self.path, name, exc) from None
        self._check_limit(name, len(data), limit)  # grown since the folder was listed
        return data

    def array(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A read-only map of the member file (an empty array for an empty file)."""
        nbytes = _nbytes(dtype, shape)
        try:
            mm = _map_file(Path(self.path, name))
        except OSError as exc:
            raise _unreadable(self.path, name, exc) from None
        if mm is None or len(mm) < nbytes:
            found = 0 if mm is None else len(mm)
            if mm is not None:
                mm.close()
            if nbytes:
                raise _shrunk(self.path, name, nbytes, found)
            return readonly_array(b"", dtype, shape)
        self._maps.append(mm)
        return readonly_array(mm, dtype, shape)


class ZipContainer(Container):
    """A TRX zip: stored members mapped in place, deflated ones extracted on use."""

    kind = "zip"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self._extract_dir: Path | None = None
        self._extracted: dict[str, Path] = {}
        self._file_size = os.path.getsize(self.path)
        self._zf: zipfile.ZipFile | None = None
        try:
            # the directory is read once, here; member reads reuse this ZipFile
            self._zf = zipfile.ZipFile(self.path)
            infos = self._zf.infolist()
        except OSError:
            raise
        except Exception as exc:  # any failure to parse the zip directory is a format error
            raise TrxFormatError(self.path, None,
                                 f"expected a zip archive, found a truncated or corrupt one ({exc})"
                                 ) from None
        self._mm: mmap.mmap | None = None
        self._offsets: dict[str, int] = {}
        try:
            for info in infos:
                self._add_member(info)
            # local headers are read now (one small read each): a truncated zip, or a local
            # header that disagrees with the central directory, fails at load, not at first use
            self.check_local_headers()
        except BaseException:
            self.close()  # the ZipFile opened above
            raise

    def _add_member(self, info: zipfile.ZipInfo) -> None:
        """Check one central-directory entry and record it as a member."""
        name = info.filename
        if info.is_dir():
            return  # directory entries such as "dps/" carry nothing
        check_member_name(self.path, name)
        if name in self._infos:
            raise TrxFormatError(self.path, name, "duplicate member in the zip directory")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise TrxFormatError(self.path, name, "member is a symbolic link; expected data")
        if info.flag_bits & 0x1:
            raise TrxFormatError(self.path, name, "member is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise TrxFormatError(self.path, name, f"expected stored or deflated, found "
                                 f"compression method {info.compress_type}")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise TrxFormatError(self.path, name, f"stored member: expected compressed size = "
                                 f"size {info.file_size}, found {info.compress_size}")
        self._infos[name] = info
        self.members[name] = info.file_size

    @property
    def compression(self) -> str:
        """``stored``, ``deflate`` or ``mixed``, from the members' methods."""
        kinds = {i.compress_type for i in self._infos.values()}
        if kinds <= {zipfile.ZIP_STORED}:
            return "stored"
        return "deflate" if kinds == {zipfile.ZIP_DEFLATED} else "mixed"

    def _data_offset(self, name: str, fh: BinaryIO | None = None) -> int:
        """Where member data starts, from the member's *local* header (cached).

        Parameters
        ----------
        name : str
            The member.
        fh : binary file, optional
            The zip, already open (to read many local headers in one go).

        Returns
        -------
        int
            The byte offset of the member's data in the zip.
        """
        if name in self._offsets:
            return self._offsets[name]
        if fh is None:
            with open(self.path, "rb") as own:
                return self._data_offset(name, own)
        info = self._infos[name]
        if info.header_offset < 0:
            raise TrxFormatError(self.path, name, f"truncated zip: the local header would start "
                                 f"at byte {info.header_offset}")
        fh.seek(info.header_offset)
        raw = fh.read(_LOCAL_HEADER.size)
        if len(raw) < _LOCAL_HEADER.size:
            raise TrxFormatError(self.path, name, "truncated zip: local header cut short")
        fields = _LOCAL_HEADER.unpack(raw)
        if fields[0] != _LOCAL_SIGNATURE:
            raise TrxFormatError(self.path, name,
                                 f"expected a local header signature {_LOCAL_SIGNATURE!r} at "
                                 f"byte {info.header_offset}, found {fields[0]!r}")
        name_len, extra_len = fields[-2], fields[-1]
        local_name = fh.read(name_len)
        if local_name not in (name.encode("utf-8"), name.encode("cp437", "replace")):
            raise TrxFormatError(self.path, name,
                                 f"central directory and local header disagree on the name "
                                 f"(local header says {local_name!r})")
        start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        if start + info.compress_size > self._file_size:
            raise TrxFormatError(self.path, name,
                                 f"truncated zip: member data needs bytes {start}.."
                                 f"{start + info.compress_size}, file has {self._file_size}")
        self._offsets[name] = start
        return start

    def read_bytes(self, name: str, limit: int) -> bytes:
        """The bytes of a small member (at most ``limit``), inflated if need be.

        The declared size is checked first, and inflating stops ``limit`` bytes
        in whatever the size says (``ZipFile.read`` may inflate up to 1 GiB at
        once before cutting to the declared size).
        """
        info = self._infos[name]
        self._check_limit(name, info.file_size, limit)
        try:
            with self._zf.open(info) as src:
                data = src.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise TrxFormatError(self.path, name, f"cannot read member ({exc})") from None
        self._check_limit(name, len(data), limit)
        return data

    def _extract(self, name: str) -> Path:
        """Inflate one member into the private folder, never past its declared size."""
        if name in self._extracted:
            return self._extracted[name]
        info = self._infos[name]
        if self._extract_dir is None:
            self._extract_dir = make_temp_dir("extract")
        target = self._extract_dir / f"member-{len(self._extracted):06d}.bin"
        free = shutil.disk_usage(self._extract_dir).free
        if info.file_size > free:
            raise TrxFormatError(self.path, name, f"declares {info.file_size} bytes once "
                                 f"inflated; only {free} bytes are free under "
                                 f"{self._extract_dir.parent} (see set_temp_root)")
        written = 0
        try:
            with self._zf.open(info) as src, open(target, "wb") as dst:
                while True:
                    chunk = src.read(_CHUNK)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > info.file_size:
                        raise TrxFormatError(self.path, name,
                                             f"inflates past its declared {info.file_size} bytes")
                    dst.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error,
                zlib.error) as exc:
            target.unlink(missing_ok=True)
            if isinstance(exc, TrxFormatError):
                raise
            raise TrxFormatError(self.path, name, f"cannot inflate member ({exc})") from None
        if written != info.file_size:
            target.unlink(missing_ok=True)
            raise TrxFormatError(self.path, name, f"expected {info.file_size} bytes after "
                                 f"inflating, found {written}")
        self._extracted[name] = target
        return target

    def array(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A read-only array: mapped in place if stored, inflated once and mapped if deflated."""
        info = self._infos[name]
        if info.file_size == 0:
            return readonly_array(b"", dtype, shape)
        if info.compress_type == zipfile.ZIP_STORED:
            offset = self._data_offset(name)
            if self._mm is None:
                try:
                    self._mm = _map_file(self.path)
                except OSError as exc:
                    raise _unreadable(self.path, name, exc) from None
                self._maps.append(self._mm)
            return readonly_array(self._mm, dtype, shape, offset)
        mm = _map_file(self._extract(name))
        self._maps.append(mm)
        return readonly_array(mm, dtype, shape)

    def check_local_headers(self) -> None:
        """Read every member's local header (catches truncation, disagreement)."""
        try:
            with open(self.path, "rb") as fh:
                for name in self._infos:
                    self._data_offset(name, fh)
        except OSError as exc:
            raise TrxFormatError(self.path, None, f"cannot read the zip ({exc})") from None

    def close(self) -> None:
        """Drop the maps and remove the inflated members (idempotent)."""
        super().close()
        self._mm = None
        if self._zf is not None:
            self._zf.close()
            self._zf = None
        remove_temp_dir(self._extract_dir)
        self._extract_dir = None
        self._extracted.clear()


def open_container(path: str | os.PathLike) -> Container:
    """The container at ``path``: a directory, or a zip file."""
    p = Path(path)
    if p.is_dir():
        return DirectoryContainer(p)
    if p.is_file():
        return ZipContainer(p)
    if not p.exists():
        raise FileNotFoundError(f"{os.fspath(path)}: no such TRX file or directory")
    raise TrxFormatError(p, None, "expected a zip file or a directory")
