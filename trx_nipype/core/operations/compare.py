"""Compare two tractograms, or two output trees, by content: what differs, readably.

Content, not bytes: a TRX and its deflated or directory re-encoding are equal,
and so are a TRK and the TRX converted from it. Two tractograms are compared
member by member:

- counts (streamlines, vertices), the space (affine, dimensions) and any
  other header key;
- the vertex count of every streamline, then the positions, chunk by chunk
  over the maps (bounded memory): the largest distance between corresponding
  points, in mm, and the streamline and point where it is;
- data per streamline, per vertex and per group: keys, dtypes, columns and
  values (the largest difference and where);
- groups: names and members (as sets of streamline indices).

Two folders (derivatives trees) are compared file by file: files missing or
extra, tractograms as above, JSON files as JSON (provenance -- software
versions -- and byte digests left out, see :func:`json_differences`), NIfTI
images by header and data, anything else by bytes. Hidden files and the work
folders of trx-nipype (a folder holding :data:`WORK_DIR_MARKER`) are not part
of a tree.

>>> import numpy as np
>>> from trx_nipype.core import TrxFile
>>> a = TrxFile.from_arrays(np.zeros((4, 3), np.float32), lengths=[2, 2])
>>> b = TrxFile.from_arrays(np.full((4, 3), 1e-4, np.float32), lengths=[2, 2])
>>> compare_trx(a, b).equal, compare_trx(a, b, atol=1e-3).equal
(False, True)
>>> print(compare_trx(a, b).differences[0].line())  # doctest: +NORMALIZE_WHITESPACE
positions: largest deviation 0.000173 mm at streamline 0, point 0 (of 2) > atol 0 mm;
4 of 4 points in 2 of 2 streamlines differ
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..formats import SUFFIXES, carries_space, compound_suffix
from ..trxfile import TrxFile

log = logging.getLogger(__name__)

#: a file that trx-nipype leaves in its work dirs: such a folder is not part of an output tree
WORK_DIR_MARKER = ".trx-nipype-work"
#: vertices compared per chunk: a chunk's float64 copies and differences stay near 50 MB
COMPARE_CHUNK_VERTICES = 250_000
#: JSON keys that say how a file was made, not what it holds: left out of comparisons
PROVENANCE_KEYS = ("Software",)
#: JSON keys holding digests of bytes: the files they digest are compared by content
DIGEST_KEYS = ("sha256",)
#: the header keys compared as counts and space (the others are compared as JSON)
_HEADER_KEYS = ("VOXEL_TO_RASMM", "DIMENSIONS", "NB_STREAMLINES", "NB_VERTICES")
#: at most this many examples in a message
_EXAMPLES = 5


@dataclass(frozen=True)
class Difference:
    """One thing that differs between A and B.

    Attributes
    ----------
    what : str
        The part: ``positions``, ``nb_streamlines``, ``groups/AF_L``,
        ``dps/weight``, ``file`` (a file missing or extra), a JSON key path...
    message : str
        What differs, in one line.
    file : str
        The file, relative to the compared folders ("" for two files).
    details : dict
        JSON-ready numbers behind the message (largest deviation, index, ...).
    """

    what: str
    message: str
    file: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """``file: what: message`` (the file left out when there is none)."""
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.what}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """The difference as JSON-ready values."""
        return {"file": self.file, "what": self.what, "message": self.message,
                "details": dict(self.details)}


@dataclass
class Comparison:
    """The result of comparing A with B: equal, or the list of what differs.

    Attributes
    ----------
    a, b : str
        What was compared (as given).
    atol : float
        Largest distance allowed between corresponding points (mm).
    data_atol : float
        Largest difference allowed between float data values (dps, dpv, dpg,
        JSON numbers, image voxels).
    differences : list of Difference
    notes : list of str
        What was compared within tolerance, or not compared (a space missing).
    files : int
        Files compared (folders), 1 for two tractograms.
    """

    a: str
    b: str
    atol: float = 0.0
    data_atol: float = 0.0
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 1

    @property
    def equal(self) -> bool:
        """True when nothing differs (beyond the tolerances)."""
        return not self.differences

    def tolerance(self) -> str:
        """``atol 0.001 mm`` (and the data tolerance when it differs)."""
        text = f"atol {self.atol:g} mm"
        if self.data_atol != self.atol:
            text += f", data atol {self.data_atol:g}"
        return text

    def report(self) -> str:
        """The readable report: a verdict line, then one line per difference and note."""
        what = f"{self.files} files" if self.files != 1 else "content"
        if self.equal:
            head = f"{self.a} and {self.b}: equal ({what} compared, {self.tolerance()})"
        else:
            n = len(self.differences)
            head = (f"{self.a} and {self.b} differ: {n} difference{'s' if n > 1 else ''} "
                    f"({what} compared, {self.tolerance()})")
        lines = [head] + [f"  {d.line()}" for d in self.differences]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready values (``trx-nipype compare --json``)."""
        return {"a": self.a, "b": self.b, "equal": self.equal, "atol": self.atol,
                "data_atol": self.data_atol, "files": self.files,
                "differences": [d.as_dict() for d in self.differences], "notes": self.notes}


# ------------------------------------------------------------------ helpers
def _num(value: float) -> str:
    return f"{value:.3g}"


def _examples(values: np.ndarray) -> str:
    shown = ", ".join(str(int(v)) for v in values[:_EXAMPLES])
    return shown + (f", ... ({len(values)})" if len(values) > _EXAMPLES else "")


def _spec(arrays: Mapping[str, np.ndarray], key: str) -> tuple[np.dtype, tuple[int, ...]]:
    spec = getattr(arrays, "spec", None)
    if spec is not None:
        dtype, shape = spec(key)
        return np.dtype(dtype), tuple(shape)
    arr = arrays[key]
    return arr.dtype, arr.shape


def _values(arr: Any) -> np.ndarray:
    """Rows as a 2-D float64 or int64 array (NaN kept)."""
    arr = np.asarray(arr)
    arr = arr.reshape(len(arr), -1)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64) if arr.dtype != np.uint64 else arr
    return arr.astype(np.float64)


def _abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a - b|`` per value; 0 where both are NaN (or equal infinities), inf where one is."""
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return np.where(a == b, 0.0, np.abs(a.astype(np.float64) - b.astype(np.float64)))
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff[same] = 0.0
    diff[np.isnan(diff)] = np.inf
    return diff


class _Worst:
    """The largest difference seen over chunks, where it was, and how many rows exceed."""

    def __init__(self) -> None:
        self.value = 0.0
        self.row = -1
        self.col = -1
        self.bad_rows = 0
        self.first_bad = -1

    def add(self, diff: np.ndarray, row0: int, tol: float) -> np.ndarray:
        """Account for a chunk's ``(rows, cols)`` differences; return the rows above ``tol``."""
        if diff.size == 0:
            return np.zeros(len(diff), dtype=bool)
        flat = int(np.argmax(diff))
        r, c = divmod(flat, diff.shape[1])
        if diff[r, c] > self.value:
            self.value, self.row, self.col = float(diff[r, c]), row0 + r, c
        bad = (diff > tol).any(axis=1)
        n = int(bad.sum())
        if n and self.first_bad < 0:
            self.first_bad = row0 + int(np.argmax(bad))
        self.bad_rows += n
        return bad


# --------------------------------------------------------------- tractograms
class _TractogramComparison:
    """The member-by-member comparison of two opened tractograms."""

    def __init__(self, a: TrxFile, b: TrxFile, *, atol: float, data_atol: float,
                 check_dtypes: bool, chunk_vertices: int, spaces: bool = True) -> None:
        self.a, self.b = a, b
        self.atol, self.data_atol = atol, data_atol
        self.check_dtypes = check_dtypes
        self.chunk = chunk_vertices
        self.spaces = spaces
        self.differences: list[Difference] = []
        self.notes: list[str] = []

    def differ(self, what: str, message: str, **details: Any) -> None:
        self.differences.append(Difference(what, message, details=details))

    def run(self) -> None:
        a, b = self.a, self.b
        same_n = len(a) == len(b)
        if not same_n:
            self.differ("nb_streamlines", f"{len(a)} != {len(b)}", a=len(a), b=len(b))
        if a.nb_vertices != b.nb_vertices:
            self.differ("nb_vertices", f"{a.nb_vertices} != {b.nb_vertices}",
                        a=a.nb_vertices, b=b.nb_vertices)
        if self.spaces:
            self.space()
        else:
            self.notes.append("space not compared: a file carries none and no reference "
                              "was given")
        self.header()
        same_lengths = same_n and self.lengths()
        self.positions(same_lengths)
        self.table("dps", a.dps, b.dps, same_n, per_vertex=False)
        self.table("dpv", a.dpv, b.dpv, same_lengths, per_vertex=True)
        self.groups(same_n)
        self.dpg()

    # ------------------------------------------------------------------ parts
    def space(self) -> None:
        da, db = self.a.dimensions, self.b.dimensions
        if not np.array_equal(da, db):
            self.differ("dimensions", f"{da.tolist()} != {db.tolist()}")
        dev = float(np.max(np.abs(self.a.affine - self.b.affine)))
        if dev > self.atol:
            self.differ("affine", f"largest difference {_num(dev)} > atol {self.atol:g}: "
                        f"{np.round(self.a.affine, 6).tolist()} != "
                        f"{np.round(self.b.affine, 6).tolist()}", max_difference=dev)

    def header(self) -> None:
        ha = {k: v for k, v in self.a.header.items() if k not in _HEADER_KEYS}
        hb = {k: v for k, v in self.b.header.items() if k not in _HEADER_KEYS}
        for path, message in json_differences(ha, hb, ignore=lambda _p: False):
            self.differ(f"header/{path}", message)

    def lengths(self) -> bool:
        la, lb = np.asarray(self.a.lengths), np.asarray(self.b.lengths)
        bad = np.flatnonzero(la != lb)
        if len(bad) == 0:
            return True
        i = int(bad[0])
        self.differ("lengths", f"{len(bad)} of {len(la)} streamlines have another number of "
                    f"points (first: streamline {i}, {int(la[i])} != {int(lb[i])}); "
                    f"positions and dpv not compared", streamlines=int(len(bad)), first=i)
        return False

    def _chunks(self) -> Iterator[tuple[int, int, np.ndarray, Any, Any]]:
        """(first streamline, first vertex, lengths, A's rows, B's rows) of aligned chunks."""
        s0 = v0 = 0
        for ca, cb in zip(self.a.iter_chunks(self.chunk), self.b.iter_chunks(self.chunk),
                          strict=True):
            lens = np.asarray(ca.lengths, dtype=np.int64)
            yield s0, v0, lens, ca, cb
            s0 += len(lens)
            v0 += int(lens.sum())

    def positions(self, same_lengths: bool) -> None:
        pa_dtype, pb_dtype = self.a.positions_dtype, self.b.positions_dtype
        if self.check_dtypes and pa_dtype != pb_dtype:
            self.differ("positions", f"dtype {pa_dtype.name} != {pb_dtype.name}")
        if not same_lengths:
            return
        # bounded reads, not the maps: a file cut short meanwhile is an error, not SIGBUS
        src_a = self.a.source_arrays().positions.reader("positions")
        src_b = self.b.source_arrays().positions.reader("positions")
        try:
            self._positions(src_a, src_b)
        finally:
            src_a.release()
            src_b.release()

    def _positions(self, src_a: Any, src_b: Any) -> None:
        worst = _Worst()
        bad_streamlines = 0
        where: tuple[int, int, int] = (-1, -1, 0)
        for s0, v0, lens, ca, cb in self._chunks():
            pa = np.asarray(src_a.take(ca.vertices), dtype=np.float64)
            pb = np.asarray(src_b.take(cb.vertices), dtype=np.float64)
            diff = _abs_diff(pa, pb)
            dist = np.sqrt(np.square(diff).sum(axis=1))[:, None]
            before = worst.value
            bad = worst.add(dist, v0, self.atol)
            ends = np.cumsum(lens)
            if worst.value > before or (worst.row >= v0 and where[0] < 0):
                local = worst.row - v0
                k = int(np.searchsorted(ends, local, side="right"))
                where = (s0 + k, local - int(ends[k] - lens[k]), int(lens[k]))
            if bad.any():
                cum = np.concatenate(([0], np.cumsum(bad)))
                bad_streamlines += int(np.count_nonzero(cum[ends] - cum[ends - lens]))
        if worst.row < 0:
            return
        line, point, npts = where
        text = (f"largest deviation {_num(worst.value)} mm at streamline {line}, point "
                f"{point} (of {npts})")
        details = {"max_deviation_mm": worst.value, "streamline": line, "point": point}
        if worst.bad_rows:
            self.differ("positions", f"{text} > atol {self.atol:g} mm; {worst.bad_rows} of "
                        f"{self.a.nb_vertices} points in {bad_streamlines} of {len(self.a)} "
                        f"streamlines differ", points=worst.bad_rows,
                        streamlines=bad_streamlines, **details)
        elif worst.value > 0:
            self.notes.append(f"positions: {text}, within atol {self.atol:g} mm")

    def table(self, label: str, ta: Mapping[str, Any], tb: Mapping[str, Any], comparable: bool,
              *, per_vertex: bool) -> None:
        only_a, only_b = sorted(set(ta) - set(tb)), sorted(set(tb) - set(ta))
        for key in only_a:
            self.differ(f"{label}/{key}", "only in A")
        for key in only_b:
            self.differ(f"{label}/{key}", "only in B")
        for key in sorted(set(ta) & set(tb)):
            if self.same_spec(f"{label}/{key}", ta, tb, key) and comparable:
                self.rows(label, key, per_vertex)

    def same_spec(self, what: str, ta: Mapping[str, Any], tb: Mapping[str, Any], key: str
                  ) -> bool:
        (dta, sha), (dtb, shb) = _spec(ta, key), _spec(tb, key)
        if self.check_dtypes and dta != dtb:
            self.differ(what, f"dtype {dta.name} != {dtb.name}")
        if sha[1:] != shb[1:]:
            self.differ(what, f"shape per row {list(sha[1:])} != {list(shb[1:])}")
            return False
        if sha[0] != shb[0]:
            self.differ(what, f"{sha[0]} rows != {shb[0]}")
            return False
        return True

    def rows(self, label: str, key: str, per_vertex: bool) -> None:
        arr_a = getattr(self.a.source_arrays(), label).reader(key)
        arr_b = getattr(self.b.source_arrays(), label).reader(key)
        try:
            self._rows(arr_a, arr_b, label, key, per_vertex)
        finally:
            arr_a.release()
            arr_b.release()

    def _rows(self, arr_a: Any, arr_b: Any, label: str, key: str, per_vertex: bool) -> None:
        worst = _Worst()
        hit: tuple[int, int] = (-1, -1)  # (streamline, point) of the largest difference
        for s0, v0, lens, ca, cb in self._chunks():
            rows_a = ca.vertices if per_vertex else ca.streamlines
            rows_b = cb.vertices if per_vertex else cb.streamlines
            diff = _abs_diff(_values(arr_a.take(rows_a)), _values(arr_b.take(rows_b)))
            before = worst.value
            worst.add(diff, v0 if per_vertex else s0, self.data_atol)
            if worst.value > before or (hit[0] < 0 and worst.row >= 0):
                if per_vertex:
                    local = worst.row - v0
                    ends = np.cumsum(lens)
                    k = int(np.searchsorted(ends, local, side="right"))
                    hit = (s0 + k, local - int(ends[k] - lens[k]))
                else:
                    hit = (worst.row, -1)
        if worst.row < 0:
            return
        place = f"streamline {hit[0]}" + (f", point {hit[1]}" if per_vertex else "")
        col = f" (column {worst.col})" if worst.col > 0 else ""
        text = f"largest difference {_num(worst.value)} at {place}{col}"
        unit = "points" if per_vertex else "streamlines"
        if worst.bad_rows:
            self.differ(f"{label}/{key}", f"{text} > atol {self.data_atol:g}; "
                        f"{worst.bad_rows} {unit} differ", max_difference=worst.value,
                        streamline=hit[0], rows=worst.bad_rows)
        elif worst.value > 0:
            self.notes.append(f"{label}/{key}: {text}, within atol {self.data_atol:g}")

    def groups(self, same_n: bool) -> None:
        ga, gb = self.a.groups, self.b.groups
        for name in sorted(set(ga) - set(gb)):
            self.differ(f"groups/{name}", f"only in A ({len(ga[name])} streamlines)")
        for name in sorted(set(gb) - set(ga)):
            self.differ(f"groups/{name}", f"only in B ({len(gb[name])} streamlines)")
        for name in sorted(set(ga) & set(gb)):
            ma = np.sort(np.asarray(ga[name], dtype=np.int64))
            mb = np.sort(np.asarray(gb[name], dtype=np.int64))
            if np.array_equal(ma, mb):
                continue
            only_a, only_b = np.setdiff1d(ma, mb), np.setdiff1d(mb, ma)
            text = f"{len(ma)} != {len(mb)} members" if len(ma) != len(mb) else \
                f"{len(ma)} members, not the same"
            parts = [text]
            if len(only_a):
                parts.append(f"only in A: {_examples(only_a)}")
            if len(only_b):
                parts.append(f"only in B: {_examples(only_b)}")
            if not len(only_a) and not len(only_b):
                parts.append("the same streamlines, repeated differently")
            self.differ(f"groups/{name}", "; ".join(parts), a=len(ma), b=len(mb),
                        only_in_a=int(len(only_a)), only_in_b=int(len(only_b)))

    def dpg(self) -> None:
        da, db = self.a.dpg, self.b.dpg
        for group in sorted(set(da) | set(db)):
            ta, tb = da.get(group, {}), db.get(group, {})
            for key in sorted(set(ta) - set(tb)):
                self.differ(f"dpg/{group}/{key}", "only in A")
            for key in sorted(set(tb) - set(ta)):
                self.differ(f"dpg/{group}/{key}", "only in B")
            for key in sorted(set(ta) & set(tb)):
                what = f"dpg/{group}/{key}"
                if not self.same_spec(what, ta, tb, key):
                    continue
                diff = _abs_diff(_values(ta[key]), _values(tb[key]))
                dev = float(diff.max()) if diff.size else 0.0
                if dev > self.data_atol:
                    self.differ(what, f"largest difference {_num(dev)} > atol "
                                f"{self.data_atol:g}: {np.asarray(ta[key]).tolist()} != "
                                f"{np.asarray(tb[key]).tolist()}", max_difference=dev)
                elif dev > 0:
                    self.notes.append(f"{what}: largest difference {_num(dev)}, within atol "
                                      f"{self.data_atol:g}")


def check_tolerances(atol: float, data_atol: float | None) -> float:
    """The data tolerance (``data_atol``, else ``atol``), after checking both.

    Raises
    ------
    ValueError
        If a tolerance is negative or not finite.
    """
    for name, value in (("atol", atol), ("data_atol", data_atol)):
        if value is not None and not (value >= 0 and np.isfinite(value)):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(atol if data_atol is None else data_atol)


def compare_trx(a: TrxFile, b: TrxFile, *, atol: float = 0.0, data_atol: float | None = None,
                check_dtypes: bool = True, chunk_vertices: int = COMPARE_CHUNK_VERTICES,
                labels: tuple[str, str] = ("A", "B")) -> Comparison:
    """Compare two opened tractograms (files or views) member by member.

    Parameters
    ----------
    a, b : TrxFile
        The tractograms (:func:`trx_nipype.core.load`, :func:`~trx_nipype.core.load_any`,
        or views of them).
    atol : float
        Largest distance between corresponding points, in mm, that counts as equal.
    data_atol : float, optional
        Largest difference between float data values (dps, dpv, dpg) that
        counts as equal (default: ``atol``). Integer data is compared exactly.
    check_dtypes : bool
        Report different dtypes of the positions and data (the values are
        compared either way). Offsets and group index dtypes are encoding, never
        compared.
    chunk_vertices : int
        Vertices read per chunk from each side.
    labels : tuple of str
        Names of A and B in the report.

    Returns
    -------
    Comparison
    """
    data_tol = check_tolerances(atol, data_atol)
    job = _TractogramComparison(a, b, atol=float(atol), data_atol=data_tol,
                                check_dtypes=check_dtypes, chunk_vertices=chunk_vertices)
    job.run()
    return Comparison(labels[0], labels[1], float(atol), data_tol, job.differences, job.notes)


def open_for_comparison(path: str | os.PathLike, reference: Any = None) -> tuple[TrxFile, bool]:
    """Open any readable tractogram for comparison; return it and whether it has a space.

    A TRX or TRK is read in its own space (``reference`` unused). A format
    without a space (TCK, VTK, DPY) is read in ``reference``'s space, or,
    without one, in a placeholder space: its positions (RAS+ mm) are the
    same either way, and the second value is then False.
    """
    from ..converting import load_any

    if carries_space(path):
        return load_any(path), True
    if reference is None:
        return load_any(path, reference=(np.eye(4), (1, 1, 1))), False
    return load_any(path, reference=reference), True


def compare_tractograms(a: str | os.PathLike, b: str | os.PathLike, *, atol: float = 0.0,
                        data_atol: float | None = None, check_dtypes: bool = True,
                        reference: Any = None,
                        chunk_vertices: int = COMPARE_CHUNK_VERTICES) -> Comparison:
    """Compare two tractogram files of any readable format (see :func:`compare_trx`).

    ``reference`` gives the space of a file without one (TCK, VTK, DPY);
    without it, such a file's space is not compared (a note says so), only
    its streamlines and data.

    Raises
    ------
    FileNotFoundError, TrxFormatError, ValueError
        If a file is missing or cannot be read.
    """
    ta, space_a = open_for_comparison(a, reference)
    try:
        tb, space_b = open_for_comparison(b, reference)
    except BaseException:
        ta.close()
        raise
    with ta, tb:
        data_tol = check_tolerances(atol, data_atol)
        job = _TractogramComparison(ta, tb, atol=float(atol), data_atol=data_tol,
                                    check_dtypes=check_dtypes, chunk_vertices=chunk_vertices,
                                    spaces=space_a and space_b)
        job.run()
    return Comparison(os.fspath(a), os.fspath(b), float(atol), data_tol, job.differences,
                      job.notes)


# ---------------------------------------------------------------------- JSON
def is_provenance(path: tuple[Any, ...]) -> bool:
    """Whether a JSON key path is provenance or a byte digest, left out of comparisons.

    ``Software`` (sidecars: software versions), ``sha256`` (digests of bytes:
    the files themselves are compared by content) and the ``Version`` of a
    ``GeneratedBy`` entry (``dataset_description.json``).

    >>> is_provenance(("Software",)), is_provenance(("Sources", 0, "sha256"))
    (True, True)
    >>> is_provenance(("GeneratedBy", 0, "Version")), is_provenance(("Counts", "Groups"))
    (True, False)
    """
    if not path:
        return False
    last = path[-1]
    if last in PROVENANCE_KEYS or last in DIGEST_KEYS:
        return True
    return len(path) == 3 and path[0] == "GeneratedBy" and last == "Version"


def strip_provenance(doc: Any, path: tuple[Any, ...] = ()) -> Any:
    """``doc`` without its provenance keys (:func:`is_provenance`)."""
    if isinstance(doc, dict):
        return {k: strip_provenance(v, (*path, k)) for k, v in doc.items()
                if not is_provenance((*path, k))}
    if isinstance(doc, list):
        return [strip_provenance(v, (*path, i)) for i, v in enumerate(doc)]
    return doc


def _key_path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def json_differences(a: Any, b: Any, *, atol: float = 0.0,
                     ignore: Callable[[tuple[Any, ...]], bool] = is_provenance,
                     path: tuple[Any, ...] = ()) -> list[tuple[str, str]]:
    """``(key path, message)`` for every difference between two JSON documents.

    Numbers that are not both integers are equal within ``atol``; keys for
    which ``ignore(path)`` is true (default: :func:`is_provenance`) are left out.

    >>> json_differences({"Counts": {"N": 150}, "Software": {"dipy": "1"}},
    ...                  {"Counts": {"N": 148}, "Software": {"dipy": "2"}})
    [('Counts.N', '150 != 148')]
    """
    out: list[tuple[str, str]] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            sub = (*path, key)
            if ignore(sub):
                continue
            if key not in b:
                out.append((_key_path(sub), f"only in A ({_short(a[key])})"))
            elif key not in a:
                out.append((_key_path(sub), f"only in B ({_short(b[key])})"))
            else:
                out.extend(json_differences(a[key], b[key], atol=atol, ignore=ignore, path=sub))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append((_key_path(path), f"{len(a)} items != {len(b)}: {_short(a)} != "
                                         f"{_short(b)}"))
            return out
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(json_differences(x, y, atol=atol, ignore=ignore, path=(*path, i)))
        return out
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    if numbers and not (isinstance(a, int) and isinstance(b, int)):
        if a != b and not abs(a - b) <= atol:
            out.append((_key_path(path), f"{a!r} != {b!r}"))
        return out
    if a != b or type(a) is not type(b):
        out.append((_key_path(path), f"{_short(a)} != {_short(b)}"))
    return out


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's document.

    Raises
    ------
    ValueError
        If the file is not valid JSON (the message names it).
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: not valid JSON ({exc})") from None


# ---------------------------------------------------------------------- trees
def is_trx_directory(path: str | os.PathLike) -> bool:
    """A folder holding a TRX (its ``header.json``)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "header.json"))


def file_kind(path: str | os.PathLike) -> str:
    """How a file of an output tree is compared.

    ``tractogram`` (a TRX zip or folder, TRK, TCK, VTK...), ``json``, ``image``
    (NIfTI) or ``file`` (bytes).

    >>> file_kind("a/sub-01_tractogram.trk.gz"), file_kind("x.json"), file_kind("t1.nii.gz")
    ('tractogram', 'json', 'image')
    """
    name = os.fspath(path).lower()
    if is_trx_directory(path) or compound_suffix(name) in SUFFIXES:
        return "tractogram"
    if name.endswith(".json"):
        return "json"
    if name.endswith((".nii", ".nii.gz")):
        return "image"
    return "file"


def tree_files(root: str | os.PathLike, *, exclude: tuple[str | os.PathLike, ...] = ()
               ) -> dict[str, Path]:
    """``relative POSIX path -> path`` of every output of a folder, sorted.

    A TRX folder is one entry. Hidden files and folders (names starting with
    ``.``: temporary files) and trx-nipype work folders (holding
    :data:`WORK_DIR_MARKER`) are left out, and so are the paths in ``exclude``.
    """
    root = Path(root)
    skip = {os.path.abspath(p) for p in exclude}
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if WORK_DIR_MARKER in filenames:
            dirnames[:] = []
            continue
        keep = []
        for d in sorted(dirnames):
            if d.startswith(".") or os.path.abspath(here / d) in skip:
                continue
            if is_trx_directory(here / d):
                out[(here / d).relative_to(root).as_posix()] = here / d
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            if name.startswith(".") or os.path.abspath(here / name) in skip:
                continue
            out[(here / name).relative_to(root).as_posix()] = here / name
    return dict(sorted(out.items()))


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_different_line(a: Path, b: Path) -> str:
    try:
        with open(a, encoding="utf-8") as fa, open(b, encoding="utf-8") as fb:
            for number, (x, y) in enumerate(zip(fa, fb, strict=False), start=1):
                if x != y:
                    return f"; first at line {number}{_around(x.rstrip(), y.rstrip())}"
    except (UnicodeDecodeError, OSError):
        return ""
    return ""


def _around(x: str, y: str, width: int = 60) -> str:
    """Two different lines as a message shows them: whole when short, else the part of each
    around their first different character (a line cut at 80 would hide it).

    >>> _around("a" * 100 + "b", "a" * 100 + "c")
    ', character 101: "...aaaaaaaaaaaaaaaaaaaab" != "...aaaaaaaaaaaaaaaaaaaac"'
    """
    if len(_short(x)) < 80 and len(_short(y)) < 80:
        return f": {_short(x)} != {_short(y)}"
    pairs = enumerate(zip(x, y, strict=False))
    first = next((k for k, (p, q) in pairs if p != q), min(len(x), len(y)))
    start = max(0, first - width // 3)

    def cut(line: str) -> str:
        text = json.dumps(line[start:start + width])
        return (f'"...{text[1:]}' if start else text)[:-1] + \
            ('..."' if start + width < len(line) else '"')

    return f", character {first + 1}: {cut(x)} != {cut(y)}"


def compare_images(a: str | os.PathLike, b: str | os.PathLike, *, atol: float = 0.0
                   ) -> list[tuple[str, str]]:
    """``(part, message)`` differences of two NIfTI images: shape, affine, dtype, voxels."""
    import nibabel as nib

    ia, ib = nib.load(os.fspath(a)), nib.load(os.fspath(b))
    out: list[tuple[str, str]] = []
    if ia.shape != ib.shape:
        return [("shape", f"{list(ia.shape)} != {list(ib.shape)}")]
    if not np.allclose(ia.affine, ib.affine, rtol=0, atol=max(atol, 0.0)):
        out.append(("affine", f"{np.round(ia.affine, 6).tolist()} != "
                              f"{np.round(ib.affine, 6).tolist()}"))
    if ia.get_data_dtype() != ib.get_data_dtype():
        out.append(("dtype", f"{ia.get_data_dtype()} != {ib.get_data_dtype()}"))
    va = np.asanyarray(ia.dataobj).reshape(-1, 1)
    vb = np.asanyarray(ib.dataobj).reshape(-1, 1)
    diff = _abs_diff(_values(va), _values(vb))
    if diff.size and float(diff.max()) > atol:
        at = np.unravel_index(int(np.argmax(diff)), ia.shape)
        out.append(("data", f"largest difference {_num(float(diff.max()))} at voxel "
                            f"{[int(i) for i in at]} > atol {atol:g}; "
                            f"{int((diff > atol).sum())} voxels differ"))
    return out


def compare_files(a: Path, b: Path, rel: str, *, atol: float, data_atol: float,
                  check_dtypes: bool = True, reference: Any = None,
                  chunk_vertices: int = COMPARE_CHUNK_VERTICES) -> tuple[list[Difference],
                                                                          list[str]]:
    """The differences (and notes) of one file present in both trees, named ``rel``."""
    kind_a, kind_b = file_kind(a), file_kind(b)
    if kind_a != kind_b:
        return [Difference("file", f"a {kind_a} in A, a {kind_b} in B", rel)], []
    if kind_a == "tractogram":
        try:
            result = compare_tractograms(a, b, atol=atol, data_atol=data_atol,
                                         check_dtypes=check_dtypes, reference=reference,
                                         chunk_vertices=chunk_vertices)
        except ImportError as exc:  # .vtk without fury: bytes only
            log.info("%s: compared by bytes (%s)", rel, exc)
            kind_a = "file"
        else:
            return ([Difference(d.what, d.message, rel, d.details) for d in result.differences],
                    [f"{rel}: {n}" for n in result.notes])
    if kind_a == "json":
        found = json_differences(read_json(a), read_json(b), atol=data_atol)
        return [Difference(key, message, rel) for key, message in found], []
    if kind_a == "image":
        return [Difference(part, message, rel)
                for part, message in compare_images(a, b, atol=data_atol)], []
    if a.stat().st_size != b.stat().st_size or file_sha256(a) != file_sha256(b):
        return [Difference("bytes", f"{a.stat().st_size} bytes != {b.stat().st_size}"
                           + _first_different_line(a, b)
                           if a.stat().st_size != b.stat().st_size else
                           "same size, other bytes" + _first_different_line(a, b), rel)], []
    return [], []


def pair_files(result: Comparison, fa: Mapping[str, Any], fb: Mapping[str, Any],
               each: Callable[[str], tuple[list[Difference], list[str]]], *, missing: str,
               extra: str, progress: Callable[[str], None] | None = None) -> Comparison:
    """Fill ``result`` from two sets of files keyed by relative path.

    A file only in ``fa`` is a difference saying ``missing``, one only in
    ``fb`` says ``extra``; ``each(rel)`` gives the differences and notes of a
    file in both. ``result.files`` becomes the number of files in either.
    """
    names = sorted(set(fa) | set(fb))
    result.files = len(names)
    for rel in names:
        if rel not in fb:
            result.differences.append(Difference("file", missing, rel))
        elif rel not in fa:
            result.differences.append(Difference("file", extra, rel))
        else:
            if progress is not None:
                progress(rel)
            diffs, notes = each(rel)
            result.differences.extend(diffs)
            result.notes.extend(notes)
    return result


def outputs_of(path: str | os.PathLike, *, exclude: tuple[str | os.PathLike, ...] = ()
               ) -> dict[str, Path]:
    """The outputs of a folder (:func:`tree_files`), or ``{name: path}`` of one tractogram."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{os.fspath(path)}: no such file or directory")
    if root.is_dir() and file_kind(root) != "tractogram":
        return tree_files(root, exclude=exclude)
    return {root.name: root}


def compare_trees(a: str | os.PathLike, b: str | os.PathLike, *, atol: float = 0.0,
                  data_atol: float | None = None, check_dtypes: bool = True,
                  reference: Any = None, chunk_vertices: int = COMPARE_CHUNK_VERTICES,
                  progress: Callable[[str], None] | None = None) -> Comparison:
    """Compare two output folders file by file (see the module docstring).

    Parameters
    ----------
    a, b : str or os.PathLike
        The folders.
    atol, data_atol, check_dtypes, chunk_vertices
        As for :func:`compare_trx`.
    reference : optional
        The space of tractograms without one (TCK, VTK, DPY) in both trees.
    progress : callable, optional
        Called with each file's relative path before it is compared.

    Returns
    -------
    Comparison
        ``files`` is the number of files in either tree.
    """
    data_tol = check_tolerances(atol, data_atol)
    for root in (a, b):
        if not os.path.isdir(root):
            raise FileNotFoundError(f"{os.fspath(root)}: no such folder")
    fa, fb = tree_files(a), tree_files(b)
    result = Comparison(os.fspath(a), os.fspath(b), float(atol), data_tol)

    def each(rel: str) -> tuple[list[Difference], list[str]]:
        return compare_files(fa[rel], fb[rel], rel, atol=float(atol), data_atol=data_tol,
                             check_dtypes=check_dtypes, reference=reference,
                             chunk_vertices=chunk_vertices)

    pair_files(result, fa, fb, each, missing="missing in B (only in A)",
               extra="extra in B (not in A)", progress=progress)
    return result


def compare(a: str | os.PathLike, b: str | os.PathLike, *, atol: float = 0.0,
            data_atol: float | None = None, check_dtypes: bool = True, reference: Any = None,
            chunk_vertices: int = COMPARE_CHUNK_VERTICES,
            progress: Callable[[str], None] | None = None) -> Comparison:
    """Compare two tractograms (any readable format) or two output folders, by content.

    Two folders that are not TRX folders are compared as trees
    (:func:`compare_trees`); anything else as tractograms
    (:func:`compare_tractograms`).

    Raises
    ------
    FileNotFoundError
        If ``a`` or ``b`` does not exist.
    ValueError
        If one is an output folder and the other a tractogram, or a file cannot
        be read (:class:`~trx_nipype.core.TrxFormatError` names the file).
    """
    for path in (a, b):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{os.fspath(path)}: no such file or directory")
    trees = [os.path.isdir(p) and not is_trx_directory(p) for p in (a, b)]
    if all(trees):
        return compare_trees(a, b, atol=atol, data_atol=data_atol, check_dtypes=check_dtypes,
                             reference=reference, chunk_vertices=chunk_vertices,
                             progress=progress)
    if any(trees):
        folder, other = (a, b) if trees[0] else (b, a)
        raise ValueError(f"{os.fspath(folder)} is a folder of files and {os.fspath(other)} "
                         f"a single file: compare two tractograms or two folders")
    return compare_tractograms(a, b, atol=atol, data_atol=data_atol, check_dtypes=check_dtypes,
                               reference=reference, chunk_vertices=chunk_vertices)
