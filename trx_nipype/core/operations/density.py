"""``density``: streamlines per voxel, as ``dipy.tracking.utils.density_map`` counts them.

A voxel counts each streamline that has a vertex in it once. The vertices are
read chunk by chunk; each chunk's (streamline, voxel) pairs are made unique
(consecutive repeats dropped first, then one sort) and counted into the
volume, so memory is the volume plus a few chunk-sized arrays.

>>> import tempfile, numpy as np
>>> import nibabel as nib
>>> from trx_nipype.core import TrxFile, save
>>> tmp = tempfile.mkdtemp()
>>> pos = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0], [1, 0, 0]], dtype=np.float32)
>>> src = save(TrxFile.from_arrays(pos, lengths=[2, 2], dimensions=[2, 2, 2]),
...            f"{tmp}/in.trx")
>>> res = density_map(src, f"{tmp}/density.nii.gz")
>>> np.asarray(nib.load(res.out_file).dataobj)[:, 0, :].tolist()
[[2, 1], [1, 0]]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..formats import carries_space
from ..metrics import streamline_ids
from ..reference import space_from_reference
from ..trxfile import TrxFile
from .analysis_io import (
    ANALYSIS_CHUNK_VERTICES,
    Grid,
    check_groups,
    grid_of,
    is_nifti,
    read_tractogram,
    reference_path,
    write_nifti,
)
from .inputs import check_inputs
from .outputs import check_result_output

log = logging.getLogger(__name__)


@dataclass
class DensityResult:
    """What :func:`density_map` wrote."""

    out_file: Path
    nb_streamlines: int
    nb_voxels: int  # voxels reached by at least one streamline
    max_count: int


def count_streamlines(trx: TrxFile, grid: Grid, *, where: str = "the tractogram",
                      chunk_vertices: int = ANALYSIS_CHUNK_VERTICES) -> np.ndarray:
    """Streamlines per voxel of ``grid`` (int64 counts, C order, shape ``grid.dimensions``).

    Equal to ``dipy.tracking.utils.density_map(trx.streamlines, grid.affine,
    grid.dimensions)``.

    Raises
    ------
    ValueError
        If some vertex lies outside the grid (dipy raises too), naming how many
        streamlines leave it and the first one.
    """
    nvox = grid.nb_voxels
    counts = np.zeros(nvox, dtype=np.int64)
    done = 0
    for chunk, pos in trx.iter_positions(chunk_vertices):
        lens = np.asarray(chunk.lengths, dtype=np.int64)
        n = len(lens)
        lin, inside = grid.linear_voxels(pos)
        sid = streamline_ids(lens)
        if not inside.all():
            bad = np.unique(sid[~inside])
            raise ValueError(f"{where}: {_outside_count(trx, grid, chunk_vertices)} "
                             f"streamlines have points outside the grid (DIMENSIONS "
                             f"{list(grid.dimensions)}), the first is streamline "
                             f"{done + int(bad[0])}; give a reference grid that holds them")
        if len(lin):
            # a vertex in the same voxel as the one before it, on the same streamline,
            # adds nothing: most of them go before the sort
            new = np.empty(len(lin), dtype=bool)
            new[0] = True
            np.not_equal(lin[1:], lin[:-1], out=new[1:])
            starts = (np.cumsum(lens) - lens)[lens > 0]
            new[starts] = True
            key = sid[new] * nvox + lin[new]
            key.sort()
            first = np.empty(len(key), dtype=bool)
            first[0] = True
            np.not_equal(key[1:], key[:-1], out=first[1:])
            # one unbuffered add per (streamline, voxel): 5x faster here than the
            # second sort of np.unique(return_counts=True) (np.add.at is fast since
            # numpy 1.25)
            np.add.at(counts, key[first] % nvox, 1)
        done += n
    return counts.reshape(grid.dimensions)


def _outside_count(trx: TrxFile, grid: Grid, chunk_vertices: int) -> int:
    """How many streamlines leave the grid (for the error message)."""
    total = 0
    for chunk, pos in trx.iter_positions(chunk_vertices):
        _, inside = grid.linear_voxels(pos)
        total += len(np.unique(streamline_ids(chunk.lengths)[~inside]))
    return total


def density_map(in_file: str | os.PathLike, out_file: str | os.PathLike, *,
                reference: Any = None, groups: Sequence[str] | None = None,
                binary: bool = False, overwrite: bool = False,
                chunk_vertices: int = ANALYSIS_CHUNK_VERTICES) -> DensityResult:
    """Write the streamline count of every voxel as a NIfTI image.

    Parameters
    ----------
    in_file : str or os.PathLike
        A tractogram.
    out_file : str or os.PathLike
        ``.nii`` or ``.nii.gz`` destination (written atomically).
    reference : path or object, optional
        The grid to count in (a NIfTI image, a TRK or TRX file: see
        :func:`~trx_nipype.core.reference.space_from_reference`); default the
        tractogram's own grid. A file without a space (TCK) needs it, and
        takes it as its space.
    groups : sequence of str, optional
        Count only the streamlines of these groups (their union).
    binary : bool
        Write 1 where at least one streamline passes, else 0 (uint8).
    overwrite : bool
        Replace an existing output (only ever a NIfTI image).
    chunk_vertices : int
        Vertices read per chunk.

    Returns
    -------
    DensityResult

    Raises
    ------
    KeyError
        A group that is not there (the message lists those that are).
    ValueError
        Streamlines outside the grid.
    """
    name = os.fspath(in_file)
    ref_path = reference_path(reference)
    check_inputs(in_file, ref_path)
    check_result_output(out_file, "NIfTI image", recognise=is_nifti,
                        inputs=[in_file, ref_path], overwrite=overwrite)
    if not os.fspath(out_file).lower().endswith((".nii", ".nii.gz")):
        raise ValueError(f"{os.fspath(out_file)}: a density map is a NIfTI image; name it "
                         ".nii or .nii.gz")
    # a file without a space (TCK) takes the reference's: the grid is where it is counted
    space_of_input = None if carries_space(in_file) else reference
    with read_tractogram(in_file, space_of_input) as trx:
        picked = check_groups(trx, groups, in_file)
        view = trx.select_groups(picked) if picked else trx
        if reference is not None:
            space = space_from_reference(reference)
            grid = Grid.of(space.affine, space.dimensions)
        else:
            grid = grid_of(trx)
        counts = count_streamlines(view, grid, where=name, chunk_vertices=chunk_vertices)
        nb = len(view)
    data = (counts > 0).astype(np.uint8) if binary else counts.astype(np.int32)
    out = write_nifti(data, grid.affine, out_file)
    result = DensityResult(out, nb, int(np.count_nonzero(counts)), int(counts.max(initial=0)))
    log.info("density: %s -> %s: %d streamlines over %d voxels", name, out, nb,
             result.nb_voxels)
    return result
