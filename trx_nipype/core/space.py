"""Space maths: where voxels sit in RAS+ millimetres, points moved between spaces.

:class:`Space` (affine, grid dimensions, voxel sizes, voxel order), the one
test of "same space" (:func:`space_mismatch`), :func:`transform_points`
(an affine applied in float64, block by block) and the bounding-box check.
Nothing here reads a file: a reference *path* becomes a :class:`Space` in
:mod:`.reference`, which sits above the loaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import ranges_index


def space_mismatch(affine_a: np.ndarray, dims_a: np.ndarray, affine_b: np.ndarray,
                   dims_b: np.ndarray, atol: float) -> str | None:
    """How two spaces differ (None when they agree within ``atol``).

    The one test of "same space" (convert's references, concatenate, append).

    >>> space_mismatch(np.eye(4), np.array([2, 2, 2]), np.eye(4) * 2, np.array([2, 2, 2]),
    ...                1e-3)
    'VOXEL_TO_RASMM differs by up to 1 (atol=0.001)'
    """
    a = np.asarray(affine_a, dtype=np.float64)
    b = np.asarray(affine_b, dtype=np.float64)
    if not np.allclose(a, b, rtol=0, atol=atol):
        return f"VOXEL_TO_RASMM differs by up to {float(np.abs(a - b).max()):g} (atol={atol:g})"
    da = [int(d) for d in np.asarray(dims_a).ravel()]
    db = [int(d) for d in np.asarray(dims_b).ravel()]
    if da != db:
        return f"DIMENSIONS {db} instead of {da}"
    return None


@dataclass(frozen=True)
class Space:
    """Where voxel indices sit in RAS+ millimetres.

    Attributes
    ----------
    affine : ndarray, shape (4, 4)
        Voxel indices (centre origin) to RAS+ mm, float64.
    dimensions : ndarray, shape (3,)
        Grid size, int64.
    voxel_sizes : ndarray, shape (3,)
        Voxel sizes in mm (the NIfTI ``pixdim`` or TRK ``voxel_sizes`` when
        known, else the column norms of ``affine``).
    voxel_order : str
        Axis codes of ``affine`` such as ``"RAS"`` or ``"LPS"``.
    """

    affine: np.ndarray
    dimensions: np.ndarray
    voxel_sizes: np.ndarray
    voxel_order: str

    @classmethod
    def from_affine(cls, affine: Any, dimensions: Any, voxel_sizes: Any = None,
                    voxel_order: str | None = None) -> Space:
        """A space from an affine and dimensions; sizes and order derived when not given."""
        from nibabel.affines import voxel_sizes as sizes_of
        from nibabel.orientations import aff2axcodes

        aff = np.asarray(affine, dtype=np.float64).reshape(4, 4)
        dims = np.asarray(dimensions, dtype=np.int64).reshape(3)
        vs = (sizes_of(aff) if voxel_sizes is None
              else np.asarray(voxel_sizes, dtype=np.float64).reshape(3))
        order = voxel_order or "".join(c or "?" for c in aff2axcodes(aff))
        return cls(aff, dims, vs, order)

    def matches(self, other: Space, atol: float = 1e-3) -> bool:
        """Same grid and (to ``atol`` mm, no relative slack) the same affine."""
        return space_mismatch(self.affine, self.dimensions, other.affine, other.dimensions,
                              atol) is None

    def outside(self, positions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Which streamlines leave the grid's bounding box (dipy's ``is_bbox_in_vox_valid``).

        A vertex is outside when its voxel coordinate, with the origin at the
        voxel *corner*, is below 0 or above the dimension on any axis.

        Parameters
        ----------
        positions : ndarray, shape (V, 3)
            RAS+ mm.
        lengths : ndarray, shape (N,)
            Vertices per streamline (summing to V).

        Returns
        -------
        ndarray of bool, shape (N,)
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        out = np.zeros(len(lengths), dtype=bool)
        nonempty = np.flatnonzero(lengths > 0)
        if len(positions) == 0 or len(nonempty) == 0:
            return out
        to_vox = np.linalg.inv(self.affine)
        to_vox[:3, 3] += 0.5  # centre -> corner origin
        # Fastest path: the bounding box of the whole block inside the grid (the grid is
        # convex): two reductions over the block instead of one per streamline
        lo, hi = column_range(positions)
        if self._box_inside(to_vox, lo, hi).all():
            return out
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        # Fast path: a streamline whose RAS bounding box has its 8 corners inside the
        # grid is inside (the grid is convex). Only the others are checked vertex by vertex.
        lo = np.minimum.reduceat(positions, starts, axis=0).astype(np.float64)
        hi = np.maximum.reduceat(positions, starts, axis=0).astype(np.float64)
        suspect = ~self._box_inside(to_vox, lo, hi)
        if suspect.any():
            rows = nonempty[suspect]
            idx = ranges_index(starts[suspect], lengths[rows])
            vox = transform_points(to_vox, np.asarray(positions[idx], dtype=np.float64))
            bad = ~self._inside(vox)
            sub_starts = np.cumsum(lengths[rows]) - lengths[rows]
            out[rows] = np.logical_or.reduceat(bad, sub_starts)
        return out

    def _box_inside(self, to_vox: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Whether each RAS box (rows of ``lo``, ``hi``) has its 8 corners inside the grid."""
        lo = np.asarray(lo, dtype=np.float64).reshape(-1, 3)
        hi = np.asarray(hi, dtype=np.float64).reshape(-1, 3)
        corners = np.stack([np.where(np.array([a, b, c], bool), hi, lo)
                            for a in (0, 1) for b in (0, 1) for c in (0, 1)], axis=1)
        vox = transform_points(to_vox, corners.reshape(-1, 3))
        return self._inside(vox).reshape(-1, 8).all(axis=1)

    def _inside(self, vox: np.ndarray) -> np.ndarray:
        return np.all((vox >= 0) & (vox <= self.dimensions), axis=1)


#: the space given to a file that carries none (TCK...) where none is needed (counting,
#: writing TCK): an identity affine and a 1x1x1 grid, which no check treats as an image
NO_SPACE = Space(np.eye(4), np.ones(3, dtype=np.int64), np.ones(3), "RAS")


def transform_points(affine: np.ndarray, points: np.ndarray, dtype: Any = np.float64, *,
                 out: np.ndarray | None = None, block: int = 1 << 15) -> np.ndarray:
    """``points @ affine[:3, :3].T + affine[:3, 3]``, one axis at a time (no (N, 3) matmul).

    Always computed in float64 (each output value is the float64 result,
    rounded once to ``dtype``), in runs of ``block`` rows through a small
    float64 scratch that stays in cache: a float32 result costs no (N, 3)
    float64 temporary. Zero terms of the affine (the usual axis-aligned case)
    are skipped, and so is a product by exactly 1 (TRK's voxmm -> RAS+ mm when
    the header's voxel sizes are the affine's): the same float64 sums. A float32
    axis that is ``x + shift`` with a shift that float32 holds exactly is summed
    in float32 in one pass: the same values (double rounding from float64 is
    innocuous for a sum of two float32 values).

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
    points : ndarray, shape (N, 3)
    dtype : dtype
        Of the result (ignored when ``out`` is given).
    out : ndarray, shape (N, 3) or (N, k >= 3), optional
        Where to write (its first three columns), e.g. a column slice of a
        record buffer.
    block : int
        Rows per run.

    Returns
    -------
    ndarray
        ``out`` or a new (N, 3) array.

    >>> transform_points(np.diag([2.0, 3.0, 4.0, 1.0]), np.ones((1, 3), np.float32)).tolist()
    [[2.0, 3.0, 4.0]]
    """
    pts = np.asarray(points)
    if out is None:
        out = np.empty(pts.shape, dtype=dtype)
    rot, shift = np.asarray(affine, np.float64)[:3, :3], np.asarray(affine, np.float64)[:3, 3]
    terms = [[j for j in range(3) if rot[i, j] != 0.0] or [0] for i in range(3)]
    rest = []
    for i in range(3):
        j = terms[i][0]
        if _float32_sum(pts.dtype, out.dtype, terms[i], rot[i, j], shift[i]):
            # x + shift, both float32 values: the float32 sum is the float64 sum rounded
            # once to float32 (double rounding is innocuous when the wider format has at
            # least 2p + 2 bits: 53 >= 50; Figueroa, 1995): one pass, no float64 scratch
            if shift[i] == 0.0:
                out[:, i] = pts[:, j]
            else:
                np.add(pts[:, j], np.float32(shift[i]), out=out[:, i])
        else:
            rest.append(i)
    if not rest:
        return out
    scratch = np.empty(min(len(pts), block), dtype=np.float64)
    extra = np.empty_like(scratch) if max(len(t) for t in terms) > 1 else scratch
    for a in range(0, len(pts), block):
        rows = pts[a:a + block]
        tmp, tmp2 = scratch[:len(rows)], extra[:len(rows)]
        for i in rest:
            if len(terms[i]) == 1 and rot[i, terms[i][0]] == 1.0 and shift[i] != 0.0:
                # x * 1.0 is x: one pass (x + shift, in float64) instead of two
                np.add(rows[:, terms[i][0]], shift[i], out=tmp)
                out[a:a + block, i] = tmp
                continue
            np.multiply(rows[:, terms[i][0]], rot[i, terms[i][0]], out=tmp)
            for j in terms[i][1:]:
                np.multiply(rows[:, j], rot[i, j], out=tmp2)
                tmp += tmp2
            if shift[i] != 0.0:
                tmp += shift[i]
            out[a:a + block, i] = tmp
    return out


def _float32_sum(src: np.dtype, dst: np.dtype, terms: list[int], scale: float,
                 shift: float) -> bool:
    """Whether an output axis is ``x + shift`` with x and shift float32 values, written
    as float32: then computed in float32, with the same result."""
    return (src.kind == dst.kind == "f" and src.itemsize == dst.itemsize == 4
            and len(terms) == 1 and scale == 1.0 and abs(shift) <= _F32_MAX
            and float(np.float32(shift)) == shift)


_F32_MAX = float(np.finfo(np.float32).max)


def column_range(points: np.ndarray, group: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per-column minimum and maximum of a (V, 3) array, in one pass over its memory.

    ``points.min(axis=0)`` over (V, 3) runs about 40x slower, and column by
    column 10x slower, than reducing rows of ``group`` points (3,072
    contiguous values: long inner loops, an accumulator that stays in the
    first-level cache) and folding the result; 16 points a row ran 3-4x
    slower than 1,024 (the bounding-box check of every conversion). Minima
    and maxima are exact: the grouping does not change the result.

    >>> lo, hi = column_range(np.arange(60, dtype=np.float32).reshape(20, 3))
    >>> lo.tolist(), hi.tolist()
    ([0.0, 1.0, 2.0], [57.0, 58.0, 59.0])
    """
    points = np.ascontiguousarray(points)
    k = len(points) - len(points) % group
    parts_lo, parts_hi = [], []
    if k:
        rows = points[:k].reshape(-1, group * 3)
        parts_lo.append(rows.min(axis=0).reshape(group, 3).min(axis=0))
        parts_hi.append(rows.max(axis=0).reshape(group, 3).max(axis=0))
    if k < len(points):
        parts_lo.append(points[k:].min(axis=0))
        parts_hi.append(points[k:].max(axis=0))
    return (np.min(parts_lo, axis=0).astype(np.float64),
            np.max(parts_hi, axis=0).astype(np.float64))
