"""Tractogram file formats other than TRX, one module each.

- :mod:`.trk` -- TrackVis ``.trk`` (and ``.trk.gz``): voxmm coordinates, a
  1000-byte header with the space, per-point scalars and per-streamline
  properties.
- :mod:`.tck` -- MRtrix ``.tck`` (and ``.tck.gz``): RAS+ mm coordinates, a
  text header, no space and no data.
- :mod:`.dipy_formats` -- ``.vtk``, ``.vtp``, ``.fib`` (through dipy and the
  optional ``fury``/``vtk`` packages) and ``.dpy`` (through dipy and h5py).

Readers yield :class:`Block` objects -- runs of whole streamlines in RAS+ mm
with their data -- so that converters stream in bounded memory; writers
consume them.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import TrxFormatError

#: suffix -> format name (the longest matching suffix wins)
SUFFIXES: dict[str, str] = {
    ".trx": "trx", ".zip": "trx",
    ".trk": "trk", ".trk.gz": "trk",
    ".tck": "tck", ".tck.gz": "tck",
    ".vtk": "vtk", ".vtp": "vtk", ".fib": "vtk",
    ".dpy": "dpy",
}
#: the suffixes, longest first (``.trk.gz`` before ``.trk``)
_SUFFIXES_LONGEST_FIRST = tuple(sorted(SUFFIXES, key=len, reverse=True))
#: the formats read and written
FORMATS = ("trx", "trk", "tck", "vtk", "dpy")
#: the formats whose files hold a space (affine, grid) and groups
SPACED_FORMATS = ("trx", "trk")
#: the output choices users name (nodes, CLI): choice -> (file extension, format)
OUTPUT_CHOICES: dict[str, tuple[str, str]] = {
    "trx": (".trx", "trx"), "trx_dir": ("", "trx"), "trk": (".trk", "trk"),
    "tck": (".tck", "tck"), "vtk": (".vtk", "vtk"), "vtp": (".vtp", "vtk"),
    "fib": (".fib", "vtk"), "dpy": (".dpy", "dpy"),
}
#: bytes of a reader's first read, doubled on each full read up to its chunk size:
#: ``read(n)`` allocates ``n`` bytes at once, whatever the file's size
FIRST_READ = 1 << 20


@dataclass
class Block:
    """A run of whole streamlines, in RAS+ mm, with their data.

    Attributes
    ----------
    lengths : ndarray of int64, shape (n,)
    positions : ndarray, shape (sum(lengths), 3)
    dpv : dict of str to ndarray
        ``(v,)`` or ``(v, k)`` arrays.
    dps : dict of str to ndarray
        ``(n,)`` or ``(n, k)`` arrays.
    groups : dict of str to ndarray
        Indices (local to the block) of the streamlines of each group.
    """

    lengths: np.ndarray
    positions: np.ndarray
    dpv: dict[str, np.ndarray] = field(default_factory=dict)
    dps: dict[str, np.ndarray] = field(default_factory=dict)
    groups: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lengths)

    def select(self, keep: np.ndarray) -> Block:
        """The streamlines where the boolean mask ``keep`` is true."""
        vkeep = np.repeat(keep, self.lengths)
        new_index = np.cumsum(keep) - 1
        return Block(self.lengths[keep], self.positions[vkeep],
                     {k: v[vkeep] for k, v in self.dpv.items()},
                     {k: v[keep] for k, v in self.dps.items()},
                     {g: new_index[i[keep[i]]] for g, i in self.groups.items()})


class Scratch:
    """Arrays a writer reuses from one block to the next.

    Fresh memory costs this process a page fault per 4 KB the first time it is
    touched (about 3 ms per 16 MB here, as much as filling it): a writer that
    builds each block's bytes in new arrays pays that on every block. A writer
    whose block is written before the next is built takes its arrays from here
    instead: one buffer per name, grown (by an eighth more than asked) when a
    block needs more, never shrunk.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype`` over the buffer ``name``
        (valid until the next call for the same name)."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        buf = self._buffers.get(name)
        if buf is None or len(buf) < nbytes:
            buf = self._buffers[name] = np.empty(nbytes + nbytes // 8, dtype=np.uint8)
        return buf[:nbytes].view(dtype).reshape(shape)


def without_empty(block: Block) -> tuple[Block, int]:
    """``block`` minus its empty streamlines, and how many there were.

    nibabel (hence dipy) skips empty streamlines in TRK and TCK files, which
    misaligns their data; writers leave them out and say so.
    """
    empty = int(np.count_nonzero(np.asarray(block.lengths) == 0))
    return (block.select(np.asarray(block.lengths) > 0) if empty else block), empty


def compound_suffix(path: str | os.PathLike) -> str:
    """``.trk.gz`` for ``a.b.trk.gz``, ``.tck`` for ``x.tck``, ``''`` for ``out``.

    >>> compound_suffix("d/A.B.TRK.GZ"), compound_suffix("d/x.trx/"), compound_suffix(".trk")
    ('.trk.gz', '.trx', '')
    >>> compound_suffix("a.b.json"), compound_suffix("x."), compound_suffix(".hidden")
    ('.json', '', '')
    """
    name = os.path.basename(os.fspath(path).rstrip(os.sep)).lower()  # Path(path).name
    for suffix in _SUFFIXES_LONGEST_FIRST:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    ext = os.path.splitext(name)[1]
    return "" if ext == "." else ext  # as pathlib's suffix


def detect_format(path: str | os.PathLike, *, for_output: bool = False) -> str:
    """The format of ``path``: ``"trx"``, ``"trk"``, ``"tck"``, ``"vtk"`` or ``"dpy"``.

    An existing directory is a TRX directory. Otherwise the suffix decides
    (``.trx``/``.zip``, ``.trk[.gz]``, ``.tck[.gz]``, ``.vtk``/``.vtp``/``.fib``,
    ``.dpy``). For an output, a path with no suffix at all is a TRX directory.

    Raises
    ------
    ValueError
        If the suffix is not one of these.
    """
    p = Path(path)
    if p.is_dir():
        return "trx"
    suffix = compound_suffix(p)
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if for_output and suffix == "":
        return "trx"
    known = ", ".join(SUFFIXES)
    what = "output" if for_output else "input"
    raise ValueError(f"{path}: cannot tell the {what} format from its name; expected one of "
                     f"{known}{', or no suffix (a TRX directory)' if for_output else ''}")


def carries_space(path: str | os.PathLike) -> bool:
    """Whether a tractogram file holds its own space (TRX, TRK)."""
    return detect_format(path) in SPACED_FORMATS


def is_gzip(path: str | os.PathLike) -> bool:
    """True for a path ending in ``.gz``."""
    return os.fspath(path).lower().endswith(".gz")


class _GzipInput(gzip.GzipFile):
    """A gzip reader whose damaged or truncated stream raises a TrxFormatError naming the file.

    (``gzip`` raises ``EOFError``, ``BadGzipFile`` or ``zlib.error``, which say nothing of
    which file was damaged.)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path, "rb")
        self._path = os.fspath(path)

    @contextmanager
    def _damaged(self) -> Iterator[None]:
        try:
            yield
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise TrxFormatError(self._path, None, f"expected a complete gzip stream, found "
                                 f"a damaged or truncated one ({exc})") from None

    def read(self, size: int = -1) -> bytes:
        with self._damaged():
            return super().read(size)

    def readline(self, size: int = -1) -> bytes:
        with self._damaged():
            return super().readline(size)


def open_input(path: str | os.PathLike) -> IO[bytes]:
    """Open a (possibly gzipped) input for binary reading."""
    return _GzipInput(path) if is_gzip(path) else open(path, "rb")


class ReadBuffer:
    """One reused read buffer for a chunked reader: filled from a file, consumed from the
    front (what is left moves to the start), and ramped up from ``first`` to ``full``
    bytes while reads keep it full (small files: small reads).

    It never grows past ``full`` by itself: a record larger than that is first shown to
    exist (:meth:`reserve`, :meth:`look_ahead`: the file's size, or the stream read
    ahead and discarded), so that a header or a count that lies (a gzipped record
    claiming 2**31 points over gigabytes of zeros) costs bounded memory, not the
    gigabytes it claims.
    """

    def __init__(self, fh: IO[bytes], first: int, full: int) -> None:
        self.fh = fh
        self.full = full
        self.buf = bytearray(min(first, full))
        self.filled = 0
        self.eof = False
        self._size: int | None = None  # a regular (uncompressed) file's size
        if not isinstance(fh, gzip.GzipFile):
            try:
                st = os.fstat(fh.fileno())
            except (AttributeError, OSError, ValueError):
                st = None
            if st is not None and stat.S_ISREG(st.st_mode):
                self._size = st.st_size

    def fill(self) -> None:
        """Read until the buffer is full or the file ends (doubling a full buffer first,
        up to ``full`` bytes)."""
        if self.eof:
            return
        if self.filled == len(self.buf) and len(self.buf) < self.full:
            self._grow(min(2 * len(self.buf), self.full))
        view = memoryview(self.buf)
        while self.filled < len(self.buf):
            n = self.fh.readinto(view[self.filled:])
            if not n:
                break
            self.filled += n
        self.eof = self.filled < len(self.buf)  # a short read: the file has ended

    def consume(self, nbytes: int) -> None:
        """Drop the first ``nbytes`` (arrays over them must be released first)."""
        rest = self.filled - nbytes
        self.buf[:rest] = self.buf[nbytes:self.filled]
        self.filled = rest
        if len(self.buf) > self.full and rest <= self.full:
            del self.buf[self.full:]  # back to the chunk size after one outsized record
        elif not self.eof and len(self.buf) < self.full and rest < len(self.buf) // 2:
            self._grow(min(2 * len(self.buf), self.full))

    def available(self, nbytes: int) -> int:
        """How many of the next ``nbytes`` bytes (from the buffer's front) the file holds.

        A regular file answers from its size; a stream (gzip) is read ahead, in
        bounded chunks that are discarded, and rewound.
        """
        if nbytes <= self.filled or self.eof:
            return min(nbytes, self.filled)
        if self._size is not None:
            return min(nbytes, self.filled + max(self._size - self.fh.tell(), 0))
        seen = self.filled

        def count(chunk: memoryview) -> bool:
            nonlocal seen
            seen += len(chunk)
            return seen >= nbytes
        self.look_ahead(count)
        return min(seen, nbytes)

    def reserve(self, nbytes: int, *, seen: bool = False) -> int:
        """Make room for ``nbytes`` from the front, if the file holds them.

        Up to ``full`` bytes, room is made at once; past it, only once
        :meth:`available` has shown the bytes exist (or the caller has, with
        :meth:`look_ahead`: ``seen=True``).

        Returns
        -------
        int
            ``nbytes`` when room was made; fewer -- what the file holds from the
            front -- when it ends before (nothing is allocated then).
        """
        if nbytes > len(self.buf):
            if nbytes > self.full and not seen:
                have = self.available(nbytes)
                if have < nbytes:
                    return have
            self._grow(-(-nbytes // 4096) * 4096)
        return nbytes

    def look_ahead(self, visit: Callable[[memoryview], bool]) -> bool:
        """Show ``visit`` what follows the buffer, chunk by chunk, until it returns True.

        The chunks are read into one scratch buffer (bounded memory) and
        discarded; the file is then put back where it was (for a gzip stream:
        decompressed again from its start, so this is for rare, outsized records).

        Returns
        -------
        bool
            True when ``visit`` returned True; False when the file ended first
            (the file is then left at its end: the caller reports the error).
        """
        where = self.fh.tell()
        scratch = bytearray(min(self.full, 1 << 22))
        view = memoryview(scratch)
        while True:
            n = self.fh.readinto(scratch)
            if not n:
                return False
            if visit(view[:n]):
                self.fh.seek(where)
                return True

    def _grow(self, size: int) -> None:
        new = bytearray(size)
        new[:self.filled] = memoryview(self.buf)[:self.filled]
        self.buf = new


@contextmanager
def atomic_path(dest: str | os.PathLike, *, keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary sibling path of ``dest``, renamed onto it when the block succeeds.

    ``keep_suffix`` ends the temporary name with ``dest``'s suffix, for writers
    that choose their format by it (dipy's VTK and DPY). On error, and on
    SIGTERM, nothing is left; an ``OSError`` (a full disk...) becomes a
    :class:`~trx_nipype.core.writer.TrxWriteError` naming ``dest``, as the TRX
    writer's do.
    """
    from ..tempfiles import install_sigterm_cleanup, sibling_temp_path
    from ..writer import TrxWriteError

    dest = Path(dest)
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"{dest.parent}: the destination's folder does not exist")
    install_sigterm_cleanup()
    tmp = sibling_temp_path(dest)
    if keep_suffix:
        tmp = tmp.with_name(tmp.name + dest.suffix)  # the sweepable mark stays in the name
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, TrxWriteError):
            raise TrxWriteError(exc.errno, f"{dest}: cannot write: "
                                f"{exc.strerror or exc}") from exc
        raise


@contextmanager
def atomic_output(dest: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A seekable binary file at a temporary sibling, renamed (or gzipped) onto ``dest``.

    Writers may seek back to patch their header. A ``.gz`` destination is
    written uncompressed first and compressed (with a fixed timestamp, so the
    same content gives the same bytes) at the end. Failures as :func:`atomic_path`.
    """
    from ..tempfiles import sibling_temp_path

    with atomic_path(dest) as final:
        if not is_gzip(dest):
            with open(final, "w+b") as fh:
                yield fh
            return
        raw = sibling_temp_path(Path(dest))
        try:
            with open(raw, "w+b") as fh:
                yield fh
            with open(raw, "rb") as src, open(final, "wb") as out, \
                    gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0,
                                  compresslevel=6) as gz:
                while block := src.read(1 << 24):
                    gz.write(block)
        finally:
            raw.unlink(missing_ok=True)


def write_json(data: Any, path: str | os.PathLike, *, indent: int = 2, end: str = "\n",
               allow_nan: bool = True) -> None:
    """Write ``data`` as sorted, indented JSON atomically (:func:`atomic_output`).

    The one JSON writer of the package's outputs (sidecars, summaries, dataset
    descriptions, TRK groups, manifests): the same data gives the same bytes,
    and the file gets the umask's permissions. A file that already holds
    exactly that text is left as it is (a rerun changes nothing, not even a
    timestamp). ``indent`` and ``end`` (what follows the JSON) keep each kind
    of file as it has always been written; ``allow_nan=False`` refuses NaN and
    infinities (``ValueError``), which strict JSON readers cannot read.
    """
    text = (json.dumps(data, indent=indent, sort_keys=True, allow_nan=allow_nan)
            + end).encode("utf-8")
    try:
        if Path(path).read_bytes() == text:
            return
    except OSError:
        pass
    with atomic_output(path) as fh:
        fh.write(text)


def format_names(names: Any) -> str:
    """``'a', 'b'`` for warnings."""
    return ", ".join(repr(n) for n in names)
