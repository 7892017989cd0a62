"""Assembling a subject: bundle files of any format -> one TRX, one group per file.

:func:`assemble_bundles` writes, in one streaming pass through the one
writer, what converting every file to TRX and concatenating the results with
one group per input (``concatenate(..., group_by_input=True)``) writes -- the
same bytes -- without a TRX per bundle in between:

- TRX files and folders are read through their maps (as ``concatenate``
  does);
- TRK and TCK files (``.gz`` too) are *streamed*: a first pass reads their
  streamline lengths and groups (the writer needs the counts before the
  data), then each member of the output (positions, each dps and dpv key)
  is read from the file again, block by block, straight into the writer.
  Files that fit in ``memory_budget`` together keep their blocks from the
  first pass instead of being read again;
- other formats (VTK, DPY: whole-file readers) are read into memory.

The bundle's own group (a group named like the file's bundle, as in the files
``trx-nipype split-groups`` writes) is dropped: the output's group of that
name is the whole file. Other groups, dps and dpv are carried (keys that not
every file has are dropped with ``delete_dps``/``delete_dpv``).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..concatenating import ConcatInput, concatenation_members
from ..converting import load_any
from ..errors import SpaceWarning, TrxFormatError
from ..formats import Block, compound_suffix, detect_format
from ..loader import load
from ..reference import space_from_reference
from ..saving import write_members
from ..space import Space
from ..trxfile import TrxFile
from ..writer import same_file

log = logging.getLogger(__name__)

#: bytes of parsed blocks kept from the first pass over streamed files (all files of
#: one call together); files beyond it are read a second time instead
MEMORY_BUDGET = 256 * 1024 * 1024
_STREAMED = ("trk", "tck")


@dataclass
class _Budget:
    left: int


@dataclass
class _Streamed:
    """A TRK/TCK file read block by block: what the first pass learned, and its rows."""

    path: str
    space: Space
    open_blocks: Callable[[], Iterator[Block]]
    drop_group: str
    lengths: list[np.ndarray] = field(default_factory=list)
    groups: dict[str, list[np.ndarray]] = field(default_factory=dict)
    dps: dict[str, tuple[int, ...]] = field(default_factory=dict)  # key -> row shape
    dpv: dict[str, tuple[int, ...]] = field(default_factory=dict)
    cached: list[Block] | None = field(default_factory=list)
    cached_bytes: int = 0
    outside: int = 0

    def scan(self, budget: _Budget, bbox: Space | None) -> None:
        """First pass: lengths, groups, data keys; blocks kept while the budget lasts."""
        n = 0
        for block in self.open_blocks():
            self.lengths.append(np.asarray(block.lengths, dtype=np.int64))
            for name, idx in block.groups.items():
                if name != self.drop_group:
                    self.groups.setdefault(name, []).append(np.asarray(idx, np.int64) + n)
            for table, keys in ((block.dps, self.dps), (block.dpv, self.dpv)):
                for key, arr in table.items():
                    keys.setdefault(key, tuple(np.shape(arr)[1:]))
            if bbox is not None:
                self.outside += int(bbox.outside(block.positions, block.lengths).sum())
            n += len(block)
            if self.cached is not None:
                size = block.positions.nbytes + sum(a.nbytes for a in block.dps.values()) + \
                    sum(a.nbytes for a in block.dpv.values())
                if size <= budget.left:
                    budget.left -= size
                    self.cached_bytes += size
                    self.cached.append(block)
                else:  # too big to keep: read again, and give the budget back
                    budget.left += self.cached_bytes
                    self.cached, self.cached_bytes = None, 0

    def stand_in(self) -> TrxFile:
        """A TrxFile with this file's lengths, space, keys and groups; its arrays are zeros
        that take no memory (broadcast) and are never read: :meth:`rows` gives the data."""
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
        n, v = len(lengths), int(lengths.sum())
        f4 = np.zeros(1, dtype="<f4")

        def zeros(rows: int, tail: tuple[int, ...]) -> np.ndarray:
            return np.broadcast_to(f4.reshape((1,) * (1 + len(tail))), (rows, *tail))

        return TrxFile.from_arrays(
            zeros(v, (3,)), lengths=lengths, affine=self.space.affine,
            dimensions=self.space.dimensions,
            dps={k: zeros(n, t) for k, t in self.dps.items()},
            dpv={k: zeros(v, t) for k, t in self.dpv.items()},
            groups={g: np.concatenate(p) for g, p in sorted(self.groups.items())})

    def rows(self, table: str, key: str) -> Iterator[np.ndarray]:
        """The chunks of one array, from the kept blocks or from the file again."""
        if self.cached is not None:
            blocks: Iterator[Block] = iter(self.cached)
        else:
            blocks = self._reread()
        for block in blocks:
            if table == "positions":
                yield block.positions
            else:
                yield getattr(block, table)[key]

    def _reread(self) -> Iterator[Block]:
        k = 0
        for block in self.open_blocks():
            want = self.lengths[k] if k < len(self.lengths) else None
            if want is None or not np.array_equal(want, block.lengths):
                raise TrxFormatError(self.path, "data", "changed while it was being read: its "
                                     "streamlines differ from the first pass")
            k += 1
            yield block


def _open_streamed(path: str, fmt: str, ref_space: Space | None, drop_group: str,
                   chunk_bytes: int | None) -> _Streamed:
    kw = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    if fmt == "trk":
        from ..formats.trk import iter_trk_blocks, read_trk_header
        from ..formats.trk_groups import groups_sidecar_for

        info = read_trk_header(path)
        sidecar = groups_sidecar_for(info)  # read (and warned about) once
        space: Space | None = info.space

        def blocks() -> Iterator[Block]:
            return iter_trk_blocks(path, groups=sidecar is not None, sidecar=sidecar, **kw)
    else:
        from ..formats.tck import iter_tck_blocks, read_tck_header

        read_tck_header(path)  # a malformed header fails before any work
        space = None

        def blocks() -> Iterator[Block]:
            return iter_tck_blocks(path, **kw)
    if space is None:
        if ref_space is None:
            raise ValueError(f"{path}: .{fmt} files carry no space (affine and dimensions); "
                             "give a reference: a NIfTI image, TRK or TRX file of the same "
                             "space")
        space = ref_space
    elif ref_space is not None and not space.matches(ref_space):
        raise ValueError(f"{path}: its space (dimensions {space.dimensions.tolist()}, affine "
                         f"{np.round(space.affine, 4).tolist()}) differs from the reference's "
                         f"({ref_space.dimensions.tolist()}, "
                         f"{np.round(ref_space.affine, 4).tolist()})")
    return _Streamed(path, space, blocks, drop_group)


def _open_whole(path: str, fmt: str, reference: Any, drop_group: str) -> TrxFile:
    """A TRX (mapped) or another whole-file format (in memory), its bundle group dropped."""
    trx = load(path) if fmt == "trx" else load_any(path, reference=reference)
    if fmt == "trx" and reference is not None:
        ref = space_from_reference(reference)
        if not Space.from_affine(trx.affine, trx.dimensions).matches(ref):
            trx.close()
            raise ValueError(f"{path}: its space differs from the reference's")
    if drop_group in trx.groups:
        del trx.groups[drop_group]
        trx.dpg.pop(drop_group, None)
    return trx


def _stem(path: str) -> str:
    name = Path(path.rstrip("/\\")).name
    suffix = compound_suffix(name)
    return name[: -len(suffix)] if suffix else name


def _bbox_space(space: Space, check: bool) -> Space | None:
    # TRK headers written without a reference declare a 1x1x1 grid: nothing to check against
    if not check or np.all(np.asarray(space.dimensions) <= 1):
        return None
    return space


def assemble_bundles(in_files: Sequence[str | os.PathLike], out_path: str | os.PathLike, *,
                     names: Sequence[str] | None = None, reference: Any = None,
                     delete_dps: bool = False, delete_dpv: bool = False,
                     compression: str = "stored", bbox_check: bool = True,
                     memory_budget: int = MEMORY_BUDGET, chunk_bytes: int | None = None
                     ) -> Path:
    """Write bundle files (any readable format) into one TRX with one group per file.

    Parameters
    ----------
    in_files : sequence of path
        The bundle files, in output order: TRX zips or folders, ``.trk[.gz]``,
        ``.tck[.gz]``, ``.vtk``/``.vtp``/``.fib``, ``.dpy``.
    out_path : str or os.PathLike
        Destination: ``.trx``/``.zip`` gives a zip, anything else a folder.
    names : sequence of str, optional
        The group of each file (default: the file names without extension).
        A group of that name already in the file is dropped (the new group
        holds the whole file).
    reference : optional
        NIfTI image, TRK or TRX giving the space of formats without one (TCK,
        VTK, DPY); files with a space must agree with it.
    delete_dps, delete_dpv : bool
        Drop the dps / dpv keys that some file lacks or holds differently,
        instead of raising.
    compression : {"stored", "deflate"}
        Zip member compression.
    bbox_check : bool
        Warn about streamlines outside the reference grid (kept).
    memory_budget : int
        Bytes of parsed TRK/TCK blocks kept from the first pass (all files
        together); files beyond it are read twice instead. Memory stays
        bounded by this plus a few chunks.
    chunk_bytes : int, optional
        TRK/TCK read size (tests use small values).

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    TrxFormatError
        A malformed file (naming it), or a file changed between the passes.
    ValueError
        No files, as many names as files not given, a missing or disagreeing
        reference (naming the file), spaces that differ between files, data
        keys that differ without ``delete_dps``/``delete_dpv``, or
        ``out_path`` is one of the inputs.
    """
    files = [os.fspath(f) for f in in_files]
    if not files:
        raise ValueError("assemble_bundles: no input files")
    if names is None:
        names = [_stem(f) for f in files]
    names = [str(n) for n in names]
    if len(names) != len(files):
        raise ValueError(f"names has {len(names)} names for {len(files)} files")
    for f in files:
        if not os.path.exists(f):
            raise FileNotFoundError(f"{f}: no such file or directory")
        if same_file(f, out_path):
            raise ValueError(f"{out_path}: cannot write over the input {f}")
    ref_space = space_from_reference(reference) if reference is not None else None
    budget = _Budget(int(memory_budget))
    opened: list[TrxFile] = []
    inputs: list[ConcatInput] = []
    try:
        for i, (path, name) in enumerate(zip(files, names, strict=True)):
            fmt = detect_format(path)
            label = f"input {i} ({os.path.basename(path.rstrip('/'))})"
            if fmt in _STREAMED:
                src = _open_streamed(path, fmt, ref_space, name, chunk_bytes)
                src.scan(budget, _bbox_space(src.space, bbox_check))
                if src.outside:
                    total = sum(len(x) for x in src.lengths)
                    warnings.warn(f"{path}: {src.outside} of {total} streamlines fall outside "
                                  f"the bounding box of the reference grid "
                                  f"{src.space.dimensions.tolist()}; kept",
                                  category=SpaceWarning, stacklevel=2)
                trx = src.stand_in()
                inputs.append(ConcatInput(trx, label, name, rows=src.rows))
            else:
                trx = _open_whole(path, fmt, reference, name)
                inputs.append(ConcatInput(trx, label, name))
            opened.append(trx)
            log.info("assemble: %s (%s): %d streamlines as group %r", path, fmt, len(trx), name)
        header, members = concatenation_members(
            inputs, group_by_input=True, group_names=names, delete_dps=delete_dps,
            delete_dpv=delete_dpv, dest=out_path)
        log.info("assemble: %d files, %d streamlines, %d vertices -> %s", len(files),
                 header["NB_STREAMLINES"], header["NB_VERTICES"], out_path)
        return write_members(out_path, header, members, compression=compression)
    finally:
        for trx in opened:
            trx.close()
