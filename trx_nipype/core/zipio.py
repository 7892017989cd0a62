"""Zip records and the compression library behind them.

Compression, decompression and CRC-32 go through ISA-L (the ``isal``
package, python-isal) when it is installed, else through Python's ``zlib``.
Measured on this project's 2-core benchmark machine on tractogram positions:
CRC-32 10-14 GB/s (zlib 1.6), deflate 340-650 MB/s at zlib level 6's ratio
(zlib 26-33 MB/s; 86-94 with the Huffman-only strategy this writer used),
inflate 260-370 MB/s (zlib 130-210). zlib-ng was slower than ISA-L on each of
the three and libdeflate has no streaming interface (a whole member would
have to sit in memory). ``LIBRARY`` says which one is in use. rapidgzip,
which inflates one deflate stream in several threads, did not beat ISA-L on
that machine (2-3 threads: 0.9-1.1x the time of inflating the 1.1 GB
positions member of a trx-python file alone, 1.7x the time and 2.3x the peak
memory of loading that file and reading its positions) and is not used.

Deflated members are written as independent blocks of :data:`DEFLATE_BLOCK`
input bytes, each compressed by a fresh compressor and ended with a sync
flush, and closed by an empty final block: one standard deflate stream that
every zip reader inflates, whose blocks two threads compress at once. The
blocks are cut from the member's bytes, not from how they arrive, so the same
content gives the same bytes (with the same library: ISA-L and zlib compress
differently).

The record layout (local headers, central directory, end records) is that of
Python's :mod:`zipfile` for the same entries, so that stored outputs keep the
bytes they had when :mod:`zipfile` wrote them.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

try:
    from isal import isal_zlib as _lib

    LIBRARY = "isal"
except ImportError:  # no ISA-L wheel for this platform: the standard library
    _lib = zlib
    LIBRARY = "zlib"

#: input bytes per independently compressed deflate block
DEFLATE_BLOCK = 2 << 20
#: threads compressing deflate blocks (the benchmark machine has 2 cores)
DEFLATE_THREADS = max(1, min(2, os.cpu_count() or 1))
STORED, DEFLATED = 0, 8
ZIP64_LIMIT = (1 << 31) - 1  # zipfile's: sizes and offsets past it need zip64
_FILECOUNT_LIMIT = 0xFFFF
_EMPTY_FINAL_BLOCK = b"\x03\x00"  # BFINAL=1, fixed Huffman, end of block
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_LOCATOR = struct.Struct("<4sLQL")
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01: fixed, so that bytes depend on content only
_DOS_TIME = 0
_ATTRIBUTES = 0o100644 << 16  # a regular file, rw-r--r--
_UNIX = 3


def crc32(data: bytes | memoryview, value: int = 0) -> int:
    """CRC-32 of ``data`` continuing from ``value`` (the zip checksum)."""
    return _lib.crc32(data, value)


#: ``crc32_combine(crc_a, crc_b, len_b)``: the CRC of ``a + b`` from the parts' (ISA-L has
#: it; Python's zlib does not, and callers then read the data instead)
crc32_combine = getattr(_lib, "crc32_combine", None)


# ------------------------------------------------------------------ records
@dataclass
class Entry:
    """One member of a zip being written: what its local and central records hold."""

    name: str
    method: int
    header_offset: int
    file_size: int
    compress_size: int = 0
    crc: int = 0
    extra: bytes = b""
    zip64: bool = False  # the local header carries a zip64 extra (decided before writing)

    def _name_flags(self) -> tuple[bytes, int]:
        try:
            return self.name.encode("ascii"), 0
        except UnicodeEncodeError:
            return self.name.encode("utf-8"), 0x800

    @property
    def version(self) -> int:
        """The version needed to extract (zip64: 4.5, else 2.0), as zipfile writes it."""
        return 45 if self.zip64 else 20

    def local_header(self) -> bytes:
        """The local file header (as ``zipfile.ZipInfo.FileHeader`` writes it)."""
        extra, csize, fsize = self.extra, self.compress_size, self.file_size
        if self.zip64:
            extra = extra + struct.pack("<HHQQ", 1, 16, fsize, csize)
            csize = fsize = 0xFFFFFFFF
        name, flags = self._name_flags()
        return _LOCAL.pack(b"PK\x03\x04", self.version, 0, flags, self.method, _DOS_TIME,
                           _DOS_DATE, self.crc, csize, fsize, len(name), len(extra)) \
            + name + extra

    def local_header_size(self) -> int:
        """Bytes of :meth:`local_header` (known before sizes and CRC are)."""
        return _LOCAL.size + len(self._name_flags()[0]) + len(self.extra) + \
            (20 if self.zip64 else 0)

    def central_record(self) -> bytes:
        """The central directory record (as ``zipfile`` writes it on close)."""
        zip64: list[int] = []
        fsize, csize, offset = self.file_size, self.compress_size, self.header_offset
        if fsize > ZIP64_LIMIT or csize > ZIP64_LIMIT:
            zip64 += [fsize, csize]
            fsize = csize = 0xFFFFFFFF
        if offset > ZIP64_LIMIT:
            zip64.append(offset)
            offset = 0xFFFFFFFF
        extra = self.extra
        version = self.version
        if zip64:
            extra = struct.pack(f"<HH{len(zip64)}Q", 1, 8 * len(zip64), *zip64) + extra
            version = 45
        name, flags = self._name_flags()
        return _CENTRAL.pack(b"PK\x01\x02", version, _UNIX, version, 0, flags, self.method,
                             _DOS_TIME, _DOS_DATE, self.crc, csize, fsize, len(name),
                             len(extra), 0, 0, 0, _ATTRIBUTES, offset) + name + extra


def end_records(entries: list[Entry], start: int, size: int) -> bytes:
    """The end of central directory record (and the zip64 ones when needed)."""
    count = len(entries)
    out = b""
    if count > _FILECOUNT_LIMIT or start > ZIP64_LIMIT or size > ZIP64_LIMIT:
        out += _END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, start)
        out += _END64_LOCATOR.pack(b"PK\x06\x07", 0, start + size, 1)
        count, size, start = min(count, 0xFFFF), min(size, 0xFFFFFFFF), \
            min(start, 0xFFFFFFFF)
    return out + _END.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0)


def needs_zip64(nbytes: int) -> bool:
    """Whether a member of ``nbytes`` gets a zip64 local header (zipfile's rule)."""
    return nbytes * 1.05 > ZIP64_LIMIT


# ------------------------------------------------------------------ deflate
def _compressor(level: int, float_member: bool) -> object:
    """A raw-deflate compressor for one block.

    ISA-L: levels 1-3 of zlib's scale map to ISA-L level 1, 4-6 to 2, 7-9 to
    3; float members (no repeated strings in their mantissas) always get level
    1, which gives them the same size. zlib: the given level, Huffman-only for
    float members (3-4x faster than matching, the same size). Level 0 stores.
    """
    if level == 0 or _lib is zlib:
        strategy = zlib.Z_HUFFMAN_ONLY if float_member and level else zlib.Z_DEFAULT_STRATEGY
        return zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy)
    isal_level = 1 if float_member else min(3, (level + 2) // 3)
    return _lib.compressobj(isal_level, _lib.DEFLATED, -15)


def _deflate_block(block: memoryview, level: int, float_member: bool) -> bytes:
    comp = _compressor(level, float_member)
    return comp.compress(block) + comp.flush(zlib.Z_SYNC_FLUSH)


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(DEFLATE_THREADS, thread_name_prefix="trx-deflate")
        return _POOL


def deflate(chunks: Iterable[memoryview], level: int, float_member: bool
            ) -> Iterator[bytes]:
    """Raw deflate of a byte stream, as independent blocks compressed in parallel.

    Yields the compressed bytes in order. The stream is cut into blocks of
    :data:`DEFLATE_BLOCK` bytes wherever its chunks start and end (the bytes
    of a block left over at the end of a chunk are copied); the blocks of one
    chunk are compressed before the next chunk is asked for, so a caller may
    refill the buffer it hands in, and memory stays at one chunk plus its
    compressed blocks.
    """
    pool = _pool() if DEFLATE_THREADS > 1 else None
    pending = bytearray()

    def run(blocks: list[memoryview]) -> Iterator[bytes]:
        if pool is None or len(blocks) == 1:
            for block in blocks:
                yield _deflate_block(block, level, float_member)
            return
        futures = [pool.submit(_deflate_block, b, level, float_member) for b in blocks]
        for fut in futures:
            yield fut.result()

    size = DEFLATE_BLOCK
    for view in chunks:
        blocks = []
        if pending:
            take = min(size - len(pending), view.nbytes)
            pending += view[:take]
            view = view[take:]
            if len(pending) < size:
                continue
            blocks.append(memoryview(bytes(pending)))
            pending = bytearray()
        whole = view.nbytes - view.nbytes % size
        blocks += [view[start:start + size] for start in range(0, whole, size)]
        if whole < view.nbytes:
            pending += view[whole:]
        yield from run(blocks)
    if pending:
        yield from run([memoryview(bytes(pending))])
    yield _EMPTY_FINAL_BLOCK


def inflater() -> object:
    """A raw-inflate decompressor (``decompress(data, max_length)``, ``unconsumed_tail``)."""
    return _lib.decompressobj(-15)


#: what the inflater raises on corrupt data
INFLATE_ERRORS: tuple[type[BaseException], ...] = (zlib.error, _lib.error)
