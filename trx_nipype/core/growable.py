"""Preallocated, growable TRX: :meth:`TrxFile.empty`, ``append`` and ``resize``.

A :class:`GrowableTrxFile` keeps its positions, offsets, dps and dpv in
writable memory maps of a given *capacity*, in files of a private temporary
folder (under :func:`~trx_nipype.core.tempfiles.get_temp_root`, removed on
``close()`` and at exit). The used part is exposed as an ordinary
:class:`~trx_nipype.core.source.Source` of read-only slices, so everything
that reads a :class:`TrxFile` (views, :func:`~trx_nipype.core.save`,
:func:`~trx_nipype.core.concatenate`) works unchanged: there is no second
writer.

Capacity grows geometrically (by :data:`GROWTH`) by extending the files and
mapping them again: maps taken earlier stay valid, and views made before an
``append`` keep showing what they showed. Trimming capacity copies the used
rows into new, smaller files (chunk by chunk) and unlinks the old ones, so no
earlier map ever points past the end of a file.

Read-only tractograms (loaded files, views, in-memory ones) are not written:
their :meth:`TrxFile.resize` returns a view.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .arrays import LazyArrays, identical_arrays, row_width
from .build import tractogram_space
from .dtypes import OFFSET_DTYPES, POSITION_DTYPES, check_dtype, dtype_name
from .errors import IN_MEMORY, SpaceMismatchError
from .source import Source
from .space import space_mismatch
from .tempfiles import make_temp_dir, remove_temp_dir
from .trxfile import CHUNK_VERTICES, TrxFile, group_dtype

log = logging.getLogger(__name__)

#: capacity growth factor when an append does not fit
GROWTH = 1.5
#: smallest capacity reserved when growing (streamlines; vertices get x 64)
MIN_GROW = 1024
_COPY_ROWS = 1 << 20


# ------------------------------------------------------------------ helpers
class _Column:
    """One array of ``capacity`` rows of shape ``tail``, in a writable file map."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype, tail: tuple[int, ...],
                 capacity: int) -> None:
        self.folder = folder
        self.name = name
        self.dtype = np.dtype(dtype)
        self.tail = tuple(int(t) for t in tail)
        self.row_bytes = self.dtype.itemsize * row_width(self.tail)
        self._generation = 0
        self.path = self._new_file(capacity)
        self.capacity = capacity
        self.array = self._map(capacity)

    def _new_file(self, capacity: int) -> Path:
        self._generation += 1
        path = self.folder / f"{self._generation}-{self.name}"
        with open(path, "wb") as fh:
            fh.truncate(capacity * self.row_bytes)  # sparse: disk used as rows are written
        return path

    def _map(self, capacity: int) -> np.ndarray:
        if capacity == 0 or self.row_bytes == 0:
            return np.zeros((capacity, *self.tail), dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r+", shape=(capacity, *self.tail))

    def grow(self, capacity: int) -> None:
        """Extend the file in place; maps taken before stay valid."""
        if capacity <= self.capacity:
            return
        with open(self.path, "r+b") as fh:
            fh.truncate(capacity * self.row_bytes)
        self.capacity = capacity
        self.array = self._map(capacity)

    def rebuild(self, capacity: int, keep: int, dtype: np.dtype | None = None) -> None:
        """Copy the first ``keep`` rows into a new file of ``capacity`` rows (optionally
        re-typed); the old file is unlinked (earlier maps keep their pages)."""
        old_path, old = self.path, self.array
        if dtype is not None:
            self.dtype = np.dtype(dtype)
            self.row_bytes = self.dtype.itemsize * row_width(self.tail)
        self.path = self._new_file(capacity)
        self.capacity = capacity
        self.array = self._map(capacity)
        for a in range(0, keep, _COPY_ROWS):
            b = min(keep, a + _COPY_ROWS)
            self.array[a:b] = old[a:b]
        del old
        old_path.unlink(missing_ok=True)

    def used(self, rows: int) -> np.ndarray:
        """A read-only view of the first ``rows`` rows."""
        view = self.array[:rows]
        view = view.view(np.ndarray) if isinstance(view, np.memmap) else view[...]
        view.flags.writeable = False
        return view


class _GrowBuffer:
    """An in-memory integer array with amortised appends (group indices)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.data = np.zeros(0, dtype=dtype)
        self.count = 0

    def extend(self, values: np.ndarray, dtype: np.dtype) -> None:
        if self.data.dtype != dtype:
            self.data = self.data.astype(dtype)
        need = self.count + len(values)
        if need > len(self.data):
            grown = np.zeros(max(need, int(len(self.data) * GROWTH), 64), dtype=self.data.dtype)
            grown[:self.count] = self.data[:self.count]
            self.data = grown
        self.data[self.count:need] = values
        self.count = need

    def keep_below(self, n: int) -> None:
        kept = self.data[:self.count]
        kept = kept[kept < n]
        self.data = kept.copy()
        self.count = len(kept)

    def view(self) -> np.ndarray:
        out = self.data[:self.count]
        out = out.view()
        out.flags.writeable = False
        return out


class _GrowableSource(Source):
    """A Source whose offsets are stored as uint64 but saved in the preferred dtype."""

    preferred_offsets: np.dtype = np.dtype("<u8")

    @property
    def offsets_dtype(self) -> np.dtype:
        return self.preferred_offsets


class _Store:
    """The files of a growable TRX and its bookkeeping (the Source's container)."""

    def __init__(self, header: dict[str, Any], positions_dtype: np.dtype,
                 offsets_dtype: np.dtype, cap_s: int, cap_v: int,
                 dps: Mapping[str, tuple[np.dtype, tuple[int, ...]]] | None,
                 dpv: Mapping[str, tuple[np.dtype, tuple[int, ...]]] | None,
                 template_fixed: bool) -> None:
        self.folder = make_temp_dir("growable")
        self.header = header
        self.offsets_dtype = offsets_dtype
        self.n = 0
        self.v = 0
        self.template_fixed = template_fixed
        self.closed = False
        try:
            self.positions = _Column(self.folder, "positions", positions_dtype, (3,), cap_v)
            self.offsets = _Column(self.folder, "offsets", np.dtype("<u8"), (), cap_s + 1)
            self.dps: dict[str, _Column] = {}
            self.dpv: dict[str, _Column] = {}
            self.set_keys(dps or {}, dpv or {})
        except BaseException:
            remove_temp_dir(self.folder)
            raise
        self.groups: dict[str, _GrowBuffer] = {}
        self.dpg: dict[str, dict[str, np.ndarray]] = {}

    def set_keys(self, dps: Mapping[str, tuple[np.dtype, tuple[int, ...]]],
                 dpv: Mapping[str, tuple[np.dtype, tuple[int, ...]]]) -> None:
        for i, (table, specs, cap) in enumerate(((self.dps, dps, self.cap_s),
                                                (self.dpv, dpv, self.cap_v))):
            for key, (dtype, tail) in specs.items():
                table[key] = _Column(self.folder, f"{'sv'[i]}{len(table)}", dtype, tail, cap)

    @property
    def cap_s(self) -> int:
        return self.offsets.capacity - 1

    @property
    def cap_v(self) -> int:
        return self.positions.capacity

    def reserve(self, n: int, v: int) -> None:
        """Grow capacity geometrically so that ``n`` streamlines and ``v`` vertices fit."""
        if n > self.cap_s:
            cap = max(n, math.ceil(self.cap_s * GROWTH), MIN_GROW)
            log.debug("growing streamline capacity %d -> %d", self.cap_s, cap)
            self.offsets.grow(cap + 1)
            for col in self.dps.values():
                col.grow(cap)
        if v > self.cap_v:
            cap = max(v, math.ceil(self.cap_v * GROWTH), MIN_GROW * 64)
            log.debug("growing vertex capacity %d -> %d", self.cap_v, cap)
            self.positions.grow(cap)
            for col in self.dpv.values():
                col.grow(cap)

    def set_capacity(self, cap_s: int, cap_v: int, *, copy: bool = False) -> None:
        """Exact capacities (>= the used counts): shrink by copying, grow by extending.

        ``copy`` moves every column to new files even when it does not shrink:
        after a truncation the rows past the kept ones will be written again,
        and views made before must keep the old rows (the old files' pages).
        """
        for col, cap, used in ((self.offsets, cap_s + 1, self.n + 1),
                               *((c, cap_s, self.n) for c in self.dps.values()),
                               (self.positions, cap_v, self.v),
                               *((c, cap_v, self.v) for c in self.dpv.values())):
            if copy or cap < col.capacity:
                col.rebuild(cap, used)
            else:
                col.grow(cap)

    def source(self) -> Source:
        """The used part, as read-only slices."""
        header = dict(self.header)
        header["NB_STREAMLINES"], header["NB_VERTICES"] = self.n, self.v

        def bound(table: Mapping[str, _Column], rows: int) -> LazyArrays:
            # bind the current maps now (views cost nothing): a view taken from this
            # source must keep reading these files, whatever later appends or resizes do
            return LazyArrays.from_dict({key: col.used(rows) for key, col in table.items()})

        n, v = self.n, self.v
        positions = bound({"positions": self.positions}, v)
        src = _GrowableSource(
            header=header, positions=positions, offsets=self.offsets.used(n + 1),
            dps=bound(self.dps, n), dpv=bound(self.dpv, v),
            groups={g: buf.view() for g, buf in self.groups.items()},
            dpg={g: LazyArrays.from_dict(t) for g, t in self.dpg.items()},
            path=None, container=self)
        src.preferred_offsets = self.offsets_dtype
        return src

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            remove_temp_dir(self.folder)


def _specs(table: Mapping[str, np.ndarray]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    out = {}
    for key in table:
        dtype, shape = table.spec(key) if hasattr(table, "spec") else \
            (np.asarray(table[key]).dtype, np.asarray(table[key]).shape)
        out[key] = (np.dtype(dtype), tuple(shape[1:]))
    return out


# ------------------------------------------------------------------- class
class GrowableTrxFile(TrxFile, writable=True):
    """A writable, file-backed TRX with spare capacity; made by :meth:`TrxFile.empty`.

    It is a :class:`TrxFile` like any other (select, save, concatenate...);
    :meth:`append` adds streamlines in place and :meth:`resize` changes the
    capacity in place. The arrays it hands out are read-only.
    """

    def __init__(self, store: _Store) -> None:
        self._store = store
        super().__init__(store.source())

    @classmethod
    def create(cls, capacity_streamlines: int = 0, capacity_vertices: int = 0,
               like: TrxFile | None = None, *, affine: np.ndarray | None = None,
               dimensions: Sequence[int] | None = None, positions_dtype: Any = None,
               offsets_dtype: Any = None) -> GrowableTrxFile:
        """See :meth:`TrxFile.empty`."""
        cap_s, cap_v = int(capacity_streamlines), int(capacity_vertices)
        if cap_s < 0 or cap_v < 0:
            raise ValueError(f"capacities must be >= 0, got {cap_s} streamlines and "
                             f"{cap_v} vertices")
        if like is not None:
            header = {k: v for k, v in like.header.items()
                      if k not in ("NB_STREAMLINES", "NB_VERTICES")}
            pos_dt, off_dt = like.positions_dtype, like.offsets_dtype
            dps, dpv = _specs(like.dps), _specs(like.dpv)
        else:
            header = {"VOXEL_TO_RASMM": np.eye(4), "DIMENSIONS": np.array([1, 1, 1])}
            pos_dt, off_dt = np.dtype("<f4"), np.dtype("<u8")
            dps = dpv = None
        if affine is not None:
            header["VOXEL_TO_RASMM"] = np.array(affine, dtype=np.float64).reshape(4, 4)
        if dimensions is not None:
            header["DIMENSIONS"] = np.array([int(d) for d in dimensions], dtype=np.int64)
        if positions_dtype is not None:
            pos_dt = positions_dtype
        if offsets_dtype is not None:
            off_dt = offsets_dtype
        pos_dt = check_dtype(pos_dt, POSITION_DTYPES, "positions")
        off_dt = check_dtype(off_dt, OFFSET_DTYPES, "offsets")
        fixed = like is not None
        store = _Store(header, pos_dt, off_dt, cap_s, cap_v, dps, dpv, template_fixed=fixed)
        store.space_fixed = fixed or affine is not None or dimensions is not None
        return cls(store)

    @property
    def capacity(self) -> tuple[int, int]:
        """(streamlines, vertices) that fit without growing."""
        return self._store.cap_s, self._store.cap_v

    def _refresh(self) -> None:
        self._src = self._store.source()
        self.groups = dict(self._src.groups)
        self.dpg = dict(self._src.dpg)
        self._lengths = None
        self._vertex_index = None

    def _check_open(self) -> None:
        if self._store.closed:
            raise ValueError("this growable TRX is closed")

    # ------------------------------------------------------------------ append
    def append(self, other: Any, *, atol: float = 1e-3,
               ignore_extra_keys: bool = False) -> GrowableTrxFile:
        """Append streamlines (and their dps, dpv, groups and dpg) in place.

        Parameters
        ----------
        other : TrxFile, nibabel Tractogram / TractogramFile, or dipy StatefulTractogram
            What to append (a view appends its selection). A TrxFile, a
            TractogramFile (TRK...) and a StatefulTractogram carry a space, which
            must match this file's (affine within ``atol``, same dimensions); a
            plain nibabel ``Tractogram`` is taken as RAS+ mm in this file's space.
        atol : float
            Tolerance on ``VOXEL_TO_RASMM``.
        ignore_extra_keys : bool
            Drop dps/dpv keys that ``other`` has and this file has not, instead
            of raising.

        Returns
        -------
        GrowableTrxFile
            ``self`` (appended in place, so calls can be chained).

        Raises
        ------
        ValueError
            On a space mismatch, a dps/dpv key of this file missing from
            ``other`` or with other columns or a dtype that cannot be cast, an
            extra key (unless ``ignore_extra_keys``), or a dpg value of a group
            conflicting with this file's.
        TypeError
            If ``other`` is of another type.

        Notes
        -----
        Space, dps and dpv keys (and their dtypes) are fixed by ``like`` in
        :meth:`TrxFile.empty`; without ``like``, the first append fixes the keys
        and, when no ``affine``/``dimensions`` were given, the space. Groups
        are the union of the names seen, re-indexed; dpg values are added for
        new groups and must be equal for groups that already have them.
        Capacity grows by :data:`GROWTH` when needed.
        """
        self._check_open()
        store = self._store
        trx = self._as_trx(other)
        if not store.space_fixed:
            store.header["VOXEL_TO_RASMM"], store.header["DIMENSIONS"] = trx.affine, trx.dimensions
            store.space_fixed = True
            self._refresh()
        diff = space_mismatch(self.affine, self.dimensions, trx.affine, trx.dimensions, atol)
        if diff:
            raise SpaceMismatchError(trx.shown_path or IN_MEMORY, None, f"cannot append "
                                     f"{_name(trx)}: its space differs from this "
                                     f"tractogram's: {diff}")
        if not store.template_fixed:
            store.set_keys(_specs(trx.dps), _specs(trx.dpv))
            store.template_fixed = True
        plan = {"dps": self._key_plan("dps", store.dps, trx.dps, trx, ignore_extra_keys),
                "dpv": self._key_plan("dpv", store.dpv, trx.dpv, trx, ignore_extra_keys)}
        new_dpg = self._dpg_plan(trx)

        n0, v0 = store.n, store.v
        n1, v1 = n0 + len(trx), v0 + trx.nb_vertices
        store.reserve(n1, v1)
        self._copy_rows(trx, plan, n0, v0)
        gdt = group_dtype(n1)
        for name, idx in trx.groups.items():
            buf = store.groups.setdefault(name, _GrowBuffer(gdt))
            buf.extend(np.asarray(idx, dtype=np.int64) + n0, gdt)
        for group, table in new_dpg.items():
            store.dpg.setdefault(group, {}).update(table)
        store.n, store.v = n1, v1
        self._refresh()
        return self

    def _as_trx(self, other: Any) -> TrxFile:
        if isinstance(other, TrxFile):
            return other
        from nibabel.streamlines.tractogram import Tractogram
        from nibabel.streamlines.tractogram_file import TractogramFile

        if isinstance(other, (Tractogram, TractogramFile)):
            affine, _ = tractogram_space(other)
            if affine is None:  # a plain Tractogram: RAS+ mm, no space of its own
                return TrxFile.from_tractogram(other, affine=self.affine,
                                               dimensions=self.dimensions)
            return TrxFile.from_tractogram(other)
        try:
            from dipy.io.stateful_tractogram import StatefulTractogram
        except ImportError:  # pragma: no cover - dipy is a dependency
            StatefulTractogram = ()  # noqa: N806
        if isinstance(other, StatefulTractogram):
            return TrxFile.from_sft(other)
        raise TypeError(f"cannot append a {type(other).__name__}: expected a TrxFile, a "
                        "nibabel Tractogram or a dipy StatefulTractogram")

    @staticmethod
    def _key_plan(what: str, mine: Mapping[str, _Column], theirs: Mapping[str, np.ndarray],
                  trx: TrxFile, ignore_extra: bool) -> dict[str, _Column]:
        """key -> destination column, after checking ``theirs`` can fill ``mine``."""
        missing = sorted(set(mine) - set(theirs))
        if missing:
            raise ValueError(f"cannot append {_name(trx)}: it has no {what} "
                             f"{', '.join(map(repr, missing))}, which this tractogram has")
        extra = sorted(set(theirs) - set(mine))
        if extra and not ignore_extra:
            raise ValueError(f"cannot append {_name(trx)}: its {what} "
                             f"{', '.join(map(repr, extra))} would be lost (this tractogram "
                             "has no such key); pass ignore_extra_keys=True to drop them")
        specs = _specs(theirs)
        for key, col in mine.items():
            dtype, tail = specs[key]
            if tail != col.tail and row_width(tail) != row_width(col.tail):  # (n,) ~ (n, 1)
                raise ValueError(f"cannot append {_name(trx)}: {what} {key!r} has "
                                 f"{row_width(tail)} column(s) instead of {row_width(col.tail)}")
            if not np.can_cast(dtype, col.dtype, "same_kind"):
                raise ValueError(f"cannot append {_name(trx)}: {what} {key!r} is "
                                 f"{dtype_name(dtype)}, which does not cast to "
                                 f"{dtype_name(col.dtype)}")
        return dict(mine)

    def _dpg_plan(self, trx: TrxFile) -> dict[str, dict[str, np.ndarray]]:
        out: dict[str, dict[str, np.ndarray]] = {}
        for group, table in trx.dpg.items():
            have = self._store.dpg.get(group, {})
            for key in table:
                value = np.array(table[key])
                if key in have and not identical_arrays(have[key], value):
                    raise ValueError(f"cannot append {_name(trx)}: dpg {group}/{key} is "
                                     f"{value.tolist()} there and {have[key].tolist()} here")
                out.setdefault(group, {})[key] = value
        return out

    def _copy_rows(self, trx: TrxFile, plan: dict[str, dict[str, _Column]], n0: int,
                   v0: int) -> None:
        store = self._store
        src = trx.source_arrays()  # read with bounded preads (a map can be cut short: SIGBUS)
        positions = src.positions.reader("positions")
        dpv = {key: src.dpv.reader(key) for key in plan["dpv"]}
        dps = {key: src.dps.reader(key) for key in plan["dps"]}
        offsets = store.offsets.array
        offsets[0] = 0
        n, v = n0, v0
        total = trx.nb_vertices
        try:
            for chunk in trx.iter_chunks(CHUNK_VERTICES):
                m, k = len(chunk.lengths), int(chunk.lengths.sum())
                store.positions.array[v:v + k] = positions.take(chunk.vertices, view=True)
                for key, col in plan["dpv"].items():
                    col.array[v:v + k] = dpv[key].take(chunk.vertices, view=True).reshape(
                        (k, *col.tail))
                for key, col in plan["dps"].items():
                    col.array[n:n + m] = dps[key].take(chunk.streamlines, view=True).reshape(
                        (m, *col.tail))
                offsets[n + 1:n + m + 1] = np.cumsum(chunk.lengths, dtype=np.int64) + v
                n, v = n + m, v + k
                if total > CHUNK_VERTICES:
                    log.info("appended %d / %d vertices of %s", v - v0, total, _name(trx))
        finally:
            for reader in (positions, *dpv.values(), *dps.values()):
                reader.release()
        trx.check_unchanged()

    # ------------------------------------------------------------------ resize
    def resize(self, nb_streamlines: int | None = None, nb_vertices: int | None = None, *,
               keep_empty_groups: bool = False) -> GrowableTrxFile:
        """Set the capacity in place, truncating to the first streamlines if asked.

        Parameters
        ----------
        nb_streamlines : int, optional
            New streamline capacity. Fewer than ``len(self)`` truncates to the
            first ``nb_streamlines`` (their dps/dpv kept, groups cut to them);
            None trims to ``len(self)``.
        nb_vertices : int, optional
            New vertex capacity; None trims to the vertices in use. Streamlines
            are never cut: fewer than the kept streamlines' vertices raises.
        keep_empty_groups : bool
            Keep groups that truncation leaves empty (dropped by default, with
            their dpg, as :meth:`TrxFile.select` does).

        Returns
        -------
        GrowableTrxFile
            ``self``, resized in place. Views made earlier keep their data.

        Raises
        ------
        ValueError
            If ``nb_vertices`` is below the vertices kept, or a count is negative.
        """
        self._check_open()
        store = self._store
        n_before = store.n
        keep = store.n if nb_streamlines is None else min(int(nb_streamlines), store.n)
        if keep < 0:
            raise ValueError(f"nb_streamlines must be >= 0, got {nb_streamlines}")
        used_v = int(store.offsets.array[keep])
        cap_s = keep if nb_streamlines is None else int(nb_streamlines)
        cap_v = used_v if nb_vertices is None else int(nb_vertices)
        if cap_v < used_v:
            raise ValueError(f"nb_vertices={cap_v} is fewer than the {used_v} vertices of the "
                             f"first {keep} streamlines; streamlines are never cut (give "
                             "nb_streamlines to truncate)")
        if keep < store.n:
            log.info("truncating from %d to %d streamlines", store.n, keep)
            for name in list(store.groups):
                store.groups[name].keep_below(keep)
                if store.groups[name].count == 0 and not keep_empty_groups:
                    del store.groups[name]
                    store.dpg.pop(name, None)
            store.n, store.v = keep, used_v
        store.set_capacity(cap_s, cap_v, copy=keep < n_before)
        self._refresh()
        return self


def _name(trx: TrxFile) -> str:
    return os.path.basename(trx.shown_path) if trx.shown_path else "the tractogram"
