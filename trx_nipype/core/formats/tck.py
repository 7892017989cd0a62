"""MRtrix ``.tck`` (and ``.tck.gz``), read and written in vectorised chunks.

The layout, spelled out once::

    mrtrix tracks\\n                 magic line
    <key>: <value>\\n                ... one per line; a key may repeat
                                     (multi-line values)
    count: <N>\\n                    streamlines (advisory: left stale by
                                     interrupted or third-party writers)
    datatype: Float32LE\\n           Float32LE|Float32BE|Float64LE|Float64BE
    file: . <offset>\\n              data starts <offset> bytes into this file
    END\\n
    <padding up to offset>
    x y z  x y z ...  NaN NaN NaN    one streamline, then a NaN triplet
    ...
    Inf Inf Inf                      end of data

Coordinates are RAS+ millimetres: a TCK file carries no space (affine,
dimensions) of its own, and no data per point or per streamline. As nibabel
does, empty streamlines (two delimiters in a row) are skipped on reading; this
module never writes them (and says so).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import DataLossWarning, HeaderWarning, TrxFormatError
from ..reading import IN_FLIGHT, in_background
from ..space import column_range
from . import (
    FIRST_READ,
    Block,
    ReadBuffer,
    Scratch,
    atomic_output,
    open_input,
    without_empty,
)

log = logging.getLogger(__name__)

MAGIC = b"mrtrix tracks"
DATATYPES = {"Float32LE": "<f4", "Float32BE": ">f4", "Float64LE": "<f8", "Float64BE": ">f8"}
CHUNK_BYTES = 16 * 1024 * 1024
#: one float32 row (x, y, z) as an opaque record
_ROW = np.dtype((np.void, 12))
MAX_HEADER = 1 << 24


@dataclass
class TckInfo:
    """What a TCK header says (``fields`` keeps every key, multi-line values joined)."""

    path: str
    dtype: np.dtype
    offset: int
    count: int | None
    fields: dict[str, str] = field(default_factory=dict)


def read_tck_header(path: str | os.PathLike, fh: IO[bytes] | None = None) -> TckInfo:
    """Read and check a TCK header.

    Raises
    ------
    TrxFormatError
        No magic line, no ``END`` line, an unsupported ``datatype``, a
        ``file`` entry that is not ``. <offset>`` or points before the end of
        the header.
    """
    path = os.fspath(path)
    own = fh is None
    f = open_input(path) if own else fh
    try:
        magic = f.readline(len(MAGIC) + 2)
        if magic.rstrip(b"\r\n") != MAGIC:
            raise TrxFormatError(path, "header", f"expected the magic line {MAGIC!r}, "
                                 f"found {magic[:20]!r}")
        fields: dict[str, list[str]] = {}
        read = len(magic)
        key = None
        while True:
            line = f.readline(MAX_HEADER)
            read += len(line)
            if not line or read > MAX_HEADER:
                raise TrxFormatError(path, "header", "expected an 'END' line closing the "
                                     "header, found the end of the file")
            text = line.decode("utf-8", "replace").strip()
            if text == "END":
                break
            if not text:
                continue
            if ":" in text:
                key, _, value = text.partition(":")
                key = key.strip()
            elif key is None:
                raise TrxFormatError(path, "header", f"expected 'key: value', found {text!r}")
            else:
                value = text
            fields.setdefault(key, []).append(value.strip())
    finally:
        if own:
            f.close()
    flat = {k: "\n".join(v) for k, v in fields.items()}
    dt_name = flat.get("datatype")
    if dt_name is None:
        warnings.warn(f"{path}: no 'datatype' in the TCK header; assuming Float32LE",
                      category=HeaderWarning, stacklevel=3)
        dt_name = "Float32LE"
    if dt_name not in DATATYPES:
        raise TrxFormatError(path, "header", f"datatype: expected one of "
                             f"{', '.join(DATATYPES)}, found {dt_name!r}")
    file_field = flat.get("file")
    if file_field is None:
        warnings.warn(f"{path}: no 'file' in the TCK header; data assumed to follow 'END'",
                      category=HeaderWarning, stacklevel=3)
        offset = read
    else:
        parts = file_field.split()
        if len(parts) != 2 or parts[0] != "." or not parts[1].isdigit():
            raise TrxFormatError(path, "header", f"file: expected '. <offset>' (data in this "
                                 f"file), found {file_field!r}")
        offset = int(parts[1])
        if offset < read:
            raise TrxFormatError(path, "header", f"file: expected a data offset at or after the "
                                 f"header's end ({read}), found {offset}")
    count = flat.get("count")
    try:
        n = int(count) if count is not None else None
    except ValueError:
        raise TrxFormatError(path, "header", f"count: expected an integer, "
                             f"found {count!r}") from None
    return TckInfo(path, np.dtype(DATATYPES[dt_name]), offset, n, flat)


def iter_tck_blocks(path: str | os.PathLike, *, chunk_bytes: int = CHUNK_BYTES
                    ) -> Iterator[Block]:
    """Read a TCK file as :class:`Block` s of whole streamlines (RAS+ mm, float32).

    Raises
    ------
    TrxFormatError
        A malformed header, data that ends without the Inf triplet, or a data
        size that is not a whole number of triplets.
    """
    path = os.fspath(path)
    with open_input(path) as fh:
        info = read_tck_header(path, fh)
        here = fh.tell()
        left = info.offset - here
        while left > 0:  # in bounded reads: the offset may be huge
            skipped = len(fh.read(min(left, FIRST_READ)))
            if not skipped:
                raise TrxFormatError(path, "data", f"file: data offset {info.offset} is past "
                                     "the end of the file")
            left -= skipped
        triplet = 3 * info.dtype.itemsize
        full = max(int(chunk_bytes) // triplet, 1) * triplet
        native = info.dtype == np.dtype("<f4") and np.little_endian
        # one buffer, read into and reused (small files: a small first buffer, grown on
        # full reads); the streamline left incomplete at its end moves to its front
        rb = ReadBuffer(fh, max(FIRST_READ // triplet, 1) * triplet, full)
        total = 0
        ended = False
        while not ended:
            rb.fill()
            buf, filled, eof = rb.buf, rb.filled, rb.eof
            stray = filled % triplet
            rows = np.frombuffer(buf, dtype=info.dtype, count=(filled - stray) //
                                 info.dtype.itemsize).reshape(-1, 3)
            xyz = rows if native else rows.astype(np.float32)
            # rows whose x is NaN or infinite: the candidates for delimiters and the end
            odd = np.flatnonzero(~np.isfinite(xyz[:, 0]))
            stop = _full_rows(xyz, np.isinf, odd)
            if len(stop):
                xyz = xyz[:stop[0]]
                odd = odd[odd < stop[0]]
                ended = True
            elif eof and stray:
                raise TrxFormatError(path, "data", f"truncated: expected whole "
                                     f"{triplet}-byte triplets, found {stray} stray byte(s) "
                                     "at the end")
            elif eof:
                raise TrxFormatError(path, "data", "truncated: expected the end-of-data "
                                     "marker (Inf Inf Inf), found the end of the file")
            delim = _full_rows(xyz, np.isnan, odd)
            if ended and len(xyz) and (not len(delim) or delim[-1] != len(xyz) - 1):
                raise TrxFormatError(path, "data", "truncated: the last streamline has no "
                                     "NaN delimiter before the end-of-data marker")
            if not len(delim):
                # one streamline fills the buffer: past the chunk size, the buffer grows
                # to its end only once that end (a NaN or Inf triplet) has been seen
                del rows, xyz, buf
                if filled == len(rb.buf) and filled >= rb.full:
                    need = _streamline_end(rb, info.dtype)
                    if need is None:
                        raise TrxFormatError(path, "data", f"truncated: a streamline of at "
                                             f"least {filled // triplet} points has no NaN "
                                             "delimiter and the data no end-of-data marker "
                                             "(Inf Inf Inf)")
                    rb.reserve(need, seen=True)
                continue
            lengths = np.diff(delim, prepend=-1) - 1
            nonempty = lengths > 0
            lengths = lengths[nonempty]
            # the points: the body minus its delimiter rows, copied once out of the buffer
            points = np.empty((0, 3), dtype=np.float32)
            if len(lengths):
                keep = np.ones(int(delim[-1]) + 1, dtype=bool)
                keep[delim] = False
                # rows picked as opaque 12-byte records: 2-3x faster than
                # np.compress(axis=0) over (n, 3) floats
                body = np.ascontiguousarray(xyz[:len(keep)]).view(_ROW).reshape(-1)
                points = body[keep].view(np.float32).reshape(-1, 3)
                del keep, body
            used = (int(delim[-1]) + 1) * triplet
            del rows, xyz, buf
            rb.consume(used)
            if len(lengths):
                total += len(lengths)
                yield Block(lengths.astype(np.int64), points)
    if info.count is not None and info.count != total:
        warnings.warn(f"{path}: the header's count ({info.count}) differs from the "
                      f"{total} streamlines the file holds; using the data",
                      category=HeaderWarning, stacklevel=2)


def _streamline_end(rb: ReadBuffer, dtype: np.dtype) -> int | None:
    """Bytes from the buffer's front to the end of the first NaN or Inf triplet past it.

    Reads ahead (bounded, discarded; see :meth:`ReadBuffer.look_ahead`); None when
    the file ends without one.
    """
    triplet = 3 * dtype.itemsize
    carry = bytes(rb.buf[rb.filled - rb.filled % triplet:rb.filled])
    start = rb.filled - len(carry)  # where ``carry`` sits, from the front
    found: int | None = None

    def visit(chunk: memoryview) -> bool:
        nonlocal carry, start, found
        data = carry + bytes(chunk) if carry else chunk
        whole = len(data) - len(data) % triplet
        xyz = np.frombuffer(data, dtype=dtype, count=whole // dtype.itemsize).reshape(-1, 3)
        ends = np.flatnonzero(~np.isfinite(xyz[:, 0]))
        hits = ends[(np.isnan(xyz[ends]).all(axis=1) | np.isinf(xyz[ends]).all(axis=1))]
        if len(hits):
            found = start + (int(hits[0]) + 1) * triplet
            return True
        carry = bytes(data[whole:])
        start += whole
        return False

    return found if rb.look_ahead(visit) else None


def _full_rows(xyz: np.ndarray, test: np.ufunc, rows: np.ndarray | None = None) -> np.ndarray:
    """Rows where ``test`` holds for x, y and z (x checked first: one pass, not three).

    ``rows``: the candidates already known (rows whose x is not finite), in order.
    """
    if rows is None:
        rows = np.flatnonzero(test(xyz[:, 0]))
    return rows[test(xyz[rows]).all(axis=1)] if len(rows) else rows


def _check_finite(block: Block, first: int, source: str | os.PathLike) -> None:
    """Refuse a block with a NaN or infinite coordinate, naming the streamline."""
    if len(block.positions) == 0:
        return
    lo, hi = column_range(np.asarray(block.positions))  # NaN and Inf show in these
    if np.isfinite(lo).all() and np.isfinite(hi).all():
        return
    finite = np.isfinite(block.positions)
    vertex = int(np.flatnonzero(~finite.all(axis=1))[0])
    lengths = np.asarray(block.lengths, dtype=np.int64)
    streamline = int(np.searchsorted(np.cumsum(lengths), vertex, side="right"))
    point = int(vertex - (np.cumsum(lengths)[streamline] - lengths[streamline]))
    raise TrxFormatError(source, "positions", f"streamline {first + streamline} has a "
                         f"non-finite point {np.asarray(block.positions[vertex]).tolist()} "
                         f"(point {point}): TCK cannot hold NaN or Inf coordinates (they are "
                         "its streamline delimiter and end marker); nothing written")


def _header_bytes(count: int, extra: dict[str, str]) -> bytes:
    """Header text whose ``file: . <offset>`` points just past ``END``."""
    lines = [MAGIC.decode(), f"count: {count:010d}", "datatype: Float32LE"]
    for key, value in extra.items():
        if key in ("count", "datatype", "file") or ":" in key:
            continue
        lines.extend(f"{key}: {v}" for v in str(value).split("\n"))
    body = "\n".join(lines) + "\n"
    offset = len(body) + len("file: . \nEND\n")
    while len(str(offset)) + len(body) + len("file: . \nEND\n") != offset:
        offset = len(str(offset)) + len(body) + len("file: . \nEND\n")
    return (body + f"file: . {offset}\nEND\n").encode("utf-8")


def _delimited(block: Block, scratch: Scratch, slot: int = 0) -> np.ndarray:
    """A block's points as TCK rows, each streamline followed by a NaN triplet (float32 LE),
    in ``scratch``'s buffer ``slot`` (valid until the next call with the same ``slot``)."""
    lengths = np.asarray(block.lengths, dtype=np.int64)
    n = len(lengths)
    ends = np.cumsum(lengths)
    out = scratch.array(f"rows{slot}", (int(ends[-1]) + n, 3), "<f4")
    delim = ends + np.arange(n)
    keep = scratch.array("keep", (len(out),), bool)
    keep.fill(True)
    keep[delim] = False
    out[delim] = np.nan
    # rows placed as opaque 12-byte records (2-3x faster than a float (n, 3) scatter);
    # a map of an unaligned member can be viewed so too
    points = np.ascontiguousarray(block.positions, dtype="<f4")
    out.view(_ROW).reshape(-1)[keep] = points.view(_ROW).reshape(-1)
    return out


def write_tck(dest: str | os.PathLike, blocks: Iterable[Block], *,
              fields: dict[str, str] | None = None,
              source: str | os.PathLike | None = None) -> Path:
    """Write blocks (RAS+ mm) to a TCK file (``.tck.gz``: gzipped), atomically.

    Data per point / streamline and groups are not written (the caller warns).
    Empty streamlines cannot be represented (readers skip them): they are left
    out, with a warning.

    Parameters
    ----------
    dest : str or os.PathLike
    blocks : iterable of Block
    fields : dict of str to str, optional
        Extra header keys.
    source : str or os.PathLike, optional
        The file the blocks come from, named in errors.

    Raises
    ------
    TrxFormatError
        A point with a NaN or infinite coordinate (naming ``source`` and the
        streamline): NaN and Inf triplets are TCK's delimiter and end marker,
        so such a file would read back with other streamlines, or not at all.
        Nothing is left at ``dest``.
    """
    dest_s = os.fspath(dest)
    extra = dict(fields or {})
    total = empty = seen = 0
    scratch = Scratch()

    def rows() -> Iterator[np.ndarray]:
        nonlocal total, empty, seen
        for k, block in enumerate(blocks):
            _check_finite(block, seen, source if source is not None else dest_s)
            seen += len(block)
            block, skipped = without_empty(block)
            empty += skipped
            if len(block):
                total += len(block)
                yield _delimited(block, scratch, k % IN_FLIGHT)

    with atomic_output(dest) as fh:
        head = _header_bytes(0, extra)
        fh.write(head)
        # the rows are built in a thread (the blocks read, checked) while this one writes
        with closing(in_background(rows(), depth=IN_FLIGHT - 2, name="trx-tck")) as built:
            for out in built:
                fh.write(memoryview(out).cast("B"))
        fh.write(np.full(3, np.inf, dtype="<f4").tobytes())
        final = _header_bytes(total, extra)
        if len(final) != len(head):  # count is fixed-width: same size unless > 10 digits
            raise OverflowError(f"{dest_s}: {total} streamlines do not fit the count field")
        fh.seek(0)
        fh.write(final)
    if empty:
        warnings.warn(f"{dest_s}: TCK cannot hold empty streamlines; {empty} left out",
                      category=DataLossWarning, stacklevel=2)
    log.info("wrote %s: %d streamlines", dest_s, total)
    return Path(dest)
