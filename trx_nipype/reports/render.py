"""Matplotlib set up for reports: headless, the same bytes for the same figure, colours.

Figures are :class:`matplotlib.figure.Figure` objects drawn without pyplot
(no global state, no GUI backend whatever ``MPLBACKEND`` says) and saved
with the Agg renderer (PNG) or the SVG writer under fixed settings:
matplotlib's defaults (a user's ``matplotlibrc`` cannot change the bytes),
a fixed ``svg.hashsalt`` (the ids of SVG elements), no date, no creator
version. The same data and matplotlib version give the same bytes.

>>> fig = new_figure(2, 1)
>>> _ = fig.add_subplot().plot([0, 1], [1, 0])
>>> figure_bytes(fig, "svg") == figure_bytes(fig, "svg")
True
>>> group_colours(["AF_L", "CST_R"])
{'AF_L': '#1f77b4', 'CST_R': '#ff7f0e'}
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: the figure formats reports write
FIGURE_FORMATS = ("png", "svg")
#: resolution of PNG figures (dots per inch)
PNG_DPI = 100
#: the SVG writer's id salt: fixed, so that ids (and bytes) do not change between runs
SVG_HASHSALT = "trx-nipype"
#: the colour of streamlines in no group
NO_GROUP_COLOUR = "#7f7f7f"
#: matplotlib's ``tab10`` and ``tab20`` without their greys (constants: drawing a page from
#: the cache needs the colours, not matplotlib)
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#bcbd22", "#17becf")
_TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
          "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
          "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")

_RC = {
    "svg.hashsalt": SVG_HASHSALT,
    "svg.fonttype": "none",  # text as text: small files, crisp in the browser
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.dpi": PNG_DPI,
    "savefig.dpi": PNG_DPI,
    "path.simplify": True,
}
_METADATA = {"png": {"Software": None},
             "svg": {"Date": None, "Creator": "trx-nipype"}}


@contextlib.contextmanager
def figure_settings() -> Iterator[None]:
    """Matplotlib's defaults plus the report's settings, restored on exit."""
    import matplotlib as mpl

    with mpl.rc_context():
        mpl.rcdefaults()
        mpl.rcParams.update(_RC)
        yield


def new_figure(width: float, height: float) -> Any:
    """A pyplot-free ``Figure`` of ``width`` x ``height`` inches, white, report settings.

    Draw and save it inside :func:`figure_settings` when fonts or sizes
    matter; :func:`figure_bytes` applies the settings itself.
    """
    from matplotlib.figure import Figure

    with figure_settings():
        return Figure(figsize=(width, height), dpi=PNG_DPI, facecolor="white")


def figure_format(path: str | os.PathLike) -> str:
    """``png`` or ``svg`` from a file name (``ValueError`` otherwise)."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"{os.fspath(path)}: a figure must be .png or .svg, got "
                         f"{Path(path).suffix or 'no extension'!r}")
    return fmt


def figure_bytes(fig: Any, fmt: str) -> bytes:
    """The figure as ``png`` or ``svg`` bytes: the same figure always gives the same bytes."""
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"figure format must be one of {FIGURE_FORMATS}, got {fmt!r}")
    buf = io.BytesIO()
    with figure_settings():
        fig.savefig(buf, format=fmt, metadata=_METADATA[fmt], facecolor="white")
    return buf.getvalue()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and a rename.

    A file that already holds exactly ``data`` is left alone (its time stamp
    too), so rebuilding an unchanged report rewrites nothing.
    """
    path = Path(path)
    with contextlib.suppress(OSError):
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` (``.png`` or ``.svg``) atomically; return the path."""
    return write_bytes_atomic(path, figure_bytes(fig, figure_format(path)))


def group_colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per name, in the order given: matplotlib's ``tab10``, ``tab20`` past 9
    names, then a hue wheel; never the grey of :data:`NO_GROUP_COLOUR`.

    The same names in the same order always get the same colours, so a
    subject keeps its colour in every bundle's figure.
    """
    import colorsys

    n = len(names)
    if n <= len(_TAB10):
        colours = list(_TAB10[:n])
    elif n <= len(_TAB20):
        colours = list(_TAB20[:n])
    else:  # spread hues, alternating lightness so that neighbours differ
        colours = ["#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in colorsys.hsv_to_rgb(
            k / n, 0.75, 0.85 if k % 2 else 0.6))) for k in range(n)]
    return dict(zip(names, colours, strict=True))
