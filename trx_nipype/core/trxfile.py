"""``TrxFile``: a tractogram over read-only maps, and selections of it as views.

A ``TrxFile`` is a *source* (header, positions, offsets, and the data
dictionaries, mapped lazily from a container or held in memory) plus an
optional *selection* of the source's streamlines. A selection copies nothing:
its arrays are gathered when asked for, and :func:`trx_nipype.core.save`
streams only the selected rows, chunk by chunk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from nibabel.streamlines import ArraySequence

from .arrays import GatheredArrays, ranges_index, split_by_budget, take_rows
from .build import (
    source_from_arrays,
    source_from_sft,
    source_from_tractogram,
    to_sft,
    to_tractogram,
)
from .source import Source

log = logging.getLogger(__name__)

#: vertices per chunk when streaming (x 3 x 4 bytes = 24 MB of float32 positions)
CHUNK_VERTICES = 2_000_000


@dataclass(frozen=True)
class Chunk:
    """A run of output streamlines: which source rows feed it.

    ``streamlines`` and ``vertices`` are slices (contiguous runs: the data is
    read as a view of the map) or index arrays (a selection: the data is
    gathered).
    """

    streamlines: slice | np.ndarray
    vertices: slice | np.ndarray | None
    lengths: np.ndarray


class TrxFile:
    """A TRX tractogram: read-only arrays over a file, or a view of one.

    Use :func:`trx_nipype.core.load` to open a file and the ``from_*``
    constructors to build one from arrays, a nibabel ``Tractogram`` or a dipy
    ``StatefulTractogram``. ``TrxFile`` is a context manager; :meth:`close`
    releases maps and temporary extractions and may be called twice.

    Attributes
    ----------
    header : dict
        ``VOXEL_TO_RASMM`` (4x4 array), ``DIMENSIONS`` (3 ints),
        ``NB_STREAMLINES``, ``NB_VERTICES`` and any other key of the file.
    groups : dict of str to ndarray
        Streamline indices of each group (re-indexed for views).
    dpg : dict of str to dict of str to ndarray
        Data per group.
    """

    #: the class :meth:`empty` makes: the writable, growable subclass, which names itself
    #: when it is defined (``class GrowableTrxFile(TrxFile, writable=True)``, in
    #: :mod:`.growable`, a module above this one that ``trx_nipype.core`` always imports)
    _writable: ClassVar[type[TrxFile] | None] = None

    def __init_subclass__(cls, *, writable: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if writable:
            TrxFile._writable = cls

    def __init__(self, source: Source, selection: np.ndarray | None = None,
                 groups: dict[str, np.ndarray] | None = None,
                 dpg: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                 owner: TrxFile | None = None) -> None:
        self._src = source
        self._sel = None if selection is None else np.asarray(selection, dtype=np.int64)
        self.groups: dict[str, np.ndarray] = dict(source.groups if groups is None else groups)
        self.dpg: dict[str, Mapping[str, np.ndarray]] = dict(source.dpg if dpg is None else dpg)
        self._owner = owner  # a view keeps its parent (and its maps) alive
        self._closed = False
        self._vertex_index: np.ndarray | None = None
        self._lengths: np.ndarray | None = None

    # ----------------------------------------------------------------- basics
    @property
    def path(self) -> str | None:
        """The file this tractogram was read from (None if built in memory)."""
        return self._src.path

    @property
    def shown_path(self) -> str | None:
        """How messages name the file: the user's file it was converted from, else :attr:`path`.

        An input in another format (TRK, TCK...) is converted into a private
        temporary TRX; messages about it name the user's file, never that copy.
        """
        return self._src.shown_as or self._src.path

    def show_as(self, path: str | os.PathLike) -> None:
        """Name ``path`` instead of :attr:`path` in messages (views included).

        Parameters
        ----------
        path : str or os.PathLike
            The file as the user gave it, which this tractogram was converted from.
        """
        self._src.shown_as = os.fspath(path)

    @property
    def is_view(self) -> bool:
        """True for a selection of another tractogram's streamlines."""
        return self._sel is not None

    def __len__(self) -> int:
        # from the N+1 offsets: computing lengths would copy O(N) data just to count
        return len(self._src.offsets) - 1 if self._sel is None else len(self._sel)

    @property
    def nb_vertices(self) -> int:
        """Number of vertices (of the selection, for a view)."""
        if self._sel is None:
            return int(self._src.offsets[-1]) if len(self._src.offsets) else 0
        return int(self.lengths.sum())

    @property
    def header(self) -> dict[str, Any]:
        """A copy of the header, with the counts of this tractogram (or view)."""
        hdr = dict(self._src.header)
        hdr["VOXEL_TO_RASMM"] = np.array(hdr["VOXEL_TO_RASMM"], dtype=np.float64)
        hdr["DIMENSIONS"] = np.array(hdr["DIMENSIONS"], dtype=np.int64)
        hdr["NB_STREAMLINES"] = len(self)
        hdr["NB_VERTICES"] = self.nb_vertices
        return hdr

    @property
    def affine(self) -> np.ndarray:
        """``VOXEL_TO_RASMM``: voxel indices to RAS+ millimetres (4x4, float64)."""
        return np.array(self._src.header["VOXEL_TO_RASMM"], dtype=np.float64)

    @property
    def dimensions(self) -> np.ndarray:
        """``DIMENSIONS`` of the reference grid (3 ints)."""
        return np.array(self._src.header["DIMENSIONS"], dtype=np.int64)

    # ------------------------------------------------------------------ arrays
    @property
    def lengths(self) -> np.ndarray:
        """Number of vertices of each streamline (int64)."""
        if self._sel is None:
            return self._src.lengths
        if self._lengths is None:
            self._lengths = self._src.lengths[self._sel]
        return self._lengths

    @property
    def offsets(self) -> np.ndarray:
        """Start of each streamline, plus a last entry equal to the vertex count (N+1)."""
        if self._sel is None:
            return self._src.offsets
        out = np.zeros(len(self) + 1, dtype=np.uint64)
        np.cumsum(self.lengths, out=out[1:])
        return out

    def _vertices(self) -> np.ndarray:
        """Source vertex indices of a view (computed once, on demand)."""
        if self._vertex_index is None:
            starts = np.asarray(self._src.offsets, dtype=np.int64)[:-1][self._sel]
            self._vertex_index = ranges_index(starts, self.lengths)
        return self._vertex_index

    @property
    def positions(self) -> np.ndarray:
        """(NB_VERTICES, 3) RAS+ mm; the read-only map itself, or a gathered copy for a view."""
        pos = self._src.positions["positions"]
        return pos if self._sel is None else take_rows(pos, self._vertices())

    @property
    def streamlines(self) -> ArraySequence:
        """The streamlines as a nibabel ``ArraySequence`` over :attr:`positions` (no copy)."""
        seq = ArraySequence()
        seq._data = self.positions
        seq._offsets = np.asarray(self.offsets[:-1], dtype=np.intp)
        seq._lengths = np.asarray(self.lengths, dtype=np.intp)
        return seq

    @property
    def dps(self) -> Mapping[str, np.ndarray]:
        """Data per streamline: ``name -> (N,)`` or ``(N, ncols)`` arrays."""
        if self._sel is None:
            return self._src.dps
        return GatheredArrays(self._src.dps, lambda: self._sel, len(self))

    @property
    def dpv(self) -> Mapping[str, np.ndarray]:
        """Data per vertex: ``name -> (NB_VERTICES,)`` or ``(NB_VERTICES, ncols)`` arrays."""
        if self._sel is None:
            return self._src.dpv
        return GatheredArrays(self._src.dpv, self._vertices, self.nb_vertices)

    @property
    def positions_dtype(self) -> np.dtype:
        """The dtype of the positions (float16, float32 or float64)."""
        return self._src.positions_dtype

    @property
    def offsets_dtype(self) -> np.dtype:
        """The dtype of the source's offsets (uint32 or uint64)."""
        return self._src.offsets_dtype

    # -------------------------------------------------------------- streaming
    def iter_chunks(self, max_vertices: int | None = None, *, vertices: bool = True,
                    weights: np.ndarray | None = None) -> Iterator[Chunk]:
        """Runs of streamlines with at most ``max_vertices`` vertices (one if larger).

        ``max_vertices`` defaults to :data:`CHUNK_VERTICES` (read when called).

        ``vertices=False`` leaves a view's vertex index out (``Chunk.vertices``
        is then None) for callers that read only per-streamline data.
        ``weights`` (one per streamline) replaces the vertex counts in the
        budget, for callers whose work per streamline is not its vertex count
        (a resampling that writes more points than it reads).
        """
        src_off = np.asarray(self._src.offsets)
        budget_of = self.lengths if weights is None else np.asarray(weights)
        budget = CHUNK_VERTICES if max_vertices is None else max_vertices
        for a, b in split_by_budget(budget_of, budget):
            if self._sel is None:
                yield Chunk(slice(a, b), slice(int(src_off[a]), int(src_off[b])),
                            self.lengths[a:b])
                continue
            rows = self._sel[a:b]
            lens = self.lengths[a:b]
            if len(rows) and np.all(np.diff(rows) == 1):  # contiguous run: read as a view
                r0, r1 = int(rows[0]), int(rows[-1]) + 1
                yield Chunk(slice(r0, r1), slice(int(src_off[r0]), int(src_off[r1])), lens)
            else:
                starts = np.asarray(src_off[:-1][rows], dtype=np.int64)
                yield Chunk(rows, ranges_index(starts, lens) if vertices else None, lens)

    def source_arrays(self) -> Source:
        """The unselected source (for writers that gather chunk by chunk)."""
        return self._src

    def source_rows(self) -> np.ndarray | None:
        """The source's streamlines a view holds, in its order (None for a whole file)."""
        return self._sel

    def iter_positions(self, max_vertices: int | None = None, *,
                       weights: np.ndarray | None = None, dtype: Any = None
                       ) -> Iterator[tuple[Chunk, np.ndarray]]:
        """``(chunk, positions)`` of runs of whole streamlines, read with bounded reads.

        The safe way to read every coordinate of a large file: each block is
        read from the file (``pread``, not the map) into a new array of at most
        ``max_vertices`` rows, and a file that another process truncates or
        rewrites meanwhile raises ``SourceChangedError`` naming it, where
        touching :attr:`positions` (a map) would kill the process with SIGBUS.
        ``weights`` budgets the chunks as in :meth:`iter_chunks`; ``dtype``
        casts each block (a new, writable array either way).
        """
        reader = self._src.positions.reader("positions")
        try:
            for chunk in self.iter_chunks(max_vertices, weights=weights):
                block = reader.take(chunk.vertices)
                if not block.flags.writeable:  # a slice of an in-memory source's arrays
                    block = np.array(block, dtype=dtype)
                elif dtype is not None:
                    block = block.astype(dtype, copy=False)
                yield chunk, block
        finally:
            reader.release()
        self.check_unchanged()

    def check_unchanged(self) -> None:
        """Raise if the file this tractogram was loaded from changed since it was opened.

        Operations read their inputs with bounded reads that check this as they
        go, and again before their output replaces anything; a caller reading
        the maps (``positions``, ``dpv``...) itself can call it when done.

        Raises
        ------
        trx_nipype.core.reading.SourceChangedError
            Naming the file (and member) and what changed: truncated, resized,
            modified or replaced by another file.
        """
        self._src.check_unchanged()

    # -------------------------------------------------------------- selection
    def select(self, indices: Iterable[int] | np.ndarray, *, keep_empty_groups: bool = False
               ) -> TrxFile:
        """A view of the streamlines at ``indices`` (in the given order; repeats allowed).

        dps and dpv follow the selection; groups are re-indexed to the new order
        (a streamline selected twice is in its groups twice); groups left empty
        are dropped unless ``keep_empty_groups``; dpg is kept for the groups
        that remain. Nothing is copied until the view is saved or its arrays
        are asked for.

        Raises
        ------
        IndexError
            If an index is out of range (negative indices count from the end).
        """
        if isinstance(indices, range):
            indices = np.arange(indices.start, indices.stop, indices.step)
        elif not isinstance(indices, (np.ndarray, Sequence)):
            indices = list(indices)  # a generator or a set: np.asarray would make a 0-d object
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean mask has shape {idx.shape}, expected ({len(self)},)")
            idx = np.flatnonzero(idx)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise IndexError(f"indices must be a 1-D sequence of integers, got {idx.dtype} "
                             f"with shape {idx.shape}")
        n = len(self)
        idx = idx.astype(np.int64)
        if idx.size:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < -n or hi >= n:
                bad = lo if lo < -n else hi
                raise IndexError(f"streamline index {bad} is out of range for "
                                 f"{n} streamlines{self._where()}")
            idx = np.where(idx < 0, idx + n, idx)
        base = idx if self._sel is None else self._sel[idx]
        groups, dpg = self._reindex_groups(idx, n, keep_empty_groups)
        return TrxFile(self._src, base, groups, dpg, owner=self)

    def _reindex_groups(self, idx: np.ndarray, n: int, keep_empty: bool
                        ) -> tuple[dict[str, np.ndarray], dict[str, Mapping[str, np.ndarray]]]:
        """New groups: position ``j`` of the selection is in G if ``idx[j]`` was in G.

        A few groups: one boolean mask of the streamlines per group (no sort).
        Many groups: the memberships indexed once (:class:`GroupIndex`), so that
        the cost follows the memberships of the selected streamlines, not
        groups x streamlines.
        """
        dtype = group_dtype(len(idx))
        if len(self.groups) > MASKED_GROUPS:
            found = GroupIndex(self.groups, n).reindex(idx, dtype)
            groups = ({g: found.get(g, np.zeros(0, dtype)) for g in self.groups}
                      if keep_empty else found)
        else:
            groups = {}
            for name, members in self.groups.items():
                mask = np.zeros(n, dtype=bool)
                mask[np.asarray(members, dtype=np.int64)] = True
                new = np.flatnonzero(mask[idx]).astype(dtype)
                if new.size or keep_empty:
                    groups[name] = new
        dpg = {g: self.dpg[g] for g in groups if g in self.dpg}
        return groups, dpg

    def group_views(self, names: Iterable[str] | None = None) -> Iterator[tuple[str, TrxFile]]:
        """``(name, view)`` for each group (default: all, in ``groups`` order), one pass.

        Each view is what :meth:`get_group` gives (the group's streamlines in
        file order, the other groups re-indexed, those left empty dropped), but
        the memberships are indexed once for all of them: splitting a file
        into its groups costs streamlines + memberships, not groups x
        streamlines.

        Raises
        ------
        KeyError
            If a name is not a group (checked before the first view).
        """
        names = list(self.groups) if names is None else list(names)
        missing = [g for g in names if g not in self.groups]
        if missing:
            have = ", ".join(sorted(self.groups)) or "none"
            raise KeyError(f"no group {', '.join(map(repr, missing))}{self._where()}; "
                           f"groups present: {have}")
        index = GroupIndex(self.groups, len(self))
        for name in names:
            idx = np.unique(np.asarray(self.groups[name], dtype=np.int64))
            groups = index.reindex(idx, group_dtype(len(idx)))
            dpg = {g: self.dpg[g] for g in groups if g in self.dpg}
            base = idx if self._sel is None else self._sel[idx]
            yield name, TrxFile(self._src, base, groups, dpg, owner=self)

    def get_group(self, name: str, *, keep_empty_groups: bool = False) -> TrxFile:
        """A view of the streamlines of group ``name`` (other groups re-indexed)."""
        return self.select_groups([name], keep_empty_groups=keep_empty_groups)

    def select_groups(self, names: Sequence[str], *, keep_empty_groups: bool = False) -> TrxFile:
        """A view of the union of the groups ``names``, in streamline order."""
        if isinstance(names, str):
            names = [names]
        missing = [g for g in names if g not in self.groups]
        if missing:
            have = ", ".join(sorted(self.groups)) or "none"
            raise KeyError(f"no group {', '.join(map(repr, missing))}{self._where()}; "
                           f"groups present: {have}")
        mask = np.zeros(len(self), dtype=bool)
        for g in names:
            mask[np.asarray(self.groups[g], dtype=np.int64)] = True
        return self.select(np.flatnonzero(mask), keep_empty_groups=keep_empty_groups)

    def _where(self) -> str:
        return f" in {self.shown_path}" if self.shown_path else ""

    # ------------------------------------------------- preallocation, resize
    @classmethod
    def empty(cls, capacity_streamlines: int = 0, capacity_vertices: int = 0,
              like: TrxFile | None = None, *, affine: np.ndarray | None = None,
              dimensions: Sequence[int] | None = None, positions_dtype: Any = None,
              offsets_dtype: Any = None) -> TrxFile:
        """A writable, file-backed, empty TRX with room for the given counts.

        Its positions, offsets, dps and dpv are memory maps of the given
        capacity in a private temporary folder (removed by ``close()``). Fill
        it with ``append`` (capacity grows geometrically when needed), trim it
        with ``resize``, write it with :func:`~trx_nipype.core.save`.

        Parameters
        ----------
        capacity_streamlines, capacity_vertices : int
            Initial capacity.
        like : TrxFile, optional
            Take the space (header), positions/offsets dtypes and dps/dpv keys
            (dtypes, columns) from it; its data is not copied. Without it the
            first ``append`` fixes the keys (and the space, unless given).
        affine, dimensions : optional
            The space (``VOXEL_TO_RASMM``, ``DIMENSIONS``); override ``like``'s.
        positions_dtype, offsets_dtype : dtype, optional
            Default ``like``'s, else float32 and uint64.

        Returns
        -------
        trx_nipype.core.growable.GrowableTrxFile
            A TrxFile with ``append``, in-place ``resize`` and ``capacity``.
        """
        return TrxFile._writable.create(capacity_streamlines, capacity_vertices, like,
                                        affine=affine, dimensions=dimensions,
                                        positions_dtype=positions_dtype,
                                        offsets_dtype=offsets_dtype)

    def append(self, other: Any, **options: Any) -> TrxFile:
        """Only a tractogram made by :meth:`empty` can be appended to (this one is read-only)."""
        raise TypeError(f"{self!r} is read-only; append to a writable copy: "
                        "TrxFile.empty(like=trx).append(trx).append(other)")

    def resize(self, nb_streamlines: int | None = None, nb_vertices: int | None = None, *,
               keep_empty_groups: bool = False) -> TrxFile:
        """A view without unused capacity, or of the first ``nb_streamlines`` streamlines.

        This tractogram is read-only, so nothing is changed or copied: with no
        argument the view drops the trailing zero-length streamlines (capacity
        preallocated by other tools); with ``nb_streamlines`` it keeps the first
        ones. dps, dpv, groups (re-indexed; left empty: dropped unless
        ``keep_empty_groups``) and dpg follow as for :meth:`select`. A
        tractogram made by :meth:`empty` resizes in place instead.

        Returns
        -------
        TrxFile
            A view.

        Raises
        ------
        ValueError
            If asked to grow (more streamlines or vertices than the file has), or
            ``nb_vertices`` would cut the kept streamlines (it must lie between the
            kept vertex count and the file's: a view has no spare capacity to set).
        """
        n = len(self)
        if nb_streamlines is None:
            nonzero = np.flatnonzero(self.lengths)
            keep = int(nonzero[-1]) + 1 if nonzero.size else 0
        else:
            keep = int(nb_streamlines)
            if keep < 0 or keep > n:
                raise ValueError(f"nb_streamlines={keep}: a read-only tractogram of {n} "
                                 "streamlines can only be truncated; to grow, copy it with "
                                 "TrxFile.empty(..., like=trx).append(trx)")
        used_v = int(np.asarray(self.lengths[:keep], dtype=np.int64).sum())
        if nb_vertices is not None and not used_v <= int(nb_vertices) <= self.nb_vertices:
            raise ValueError(f"nb_vertices={nb_vertices}: must be between the {used_v} vertices "
                             f"of the kept streamlines and the {self.nb_vertices} of the file "
                             "(streamlines are never cut; a read-only file cannot grow)")
        if keep < n:
            log.info("resize: keeping the first %d of %d streamlines", keep, n)
        return self.select(np.arange(keep, dtype=np.int64), keep_empty_groups=keep_empty_groups)

    def sample(self, nb_streamlines: int, seed: int = 0, *,
               keep_empty_groups: bool = False) -> TrxFile:
        """A view of ``nb_streamlines`` streamlines drawn without replacement, in file order.

        The draw is over the used streamlines (trailing unused capacity is
        left out) with ``numpy.random.default_rng(seed)``: the same file and
        seed always give the same subset, on every machine. Use it for balanced,
        reproducible samples across subjects.

        Raises
        ------
        ValueError
            If asked for more streamlines than there are.
        """
        used = self.resize()
        if not 0 <= nb_streamlines <= len(used):
            raise ValueError(f"cannot draw {nb_streamlines} streamlines from "
                             f"{len(used)}{self._where()}")
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(len(used), size=nb_streamlines, replace=False))
        return used.select(picked, keep_empty_groups=keep_empty_groups)

    # ---------------------------------------------------------------- builders
    @classmethod
    def from_arrays(cls, positions: np.ndarray, offsets: np.ndarray | None = None, *,
                    lengths: np.ndarray | None = None, affine: np.ndarray | None = None,
                    dimensions: Sequence[int] | None = None,
                    dps: Mapping[str, np.ndarray] | None = None,
                    dpv: Mapping[str, np.ndarray] | None = None,
                    groups: Mapping[str, np.ndarray] | None = None,
                    dpg: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                    header: Mapping[str, Any] | None = None) -> TrxFile:
        """A tractogram held in memory, from RAS+ mm positions and N or N+1 offsets.

        Give either ``offsets`` or ``lengths``. ``affine`` and ``dimensions``
        default to the identity and ``(1, 1, 1)`` (or to ``header``'s values).
        The arrays are checked as a loaded file would be, and used as they are
        (no copy; big-endian ones excepted) through read-only views: the
        tractogram cannot change them, and the caller should not either while
        it is in use.
        """
        return cls(source_from_arrays(positions, offsets, lengths=lengths, affine=affine,
                                      dimensions=dimensions, dps=dps, dpv=dpv, groups=groups,
                                      dpg=dpg, header=header))

    @classmethod
    def from_tractogram(cls, tractogram: Any, *, affine: np.ndarray | None = None,
                        dimensions: Sequence[int] | None = None) -> TrxFile:
        """From a nibabel ``Tractogram`` (RAS+ mm) or ``TractogramFile``."""
        return TrxFile(source_from_tractogram(tractogram, affine=affine, dimensions=dimensions))

    @classmethod
    def from_sft(cls, sft: Any) -> TrxFile:
        """From a dipy ``StatefulTractogram`` (moved to RASMM/center on a copy)."""
        return TrxFile(source_from_sft(sft))

    def to_sft(self) -> Any:
        """A dipy ``StatefulTractogram`` in RASMM; groups become 0/1 ``dps`` entries."""
        return to_sft(self)

    def to_tractogram(self) -> Any:
        """A nibabel ``Tractogram`` (RAS+ mm) over this tractogram's arrays."""
        return to_tractogram(self)

    # --------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Release maps and temporary extractions (idempotent; views only detach)."""
        if self._closed:
            return
        self._closed = True
        if self._owner is None and self._src.container is not None:
            self._src.container.close()

    def __enter__(self) -> TrxFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = os.path.basename(self.shown_path) if self.shown_path else "in memory"
        kind = "view of " if self.is_view else ""
        parts = [f"{len(self)} streamlines", f"{self.nb_vertices} vertices",
                 f"positions {self.positions_dtype}"]
        for label, keys in (("dps", list(self.dps)), ("dpv", list(self.dpv)),
                            ("groups", list(self.groups)), ("dpg", list(self.dpg))):
            if keys:
                shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
                parts.append(f"{label} [{shown}]")
        return f"<TrxFile {kind}{where}: {'; '.join(parts)}>"


#: above this many groups, selections re-index groups through a :class:`GroupIndex`
MASKED_GROUPS = 16


class GroupIndex:
    """Group memberships ordered by streamline, to re-index many groups at once.

    Built once in O(M log M) for M memberships; :meth:`reindex` then costs the
    memberships of the selected streamlines (a group listing a streamline twice
    counts it once, as a mask would).

    >>> index = GroupIndex({"a": np.array([0, 2]), "b": np.array([2, 1])}, 3)
    >>> {g: v.tolist() for g, v in index.reindex(np.array([2, 0, 2]), np.uint32).items()}
    {'a': [0, 1, 2], 'b': [0, 2]}
    """

    def __init__(self, groups: Mapping[str, np.ndarray], n: int) -> None:
        self.names = list(groups)
        count = max(len(self.names), 1)
        parts = [np.asarray(groups[g], dtype=np.int64).ravel() for g in self.names]
        sizes = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        rows = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        # one key per (streamline, group): sorted and made unique in one call
        keys = np.unique(rows * count + np.repeat(np.arange(len(parts), dtype=np.int64), sizes))
        rows, self.group = np.divmod(keys, count)
        self.starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=self.starts[1:])

    def reindex(self, idx: np.ndarray, dtype: np.dtype) -> dict[str, np.ndarray]:
        """``group -> positions j`` where ``idx[j]`` is in the group (non-empty groups only,
        in the order of the groups given)."""
        idx = np.asarray(idx, dtype=np.int64)
        first = self.starts[idx]
        counts = self.starts[idx + 1] - first
        found = self.group[ranges_index(first, counts)]
        where = np.repeat(np.arange(len(idx), dtype=np.int64), counts)
        order = np.argsort(found, kind="stable")  # positions stay ascending within a group
        found, where = found[order], where[order]
        cuts = [0, *(np.flatnonzero(np.diff(found)) + 1).tolist(), len(found)]
        return {self.names[int(found[a])]: where[a:b].astype(dtype)
                for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a}


def group_dtype(n: int) -> np.dtype:
    """The dtype of re-indexed groups (views, concatenations): uint32, or uint64 past 2**32.

    A saved file keeps its groups' own dtype; a view's groups are new arrays in
    this dtype, so a view of every streamline of a file whose groups are not
    uint32 saves them as uint32.
    """
    return np.dtype("<u4") if n <= np.iinfo(np.uint32).max else np.dtype("<u8")
