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

Streaming reads do not touch maps: :meth:`Container.reader` hands out
:class:`~trx_nipype.core.reading.MemberReader` s that read with ``pread`` from
files opened once and stamped, so an input cut short or replaced while it is
read gives an error naming it, not a SIGBUS (see :mod:`trx_nipype.core.reading`).
"""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import stat
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import zipio
from .errors import TrxFormatError
from .reading import MemberReader, OpenFile, Stamp, in_background, read_file
from .tempfiles import make_temp_dir, remove_temp_dir

_LOCAL_HEADER = struct.Struct("<4s5HL2L2H")  # signature .. extra length (30 bytes)
_LOCAL_SIGNATURE = b"PK\x03\x04"
_CHUNK = 1 << 22
#: general-purpose flag bits this reader cannot honour: encrypted (0), compressed patched
#: data (5), strong encryption (6), encrypted central directory (13)
_UNSUPPORTED_FLAGS = {0x1: "encrypted", 0x20: "compressed patched data (flag bit 5)",
                      0x40: "strongly encrypted (flag bit 6)",
                      0x2000: "encrypted central directory (flag bit 13)"}
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


def readonly_array(buffer: bytes | memoryview | mmap.mmap, dtype: np.dtype, shape: tuple[int, ...],
                   offset: int = 0) -> np.ndarray:
    """A read-only array over ``buffer`` (or an empty one for zero-size shapes)."""
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:  # over immutable bytes, so that writeable cannot be set back to True
        return np.frombuffer(b"", dtype=dtype).reshape(shape)
    arr = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(shape)
    arr.flags.writeable = False
    return arr


def _map_file(f: OpenFile) -> mmap.mmap | None:
    f.check()  # a file cut short since it was opened: an error naming it, not a bad map
    if f.size == 0:
        return None
    return mmap.mmap(f.fd, f.size, access=mmap.ACCESS_READ)


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
        self._files: dict[str, OpenFile] = {}

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
        """A read-only array of ``shape`` over member ``name`` (a map)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def reader(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> MemberReader:
        """A :class:`~trx_nipype.core.reading.MemberReader` of member ``name`` (no map)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def read_array(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """Member ``name`` read into memory: a read-only array no other process can cut short.

        For the small members read whole at load (offsets, groups, data per group).
        """
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0:
            return readonly_array(b"", dtype, shape)
        rd = self.reader(name, dtype, shape)
        data = rd.file.read(rd.offset, count * np.dtype(dtype).itemsize, name)
        rd.file.check()
        return readonly_array(data, dtype, shape)

    def check_unchanged(self) -> None:
        """Raise :class:`~trx_nipype.core.reading.SourceChangedError` if a file read changed."""
        for f in list(self._files.values()):
            f.check()

    def close(self) -> None:
        """Drop the maps and close the files (arrays still held keep their maps alive)."""
        for mm in self._maps:
            try:
                mm.close()
            except BufferError:  # an array still uses it; the GC will release it
                pass
        self._maps.clear()
        for f in self._files.values():
            f.close()
        self._files.clear()


class DirectoryContainer(Container):
    """A TRX directory: one file per member."""

    kind = "directory"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self._stamps: dict[str, Stamp] = {}
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
            self._stamps[entry.name] = Stamp.of(entry.stat)

    def _open(self, name: str) -> OpenFile:
        """The member's file, opened once; refused if it is not the file listed at load."""
        f = self._files.get(name)
        if f is None:
            try:
                f = OpenFile(Path(self.path, name), self.path, name, self._stamps[name])
            except OSError as exc:
                raise _unreadable(self.path, name, exc) from None
            self._files[name] = f
        return f

    def read_bytes(self, name: str, limit: int) -> bytes:
        """The bytes of a small member file (at most ``limit``; the file listed at load, or
        an error)."""
        self._check_limit(name, self.members[name], limit)
        try:
            return read_file(Path(self.path, name), self.path, name, self._stamps[name])
        except OSError as exc:
            raise _unreadable(self.path, name, exc) from None

    def array(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A read-only map of the member file (an empty array for an empty file)."""
        nbytes = _nbytes(dtype, shape)
        mm = _map_file(self._open(name))
        if mm is None or len(mm) < nbytes:
            found = 0 if mm is None else len(mm)
            if mm is not None:
                mm.close()
            if nbytes:
                raise _shrunk(self.path, name, nbytes, found)
            return readonly_array(b"", dtype, shape)
        self._maps.append(mm)
        return readonly_array(mm, dtype, shape)

    def reader(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> MemberReader:
        """Reads of the member file (checked against the file listed at load)."""
        return MemberReader(self._open(name), 0, dtype, shape, name)

    def read_array(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """The member file read whole into memory (opened, read and closed: no file kept)."""
        nbytes = _nbytes(dtype, shape)
        if nbytes == 0:
            return readonly_array(b"", dtype, shape)
        return readonly_array(self.read_bytes(name, nbytes), dtype, shape)


class ZipContainer(Container):
    """A TRX zip: stored members mapped in place, deflated ones extracted on use.

    The zip is opened once; every read (directory, local headers, members,
    maps) goes through that one open file, so a zip renamed over while open
    is still read whole from the file that was loaded.
    """

    kind = "zip"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self._extract_dir: Path | None = None
        self._extracted: dict[str, OpenFile] = {}
        self._file = self._files["<zip>"] = OpenFile(self.path, self.path)
        self._file_size = self._file.size
        self._mm: mmap.mmap | None = None
        self._offsets: dict[str, int] = {}
        try:
            try:
                # the directory is parsed once, here, from the open file
                with os.fdopen(os.dup(self._file.fd), "rb") as fh, zipfile.ZipFile(fh) as zf:
                    infos = zf.infolist()
            except OSError:
                raise
            except Exception as exc:  # any failure to parse the zip directory is a format error
                raise TrxFormatError(self.path, None, f"expected a zip archive, found a "
                                     f"truncated or corrupt one ({exc})") from None
            for info in infos:
                self._add_member(info)
            # local headers are read now (one small read each): a truncated zip, or a local
            # header that disagrees with the central directory, fails at load, not at first use
            self.check_local_headers()
        except BaseException:
            self.close()
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
        _check_flags_and_method(self.path, name, info.flag_bits, info.compress_type,
                                "central directory")
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

    def _data_offset(self, name: str) -> int:
        """Where member data starts, from the member's *local* header (cached)."""
        if name in self._offsets:
            return self._offsets[name]
        info = self._infos[name]
        if info.header_offset < 0:
            raise TrxFormatError(self.path, name, f"truncated zip: the local header would start "
                                 f"at byte {info.header_offset}")
        raw = os.pread(self._file.fd, _LOCAL_HEADER.size, info.header_offset)
        if len(raw) < _LOCAL_HEADER.size:
            raise TrxFormatError(self.path, name, "truncated zip: local header cut short")
        fields = _LOCAL_HEADER.unpack(raw)
        if fields[0] != _LOCAL_SIGNATURE:
            raise TrxFormatError(self.path, name,
                                 f"expected a local header signature {_LOCAL_SIGNATURE!r} at "
                                 f"byte {info.header_offset}, found {fields[0]!r}")
        _check_flags_and_method(self.path, name, fields[2], fields[3], "local header")
        if fields[3] != info.compress_type:
            raise TrxFormatError(self.path, name, f"central directory and local header "
                                 f"disagree on the compression method ({info.compress_type} "
                                 f"vs {fields[3]})")
        name_len, extra_len = fields[-2], fields[-1]
        local_name = os.pread(self._file.fd, name_len, info.header_offset + _LOCAL_HEADER.size)
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

    def _inflated(self, name: str) -> Iterator[bytes]:
        """The member's inflated bytes, piece by piece (at most ``_CHUNK`` each).

        The compressed bytes are read with ``pread`` from the open zip (a short
        read: the zip changed).
        """
        info = self._infos[name]
        pos, left = self._data_offset(name), info.compress_size
        inflater = zipio.inflater()
        done = 0
        try:
            while True:
                if inflater.unconsumed_tail:
                    data = inflater.unconsumed_tail
                elif left:
                    data = self._file.read(pos, min(_CHUNK, left), name)
                    pos += len(data)
                    left -= len(data)
                elif inflater.eof:
                    return
                else:
                    raise TrxFormatError(self.path, name, f"deflate stream ends early: "
                                         f"{done} of {info.file_size} bytes")
                out = inflater.decompress(data, _CHUNK)
                if out:
                    done += len(out)
                    yield out
                if inflater.eof and not inflater.unconsumed_tail:
                    return
        except zipio.INFLATE_ERRORS as exc:
            raise TrxFormatError(self.path, name, f"cannot inflate member ({exc})") from None

    def _inflate(self, name: str, write: Any, *, background: bool = False) -> int:
        """Inflate one member into ``write``; check its size and CRC; return its size.

        The output never passes the declared size. ``background``: inflate in a
        thread while this one checksums and writes (large members).
        """
        info = self._infos[name]
        written, crc = 0, 0
        pieces = (in_background(self._inflated(name), name="trx-inflate") if background
                  else self._inflated(name))
        for out in pieces:
            written += len(out)
            if written > info.file_size:
                raise TrxFormatError(self.path, name,
                                     f"inflates past its declared {info.file_size} bytes")
            crc = zipio.crc32(out, crc)
            write(out)
        if written != info.file_size:
            raise TrxFormatError(self.path, name, f"expected {info.file_size} bytes after "
                                 f"inflating, found {written}")
        if crc != info.CRC:
            raise TrxFormatError(self.path, name, f"CRC-32 mismatch: the directory says "
                                 f"{info.CRC:08x}, the data gives {crc:08x}")
        self._file.check()
        return written

    def read_bytes(self, name: str, limit: int) -> bytes:
        """The bytes of a small member (at most ``limit``), inflated if need be.

        The declared size is checked first, and inflating never goes past it.
        """
        info = self._infos[name]
        self._check_limit(name, info.file_size, limit)
        if info.compress_type == zipfile.ZIP_STORED:
            data = self._file.read(self._data_offset(name), info.file_size, name)
            if zipio.crc32(data) != info.CRC:
                raise TrxFormatError(self.path, name, "CRC-32 mismatch: the member's bytes "
                                     "differ from what the zip directory records")
            self._file.check()
            return data
        parts: list[bytes] = []
        self._inflate(name, parts.append)
        return b"".join(parts)

    def _extract(self, name: str) -> OpenFile:
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
        try:
            with open(target, "wb") as dst:
                self._inflate(name, dst.write, background=info.file_size > 4 * _CHUNK)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        opened = self._extracted[name] = OpenFile(target, self.path, name)
        self._files[f"<extracted>/{name}"] = opened
        return opened

    def array(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A read-only array: mapped in place if stored, inflated once and mapped if deflated."""
        info = self._infos[name]
        if info.file_size == 0:
            return readonly_array(b"", dtype, shape)
        if info.compress_type == zipfile.ZIP_STORED:
            offset = self._data_offset(name)
            if self._mm is None:
                self._mm = _map_file(self._file)
                self._maps.append(self._mm)
            return readonly_array(self._mm, dtype, shape, offset)
        mm = _map_file(self._extract(name))
        self._maps.append(mm)
        return readonly_array(mm, dtype, shape)

    def reader(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> MemberReader:
        """Reads of a stored member in place, or of a deflated one once inflated."""
        info = self._infos[name]
        if info.compress_type == zipfile.ZIP_STORED:
            return MemberReader(self._file, self._data_offset(name), dtype, shape, name,
                                crc=info.CRC)
        if info.file_size == 0:
            return MemberReader(self._file, 0, dtype, shape, name)
        return MemberReader(self._extract(name), 0, dtype, shape, name)

    def check_local_headers(self) -> None:
        """Read every member's local header (catches truncation, disagreement)."""
        try:
            for name in self._infos:
                self._data_offset(name)
        except OSError as exc:
            raise TrxFormatError(self.path, None, f"cannot read the zip ({exc})") from None

    def close(self) -> None:
        """Drop the maps, close the zip and remove the inflated members (idempotent)."""
        super().close()
        self._mm = None
        remove_temp_dir(self._extract_dir)
        self._extract_dir = None
        self._extracted.clear()


def _check_flags_and_method(path: str, name: str, flags: int, method: int, where: str) -> None:
    for bit, what in _UNSUPPORTED_FLAGS.items():
        if flags & bit:
            raise TrxFormatError(path, name, f"member is {what} ({where}); expected a plain "
                                 "stored or deflated member")
    if method not in _METHODS:
        raise TrxFormatError(path, name, f"expected stored or deflated, found compression "
                             f"method {method} ({where})")


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
