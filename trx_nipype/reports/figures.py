"""The report's figures: projections, length histograms, the population heatmap.

- :func:`projections_figure`: the streamlines in three orthogonal projections
  (sagittal, coronal, axial; glass-brain style: every streamline seen
  through, one colour per group) on the reference grid's box.
- :func:`lengths_figure`: length distributions in mm, one per group.
- :func:`population_figure`: subjects x bundles, counts and mean lengths,
  coloured by robust z-score, outliers framed.
- :func:`tractogram_figure`: one of the first two for a tractogram file (the
  function behind the reportlet interface).

Each returns a :class:`~trx_nipype.reports.render.Canvas`, saved as PNG or
SVG by :func:`~trx_nipype.reports.render.save_figure`: the same data give
the same bytes. The streamlines are drawn into pixels with numpy
(:mod:`~trx_nipype.reports.raster`), all those of a group at once; the
rest is a few rectangles, lines and labels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .measures import DEFAULT_MAX_STREAMLINES, TractogramMeasures, measure_tractogram
from .raster import draw_lines, to_uint8
from .render import Canvas, figure_format, rgb, save_figure, text_width

#: the figures :func:`tractogram_figure` makes
FIGURE_KINDS = ("projections", "lengths")
#: (title, horizontal RAS axis, vertical RAS axis, left/right labels, bottom/top labels)
_VIEWS = (("sagittal", 1, 2, ("P", "A"), ("I", "S")),
          ("coronal", 0, 2, ("L", "R"), ("I", "S")),
          ("axial", 0, 1, ("L", "R"), ("P", "A")))
#: legend entries shown at most (the page's tables list every group)
_LEGEND_MAX = 16
_BOX_FACE, _BOX_EDGE = "#f4f4f4", "#b0b0b0"
_TEXT, _SOFT, _FAINT = "#222222", "#444444", "#888888"
#: projection panels: height, and the widest a panel may be for its height (and back)
_PANEL_HEIGHT, _PANEL_RATIO = 270, 4.0
_MARGIN, _GAP = 10, 14
#: a drawn streamline's opacity is about this times its alpha (a line thinner than a pixel)
_LINE_COVER = 0.7
#: ColorBrewer's RdBu, blue to red (matplotlib's ``RdBu_r``): the heatmap's z-scores
_RDBU_R = ("#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7",
           "#f4a582", "#d6604d", "#b2182b", "#67001f")


def _extent(measures: TractogramMeasures) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest corner to show: the grid's box and every drawn vertex."""
    points = [c.positions for c in measures.categories if len(c.positions)]
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    if points:
        lo = np.min([p.min(axis=0) for p in points], axis=0).astype(np.float64)
        hi = np.max([p.max(axis=0) for p in points], axis=0).astype(np.float64)
    if measures.box is not None:
        lo, hi = np.minimum(lo, measures.box[0]), np.maximum(hi, measures.box[1])
    if not np.all(np.isfinite(lo)):  # nothing to draw and no grid
        lo, hi = np.full(3, -1.0), np.full(3, 1.0)
    pad = np.maximum((hi - lo) * 0.04, 1.0)
    return lo - pad, hi + pad


def _alpha(drawn: int) -> float:
    """Line opacity: solid for a few streamlines, see-through for many."""
    return float(np.clip(6.0 / np.sqrt(max(drawn, 1)), 0.12, 0.9))


def _strength(alpha: float) -> float:
    """:func:`~.raster.paint`'s ``k`` for lines of opacity ``alpha``: ``-log(1 - c alpha)``
    (a series: multiplications only, the same bytes everywhere)."""
    x = _LINE_COVER * alpha
    return sum(x ** n / n for n in range(1, 12))


def _panel_frame(lo: np.ndarray, hi: np.ndarray, h: int, v: int
                 ) -> tuple[float, float, float, int]:
    """``(left mm, top mm, mm per pixel, width px)`` of a panel of :data:`_PANEL_HEIGHT`.

    The same scale on both axes; a panel far wider than high (or the other
    way) is given more room around its lines instead.
    """
    left, top = lo[h], hi[v]
    size_h, size_v = hi[h] - lo[h], hi[v] - lo[v]
    ratio = size_h / size_v
    if ratio < 1 / _PANEL_RATIO:  # widen
        left -= (size_v / _PANEL_RATIO - size_h) / 2
        size_h = size_v / _PANEL_RATIO
    elif ratio > _PANEL_RATIO:  # heighten
        top += (size_h / _PANEL_RATIO - size_v) / 2
        size_v = size_h / _PANEL_RATIO
    scale = size_v / _PANEL_HEIGHT
    return float(left), float(top), float(scale), max(1, int(round(size_h / scale)))


def _panel(measures: TractogramMeasures, h: int, v: int, lo: np.ndarray, hi: np.ndarray,
           strength: float) -> np.ndarray:
    """One projection as ``(height, width, 3)`` uint8 RGB: box, then each category's lines."""
    left, top, scale, width = _panel_frame(lo, hi, h, v)
    height = _PANEL_HEIGHT
    image = np.ones((3, height, width), dtype=np.float32)  # RGB planes
    if measures.box is not None:
        b0, b1 = measures.box
        c0, c1 = (int(np.clip(np.rint((x - left) / scale), 0, width)) for x in (b0[h], b1[h]))
        r0, r1 = (int(np.clip(np.rint((top - y) / scale), 0, height)) for y in (b1[v], b0[v]))
        if c1 > c0 and r1 > r0:
            face, edge = (np.asarray(rgb(c), np.float32)[:, None, None] / 255
                          for c in (_BOX_FACE, _BOX_EDGE))
            image[:, r0:r1, c0:c1] = face
            image[:, [r0, r1 - 1], c0:c1] = edge
            image[:, r0:r1, [c0, c1 - 1]] = edge
    drawn = [c for c in measures.categories if c.drawn]
    if drawn:
        pos = np.concatenate([c.positions for c in drawn])
        xy = np.empty((len(pos), 2))
        xy[:, 0] = (pos[:, h] - left) / scale
        xy[:, 1] = (top - pos[:, v]) / scale
        owners = np.repeat(np.arange(len(drawn)), [len(c.sample_lengths) for c in drawn])
        draw_lines(image, xy, np.concatenate([c.sample_lengths for c in drawn]), owners,
                   [np.asarray(rgb(c.colour)) / 255 for c in drawn], strength)
    return to_uint8(image)


def _legend_rows(entries: Sequence[tuple[str | None, str]], width: float, size: int
                 ) -> list[list[tuple[str | None, str, float]]]:
    """Legend entries ``(colour or None, label)`` flowed into rows of at most ``width``."""
    rows: list[list[tuple[str | None, str, float]]] = [[]]
    used = 0.0
    for colour, label in entries:
        w = (20 if colour else 0) + text_width(label, size)
        if rows[-1] and used + w > width:
            rows.append([])
            used = 0.0
        rows[-1].append((colour, label, w))
        used += w + 16
    return rows if rows[0] else []


def _legend_entries(measures: TractogramMeasures) -> list[tuple[str | None, str]]:
    cats = measures.categories
    entries: list[tuple[str | None, str]] = [(c.colour, f"{c.name} ({c.count:,})")
                                             for c in cats[:_LEGEND_MAX]]
    if len(cats) > _LEGEND_MAX:
        entries.append((None, f"... and {len(cats) - _LEGEND_MAX} more"))
    return entries


def _draw_legend_row(fig: Canvas, row: Sequence[tuple[str | None, str, float]], x: float,
                     baseline: float, size: int) -> None:
    for colour, label, w in row:
        if colour:
            fig.rect(x, baseline - 6, 14, 3, fill=colour)
        fig.text(x + (20 if colour else 0), baseline, label, size=size, colour=_TEXT)
        x += w + 16


def projections_figure(measures: TractogramMeasures, *, title: str | None = None) -> Canvas:
    """Three orthogonal projections of the drawn streamlines, one colour per category.

    Each panel shows every drawn streamline seen through (glass-brain style)
    on the reference grid's box (grey) when the grid has one; the panels take
    in the box and all drawn vertices, at the same scale on both axes.
    Orientation letters mark the RAS+ directions. The legend lists the
    categories with their counts (the first :data:`_LEGEND_MAX`).

    Parameters
    ----------
    measures : TractogramMeasures
        From :func:`~.measures.measure_tractogram`.
    title : str, optional
        Above the panels.

    Returns
    -------
    Canvas
    """
    lo, hi = _extent(measures)
    strength = _strength(_alpha(measures.drawn))
    panels = [_panel(measures, h, v, lo, hi, strength) for _, h, v, _, _ in _VIEWS]
    width = 2 * _MARGIN + sum(p.shape[1] for p in panels) + _GAP * (len(panels) - 1)
    legend = _legend_rows(_legend_entries(measures), width - 2 * _MARGIN, 11)
    top = (26 if title else 6) + 18
    height = top + _PANEL_HEIGHT + 8 + 18 * len(legend) + 6
    fig = Canvas(width, height)
    if title:
        fig.text(_MARGIN, 18, title, size=13, colour=_TEXT)
    x = _MARGIN
    for pixels, (name, _, _, (left, right), (bottom, up)) in zip(panels, _VIEWS, strict=True):
        w = pixels.shape[1]
        fig.image(x, top, pixels)
        fig.text(x + w / 2, top - 6, name, size=12, colour=_SOFT, anchor="middle")
        middle = top + _PANEL_HEIGHT / 2 + 4
        fig.text(x + 3, middle, left, size=11, colour=_FAINT)
        fig.text(x + w - 3, middle, right, size=11, colour=_FAINT, anchor="end")
        fig.text(x + w / 2, top + 13, up, size=11, colour=_FAINT, anchor="middle")
        fig.text(x + w / 2, top + _PANEL_HEIGHT - 4, bottom, size=11, colour=_FAINT,
                 anchor="middle")
        x += w + _GAP
    y = top + _PANEL_HEIGHT + 8
    for row in legend:
        row_width = sum(w for _, _, w in row) + 16 * (len(row) - 1)
        _draw_legend_row(fig, row, (width - row_width) / 2, y + 13, 11)
        y += 18
    return fig


def nice_ticks(lo: float, hi: float, most: int = 6, *, integer: bool = False) -> np.ndarray:
    """Round tick values in ``[lo, hi]``: steps of 1, 2, 2.5 or 5 times a power of ten.

    >>> nice_ticks(87.3, 191.2).tolist()
    [100.0, 120.0, 140.0, 160.0, 180.0]
    >>> nice_ticks(0, 3, integer=True).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    span = max(hi - lo, 1e-9)
    raw = span / most
    mag = 1.0
    while mag * 10 <= raw:
        mag *= 10
    while mag > raw:
        mag /= 10
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1.0, float(np.ceil(step)))
    first = np.ceil(lo / step - 1e-9) * step
    count = int(np.floor((hi - first) / step + 1e-9)) + 1
    return np.round(first + step * np.arange(max(count, 0)), 9)


def _tick_label(value: float) -> str:
    return f"{round(float(value), 6) + 0.0:g}"


def lengths_figure(measures: TractogramMeasures, *, title: str | None = None,
                   bins: int | None = None) -> Canvas:
    """Streamline length distributions (mm), one outline per category, on shared bins.

    ``bins`` defaults to twice the square root of the largest category's
    count, between 10 and 60. The legend (the first :data:`_LEGEND_MAX`
    categories, with their counts) stands beside the plot.

    Returns
    -------
    Canvas
    """
    everything = measures.all_lengths
    cats = measures.categories
    entries = _legend_entries(measures) if len(everything) else []
    columns = 1 if len(entries) <= 8 else 2
    per_column = -(-len(entries) // columns) if entries else 0
    col_width = max((text_width(label, 11) + (20 if colour else 0) for colour, label in entries),
                    default=0.0)
    top = 12 + (24 if title else 0)
    left, plot_w = 56, 420
    plot_h = max(190, 16 * per_column)
    legend_x = left + plot_w + 20
    width = legend_x + columns * (col_width + 16) + 4 if entries else left + plot_w + 16
    fig = Canvas(width, top + plot_h + 44)
    bottom = top + plot_h
    if title:
        fig.text(10, 20, title, size=13, colour=_TEXT)
    counts = []
    if len(everything):
        lo, hi = float(everything.min()), float(everything.max())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        if bins is None:
            largest = max(c.count for c in cats)
            bins = int(np.clip(2 * np.sqrt(largest), 10, 60))
        edges = np.linspace(lo, hi, bins + 1)
        counts = [np.histogram(c.lengths, bins=edges)[0] for c in cats]
        ymax = max(1, max(int(c.max()) for c in counts if len(c))) * 1.05
    else:
        lo, hi, ymax = 0.0, 1.0, 1.0
        fig.text(left + plot_w / 2, top + plot_h / 2, "no streamlines", size=12,
                 colour=_SOFT, anchor="middle")
    pad = (hi - lo) * 0.03
    x_lo, x_hi = lo - pad, hi + pad

    def px(value: Any) -> Any:  # a number or an array
        return left + (value - x_lo) / (x_hi - x_lo) * plot_w

    def py(value: Any) -> Any:
        return bottom - value / ymax * plot_h

    for tick in nice_ticks(0, ymax, 5, integer=True):
        fig.rect(left, py(tick), plot_w, 1, fill="#eeeeee")  # a light grid line
        fig.rect(left - 4, py(tick), 4, 1, fill=_SOFT)
        fig.text(left - 7, py(tick) + 4, _tick_label(tick), size=10, colour=_SOFT,
                 anchor="end")
    if len(everything):
        for tick in nice_ticks(x_lo, x_hi, 6):
            fig.rect(px(tick), bottom, 1, 4, fill=_SOFT)
            fig.text(px(tick), bottom + 16, _tick_label(tick), size=10, colour=_SOFT,
                     anchor="middle")
        stairs = []
        xs = px(edges)
        x_steps = np.concatenate([xs[:1], np.repeat(xs, 2)[1:-1], xs[-1:]])
        for cat, hist in zip(cats, counts, strict=True):
            # along the bottom edge to the first bin, over each bin, down its last edge
            y_steps = np.concatenate([[py(0)], np.repeat(py(hist), 2), [py(0)]])
            points = np.column_stack([x_steps, y_steps])
            stairs.append((cat.colour, points))
            fig.polyline(points, fill=cat.colour, opacity=0.12)
        for colour, points in stairs:  # outlines over every fill
            fig.polyline(points, stroke=colour, width=1.5)
    fig.rect(left, top, 1, plot_h + 1, fill=_SOFT)  # the axes
    fig.rect(left, bottom, plot_w, 1, fill=_SOFT)
    fig.text(left + plot_w / 2, bottom + 35, "streamline length (mm)", size=11,
             colour=_TEXT, anchor="middle")
    fig.text(16, top + plot_h / 2, "streamlines", size=11, colour=_TEXT, anchor="middle",
             rotate=-90)
    for k, (colour, label) in enumerate(entries):
        column, row = divmod(k, per_column)
        _draw_legend_row(fig, [(colour, label, 0.0)], legend_x + column * (col_width + 16),
                         top + 12 + 16 * row, 11)
    return fig


def _z_colour(z: float, threshold: float) -> str:
    """The heatmap's colour of a z-score: :data:`_RDBU_R` over ``[-2, 2] x threshold``."""
    pos = (np.clip(z / (2 * threshold), -1.0, 1.0) + 1.0) / 2 * (len(_RDBU_R) - 1)
    k = min(int(pos), len(_RDBU_R) - 2)
    frac = pos - k
    a, b = np.asarray(rgb(_RDBU_R[k])), np.asarray(rgb(_RDBU_R[k + 1]))
    return "#{:02x}{:02x}{:02x}".format(*np.rint(a + (b - a) * frac).astype(int))


def _dark(colour: str) -> bool:
    """Whether white text reads better than dark text on ``colour``."""
    r, g, b = rgb(colour)
    return 0.299 * r + 0.587 * g + 0.114 * b < 140


def population_figure(subjects: Sequence[str], bundles: Sequence[str], counts: np.ndarray,
                      mean_lengths: np.ndarray, z_counts: np.ndarray, z_lengths: np.ndarray,
                      *, threshold: float) -> Canvas:
    """Subjects x bundles: streamline counts and mean lengths, coloured by robust z-score.

    Each cell shows its value; its colour is its robust z-score among the
    bundle's subjects (blue below the median, red above, saturated at
    ``2 x threshold``); a cell with ``|z| > threshold`` (what makes its row an
    outlier) is framed in black.

    Parameters
    ----------
    subjects, bundles : sequence of str
        Row and column labels.
    counts, mean_lengths : numpy.ndarray
        ``(subjects, bundles)``; NaN where a subject lacks the bundle (and
        for the mean length of an empty bundle).
    z_counts, z_lengths : numpy.ndarray
        Their robust z-scores (NaN where not computed).
    threshold : float
        The outlier threshold on ``|z|``.

    Returns
    -------
    Canvas
    """
    ns, nb = len(subjects), len(bundles)
    cell_w, cell_h, gap = 64, 20, 28
    label_w = max((text_width(s, 11) for s in subjects), default=20.0) + 12
    longest = max((text_width(b, 11) for b in bundles), default=20.0)
    # bundle names turned 35 degrees above the columns: sin and cos of 35 degrees
    names_h = 0.574 * longest + 14
    spill = max(0.0, 0.819 * longest - cell_w / 2)  # past the last column
    top = 26 + names_h
    width = label_w + 2 * nb * cell_w + gap + spill + 10
    fig = Canvas(width, top + ns * cell_h + 10)
    for i, subject in enumerate(subjects):
        fig.text(label_w - 8, top + i * cell_h + cell_h / 2 + 4, subject, size=11,
                 colour=_TEXT, anchor="end")
    for p, (values, zs, what, fmt) in enumerate((
            (counts, z_counts, "streamlines", "{:,.0f}"),
            (mean_lengths, z_lengths, "mean length (mm)", "{:.1f}"))):
        x0 = label_w + p * (nb * cell_w + gap)
        fig.text(x0 + nb * cell_w / 2, 16, what, size=12, colour=_TEXT, anchor="middle")
        for j, bundle in enumerate(bundles):
            fig.text(x0 + (j + 0.5) * cell_w, top - 6, bundle, size=11, colour=_TEXT,
                     rotate=-35)
        for i in range(ns):
            y = top + i * cell_h
            for j in range(nb):
                value, z = values[i, j], zs[i, j]
                colour = _z_colour(z if np.isfinite(z) else 0.0, threshold)
                x = x0 + j * cell_w
                fig.rect(x, y, cell_w - 1, cell_h - 1, fill=colour)
                strong = bool(np.isfinite(z) and abs(z) > threshold)
                if strong:
                    fig.rect(x + 1, y + 1, cell_w - 3, cell_h - 3, stroke="#000000",
                             stroke_width=2)
                text = "-" if not np.isfinite(value) else fmt.format(value)
                fig.text(x + cell_w / 2, y + cell_h / 2 + 3.5, text, size=11,
                         colour="#ffffff" if _dark(colour) else _TEXT, anchor="middle",
                         bold=strong)
    return fig


def tractogram_figure(in_file: str | os.PathLike, out_file: str | os.PathLike, *,
                      figure: str = "projections", reference: Any = None,
                      max_streamlines: int = DEFAULT_MAX_STREAMLINES, seed: int = 0,
                      title: str | None = None) -> Path:
    """Draw one figure of a tractogram file (any readable format) to ``out_file``.

    Parameters
    ----------
    in_file : str or os.PathLike
        A TRX (zip or directory), TRK, TCK, ... file.
    out_file : str or os.PathLike
        ``.png`` or ``.svg``: the extension picks the format. Written
        atomically.
    figure : {"projections", "lengths"}
        Three orthogonal projections of the streamlines, one colour per
        group (:func:`projections_figure`), or the length distributions in mm
        (:func:`lengths_figure`).
    reference : optional
        The space of formats without one (TCK, VTK, ...): a NIfTI image, or a
        TRX/TRK of the same space.
    max_streamlines : int
        Streamlines drawn at most (a seeded sample beyond).
    seed : int
        Seed of the sample.
    title : str, optional
        Above the figure (default: the file's name).

    Returns
    -------
    pathlib.Path
        ``out_file``.

    Raises
    ------
    ValueError
        If ``figure`` or the extension of ``out_file`` is not one of the above.
    """
    from ..core import load_any

    if figure not in FIGURE_KINDS:
        raise ValueError(f"figure must be one of {', '.join(FIGURE_KINDS)}, got {figure!r}")
    figure_format(out_file)
    with load_any(in_file, reference=reference) as trx:
        measures = measure_tractogram(trx, max_streamlines=max_streamlines, seed=seed)
    name = title if title is not None else Path(os.fspath(in_file).rstrip("/\\")).name
    draw = projections_figure if figure == "projections" else lengths_figure
    return save_figure(draw(measures, title=name), out_file)
