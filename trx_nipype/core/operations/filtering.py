"""``filter``: keep streamlines by length in mm, by regions of interest, by per-streamline values.

One pass over the maps, chunk by chunk, decides which streamlines stay; the
output is a view of those (groups re-indexed, dps, dpv and dpg following the
selection) streamed through the one writer.

>>> import tempfile, numpy as np
>>> from trx_nipype.core import TrxFile, save, load
>>> tmp = tempfile.mkdtemp()
>>> pos = np.array([[0, 0, 0], [0, 0, 3], [0, 0, 0], [0, 0, 30]], dtype=np.float32)
>>> src = save(TrxFile.from_arrays(pos, lengths=[2, 2], dimensions=[40, 40, 40]),
...            f"{tmp}/in.trx")
>>> res = filter_streamlines(src, f"{tmp}/out.trx", min_length=10)
>>> res.nb_streamlines, res.removed
(1, {'length': 1})
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError, UsageError, param
from ..formats import SPACED_FORMATS
from ..metrics import lengths_mm, streamline_ids
from ..saving import trx_members
from ..trxfile import TrxFile
from .analysis_io import (
    ANALYSIS_CHUNK_VERTICES,
    Grid,
    grid_of,
    load_volume,
    read_tractogram,
    reference_path,
)
from .inputs import check_inputs
from .outputs import check_result_output, output_format, write_streams

log = logging.getLogger(__name__)

ROI_MODES = ("any", "endpoints")


@dataclass(frozen=True)
class DpsRange:
    """Keep streamlines whose data-per-streamline ``key`` lies in ``[low, high]``
    (None: unbounded on that side)."""

    key: str
    low: float | None = None
    high: float | None = None

    @classmethod
    def parse(cls, text: str) -> DpsRange:
        """``KEY:MIN:MAX`` (either bound may be empty; KEY may contain ``:``).

        >>> DpsRange.parse("weight:0.5:"), DpsRange.parse("a:b::2")
        (DpsRange(key='weight', low=0.5, high=None), DpsRange(key='a:b', low=None, high=2.0))
        """
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not parts[0]:
            raise ValueError(f"{text!r}: expected KEY:MIN:MAX (a bound may be empty)")
        try:
            low = float(parts[1]) if parts[1].strip() else None
            high = float(parts[2]) if parts[2].strip() else None
        except ValueError:
            raise ValueError(f"{text!r}: MIN and MAX must be numbers (or empty)") from None
        if any(b is not None and math.isnan(b) for b in (low, high)):
            raise ValueError(f"{text!r}: MIN and MAX must be numbers (or empty), not nan")
        if low is not None and high is not None and low > high:
            raise ValueError(f"{text!r}: MIN is above MAX")
        return cls(parts[0], low, high)


@dataclass
class FilterResult:
    """What :func:`filter_streamlines` did."""

    out_file: Path
    nb_input: int
    nb_streamlines: int
    #: criterion -> streamlines it removed (a streamline failing two counts twice)
    removed: dict[str, int] = field(default_factory=dict)


def _in_range(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    keep = np.ones(len(values), dtype=bool)
    if low is not None:
        keep &= values >= low
    if high is not None:
        keep &= values <= high
    return keep


def roi_hits(trx: TrxFile, masks: Sequence[np.ndarray], grid: Grid, *, mode: str = "any",
             chunk_vertices: int = ANALYSIS_CHUNK_VERTICES) -> np.ndarray:
    """Which streamlines reach each mask: ``(len(masks), len(trx))`` booleans.

    ``any``: some vertex lies in a nonzero voxel (``dipy.tracking.utils.target``);
    ``endpoints``: the first or the last vertex does. Voxels are found as dipy
    finds them (:meth:`Grid.voxels`); a vertex outside the grid is in no mask
    (dipy's ``target`` raises instead).
    """
    if mode not in ROI_MODES:
        raise ValueError(f"roi mode must be one of {', '.join(ROI_MODES)}, got {mode!r}")
    flat = [np.ascontiguousarray(np.asarray(m) != 0).ravel() for m in masks]
    hits = np.zeros((len(flat), len(trx)), dtype=bool)
    if not flat:
        return hits
    done = 0
    for chunk, pos in trx.iter_positions(chunk_vertices):
        lens = np.asarray(chunk.lengths, dtype=np.int64)
        n = len(lens)
        if mode == "endpoints":
            ends = np.cumsum(lens)
            nonempty = lens > 0
            rows = np.concatenate([(ends - lens)[nonempty], ends[nonempty] - 1])
            owner = np.concatenate([np.flatnonzero(nonempty)] * 2)
            pos = np.asarray(pos[rows] if len(rows) else pos[:0])
        else:
            owner = streamline_ids(lens)
        lin, inside = grid.linear_voxels(pos)
        lin = lin[inside]
        owner = owner[inside]
        for m, mask in enumerate(flat):
            hit_owner = owner[mask[lin]]
            hits[m, done + hit_owner] = True
        done += n
    return hits


def filter_streamlines(in_file: str | os.PathLike, out_file: str | os.PathLike, *,
                       min_length: float | None = None, max_length: float | None = None,
                       include: Sequence[str | os.PathLike] = (),
                       exclude: Sequence[str | os.PathLike] = (), roi_mode: str = "any",
                       dps_ranges: Sequence[DpsRange | str] = (), reference: Any = None,
                       overwrite: bool = False,
                       chunk_vertices: int = ANALYSIS_CHUNK_VERTICES) -> FilterResult:
    """Keep the streamlines that pass every criterion; write them to ``out_file``.

    Parameters
    ----------
    in_file : str or os.PathLike
        A tractogram (TRX zip or folder; TRK... are read into memory).
    out_file : str or os.PathLike
        Destination; its extension picks the format (``.trx``, none for a TRX
        folder, ``.trk``, ``.tck``...).
    min_length, max_length : float, optional
        Bounds (inclusive) on the length in mm (:func:`~trx_nipype.core.metrics.lengths_mm`,
        equal to ``dipy.tracking.streamline.length``): finite, 0 or more.
    include, exclude : sequence of paths
        NIfTI masks on the tractogram's grid: keep the streamlines that reach
        every ``include`` mask and no ``exclude`` mask (nonzero voxels). A
        file without a space (TCK) then needs ``reference``.
    roi_mode : {"any", "endpoints"}
        ``any``: a vertex in the mask (``dipy.tracking.utils.target``);
        ``endpoints``: the first or last vertex in the mask.
    dps_ranges : sequence of DpsRange or "KEY:MIN:MAX"
        Bounds (inclusive) on data per streamline (one column).
    reference : path or object, optional
        The space of an input without one (TCK...), needed for a TRX or TRK
        output or for masks; a TRX or TRK input's space must agree with it.
    overwrite : bool
        Replace an existing output (only ever a tractogram; see
        :func:`~trx_nipype.core.operations.outputs.check_result_output`).
    chunk_vertices : int
        Vertices read per chunk.

    Returns
    -------
    FilterResult

    Raises
    ------
    KeyError
        A dps key that is not there (the message lists those that are).
    trx_nipype.core.ParameterError
        A length bound that is negative or not finite, or a missing or
        disagreeing ``reference``.
    trx_nipype.core.UsageError
        ``min_length`` above ``max_length``.
    trx_nipype.core.TrxFormatError
        A mask that is not on the tractogram's grid (saying how it differs).
    """
    ranges = [r if isinstance(r, DpsRange) else DpsRange.parse(r) for r in dps_ranges]
    for key, bound in (("min_length", min_length), ("max_length", max_length)):
        if bound is not None and not 0 <= bound < math.inf:
            raise ParameterError(f"{param(key, bound)}: expected a length of 0 mm or more")
    if min_length is not None and max_length is not None and min_length > max_length:
        raise UsageError(f"{param('min_length', min_length)} is above "
                             f"{param('max_length', max_length)}: no streamline can be kept")
    ref_path = reference_path(reference)
    check_inputs(in_file, ref_path, *include, *exclude)
    target = check_result_output(out_file, inputs=[in_file, ref_path, *include, *exclude],
                                 overwrite=overwrite)
    needs_space = output_format(target) in SPACED_FORMATS or bool(include or exclude)
    with read_tractogram(in_file, reference, needs_space=needs_space) as trx:
        name = os.fspath(in_file)
        keep = np.ones(len(trx), dtype=bool)
        removed: dict[str, int] = {}

        def apply(label: str, ok: np.ndarray) -> None:
            removed[label] = removed.get(label, 0) + int(np.count_nonzero(keep & ~ok))
            keep[:] &= ok

        for r in ranges:
            if r.key not in trx.dps:
                have = ", ".join(sorted(trx.dps)) or "none"
                raise KeyError(f"{name}: no data per streamline {r.key!r}; dps present: {have}")
            values = np.asarray(trx.dps[r.key])
            if values.ndim > 1 and values.shape[1] != 1:
                raise ValueError(f"{name}: dps {r.key!r} has {values.shape[1]} columns; a "
                                 "range applies to one value per streamline")
            apply(f"dps {r.key}", _in_range(values.reshape(-1).astype(np.float64),
                                            r.low, r.high))
        if min_length is not None or max_length is not None:
            apply("length", _in_range(lengths_mm(trx, chunk_vertices=chunk_vertices),
                                      min_length, max_length))
        if include or exclude:
            grid = grid_of(trx)
            masks = [load_volume(p, grid, what="mask", tractogram=name)
                     for p in (*include, *exclude)]
            hits = roi_hits(trx, masks, grid, mode=roi_mode, chunk_vertices=chunk_vertices)
            for i, path in enumerate(include):
                apply(f"include {Path(path).name}", hits[i])
            for j, path in enumerate(exclude):
                apply(f"exclude {Path(path).name}", ~hits[len(include) + j])
        view = trx.select(np.flatnonzero(keep), keep_empty_groups=True)
        header, members = trx_members(view, dest=out_file)
        out = write_streams(header, members, out_file)
        result = FilterResult(out, len(trx), len(view), removed)
    log.info("filter: %s -> %s: kept %d of %d streamlines", name, out, result.nb_streamlines,
             result.nb_input)
    return result
