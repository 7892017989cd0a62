"""Per-streamline measures computed chunk by chunk over the maps (bounded memory).

>>> import numpy as np
>>> from trx_nipype.core import TrxFile
>>> trx = TrxFile.from_arrays(np.array([[0, 0, 0], [3, 4, 0], [3, 4, 2], [1, 1, 1]],
...                                    dtype=np.float32), lengths=[3, 1])
>>> lengths_mm(trx).tolist()
[7.0, 0.0]
"""

from __future__ import annotations

import numpy as np

from .arrays import take_rows
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
    positions = trx.source_arrays().positions["positions"]
    done = 0
    for chunk in trx.iter_chunks(chunk_vertices):
        lens = np.asarray(chunk.lengths, dtype=np.int64)
        n = len(lens)
        if int(lens.sum()) > 1:
            pts = np.asarray(take_rows(positions, chunk.vertices), dtype=np.float64)
            seg = _segment_lengths(pts)
            ends = np.cumsum(lens)
            # a segment from the last point of one streamline to the first of the next
            # belongs to neither
            cut = ends[(lens > 0) & (ends < len(pts))] - 1
            seg[cut] = 0.0
            total = np.concatenate(([0.0], np.cumsum(seg)))
            starts = ends - lens
            last = np.maximum(ends - 1, starts)
            out[done:done + n] = np.where(lens > 1, total[last] - total[starts], 0.0)
        done += n
    return out


def _segment_lengths(pts: np.ndarray) -> np.ndarray:
    """``|pts[i + 1] - pts[i]|`` for (n, 3) float64 points, in place of a strided reduce.

    The same bits as ``np.sqrt(np.square(np.diff(pts, axis=0)).sum(axis=1))``
    (the same order of additions: (dx² + dy²) + dz²), three times faster: a
    reduction over an axis of length 3 is numpy's slowest case.
    """
    d = pts[1:] - pts[:-1]
    np.multiply(d, d, out=d)
    seg = d[:, 0] + d[:, 1]
    seg += d[:, 2]
    return np.sqrt(seg, out=seg)

