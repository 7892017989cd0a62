"""Per-streamline measures computed chunk by chunk over the maps (bounded memory).

Loaded tractograms are read-only maps, and dipy's compiled functions
(``length``, ``set_number_of_points``, ...) refuse read-only buffers ("buffer
source array is read-only"). :func:`iter_streamlines` hands them writable
chunks instead (a copy of one chunk at a time, never of the whole file), and
:func:`lengths_mm` gives lengths in mm straight from the maps.

>>> import numpy as np
>>> from trx_nipype.core import TrxFile
>>> trx = TrxFile.from_arrays(np.array([[0, 0, 0], [3, 4, 0], [3, 4, 2], [1, 1, 1]],
...                                    dtype=np.float32), lengths=[3, 1])
>>> lengths_mm(trx).tolist()
[7.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from nibabel.streamlines import ArraySequence

from .trxfile import TrxFile

#: vertices per chunk for measures (x 3 x 8 bytes: 24 MB of float64 positions)
METRIC_CHUNK_VERTICES = 1_000_000


def lengths_mm(trx: TrxFile, *, chunk_vertices: int = METRIC_CHUNK_VERTICES) -> np.ndarray:
    """Length of every streamline in millimetres (float64), the sum of its segment lengths.

    The same measure as ``dipy.tracking.streamline.length``, computed over the
    read-only maps one chunk of streamlines at a time: anonymous memory stays
    at a few chunk-sized arrays plus the (N,) result, whatever the file size.
    A streamline of zero or one point has length 0.

    Parameters
    ----------
    trx : TrxFile
        A loaded tractogram or a view of one.
    chunk_vertices : int
        Vertices read per chunk.

    Returns
    -------
    numpy.ndarray
        ``(len(trx),)`` float64 lengths, in the tractogram's streamline order.
    """
    out = np.zeros(len(trx), dtype=np.float64)
    done = 0
    for chunk, pts in trx.iter_positions(chunk_vertices):
        lens = np.asarray(chunk.lengths, dtype=np.int64)
        n = len(lens)
        if int(lens.sum()) > 1:
            seg = segment_lengths(pts)
            ends = np.cumsum(lens)
            # a segment from the last point of one streamline to the first of the next
            # belongs to neither
            cut = ends[(lens > 0) & (ends < len(pts))] - 1
            seg[cut] = 0.0
            # each streamline of two points or more sums its segments up to the next
            # such streamline's first: what lies between is zeroed cross segments. One
            # pass, and no difference of large running sums (cumsum lost digits)
            several = lens > 1
            out[done:done + n][several] = np.add.reduceat(seg, (ends - lens)[several])
        done += n
    return out


def segment_lengths(points: np.ndarray) -> np.ndarray:
    """Distances between consecutive points (float64, ``len(points) - 1`` of them).

    Column by column (``(n, 3)`` reductions along the short axis are several
    times slower), in float64 whatever the points' dtype.

    >>> segment_lengths(np.array([[0, 0, 0], [3, 4, 0], [3, 4, 2]], np.float32)).tolist()
    [5.0, 2.0]
    """
    n = max(len(points) - 1, 0)
    out = np.zeros(n, dtype=np.float64)
    step = np.empty(n, dtype=np.float64)
    for axis in range(3):
        col = points[:, axis]
        np.subtract(col[1:], col[:-1], out=step, dtype=np.float64)
        step *= step
        out += step
    return np.sqrt(out, out=out)


def streamline_ids(lengths: np.ndarray) -> np.ndarray:
    """The streamline (0-based, local) of every vertex of a run of streamlines.

    >>> streamline_ids(np.array([2, 0, 3])).tolist()
    [0, 0, 2, 2, 2]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.repeat(np.arange(len(lengths)), lengths)


def iter_streamlines(trx: TrxFile, *, chunk_vertices: int = METRIC_CHUNK_VERTICES,
                     dtype: Any = np.float32) -> Iterator[ArraySequence]:
    """The streamlines as writable nibabel ``ArraySequence`` chunks, for dipy's functions.

    dipy's compiled functions (``length``, ``set_number_of_points``,
    ``orient_by_streamline``...) write-lock their inputs and refuse the
    read-only maps of a loaded file. Each chunk here is a private copy of at
    most ``chunk_vertices`` vertices (whole streamlines; one streamline larger
    than that makes a chunk of its own), so memory stays bounded whatever the
    file size; results are concatenated by the caller in streamline order.

    Parameters
    ----------
    trx : TrxFile
        A loaded tractogram or a view.
    chunk_vertices : int
        Vertices per chunk.
    dtype : dtype
        Of the chunks' positions (dipy takes float32 or float64).

    Yields
    ------
    nibabel.streamlines.ArraySequence

    Examples
    --------
    >>> from dipy.tracking.streamline import length
    >>> trx = TrxFile.from_arrays(np.array([[0, 0, 0], [3, 4, 0], [0, 0, 0], [0, 0, 2]],
    ...                                    dtype=np.float32), lengths=[2, 2])
    >>> np.concatenate([length(c) for c in iter_streamlines(trx, chunk_vertices=2)]).tolist()
    [5.0, 2.0]
    """
    for chunk, pos in trx.iter_positions(chunk_vertices, dtype=dtype):
        yield as_sequence(pos, chunk.lengths)


def packed_data(seq: ArraySequence) -> np.ndarray:
    """The points of an ``ArraySequence``, in order, as one array: its own buffer when
    its streamlines already lie packed end to end in it (what dipy's functions return),
    else a copy (``get_data``, which always copies)."""
    data, lengths = seq._data, np.asarray(seq._lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    if len(data) == (int(ends[-1]) if len(ends) else 0) and np.array_equal(
            np.asarray(seq._offsets, dtype=np.int64), ends - lengths):
        return data
    return seq.get_data()


def as_sequence(data: np.ndarray, lengths: np.ndarray) -> ArraySequence:
    """An ``ArraySequence`` over ``data`` (no copy), whose streamlines have ``lengths``."""
    lengths = np.asarray(lengths, dtype=np.intp)
    seq = ArraySequence()
    seq._data = data
    seq._offsets = np.cumsum(lengths) - lengths
    seq._lengths = lengths
    return seq
