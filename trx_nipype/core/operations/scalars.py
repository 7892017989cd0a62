"""``sample`` and ``profile``: a scalar image read along the streamlines.

- :func:`sample_scalar_map`: the image trilinearly interpolated at every
  vertex (``dipy.tracking.streamline.values_from_volume``) stored as data per
  vertex, and its mean per streamline as data per streamline.
- :func:`tract_profile`: one N-point profile per group
  (``dipy.stats.analysis.afq_profile(data, bundle, affine, n_points=N,
  orient_by=bundle[0])``), as a tidy table.

Both read the vertices chunk by chunk and interpolate with dipy's own
``interpolate_scalar_3d`` (compiled, vectorised over the chunk's points), on
voxel coordinates computed as ``values_from_volume`` computes them for an
``ArraySequence`` (``transform_streamlines``: in the positions' dtype).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dtypes import check_key
from ..errors import ParameterError, param
from ..formats import carries_space
from ..metrics import as_sequence, packed_data, streamline_ids
from ..saving import MemberStream, trx_members
from ..trxfile import TrxFile
from .analysis_io import (
    ANALYSIS_CHUNK_VERTICES,
    Grid,
    check_groups,
    check_outside,
    grid_of,
    load_volume,
    read_tractogram,
    vertices_outside,
    write_table,
)
from .inputs import check_inputs
from .outputs import check_result_output, write_streams

log = logging.getLogger(__name__)

#: the columns of a profile table
PROFILE_COLUMNS = ("tract", "node", "metric", "value", "n_streamlines")
#: the label of the whole tractogram in a profile of a file without groups
ALL_STREAMLINES = "all"
#: points per streamline when orienting a bundle (dipy's ``orient_by_streamline`` default)
ORIENT_POINTS = 12


def _work_dtype(trx: TrxFile) -> np.dtype:
    """The dtype dipy works in for these positions (float16 is read as float32)."""
    return np.dtype(np.float64) if trx.positions_dtype == np.float64 else np.dtype(np.float32)


def interpolate(data: np.ndarray, grid: Grid, points: np.ndarray) -> np.ndarray:
    """Trilinear values of ``data`` (float64) at RAS+ ``points``, as ``values_from_volume``.

    The voxel coordinates are rounded to the points' dtype first, as dipy's
    ``transform_streamlines`` does for an ``ArraySequence``; points outside the
    image get what ``interpolate_scalar_3d`` gives there (0, or the weights of
    the voxels inside within one voxel of the border).
    """
    from dipy.core.interpolation import interpolate_scalar_3d

    coords = grid.voxel_coordinates(points, round_to=points.dtype)
    return np.asarray(interpolate_scalar_3d(data, coords)[0])


@dataclass
class SampleResult:
    """What :func:`sample_scalar_map` wrote."""

    out_file: Path
    dpv_key: str
    dps_key: str
    nb_streamlines: int
    nb_vertices: int


def sample_scalar_map(in_file: str | os.PathLike, image: str | os.PathLike,
                      out_file: str | os.PathLike, *, name: str, overwrite: bool = False,
                      chunk_vertices: int = ANALYSIS_CHUNK_VERTICES) -> SampleResult:
    """Store an image's values along the streamlines: dpv ``name`` and dps ``name_mean``.

    Parameters
    ----------
    in_file : str or os.PathLike
        A tractogram.
    image : str or os.PathLike
        A 3-D NIfTI image on the tractogram's grid; also the space of a file
        that carries none (TCK).
    out_file : str or os.PathLike
        Destination; its extension picks the format (TRX keeps everything of
        the input; TRK keeps the new data as a scalar and a property).
    name : str
        The key of the new data (float32): dpv ``name`` (the value at every
        vertex) and dps ``name_mean`` (its mean per streamline; NaN for a
        streamline without vertices).
    overwrite : bool
        Replace an existing output (only ever a tractogram; see
        :func:`~trx_nipype.core.operations.outputs.check_result_output`).
    chunk_vertices : int
        Vertices read per chunk.

    Returns
    -------
    SampleResult

    Raises
    ------
    ValueError
        If ``name`` or ``name_mean`` is already a key of the tractogram, or no
        vertex lies inside the image.
    trx_nipype.core.TrxFormatError
        If the image is not on the tractogram's grid (saying how it differs).

    Warns
    -----
    trx_nipype.core.errors.SpaceWarning
        If some vertices lie outside the image (naming how many).
    """
    try:
        check_key(name)
    except ValueError as exc:
        raise ParameterError(f"{param('name')}: {exc}") from None
    check_inputs(in_file, image)
    check_result_output(out_file, inputs=[in_file, image], overwrite=overwrite)
    mean_key = f"{name}_mean"
    src_name = os.fspath(in_file)
    with read_tractogram(in_file, None if carries_space(in_file) else image) as trx:
        taken = [f"dpv {name!r}"] if name in trx.dpv else []
        taken += [f"dps {mean_key!r}"] if mean_key in trx.dps else []
        if taken:
            raise ValueError(f"{src_name}: already holds {' and '.join(taken)}; choose "
                             "another name")
        grid = grid_of(trx)
        data = load_volume(image, grid, what="image", tractogram=src_name, dtype=np.float64)
        n, v = len(trx), trx.nb_vertices
        # refused before writing (one chunk read when some vertex is inside); counted
        # while writing
        check_outside(vertices_outside(trx, grid, until_inside=True,
                                       chunk_vertices=chunk_vertices), v,
                      tractogram=src_name, image=image, grid=grid, warn=False)
        means = np.full(n, np.nan, dtype=np.float64)
        dtype = _work_dtype(trx)
        outside = [0]

        def values() -> Iterator[np.ndarray]:
            done = 0
            for chunk, pos in trx.iter_positions(chunk_vertices, dtype=dtype):
                lens = np.asarray(chunk.lengths, dtype=np.int64)
                outside[0] += len(pos) - int(np.count_nonzero(grid.linear_voxels(pos)[1]))
                vals = interpolate(data, grid, pos)
                sums = np.bincount(streamline_ids(lens), weights=vals, minlength=len(lens))
                with np.errstate(invalid="ignore", divide="ignore"):
                    means[done:done + len(lens)] = np.where(lens > 0, sums / lens, np.nan)
                done += len(lens)
                yield vals.astype(np.float32)

        header, members = trx_members(trx, dest=out_file)
        # the per-vertex values are computed while their member is written; the means,
        # gathered on the way, are written after it
        members.append(MemberStream(f"dpv/{name}.float32", v * 4, values))
        members.append(MemberStream(f"dps/{mean_key}.float32", n * 4,
                                    lambda: iter([means.astype(np.float32)])))
        out = write_streams(header, members, out_file)
    check_outside(outside[0], v, tractogram=src_name, image=image, grid=grid)
    log.info("sample: %s x %s -> %s (dpv %s, dps %s)", src_name, image, out, name, mean_key)
    return SampleResult(out, name, mean_key, n, v)


@dataclass
class ProfileResult:
    """What :func:`tract_profile` wrote."""

    out_file: Path
    tracts: list[str]
    nb_points: int
    nb_streamlines: list[int]


def _flipped(pos: np.ndarray, lens: np.ndarray, standard: np.ndarray) -> np.ndarray:
    """Which streamlines of the chunk dipy's ``orient_by_streamline(bundle, standard)``
    reverses: those closer to ``standard`` reversed, over 12 resampled points."""
    from dipy.tracking.streamline import set_number_of_points

    n = len(lens)
    short = set_number_of_points(as_sequence(pos, lens), nb_points=ORIENT_POINTS)
    short = packed_data(short).reshape(n, ORIENT_POINTS, 3)
    return _distance(short, standard) > _distance(short[:, ::-1], standard)


def _distance(short: np.ndarray, standard: np.ndarray) -> np.ndarray:
    """Summed point-to-point distances of ``(n, k, 3)`` streamlines to one ``(k, 3)``, as
    dipy's ``orient_by_streamline`` (coordinates added one by one: no reduction over 3)."""
    d = short - standard
    d *= d
    squared = d[..., 0] + d[..., 1]
    squared += d[..., 2]
    return np.sqrt(squared, out=squared).sum(-1)


def bundle_profile(trx: TrxFile, data: np.ndarray, grid: Grid, *, nb_points: int = 100,
                   chunk_vertices: int = ANALYSIS_CHUNK_VERTICES) -> np.ndarray:
    """The mean profile of ``trx``'s streamlines (float64, ``(nb_points,)``).

    Equal to ``afq_profile(data, bundle, grid.affine, n_points=nb_points,
    orient_by=bundle[0])`` with ``bundle`` the streamlines in file order: each
    streamline is oriented like the first (dipy's ``orient_by_streamline``,
    12 points), resampled to ``nb_points`` (dipy's ``set_number_of_points``),
    sampled (trilinear), and the values averaged node by node. Streamlines of
    fewer than 2 points are left out (dipy refuses them); none left gives NaN.
    """
    from dipy.tracking.streamline import set_number_of_points

    dtype = _work_dtype(trx)
    lengths = np.asarray(trx.lengths)
    total = np.zeros(nb_points, dtype=np.float64)
    count = 0
    standard = None
    for chunk, pos in trx.iter_positions(chunk_vertices, dtype=dtype):
        lens = np.asarray(chunk.lengths, dtype=np.int64)
        if (lens < 2).any():  # dipy resamples streamlines of 2 points or more only
            keep = np.repeat(lens > 1, lens)
            pos, lens = pos[keep], lens[lens > 1]
        if not len(lens):
            continue
        if standard is None:
            first = np.ascontiguousarray(pos[:lens[0]])
            standard = np.asarray(set_number_of_points(
                [first], nb_points=ORIENT_POINTS)[0]).astype(dtype)
        # a reversed streamline's resampled points are its resampled points reversed:
        # resample as stored, then read the values of the flipped ones backwards
        flip = _flipped(pos, lens, standard)
        fixed = set_number_of_points(as_sequence(np.ascontiguousarray(pos), lens),
                                     nb_points=nb_points)
        vals = interpolate(data, grid, packed_data(fixed))
        vals = vals.reshape(len(lens), nb_points)
        total += vals[~flip].sum(axis=0)
        total += vals[flip].sum(axis=0)[::-1]
        count += len(lens)
    if count == 0:
        log.warning("profile of %d streamlines, none of 2 points or more: NaN", len(lengths))
        return np.full(nb_points, np.nan)
    return total / count


def tract_profile(in_file: str | os.PathLike, image: str | os.PathLike,
                  out_file: str | os.PathLike, *, nb_points: int = 100,
                  groups: Sequence[str] | None = None, metric: str | None = None,
                  overwrite: bool = False, chunk_vertices: int = ANALYSIS_CHUNK_VERTICES
                  ) -> ProfileResult:
    """Write one ``nb_points``-point profile of ``image`` per group as a tidy table.

    Parameters
    ----------
    in_file : str or os.PathLike
        A tractogram.
    image : str or os.PathLike
        A 3-D NIfTI image on the tractogram's grid (FA, MD...); also the space
        of a file that carries none (TCK).
    out_file : str or os.PathLike
        ``.csv`` (comma-separated) or ``.tsv`` (tab-separated) destination.
    nb_points : int
        Nodes per profile (at least 2).
    groups : sequence of str, optional
        The groups to profile (default: every group, sorted; a file without
        groups is profiled as one tract, ``all``).
    metric : str, optional
        The ``metric`` column (default: the image's name without extension).
    overwrite : bool
        Replace an existing output (only ever a profile table).
    chunk_vertices : int
        Vertices read per chunk.

    Returns
    -------
    ProfileResult

    Raises
    ------
    ValueError
        If no vertex of the profiled streamlines lies inside the image.
    trx_nipype.core.TrxFormatError
        If the image is not on the tractogram's grid (saying how it differs).

    Warns
    -----
    trx_nipype.core.errors.SpaceWarning
        If some vertices of the profiled streamlines lie outside the image
        (naming how many).

    Notes
    -----
    One row per tract and node: ``tract, node, metric, value, n_streamlines``
    (nodes 0 .. nb_points - 1, from the end where the tract's first streamline
    starts). A group without streamlines gets NaN values and a warning.
    """
    if int(nb_points) < 2:
        raise ValueError(f"a profile needs at least 2 points, got {nb_points}")
    nb_points = int(nb_points)
    check_inputs(in_file, image)
    check_result_output(out_file, "profile table", recognise=is_profile_table,
                        inputs=[in_file, image], overwrite=overwrite)
    if not os.fspath(out_file).lower().endswith((".csv", ".tsv")):
        raise ValueError(f"{os.fspath(out_file)}: a profile is a table; name it .csv or .tsv")
    metric = metric or _image_stem(image)
    src_name = os.fspath(in_file)
    with read_tractogram(in_file, None if carries_space(in_file) else image) as trx:
        picked = check_groups(trx, groups, in_file) or sorted(trx.groups)
        grid = grid_of(trx)
        data = load_volume(image, grid, what="image", tractogram=src_name, dtype=np.float64)
        profiled = trx.select_groups(picked) if picked else trx
        check_outside(vertices_outside(profiled, grid, chunk_vertices=chunk_vertices),
                      profiled.nb_vertices, tractogram=src_name, image=image, grid=grid)
        rows, tracts, sizes = [], [], []
        for tract in picked or [ALL_STREAMLINES]:
            bundle = trx.get_group(tract, keep_empty_groups=True) if picked else trx
            if len(bundle) == 0:
                log.warning("%s: group %r has no streamlines: its profile is NaN", src_name,
                            tract)
            profile = bundle_profile(bundle, data, grid, nb_points=nb_points,
                                     chunk_vertices=chunk_vertices)
            tracts.append(tract)
            sizes.append(len(bundle))
            rows.extend((tract, node, metric, repr(float(value)), len(bundle))
                        for node, value in enumerate(profile))
    out = write_table(PROFILE_COLUMNS, rows, out_file)
    log.info("profile: %s x %s -> %s (%d tracts x %d points)", src_name, image, out,
             len(tracts), nb_points)
    return ProfileResult(out, tracts, nb_points, sizes)


def is_profile_table(path: str | os.PathLike) -> bool:
    """Whether a file is a profile table (its first line names :data:`PROFILE_COLUMNS`)."""
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline().strip()
    except (OSError, UnicodeDecodeError):
        return False
    return first.replace("\t", ",").split(",") == list(PROFILE_COLUMNS)


def _image_stem(path: str | os.PathLike) -> str:
    """``sub-01_FA.nii.gz`` -> ``sub-01_FA``."""
    name = Path(path).name
    for ext in (".nii.gz", ".nii", ".mgz", ".gz"):
        if name.lower().endswith(ext):
            return name[:-len(ext)]
    return Path(name).stem
