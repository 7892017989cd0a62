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
- a **directory** member is mapped from its file.

Every map is ``ACCESS_READ``: the arrays are not writeable and cannot be made so.
"""

from __future__ import annotations

import mmap
import os
import shutil
import stat
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
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

    def read_bytes(self, name: str) -> bytes:  # pragma: no cover - abstract
        """The bytes of a (small) member, such as ``header.json``."""
        raise NotImplementedError

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
    """A TRX directory: one file per member."""

    kind = "directory"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        root = Path(self.path)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fname in sorted(filenames):
                full = Path(dirpath, fname)
                rel = full.relative_to(root).as_posix()
                if any(part.startswith(".") for part in PurePosixPath(rel).parts):
                    continue  # hidden files (.DS_Store, editors' swap files) are not members
                st = full.stat()
                if not stat.S_ISREG(st.st_mode):
                    raise TrxFormatError(self.path, rel, "expected a regular file")
                self.members[rel] = st.st_size

    def read_bytes(self, name: str) -> bytes:
        """The bytes of a (small) member file."""
        return Path(self.path, name).read_bytes()

    def array(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A read-only map of the member file (an empty array for an empty file)."""
        mm = _map_file(Path(self.path, name))
        if mm is None:
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

    def read_bytes(self, name: str) -> bytes:
        """The bytes of a (small) member, inflated if need be."""
        try:
            return self._zf.read(self._infos[name])
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise TrxFormatError(self.path, name, f"cannot read member ({exc})") from None

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
                self._mm = _map_file(self.path)
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
