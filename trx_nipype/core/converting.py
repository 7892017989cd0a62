"""Convert tractograms between TRX, TRK, TCK, VTK/VTP/FIB and DPY, streaming.

:func:`convert` reads its input as :class:`~trx_nipype.core.formats.Block` s
(whole streamlines in RAS+ mm with their data) and writes them in one pass:

- TRX -> TRX re-encodes through :func:`~trx_nipype.core.save` (dtype change,
  stored/deflated zip, zip/directory) with no in-memory tractogram;
- TRK/TCK -> TRX writes the data once, straight into their places in the
  output, when the input's header and size give the counts
  (:mod:`.blockwrite`); otherwise (a gzipped input, no count in the header, a
  deflated output, streamlines dropped outside the grid) it spools the parsed
  arrays to raw files under the temporary root, then streams them through the
  one TRX writer (memory bounded by the chunk size, plus one integer per
  streamline either way);
- anything -> TRK/TCK streams block by block into the target.

The output format comes from ``out_format`` or the output name: ``.trx`` /
``.zip`` -> TRX zip, ``.trk[.gz]``, ``.tck[.gz]``, ``.vtk``/``.vtp``/``.fib``,
``.dpy``; an existing directory or a name without any suffix -> TRX directory.

What a target cannot hold is reported with :func:`warnings.warn` (a
:class:`~trx_nipype.core.errors.DataLossWarning`) naming each field: data per
vertex/streamline in TCK/VTK/DPY, data per group anywhere but TRX, TRK names
longer than 20 bytes (shortened: a NamingWarning), more than 10 TRK fields, values that float32
(TRK's only type) changes, extra TRX header keys.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .arrays import row_width
from .blockwrite import BlockSource, predicted_counts, write_blocks
from .errors import DataLossWarning, ParameterError, SpaceMismatchError, SpaceWarning, param
from .formats import FORMATS, SPACED_FORMATS, Block, detect_format, format_names
from .loader import load
from .reference import require_same_space, space_from_reference
from .saving import is_zip_path, refuse_saving_over_input, save, trx_members, write_members
from .space import Space
from .tempfiles import make_temp_dir, remove_temp_dir
from .trxfile import TrxFile, group_dtype
from .writer import SizeMismatch, TrxWriteError, check_replaceable

log = logging.getLogger(__name__)

#: vertices per block when reading a TRX input
BLOCK_VERTICES = 1_000_000


@dataclass
class _Input:
    """An opened input: its space, what data it carries, and its blocks."""

    path: str
    fmt: str
    space: Space | None
    blocks: Callable[[], Iterator[Block]]
    nb_streamlines: int | None = None
    dpv: dict[str, int] = field(default_factory=dict)  # key -> ncols
    dps: dict[str, int] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    dpg: list[str] = field(default_factory=list)
    header_extra: list[str] = field(default_factory=list)
    tck_fields: dict[str, str] = field(default_factory=dict)
    trx: TrxFile | None = None
    positions_only: Callable[[], Iterator[Block]] | None = None
    owned: bool = True  # close ``trx`` with the input (False: the caller's TrxFile)
    #: (streamlines, vertices) from the header and the file size (TRK/TCK), if they tell
    predicted: tuple[int, int] | None = None

    def close(self) -> None:
        if self.trx is not None and self.owned:
            self.trx.close()


def _trx_input(trx: TrxFile, path_s: str, *, owned: bool) -> _Input:
    """A loaded TRX (or a view of one: only its streamlines) as a convert input."""
    src = trx.source_arrays()
    return _Input(path_s, "trx", Space.from_affine(trx.affine, trx.dimensions),
                  lambda: _trx_blocks(trx), len(trx), trx=trx,
                  positions_only=lambda: _trx_blocks(trx, data=False),
                  dpv={k: row_width(src.dpv.spec(k)[1][1:]) for k in src.dpv},
                  dps={k: row_width(src.dps.spec(k)[1][1:]) for k in src.dps},
                  groups=sorted(trx.groups),
                  dpg=[f"{g}/{k}" for g in sorted(trx.dpg) for k in trx.dpg[g]],
                  header_extra=sorted(k for k in trx.header if k not in (
                      "VOXEL_TO_RASMM", "DIMENSIONS", "NB_STREAMLINES", "NB_VERTICES")),
                  owned=owned)


def _open_input(path: str | os.PathLike | TrxFile, reference: Any, *, need_space: bool,
                chunk_bytes: int | None = None) -> _Input:
    """Open ``path`` (any format, or a TrxFile) and settle its space against ``reference``."""
    ref_space = space_from_reference(reference) if reference is not None else None
    if isinstance(path, TrxFile):
        inp = _trx_input(path, path.shown_path or "in memory", owned=False)
        return _settle_space(inp, reference, ref_space, need_space)
    path_s = os.fspath(path)
    if not os.path.exists(path_s):
        raise FileNotFoundError(f"{path_s}: no such file or directory")
    fmt = detect_format(path_s)
    kw = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    if fmt == "trx":
        inp = _trx_input(load(path_s), path_s, owned=True)
    elif fmt == "trk":
        from .formats.trk import iter_trk_blocks, read_trk_header
        from .formats.trk_groups import groups_sidecar_for

        info = read_trk_header(path_s)
        sidecar = groups_sidecar_for(info)  # read (and warned about) once, handed on
        props = {k: s.stop - s.start for k, s in info.properties.items()}
        groups: list[str] = []
        if sidecar is not None:
            props.pop(sidecar["property"])
            groups = sorted(sidecar["members"])
        inp = _Input(path_s, fmt, info.space, lambda: iter_trk_blocks(
            path_s, groups=sidecar is not None, sidecar=sidecar, **kw),
                     info.nb_streamlines or None,
                     dpv={k: s.stop - s.start for k, s in info.scalars.items()},
                     dps=props, groups=groups)
    elif fmt == "tck":
        from .formats.tck import iter_tck_blocks, read_tck_header

        info_t = read_tck_header(path_s)
        inp = _Input(path_s, fmt, None, lambda: iter_tck_blocks(path_s, **kw),
                     tck_fields=info_t.fields)
    else:
        from .formats.dipy_formats import read_streamlines, require

        require(fmt, path_s)
        inp = _Input(path_s, fmt, None, lambda: iter([read_streamlines(path_s, fmt)]))
    if fmt in ("trk", "tck"):
        inp.predicted = predicted_counts(path_s)
    return _settle_space(inp, reference, ref_space, need_space)


def _settle_space(inp: _Input, reference: Any, ref_space: Space | None,
                  need_space: bool) -> _Input:
    """The input's space, or the reference's; a mismatch or a missing needed space raises."""
    path_s, fmt = inp.path, inp.fmt
    if inp.space is None:
        inp.space = ref_space
        if inp.space is None and need_space:
            inp.close()
            raise ParameterError(f"{path_s}: .{fmt} files carry no space (affine and "
                                 f"dimensions); give {param('reference')} a NIfTI image, TRK "
                                 "or TRX file of the same space")
    elif ref_space is not None:
        try:
            require_same_space(path_s, inp.space, reference, ref_space)
        except SpaceMismatchError:
            inp.close()
            raise
    return inp


def _trx_blocks(trx: TrxFile, data: bool = True) -> Iterator[Block]:
    """Blocks of a TrxFile (or a view of one), with each chunk's group members (and data)."""
    src = trx.source_arrays()
    masks = {}
    for name, idx in (trx.groups.items() if data else ()):
        m = np.zeros(len(trx), dtype=bool)
        m[np.asarray(idx, dtype=np.int64)] = True
        masks[name] = m
    # bounded preads, not the maps (a map another process truncates kills with SIGBUS)
    positions = src.positions.reader("positions")
    dpv = {k: src.dpv.reader(k) for k in src.dpv} if data else {}
    dps = {k: src.dps.reader(k) for k in src.dps} if data else {}
    try:
        for c in trx.iter_chunks(BLOCK_VERTICES):
            # views of the file's map where its lease is held: each block is written
            # before the next is read (and the lease is let go at the end)
            yield Block(np.asarray(c.lengths, dtype=np.int64),
                        positions.take(c.vertices, view=True),
                        {k: r.take(c.vertices, view=True) for k, r in dpv.items()},
                        {k: r.take(c.streamlines, view=True) for k, r in dps.items()},
                        {g: np.flatnonzero(m[c.streamlines]) for g, m in masks.items()})
    finally:
        for reader in (positions, *dpv.values(), *dps.values()):
            reader.release()
    trx.check_unchanged()


# ---------------------------------------------------------------- bbox check
@dataclass
class _BBox:
    """Counts streamlines outside the reference grid as blocks go by; drops them on request."""

    space: Space | None
    keep: bool
    where: str
    outside: int = 0
    total: int = 0

    def filter(self, blocks: Iterator[Block]) -> Iterator[Block]:
        for block in blocks:
            if self.space is None:
                yield block
                continue
            out = self.space.outside(block.positions, block.lengths)
            self.total += len(block)
            bad = int(out.sum())
            self.outside += bad
            yield block if (self.keep or not bad) else block.select(~out)

    def count(self, positions: np.ndarray, lengths: np.ndarray) -> None:
        """Count the streamlines of a block that leave the grid (nothing dropped)."""
        self.total += len(lengths)
        self.outside += int(self.space.outside(positions, lengths).sum())

    def report(self) -> None:
        if not self.outside:
            return
        fate = f"kept ({param('keep_outside', False)} drops them)" if self.keep else "dropped"
        msg = SpaceWarning(f"{self.where}: {self.outside} of {self.total} streamlines fall "
                           "outside the bounding box of the reference grid "
                           f"{self.space.dimensions.tolist()}; {fate}")
        log.info("%s", msg)
        warnings.warn(msg, category=SpaceWarning, stacklevel=3)


# -------------------------------------------------------------- accumulation
class _Spool:
    """Blocks appended to raw files (or lists), finished as a TrxFile over them."""

    def __init__(self, dpv: dict[str, int], dps: dict[str, int], groups: list[str],
                 on_disk: bool) -> None:
        self.dpv, self.dps, self.group_names = dpv, dps, groups
        self.dir = make_temp_dir("convert") if on_disk else None
        self.lengths: list[np.ndarray] = []
        self.groups: dict[str, list[np.ndarray]] = {g: [] for g in groups}
        self.parts: dict[str, Any] = {}
        self.dtypes: dict[str, np.dtype] = {}
        self.n = 0

    def _put(self, key: str, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr)
        self.dtypes.setdefault(key, arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1
                               else arr.dtype)
        arr = arr.astype(self.dtypes[key], copy=False)
        if self.dir is None:
            self.parts.setdefault(key, []).append(arr)
            return
        if key not in self.parts:
            self.parts[key] = open(self.dir / f"{len(self.parts)}.raw", "wb")  # noqa: SIM115
        self.parts[key].write(memoryview(arr).cast("B") if arr.size else b"")

    def append(self, block: Block) -> None:
        self.lengths.append(np.asarray(block.lengths, dtype=np.int64))
        self._put("positions", block.positions.reshape(-1, 3))
        for k in self.dpv:
            self._put(f"dpv/{k}", block.dpv[k])
        for k in self.dps:
            self._put(f"dps/{k}", block.dps[k])
        for g in self.group_names:
            self.groups[g].append(np.asarray(block.groups.get(g, []), dtype=np.int64) + self.n)
        self.n += len(block)

    def _array(self, key: str, rows: int, ncols: int, default: np.dtype) -> np.ndarray:
        dtype = self.dtypes.get(key, default)
        shape = (rows,) if ncols == 1 and key != "positions" else (rows, ncols)
        part = self.parts.get(key)
        if self.dir is None:
            return (np.concatenate(part).reshape(shape) if part
                    else np.zeros(shape, dtype=dtype))
        if part is None or rows == 0:
            return np.zeros(shape, dtype=dtype)
        part.close()
        return np.memmap(part.name, dtype=dtype, mode="r", shape=shape)

    def finish(self, space: Space) -> TrxFile:
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
        v = int(lengths.sum())
        n = len(lengths)
        f4 = np.dtype("<f4")
        group_dt = group_dtype(n)
        return TrxFile.from_arrays(
            self._array("positions", v, 3, f4), lengths=lengths,
            affine=space.affine, dimensions=space.dimensions,
            dpv={k: self._array(f"dpv/{k}", v, c, f4) for k, c in self.dpv.items()},
            dps={k: self._array(f"dps/{k}", n, c, f4) for k, c in self.dps.items()},
            groups={g: (np.concatenate(p) if p else np.zeros(0)).astype(group_dt)
                    for g, p in self.groups.items()})

    def close(self) -> None:
        for part in self.parts.values():
            if hasattr(part, "close"):
                part.close()
        remove_temp_dir(self.dir)


# ------------------------------------------------------------------ warnings
def _warn_lost(dest: str, what: str, names: list[str], target: str) -> None:
    if names:
        warnings.warn(f"{dest}: {target} cannot hold {what}; dropped {format_names(names)}",
                      category=DataLossWarning, stacklevel=4)


def _report_unrepresentable(inp: _Input, dest: str, out_fmt: str) -> None:
    target = {"trk": "TRK", "tck": "TCK", "vtk": "VTK", "dpy": "DPY"}[out_fmt]
    if out_fmt != "trk":
        _warn_lost(dest, "data per vertex", sorted(inp.dpv), target)
        _warn_lost(dest, "data per streamline", sorted(inp.dps), target)
        _warn_lost(dest, "groups", inp.groups, target)
    _warn_lost(dest, "data per group", inp.dpg, target)
    _warn_lost(dest, "extra header fields", inp.header_extra, target)


# -------------------------------------------------------------------- public
def convert(in_path: str | os.PathLike | TrxFile, out_path: str | os.PathLike,
            reference: Any = None,
            *, out_format: str | None = None, positions_dtype: Any = None,
            offsets_dtype: Any = None, compression: str = "stored", level: int = 6,
            bbox_check: bool = True, keep_outside: bool = True,
            chunk_bytes: int | None = None) -> Path:
    """Convert a tractogram file to another format (or re-encode a TRX file).

    Parameters
    ----------
    in_path : str, os.PathLike or TrxFile
        ``.trx`` zip or TRX directory, ``.trk[.gz]``, ``.tck[.gz]``,
        ``.vtk``/``.vtp``/``.fib`` (needs ``fury``) or ``.dpy``; or a loaded
        :class:`~trx_nipype.core.TrxFile` or a view of one (written as it is,
        not closed).
    out_path : str or os.PathLike
        Destination; its format comes from ``out_format`` or its name:
        ``.trx``/``.zip`` -> TRX zip, ``.trk[.gz]``, ``.tck[.gz]``,
        ``.vtk``/``.vtp``/``.fib``, ``.dpy``; an existing directory or a name
        with no suffix -> TRX directory.
    reference : str, os.PathLike, Space, TrxFile or nibabel image, optional
        NIfTI, TRK or TRX giving the space. Required when the input has no
        space (TCK, VTK, DPY) and the output needs one (TRX, TRK); when the
        input has a space, the reference must agree with it.
    out_format : {"trx", "trk", "tck", "vtk", "dpy"}, optional
        Overrides the guess from ``out_path`` (e.g. ``"trx"`` for a directory
        whose name has a dot).
    positions_dtype, offsets_dtype : dtype, optional
        TRX output encoding (default: float32 positions from TRK/TCK, the
        input's for TRX; uint64 offsets or the input's).
    compression : {"stored", "deflate"}
        TRX zip member compression.
    level : int
        Deflate level.
    bbox_check : bool
        Count the streamlines that leave the reference grid's bounding box
        (dipy's ``is_bbox_in_vox_valid``) and warn when there are any. Skipped
        (logged) when there is no space, or when the grid is 1x1x1 -- what TRK
        writers put in a header when they had no reference image.
    keep_outside : bool
        Keep those streamlines (default) or drop them.
    chunk_bytes : int, optional
        TRK/TCK read size (tests use small values to exercise chunking).

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    TrxFormatError
        If the input is malformed (the message names the file).
    SpaceMismatchError
        (a TrxFormatError) If the input has a space (TRX, TRK) that the
        reference's disagrees with.
    ValueError
        If a needed reference is missing, or a format cannot be told from a name.
    MissingOptionalDependency
        (an ImportError) if VTK/DPY support needs a package that is missing.

    Warns
    -----
    DataLossWarning
        For each field the target cannot hold.
    SpaceWarning
        For streamlines outside the bounding box.
    HeaderWarning, NamingWarning
        For a header that lacks something, a name changed to fit (TRK).
    """
    in_s = in_path.shown_path or "in memory" if isinstance(in_path, TrxFile) else os.fspath(in_path)
    out_s = os.fspath(out_path)
    out_fmt = out_format or detect_format(out_s, for_output=True)
    if out_fmt not in FORMATS:
        raise ValueError(f"out_format must be trx, trk, tck, vtk or dpy; got {out_fmt!r}")
    if out_fmt in ("vtk", "dpy"):
        from .formats.dipy_formats import require

        require(out_fmt, out_s)
    _check_destination(Path(out_s), out_fmt)
    inp = _open_input(in_path if isinstance(in_path, TrxFile) else in_s, reference,
                      need_space=out_fmt in SPACED_FORMATS, chunk_bytes=chunk_bytes)
    try:
        grid = inp.space if bbox_check else None
        if grid is not None and np.all(np.asarray(grid.dimensions) <= 1):
            # TRK headers written without a reference declare a 1x1x1 grid: no volume to
            # check against (dipy would call every streamline invalid)
            log.info("%s: the reference grid is %s, not an image; bounding-box check skipped",
                     in_s, "x".join(str(int(d)) for d in grid.dimensions))
            grid = None
        elif inp.space is None and bbox_check:
            log.info("%s: no reference space; bounding-box check skipped", in_s)
        bbox = _BBox(grid, keep_outside, in_s)
        if out_fmt == "trx":
            result = _to_trx(inp, out_s, bbox, positions_dtype=positions_dtype,
                             offsets_dtype=offsets_dtype, compression=compression, level=level)
        else:
            _report_unrepresentable(inp, out_s, out_fmt)
            lean = out_fmt != "trk" and inp.positions_only is not None
            blocks = bbox.filter((inp.positions_only if lean else inp.blocks)())
            if out_fmt == "trk":
                from .formats.trk import write_trk

                result = write_trk(out_s, inp.space, blocks, dpv=inp.dpv, dps=inp.dps,
                                   group_names=inp.groups,
                                   nb_streamlines=inp.nb_streamlines or 0)
            elif out_fmt == "tck":
                from .formats.tck import write_tck

                result = write_tck(out_s, blocks, fields=inp.tck_fields, source=in_s)
            else:
                from .formats.dipy_formats import write_streamlines

                result = write_streamlines(out_s, out_fmt, blocks)
        bbox.report()
    finally:
        inp.close()
    log.info("converted %s (%s) -> %s (%s)", in_s, inp.fmt, out_s, out_fmt)
    return Path(result)


def _to_trx(inp: _Input, out: str, bbox: _BBox, **save_kw: Any) -> Path:
    if not is_zip_path(out) and Path(out).suffix and not Path(out).is_dir():
        log.info("%s: written as a TRX directory", out)
    if inp.trx is not None:
        trx = inp.trx
        if bbox.space is not None and not bbox.keep:  # what to drop is known before writing
            keep = np.concatenate([~bbox.space.outside(b.positions, b.lengths)
                                   for b in _trx_blocks(trx, data=False)]
                                  or [np.zeros(0, bool)])
            bbox.total, bbox.outside = len(keep), int((~keep).sum())
            if bbox.outside:
                trx = trx.select(np.flatnonzero(keep), keep_empty_groups=True)
            return save(trx, out, **save_kw)
        # counting those outside rides on the pass that writes the positions: one read
        refuse_saving_over_input(trx, out)
        header, members = trx_members(
            trx, positions_dtype=save_kw.get("positions_dtype"),
            offsets_dtype=save_kw.get("offsets_dtype"), dest=out,
            inspect_positions=None if bbox.space is None else bbox.count)
        return write_members(out, header, members, compression=save_kw["compression"],
                             level=save_kw["level"], sources=[trx])
    stored = save_kw["compression"] == "stored" or not is_zip_path(out)
    if inp.predicted is not None and stored and (bbox.keep or bbox.space is None):
        # the counts are known: the data go straight to their place in the output, once
        source = BlockSource(lambda: bbox.filter(inp.blocks()), *inp.predicted, dpv=inp.dpv,
                             dps=inp.dps, groups=inp.groups, label=inp.path)
        try:
            return write_blocks(out, [source], inp.space,
                                positions_dtype=save_kw.get("positions_dtype"),
                                offsets_dtype=save_kw.get("offsets_dtype"))
        except SizeMismatch as exc:
            log.info("%s: the header's counts do not hold (%s); staging the data instead",
                     inp.path, exc)
            bbox.total = bbox.outside = 0
    spool = _Spool(inp.dpv, inp.dps, inp.groups, on_disk=True)
    try:
        for block in bbox.filter(inp.blocks()):
            with _staging(out, spool):
                spool.append(block)
        with _staging(out, spool):
            trx = spool.finish(inp.space)  # flushes the staged files
        with trx:
            return save(trx, out, **save_kw)
    finally:
        spool.close()


def _check_destination(dest: Path, out_fmt: str) -> None:
    """Refuse, before any work, a destination that must not be replaced."""
    if out_fmt != "trx" and dest.is_dir() and not dest.is_symlink():
        raise FileExistsError(f"{dest}: is a folder; a .{out_fmt} output is a file")
    check_replaceable(dest, as_directory=out_fmt == "trx" and not is_zip_path(dest))


@contextmanager
def _staging(out: str, spool: _Spool) -> Iterator[None]:
    """An ``OSError`` while staging (a full temporary root...) names the destination."""
    try:
        yield
    except (FileExistsError, TrxWriteError):
        raise
    except OSError as exc:
        raise TrxWriteError(exc.errno, f"{out}: cannot write: staging the data in "
                            f"{spool.dir} failed: {exc.strerror or exc}") from exc


def load_any(path: str | os.PathLike, reference: Any = None) -> TrxFile:
    """Open any readable tractogram as a :class:`~trx_nipype.core.TrxFile`.

    TRX files and directories are loaded (mapped, read-only); other formats
    are read into memory, in RAS+ mm, with their data per vertex/streamline
    and (TRK with a groups sidecar) groups.

    Parameters
    ----------
    path : str or os.PathLike
    reference : optional
        The space for formats without one (TCK, VTK, DPY); see :func:`convert`.

    Returns
    -------
    TrxFile

    Raises
    ------
    ValueError
        If the format has no space and no reference is given.
    SpaceMismatchError
        (a TrxFormatError) If the file has a space (TRX, TRK) that the
        reference's disagrees with.
    """
    if detect_format(path) == "trx":
        trx = load(path)
        if reference is not None:
            try:
                require_same_space(path, Space.from_affine(trx.affine, trx.dimensions),
                                   reference)
            except BaseException:
                trx.close()
                raise
        return trx
    inp = _open_input(path, reference, need_space=True)
    spool = _Spool(inp.dpv, inp.dps, inp.groups, on_disk=False)
    for block in inp.blocks():
        spool.append(block)
    return spool.finish(inp.space)

