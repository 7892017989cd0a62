"""Streamlines drawn into pixels with numpy: thin, see-through, antialiased lines.

:func:`line_ink` turns polylines (pixel coordinates) into *ink* on a grid:
every segment is sampled at most one pixel apart, and each sample's length
of line is shared among its four nearest pixel centres (bilinear weights),
so a pixel holds about the length of line that passes through it (an
antialiased line about one pixel wide) and crossings add up. All
streamlines of a colour are drawn in a handful of array operations, with no
Python loop over streamlines.

:func:`paint` lays a colour over an image through that ink, as many
see-through lines would: a pixel crossed by ``n`` lines of opacity ``a``
keeps ``(1 - a) ** n`` of what was under it (``exp(-k ink)``, computed with
multiplications only, so that the bytes are the same on every machine).
"""

from __future__ import annotations

import numpy as np

#: ``(1 - x / 2**_HALVINGS) ** (2**_HALVINGS)`` stands for ``exp(-x)``
_HALVINGS = 6


def _axis_samples(a0: np.ndarray, b0: np.ndarray, da: np.ndarray, db: np.ndarray,
                  seg_len: np.ndarray, size_a: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of segments that run mostly along axis ``a``: one per pixel centre of ``a``
    that a segment crosses; returns (pixel along ``a``, position along ``b``, weight)."""
    lo = np.minimum(a0, a0 + da)
    first = np.ceil(lo - 0.5)  # the first pixel centre (k + 0.5) at or after the start
    count = (np.ceil(lo + np.abs(da) - 0.5) - first).astype(np.int64)
    slope = db / da
    at_first = b0 + (first + 0.5 - a0) * slope  # position along b at that centre
    weight = seg_len / np.abs(da)  # length of line per pixel step along a
    keep = count > 0
    first, count, slope, at_first, weight = (x[keep] for x in (first, count, slope, at_first,
                                                                 weight))
    starts = np.cumsum(count) - count
    step = np.arange(int(count.sum())) - np.repeat(starts, count)
    pixel = np.repeat(first.astype(np.int64), count) + step
    position = np.repeat(at_first, count) + step * np.repeat(slope, count)
    pixel = np.clip(pixel, -1, size_a)
    return pixel, position, np.repeat(weight, count)


def line_ink(xy: np.ndarray, lengths: np.ndarray, shape: tuple[int, int]
             ) -> tuple[np.ndarray, tuple[int, int]]:
    """Ink of polylines on a ``shape = (height, width)`` pixel grid, over their bounding box.

    Each segment is sampled once per pixel row or column it crosses (along
    its longer axis, at pixel centres), and each sample's length of line is
    shared between the two nearest pixel centres across it (Wu's
    antialiased lines): a pixel holds about the length of line through it.

    Parameters
    ----------
    xy : numpy.ndarray
        ``(V, 2)`` vertices in pixels: ``x`` to the right, ``y`` down, pixel
        ``(i, j)`` spanning ``[j, j + 1) x [i, i + 1)``.
    lengths : numpy.ndarray
        Vertices of each polyline (they sum to ``V``).
    shape : tuple of int
        The grid's height and width.

    Returns
    -------
    ink : numpy.ndarray
        float64 ink of the pixels of the lines' bounding box (ink off the
        grid is dropped).
    corner : tuple of int
        The grid row and column of ``ink[0, 0]``.

    >>> ink, corner = line_ink(np.array([[0.0, 1.5], [4.0, 1.5]]), np.array([2]), (3, 4))
    >>> corner, ink.round(2).tolist()
    ((0, 0), [[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    """
    height, width = shape
    xy = np.asarray(xy, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    empty = np.zeros((0, 0)), (0, 0)
    if len(xy) < 2:
        return empty
    starts, steps = xy[:-1], np.diff(xy, axis=0)
    inside = np.ones(len(steps), dtype=bool)  # segments within a polyline
    ends = np.cumsum(lengths)[:-1] - 1  # each polyline's last vertex, but the last one's
    inside[ends[(ends >= 0) & (ends < len(inside))]] = False
    seg_len = np.hypot(steps[:, 0], steps[:, 1])
    inside &= seg_len > 0
    starts, steps, seg_len = starts[inside], steps[inside], seg_len[inside]
    if not len(starts):
        return empty
    # the bounding box (a pixel more each side, within the grid)
    r0 = int(np.clip(np.floor(xy[:, 1].min()) - 1, 0, height))
    r1 = int(np.clip(np.ceil(xy[:, 1].max()) + 2, 0, height))
    c0 = int(np.clip(np.floor(xy[:, 0].min()) - 1, 0, width))
    c1 = int(np.clip(np.ceil(xy[:, 0].max()) + 2, 0, width))
    if r1 <= r0 or c1 <= c0:
        return empty
    h, w = r1 - r0, c1 - c0
    along_x = np.abs(steps[:, 0]) >= np.abs(steps[:, 1])
    # a grid with one more pixel each side (index + 1): ink just off the box lands there
    stride = w + 2
    index, weight = [], []
    for mask, a, b, size_a, size_b, across in ((along_x, 0, 1, w, h, stride),
                                               (~along_x, 1, 0, h, w, 1)):
        if not mask.any():
            continue
        corner_a, corner_b = (c0, r0) if a == 0 else (r0, c0)
        pixel, pos, wt = _axis_samples(starts[mask, a] - corner_a, starts[mask, b] - corner_b,
                                       steps[mask, a], steps[mask, b], seg_len[mask], size_a)
        pos = np.clip(pos + 0.5, 0.0, size_b + 0.999999)  # centres at k + 0.5, shifted by one
        below = np.floor(pos)
        frac = pos - below
        cell = below.astype(np.int64) * across + (pixel + 1) * (stride // across)
        far = wt * frac
        index += [cell, cell + across]
        weight += [wt - far, far]
    flat = np.bincount(np.concatenate(index), np.concatenate(weight),
                       minlength=(h + 2) * stride)
    return flat.reshape(h + 2, stride)[1:-1, 1:-1], (r0, c0)


def paint(image: np.ndarray, ink: np.ndarray, corner: tuple[int, int],
          colour: tuple[float, float, float], strength: float) -> None:
    """Lay ``colour`` over ``image`` through ``ink`` (in place).

    Parameters
    ----------
    image : numpy.ndarray
        ``(height, width, 3)`` float64 RGB in ``[0, 1]``.
    ink, corner
        From :func:`line_ink`: the ink of a block of pixels and its top left
        pixel in ``image``.
    colour : tuple of float
        RGB in ``[0, 1]``.
    strength : float
        ``k``: a pixel keeps ``exp(-k ink)`` of what was under it (for lines
        of opacity ``a`` about one pixel wide, ``k`` is ``-log(1 - a)``).

    >>> im = np.ones((1, 2, 3))
    >>> paint(im, np.array([[0.0, 1.0]]), (0, 0), (0.0, 0.0, 0.0), 1.0)
    >>> im[0, :, 0].round(3).tolist()  # about exp(-1) = 0.368
    [1.0, 0.365]
    """
    r0, c0 = corner
    block = image[r0:r0 + ink.shape[0], c0:c0 + ink.shape[1]]
    flat = ink.reshape(-1)
    hit = np.flatnonzero(flat)
    if not len(hit):
        return
    keep = 1.0 - np.minimum(flat[hit] * (strength / 2 ** _HALVINGS), 1.0)
    for _ in range(_HALVINGS):
        keep *= keep
    pixels = block.reshape(-1, 3) if block.flags.c_contiguous else None
    if pixels is None:  # a block inside a wider image: work on a copy, put it back
        pixels = block.reshape(-1, 3).copy()
        pixels[hit] = pixels[hit] * keep[:, None] + np.asarray(colour) * (1.0 - keep)[:, None]
        block[...] = pixels.reshape(block.shape)
        return
    pixels[hit] = pixels[hit] * keep[:, None] + np.asarray(colour) * (1.0 - keep)[:, None]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``[0, 1]`` floats to 0-255 bytes (rounded)."""
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
