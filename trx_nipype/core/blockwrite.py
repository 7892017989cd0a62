"""Streamlines read block by block (TRK, TCK...) written into a TRX once.

A TRX holds ``header.json`` and the offsets *before* the positions, and both
depend on counts that a TRK or TCK reveals only once read to the end. When the
counts are known in advance -- :func:`predicted_counts` takes them from the
file's header and size, with no pass over the records -- :func:`write_blocks`
lays the output out first (:meth:`~trx_nipype.core.writer.TrxWriter.reserve`)
and writes each block's positions, data per vertex and data per streamline
straight into their final places: the data are written once, in one pass over
the input, with the same bytes as writing a loaded tractogram would give
(offsets and groups, a few bytes per streamline, follow from memory). When the
blocks do not deliver the counts announced (a header that lies), it raises
:class:`~trx_nipype.core.writer.SizeMismatch` and leaves nothing: the caller
then stages the data and writes it in a second pass (``convert`` does).

Several sources are written one after the other into one TRX (a subject's
bundles assembled into one file): their groups are kept, re-indexed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .dtypes import DTYPES, OFFSET_DTYPES, POSITION_DTYPES, dtype_name, format_member_name
from .formats import Block, is_gzip
from .header import dump_header
from .reading import in_background
from .saving import check_offsets_dtype, is_zip_path, offsets_chunks, small_members
from .space import Space
from .trxfile import group_dtype
from .writer import SizeMismatch, TrxWriter

log = logging.getLogger(__name__)

_F4 = np.dtype("<f4")


@dataclass
class BlockSource:
    """One input read as blocks, with the counts it will deliver.

    Attributes
    ----------
    blocks : callable
        Makes a fresh iterator of :class:`~trx_nipype.core.formats.Block` s.
    nb_streamlines, nb_vertices : int
        What the blocks will add up to (:func:`predicted_counts`).
    dpv, dps : dict of str to int
        Keys of data per vertex / per streamline and their number of columns
        (float32 values, as TRK carries them).
    groups : list of str
        Group names the blocks carry (``Block.groups``, indices local to each block).
    label : str
        For messages.
    """

    blocks: Callable[[], Iterator[Block]]
    nb_streamlines: int
    nb_vertices: int
    dpv: dict[str, int] = field(default_factory=dict)
    dps: dict[str, int] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    label: str = "input"


def predicted_counts(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(streamlines, vertices)`` of an uncompressed TRK or TCK from its header and size.

    TRK: ``n_count`` streamlines, each record ``4 + 4 * (3 + scalars) * points
    + 4 * properties`` bytes after the 1000-byte header. TCK: ``count``
    streamlines, each followed by a delimiter row, and an end row. None when
    the header does not say (``n_count`` 0, no ``count``), the file is
    gzipped, or the sizes do not fit: the counts must then be found by reading.
    A header that lies is found out while writing (``SizeMismatch``).
    """
    from .formats import detect_format

    path = os.fspath(path)
    if is_gzip(path):
        return None
    fmt = detect_format(path)
    size = os.path.getsize(path)
    if fmt == "trk":
        from .formats.trk import read_trk_header

        info = read_trk_header(path)
        n = info.nb_streamlines
        if n <= 0:
            return None
        body = size - 1000 - 4 * n * (1 + info.nb_properties)
        per_point = 4 * (3 + info.nb_scalars)
        if body < 0 or body % per_point:
            return None
        return n, body // per_point
    if fmt == "tck":
        from .formats.tck import read_tck_header

        tinfo = read_tck_header(path)
        row = 3 * tinfo.dtype.itemsize
        if tinfo.count is None or (size - tinfo.offset) % row:
            return None
        rows = (size - tinfo.offset) // row
        v = rows - tinfo.count - 1
        return (tinfo.count, v) if v >= 0 else None
    return None


def _header(space: Space, n: int, v: int) -> bytes:
    return dump_header({"VOXEL_TO_RASMM": space.affine, "DIMENSIONS": space.dimensions,
                        "NB_STREAMLINES": n, "NB_VERTICES": v})


def _shape(rows: int, ncols: int) -> tuple[int, ...]:
    return (rows,) if ncols == 1 else (rows, ncols)


def write_blocks(out: str | os.PathLike, sources: Sequence[BlockSource], space: Space, *,
                 positions_dtype: Any = None, offsets_dtype: Any = None, fsync: bool = False,
                 check: Sequence[Any] = ()) -> Path:
    """Write the blocks of ``sources``, one after the other, into the TRX ``out``, once.

    Parameters
    ----------
    out : str or os.PathLike
        ``.trx``/``.zip`` (a stored zip) or a folder. Written through a
        temporary sibling renamed into place, like every output.
    sources : sequence of BlockSource
        Same ``dpv`` and ``dps`` keys in each; groups are the union of theirs.
    space : Space
        The output's ``VOXEL_TO_RASMM`` and ``DIMENSIONS``.
    positions_dtype, offsets_dtype : dtype, optional
        Default float32 and uint64.
    fsync : bool
        Flush before the rename.
    check : sequence
        Objects with ``check_unchanged()`` checked before the rename.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    SizeMismatch
        If the blocks deliver other counts than the sources announced
        (nothing is left behind; stage the data instead).
    ValueError
        If the sources' data keys differ.
    """
    if not sources:
        raise ValueError("write_blocks: no sources")
    dpv, dps = sources[0].dpv, sources[0].dps
    for src in sources[1:]:
        if src.dpv != dpv or src.dps != dps:
            raise ValueError(f"write_blocks: {src.label} carries other data keys "
                             f"(dpv {sorted(src.dpv)}, dps {sorted(src.dps)}) than "
                             f"{sources[0].label} (dpv {sorted(dpv)}, dps {sorted(dps)})")
    n = sum(s.nb_streamlines for s in sources)
    v = sum(s.nb_vertices for s in sources)
    pos_dt = _F4 if positions_dtype is None else DTYPES[dtype_name(positions_dtype)]
    off_dt = DTYPES["uint64"] if offsets_dtype is None else DTYPES[dtype_name(offsets_dtype)]
    if dtype_name(pos_dt) not in POSITION_DTYPES or dtype_name(off_dt) not in OFFSET_DTYPES:
        raise ValueError(f"positions dtype must be one of {', '.join(POSITION_DTYPES)} and "
                         f"offsets one of {', '.join(OFFSET_DTYPES)}")
    check_offsets_dtype(off_dt, v, out)
    header = _header(space, n, v)
    pos_name = f"positions.3.{dtype_name(pos_dt)}"
    off_name = f"offsets.{dtype_name(off_dt)}"
    layout = [("header.json", len(header)), (off_name, (n + 1) * off_dt.itemsize),
              (pos_name, v * 3 * pos_dt.itemsize)]
    names = {}
    for folder, table, rows in (("dps", dps, n), ("dpv", dpv, v)):
        for key in sorted(table):
            shape = _shape(rows, table[key])
            names[(folder, key)] = f"{folder}/{format_member_name(key, shape, _F4)}"
            layout.append((names[(folder, key)], rows * table[key] * 4))
    group_names = sorted({g for s in sources for g in s.groups})
    with TrxWriter(out, zip=is_zip_path(out), fsync=fsync, sources=check) as writer:
        slots = writer.reserve(layout)
        slots["header.json"].write(header)
        lengths: list[np.ndarray] = []
        members: dict[str, list[np.ndarray]] = {g: [] for g in group_names}
        base = 0
        for src in sources:
            first = base
            # blocks are read and parsed in a thread while this one writes them
            with closing(in_background(src.blocks(), name="trx-parse")) as blocks:
                for block in blocks:
                    lens = np.asarray(block.lengths, dtype=np.int64)
                    lengths.append(lens)
                    slots[pos_name].write(np.asarray(block.positions).astype(pos_dt,
                                                                             copy=False))
                    for (folder, key), name in names.items():
                        table = block.dps if folder == "dps" else block.dpv
                        slots[name].write(np.asarray(table[key]).astype(_F4, copy=False))
                    for g in src.groups:
                        members[g].append(np.asarray(block.groups.get(g, []), dtype=np.int64)
                                          + base)
                    base += len(lens)
            if base - first != src.nb_streamlines:
                raise SizeMismatch(f"{src.label}: {base - first} streamlines, "
                                   f"{src.nb_streamlines} announced")
        for chunk in offsets_chunks(iter(lengths), off_dt):
            slots[off_name].write(chunk)
        gdt = group_dtype(n)
        groups = {g: (np.concatenate(p) if p else np.zeros(0, np.int64)).astype(gdt)
                  for g, p in members.items()}
        for m in small_members("groups", groups):
            writer.add(m.name, m.chunks(), m.nbytes)
    log.info("wrote %s once: %d streamlines, %d vertices", out, n, v)
    return Path(out)
