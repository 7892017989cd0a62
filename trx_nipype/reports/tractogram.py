"""The page of one tractogram (``trx-nipype report FILE -o PAGE.html``), and its parts.

The page is one self-contained file (figures embedded as ``data:`` URIs):
the file's counts and space, its groups with their counts, colours and
lengths, three orthogonal projections and the length distributions.
:func:`groups_table` and :func:`projections_caption` are shared with the
run report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .figures import lengths_figure, projections_figure
from .html import (
    cell,
    check_page_replaceable,
    data_uri,
    esc,
    figure,
    kv_list,
    page,
    swatch,
    table,
    write_page,
)
from .measures import (
    DEFAULT_MAX_STREAMLINES,
    CategoryStats,
    TractogramMeasures,
    measure_tractogram,
)
from .render import figure_bytes


def _mm(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def groups_table(categories: Sequence[CategoryStats],
                 flag: Callable[[str], tuple[str, bool]] | None = None) -> str:
    """A table of the categories: colour, name, streamlines and lengths (mm).

    ``flag(name)`` (optional) gives an extra "QC" cell's text and whether the
    row is an outlier (marked).
    """
    rows, classes = [], []
    for cat in categories:
        row = [cell(swatch(cat.colour) + esc(cat.name), raw=True),
               cell(f"{cat.count:,}", num=True), cell(_mm(cat.mean), num=True),
               cell(_mm(cat.median), num=True),
               cell(f"{_mm(cat.minimum)} – {_mm(cat.maximum)}" if cat.count else "-",
                    num=True)]
        note, bad = flag(cat.name) if flag else ("", False)
        if flag:
            row.append(cell(note))
        rows.append(row)
        classes.append("outlier" if bad else "")
    headers = ["group", "streamlines", "mean length (mm)", "median (mm)", "range (mm)"]
    if flag:
        headers.append("QC")
    return table(headers, rows, row_classes=classes, num_columns=(1, 2, 3, 4))


def projections_caption(measures: TractogramMeasures, seed: int) -> str:
    """What a projections figure shows: how many streamlines, which sample, which box."""
    n, drawn = measures.nb_streamlines, measures.drawn
    if measures.sampled:
        what = (f"a seeded random sample of {drawn:,} of the {n:,} streamlines (at most "
                f"{max(c.drawn for c in measures.categories):,} per group, seed {seed})")
    else:
        what = f"all {n:,} streamlines"
    dims = " × ".join(str(d) for d in measures.dimensions)
    vox = " × ".join(f"{v:g}" for v in measures.voxel_sizes)
    if measures.box is not None:
        grid = f"on the reference grid's box (grey: {dims} voxels of {vox} mm)"
    else:
        grid = f"(the reference grid is {dims} voxels: no box is drawn; the axes fit the lines)"
    return (f"Sagittal, coronal and axial projections of {esc(what)}, one colour per group, "
            f"seen through {esc(grid)}.")


def space_summary(measures: TractogramMeasures) -> list[tuple[str, str]]:
    """(name, HTML) pairs: counts and the reference grid."""
    return [("streamlines", f"{measures.nb_streamlines:,}"),
            ("vertices", f"{measures.nb_vertices:,}"),
            ("grid", esc(" × ".join(str(d) for d in measures.dimensions)) + " voxels of "
             + esc(" × ".join(f"{v:g}" for v in measures.voxel_sizes)) + " mm")]


def tractogram_report(in_file: str | os.PathLike, out_page: str | os.PathLike, *,
                      reference: Any = None, max_streamlines: int = DEFAULT_MAX_STREAMLINES,
                      seed: int = 0) -> Path:
    """Write a self-contained HTML page about one tractogram (any readable format).

    Parameters
    ----------
    in_file : str or os.PathLike
        A TRX (zip or directory), TRK, TCK, ... file.
    out_page : str or os.PathLike
        The page to write (replaces only an earlier report page).
    reference : optional
        The space of formats without one (TCK, VTK, ...).
    max_streamlines : int
        Streamlines drawn at most (a seeded sample beyond).
    seed : int
        Seed of the sample.

    Returns
    -------
    pathlib.Path
        ``out_page``.

    Raises
    ------
    FileExistsError
        If ``out_page`` exists and is not a report page.
    """
    from ..core import load_any
    from ..core.formats import detect_format

    check_page_replaceable(out_page)  # before any work
    name = Path(os.fspath(in_file).rstrip("/\\")).name
    with load_any(in_file, reference=reference) as trx:
        measures = measure_tractogram(trx, max_streamlines=max_streamlines, seed=seed)
        dps, dpv, ngroups = sorted(trx.dps), sorted(trx.dpv), len(trx.groups)
    fmt = detect_format(in_file)
    proj = data_uri(figure_bytes(projections_figure(measures), "png"), "png")
    lens = data_uri(figure_bytes(lengths_figure(measures), "svg"), "svg")
    facts = [("file", f"<code>{esc(name)}</code> ({esc(fmt.upper())})"),
             *space_summary(measures),
             ("groups", str(ngroups)),
             ("data per streamline", esc(", ".join(dps)) or "-"),
             ("data per vertex", esc(", ".join(dpv)) or "-")]
    body = (f'<section id="summary"><h2>Summary</h2>{kv_list(facts)}'
            f"{groups_table([c.stats() for c in measures.categories])}</section>\n"
            f'<section id="figures"><h2>Streamlines</h2>'
            f"{figure(proj, projections_caption(measures, seed), f'projections of {name}')}"
            f"{figure(lens, 'Streamline lengths (mm), one outline per group.', 'lengths')}"
            f"</section>")
    text = page(f"trx-nipype report: {name}",
                f"{measures.nb_streamlines:,} streamlines, {len(measures.categories)} "
                f"colour(s)", [("summary", "Summary", False), ("figures", "Streamlines", False)],
                body)
    return write_page(out_page, text)
