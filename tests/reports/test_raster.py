"""Streamlines drawn into pixels: where the ink lands, how colours are laid, bounded memory."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from trx_nipype.core import TrxFile
from trx_nipype.reports import raster
from trx_nipype.reports.figures import projections_figure
from trx_nipype.reports.measures import measure_tractogram
from trx_nipype.reports.raster import draw_lines, line_ink, paint, to_uint8
from trx_nipype.reports.render import figure_bytes, group_colours, rgb


def _one(points: list[tuple[float, float]], shape: tuple[int, int]) -> np.ndarray:
    return line_ink(np.array(points, dtype=float), np.array([len(points)]), shape)[0]


def test_a_horizontal_line_inks_its_row_one_pixel_of_line_per_pixel() -> None:
    ink = _one([(0.0, 2.5), (10.0, 2.5)], (5, 10))  # through the centres of row 2
    expected = np.zeros((5, 10))
    expected[2] = 1.0
    np.testing.assert_allclose(ink, expected, atol=1e-5)


def test_a_line_between_two_columns_is_shared_half_and_half() -> None:
    ink = _one([(3.0, 0.0), (3.0, 5.0)], (5, 8))  # on the edge of columns 2 and 3
    expected = np.zeros((5, 8))
    expected[:, 2] = expected[:, 3] = 0.5
    np.testing.assert_allclose(ink, expected, atol=1e-5)
    # a quarter of the way into column 3: three quarters to it, a quarter to column 2
    ink = _one([(3.25, 0.0), (3.25, 5.0)], (5, 8))
    np.testing.assert_allclose(ink[:, 2:4], np.tile([0.25, 0.75], (5, 1)), atol=1e-5)
    assert ink[:, [0, 1, 4, 5, 6, 7]].sum() == 0


def test_a_diagonal_inks_the_diagonal_with_its_length() -> None:
    ink = _one([(0.0, 0.0), (6.0, 6.0)], (6, 6))  # through every pixel centre (k + .5, k + .5)
    np.testing.assert_allclose(ink, np.eye(6) * np.sqrt(2), atol=1e-5)


def test_the_ink_of_a_polyline_is_its_length() -> None:
    rng = np.random.default_rng(0)
    steps = rng.normal(0, 3.0, size=(400, 2)).cumsum(axis=0) * 0.2
    xy = steps - steps.min(axis=0) + 5.0  # inside a grid with a margin
    shape = (int(xy[:, 1].max()) + 6, int(xy[:, 0].max()) + 6)
    length = np.hypot(*np.diff(xy, axis=0).T).sum()
    ink = line_ink(xy, np.array([len(xy)]), shape)
    assert ink.sum() == pytest.approx(length, rel=0.05)
    # polylines are not joined: two halves draw what the whole draws, less the middle segment
    halves = line_ink(xy, np.array([200, 200]), shape)
    middle = _one([tuple(xy[199]), tuple(xy[200])], shape)
    np.testing.assert_allclose(halves + middle[None], ink, atol=1e-3)


def test_ink_off_the_grid_is_dropped() -> None:
    ink = _one([(-5.0, 2.5), (15.0, 2.5)], (5, 10))
    np.testing.assert_allclose(ink.sum(axis=1), [0, 0, 10, 0, 0], atol=1e-4)
    assert _one([(-9.0, -9.0), (-1.0, -3.0)], (5, 10)).sum() == 0
    assert _one([(0.0, 40.0), (10.0, 40.0)], (5, 10)).sum() == 0


def test_each_owner_has_its_layer() -> None:
    xy = np.array([[0.0, 0.5], [4.0, 0.5], [0.0, 2.5], [4.0, 2.5], [0.0, 3.5], [4.0, 3.5]])
    ink = line_ink(xy, np.array([2, 2, 2]), (4, 4), owners=np.array([1, 0, 1]), layers=2)
    np.testing.assert_allclose(ink.sum(axis=2), [[0, 0, 4, 0], [4, 0, 0, 4]], atol=1e-5)
    with pytest.raises(ValueError, match="owners must lie in"):
        line_ink(xy, np.array([2, 2, 2]), (4, 4), owners=np.array([0, 2, 0]), layers=2)
    with pytest.raises(ValueError, match="lengths summing to the vertices"):
        line_ink(xy, np.array([2, 2]), (4, 4))


def test_colours_are_laid_in_order_the_last_on_top() -> None:
    # two colours over the same row: the second covers the first where both are dense
    xy = np.array([[0.0, 1.5], [8.0, 1.5]] * 2)
    red, blue = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    image = np.ones((3, 3, 8), np.float32)
    draw_lines(image, xy, np.array([2, 2]), np.array([0, 1]), [red, blue], strength=3.0)
    row = image[:, 1].T
    assert (row[:, 2] > 0.9).all() and (row[:, 0] < 0.1).all()  # blue over red
    assert np.array_equal(image[:, [0, 2]], np.ones((3, 2, 8), np.float32))  # nothing else
    # the same as the ink and the paint of each layer
    again = np.ones((3, 3, 8), np.float32)
    paint(again, line_ink(xy, np.array([2, 2]), (3, 8), np.array([0, 1]), 2), [red, blue], 3.0)
    np.testing.assert_array_equal(to_uint8(again), to_uint8(image))
    with pytest.raises(ValueError, match="increasing order"):
        draw_lines(image, xy, np.array([2, 2]), np.array([1, 0]), [red, blue], 3.0)


def test_many_colours_are_drawn_a_few_at_a_time_with_the_same_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    n = 60  # a population file: a colour per subject
    lengths = rng.integers(2, 12, size=n)
    xy = rng.uniform(-2, 42, size=(int(lengths.sum()), 2))
    colours = [np.asarray(rgb(c)) / 255 for c in group_colours([f"s{k}" for k in range(n)])
               .values()]
    owners = np.arange(n)
    whole = np.ones((3, 40, 40), np.float32)
    draw_lines(whole, xy, lengths, owners, colours, 0.5)
    batches = []
    real = raster._padded_ink

    def counting(*args, **kwargs):  # noqa: ANN202
        ink = real(*args, **kwargs)
        batches.append(ink.size)
        return ink

    monkeypatch.setattr(raster, "_padded_ink", counting)
    monkeypatch.setattr(raster, "MAX_INK_CELLS", 3 * 45 * 45)  # three 40 x 40 layers at a time
    few = np.ones((3, 40, 40), np.float32)
    draw_lines(few, xy, lengths, owners, colours, 0.5)
    assert len(batches) == 20 and max(batches) <= 3 * 45 * 45
    np.testing.assert_array_equal(few, whole)


def test_a_known_streamline_lands_on_the_expected_pixels() -> None:
    # one streamline from x = 20 to x = 60 mm at y = z = 40, in an 80 mm grid: a horizontal
    # line across the middle half of the box in the coronal and axial panels; seen end on
    # in the sagittal one, it has no length there (a line has no width): no ink
    positions = np.column_stack([np.linspace(20, 60, 41), np.full(41, 40.0),
                                 np.full(41, 40.0)]).astype(np.float32)
    trx = TrxFile.from_arrays(positions, lengths=[41], affine=np.eye(4), dimensions=(80, 80, 80))
    measures = measure_tractogram(trx)
    colour = np.array(rgb(measures.categories[0].colour))
    with Image.open(io.BytesIO(figure_bytes(projections_figure(measures), "png"))) as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    face = np.all(pixels == rgb("#f4f4f4"), axis=2)  # the grid's box, behind the line
    top, bottom = np.flatnonzero(face.sum(axis=1) > 20)[[0, -1]]
    # tinted toward the line's colour (everything else is grey: box, edges, letters)
    tint = (pixels - pixels.mean(axis=2, keepdims=True)) @ (colour - colour.mean())
    line = tint > 0.1 * np.dot(colour - colour.mean(), colour - colour.mean())
    line[:top] = line[bottom + 1:] = False  # the panels, not the legend's swatch
    # the box's columns split into three panels (sagittal, coronal, axial)
    used = np.flatnonzero(face.sum(axis=0) > 20)  # (not a grey letter's edge)
    panels = np.split(used, np.flatnonzero(np.diff(used) > 1) + 1)
    assert len(panels) == 3
    middle = top + (bottom - top) * (79.5 - 40) / 80  # y = z = 40 mm, from the top (79.5)
    assert not line[:, panels[0][0]:panels[0][-1] + 1].any()
    for span in panels[1:]:
        rows, cols = np.nonzero(line[:, span[0]:span[-1] + 1])
        assert set(rows) <= {int(np.floor(middle)), int(np.ceil(middle))}
        width = span[-1] - span[0]
        assert cols.min() / width == pytest.approx(20.5 / 80, abs=0.01)  # x = 20 mm
        assert cols.max() / width == pytest.approx(60.5 / 80, abs=0.01)  # x = 60 mm
        assert len(set(cols)) == cols.max() - cols.min() + 1  # no gap
