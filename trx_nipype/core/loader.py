"""Reading a TRX container into a :class:`TrxFile`, and checking it.

:func:`load` reads ``header.json``, the member list and the offsets and
group indices (small), checks every size against the header, and maps the rest
lazily. Every violation raises :class:`TrxFormatError` naming the file, the
member, what was expected and what was found.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from .arrays import LazyArrays, frozen_copy
from .container import Container, ZipContainer, open_container
from .dtypes import (
    OFFSET_DTYPES,
    POSITION_DTYPES,
    MemberName,
    check_key,
    parse_member_name,
)
from .errors import TrxFormatError
from .formats import detect_format
from .header import MAX_BYTES as HEADER_MAX_BYTES
from .header import MEMBER as HEADER
from .header import parse_header
from .source import Source
from .trxfile import TrxFile

log = logging.getLogger(__name__)

_FOLDERS = ("dps", "dpv", "groups")


@dataclass
class _Layout:
    """The members of a container, sorted by role."""

    positions: tuple[str, MemberName] | None = None
    offsets: tuple[str, MemberName] | None = None
    dps: dict[str, tuple[str, MemberName]] = field(default_factory=dict)
    dpv: dict[str, tuple[str, MemberName]] = field(default_factory=dict)
    groups: dict[str, tuple[str, MemberName]] = field(default_factory=dict)
    dpg: dict[str, dict[str, tuple[str, MemberName]]] = field(default_factory=dict)


def _classify(container: Container) -> _Layout:
    path = container.path
    layout = _Layout()
    for member in container.members:
        if member == HEADER:
            continue
        parts = PurePosixPath(member).parts
        parsed = parse_member_name(parts[-1])
        if parsed is None and parts[-1].startswith(".") and parse_member_name("x" + parts[-1]):
            what = {"groups": "group", "dps": "dps", "dpv": "dpv"}.get(parts[0], "member")
            raise TrxFormatError(path, member, f"this {what} has no name: expected "
                                 f"<name>{parts[-1]}, found only the dtype")
        if parsed is None:
            raise TrxFormatError(path, member, "unknown dtype extension: expected a name ending "
                                 "in .int8..int64, .uint8..uint64, .float16..float64 or .bit")
        entry = (member, parsed)
        if len(parts) > 1:  # a data, group or dpg name: one the writer can write back
            _check_names(path, member, [parsed.name, *parts[1:-1]])
        if len(parts) == 1 and parsed.name in ("positions", "offsets"):
            slot = parsed.name
            if getattr(layout, slot) is not None:
                raise TrxFormatError(path, member, f"duplicate {slot}: "
                                     f"{getattr(layout, slot)[0]} is already present")
            setattr(layout, slot, entry)
        elif len(parts) == 2 and parts[0] in _FOLDERS:
            table = getattr(layout, parts[0])
            if parsed.name in table:
                raise TrxFormatError(path, member, f"duplicate {parts[0]} key {parsed.name!r}: "
                                     f"{table[parsed.name][0]} is already present")
            table[parsed.name] = entry
        elif len(parts) == 3 and parts[0] == "dpg":
            table = layout.dpg.setdefault(parts[1], {})
            if parsed.name in table:
                raise TrxFormatError(path, member, f"duplicate dpg key {parsed.name!r} for "
                                     f"group {parts[1]!r}")
            table[parsed.name] = entry
        else:
            raise TrxFormatError(path, member, "unexpected member: expected header.json, "
                                 "positions.3.<dtype>, offsets.<dtype>, dps/, dpv/, groups/ "
                                 "or dpg/<group>/ members")
    return layout


def _check_names(path: str, member: str, names: list[str]) -> None:
    """Refuse a data/group name that no TRX writer can store (``..``, ``.x``, empty)."""
    for name in names:
        try:
            check_key(name)
        except ValueError as exc:
            raise TrxFormatError(path, member, str(exc)) from None


def _sized(container: Container, entry: tuple[str, MemberName], rows: int, what: str
           ) -> tuple[np.dtype, tuple[int, ...]]:
    """Check that a member holds ``rows`` x ncols values; return (dtype, shape)."""
    member, parsed = entry
    size = container.members[member]
    expected = rows * parsed.width * parsed.dtype.itemsize
    if size != expected:
        raise TrxFormatError(container.path, member,
                             f"expected {expected} bytes ({what}={rows} x {parsed.width} x "
                             f"{parsed.dtype_name}), found {size}")
    shape = (rows,) if parsed.ncols is None else (rows, parsed.ncols)
    return parsed.dtype, shape


def _load_offsets(container: Container, entry: tuple[str, MemberName] | None,
                  n: int, v: int) -> np.ndarray:
    path = container.path
    if entry is None:
        if n == 0 and v == 0:
            return np.zeros(1, dtype=np.uint64)
        raise TrxFormatError(path, "offsets", f"missing offsets.<uint32|uint64> member "
                             f"(NB_STREAMLINES={n})")
    member, parsed = entry
    if parsed.dtype_name not in OFFSET_DTYPES:
        raise TrxFormatError(path, member, f"expected offsets of dtype uint32 or uint64, "
                             f"found {parsed.dtype_name}")
    if parsed.width != 1:
        raise TrxFormatError(path, member, f"expected one column of offsets, found {parsed.ncols}")
    size = container.members[member]
    item = parsed.dtype.itemsize
    if size % item:
        raise TrxFormatError(path, member, f"expected a multiple of {item} bytes "
                             f"({parsed.dtype_name}), found {size}")
    count = size // item
    if count not in (n, n + 1):
        raise TrxFormatError(path, member, f"expected {n + 1} (or {n}) offsets for "
                             f"NB_STREAMLINES={n}, found {count}")
    if n == 0 and v != 0:
        raise TrxFormatError(path, member, f"expected NB_VERTICES=0 for NB_STREAMLINES=0, "
                             f"found NB_VERTICES={v}")
    mapped = container.read_array(member, parsed.dtype, (count,))
    if count == n:
        offsets = np.empty(n + 1, dtype=parsed.dtype)
        offsets[:n] = mapped
        offsets[n] = v
        offsets = frozen_copy(offsets)
    else:
        offsets = mapped
        if n == 0 and int(offsets[0]) != 0 and v == 0:
            raise TrxFormatError(path, member, f"expected the single offset 0, found "
                                 f"{int(offsets[0])}")
        if int(offsets[-1]) != v:
            raise TrxFormatError(path, member, f"expected the last offset to equal "
                                 f"NB_VERTICES={v}, found {int(offsets[-1])}")
    if n and int(offsets[0]) != 0:
        raise TrxFormatError(path, member, f"expected the first offset to be 0, "
                             f"found {int(offsets[0])}")
    if n:
        top = int(offsets.max())  # first: with N entries, a stray offset also breaks the order
        if top > v:
            raise TrxFormatError(path, member, f"expected offsets <= NB_VERTICES={v}, "
                                 f"found {top}")
        bad = np.flatnonzero(offsets[1:] < offsets[:-1])
        if bad.size:
            i = int(bad[0])
            raise TrxFormatError(path, member, f"expected non-decreasing offsets, found "
                                 f"offsets[{i}]={int(offsets[i])} > "
                                 f"offsets[{i + 1}]={int(offsets[i + 1])}")
    return offsets


def _load_groups(container: Container, layout: _Layout, n: int) -> dict[str, np.ndarray]:
    groups = {}
    for name, (member, parsed) in sorted(layout.groups.items()):
        if parsed.dtype.kind not in "iu":
            raise TrxFormatError(container.path, member, f"expected an integer dtype for group "
                                 f"indices, found {parsed.dtype_name}")
        if parsed.width != 1:
            raise TrxFormatError(container.path, member,
                                 f"expected one column of indices, found {parsed.ncols}")
        size = container.members[member]
        if size % parsed.dtype.itemsize:
            raise TrxFormatError(container.path, member, f"expected a multiple of "
                                 f"{parsed.dtype.itemsize} bytes ({parsed.dtype_name}), "
                                 f"found {size}")
        count = size // parsed.dtype.itemsize
        idx = container.read_array(member, parsed.dtype, (count,))
        if count:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= n:
                raise TrxFormatError(container.path, member, f"expected streamline indices in "
                                     f"0..{n - 1}, found {lo if lo < 0 else hi}")
        groups[name] = idx
    return groups


def _lazy(container: Container, table: dict[str, tuple[str, MemberName]], rows: int,
          what: str) -> LazyArrays:
    out = LazyArrays()
    for name, entry in sorted(table.items()):
        dtype, shape = _sized(container, entry, rows, what)
        out.add(name, dtype, shape,
                lambda m=entry[0], d=dtype, s=shape: container.array(m, d, s),
                lambda m=entry[0], d=dtype, s=shape: container.reader(m, d, s))
    return out


def _lazy_dpg(container: Container, layout: _Layout, groups: dict[str, np.ndarray]
              ) -> dict[str, LazyArrays]:
    dpg = {}
    for group, table in sorted(layout.dpg.items()):
        if group not in groups:
            member = next(iter(table.values()))[0]
            raise TrxFormatError(container.path, member, f"dpg for undeclared group {group!r}; "
                                 f"groups present: {', '.join(sorted(groups)) or 'none'}")
        arrays = LazyArrays()
        for name, (member, parsed) in sorted(table.items()):
            size = container.members[member]
            unit = parsed.width * parsed.dtype.itemsize
            if size % unit:
                raise TrxFormatError(container.path, member, f"expected a multiple of {unit} "
                                     f"bytes ({parsed.width} x {parsed.dtype_name}), "
                                     f"found {size}")
            rows = size // unit
            # one value per column: (ncols,) per group, as written; several rows stay 2-D
            shape = (rows * parsed.width,) if parsed.ncols is None or rows == 1 else \
                (rows, parsed.ncols)
            arrays.add(name, parsed.dtype, shape,  # small: read into memory, not mapped
                       lambda m=member, d=parsed.dtype, s=shape: container.read_array(m, d, s))
        dpg[group] = arrays
    return dpg


def read_source(container: Container) -> Source:
    """Check a container's structure and sizes; map its members lazily."""
    path = container.path
    if HEADER not in container.members:
        raise TrxFormatError(path, HEADER, "missing header.json")
    header = parse_header(container.read_bytes(HEADER, HEADER_MAX_BYTES), path)
    n, v = header["NB_STREAMLINES"], header["NB_VERTICES"]
    layout = _classify(container)
    positions = LazyArrays()
    if layout.positions is None:
        if n or v:
            raise TrxFormatError(path, "positions", f"missing positions.3.<float> member "
                                 f"(NB_VERTICES={v})")
        positions.add("positions", np.dtype("<f4"), (0, 3),
                      lambda: frozen_copy(np.zeros((0, 3), dtype="<f4")))
    else:
        member, parsed = layout.positions
        if parsed.dtype_name not in POSITION_DTYPES:
            raise TrxFormatError(path, member, f"expected positions of dtype float16, float32 or "
                                 f"float64, found {parsed.dtype_name}")
        if parsed.ncols != 3:
            raise TrxFormatError(path, member, f"expected 3 columns (positions.3.<dtype>), "
                                 f"found {parsed.ncols or 1}")
        dtype, shape = _sized(container, layout.positions, v, "NB_VERTICES")
        positions.add("positions", dtype, shape,
                      lambda: container.array(member, dtype, shape),
                      lambda: container.reader(member, dtype, shape))
    offsets = _load_offsets(container, layout.offsets, n, v)
    groups = _load_groups(container, layout, n)
    short = layout.offsets is not None and n > 0 and \
        container.members[layout.offsets[0]] == n * layout.offsets[1].dtype.itemsize
    return Source(
        header=header,
        positions=positions,
        offsets=offsets,
        dps=_lazy(container, layout.dps, n, "NB_STREAMLINES"),
        dpv=_lazy(container, layout.dpv, v, "NB_VERTICES"),
        groups=groups,
        dpg=_lazy_dpg(container, layout, groups),
        path=path,
        container=container,
        short_offsets=short,
    )


def load(path: str | os.PathLike) -> TrxFile:
    """Open a TRX file (stored or deflated zip) or directory, read-only.

    Only ``header.json``, the zip directory, the offsets and the group indices
    are read; positions and data are mapped when first used.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.trx`` zip or a TRX directory.

    Returns
    -------
    TrxFile
        Close it (or use it as a context manager) to release the maps.

    Raises
    ------
    TrxFormatError
        If the container violates the format; the message names the member.
    FileNotFoundError
        If ``path`` does not exist.
    """
    container = open_container(path)
    try:
        return TrxFile(read_source(container))
    except BaseException:
        container.close()
        raise


@dataclass
class ValidationReport:
    """What :func:`validate` found. ``ok`` is False when ``errors`` is not empty."""

    path: str
    container: str = ""
    compression: str = ""
    nb_streamlines: int | None = None
    nb_vertices: int | None = None
    members: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _exceptions: list[Exception] = field(default_factory=list, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when no error was found."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise the first problem found, as it was raised (``TrxFormatError``, ...)."""
        if self._exceptions:
            raise self._exceptions[0]
        if self.errors:
            raise TrxFormatError(self.path, None, self.errors[0])

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``trx-nipype validate --json`` prints)."""
        return {"path": self.path, "ok": self.ok, "container": self.container,
                "compression": self.compression, "nb_streamlines": self.nb_streamlines,
                "nb_vertices": self.nb_vertices, "members": self.members,
                "errors": self.errors, "warnings": self.warnings}


def validate(path: str | os.PathLike, deep: bool = False) -> ValidationReport:
    """Check a TRX file without raising; return a :class:`ValidationReport`.

    ``deep=True`` also reads every member (inflating deflated ones, checking
    their CRC) and checks that positions are finite, chunk by chunk. A file of
    another tractogram format (by its name) is reported as such, not as a corrupt zip.
    """
    other = _other_format(path)
    if other:
        exc = TrxFormatError(path, None, f"a .{other} file, not a TRX: validate checks TRX "
                             "files (a .trx zip or a TRX folder); convert it to TRX to check it")
        report = ValidationReport(path=os.fspath(path))
        report.errors.append(str(exc))
        report._exceptions.append(exc)
        return report
    try:
        trx = load(path)
    except (TrxFormatError, FileNotFoundError) as exc:
        report = ValidationReport(path=os.fspath(path))
        report.errors.append(str(exc))
        report._exceptions.append(exc)
        return report
    with trx:
        return inspect(trx, deep=deep)


def _other_format(path: str | os.PathLike) -> str | None:
    """The format of a tractogram file that its name says is not a TRX, or None."""
    try:
        fmt = detect_format(path)
    except ValueError:  # no known suffix: let the loader say what it finds
        return None
    return None if fmt == "trx" else fmt


def inspect(trx: TrxFile, deep: bool = False) -> ValidationReport:
    """The :class:`ValidationReport` of a tractogram loaded with :func:`load` (no reload).

    What :func:`load` checks has passed already; this adds the container's
    description, the warnings, and with ``deep`` the checks of :func:`validate`.
    """
    src = trx.source_arrays()
    container = src.container
    report = ValidationReport(path=os.fspath(trx.shown_path))
    report.container = container.kind
    if isinstance(container, ZipContainer):
        report.compression = container.compression
    report.members = sorted(container.members)
    report.nb_streamlines, report.nb_vertices = len(trx), trx.nb_vertices
    if src.short_offsets:
        report.warnings.append("offsets has NB_STREAMLINES entries; writers add a last "
                               "one equal to NB_VERTICES")
    if len(trx) and trx.lengths[-1] == 0:
        trailing = len(trx) - (np.flatnonzero(trx.lengths)[-1] + 1 if trx.lengths.any()
                               else 0)
        report.warnings.append(f"{trailing} trailing zero-length streamline(s) "
                               "(unused capacity? resize() trims them)")
    if deep:
        try:
            _deep_check(trx)
        except TrxFormatError as exc:
            report.errors.append(str(exc))
            report._exceptions.append(exc)
    return report


def _deep_check(trx: TrxFile) -> None:
    src = trx.source_arrays()
    positions = src.positions.reader("positions")  # under the file's lease, or preads
    for chunk in trx.iter_chunks():
        block = positions.take(chunk.vertices, view=True)
        if not np.all(np.isfinite(block)):
            bad = np.flatnonzero(~np.all(np.isfinite(block), axis=1))[0]
            vertex = chunk.vertices.start + int(bad)
            raise TrxFormatError(trx.shown_path, f"positions.3.{src.positions_dtype.name}",
                                 f"expected finite coordinates, found {block[bad].tolist()} "
                                 f"at vertex {vertex}")
    for table in (src.dps, src.dpv, *src.dpg.values()):
        for key in table:
            reader = table.reader(key)  # reads every byte (and inflates)
            step = max(1, (16 << 20) // max(reader.row_bytes, 1))
            for a in range(0, reader.nrows, step):
                reader.rows(a, min(a + step, reader.nrows), view=True).sum()
            reader.release()
    positions.release()
    trx.check_unchanged()
