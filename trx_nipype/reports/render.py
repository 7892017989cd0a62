"""The figures' canvas: a few primitives, written as SVG text or drawn into a PNG; colours.

A :class:`Canvas` records rectangles, polylines, text and raster images (the
streamline projections of :mod:`~trx_nipype.reports.raster`) in pixel units,
and gives them as SVG (:meth:`Canvas.svg`: text as text, crisp in the
browser, written here, no date, no id) or as PNG (:meth:`Canvas.png`: drawn by
Pillow, no metadata). Nothing depends on the user's settings (no
``matplotlibrc``, no ``MPLBACKEND``, no display): the same data give the same
bytes. Text is set in DejaVu Sans (the font matplotlib ships; Pillow's own
font when it is not found), measured with that font in both formats.

>>> c = Canvas(40, 20)
>>> c.rect(2, 2, 10, 10, fill="#1f77b4")
>>> c.text(20, 15, "AF", size=11)
>>> c.svg() == c.svg() and c.png() == c.png()
True
>>> group_colours(["AF_L", "CST_R"])
{'AF_L': '#1f77b4', 'CST_R': '#ff7f0e'}
"""

from __future__ import annotations

import base64
import contextlib
import functools
import importlib.util
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: the figure formats reports write
FIGURE_FORMATS = ("png", "svg")
#: the colour of streamlines in no group
NO_GROUP_COLOUR = "#7f7f7f"
#: the fonts an SVG figure asks for (DejaVu Sans first: the PNGs' font and metrics)
SVG_FONTS = "'DejaVu Sans', Verdana, Arial, sans-serif"
#: matplotlib's ``tab10`` and ``tab20`` without their greys (constants: drawing a page from
#: the cache needs the colours, not matplotlib)
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#bcbd22", "#17becf")
_TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
          "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
          "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")
#: PNG compression: zlib level 3, fixed here so the bytes do not follow Pillow's default (6:
#: a third slower for files 6% smaller)
_PNG_LEVEL = 3


@functools.cache
def _font_file(bold: bool) -> str | None:
    """DejaVu Sans from matplotlib's data, found without importing matplotlib."""
    spec = importlib.util.find_spec("matplotlib")
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(root, "mpl-data", "fonts", "ttf", name)
        if os.path.isfile(path):
            return path
    return None


@functools.cache
def font(size: int, bold: bool = False) -> Any:
    """The figures' font at ``size`` pixels (a Pillow ``FreeTypeFont``)."""
    from PIL import ImageFont

    path = _font_file(bold)
    if path:
        return ImageFont.truetype(path, size)
    try:  # no matplotlib data: Pillow's own font (sized from Pillow 10.1 on)
        return ImageFont.load_default(size)
    except TypeError:
        return ImageFont.load_default()


def text_width(text: str, size: int, bold: bool = False) -> float:
    """Width in pixels of ``text`` set at ``size`` pixels."""
    return float(font(size, bold).getlength(text))


def rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as three integers.

    >>> rgb("#1f77b4")
    (31, 119, 180)
    """
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _num(value: float) -> str:
    """A coordinate as SVG text: at most two decimals, no ``-0``."""
    return f"{round(float(value), 2) + 0.0:g}"


def _coords(points: np.ndarray) -> str:
    """``x,y x,y ...`` of ``(n, 2)`` points, each number as :func:`_num` writes it."""
    values = (np.round(points, 2) + 0.0).tolist()
    return " ".join(f"{x:g},{y:g}" for x, y in values)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace('"', "&quot;")


_ANCHORS = {"start": "l", "middle": "m", "end": "r"}


class Canvas:
    """A figure of ``width`` x ``height`` pixels on a background colour.

    Coordinates are pixels from the top left corner. Shapes are drawn in the
    order they are added. :meth:`svg` and :meth:`png` give the same picture
    (PNG: shapes on whole pixels, as Pillow draws them).
    """

    def __init__(self, width: float, height: float, background: str = "#ffffff") -> None:
        self.width = int(np.ceil(width))
        self.height = int(np.ceil(height))
        self.background = background
        self._ops: list[tuple[Any, ...]] = []

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str | None = None,
             opacity: float = 1.0, stroke: str | None = None,
             stroke_width: float = 1.0) -> None:
        """A rectangle: ``fill`` (with ``opacity``) and/or an outline inside its edge."""
        self._ops.append(("rect", x, y, w, h, fill, opacity, stroke, stroke_width))

    def polyline(self, points: Sequence[tuple[float, float]], *, stroke: str | None = None,
                 width: float = 1.0, fill: str | None = None, opacity: float = 1.0) -> None:
        """Straight segments through ``points``; ``fill``: the closed polygon's inside."""
        self._ops.append(("poly", np.asarray(points, dtype=np.float64).reshape(-1, 2), stroke,
                          width, fill, opacity))

    def text(self, x: float, y: float, text: str, *, size: int = 11,
             colour: str = "#222222", anchor: str = "start", bold: bool = False,
             rotate: float = 0.0) -> None:
        """``text`` on the baseline ``y``; ``anchor``: which end (or middle) lies at ``x``;
        ``rotate``: degrees clockwise about ``(x, y)``."""
        if anchor not in _ANCHORS:
            raise ValueError(f"anchor must be one of {', '.join(_ANCHORS)}, got {anchor!r}")
        self._ops.append(("text", x, y, str(text), size, colour, anchor, bold, rotate))

    def image(self, x: int, y: int, pixels: np.ndarray) -> None:
        """An ``(h, w, 3)`` uint8 RGB raster, its top left corner at ``(x, y)``."""
        self._ops.append(("image", int(x), int(y), np.ascontiguousarray(pixels, np.uint8)))

    def to_bytes(self, fmt: str) -> bytes:
        """``png`` or ``svg`` bytes."""
        if fmt not in FIGURE_FORMATS:
            raise ValueError(f"figure format must be one of {FIGURE_FORMATS}, got {fmt!r}")
        return self.png() if fmt == "png" else self.svg()

    # ------------------------------------------------------------------ SVG
    def svg(self) -> bytes:
        """The figure as an SVG document."""
        w, h = self.width, self.height
        out = ['<?xml version="1.0" encoding="utf-8"?>\n'
               f'<svg xmlns="http://www.w3.org/2000/svg" '
               f'xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="{h}" '
               f'viewBox="0 0 {w} {h}" font-family="{SVG_FONTS}">\n'
               f'<rect width="{w}" height="{h}" fill="{self.background}"/>\n']
        for op in self._ops:
            out.append(getattr(self, f"_svg_{op[0]}")(*op[1:]))
        out.append("</svg>\n")
        return "".join(out).encode("utf-8")

    @staticmethod
    def _svg_rect(x: float, y: float, w: float, h: float, fill: str | None, opacity: float,
                  stroke: str | None, stroke_width: float) -> str:
        attrs = f'x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}"'
        out = ""
        if fill:
            alpha = f' fill-opacity="{_num(opacity)}"' if opacity < 1 else ""
            out += f'<rect {attrs} fill="{fill}"{alpha}/>\n'
        if stroke:  # inside the edge, as Pillow draws it
            half = stroke_width / 2
            out += (f'<rect x="{_num(x + half)}" y="{_num(y + half)}" '
                    f'width="{_num(w - stroke_width)}" height="{_num(h - stroke_width)}" '
                    f'fill="none" stroke="{stroke}" stroke-width="{_num(stroke_width)}"/>\n')
        return out

    @staticmethod
    def _svg_poly(points: np.ndarray, stroke: str | None, width: float,
                  fill: str | None, opacity: float) -> str:
        coords = _coords(points)
        out = ""
        if fill:
            out += (f'<polygon points="{coords}" fill="{fill}" '
                    f'fill-opacity="{_num(opacity)}"/>\n')
        if stroke:
            out += (f'<polyline points="{coords}" fill="none" stroke="{stroke}" '
                    f'stroke-width="{_num(width)}" stroke-linejoin="miter"/>\n')
        return out

    @staticmethod
    def _svg_text(x: float, y: float, text: str, size: int, colour: str, anchor: str,
                  bold: bool, rotate: float) -> str:
        extra = f' text-anchor="{anchor}"' if anchor != "start" else ""
        if bold:
            extra += ' font-weight="bold"'
        if rotate:
            extra += f' transform="rotate({_num(rotate)} {_num(x)} {_num(y)})"'
        return (f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" fill="{colour}"'
                f"{extra}>{_esc(text)}</text>\n")

    @staticmethod
    def _svg_image(x: int, y: int, pixels: np.ndarray) -> str:
        data = base64.b64encode(_png_bytes(pixels)).decode("ascii")
        h, w = pixels.shape[:2]
        return (f'<image x="{x}" y="{y}" width="{w}" height="{h}" '
                f'xlink:href="data:image/png;base64,{data}"/>\n')

    # ------------------------------------------------------------------ PNG
    def png(self) -> bytes:
        """The figure as a PNG image (RGB, no metadata)."""
        from PIL import Image, ImageDraw

        im = Image.new("RGB", (self.width, self.height), rgb(self.background))
        draw = ImageDraw.Draw(im, "RGBA")  # RGBA colours blend into the image
        for op in self._ops:
            kind, args = op[0], op[1:]
            if kind == "image":
                x, y, pixels = args
                im.paste(Image.fromarray(pixels, "RGB"), (x, y))
            elif kind == "text" and args[-1]:
                _png_rotated_text(im, *args)
            else:
                getattr(self, f"_png_{kind}")(draw, *args)
        return _encode_png(im)

    @staticmethod
    def _png_rect(draw: Any, x: float, y: float, w: float, h: float, fill: str | None,
                  opacity: float, stroke: str | None, stroke_width: float) -> None:
        box = [round(x), round(y), round(x + w) - 1, round(y + h) - 1]
        if box[2] < box[0] or box[3] < box[1]:
            return
        if fill:
            draw.rectangle(box, fill=(*rgb(fill), round(255 * opacity)))
        if stroke:
            draw.rectangle(box, outline=rgb(stroke), width=max(1, round(stroke_width)))

    @staticmethod
    def _png_poly(draw: Any, points: np.ndarray, stroke: str | None,
                  width: float, fill: str | None, opacity: float) -> None:
        xy = [(x, y) for x, y in np.rint(points).astype(int).tolist()]
        if fill and len(xy) >= 3:
            draw.polygon(xy, fill=(*rgb(fill), round(255 * opacity)))
        if stroke and len(xy) >= 2:
            draw.line(xy, fill=rgb(stroke), width=max(1, round(width)))

    @staticmethod
    def _png_text(draw: Any, x: float, y: float, text: str, size: int, colour: str,
                  anchor: str, bold: bool, rotate: float) -> None:
        draw.text((round(x), round(y)), text, font=font(size, bold), fill=rgb(colour),
                  anchor=_ANCHORS[anchor] + "s")


def _png_rotated_text(im: Any, x: float, y: float, text: str, size: int, colour: str,
                      anchor: str, bold: bool, rotate: float) -> None:
    """Text turned about its anchor point: drawn on a transparent square, turned, laid on."""
    from PIL import Image, ImageDraw

    side = 2 * int(text_width(text, size, bold) + 2 * size) + 1
    c = side // 2
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((c, c), text, font=font(size, bold),
                               fill=(*rgb(colour), 255), anchor=_ANCHORS[anchor] + "s")
    layer = layer.rotate(-rotate, resample=Image.Resampling.BICUBIC, center=(c, c))
    im.paste(layer, (round(x) - c, round(y) - c), layer)


def _encode_png(im: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=_PNG_LEVEL)
    return buf.getvalue()


def _png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    return _encode_png(Image.fromarray(np.ascontiguousarray(pixels, np.uint8), "RGB"))


def figure_format(path: str | os.PathLike) -> str:
    """``png`` or ``svg`` from a file name (``ValueError`` otherwise)."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"{os.fspath(path)}: a figure must be .png or .svg, got "
                         f"{Path(path).suffix or 'no extension'!r}")
    return fmt


def figure_bytes(fig: Canvas, fmt: str) -> bytes:
    """The figure as ``png`` or ``svg`` bytes: the same figure always gives the same bytes."""
    return fig.to_bytes(fmt)


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


def save_figure(fig: Canvas, path: str | os.PathLike) -> Path:
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
