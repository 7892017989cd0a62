"""The report's figures: projections, length histograms, the population heatmap.

- :func:`projections_figure`: the streamlines in three orthogonal projections
  (sagittal, coronal, axial; glass-brain style: every streamline seen
  through, one colour per group) on the reference grid's box.
- :func:`lengths_figure`: length distributions in mm, one per group.
- :func:`population_figure`: subjects x bundles, counts and mean lengths,
  coloured by robust z-score, outliers framed.
- :func:`tractogram_figure`: one of the first two for a tractogram file (the
  function behind the reportlet interface).

Figures are drawn without pyplot and saved with fixed settings
(:mod:`trx_nipype.reports.render`): the same data give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .measures import DEFAULT_MAX_STREAMLINES, TractogramMeasures, measure_tractogram
from .render import figure_format, figure_settings, new_figure, save_figure

#: the figures :func:`tractogram_figure` makes
FIGURE_KINDS = ("projections", "lengths")
#: (title, horizontal RAS axis, vertical RAS axis, left/right labels, bottom/top labels)
_VIEWS = (("sagittal", 1, 2, ("P", "A"), ("I", "S")),
          ("coronal", 0, 2, ("L", "R"), ("I", "S")),
          ("axial", 0, 1, ("L", "R"), ("P", "A")))
#: legend entries shown at most (the page's tables list every group)
_LEGEND_MAX = 16
_BOX_FACE, _BOX_EDGE = "#f4f4f4", "#b0b0b0"


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


def _segments(positions: np.ndarray, lengths: np.ndarray, a: int, b: int) -> list[np.ndarray]:
    """The streamlines projected on axes ``a`` and ``b``: one ``(n, 2)`` array each."""
    flat = positions[:, (a, b)]
    return np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _legend(fig: Any, measures: TractogramMeasures, title: str | None) -> None:
    from matplotlib.lines import Line2D

    cats = measures.categories
    shown = cats[:_LEGEND_MAX]
    handles = [Line2D([], [], color=c.colour, linewidth=3) for c in shown]
    labels = [f"{c.name} ({c.count:,})" for c in shown]
    if len(cats) > len(shown):
        handles.append(Line2D([], [], color="none"))
        labels.append(f"... and {len(cats) - len(shown)} more")
    if handles:
        fig.legend(handles, labels, loc="lower center", ncols=min(len(handles), 6),
                   frameon=False, fontsize=8, handlelength=1.2, columnspacing=1.2)
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")


def projections_figure(measures: TractogramMeasures, *, title: str | None = None) -> Any:
    """Three orthogonal projections of the drawn streamlines, one colour per category.

    Each panel shows every drawn streamline seen through (glass-brain style)
    on the reference grid's box (grey) when the grid has one; the axes take
    in the box and all drawn vertices. Orientation letters mark the RAS+
    directions. The legend lists the categories with their counts.

    Parameters
    ----------
    measures : TractogramMeasures
        From :func:`~.measures.measure_tractogram`.
    title : str, optional
        Above the panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle

    lo, hi = _extent(measures)
    size = hi - lo
    widths = [size[h] / size[v] for _, h, v, _, _ in _VIEWS]
    legend_rows = (min(len(measures.categories), _LEGEND_MAX + 1) + 5) // 6
    height = 3.4 + 0.2 * legend_rows + (0.3 if title else 0.0)
    fig = new_figure(3.0 * sum(widths) + 0.6, height)
    with figure_settings():
        grid = fig.add_gridspec(1, 3, width_ratios=widths, left=0.02, right=0.98,
                                top=1 - (0.6 if title else 0.35) / height,
                                bottom=(0.25 + 0.2 * legend_rows) / height, wspace=0.06)
        alpha = _alpha(measures.drawn)
        for k, (name, h, v, (left, right), (bottom, top)) in enumerate(_VIEWS):
            ax = fig.add_subplot(grid[0, k])
            ax.set_xlim(lo[h], hi[h])
            ax.set_ylim(lo[v], hi[v])
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if measures.box is not None:
                b0, b1 = measures.box
                ax.add_patch(Rectangle((b0[h], b0[v]), b1[h] - b0[h], b1[v] - b0[v],
                                       facecolor=_BOX_FACE, edgecolor=_BOX_EDGE, linewidth=0.8))
            for cat in measures.categories:
                segs = _segments(cat.positions, cat.sample_lengths, h, v)
                if segs:
                    ax.add_collection(LineCollection(segs, colors=cat.colour, linewidths=0.5,
                                                     alpha=alpha, capstyle="round"))
            ax.set_title(name, fontsize=9, color="#444444")
            for text, x, y, ha, va in ((left, 0.01, 0.5, "left", "center"),
                                       (right, 0.99, 0.5, "right", "center"),
                                       (bottom, 0.5, 0.01, "center", "bottom"),
                                       (top, 0.5, 0.99, "center", "top")):
                ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=8,
                        color="#888888")
        _legend(fig, measures, title)
    return fig


def lengths_figure(measures: TractogramMeasures, *, title: str | None = None,
                   bins: int | None = None) -> Any:
    """Streamline length distributions (mm), one outline per category, on shared bins.

    ``bins`` defaults to twice the square root of the largest category's
    count, between 10 and 60.

    Returns
    -------
    matplotlib.figure.Figure
    """
    everything = measures.all_lengths
    fig = new_figure(6.0, 2.8 + (0.25 if title else 0.0))
    with figure_settings():
        ax = fig.add_subplot()
        if len(everything):
            lo, hi = float(everything.min()), float(everything.max())
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            if bins is None:
                largest = max(c.count for c in measures.categories)
                bins = int(np.clip(2 * np.sqrt(largest), 10, 60))
            edges = np.linspace(lo, hi, bins + 1)
            for cat in measures.categories:
                counts, _ = np.histogram(cat.lengths, bins=edges)
                ax.stairs(counts, edges, color=cat.colour, linewidth=1.4,
                          label=f"{cat.name} ({cat.count:,})")
                ax.stairs(counts, edges, color=cat.colour, alpha=0.12, fill=True)
            ax.legend(fontsize=8, frameon=False, loc="best",
                      ncols=1 if len(measures.categories) <= 8 else 2)
        else:
            ax.text(0.5, 0.5, "no streamlines", transform=ax.transAxes, ha="center")
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("streamline length (mm)")
        ax.set_ylabel("streamlines")
        ax.spines[["top", "right"]].set_visible(False)
        if title:
            ax.set_title(title, loc="left")
        fig.tight_layout()
    return fig


def population_figure(subjects: Sequence[str], bundles: Sequence[str], counts: np.ndarray,
                      mean_lengths: np.ndarray, z_counts: np.ndarray, z_lengths: np.ndarray,
                      *, threshold: float) -> Any:
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
    matplotlib.figure.Figure
    """
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    ns, nb = len(subjects), len(bundles)
    label_h = 0.3 + 0.045 * max((len(b) for b in bundles), default=4)  # rotated names
    fig = new_figure(2 * max(1.6, 0.75 * nb) + 0.4 + 0.07 * max(map(len, subjects), default=6),
                     0.75 + label_h + 0.28 * ns)
    norm = Normalize(-2 * threshold, 2 * threshold)
    with figure_settings():
        axes = fig.subplots(1, 2, sharey=True)
        for ax, values, zs, what, fmt in (
                (axes[0], counts, z_counts, "streamlines", "{:,.0f}"),
                (axes[1], mean_lengths, z_lengths, "mean length (mm)", "{:.1f}")):
            shown = np.where(np.isfinite(zs), zs, 0.0)
            ax.pcolormesh(np.arange(nb + 1), np.arange(ns + 1), shown, cmap="RdBu_r",
                          norm=norm, edgecolors="white", linewidth=1.0)
            for i in range(ns):
                for j in range(nb):
                    value = values[i, j]
                    text = "-" if not np.isfinite(value) else fmt.format(value)
                    strong = np.isfinite(zs[i, j]) and abs(zs[i, j]) > threshold
                    ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=8,
                            color="white" if strong else "#222222")
                    if strong:
                        ax.add_patch(Rectangle((j + 0.04, i + 0.04), 0.92, 0.92, fill=False,
                                               edgecolor="black", linewidth=1.6))
            ax.set_xticks(np.arange(nb) + 0.5, labels=list(bundles), rotation=35, ha="right",
                          rotation_mode="anchor", fontsize=8)
            ax.set_title(what, fontsize=9)
            ax.set_xlim(0, nb)
            ax.set_ylim(ns, 0)
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[0].set_yticks(np.arange(ns) + 0.5, labels=list(subjects), fontsize=8)
        fig.tight_layout()
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
