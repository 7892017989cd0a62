"""Saving a :class:`TrxFile` (or a view of one): members streamed chunk by chunk.

Member order is fixed (``header.json``, offsets, positions, then dps, dpv,
groups and dpg sorted by name) so that the same content always gives the same
bytes. Members are read through :mod:`.reading` (bounded ``pread`` s that
notice an input changing, never its maps): a member written unchanged is
copied whole (by the kernel where it can), a view's rows are gathered one
chunk of streamlines at a time, reading only the runs of the file it needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import zipio
from .arrays import row_width
from .dtypes import (
    DTYPES,
    OFFSET_DTYPES,
    POSITION_DTYPES,
    check_dtype,
    check_key,
    dtype_name,
    format_member_name,
)
from .header import dump_header
from .trxfile import TrxFile
from .writer import TrxWriter, same_file


@dataclass
class MemberStream:
    """One member to write: its name, its size, and a way to produce its chunks.

    ``copy``, when given, makes the readers whose bytes, one after the other,
    *are* the member (inputs' members written unchanged): the writer then
    copies them whole.
    """

    name: str
    nbytes: int
    chunks: Callable[[], Iterator[np.ndarray]]
    copy: Callable[[], Any] | None = None


def is_zip_path(path: str | os.PathLike) -> bool:
    """``.trx`` and ``.zip`` paths are zips; anything else is a directory."""
    return Path(path).suffix.lower() in (".trx", ".zip")


def offsets_chunks(lengths_chunks: Iterator[np.ndarray], dtype: np.dtype) -> Iterator[np.ndarray]:
    """N+1 offsets from chunks of lengths: a running cumulative sum."""
    yield np.zeros(1, dtype=dtype)
    base = 0
    for lens in lengths_chunks:
        if len(lens) == 0:
            continue
        ends = np.cumsum(lens, dtype=np.int64) + base
        base = int(ends[-1])
        yield ends.astype(dtype)


def check_offsets_dtype(dtype: np.dtype, nb_vertices: int, dest: Any) -> None:
    """uint32 offsets cannot index more than 2**32 - 1 vertices."""
    if nb_vertices > np.iinfo(dtype).max:
        raise OverflowError(f"{dest}: {nb_vertices} vertices do not fit {dtype_name(dtype)} "
                            "offsets; use uint64 offsets")


def length_blocks(trx: TrxFile, block: int = 1 << 20) -> Iterator[np.ndarray]:
    """``trx.lengths`` in blocks (for :func:`offsets_chunks`)."""
    lengths = trx.lengths
    for a in range(0, len(lengths), block):
        yield lengths[a:a + block]


def row_chunks(trx: TrxFile, reader: Any, dtype: np.dtype, *, per_vertex: bool,
               chunk_vertices: int | None = None,
               inspect: Callable[[np.ndarray, np.ndarray], None] | None = None
               ) -> Iterator[np.ndarray]:
    """The rows of a *source* array of ``trx`` that ``trx`` holds, chunk by chunk.

    ``reader`` reads the source array (``LazyArrays.reader``: ``pread`` s of
    its file, or the array in memory). ``per_vertex`` picks vertex rows
    (positions, dpv) or streamline rows (dps). Runs of rows are read whole, a
    view's scattered streamlines copied run by run (``reader.gather_runs``: no
    vertex index). Each chunk may be a view of one buffer refilled for the
    next: consume it before asking for the next one. ``inspect(rows, lengths)``,
    when given, sees each chunk of whole streamlines as read (e.g. a
    bounding-box count riding on the same pass).
    """
    buf = None
    starts_of = np.asarray(trx.source_arrays().offsets)[:-1]
    try:
        if per_vertex and hasattr(reader, "prefetch"):
            prefetch_dense(trx, reader, starts_of)
        for c in trx.iter_chunks(chunk_vertices, vertices=False):
            rows = c.vertices if per_vertex else c.streamlines
            if rows is None:  # scattered streamlines of a view: their vertices, run by run
                block = reader.gather_runs(starts_of[c.streamlines], c.lengths, out=buf)
            else:
                block = reader.take(rows, out=buf, view=True)
            if block.flags.owndata and (buf is None or len(block) > len(buf)):
                buf = block  # a buffer of ours (not a view of the file's map): reuse it
            if inspect is not None:
                inspect(block, c.lengths)
            yield block.astype(dtype, copy=False)
    finally:
        reader.release()


#: a selection whose streamlines are at most this far apart on average (bytes of a
#: per-vertex member) touches most of its pages: they are mapped ahead of the gather
DENSE_BYTES = 64 << 10
#: nor is it worth a thread below this many bytes of the member
PREFETCH_MIN_BYTES = 8 << 20


def prefetch_dense(trx: TrxFile, reader: Any, starts_of: np.ndarray) -> None:
    """Have ``reader`` map ahead (``MemberReader.prefetch``) the span of a view's streamlines
    in a per-vertex member, when they are dense enough in it to touch most of its pages."""
    rows = trx.source_rows()
    if rows is None or not len(rows):
        return
    starts = np.asarray(starts_of[rows], dtype=np.int64)
    lo = int(starts.min())
    hi = int((starts + trx.lengths).max())
    span = (hi - lo) * reader.row_bytes
    if span >= PREFETCH_MIN_BYTES and span <= len(rows) * DENSE_BYTES:
        reader.prefetch(lo, hi)


def trx_members(trx: TrxFile, *, positions_dtype: Any = None, offsets_dtype: Any = None,
                dest: Any = "output", chunk_vertices: int | None = None,
                inspect_positions: Callable[[np.ndarray, np.ndarray], None] | None = None
                ) -> tuple[dict[str, Any], list[MemberStream]]:
    """The header and the member streams that write ``trx``.

    ``inspect_positions(positions, lengths)`` sees the positions of each chunk
    of whole streamlines as they are written (the member is then streamed, not
    copied whole).
    """
    src = trx.source_arrays()
    n, v = len(trx), trx.nb_vertices
    pos_dt = src.positions_dtype if positions_dtype is None else \
        check_dtype(positions_dtype, POSITION_DTYPES, "positions")
    off_default = src.offsets_dtype if src.offsets_dtype.name in OFFSET_DTYPES else \
        DTYPES["uint64"]
    if offsets_dtype is None and v > np.iinfo(off_default).max:
        off_default = DTYPES["uint64"]
    off_dt = off_default if offsets_dtype is None else \
        check_dtype(offsets_dtype, OFFSET_DTYPES, "offsets")
    check_offsets_dtype(off_dt, v, dest)

    def stream(name: str, nbytes: int, table: Any, key: str, dtype: np.dtype,
               per_vertex: bool, inspect: Callable | None = None) -> MemberStream:
        def chunks() -> Iterator[np.ndarray]:
            return row_chunks(trx, table.reader(key), dtype, per_vertex=per_vertex,
                              chunk_vertices=chunk_vertices, inspect=inspect)

        def inspected() -> list[Any] | None:
            # the member unchanged, but looked at: the writer has the kernel copy it while
            # one read pass (``scan``) inspects it and gives its CRC
            reader = table.reader(key)
            if reader.file is None:
                return None  # in memory: streamed (and inspected) by chunks()

            def scan() -> int:
                crc = 0
                for block in chunks():
                    crc = zipio.crc32(np.ascontiguousarray(block).reshape(-1).view(np.uint8),
                                      crc)
                return crc
            reader.scan = scan
            return [reader]

        same = not trx.is_view and table.spec(key)[0] == dtype
        copy = None if not same else inspected if inspect is not None else \
            (lambda: [table.reader(key)])
        return MemberStream(name, nbytes, chunks, copy)

    members = [
        MemberStream(f"offsets.{dtype_name(off_dt)}", (n + 1) * off_dt.itemsize,
                     lambda: offsets_chunks(length_blocks(trx), off_dt)),
        stream(f"positions.3.{dtype_name(pos_dt)}", v * 3 * pos_dt.itemsize, src.positions,
               "positions", pos_dt, True, inspect_positions),
    ]
    for folder, table, rows, per_vertex in (("dps", src.dps, n, False),
                                            ("dpv", src.dpv, v, True)):
        for key in sorted(table):
            dtype, shape = table.spec(key)
            dtype = DTYPES[dtype_name(dtype)]
            out_shape = (rows, *shape[1:])
            members.append(stream(f"{folder}/{format_member_name(key, out_shape, dtype)}",
                                  rows * row_width(shape[1:]) * dtype.itemsize, table, key,
                                  dtype, per_vertex))
    members.extend(small_members("groups", trx.groups))
    for group in sorted(trx.dpg):
        check_key(group)
        members.extend(small_members(f"dpg/{group}", trx.dpg[group], per_group=True))
    header = trx.header
    return header, members


def small_members(folder: str, arrays: Mapping[str, np.ndarray], *, per_group: bool = False
                  ) -> list[MemberStream]:
    """Members written whole (groups, dpg): little-endian, sorted by name.

    Parameters
    ----------
    folder : str
        ``groups`` or ``dpg/<group>``.
    arrays : mapping of str to ndarray
        The arrays to write.
    per_group : bool
        Data per group: a vector of k > 1 values (or a single row) is named
        ``<name>.<k>.<dtype>``, as other TRX readers expect (one row of k columns).

    Returns
    -------
    list of MemberStream
    """
    out = []
    for key in sorted(arrays):
        arr = np.asarray(arrays[key])
        arr = arr.astype(DTYPES[dtype_name(arr.dtype)], copy=False)
        shape = arr.shape
        if per_group and arr.ndim == 2 and shape[0] == 1:
            arr = arr.reshape(-1)
            shape = arr.shape
        if per_group and arr.ndim == 1 and arr.size > 1:
            shape = (1, arr.size)
        out.append(MemberStream(f"{folder}/{format_member_name(key, shape, arr.dtype)}",
                                arr.nbytes, lambda a=arr: iter([a])))
    return out


def write_members(path: str | os.PathLike, header: Mapping[str, Any],
                  members: list[MemberStream], *, compression: str = "stored",
                  level: int = 6, fsync: bool = False, sources: Sequence[Any] = ()) -> Path:
    """Write a header and member streams to ``path`` atomically (the one writer path).

    ``sources`` (objects with ``check_unchanged()``: the input ``TrxFile`` s)
    are checked before the output is renamed into place.
    """
    with TrxWriter(path, zip=is_zip_path(path), compression=compression, level=level,
                   fsync=fsync, sources=sources) as writer:
        writer.add_bytes("header.json", dump_header(header))
        for m in members:
            readers = m.copy() if m.copy is not None else None
            if readers and all(r.file is not None for r in readers) and \
                    sum(r.nbytes for r in readers) == m.nbytes:
                writer.add_copy(m.name, readers)  # inputs' members, unchanged
            else:
                writer.add(m.name, m.chunks(), m.nbytes)
    return Path(path)


def save(trx: TrxFile, path: str | os.PathLike, compression: str = "stored",
         positions_dtype: Any = None, offsets_dtype: Any = None, *, level: int = 6,
         fsync: bool = False) -> Path:
    """Write ``trx`` (a file or a view) to ``path``.

    ``.trx`` (or ``.zip``) paths become zips, other paths directories. The data
    is streamed member by member in bounded memory, into a temporary sibling
    renamed into place at the end: a reader never sees a partial file and a
    failure leaves the destination as it was. N+1 offsets are written. The same
    content gives the same bytes.

    Parameters
    ----------
    trx : TrxFile
        What to write; a view writes only its selection.
    path : str or os.PathLike
        Destination.
    compression : {"stored", "deflate"}
        Zip member compression (ignored for directories).
    positions_dtype, offsets_dtype : dtype, optional
        Re-encode positions (float16/32/64) or offsets (uint32/64).
    level : int
        Deflate level.
    fsync : bool
        Flush to stable storage before the final rename.

    Returns
    -------
    pathlib.Path
        The destination.

    Raises
    ------
    OverflowError
        If uint32 offsets cannot hold the vertex count.
    trx_nipype.core.writer.TrxWriteError
        If the destination cannot be written (it is then left as it was).
    """
    refuse_saving_over_input(trx, path)
    header, members = trx_members(trx, positions_dtype=positions_dtype,
                                  offsets_dtype=offsets_dtype, dest=path)
    return write_members(path, header, members, compression=compression, level=level,
                         fsync=fsync, sources=[trx])


def refuse_saving_over_input(trx: TrxFile, path: str | os.PathLike) -> None:
    """Raise ``ValueError`` if ``path`` is the file ``trx`` is read from."""
    if trx.path is not None and same_file(trx.path, path):
        raise ValueError(f"{path}: cannot save a tractogram over the file it is read from")

