"""HTML building blocks of the report pages: escaped text, tables, figures, the page.

Pages are plain HTML with their style inline: no script, no font or file
from the network, no date. Figures are linked by relative paths (a run's
report, next to its ``figures/`` folder) or embedded as ``data:`` URIs (a
single tractogram's page, one file). A page carries a ``generator`` mark:
:func:`check_page_replaceable` lets a report replace only an earlier report.

>>> cell("a < b")
'<td>a &lt; b</td>'
>>> swatch("#1f77b4")
'<span class="swatch" style="background:#1f77b4"></span>'
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .render import write_bytes_atomic

#: the mark of a report page (``<meta name="generator" ...>``)
GENERATOR = "trx-nipype report"

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#222;background:#f6f7f9}
header{background:#1f3b57;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:4px 0 0;color:#c9d6e3}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid #dde1e6;
padding:7px 28px;white-space:nowrap;overflow-x:auto}
nav a{margin-right:14px;color:#1f5f99;text-decoration:none}
nav a.bad{color:#b03a2e;font-weight:600}
main{padding:4px 28px 48px;max-width:1280px}
section{background:#fff;border:1px solid #e2e5e9;border-radius:6px;padding:12px 22px 16px;
margin:18px 0}
section h2{margin:6px 0 10px;font-size:18px}
section h3{margin:16px 0 6px;font-size:15px}
table{border-collapse:collapse;margin:6px 0 10px}
th,td{padding:3px 10px;border-bottom:1px solid #eceff2;text-align:left;vertical-align:top}
th{font-weight:600;background:#f3f5f7}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.outlier td{background:#fdecea}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:7px;
vertical-align:-1px}
figure{margin:10px 0 14px}
figure img{display:block;max-width:100%;height:auto;border:1px solid #eceff2;background:#fff}
figcaption{font-size:13px;color:#555;margin-top:4px}
.alert,.ok,.info{padding:8px 12px;margin:8px 0;border-left:4px solid}
.alert{border-color:#c0392b;background:#fdecea}
.ok{border-color:#27ae60;background:#eafaf1}
.info{border-color:#7f8c9a;background:#f3f5f7}
.note{color:#666;font-size:13px}
code{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all}
details{margin:6px 0}
summary{cursor:pointer;color:#1f5f99}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:6px 0}
dl.kv dt{color:#666}
dl.kv dd{margin:0}
""".strip()


def esc(text: object) -> str:
    """``text`` escaped for HTML (quotes too)."""
    return html.escape(str(text), quote=True)


def cell(text: object, *, num: bool = False, raw: bool = False) -> str:
    """A ``<td>``: escaped text (``raw``: HTML as given), right-aligned for numbers."""
    cls = ' class="num"' if num else ""
    return f"<td{cls}>{text if raw else esc(text)}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
          row_classes: Sequence[str] | None = None, num_columns: Sequence[int] = ()
          ) -> str:
    """A table: ``headers`` escaped; each row a sequence of ready ``<td>`` cells."""
    head = "".join(f'<th class="num">{esc(h)}</th>' if k in num_columns else f"<th>{esc(h)}</th>"
                   for k, h in enumerate(headers))
    body = []
    for k, row in enumerate(rows):
        cls = row_classes[k] if row_classes else ""
        body.append(f'<tr class="{cls}">' if cls else "<tr>")
        body.append("".join(row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def swatch(colour: str) -> str:
    """A small square of ``colour`` (a group's colour in the figures)."""
    return f'<span class="swatch" style="background:{esc(colour)}"></span>'


def figure(src: str, caption: str, alt: str) -> str:
    """A ``<figure>``: ``src`` a relative link or a ``data:`` URI, ``caption`` as HTML."""
    return (f'<figure><img src="{esc(src)}" alt="{esc(alt)}" loading="eager">'
            f"<figcaption>{caption}</figcaption></figure>")


def data_uri(data: bytes, fmt: str) -> str:
    """``data:image/png;base64,...`` (or ``image/svg+xml``) for an embedded figure."""
    mime = {"png": "image/png", "svg": "image/svg+xml"}[fmt]
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def kv_list(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column definition list: names escaped, values as HTML."""
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) \
        + "</dl>"


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str, bool]], body: str) -> str:
    """A whole page: header, a navigation bar (``(anchor, text, bad)``), the sections."""
    from .. import __version__

    links = "".join(f'<a href="#{esc(a)}"{" class=bad" if bad else ""}>{esc(t)}</a>'
                    for a, t, bad in nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta name="generator" content="{GENERATOR} {esc(__version__)}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
            f"<header><h1>{esc(title)}</h1><p>{subtitle}</p></header>\n"
            f"<nav>{links}</nav>\n<main>\n{body}\n</main>\n</body>\n</html>\n")


def is_report_page(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a page this module wrote (its ``generator`` mark)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}'.encode() in head


def check_page_replaceable(path: str | os.PathLike) -> None:
    """Refuse (``FileExistsError``) to replace anything but an earlier report page."""
    path = Path(path)
    if path.is_dir() or (path.exists() and not is_report_page(path)):
        raise FileExistsError(f"{path}: exists and is not a trx-nipype report; not replaced "
                              "(choose another name)")


def write_page(path: str | os.PathLike, text: str) -> Path:
    """Write a page atomically (an identical page is left as it is); return its path."""
    check_page_replaceable(path)
    return write_bytes_atomic(path, text.encode("utf-8"))
