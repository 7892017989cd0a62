"""The one way TRX data reaches disk: a streaming, atomic, deterministic writer.

A :class:`TrxWriter` takes members one at a time, each as an iterator of array
chunks whose total size is known in advance (or as a member of an input to
copy unchanged, :meth:`TrxWriter.add_copy`), and writes them

- into a zip (stored: each member's data aligned to 64 bytes through a padding
  extra field, so that readers can map it in place; or deflated, through
  :mod:`.zipio`'s compression library, several blocks at once), or
- into a directory, one file per member,

at a temporary sibling of the destination, renamed into place by
:meth:`TrxWriter.commit`. Readers never see a partial file; on any error (or
``abort()``) the temporary output is removed and the destination is left as it
was. Zip entries carry a fixed timestamp and attributes, so the same content
gives the same bytes. Before the rename, the inputs the writer was given
(``sources``) are checked to be unchanged since they were opened.
"""

from __future__ import annotations

import atexit
import errno
import gzip
import logging
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from . import zipio
from .tempfiles import install_sigterm_cleanup, sibling_temp_path

log = logging.getLogger(__name__)

ALIGNMENT = 64
_PAD_ID = 0xD935  # the "alignment" extra field id used by Android's zipalign
_COMPRESSION = {"stored": zipio.STORED, "deflate": zipio.DEFLATED, "deflated": zipio.DEFLATED}
#: bytes per ``copy_file_range`` call when a member is copied unchanged
_COPY_STEP = 1 << 30
#: copy_file_range cannot be used between these (another file system, an old kernel...)
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF,
                  errno.EPERM}


def _is_float_member(name: str) -> bool:
    """Positions, dps/dpv/dpg of a float dtype: ``....float16|32|64``."""
    return name.rsplit(".", 1)[-1] in ("float16", "float32", "float64")


#: members at least this large report their progress (INFO, every quarter)
PROGRESS_BYTES = 256 << 20


def _with_progress(chunks: Iterable[np.ndarray | bytes], total: int, label: str
                   ) -> Iterable[np.ndarray | bytes]:
    """Pass ``chunks`` through, logging each quarter of ``total`` bytes written."""
    log.info("%s: writing %.1f MB", label, total / 1e6)
    done, mark = 0, total // 4
    for chunk in chunks:
        yield chunk
        done += _as_bytes(chunk).nbytes
        while mark and done >= mark and mark < total:
            log.info("%s: %d%%", label, round(100 * mark / total))
            mark += total // 4


#: temporary outputs of writers not yet committed or aborted: removed at exit, so that a
#: SIGTERM (SystemExit) landing between two statements of a writer's caller leaves none
_PENDING: dict[Path, int] = {}  # path -> pid of the process writing it


def _remove_tmp(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    _PENDING.pop(tmp, None)


@atexit.register
def _remove_pending() -> None:
    for tmp, pid in list(_PENDING.items()):
        if pid == os.getpid():  # never a forked child removing its parent's output
            _remove_tmp(tmp)


class TrxWriteError(OSError):
    """Writing failed (disk full, permissions...): names the destination; nothing was left."""


class SizeMismatch(RuntimeError):
    """A member reserved with :meth:`TrxWriter.reserve` got more or fewer bytes than reserved."""


class Slot:
    """A member laid out in advance: its bytes written in order, from first to last.

    Made by :meth:`TrxWriter.reserve`. ``write`` refuses to go past the reserved
    size and ``close`` to finish short of it (:class:`SizeMismatch`): the
    layout around the member depends on its size.
    """

    def __init__(self, name: str, nbytes: int, fd: int, data_offset: int,
                 entry: zipio.Entry | None, fail: Any) -> None:
        self.name, self.nbytes = name, nbytes
        self._fd, self._offset, self._entry = fd, data_offset, entry
        self._fail = fail  # the writer's: abort, raise TrxWriteError naming the destination
        self.written, self._crc, self.closed = 0, 0, False

    def write(self, chunk: np.ndarray | bytes) -> None:
        """Append ``chunk`` to the member."""
        view = _as_bytes(chunk)
        if self.written + view.nbytes > self.nbytes:
            raise SizeMismatch(f"{self.name}: more than the {self.nbytes} bytes reserved")
        try:
            _pwrite_all(self._fd, view, self._offset + self.written)
        except OSError as exc:
            self._fail(exc, self.name)
        if self._entry is not None:
            self._crc = zipio.crc32(view, self._crc)
        self.written += view.nbytes

    def close(self) -> None:
        """Check the member is complete; write its zip local header (with its CRC)."""
        if self.closed:
            return
        if self.written != self.nbytes:
            raise SizeMismatch(f"{self.name}: {self.written} of the {self.nbytes} bytes "
                               "reserved were written")
        self.closed = True
        if self._entry is not None:
            self._entry.crc = self._crc
            _pwrite_all(self._fd, memoryview(self._entry.local_header()),
                        self._entry.header_offset)
        else:
            os.close(self._fd)

    def discard(self) -> None:
        """Close a folder member's file without checking (the writer is aborting)."""
        if not self.closed and self._entry is None:
            self.closed = True
            os.close(self._fd)


def _as_bytes(chunk: np.ndarray | bytes) -> memoryview:
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return memoryview(chunk).cast("B")
    arr = np.ascontiguousarray(chunk)
    return memoryview(arr).cast("B") if arr.size else memoryview(b"")


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < view.nbytes:
        done += os.pwrite(fd, view[done:], offset + done)


def _copy_range(src_fd: int, src_offset: int, dst_fd: int, dst_offset: int, nbytes: int,
                on_short: Any) -> None:
    """Copy ``nbytes`` between two files in the kernel (``copy_file_range``).

    Falls back to large ``pread``/``pwrite`` s where the kernel cannot (another
    file system, no support). ``on_short()`` is called (and must raise) when
    the source ends early.
    """
    done = 0
    try:
        while done < nbytes:
            n = os.copy_file_range(src_fd, dst_fd, min(_COPY_STEP, nbytes - done),
                                   src_offset + done, dst_offset + done)
            if n == 0:
                on_short()
            done += n
        return
    except OSError as exc:
        if exc.errno not in _NO_COPY_RANGE or not hasattr(os, "copy_file_range"):
            raise
    except AttributeError:  # no os.copy_file_range on this platform
        pass
    buf = bytearray(min(16 << 20, max(nbytes - done, 1)))
    view = memoryview(buf)
    while done < nbytes:
        n = os.preadv(src_fd, [view[:min(len(buf), nbytes - done)]], src_offset + done)
        if n == 0:
            on_short()
        _pwrite_all(dst_fd, view[:n], dst_offset + done)
        done += n


class TrxWriter:
    """Write a TRX container member by member; commit atomically.

    Parameters
    ----------
    dest : str or os.PathLike
        The destination: a zip file when ``zip`` is true, else a directory.
    zip : bool
        Zip (``True``) or directory (``False``).
    compression : {"stored", "deflate"}
        Zip member compression.
    level : int
        Deflate level (1-9, zlib's scale; see :mod:`.zipio`).
    fsync : bool
        Flush to stable storage before the rename (slower; for power loss).
    sources : sequence, optional
        Inputs being read (objects with ``check_unchanged()``, e.g. a
        ``TrxFile``): checked before the rename, so that an input changed
        while it was read leaves no output.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> out = os.path.join(tempfile.mkdtemp(), "raw.trx")
    >>> with TrxWriter(out) as w:
    ...     w.add_bytes("header.json", b"{}")
    ...     w.add("dps/x.float32", [np.zeros(2, "<f4")], nbytes=8)
    >>> sorted(zipfile.ZipFile(out).namelist())
    ['dps/x.float32', 'header.json']
    """

    def __init__(self, dest: str | os.PathLike, *, zip: bool = True,  # noqa: A002
                 compression: str = "stored", level: int = 6, fsync: bool = False,
                 sources: Sequence[Any] = ()) -> None:
        if compression not in _COMPRESSION:
            raise ValueError(f"compression must be 'stored' or 'deflate', got {compression!r}")
        self.dest = Path(dest)
        self.is_zip = zip
        self.method = _COMPRESSION[compression]
        self.level = level
        self.fsync = fsync
        self.sources = list(sources)
        self.tmp = sibling_temp_path(self.dest)
        install_sigterm_cleanup()
        self._names: set[str] = set()
        self._fd: int | None = None
        self._pos = 0
        self._entries: list[zipio.Entry] = []
        self._slots: list[Slot] = []
        self._done = False
        check_replaceable(self.dest, as_directory=not zip)  # before anything is written
        _PENDING[self.tmp] = os.getpid()
        try:
            if not self.dest.parent.is_dir():
                raise FileNotFoundError(f"{self.dest.parent}: the destination's folder "
                                        "does not exist")
            if zip:
                self._fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                                   | getattr(os, "O_CLOEXEC", 0), 0o666)
            else:
                self.tmp.mkdir()
        except OSError as exc:
            self._fail(exc)

    # ---------------------------------------------------------------- members
    def add_bytes(self, name: str, data: bytes) -> None:
        """A small member written whole (``header.json``)."""
        self.add(name, [data], len(data))

    def reserve(self, members: Sequence[tuple[str, int]]) -> dict[str, Slot]:
        """Lay out members of known sizes now, to be filled in any order.

        The data of a member whose size is known before it is produced (a
        conversion whose counts the input's header gives) can go straight to
        its final place while other members are produced alongside: each
        returned :class:`Slot` is written from its first byte to its last, the
        slots in any interleaving. The layout is the one :meth:`add` would
        give the same members one after another, so the output has the same
        bytes. Stored zips and folders only (a deflated member's size is not
        known in advance). Members added after (:meth:`add`) follow the
        reserved ones, once every slot is complete.

        Returns
        -------
        dict of str to Slot
        """
        if self.is_zip and self.method != zipio.STORED:
            raise ValueError(f"{self.dest}: reserve() needs a stored zip or a folder")
        slots: dict[str, Slot] = {}
        for name, nbytes in members:
            self._claim(name)
            try:
                if self.is_zip:
                    entry = zipio.Entry(name, zipio.STORED, self._pos, nbytes, nbytes,
                                        zip64=zipio.needs_zip64(nbytes))
                    entry.extra = self._padding(self._pos, name, nbytes)
                    data = self._pos + entry.local_header_size()
                    slot = Slot(name, nbytes, self._fd, data, entry, self._fail)
                    self._entries.append(entry)
                    self._pos = data + nbytes
                else:
                    target = self.tmp / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    slot = Slot(name, nbytes, os.open(target, os.O_WRONLY | os.O_CREAT
                                                      | os.O_TRUNC, 0o666), 0, None, self._fail)
            except OSError as exc:
                self._fail(exc, name)
            slots[name] = slot
            self._slots.append(slot)
        return slots

    def _close_slots(self) -> None:
        """Every reserved member must be complete before anything follows them."""
        try:
            for slot in self._slots:
                slot.close()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError) and not isinstance(exc, TrxWriteError):
                self._fail(exc)
            raise
        self._slots.clear()

    def _claim(self, name: str) -> None:
        if name in self._names:
            raise ValueError(f"{self.dest}: member {name} written twice")
        self._names.add(name)

    def add(self, name: str, chunks: Iterable[np.ndarray | bytes], nbytes: int) -> None:
        """Stream one member from ``chunks`` whose sizes add up to ``nbytes``.

        A chunk may be a view of a buffer its producer refills for the next
        chunk: each is written (or compressed) before the next is asked for.
        """
        self._close_slots()
        self._claim(name)
        if nbytes >= PROGRESS_BYTES:
            chunks = _with_progress(chunks, nbytes, f"{self.dest.name}: {name}")
        self._guarded(name, lambda: self._write_zip(name, chunks, nbytes) if self.is_zip
                      else self._write_file(name, chunks), nbytes)

    def add_copy(self, name: str, readers: Any) -> None:
        """One member whose bytes are those of inputs' members, unchanged, one after another.

        ``readers``: a :class:`~trx_nipype.core.reading.MemberReader` or a list
        of them (a concatenation). Files (a folder's, a zip's stored members)
        are copied by the kernel (``copy_file_range``: no copy through Python);
        the CRC of the whole is combined from the pieces' (those the input zip
        records, the others computed by reading them first: a map read under
        the file's lease costs 2-3x less than reading, checksumming and
        writing the bytes from this process). Anything else is read in large
        windows and written as :meth:`add` would.
        """
        self._close_slots()
        readers = list(readers) if isinstance(readers, (list, tuple)) else [readers]
        nbytes = sum(r.nbytes for r in readers)
        files = all(getattr(r, "file", None) is not None for r in readers)
        kernel = files and nbytes and (not self.is_zip or (
            self.method == zipio.STORED and (len(readers) == 1
                                             or zipio.crc32_combine is not None)))
        if not kernel:
            for reader in readers:  # a pass the caller asked for still happens
                scan = getattr(reader, "scan", None)
                if scan is not None:
                    scan()
            self.add(name, (c for r in readers for c in _reader_chunks(r)), nbytes)
            return
        self._claim(name)
        if nbytes >= PROGRESS_BYTES:
            log.info("%s: %s: copying %.1f MB", self.dest.name, name, nbytes / 1e6)

        def piece(reader: Any, fd: int, offset: int) -> None:
            def short() -> None:
                reader.file.check()
                from .reading import changed

                raise changed(reader.file.label, reader.member, "ended early")
            _copy_range(reader.file.fd, reader.offset, fd, offset, reader.nbytes, short)
            reader.file.check()

        def reading(reader: Any) -> Any:
            """What must read the piece besides the kernel: the reader's own pass (an
            inspection, giving the CRC too), or the CRC the input does not record."""
            scan = getattr(reader, "scan", None)
            if scan is not None:
                return scan
            if self.is_zip and reader.crc is None:
                return lambda: _crc_of(reader)
            return None

        def copy() -> int:
            if not self.is_zip:
                target = self.tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
                try:
                    done = 0
                    for reader in readers:
                        alongside(reading(reader), lambda r=reader, at=done: piece(r, fd, at),
                                   reader.nbytes)
                        done += reader.nbytes
                    if self.fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                return nbytes
            entry = self._start_entry(name, nbytes)
            crc = 0
            for reader in readers:
                read = reading(reader)
                part = alongside(read, lambda r=reader: piece(r, self._fd, self._pos),
                                  reader.nbytes)
                if read is None:
                    part = reader.crc
                self._pos += reader.nbytes
                crc = part if len(readers) == 1 else zipio.crc32_combine(crc, part,
                                                                          reader.nbytes)
            entry.crc = crc
            self._finish_entry(entry, nbytes)
            return nbytes
        self._guarded(name, copy, nbytes)

    def _guarded(self, name: str, write: Any, nbytes: int) -> None:
        try:
            written = write()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError) and not isinstance(exc, TrxWriteError):
                self._fail(exc, name)
            raise
        if written != nbytes:
            self.abort()
            raise RuntimeError(f"{self.dest}: {name}: announced {nbytes} bytes, "
                               f"wrote {written} (a bug in the caller)")

    def _write_file(self, name: str, chunks: Iterable[np.ndarray | bytes]) -> int:
        target = self.tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with open(target, "wb") as fh:
            for chunk in chunks:
                view = _as_bytes(chunk)
                fh.write(view)
                written += view.nbytes
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        return written

    def _start_entry(self, name: str, nbytes: int) -> zipio.Entry:
        """Write a member's local header (sizes and CRC patched by :meth:`_finish_entry`)."""
        entry = zipio.Entry(name, self.method, self._pos, nbytes, zip64=zipio.needs_zip64(nbytes))
        if self.method == zipio.STORED:
            entry.compress_size = nbytes
            entry.extra = self._padding(self._pos, name, nbytes)
        header = entry.local_header()
        _pwrite_all(self._fd, memoryview(header), self._pos)
        self._pos += len(header)
        return entry

    def _finish_entry(self, entry: zipio.Entry, written: int) -> None:
        if written == entry.file_size:  # else add() reports the caller's bug
            if not entry.zip64 and entry.compress_size > zipio.ZIP64_LIMIT:
                raise RuntimeError(f"{self.dest}: {entry.name}: compressed to "
                                   f"{entry.compress_size} bytes, past the zip64 threshold")
            _pwrite_all(self._fd, memoryview(entry.local_header()), entry.header_offset)
        self._entries.append(entry)

    def _write_zip(self, name: str, chunks: Iterable[np.ndarray | bytes], nbytes: int) -> int:
        entry = self._start_entry(name, nbytes)
        written, crc = 0, 0
        if self.method == zipio.STORED:
            for chunk in chunks:
                view = _as_bytes(chunk)
                crc = zipio.crc32(view, crc)
                _pwrite_all(self._fd, view, self._pos)
                self._pos += view.nbytes
                written += view.nbytes
        else:
            def counted() -> Iterator[memoryview]:
                nonlocal written, crc
                for chunk in chunks:
                    view = _as_bytes(chunk)
                    crc = zipio.crc32(view, crc)
                    written += view.nbytes
                    yield view
            for piece in zipio.deflate(counted(), self.level, _is_float_member(name)):
                _pwrite_all(self._fd, memoryview(piece), self._pos)
                self._pos += len(piece)
                entry.compress_size += len(piece)
        entry.crc = crc
        if self.method == zipio.STORED:
            entry.compress_size = written
        self._finish_entry(entry, written)
        return written

    @staticmethod
    def _padding(header_offset: int, name: str, nbytes: int) -> bytes:
        """An extra field that puts member data on an ``ALIGNMENT`` boundary."""
        zip64 = zipio.needs_zip64(nbytes)
        fixed = 30 + len(name.encode("utf-8")) + (20 if zip64 else 0) + 6
        pad = (-(header_offset + fixed)) % ALIGNMENT
        return struct.pack("<HHH", _PAD_ID, 2 + pad, ALIGNMENT) + b"\x00" * pad

    # --------------------------------------------------------------- lifetime
    def commit(self) -> Path:
        """Finish the output and rename it over the destination."""
        if self._done:
            raise RuntimeError(f"{self.dest}: writer already finished")
        self._close_slots()
        try:
            if self._fd is not None:
                records = b"".join(e.central_record() for e in self._entries)
                tail = records + zipio.end_records(self._entries, self._pos, len(records))
                _pwrite_all(self._fd, memoryview(tail), self._pos)
                self._pos += len(tail)
                if self.fsync:
                    os.fsync(self._fd)
                fd, self._fd = self._fd, None
                os.close(fd)
            for source in self.sources:  # an input changed while read: no output
                source.check_unchanged()
            check_replaceable(self.dest, as_directory=not self.is_zip)
            _replace(self.tmp, self.dest)
        except FileExistsError:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            self._fail(exc)
        except BaseException:
            self.abort()
            raise
        self._done = True
        _PENDING.pop(self.tmp, None)
        log.debug("wrote %s", self.dest)
        return self.dest

    def abort(self) -> None:
        """Remove the temporary output; the destination is untouched."""
        if self._done:
            return
        self._done = True
        for slot in self._slots:
            slot.discard()
        self._slots.clear()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass
        _remove_tmp(self.tmp)

    def _fail(self, exc: OSError, member: str | None = None) -> None:
        self.abort()
        what = f" ({member})" if member else ""
        text = f"{self.dest}{what}: cannot write: {exc.strerror or exc}"
        # OSError(None, text) would print "[Errno None] text"
        raise (TrxWriteError(text) if exc.errno is None else
               TrxWriteError(exc.errno, text)) from exc

    def __enter__(self) -> TrxWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (False when either is missing or unreadable)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_replaceable(dest: Path, *, as_directory: bool = False) -> None:
    """The one rule for what an output may replace: a tractogram, an empty folder or nothing.

    Refused: a symbolic link (never written through, nor replaced: it may lead
    to a folder of other files), a folder that is not a TRX folder (no
    ``header.json``) and is not empty, and a file that is not a tractogram
    (:func:`is_tractogram_file`: a TRX zip, TRK, TCK, VTK/VTP, FIB or DPY file,
    plain or gzipped). ``as_directory`` (the output is a TRX folder) only
    changes the wording.

    Raises
    ------
    FileExistsError
        Naming the destination and why it is kept.
    """
    dest = Path(dest)
    if dest.is_symlink():
        raise FileExistsError(f"{dest}: is a symbolic link; refusing to write through or over "
                              "it: choose another destination")
    if not dest.exists():
        return
    if dest.is_dir():
        if (dest / "header.json").is_file() or not any(dest.iterdir()):
            return
        raise FileExistsError(f"{dest}: exists and is not a TRX folder (no header.json); "
                              "refusing to replace it: choose another destination or remove it")
    if not is_tractogram_file(dest):
        with_what = " with a TRX folder (a destination ending in .trx writes a zip)" \
            if as_directory else ""
        raise FileExistsError(f"{dest}: exists and is not a TRX file or another tractogram; "
                              f"refusing to replace it{with_what}: choose another destination "
                              "or remove it")


#: the first bytes of each tractogram format's files (TRX zips are checked for header.json)
_MAGIC = (b"TRACK", b"mrtrix tracks", b"# vtk DataFile", b"<VTKFile", b"\x89HDF\r\n\x1a\n")


def is_tractogram_file(path: Path) -> bool:
    """A TRX zip (with ``header.json``), or a file that starts as a TRK, TCK, VTK/VTP/FIB
    or DPY file does (gzipped or not)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
            if head[:2] == b"\x1f\x8b":
                fh.seek(0)
                with gzip.GzipFile(fileobj=fh) as gz:
                    head = gz.read(256)
    except (OSError, EOFError, ValueError, zlib.error):
        return False
    if head.startswith(b"<?xml"):  # a VTP file: XML whose root is a VTKFile
        head = head[head.find(b"<", 1):]
    return head.startswith(_MAGIC) or _is_trx_zip(path)


def _is_trx_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return "header.json" in zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


#: pieces at least this large are read (CRC, inspection) in a thread while the kernel
#: copies them; smaller ones one after the other
ALONGSIDE_BYTES = 8 << 20


def alongside(read: Callable[[], Any] | None, copy: Callable[[], None], nbytes: int) -> Any:
    """Run ``copy()`` (a kernel copy, which releases the GIL) and ``read()`` at once.

    The two read the same source: the kernel for the copy, this process (a map under
    the file's lease) for the CRC or an inspection. Pieces smaller than
    :data:`ALONGSIDE_BYTES` are read, then copied, in this thread.

    Parameters
    ----------
    read : callable or None
        The pass over the piece (its result is returned); None: only copy.
    copy : callable
        The copy.
    nbytes : int
        The piece's size.

    Returns
    -------
    object
        What ``read`` returned (None without ``read``).

    Raises
    ------
    BaseException
        An exception of either, once both are done.
    """
    if read is None:
        copy()
        return None
    if nbytes < ALONGSIDE_BYTES:
        result = read()
        copy()
        return result
    import threading

    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = read()
        except BaseException as exc:  # raised by the caller below
            out["error"] = exc

    thread = threading.Thread(target=run, name="trx-crc", daemon=True)
    thread.start()
    try:
        copy()
    finally:
        thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _crc_of(reader: Any) -> int:
    """CRC-32 of a reader's bytes (read in windows: a map under the file's lease, or preads)."""
    crc = 0
    for block in _reader_chunks(reader):
        crc = zipio.crc32(_as_bytes(block), crc)
    return crc


def _reader_chunks(reader: Any) -> Iterator[np.ndarray]:
    """A reader's rows in windows of ``reading.WINDOW_BYTES``, read into one reused buffer."""
    from . import reading

    step = max(1, reading.WINDOW_BYTES // max(reader.row_bytes, 1))
    buf = None
    try:
        for a in range(0, reader.nrows, step):
            block = reader.rows(a, min(a + step, reader.nrows), out=buf, view=True)
            if block.flags.owndata:
                buf = block
            yield block
    finally:
        reader.release()


def _replace(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` over ``dest``; a directory destination is swapped via a trash sibling."""
    if dest.is_dir() and not dest.is_symlink():
        trash = sibling_temp_path(dest)
        os.rename(dest, trash)
        try:
            os.rename(tmp, dest)
        except OSError:
            try:
                os.rename(trash, dest)
            except OSError:  # another writer's complete output took the place meanwhile
                shutil.rmtree(trash, ignore_errors=True)
            raise
        shutil.rmtree(trash, ignore_errors=True)
    elif tmp.is_dir() and dest.exists():
        trash = sibling_temp_path(dest)
        os.rename(dest, trash)
        os.rename(tmp, dest)
        trash.unlink()
    else:
        os.replace(tmp, dest)

