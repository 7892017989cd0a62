"""Streamlines drawn into pixels with numpy: thin, see-through, antialiased lines.

:func:`line_ink` turns polylines (pixel coordinates) into *ink*, one layer
per colour: each segment is sampled once per pixel column (or row) it
crosses, along its longer axis, and each sample's length of line is shared
between the two pixel centres nearest to it across (Xiaolin Wu's
antialiased lines). A pixel thus holds about the length of line through it
(a line about one pixel wide) and crossings add up. All the polylines of
all the colours are drawn in a handful of array operations, with no Python
loop over streamlines.

:func:`paint` lays each layer's colour over an image, in order, as many
see-through lines would: a pixel crossed by ``n`` lines of opacity ``a``
keeps ``(1 - a) ** n`` of what was under it (``exp(-k ink)``, computed with
multiplications only, so that the bytes are the same on every machine).

:func:`draw_lines` does both, a few colours at a time (memory bounded by
:data:`MAX_INK_CELLS` whatever the number of colours); a segment's pixels do
not depend on what else is drawn with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: ``(1 - x / 2**_HALVINGS) ** (2**_HALVINGS)`` stands for ``exp(-x)``
_HALVINGS = 6
#: samples made at once (arrays of 64 or 128 kB: they stay in the processor's cache)
_CHUNK = 1 << 14
#: cells of a layer's border (one before the grid, two after): a sample off the grid gives
#: all its ink to a border cell, and its neighbour across is a border cell too
_BORDER = 3
#: ink cells :func:`draw_lines` holds at once at most (a layer per colour, 4 bytes each)
MAX_INK_CELLS = 1 << 21


def _draw(ink: np.ndarray, a0: np.ndarray, b0: np.ndarray, da: np.ndarray, db: np.ndarray,
          weight: np.ndarray, base: np.ndarray, size_a: int, size_b: int, along: int,
          across: int) -> None:
    """Add the ink of segments that run mostly along axis ``a`` (``|da| >= |db|``, ``da != 0``).

    A segment is sampled at each pixel centre ``k + 0.5`` of axis ``a`` it
    spans (within ``[0, size_a)``), where it lies at ``u`` across; the sample
    goes to the cells ``floor(u - 0.5)`` and the next one across, in the
    proportion of their distances. Cells are flat indices of ``ink``, layers
    with a border (ink off the grid lands there, and is dropped; the cell
    ``j + 1`` is the pixel ``j``), ``along`` and ``across`` their strides, ``base`` each segment's
    layer offset; ``weight`` is each segment's length of line per pixel
    along ``a``. The samples are made :data:`_CHUNK` at a time (arrays that
    stay in the processor's cache).
    """
    lo = np.minimum(a0, a0 + da)
    first = np.maximum(np.ceil(lo - 0.5), 0.0)  # the first pixel centre at or after the start
    last = np.minimum(np.ceil(lo + np.abs(da) - 0.5), float(size_a))  # past the last one
    count = np.maximum(last - first, 0.0).astype(np.int64)
    ends = np.cumsum(count)
    offsets = ends - count  # each segment's first sample
    slope = db / da
    # sample i of a segment is at pixel k = first + i along, and at b0 + (k + 0.5 - a0)
    # slope across, + 0.5 in cells (the cell j + 1 is the pixel j, of centre j + 0.5):
    # at_first + i slope; its cell: floor(that) across + (k + 1) along + base
    at_first = b0 + (first + 0.5 - a0) * slope + 0.5
    cells = base + (first + 1) * along
    # a chunk's arithmetic in float32 (exact cell numbers below 2**24; positions within a
    # thousandth of a pixel), from each segment's first sample: a segment's ink is the
    # same whatever else is drawn with it
    real = np.float32 if len(ink) < 1 << 24 else np.float64
    top = real(size_b + 1)  # the first cell after the grid: there, all ink is in the border
    cuts = np.searchsorted(ends, np.arange(_CHUNK, int(ends[-1]) if len(ends) else 0, _CHUNK))
    for s0, s1 in zip([0, *cuts.tolist()], [*cuts.tolist(), len(count)], strict=True):
        if s1 <= s0:
            continue
        n, o0 = count[s0:s1], int(offsets[s0])
        step = np.arange(int(ends[s1 - 1]) - o0, dtype=real)
        if not len(step):
            continue
        step -= np.repeat((offsets[s0:s1] - o0).astype(real), n)  # 0, 1, ... in a segment
        u = step * np.repeat(slope[s0:s1].astype(real), n)
        u += np.repeat(at_first[s0:s1].astype(real), n)
        np.clip(u, real(0), top, out=u)
        cell = np.floor(u)
        u -= cell  # the fraction toward the next cell across
        cell *= real(across)
        if along != 1:
            step *= real(along)
        cell += step
        cell += np.repeat(cells[s0:s1].astype(real), n)
        near = np.repeat(weight[s0:s1].astype(real), n)
        u *= near  # the part that goes across
        near -= u
        at = cell.astype(np.intp)
        np.add.at(ink, at, near.astype(ink.dtype, copy=False))
        at += across
        np.add.at(ink, at, u.astype(ink.dtype, copy=False))


def _check_polylines(xy: np.ndarray, lengths: np.ndarray, owners: np.ndarray | None,
                     layers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    lengths = np.asarray(lengths, dtype=np.int64)
    owners = np.zeros(len(lengths), np.int64) if owners is None else \
        np.asarray(owners, dtype=np.int64)
    if len(owners) != len(lengths) or int(lengths.sum()) != len(xy):
        raise ValueError("one owner per polyline, and lengths summing to the vertices")
    if len(owners) and (owners.min() < 0 or owners.max() >= layers):
        raise ValueError(f"owners must lie in [0, {layers})")
    return xy, lengths, owners


def _padded_ink(xy: np.ndarray, lengths: np.ndarray, owners: np.ndarray, layers: int,
                shape: tuple[int, int]) -> np.ndarray:
    """:func:`line_ink` on layers with a border (:data:`_BORDER`), flat; the border zeroed."""
    height, width = shape
    pw = width + _BORDER
    layer = (height + _BORDER) * pw
    ink = np.zeros(layers * layer, dtype=np.float32)
    if len(xy) >= 2:
        x, y = xy[:, 0].copy(), xy[:, 1].copy()
        dx, dy = np.diff(x), np.diff(y)
        inside = np.ones(len(dx), dtype=bool)  # segments within one polyline
        ends = np.cumsum(lengths)[:-1] - 1  # each polyline's last vertex, but the last one's
        inside[ends[(ends >= 0) & (ends < len(inside))]] = False
        seg_len = np.hypot(dx, dy)
        inside &= seg_len > 0
        base = np.repeat(owners * layer, lengths)[:-1]
        along_x = np.abs(dx) >= np.abs(dy)
        # x-major segments step along columns and share across rows; y-major ones the reverse
        for mask, a0, b0, da, db, size_a, size_b, along, across in (
                (inside & along_x, x, y, dx, dy, width, height, 1, pw),
                (inside & ~along_x, y, x, dy, dx, height, width, pw, 1)):
            some = np.flatnonzero(mask)
            if not len(some):
                continue
            step = da.take(some)
            _draw(ink, a0.take(some), b0.take(some), step, db.take(some),
                  seg_len.take(some) / np.abs(step), base.take(some), size_a, size_b, along,
                  across)
    grid = ink.reshape(layers, height + _BORDER, pw)
    grid[:, [0, -2, -1]] = 0.0  # ink off the grid
    grid[:, :, [0, -2, -1]] = 0.0
    return ink


def line_ink(xy: np.ndarray, lengths: np.ndarray, shape: tuple[int, int],
             owners: np.ndarray | None = None, layers: int = 1) -> np.ndarray:
    """Ink of polylines on a ``shape = (height, width)`` pixel grid: one layer per owner.

    Parameters
    ----------
    xy : numpy.ndarray
        ``(V, 2)`` vertices in pixels: ``x`` to the right, ``y`` down, pixel
        ``(i, j)`` spanning ``[j, j + 1) x [i, i + 1)``.
    lengths : numpy.ndarray
        Vertices of each polyline (they sum to ``V``).
    shape : tuple of int
        The grid's height and width.
    owners : numpy.ndarray, optional
        The layer of each polyline (default: all in layer 0).
    layers : int
        How many layers (more than the largest owner).

    Returns
    -------
    numpy.ndarray
        ``(layers, height, width)`` float64: the length of line (pixels)
        through each pixel; ink off the grid is dropped.

    >>> line_ink(np.array([[0.0, 1.5], [4.0, 1.5]]), np.array([2]), (3, 4)).round(2).tolist()
    [[[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]]
    """
    xy, lengths, owners = _check_polylines(xy, lengths, owners, layers)
    height, width = shape
    ink = _padded_ink(xy, lengths, owners, layers, shape)
    return ink.reshape(layers, height + _BORDER, width + _BORDER)[:, 1:-2, 1:-2].copy()


def _lay(planes: np.ndarray, hit: np.ndarray, values: np.ndarray, bounds: np.ndarray,
         stride: int, colours: Sequence[Sequence[float]], strength: float) -> None:
    """Paint layer ``k``'s ink ``values[bounds[k]:bounds[k + 1]]`` at its cells
    ``hit[...]``, the pixels ``hit[...] - k stride`` of ``planes``."""
    keep = np.minimum(values * np.float32(strength / 2 ** _HALVINGS), np.float32(1.0))
    np.subtract(np.float32(1.0), keep, out=keep)
    for _ in range(_HALVINGS):  # (1 - k ink / 64) ** 64: about exp(-k ink)
        keep *= keep
    for k, colour in enumerate(colours):
        i0, i1 = int(bounds[k]), int(bounds[k + 1])
        if i1 <= i0:
            continue
        at, kept = hit[i0:i1] - k * stride, keep[i0:i1]
        for plane, value in zip(planes, np.asarray(colour, dtype=planes.dtype), strict=True):
            covered = plane[at]  # value + (what was there - value) * kept
            covered -= value
            covered *= kept
            covered += value
            plane[at] = covered


def _planes(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[0] != 3 or not image.flags.c_contiguous:
        raise ValueError("the image must be a C-contiguous (3, height, width) array (it is "
                         "painted in place)")
    return image.reshape(3, -1)


def paint(image: np.ndarray, ink: np.ndarray, colours: Sequence[Sequence[float]],
          strength: float) -> None:
    """Lay each layer's colour over ``image`` through its ink, the first layer first (in place).

    Parameters
    ----------
    image : numpy.ndarray
        ``(3, height, width)`` RGB planes in ``[0, 1]`` (float32), C-contiguous.
    ink : numpy.ndarray
        ``(layers, height, width)``, from :func:`line_ink`.
    colours : sequence of RGB
        One ``(r, g, b)`` in ``[0, 1]`` per layer.
    strength : float
        ``k``: a pixel keeps ``exp(-k ink)`` of what was under it (for lines
        of opacity ``a`` about one pixel wide, ``k`` is ``-log(1 - a)``).

    >>> im = np.ones((3, 1, 2), np.float32)
    >>> paint(im, np.array([[[0.0, 1.0]]]), [(0.0, 0.0, 0.0)], 1.0)
    >>> [round(float(x), 3) for x in im[0, 0]]  # about exp(-1) = 0.368
    [1.0, 0.365]
    """
    planes = _planes(image)
    if ink.shape[1:] != image.shape[1:] or len(colours) != len(ink):
        raise ValueError("paint: one colour per ink layer, layers of the image's size")
    flat = np.ascontiguousarray(ink, dtype=np.float32).reshape(-1)
    hit = np.flatnonzero(flat != 0)
    size = planes.shape[1]
    bounds = np.searchsorted(hit, np.arange(len(ink) + 1) * size)
    _lay(planes, hit, flat[hit], bounds, size, colours, strength)


def draw_lines(image: np.ndarray, xy: np.ndarray, lengths: np.ndarray, owners: np.ndarray,
               colours: Sequence[Sequence[float]], strength: float) -> None:
    """Draw polylines over ``image``, each in its owner's colour, owner after owner (in place).

    :func:`line_ink` then :func:`paint`, a few owners at a time: memory
    stays bounded (:data:`MAX_INK_CELLS`) whatever the number of colours.

    Parameters
    ----------
    image : numpy.ndarray
        ``(3, height, width)`` RGB planes in ``[0, 1]`` (float32), C-contiguous.
    xy, lengths
        As for :func:`line_ink`.
    owners : numpy.ndarray
        Each polyline's colour: an index into ``colours``, in increasing order.
    colours : sequence of RGB
        ``(r, g, b)`` in ``[0, 1]``, drawn first to last.
    strength : float
        As for :func:`paint`.
    """
    _planes(image)
    xy, lengths, owners = _check_polylines(xy, lengths, owners, len(colours))
    if np.any(np.diff(owners) < 0):
        raise ValueError("draw_lines: owners must be in increasing order")
    height, width = image.shape[1:]
    layer = (height + _BORDER) * (width + _BORDER)
    # painted with a border, as the ink: a cell of a layer is a pixel of the image
    padded = np.zeros((3, height + _BORDER, width + _BORDER), dtype=image.dtype)
    padded[:, 1:-2, 1:-2] = image
    planes = padded.reshape(3, -1)
    per_batch = max(1, MAX_INK_CELLS // layer)
    vertex_ends = np.concatenate([[0], np.cumsum(lengths)])
    for first in range(0, len(colours), per_batch):
        last = min(first + per_batch, len(colours))
        p0, p1 = np.searchsorted(owners, [first, last])
        if p1 <= p0:
            continue
        ink = _padded_ink(xy[vertex_ends[p0]:vertex_ends[p1]], lengths[p0:p1],
                          owners[p0:p1] - first, last - first, (height, width))
        hit = np.flatnonzero(ink != 0)
        bounds = np.searchsorted(hit, np.arange(last - first + 1) * layer)
        _lay(planes, hit, ink[hit], bounds, layer, colours[first:last], strength)
    image[...] = padded[:, 1:-2, 1:-2]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A ``(3, height, width)`` image of ``[0, 1]`` floats as ``(height, width, 3)`` bytes."""
    out = np.clip(image, 0.0, 1.0)
    out *= 255.0
    return np.rint(out).astype(np.uint8).transpose(1, 2, 0).copy()
