"""The one way TRX data reaches disk: a streaming, atomic, deterministic writer.

A :class:`TrxWriter` takes members one at a time, each as an iterator of array
chunks whose total size is known in advance, and writes them

- into a zip (stored: each member's data aligned to 64 bytes through a padding
  extra field, so that readers can map it in place; or deflated), or
- into a directory, one file per member,

at a temporary sibling of the destination, renamed into place by
:meth:`TrxWriter.commit`. Readers never see a partial file; on any error (or
``abort()``) the temporary output is removed and the destination is left as it
was. Zip entries carry a fixed timestamp and attributes, so the same content
gives the same bytes.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import numpy as np

from .tempfiles import install_sigterm_cleanup, sibling_temp_path

log = logging.getLogger(__name__)

ALIGNMENT = 64
_PAD_ID = 0xD935  # the "alignment" extra field id used by Android's zipalign
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_DEFLATE_SLICE = 4 * 1024 * 1024  # bytes given to the compressor at a time
_COMPRESSION = {"stored": zipfile.ZIP_STORED, "deflate": zipfile.ZIP_DEFLATED,
                "deflated": zipfile.ZIP_DEFLATED}


def _is_float_member(name: str) -> bool:
    """Positions, dps/dpv/dpg of a float dtype: ``....float16|32|64``."""
    return name.rsplit(".", 1)[-1] in ("float16", "float32", "float64")


def _float_compressor(level: int) -> zlib._Compress:
    """A raw deflate compressor for float arrays: Huffman coding only.

    Float mantissas hold almost no repeated strings, so deflate's match search
    is wasted there: on tractogram positions and data per vertex, Huffman-only
    gives the same size (0.93 vs 0.93 of positions, 0.88 vs 0.88 of a dpv) at
    3-4x the speed of the default strategy. The output is ordinary deflate that
    every zip reader inflates; integer members (offsets, groups), which do
    repeat, keep the default strategy.
    """
    return zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_HUFFMAN_ONLY)


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


class TrxWriteError(OSError):
    """Writing failed (disk full, permissions...): names the destination; nothing was left."""


def _as_bytes(chunk: np.ndarray | bytes) -> memoryview:
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return memoryview(chunk).cast("B")
    arr = np.ascontiguousarray(chunk)
    return memoryview(arr).cast("B") if arr.size else memoryview(b"")


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
        Deflate level (1-9).
    fsync : bool
        Flush to stable storage before the rename (slower; for power loss).

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
                 compression: str = "stored", level: int = 6, fsync: bool = False) -> None:
        if compression not in _COMPRESSION:
            raise ValueError(f"compression must be 'stored' or 'deflate', got {compression!r}")
        self.dest = Path(dest)
        self.is_zip = zip
        self.compress_type = _COMPRESSION[compression]
        self.level = level
        self.fsync = fsync
        self.tmp = sibling_temp_path(self.dest)
        install_sigterm_cleanup()
        self._names: set[str] = set()
        self._zf: zipfile.ZipFile | None = None
        self._done = False
        check_replaceable(self.dest, as_directory=not zip)  # before anything is written
        try:
            if not self.dest.parent.is_dir():
                raise FileNotFoundError(f"{self.dest.parent}: the destination's folder "
                                        "does not exist")
            if zip:
                self._zf = zipfile.ZipFile(self.tmp, "w", allowZip64=True)
            else:
                self.tmp.mkdir()
        except OSError as exc:
            self._fail(exc)

    # ---------------------------------------------------------------- members
    def add_bytes(self, name: str, data: bytes) -> None:
        """A small member written whole (``header.json``)."""
        self.add(name, [data], len(data))

    def add(self, name: str, chunks: Iterable[np.ndarray | bytes], nbytes: int) -> None:
        """Stream one member from ``chunks`` whose sizes add up to ``nbytes``."""
        if name in self._names:
            raise ValueError(f"{self.dest}: member {name} written twice")
        self._names.add(name)
        if nbytes >= PROGRESS_BYTES:
            chunks = _with_progress(chunks, nbytes, f"{self.dest.name}: {name}")
        try:
            written = self._write_zip(name, chunks, nbytes) if self.is_zip else \
                self._write_file(name, chunks)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
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

    def _write_zip(self, name: str, chunks: Iterable[np.ndarray | bytes], nbytes: int) -> int:
        zf = self._zf
        info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
        info.external_attr = 0o100644 << 16
        info.create_system = 3
        info.compress_type = self.compress_type
        info.file_size = nbytes
        if self.compress_type == zipfile.ZIP_DEFLATED:
            # the slot is "compress_level" since Python 3.13, "_compresslevel" before
            slot = "compress_level" if hasattr(info, "compress_level") else "_compresslevel"
            setattr(info, slot, self.level)
        else:
            info.extra = self._padding(zf.fp.tell(), name, nbytes)
        written = 0
        with zf.open(info, "w") as dst:
            if self.compress_type == zipfile.ZIP_DEFLATED and _is_float_member(name) \
                    and hasattr(dst, "_compressor"):
                dst._compressor = _float_compressor(self.level)
            deflated = self.compress_type == zipfile.ZIP_DEFLATED
            for chunk in chunks:
                view = _as_bytes(chunk)
                # deflate in slices: compress() returns its whole output at once
                step = _DEFLATE_SLICE if deflated else max(view.nbytes, 1)
                for start in range(0, view.nbytes, step):
                    dst.write(view[start:start + step])
                written += view.nbytes
        return written

    @staticmethod
    def _padding(header_offset: int, name: str, nbytes: int) -> bytes:
        """An extra field that puts member data on an ``ALIGNMENT`` boundary."""
        zip64 = nbytes * 1.05 > zipfile.ZIP64_LIMIT
        fixed = 30 + len(name.encode("utf-8")) + (20 if zip64 else 0) + 6
        pad = (-(header_offset + fixed)) % ALIGNMENT
        return struct.pack("<HHH", _PAD_ID, 2 + pad, ALIGNMENT) + b"\x00" * pad

    # --------------------------------------------------------------- lifetime
    def commit(self) -> Path:
        """Finish the output and rename it over the destination."""
        if self._done:
            raise RuntimeError(f"{self.dest}: writer already finished")
        try:
            if self._zf is not None:
                self._zf.close()
                if self.fsync:
                    with open(self.tmp, "rb+") as fh:
                        os.fsync(fh.fileno())
            check_replaceable(self.dest, as_directory=not self.is_zip)
            _replace(self.tmp, self.dest)
        except FileExistsError:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            self._fail(exc)
        self._done = True
        log.debug("wrote %s", self.dest)
        return self.dest

    def abort(self) -> None:
        """Remove the temporary output; the destination is untouched."""
        if self._done:
            return
        self._done = True
        if self._zf is not None:
            fp, self._zf.fp = self._zf.fp, None  # ZipFile.close() is then a no-op
            try:
                if fp is not None:
                    fp.close()
            except OSError:
                pass
            self._zf = None
        if self.tmp.is_dir() and not self.tmp.is_symlink():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            try:
                self.tmp.unlink()
            except FileNotFoundError:
                pass

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


def _replace(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` over ``dest``; a directory destination is swapped via a trash sibling."""
    if dest.is_dir() and not dest.is_symlink():
        trash = sibling_temp_path(dest)
        os.rename(dest, trash)
        try:
            os.rename(tmp, dest)
        except OSError:
            os.rename(trash, dest)
            raise
        shutil.rmtree(trash, ignore_errors=True)
    elif tmp.is_dir() and dest.exists():
        trash = sibling_temp_path(dest)
        os.rename(dest, trash)
        os.rename(tmp, dest)
        trash.unlink()
    else:
        os.replace(tmp, dest)

