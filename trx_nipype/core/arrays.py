"""Small array helpers shared by the engine: lazy maps, gathers, index ranges."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np


def frozen_copy(arr: np.ndarray) -> np.ndarray:
    """A read-only copy of ``arr`` whose ``writeable`` flag cannot be set back to True.

    >>> a = frozen_copy(np.arange(3))
    >>> a.flags.writeable
    False
    """
    arr = np.ascontiguousarray(arr)
    return np.frombuffer(arr.tobytes(), dtype=arr.dtype).reshape(arr.shape)


class LazyArrays(Mapping):
    """``name -> array`` where each array is made (mapped) on first access.

    ``spec(name)`` gives ``(dtype, shape)`` without touching the data, so that
    writers can size their output from metadata alone; ``reader(name)`` gives
    what operations read through instead of the map (see :mod:`.reading`).
    """

    def __init__(self) -> None:
        self._specs: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self._loaders: dict[str, Callable[[], np.ndarray]] = {}
        self._readers: dict[str, Callable[[], Any]] = {}
        self._cache: dict[str, np.ndarray] = {}

    @classmethod
    def from_dict(cls, arrays: Mapping[str, np.ndarray]) -> LazyArrays:
        """Wrap arrays already in memory."""
        out = cls()
        for key, arr in arrays.items():
            arr = np.asarray(arr)
            out.add(key, arr.dtype, arr.shape, lambda a=arr: a)
        return out

    def add(self, name: str, dtype: np.dtype, shape: tuple[int, ...],
            loader: Callable[[], np.ndarray], reader: Callable[[], Any] | None = None) -> None:
        """Declare ``name`` (dtype, shape); ``loader`` makes the array when first asked.

        ``reader`` makes a :class:`~trx_nipype.core.reading.MemberReader` of the
        same data (a file's member); without it, readers read the array.
        """
        self._specs[name] = (np.dtype(dtype), tuple(int(s) for s in shape))
        self._loaders[name] = loader
        if reader is not None:
            self._readers[name] = reader

    def spec(self, name: str) -> tuple[np.dtype, tuple[int, ...]]:
        """``(dtype, shape)`` of ``name``, without loading it."""
        return self._specs[name]

    def reader(self, name: str) -> Any:
        """How operations read ``name``: ``pread`` s of its file, or the array in memory."""
        make = self._readers.get(name)
        return make() if make is not None else ArrayReader(self[name])

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = self._loaders[name]()
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __contains__(self, name: object) -> bool:  # Mapping's would load (map) the array
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v[0]}{list(v[1])}" for k, v in self._specs.items())
        return "{" + inner + "}"


class GatheredArrays(Mapping):
    """A view of a :class:`LazyArrays` whose rows are picked by an index.

    ``index`` is a callable returning the row indices (computed only when an
    array is actually asked for), and ``length`` the number of rows.
    """

    def __init__(self, base: LazyArrays | GatheredArrays, index: Callable[[], np.ndarray],
                 length: int) -> None:
        self._base = base
        self._index = index
        self._length = int(length)
        self._cache: dict[str, np.ndarray] = {}

    def spec(self, name: str) -> tuple[np.dtype, tuple[int, ...]]:
        """``(dtype, shape)`` of ``name`` in this view, without gathering it."""
        dtype, shape = self._base.spec(name)
        return dtype, (self._length, *shape[1:])

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = take_rows(np.asarray(self._base[name]), self._index())
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __contains__(self, name: object) -> bool:  # without gathering
        return name in self._base

    def __len__(self) -> int:
        return len(self._base)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {self.spec(k)[0]}{list(self.spec(k)[1])}" for k in self)
        return "{" + inner + "}"


class ArrayReader:
    """A reader over an array already in memory (or a private map).

    The interface of :class:`~trx_nipype.core.reading.MemberReader` (which
    reads a file's member with ``pread`` s), so that writers read every source
    the same way.
    """

    file: Any = None  # no file: nothing to copy whole, nothing to check
    crc: int | None = None

    def __init__(self, arr: Any) -> None:
        self.arr = arr
        self.dtype = np.dtype(arr.dtype)
        self.nrows = int(arr.shape[0]) if len(arr.shape) else 0
        self.tail = tuple(int(s) for s in arr.shape[1:])
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.tail, dtype=np.int64))
        self.nbytes = self.nrows * self.row_bytes

    def rows(self, start: int, stop: int, out: np.ndarray | None = None, *,
             view: bool = False) -> np.ndarray:
        """Rows ``start:stop`` (a view)."""
        return np.asarray(self.arr[start:stop])

    def gather(self, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rows at ``index``."""
        return np.asarray(take_rows(self.arr, np.asarray(index, dtype=np.int64)))

    def gather_runs(self, starts: np.ndarray, lengths: np.ndarray,
                    out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``s:s + n`` for each ``(s, n)``, concatenated."""
        if isinstance(self.arr, np.ndarray):
            return gather_runs(self.arr, starts, lengths)
        return self.gather(ranges_index(starts, lengths), out)  # an array-like: its own indexing

    def take(self, rows: slice | np.ndarray, out: np.ndarray | None = None, *,
             view: bool = False) -> np.ndarray:
        """Rows of a slice (a view) or at indices."""
        if isinstance(rows, slice):
            return self.rows(rows.start, rows.stop, out)
        return self.gather(rows, out)

    def release(self) -> None:
        """Nothing to drop."""


def take_rows(arr: Any, index: slice | np.ndarray) -> Any:
    """``arr[index]`` along the first axis: a view for a slice, a gather for indices.

    Gathers go through :func:`gather_rows` (fast on unaligned maps too).

    >>> take_rows(np.arange(6).reshape(3, 2), np.array([2, 0])).tolist()
    [[4, 5], [0, 1]]
    """
    if isinstance(index, slice) or not isinstance(arr, np.ndarray):
        return arr[index]
    return gather_rows(arr, np.asarray(index))


def gather_rows(arr: np.ndarray, index: np.ndarray, out: np.ndarray | None = None, *,
                checked: bool = False) -> np.ndarray:
    """The rows of ``arr`` at ``index`` (into ``out`` if given), as fast unaligned as aligned.

    ``np.take(..., axis=0)`` gathers rows of a 2-D array about 3x faster than
    fancy indexing (``arr[idx]``), but on an *unaligned* array (a member of a
    zip written by another tool, mapped at an odd offset) it first copies the
    whole array (2.9 s and 1.2 GB for 1.2 GB of positions). Rows of a
    C-contiguous array are therefore taken as opaque records of their bytes
    (a ``void`` dtype, which has no alignment): as fast as an aligned take,
    whatever the offset. ``checked``: the caller made sure the indices are in
    ``0..len(arr) - 1``.

    >>> a = np.frombuffer(bytes(1) + np.arange(6, dtype="<f4").tobytes(), "<f4", 6, 1)
    >>> a.flags.aligned, gather_rows(a.reshape(3, 2), np.array([2, 0])).tolist()
    (False, [[4.0, 5.0], [0.0, 1.0]])
    """
    idx = np.asarray(index, dtype=np.intp)
    if out is None:
        out = np.empty((len(idx), *arr.shape[1:]), dtype=arr.dtype)
    if not len(idx):
        return out
    if not checked:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < -len(arr) or hi >= len(arr):
            raise IndexError(f"row {lo if lo < -len(arr) else hi} out of range for "
                             f"{len(arr)} rows")
        if lo < 0:
            idx = np.where(idx < 0, idx + len(arr), idx)
    if arr.flags.c_contiguous and arr.ndim and arr.size and out.flags.c_contiguous:
        record = np.dtype((np.void, arr.itemsize * (arr.size // len(arr))))
        np.take(arr.reshape(len(arr), -1).view(record).reshape(-1), idx,
                out=out.reshape(len(idx), -1).view(record).reshape(-1), mode="clip")
    elif arr.flags.aligned:
        np.take(arr, idx, axis=0, out=out)
    else:
        out[...] = arr[idx]
    return out


def identical_arrays(a: Any, b: Any) -> bool:
    """Same dtype, same shape, same values (NaN equal to NaN in float and complex arrays).

    >>> identical_arrays(np.array([1.0, np.nan]), np.array([1.0, np.nan]))
    True
    >>> identical_arrays(np.array([1], np.int8), np.array([1], np.int16))
    False
    """
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and bool(
        np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def row_width(tail: tuple[int, ...]) -> int:
    """Values per row of an array whose rows have shape ``tail`` (1 for a 1-D array).

    >>> row_width(()), row_width((3,))
    (1, 3)
    """
    return int(np.prod(tail, dtype=np.int64)) if tail else 1


def ranges_index(starts: np.ndarray, lengths: np.ndarray, out: np.ndarray | None = None
                 ) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each (s, n), vectorised.

    ``out`` (int64, at least ``sum(lengths)`` long): where to write, for callers that
    reuse one buffer from chunk to chunk (fresh memory costs a page fault per 4 KB).

    >>> ranges_index(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist()
    [5, 6, 9, 10, 11]
    >>> ranges_index(np.array([5, 9, 1]), np.array([0, 2, 1])).tolist()
    [9, 10, 1]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    keep = lengths > 0
    st, ln = np.asarray(starts, dtype=np.int64)[keep], lengths[keep]
    # steps of 1, a jump at each run's start, then one cumulative sum in place:
    # one output-sized array (repeat + arange + add made three, 4x slower)
    if out is None:
        out = np.ones(total, dtype=np.int64)
    else:
        out = out[:total]
        out.fill(1)
    out[(np.cumsum(ln) - ln)[1:]] = st[1:] - (st[:-1] + ln[:-1] - 1)
    out[0] = st[0]
    np.cumsum(out, out=out)
    return out


#: :func:`gather_runs` copies each length's runs at once; past this many distinct lengths
#: per run gathered (few runs of each length), a vertex index is cheaper
RUNS_PER_LENGTH = 4


def gather_runs(arr: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                out: np.ndarray | None = None, *, checked: bool = False,
                index: np.ndarray | None = None) -> np.ndarray:
    """``arr[s:s + n]`` for each ``(s, n)``, concatenated (into ``out`` if given).

    What a selection of streamlines needs from a per-vertex array, without a
    vertex index: the runs of one length ``L`` are rows of a view whose records
    are ``L`` rows long (a strided view over the same bytes, one record starting
    at every row), so that one fancy index copies every run of that length
    whole, and a second puts them in their places in ``out``. A vertex index
    (:func:`ranges_index`, then :func:`gather_rows`) costs ~40 bytes of memory
    traffic per vertex (8-byte index written, summed, read, bounds-checked) to
    move 12 bytes of positions; this copies the bytes twice, the second time
    from cache. Many distinct lengths with few runs each (more than one length
    per :data:`RUNS_PER_LENGTH` runs), or an array that is not C-contiguous,
    go through the index instead (built in ``index``, an int64 buffer reused by
    the caller, when it is long enough). ``checked``: every run is within ``arr``.

    >>> a = np.arange(10).reshape(5, 2)
    >>> gather_runs(a, np.array([3, 0, 1]), np.array([2, 1, 0])).tolist()
    [[6, 7], [8, 9], [0, 1]]
    >>> b = np.frombuffer(bytes(1) + np.arange(5, dtype="<f4").tobytes(), "<f4", 5, 1)
    >>> gather_runs(b, np.array([4, 1]), np.array([1, 2])).tolist()
    [4.0, 1.0, 2.0]
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if out is None:
        out = np.empty((total, *arr.shape[1:]), dtype=arr.dtype)
    if len(out) != total or out.shape[1:] != arr.shape[1:] or out.dtype != arr.dtype:
        raise ValueError(f"gather_runs: out has shape {out.shape} ({out.dtype}); "
                         f"{(total, *arr.shape[1:])} ({arr.dtype}) needed")
    if total == 0:
        return out
    n = len(arr)
    if not checked:
        ends = starts + lengths
        if int(starts.min()) < 0 or int(ends.max()) > n:
            raise IndexError(f"a run of rows out of range for {n} rows")
    # a stable sort of 16-bit keys is a radix sort: ~10x faster than one of int64
    key = lengths.astype(np.uint16) if int(lengths.max()) <= 0xFFFF else lengths
    order = np.argsort(key, kind="stable")
    by_length = lengths[order]
    cuts = np.flatnonzero(by_length[1:] != by_length[:-1]) + 1
    if not (arr.flags.c_contiguous and out.flags.c_contiguous) or \
            (len(cuts) + 1) * RUNS_PER_LENGTH > len(lengths):
        if index is not None and len(index) < total:
            index = None
        return gather_rows(arr, ranges_index(starts, lengths, out=index), out=out,
                           checked=True)
    row_bytes = arr.itemsize * (arr.size // n)
    src = arr.reshape(-1).view(np.uint8)
    dst = out.reshape(-1).view(np.uint8)
    out_starts = (np.cumsum(lengths) - lengths)[order]
    in_starts = starts[order]
    bounds = [0, *cuts.tolist(), len(order)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        length = int(by_length[a])
        if length == 0:
            continue
        record = np.dtype((np.void, row_bytes * length))
        # one record of ``length`` rows starting at every row (records overlap)
        runs_in = np.ndarray((n - length + 1,), record, src, 0, (row_bytes,))
        runs_out = np.ndarray((total - length + 1,), record, dst, 0, (row_bytes,))
        runs_out[out_starts[a:b]] = runs_in[in_starts[a:b]]
    return out


def split_by_budget(lengths: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Split ``range(len(lengths))`` into runs whose summed length is at most ``budget``.

    A single item larger than the budget gets a run of its own.

    >>> split_by_budget(np.array([3, 3, 3, 10, 1]), 6)
    [(0, 2), (2, 3), (3, 4), (4, 5)]
    """
    n = len(lengths)
    if n == 0:
        return []
    cum = np.cumsum(np.asarray(lengths, dtype=np.int64))
    runs = []
    start, base = 0, 0
    while start < n:
        stop = int(np.searchsorted(cum, base + budget, side="right"))
        stop = max(stop, start + 1)
        runs.append((start, stop))
        base = int(cum[stop - 1])
        start = stop
    return runs
