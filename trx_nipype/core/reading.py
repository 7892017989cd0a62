"""The operations' way of reading an input: bounded ``pread`` s, and a check that it held still.

:class:`~trx_nipype.core.TrxFile` hands users memory maps. Operations (save,
select, concatenate, convert) do not read through them:

- a map of a file that another process truncates raises ``SIGBUS`` on the
  next touch, which kills the process; a ``pread`` returns short instead,
  which becomes :class:`SourceChangedError` naming the file;
- members of zips written by other tools start at any byte (trx-python's
  positions often at an odd offset), and numpy's ``take`` copies a whole
  unaligned array before gathering from it; reads land in aligned buffers;
- large sequential reads instead of page faults, 4 KB at a time, on a map.

Each input file is opened once (:class:`OpenFile`) and stamped (device,
inode, size, modification time). Every read checks that the stamp still holds,
and so does the writer before it renames its output into place: an input
truncated, overwritten or replaced while an operation reads it gives an error
naming the file and leaves no output, never a mix of two files. A zip renamed
over while open is no change at all: its open file is still the old one, read
whole and consistent.

Gathers (a selection's rows, scattered over the file) read a map where they
can, which costs 2.5x less than reading whole windows: while a gather runs,
the file holds a read *lease* (Linux ``F_SETLEASE``), so that the kernel makes
any process that opens the file for writing or truncates it wait until the
lease is released; between chunks the gather asks whether one waits, and if
so releases the lease and raises the error above. A map is therefore never
touched past a truncation (no SIGBUS). Where no lease can be had (another
system, a file of another user, a file open for writing, a network file
system) gathers read windows with ``pread`` instead.
"""

from __future__ import annotations

import mmap
import os
import queue
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .arrays import gather_rows, gather_runs, ranges_index
from .errors import TrxFormatError

try:  # Linux: read leases
    import fcntl

    _LEASES = all(hasattr(fcntl, n) for n in ("F_SETLEASE", "F_GETLEASE", "F_SETSIG"))
except ImportError:  # pragma: no cover - not on this platform
    fcntl = None
    _LEASES = False
#: sent when a lease is broken: SIGIO (the default) would end the process; SIGURG is
#: ignored unless handled, and the lease's state is polled instead
_LEASE_SIGNAL = getattr(signal, "SIGURG", 0)

#: bytes read at a time when a gather reads a run of rows, and when copying
WINDOW_BYTES = 16 << 20
#: a gap between needed rows larger than this is skipped, not read
GAP_BYTES = 256 << 10
#: ``madvise`` advice that maps a range of pages at once (Linux 5.14; not named by Python 3.11)
MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform == "linux" else None)
#: bytes mapped per ``madvise`` call of :meth:`MemberReader.prefetch` (it stops between two)
PREFETCH_STEP = 32 << 20


T = TypeVar("T")
#: items alive at once when a producer runs in a thread one item ahead
#: (:func:`in_background` with ``depth=IN_FLIGHT - 2``): the one the caller holds, one
#: queued, the one being made; buffers reused from item to item rotate this many
IN_FLIGHT = 3


def in_background(items: Iterator[T], depth: int = 1, name: str = "trx-read") -> Iterator[T]:
    """Run the iterator ``items`` in a thread, ``depth`` items ahead of the caller.

    The producer (inflating, parsing records, building records to write) runs
    on the other core while the caller consumes (checksums, writes): numpy,
    zlib and the system calls release the GIL. Items arrive in order; an
    exception of the producer is raised to the caller where its item would
    have come. When the caller stops early (an error, ``close()``), the thread
    is stopped and ``items`` closed in its own thread (its ``finally`` runs
    there). At most ``depth + 2`` items exist at once (the caller's, ``depth``
    queued, the one being made): a producer that fills reused buffers rotates
    that many.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def run() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            q.put(done)
        except BaseException as exc:  # handed to the caller
            q.put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class SourceChangedError(TrxFormatError):
    """An input was truncated, overwritten or replaced while it was being read.

    A :class:`~trx_nipype.core.TrxFormatError` (so callers that report bad
    input report this too) naming the file, the member and what changed.
    """


def changed(path: str | os.PathLike, member: str | None, what: str) -> SourceChangedError:
    """The error for ``path`` (``member``) having changed while being read: ``what`` changed."""
    return SourceChangedError(path, member, f"changed while being read ({what}); nothing "
                              "was written from it: run again once the file is complete")


@dataclass(frozen=True)
class Stamp:
    """What identifies a file's content cheaply: device, inode, size, modification time."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stamp:
        """The stamp of a ``stat`` result."""
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def change(self, now: Stamp) -> str | None:
        """How ``now`` differs from this stamp (None when it does not)."""
        if (now.dev, now.ino) != (self.dev, self.ino):
            return "replaced by another file"
        if now.size != self.size:
            return f"size {self.size} -> {now.size} bytes"
        if now.mtime_ns != self.mtime_ns:
            return "modified"
        return None


class OpenFile:
    """A file opened once, read with ``pread`` only, checked against its stamp.

    Parameters
    ----------
    path : str or os.PathLike
        The file to open.
    label : str
        The input named in errors (the TRX zip or folder).
    member : str, optional
        The member named in errors (a TRX folder's file).
    expect : Stamp, optional
        The stamp the file had when its container was listed: a file that
        differs (replaced, resized, rewritten since) is refused.
    """

    def __init__(self, path: str | os.PathLike, label: str | os.PathLike,
                 member: str | None = None, expect: Stamp | None = None) -> None:
        self.path = os.fspath(path)
        self.label = os.fspath(label)
        self.member = member
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            self.stamp = Stamp.of(os.fstat(self.fd))
            what = expect.change(self.stamp) if expect is not None else None
            if what:
                raise changed(self.label, member, what)
        except BaseException:
            os.close(self.fd)
            raise
        self.closed = False
        self._leases = 0
        self._leasable = _LEASES
        self._map: mmap.mmap | None = None

    @property
    def size(self) -> int:
        """The size the file had when opened."""
        return self.stamp.size

    def check(self) -> None:
        """Raise :class:`SourceChangedError` if the file changed since it was opened."""
        if self.closed:
            return
        what = self.stamp.change(Stamp.of(os.fstat(self.fd)))
        if what:
            raise changed(self.label, self.member, what)

    def read_into(self, view: memoryview | np.ndarray, offset: int,
                  member: str | None = None) -> None:
        """Fill ``view`` with the bytes at ``offset``; a short read is an error."""
        view = memoryview(view).cast("B")
        done, total = 0, view.nbytes
        while done < total:
            n = os.preadv(self.fd, [view[done:]], offset + done)
            if n == 0:
                self.check()
                raise changed(self.label, member or self.member,
                              f"ended at byte {offset + done}, {total - done} bytes early")
            done += n

    def read(self, offset: int, nbytes: int, member: str | None = None) -> bytes:
        """``nbytes`` bytes at ``offset``, as immutable ``bytes`` (one copy)."""
        data = os.pread(self.fd, nbytes, offset)
        if len(data) < nbytes:  # a signal, or the end of the file: finish (or fail) in place
            buf = bytearray(nbytes)
            buf[:len(data)] = data
            self.read_into(memoryview(buf)[len(data):], offset + len(data), member)
            data = bytes(buf)
        return data

    # --------------------------------------------------------------- leases
    def hold(self) -> bool:
        """Take (or share) a read lease; True if held (then :meth:`let_go` once done).

        While held, a process that opens the file for writing or truncates it
        waits (up to ``/proc/sys/fs/lease-break-time``) until the lease is
        released: :meth:`check_held` notices it and lets go.
        """
        if self._leases:
            self._leases += 1
            return True
        if not self._leasable or self.closed:
            return False
        try:
            fcntl.fcntl(self.fd, fcntl.F_SETSIG, _LEASE_SIGNAL)
            fcntl.fcntl(self.fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except OSError:  # not the owner, open for writing, a network file system...
            self._leasable = False
            return False
        self._leases = 1
        try:
            self.check()  # a change before the lease was taken
        except BaseException:
            self.let_go(all_of_them=True)
            raise
        return True

    def let_go(self, *, all_of_them: bool = False) -> None:
        """Release one hold (or every one); the lease goes with the last."""
        if not self._leases:
            return
        self._leases = 0 if all_of_them else self._leases - 1
        if not self._leases and not self.closed:
            try:
                fcntl.fcntl(self.fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            except OSError:
                pass

    def check_held(self, member: str | None = None) -> None:
        """With the lease held: raise (and let go) if a writer or a truncation waits on it."""
        if fcntl.fcntl(self.fd, fcntl.F_GETLEASE) != fcntl.F_RDLCK:
            self.let_go(all_of_them=True)
            self.check()
            raise changed(self.label, member or self.member,
                          "another process opened it for writing or truncated it")

    def mapped(self) -> mmap.mmap | None:
        """A read-only map of the whole file, made once (None for an empty file).

        Touch it only while holding the lease (:meth:`hold`, :meth:`check_held`).
        """
        if self._map is None and self.size:
            self.check()
            self._map = mmap.mmap(self.fd, self.size, access=mmap.ACCESS_READ)
        return self._map

    def close(self) -> None:
        """Close the file (idempotent)."""
        if not self.closed:
            self.let_go(all_of_them=True)
            self.closed = True
            if self._map is not None:
                try:
                    self._map.close()
                except BufferError:  # an array still uses it; the GC will release it
                    pass
                self._map = None
            os.close(self.fd)


def read_file(path: str | os.PathLike, label: str | os.PathLike, member: str | None,
              expect: Stamp | None = None) -> bytes:
    """A whole (small) file, checked against ``expect``."""
    f = OpenFile(path, label, member, expect)
    try:
        return f.read(0, f.size)
    finally:
        f.close()


def _rows_of(shape: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    return (int(shape[0]) if len(shape) else 0), tuple(int(s) for s in shape[1:])


class MemberReader:
    """Rows of one array stored at ``offset`` in an :class:`OpenFile`.

    Parameters
    ----------
    file : OpenFile
    offset : int
        Byte offset of row 0 in the file.
    dtype : numpy dtype
    shape : tuple of int
        ``(rows, *tail)``.
    member : str
        The member, for errors.
    crc : int, optional
        The member's CRC-32 when its container records it (a stored zip
        member): a byte-for-byte copy can then reuse it.
    """

    def __init__(self, file: OpenFile, offset: int, dtype: np.dtype, shape: Sequence[int],
                 member: str, crc: int | None = None) -> None:
        self.file = file
        self.offset = int(offset)
        self.dtype = np.dtype(dtype)
        self.nrows, self.tail = _rows_of(shape)
        self.member = member
        self.crc = crc
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.tail, dtype=np.int64))
        self.nbytes = self.nrows * self.row_bytes
        self._window: np.ndarray | None = None
        self._index: np.ndarray | None = None  # gather_runs' vertex index, when it needs one
        self._prefetch: tuple[threading.Thread, threading.Event] | None = None
        self._held: bool | None = None  # the file's lease: None = not tried yet

    def _out(self, n: int, out: np.ndarray | None) -> np.ndarray:
        if out is not None and out.dtype == self.dtype and out.shape[1:] == self.tail \
                and len(out) >= n and out.flags.c_contiguous:
            return out[:n]
        return np.empty((n, *self.tail), dtype=self.dtype)

    def rows(self, start: int, stop: int, out: np.ndarray | None = None, *,
             view: bool = False) -> np.ndarray:
        """Rows ``start:stop``, read into ``out`` (reused when it fits) or a new array.

        ``view=True``: where the file's lease can be held, a view of its map
        instead (no copy), valid until the next call or :meth:`release`: for
        callers that consume each block at once (the writer).
        """
        if view and stop > start and self._hold():
            return self._mapped()[start:stop]
        arr = self._out(stop - start, out)
        if arr.size:
            self.file.read_into(arr, self.offset + start * self.row_bytes, self.member)
        self.file.check()
        return arr

    def _buffer(self, rows: int) -> np.ndarray:
        need = rows * self.row_bytes
        if self._window is None or self._window.nbytes < need:
            self._window = np.empty(need, dtype=np.uint8)
        return self._window[:need].view(self.dtype).reshape(rows, *self.tail)

    def gather(self, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rows at ``index`` (any order, repeats allowed), reading only the runs needed.

        The rows needed are read in runs of at most :data:`WINDOW_BYTES`;
        gaps wider than :data:`GAP_BYTES` are skipped. Memory: the output
        plus one window.
        """
        idx = np.asarray(index, dtype=np.int64)
        arr = self._out(len(idx), out)
        if len(idx) == 0:
            return arr
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= self.nrows:
            raise IndexError(f"{self.file.label}: {self.member}: row {lo if lo < 0 else hi} "
                             f"out of range for {self.nrows} rows")
        if self._hold():
            return self._gather_mapped(idx, arr)
        window = max(1, WINDOW_BYTES // max(self.row_bytes, 1))
        if hi - lo < window:  # one read covers it all
            buf = self._buffer(hi - lo + 1)
            self.file.read_into(buf, self.offset + lo * self.row_bytes, self.member)
            gather_rows(buf, idx - lo, out=arr, checked=True)
            self.file.check()
            return arr
        order = None
        if np.any(idx[1:] < idx[:-1]):
            order = np.argsort(idx, kind="stable")
            idx = idx[order]
        gap = max(1, GAP_BYTES // max(self.row_bytes, 1))
        cuts = np.flatnonzero(np.diff(idx) > gap) + 1
        bounds = np.concatenate([[0], cuts, [len(idx)]])
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            while a < b:
                first = int(idx[a])
                stop = a + int(np.searchsorted(idx[a:b], first + window, side="left"))
                last = int(idx[stop - 1])
                buf = self._buffer(last - first + 1)
                self.file.read_into(buf, self.offset + first * self.row_bytes, self.member)
                if order is None:
                    gather_rows(buf, idx[a:stop] - first, out=arr[a:stop], checked=True)
                else:
                    arr[order[a:stop]] = buf[idx[a:stop] - first]
                a = stop
        self.file.check()
        return arr

    def _hold(self) -> bool:
        """Hold the file's lease for this reader (tried once; False where none can be had)."""
        if self._held is None:
            self._held = self.file.hold()
        return self._held

    def _mapped(self) -> np.ndarray:
        """The member as an array over the file's map, after checking no writer waits."""
        self.file.check_held(self.member)
        return np.frombuffer(self.file.mapped(), dtype=self.dtype, offset=self.offset,
                             count=self.nrows * max(1, int(np.prod(self.tail)))
                             ).reshape(self.nrows, *self.tail)

    def _gather_mapped(self, idx: np.ndarray, arr: np.ndarray) -> np.ndarray:
        """Gather from a map of the file, under its lease (nothing can cut it short)."""
        src = self._mapped()
        try:
            gather_rows(src, idx, out=arr, checked=True)
        finally:
            del src
        return arr

    def gather_runs(self, starts: np.ndarray, lengths: np.ndarray,
                    out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``s:s + n`` for each ``(s, n)``, concatenated: a selection's vertices.

        Under the file's lease, copied from its map a run at a time
        (:func:`~trx_nipype.core.arrays.gather_runs`: no vertex index); else
        gathered through an index with bounded reads (:meth:`gather`).
        """
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        arr = self._out(int(lengths.sum()), out)
        if not len(arr):
            return arr
        keep = lengths > 0
        lo, hi = int(starts[keep].min()), int((starts + lengths)[keep].max())
        if lo < 0 or hi > self.nrows:
            raise IndexError(f"{self.file.label}: {self.member}: rows {lo}:{hi} out of "
                             f"range for {self.nrows} rows")
        total = len(arr)
        if self._index is None or len(self._index) < total:  # reused from chunk to chunk
            self._index = np.empty(total + total // 8, dtype=np.int64)
        if not self._hold():
            return self.gather(ranges_index(starts, lengths, out=self._index), arr)
        src = self._mapped()
        try:
            gather_runs(src, starts, lengths, out=arr, checked=True, index=self._index)
        finally:
            del src
        return arr

    def take(self, rows: slice | np.ndarray, out: np.ndarray | None = None, *,
             view: bool = False) -> np.ndarray:
        """:meth:`rows` for a slice (a run), :meth:`gather` for indices."""
        if isinstance(rows, slice):
            return self.rows(rows.start, rows.stop, out, view=view)
        return self.gather(rows, out)

    def prefetch(self, start: int, stop: int) -> bool:
        """Map rows ``start:stop`` of the file's map in a thread, ahead of gathers.

        For a gather that will touch most pages of that range (a selection of
        every few streamlines): the pages are mapped by the kernel a range at a
        time (``MADV_POPULATE_READ``) on the other core while this one copies,
        instead of one page fault at a time in the copy. Done in order, from
        ``start``, so that it keeps ahead of a gather in file order. Only
        under the file's lease (as every read of the map); a failure (an old
        kernel, a file cut short: ``EFAULT``, never ``SIGBUS``) just stops it.
        :meth:`release` stops and joins the thread. True if started.
        """
        if MADV_POPULATE_READ is None or self._prefetch is not None or stop <= start \
                or not self._hold():
            return False
        self.file.check_held(self.member)
        whole = self.file.mapped()
        page = mmap.PAGESIZE
        lo = (self.offset + start * self.row_bytes) // page * page
        hi = self.offset + stop * self.row_bytes
        stopped = threading.Event()

        def run() -> None:
            try:
                for a in range(lo, hi, PREFETCH_STEP):
                    if stopped.is_set():
                        return
                    whole.madvise(MADV_POPULATE_READ, a, min(PREFETCH_STEP, hi - a))
            except (OSError, ValueError):  # no such advice, or pages past a truncation
                return

        thread = threading.Thread(target=run, name="trx-prefetch", daemon=True)
        self._prefetch = (thread, stopped)
        thread.start()
        return True

    def release(self) -> None:
        """Drop the read window and the lease (the reader can still be used)."""
        if self._prefetch is not None:
            thread, stopped = self._prefetch
            stopped.set()
            thread.join()
            self._prefetch = None
        self._window = self._index = None
        if self._held:
            self.file.let_go()
        self._held = None
