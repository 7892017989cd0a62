"""``resample``: every streamline to N equally spaced points, or to a fixed step in mm.

A fixed count places the points with dipy's compiled
``dipy.tracking.streamline.set_number_of_points``, chunk by chunk (the same
positions). dipy takes one count for every streamline and moves positions
only, so a fixed step (each streamline its own count) and the data per vertex
go through a vectorised linear interpolation that places the points the same
way (equal arc-length spacing, first and last points kept): positions equal to
dipy's to float32 precision, and the data per vertex interpolated with the
same weights.

>>> import tempfile, numpy as np
>>> from trx_nipype.core import TrxFile, save, load
>>> tmp = tempfile.mkdtemp()
>>> pos = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 4]], dtype=np.float32)
>>> src = save(TrxFile.from_arrays(pos, lengths=[3]), f"{tmp}/in.trx")
>>> res = resample_streamlines(src, f"{tmp}/out.trx", nb_points=5)
>>> with load(res.out_file) as trx:
...     trx.positions[:, 2].tolist()
[0.0, 1.0, 2.0, 3.0, 4.0]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..dtypes import DTYPES, dtype_name, format_member_name
from ..errors import ParameterError, param
from ..formats import SPACED_FORMATS
from ..metrics import (
    as_sequence,
    lengths_mm,
    packed_data,
    segment_lengths,
    streamline_ids,
)
from ..saving import MemberStream, offsets_chunks, trx_members
from .analysis_io import ANALYSIS_CHUNK_VERTICES, read_tractogram, reference_path
from .inputs import check_inputs
from .outputs import check_result_output, output_format, write_streams

log = logging.getLogger(__name__)


@dataclass
class ResampleResult:
    """What :func:`resample_streamlines` wrote."""

    out_file: Path
    nb_streamlines: int
    nb_vertices: int
    dpv_interpolated: list[str]


def counts_for_step(lengths: np.ndarray, step: float) -> np.ndarray:
    """Points per streamline so that consecutive points are at most ``step`` mm apart.

    ``ceil(length / step) + 1`` (at least 2) for each streamline of two points
    or more.

    >>> counts_for_step(np.array([0.0, 1.0, 2.5]), 1.0).tolist()
    [2, 2, 4]
    """
    if not step > 0:
        raise ValueError(f"the step must be positive, got {step}")
    return np.maximum(np.ceil(np.asarray(lengths) / step - 1e-9).astype(np.int64) + 1, 2)


def interpolation_weights(pos: np.ndarray, lens: np.ndarray, new_lens: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Where each new point falls: ``(k, t)`` with new = ``p[k] + t (p[k + 1] - p[k])``.

    Points ``j = 0 .. m - 1`` of a streamline of length L sit at arc length
    ``j L / (m - 1)`` (the last point exactly at the end). A one-point
    streamline repeats its point; a streamline that gets 0 new points gets none.

    Parameters
    ----------
    pos : ndarray, shape (V, 3)
        The chunk's vertices (float64 for accuracy).
    lens : ndarray, shape (n,)
        Vertices per streamline (summing to V).
    new_lens : ndarray, shape (n,)
        New vertices per streamline.

    Returns
    -------
    k : ndarray of int64, shape (sum(new_lens),)
        Index (into ``pos``) of the vertex before each new point.
    t : ndarray of float64
        Fraction of the way to the next vertex (0 where there is none).
    """
    lens = np.asarray(lens, dtype=np.int64)
    new_lens = np.where(lens > 0, np.asarray(new_lens, dtype=np.int64), 0)
    seg = np.zeros(len(pos), dtype=np.float64)
    if len(pos) > 1:
        seg[1:] = segment_lengths(pos)
    starts = np.cumsum(lens) - lens
    seg[starts[lens > 0]] = 0.0  # no segment leads into a streamline's first vertex
    arc = np.cumsum(seg)  # non-decreasing over the chunk
    sl_len = arc[np.maximum(starts + lens - 1, 0)] - arc[np.minimum(starts, len(arc) - 1)] \
        if len(arc) else np.zeros(len(lens))
    sid = streamline_ids(new_lens)
    j = np.arange(int(new_lens.sum()), dtype=np.int64) - (np.cumsum(new_lens) - new_lens)[sid]
    denom = np.maximum(new_lens - 1, 1)[sid]
    target = arc[starts[sid]] + sl_len[sid] * (j / denom)
    k = np.searchsorted(arc, target, side="right") - 1
    last_seg = starts + np.maximum(lens - 2, 0)  # the last vertex that starts a segment
    k = np.clip(k, starts[sid], last_seg[sid])
    nxt = np.minimum(k + 1, (starts + lens - 1)[sid])
    step = arc[nxt] - arc[k]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(step > 0, (target - arc[k]) / step, 0.0)
    np.clip(t, 0.0, 1.0, out=t)
    last = j == new_lens[sid] - 1  # exactly the streamline's last vertex, as dipy
    k[last] = (starts + lens - 1)[sid][last]
    t[last] = 0.0
    return k, t


def _interp(values: np.ndarray, k: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``v[k] + t (v[k + 1] - v[k])`` row by row (float64); ``t == 0`` reads ``v[k]`` only."""
    values = np.asarray(values, dtype=np.float64)
    a = values[k]
    moving = t > 0
    if moving.any():
        tt = t[moving].reshape(-1, *([1] * (values.ndim - 1)))
        a[moving] += tt * (values[k[moving] + 1] - a[moving])
    return a


def resample_streamlines(in_file: str | os.PathLike, out_file: str | os.PathLike, *,
                         nb_points: int | None = None, step: float | None = None,
                         drop_dpv: bool = False, reference: Any = None,
                         overwrite: bool = False,
                         chunk_vertices: int = ANALYSIS_CHUNK_VERTICES) -> ResampleResult:
    """Resample every streamline to ``nb_points`` points, or to points ``step`` mm apart.

    Parameters
    ----------
    in_file : str or os.PathLike
        A tractogram.
    out_file : str or os.PathLike
        Destination; its extension picks the format.
    nb_points : int, optional
        Points per streamline (at least 2), as ``set_number_of_points``.
    step : float, optional
        Largest distance between consecutive points in mm: each streamline
        gets ``ceil(length / step) + 1`` equally spaced points.
    drop_dpv : bool
        Leave the data per vertex out instead of interpolating it. Float data
        per vertex is interpolated linearly between the two nearest vertices;
        integer data cannot be, and is refused unless dropped.
    reference : path or object, optional
        The space of an input without one (TCK...), needed for a TRX or TRK
        output; a TRX or TRK input's space must agree with it.
    overwrite : bool
        Replace an existing output (only ever a tractogram; see
        :func:`~trx_nipype.core.operations.outputs.check_result_output`).
    chunk_vertices : int
        Vertices (read or written) per chunk.

    Returns
    -------
    ResampleResult

    Raises
    ------
    ValueError
        Neither or both of ``nb_points`` and ``step``, ``nb_points`` below 2,
        or integer data per vertex without ``drop_dpv``.
    trx_nipype.core.ParameterError
        A ``step`` that is not a finite distance above 0 mm, or a missing or
        disagreeing ``reference``.
    """
    if (nb_points is None) == (step is None):
        raise ValueError("give exactly one of the number of points and the step")
    if nb_points is not None and int(nb_points) < 2:
        raise ValueError(f"a resampled streamline needs at least 2 points, got {nb_points}")
    if step is not None and not 0 < step < np.inf:
        raise ParameterError(f"{param('step', step)}: expected a distance above 0 mm")
    ref_path = reference_path(reference)
    check_inputs(in_file, ref_path)
    target = check_result_output(out_file, inputs=[in_file, ref_path], overwrite=overwrite)
    src_name = os.fspath(in_file)
    needs_space = output_format(target) in SPACED_FORMATS
    with read_tractogram(in_file, reference, needs_space=needs_space) as trx:
        lens = np.asarray(trx.lengths, dtype=np.int64)
        if nb_points is not None:
            new_lens = np.full(len(trx), int(nb_points), dtype=np.int64)
        else:
            new_lens = counts_for_step(lengths_mm(trx, chunk_vertices=chunk_vertices), step)
        new_lens[lens == 0] = 0
        dpv_keys = [] if drop_dpv else sorted(trx.dpv)
        ints = [k for k in dpv_keys if trx.dpv.spec(k)[0].kind != "f"]
        if ints:
            raise ValueError(f"{src_name}: data per vertex {', '.join(map(repr, ints))} "
                             "holds integers, which cannot be interpolated between vertices; "
                             "drop the data per vertex (--drop-dpv / drop_dpv) to resample")
        header, members = trx_members(trx, dest=out_file)
        v_out = int(new_lens.sum())
        header["NB_VERTICES"] = v_out
        budget = np.maximum(lens, new_lens)
        src = trx.source_arrays()
        pos_dt = trx.positions_dtype

        def stream(key: str | None, dtype: np.dtype) -> Callable[[], Iterator[np.ndarray]]:
            """The resampled positions (``key`` None) or dpv ``key``, chunk by chunk."""
            def chunks() -> Iterator[np.ndarray]:
                done = 0
                reader = src.dpv.reader(key) if key is not None else None
                try:
                    for chunk, pos in trx.iter_positions(chunk_vertices, weights=budget,
                                                         dtype=np.float64):
                        n = len(chunk.lengths)
                        k, t = interpolation_weights(pos, chunk.lengths,
                                                     new_lens[done:done + n])
                        done += n
                        values = pos if reader is None else reader.take(chunk.vertices)
                        yield _interp(values, k, t).astype(dtype)
                finally:
                    if reader is not None:
                        reader.release()
            return chunks

        def dipy_positions() -> Iterator[np.ndarray]:
            # a fixed count: dipy's compiled set_number_of_points on each (writable) chunk
            from dipy.tracking.streamline import set_number_of_points

            work = np.float64 if pos_dt == np.float64 else np.float32
            m = int(nb_points)
            for chunk, pos in trx.iter_positions(chunk_vertices, weights=budget, dtype=work):
                lens_c = np.asarray(chunk.lengths)
                many = lens_c > 1
                if many.all():  # the usual chunk: no empty or one-point streamline to place
                    fixed = set_number_of_points(as_sequence(pos, lens_c), nb_points=m)
                    yield packed_data(fixed).astype(pos_dt, copy=False)
                    continue
                used = lens_c[lens_c > 0]
                out = np.zeros((len(used) * m, 3), dtype=work)
                if many.any():
                    fixed = set_number_of_points(
                        as_sequence(np.ascontiguousarray(pos[np.repeat(many, lens_c)]),
                                    lens_c[many]), nb_points=m)
                    out[np.repeat(used > 1, m)] = packed_data(fixed)
                if (used == 1).any():  # a one-point streamline repeats its point
                    starts = (np.cumsum(lens_c) - lens_c)[lens_c == 1]
                    out[np.repeat(used == 1, m)] = np.repeat(pos[starts], m, axis=0)
                yield out.astype(pos_dt, copy=False)

        kept = [m for m in members if not m.name.startswith(("offsets.", "positions.", "dpv/"))]
        off_dt = DTYPES["uint64"] if v_out > np.iinfo(np.uint32).max else \
            DTYPES[dtype_name(trx.offsets_dtype)]
        new = [MemberStream(f"offsets.{dtype_name(off_dt)}", (len(trx) + 1) * off_dt.itemsize,
                            lambda: offsets_chunks(iter([new_lens]), off_dt)),
               MemberStream(f"positions.3.{dtype_name(pos_dt)}", v_out * 3 * pos_dt.itemsize,
                            dipy_positions if nb_points is not None else stream(None, pos_dt))]
        for key in dpv_keys:
            dtype, shape = trx.dpv.spec(key)
            dtype = DTYPES[dtype_name(dtype)]
            width = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
            new.append(MemberStream(
                f"dpv/{format_member_name(key, (v_out, *shape[1:]), dtype)}",
                v_out * width * dtype.itemsize,
                stream(key, dtype)))
        out = write_streams(header, new + kept, out_file)
    log.info("resample: %s -> %s: %d streamlines, %d vertices", src_name, out, len(new_lens),
             v_out)
    return ResampleResult(out, len(new_lens), v_out, dpv_keys)
