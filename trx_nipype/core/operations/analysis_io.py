"""What the analysis operations share: inputs, images in a tractogram's space, voxels, outputs.

- :func:`read_tractogram`: any readable tractogram (TRX mapped; TRK... read); a
  file without a space (TCK...) takes the reference's, or none where the output
  needs none.
- :class:`Grid`: voxel indices of RAS+ mm points exactly as dipy computes them
  (``dipy.tracking.utils._mapping_to_voxel`` / ``_to_voxel_coordinates``:
  ``floor`` of the voxel coordinate + 0.5, negatives refused).
- :func:`load_volume`: a NIfTI image that must lie on a given grid, with an
  error that says how it differs.
- :func:`vertices_outside`, :func:`check_outside`: vertices without a voxel in
  an image read along the streamlines: all of them refused, some of them a
  :class:`~trx_nipype.core.errors.SpaceWarning` (``density`` refuses any).
- :func:`write_nifti`, :func:`write_table`: atomic writers (a temporary
  sibling renamed into place); tractograms are written by
  :func:`~trx_nipype.core.operations.outputs.write_streams`, with the
  operations' outputs.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpaceWarning, TrxFormatError
from ..formats import atomic_output, atomic_path, carries_space
from ..space import NO_SPACE, space_mismatch
from ..trxfile import TrxFile

#: vertices per chunk in the analysis operations: float64 voxel coordinates of a
#: chunk are 6 MB, and each operation holds a few such arrays at a time. Measured at
#: 1M streamlines against 1M vertices per chunk: profile 243 -> 137 MB of anonymous
#: memory, density 148 -> 107, resample 122 -> 91, and no operation slower (the
#: chunk's temporaries stay in the CPU caches)
ANALYSIS_CHUNK_VERTICES = 250_000
#: largest difference (mm) between two affines that still counts as the same space
SPACE_ATOL = 1e-3


def read_tractogram(path: str | os.PathLike, reference: Any = None, *,
                    needs_space: bool = True) -> TrxFile:
    """Open a tractogram of any readable format (a TRX is mapped, read-only).

    Parameters
    ----------
    path : str or os.PathLike
        A TRX zip or folder, ``.trk[.gz]``, ``.tck[.gz]``, ``.vtk``...
    reference : path or object, optional
        The space of a file that carries none (TCK, VTK, DPY); for a TRX or
        TRK it must agree with the file's own (see
        :func:`~trx_nipype.core.converting.load_any`).
    needs_space : bool
        Whether the operation needs the streamlines' space (a TRX or TRK
        output, masks or images on the tractogram's grid). If not, a file
        without a space and without ``reference`` is read as it is.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    trx_nipype.core.ParameterError
        If a space is needed, the file carries none and no ``reference`` is
        given, or the reference disagrees with the file's space.
    trx_nipype.core.TrxFormatError
        If it is not a valid tractogram.
    """
    from ..converting import load_any

    if not os.path.exists(path):
        raise FileNotFoundError(f"{os.fspath(path)}: no such file or directory")
    if reference is None and not needs_space and not carries_space(path):
        reference = NO_SPACE
    return load_any(path, reference)


def reference_path(reference: Any) -> str | os.PathLike | None:
    """The path of a reference given as a path (checked as an input), else None."""
    return reference if isinstance(reference, (str, os.PathLike)) else None


@dataclass(frozen=True)
class Grid:
    """A voxel grid (voxel-to-RAS+ affine and dimensions) and dipy's point-to-voxel mapping."""

    affine: np.ndarray
    dimensions: tuple[int, int, int]

    @classmethod
    def of(cls, affine: Any, dimensions: Any) -> Grid:
        """A grid from any affine and 3 dimensions."""
        dims = tuple(int(d) for d in np.asarray(dimensions).ravel()[:3])
        return cls(np.asarray(affine, dtype=np.float64).reshape(4, 4), dims)  # type: ignore[arg-type]

    @property
    def nb_voxels(self) -> int:
        """Voxels in the grid."""
        return int(np.prod(self.dimensions, dtype=np.int64))

    def voxel_coordinates(self, points: np.ndarray, round_to: Any = None) -> np.ndarray:
        """Continuous voxel coordinates (float64), voxel *centres* at integers.

        The values of nibabel's ``apply_affine(inv(affine), points)`` (what
        ``values_from_volume`` uses): for an axis-aligned affine one product
        and one sum per column (the other terms of nibabel's ``np.dot`` are
        exact zeros), else one float64 BLAS product. ``round_to`` rounds them
        to that dtype first (dipy's ``transform_streamlines`` keeps the
        streamlines' float32).
        """
        inv = np.linalg.inv(self.affine)
        rot, shift = inv[:3, :3], inv[:3, 3]
        sources = [np.flatnonzero(rot[j]) for j in range(3)]
        if any(len(src) != 1 for src in sources):
            out = np.dot(np.asarray(points, dtype=np.float64), rot.T)
            out += shift
            return out if round_to is None else out.astype(round_to).astype(np.float64)
        out = np.empty((len(points), 3), dtype=np.float64)
        col = np.empty(len(points), dtype=np.float64)
        for j in range(3):
            k = int(sources[j][0])
            col[:] = points[:, k]
            col *= rot[j, k]
            col += shift[j]
            out[:, j] = col if round_to is None else col.astype(round_to)
        return out

    def voxels(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The voxel of each point, as dipy's ``density_map`` and ``target`` find it.

        ``floor(inv(affine) @ p + 0.5)``, computed as dipy does
        (``np.dot(points, lin_T) + offset``, then truncation): the same voxel
        for every point, also at voxel borders.

        Returns
        -------
        ijk : ndarray of intp, shape (n, 3)
            Voxel indices (meaningless where ``inside`` is False).
        inside : ndarray of bool, shape (n,)
            Whether the point lies in the grid (dipy refuses the others).
        """
        inv = np.linalg.inv(self.affine)
        lin_t = inv[:3, :3].T.copy()
        offset = inv[:3, 3] + 0.5
        # np.dot of float32 points casts them to float64 first: the same values, faster
        inds = np.dot(np.asarray(points, dtype=np.float64), lin_t)
        inds += offset
        negative = inds < 0
        if negative.any():  # dipy: negative unless it rounds to 0 at 6 decimals
            negative[negative] = np.round(inds[negative], 6) < 0
        ijk = inds.astype(np.intp)
        del inds
        # column by column: ndarray.any(axis=1) over (n, 3) is several times slower
        outside = negative[:, 0] | negative[:, 1] | negative[:, 2]
        for axis, size in enumerate(self.dimensions):
            outside |= ijk[:, axis] >= size
        return ijk, ~outside

    def linear_voxels(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """C-order linear voxel index (int64) of each point, and whether it is inside.

        The voxels of :meth:`voxels`. For an axis-aligned affine (each voxel axis
        along one RAS axis: the usual case, flips and permutations included) each
        coordinate is one product and one sum, column by column, with the very
        values of dipy's ``np.dot`` (the other terms are exact zeros); an oblique
        affine goes through :meth:`voxels`.
        """
        inv = np.linalg.inv(self.affine)
        lin_t = inv[:3, :3].T
        offset = inv[:3, 3] + 0.5
        sources = [np.flatnonzero(lin_t[:, j]) for j in range(3)]
        if any(len(src) != 1 for src in sources):
            ijk, inside = self.voxels(points)
            return self.linear(ijk), inside
        n = len(points)
        lin = np.zeros(n, dtype=np.int64)
        outside = np.zeros(n, dtype=bool)
        col = np.empty(n, dtype=np.float64)
        idx = np.empty(n, dtype=np.int64)
        strides = (self.dimensions[1] * self.dimensions[2], self.dimensions[2], 1)
        for j in range(3):
            k = int(sources[j][0])
            col[:] = points[:, k]
            col *= lin_t[k, j]
            col += offset[j]
            negative = col < 0
            if negative.any():  # dipy: negative unless it rounds to 0 at 6 decimals
                negative[negative] = np.round(col[negative], 6) < 0
                outside |= negative
            idx[:] = col  # truncation, as astype(intp)
            outside |= idx >= self.dimensions[j]
            if strides[j] != 1:
                idx *= strides[j]
            lin += idx
        return lin, ~outside

    def linear(self, ijk: np.ndarray) -> np.ndarray:
        """C-order linear index of voxel indices (int64)."""
        d1, d2 = self.dimensions[1], self.dimensions[2]
        return (ijk[:, 0].astype(np.int64) * d1 + ijk[:, 1]) * d2 + ijk[:, 2]

    def mismatch(self, affine: Any, dimensions: Any) -> str | None:
        """How another grid differs from this one (None: the same, to ``SPACE_ATOL`` mm)."""
        return space_mismatch(self.affine, np.asarray(self.dimensions), np.asarray(affine),
                              np.asarray(dimensions)[:3], SPACE_ATOL)


def grid_of(trx: TrxFile) -> Grid:
    """The grid of a tractogram's space (``VOXEL_TO_RASMM``, ``DIMENSIONS``)."""
    return Grid.of(trx.affine, trx.dimensions)


def load_volume(path: str | os.PathLike, grid: Grid, *, what: str, tractogram: str,
                dtype: Any = None) -> np.ndarray:
    """A 3-D image that must lie on ``grid`` (the tractogram's), as an array.

    Parameters
    ----------
    path : str or os.PathLike
        NIfTI image (a 4-D image with one volume is taken as 3-D).
    grid : Grid
        The grid it must match (affine to ``SPACE_ATOL`` mm, same dimensions).
    what : str
        What the image is, for messages (``"mask"``, ``"image"``).
    tractogram : str
        The tractogram it goes with, for messages.
    dtype : dtype, optional
        Of the returned array (default: the image's).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    trx_nipype.core.TrxFormatError
        If it is not a readable 3-D image, or its grid differs (saying how).
    """
    import nibabel as nib

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory")
    a_what = f"{'an' if what[:1] in 'aeiou' else 'a'} {what}"
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises many kinds
        raise TrxFormatError(path, None, f"expected a NIfTI {what}, found an unreadable "
                             f"file ({exc})") from None
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise TrxFormatError(path, None, f"expected a 3-D {what}, found shape {list(shape)}")
    diff = grid.mismatch(img.affine, shape)
    if diff is not None:
        raise TrxFormatError(path, None, f"expected {a_what} on the grid of the tractogram "
                             f"{tractogram} (DIMENSIONS {list(grid.dimensions)}), found "
                             f"another grid: {diff}; resample the {what} to the "
                             "tractogram's space first")
    data = np.asanyarray(img.dataobj).reshape(shape)
    return np.asarray(data, dtype=dtype) if dtype is not None else np.asarray(data)


def vertices_outside(trx: TrxFile, grid: Grid, *, until_inside: bool = False,
                     chunk_vertices: int = ANALYSIS_CHUNK_VERTICES) -> int:
    """How many vertices of ``trx`` have no voxel in ``grid`` (as :meth:`Grid.voxels` finds them).

    Parameters
    ----------
    trx : TrxFile
        The tractogram (or a view of it).
    grid : Grid
        The image's grid.
    until_inside : bool
        Stop after the first chunk that has a vertex inside: the count is then
        below ``trx.nb_vertices`` exactly when some vertex is inside, which is
        all :func:`check_outside` needs to refuse, at the cost of one chunk.
    chunk_vertices : int
        Vertices read per chunk.

    Returns
    -------
    int
    """
    outside = 0
    for _, pos in trx.iter_positions(chunk_vertices):
        inside = int(np.count_nonzero(grid.linear_voxels(pos)[1]))
        outside += len(pos) - inside
        if until_inside and inside:
            break
    return outside


def check_outside(outside: int, total: int, *, tractogram: str, image: str | os.PathLike,
                  grid: Grid, warn: bool = True) -> None:
    """Refuse an image that no vertex falls in; warn when some vertices are outside it.

    Parameters
    ----------
    outside, total : int
        Vertices outside the image's grid (:func:`vertices_outside`) and in all.
    tractogram : str
        The tractogram, for messages.
    image : str or os.PathLike
        The image, for messages.
    grid : Grid
        The image's grid, for messages.
    warn : bool
        Warn about the vertices outside (False: refuse only, for a count made
        ``until_inside``).

    Raises
    ------
    ValueError
        If there are vertices and none lies inside the image (every value would be 0).

    Warns
    -----
    trx_nipype.core.errors.SpaceWarning
        If some vertices lie outside (their values are 0, or partial within one
        voxel of the border), naming how many.
    """
    where = f"the image {os.fspath(image)} (DIMENSIONS {list(grid.dimensions)})"
    if total and outside >= total:
        raise ValueError(f"{tractogram}: none of its {total} vertices lies inside {where}: "
                         "every value would be 0; give an image that covers the streamlines")
    if warn and outside:
        warnings.warn(SpaceWarning(f"{tractogram}: {outside} of {total} vertices lie outside "
                                   f"{where}; their values are 0 (or partial within one voxel "
                                   "of its border)"), category=SpaceWarning, stacklevel=3)


def check_groups(trx: TrxFile, groups: Sequence[str] | None, path: str | os.PathLike) -> list[str]:
    """``groups`` if every one is in ``trx``; a KeyError listing the groups present otherwise."""
    names = list(groups or [])
    missing = [g for g in names if g not in trx.groups]
    if missing:
        have = ", ".join(sorted(trx.groups)) or "none"
        raise KeyError(f"{os.fspath(path)}: no group {', '.join(map(repr, missing))}; groups "
                       f"present: {have}")
    return names


def is_nifti(path: str | os.PathLike) -> bool:
    """Whether a file is a NIfTI-1 image (plain or gzipped), by its header."""
    try:
        opener = gzip.open if os.fspath(path).lower().endswith(".gz") else open
        with opener(path, "rb") as fh:
            head = fh.read(348)
    except (OSError, EOFError):
        return False
    return len(head) == 348 and head[344:348] in (b"n+1\0", b"ni1\0")


def write_nifti(data: np.ndarray, affine: np.ndarray, dest: str | os.PathLike) -> Path:
    """Write a NIfTI image atomically (``.nii.gz``: gzipped, level 1, fixed timestamp).

    The same data gives the same bytes. The header holds the affine (sform and
    qform, code 1 = scanner), millimetres, and no path or date.
    """
    import nibabel as nib

    img = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    img.header.set_xyzt_units("mm")
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    data_bytes = img.to_bytes()
    if os.fspath(dest).lower().endswith(".gz"):
        # level 1, nibabel's own default: 3-4x faster than 6 on count maps, a few % larger
        data_bytes = gzip.compress(data_bytes, compresslevel=1, mtime=0)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data_bytes)
    return Path(dest)


def write_table(columns: Sequence[str], rows: Iterable[Sequence[Any]],
                dest: str | os.PathLike) -> Path:
    """Write a table atomically: tab-separated for ``.tsv``, else comma-separated."""
    delimiter = "\t" if os.fspath(dest).lower().endswith(".tsv") else ","
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    with atomic_output(dest) as fh:
        fh.write(buf.getvalue().encode("utf-8"))
    return Path(dest)
