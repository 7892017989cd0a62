"""Correctness of benchmarked outputs, checked against the generated ground truth.

Every output is read with a reader that is *not* this project's: TRX with
trx-python's loader, TRK and TCK by parsing their records directly (vectorised,
in chunks). Each output is compared with the source streamlines it should
contain (the raw ``dir.trx`` members written by the generator): counts,
lengths, every coordinate (exactly for TRX-to-TRX operations; within 1e-3 mm
where a conversion goes through TrackVis voxmm coordinates), data per vertex
and per streamline where the format carries them, and group membership. A
CRC32 digest of positions and lengths is recorded so that the two sides'
outputs can be compared for byte equality where they should agree.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

CHECK_CHUNK = 40_000  # streamlines per comparison chunk
CONVERT_ATOL = 1e-3  # mm
DPG_GROUP, DPG_KEY, DPG_VALUE = "CST_L", "volume", 4521.5  # as generate.py writes it


@dataclass
class Truth:
    """The generated data set, read raw from ``dir.trx`` (no TRX library involved)."""

    positions: np.ndarray
    offsets: np.ndarray
    fa: np.ndarray
    weight: np.ndarray
    groups: dict[str, np.ndarray]

    @classmethod
    def read(cls, root: Path) -> Truth:
        d = root / "dir.trx"
        hdr = json.loads((d / "header.json").read_text(encoding="utf-8"))
        v = hdr["NB_VERTICES"]
        groups = {p.name.split(".")[0]: np.fromfile(p, dtype="<u4").astype(np.int64)
                  for p in sorted((d / "groups").iterdir())}
        return cls(positions=np.memmap(d / "positions.3.float32", "<f4", "r", shape=(v, 3)),
                   offsets=np.fromfile(d / "offsets.uint64", "<u8").astype(np.int64),
                   fa=np.memmap(d / "dpv/fa.float32", "<f4", "r"),
                   weight=np.fromfile(d / "dps/weight.float32", "<f4"), groups=groups)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1


@dataclass
class Expected:
    """What an output should hold: source rows in output order, and its extras."""

    rows: np.ndarray
    groups: dict[str, np.ndarray] | None  # output indices per group; None: not carried
    dps: bool = True
    dpv: bool = True
    atol: float = 0.0
    dpg: bool = True  # dpg/CST_L/volume kept (not asked of a merge of two files)


@dataclass
class CheckResult:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    nb_streamlines: int = 0
    nb_vertices: int = 0
    digest: str = ""
    max_error_mm: float = 0.0
    extras: list[str] = field(default_factory=list)

    def fail(self, msg: str) -> None:
        self.ok = False
        self.problems.append(msg)


def ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` (vectorised)."""
    total = int(lens.sum())
    shift = np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return np.arange(total, dtype=np.int64) + shift


def _truth_rows(truth: Truth, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | slice]:
    """(lengths, vertex index or slice) of source ``rows``."""
    lens = truth.lengths[rows]
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(rows) == 1):
        return lens, slice(int(truth.offsets[rows[0]]), int(truth.offsets[rows[-1] + 1]))
    return lens, ranges(truth.offsets[rows], lens)


def _close(got: np.ndarray, exp: np.ndarray, atol: float) -> tuple[bool, float]:
    if got.shape != exp.shape:
        return False, float("inf")
    if atol == 0:
        return bool(np.array_equal(got, exp)), 0.0
    err = float(np.abs(got.astype(np.float64) - exp).max()) if got.size else 0.0
    return err <= atol, err


def expected_for(op: str, truth: Truth, select_rows: np.ndarray, group: str) -> Expected:
    """The expected content of the output of ``op``."""
    n = len(truth)

    def regroup(rows: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for name, members in truth.groups.items():
            mask = np.zeros(n, dtype=bool)
            mask[members] = True
            idx = np.flatnonzero(mask[rows])
            if idx.size:
                out[name] = idx
        return out

    op = op.split("@")[0]  # the same expectation on trx-python's file
    if op in ("save_stored", "save_deflate", "convert_dir_trx"):
        return Expected(np.arange(n), dict(truth.groups))
    if op == "select_save":
        return Expected(select_rows, regroup(select_rows))
    if op == "group_save":
        rows = truth.groups[group]
        return Expected(rows, regroup(rows))
    if op == "concat_save":
        rows = np.concatenate([np.arange(n), np.arange(n)])
        return Expected(rows, {k: np.concatenate([g, g + n]) for k, g in truth.groups.items()},
                        dpg=False)
    if op == "convert_trk_trx":
        return Expected(np.arange(n), None, atol=CONVERT_ATOL)
    if op == "convert_tck_trx":
        return Expected(np.arange(n), None, dps=False, dpv=False, atol=CONVERT_ATOL)
    if op in ("convert_trx_trk", "convert_trx_tck"):
        return Expected(np.arange(n), None, atol=CONVERT_ATOL)
    raise KeyError(op)


def check_output(path: Path, exp: Expected, truth: Truth) -> CheckResult:
    """Compare one output file with what it should hold."""
    res = CheckResult()
    if not path.exists():
        res.fail(f"{path.name}: missing")
        return res
    try:
        if path.suffix == ".trx":
            _check_trx(path, exp, truth, res)
        elif path.suffix == ".trk":
            _check_trk(path, exp, truth, res)
        elif path.suffix == ".tck":
            _check_tck(path, exp, truth, res)
    except Exception as exc:  # noqa: BLE001 - any failure to read is a failed check
        res.fail(f"{path.name}: unreadable: {type(exc).__name__}: {exc}")
    return res


def _stream_compare(res: CheckResult, exp: Expected, truth: Truth, out_lengths: np.ndarray,
                    get_positions: Any, get_fa: Any = None, weight: np.ndarray | None = None
                    ) -> None:
    """Chunked comparison of positions (and fa, weight) with the truth."""
    want = truth.lengths[exp.rows]
    res.nb_streamlines, res.nb_vertices = len(out_lengths), int(out_lengths.sum())
    if len(out_lengths) != len(exp.rows):
        res.fail(f"{len(out_lengths)} streamlines, expected {len(exp.rows)}")
        return
    if not np.array_equal(out_lengths, want):
        bad = int(np.flatnonzero(out_lengths != want)[0])
        res.fail(f"streamline {bad} has {out_lengths[bad]} points, expected {want[bad]}")
        return
    crc = zlib.crc32(np.ascontiguousarray(out_lengths, dtype="<i8").tobytes())
    out_off = np.concatenate([[0], np.cumsum(out_lengths)])
    for a in range(0, len(exp.rows), CHECK_CHUNK):
        b = min(a + CHECK_CHUNK, len(exp.rows))
        _, vidx = _truth_rows(truth, exp.rows[a:b])
        v0, v1 = int(out_off[a]), int(out_off[b])
        got = np.ascontiguousarray(get_positions(v0, v1), dtype="<f4")
        crc = zlib.crc32(got.tobytes(), crc)
        ok, err = _close(got, truth.positions[vidx], exp.atol)
        res.max_error_mm = max(res.max_error_mm, err)
        if not ok:
            res.fail(f"positions differ in streamlines {a}..{b} (max error {err:.3g} mm)")
            return
        if get_fa is not None:
            ok, err = _close(np.asarray(get_fa(v0, v1)).ravel(), truth.fa[vidx], 1e-6)
            if not ok:
                res.fail(f"dpv fa differs in streamlines {a}..{b}")
                return
    if weight is not None:
        ok, _ = _close(np.asarray(weight).ravel(), truth.weight[exp.rows], 1e-6)
        if not ok:
            res.fail("dps weight differs")
    res.digest = f"{crc:08x}"


def _check_trx(path: Path, exp: Expected, truth: Truth, res: CheckResult) -> None:
    import trx.trx_file_memmap as tmm

    trx = tmm.load(str(path))
    try:
        seq = trx.streamlines
        pos = seq._data
        lengths = np.asarray(seq._lengths, dtype=np.int64)
        dpv, dps = trx.data_per_vertex, trx.data_per_streamline
        for key, present, table in (("fa", exp.dpv, dpv), ("weight", exp.dps, dps)):
            if present and key not in table:
                res.fail(f"missing {key} ({'dpv' if table is dpv else 'dps'})")
        res.extras = sorted({*(f"dpv:{k}" for k in dpv), *(f"dps:{k}" for k in dps),
                             *(f"group:{k}" for k in trx.groups)})
        _stream_compare(res, exp, truth, lengths, lambda a, b: pos[a:b],
                        (lambda a, b: dpv["fa"]._data[a:b]) if exp.dpv and "fa" in dpv
                        else None,
                        dps["weight"] if exp.dps and "weight" in dps else None)
        if exp.groups is not None:
            got = {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in trx.groups.items()}
            if sorted(got) != sorted(exp.groups):
                res.fail(f"groups {sorted(got)}, expected {sorted(exp.groups)}")
            for k, want in exp.groups.items():
                if k in got and not np.array_equal(got[k], np.sort(want)):
                    res.fail(f"group {k}: {len(got[k])} members, expected {len(want)} "
                             "(or different members)")
            if exp.dpg and DPG_GROUP in exp.groups:
                vol = trx.data_per_group.get(DPG_GROUP, {}).get(DPG_KEY)
                if vol is None or not np.allclose(np.asarray(vol, dtype=float).ravel(),
                                                  DPG_VALUE):
                    res.fail(f"dpg/{DPG_GROUP}/{DPG_KEY}: {vol!r}, expected [{DPG_VALUE}]")
    finally:
        trx.close()


def _check_trk(path: Path, exp: Expected, truth: Truth, res: CheckResult) -> None:
    from nibabel.streamlines.trk import (
        TrkFile,
        decode_value_from_name,
        get_affine_trackvis_to_rasmm,
    )

    with open(path, "rb") as fh:
        hdr = TrkFile._read_header(fh)
    ns, nprop = int(hdr["nb_scalars_per_point"]), int(hdr["nb_properties_per_streamline"])
    scalars = [decode_value_from_name(s)[0] for s in hdr["scalar_name"][:ns]] if ns else []
    props = [decode_value_from_name(s)[0] for s in hdr["property_name"][:nprop]] if nprop else []
    res.extras = [f"scalar:{s}" for s in scalars] + [f"property:{p}" for p in props]
    raw = np.memmap(path, dtype="<f4", mode="r", offset=1000)
    lens = truth.lengths[exp.rows]
    rec = 1 + lens * (3 + ns) + nprop
    starts = np.cumsum(rec) - rec
    if int(hdr["nb_streamlines"]) != len(exp.rows) or int(rec.sum()) != len(raw):
        res.fail(f"header says {int(hdr['nb_streamlines'])} streamlines and the data holds "
                 f"{len(raw)} values; expected {len(exp.rows)} and {int(rec.sum())}")
        return
    counts = raw.view("<i4")[starts]
    aff = get_affine_trackvis_to_rasmm(hdr).astype(np.float64)
    out_off = np.concatenate([[0], np.cumsum(lens)])
    # vertex v of the output -> first value of its record slot
    def slot(a: int, b: int) -> np.ndarray:
        sid = np.searchsorted(out_off, np.arange(a, b), side="right") - 1
        return starts[sid] + 1 + (np.arange(a, b) - out_off[sid]) * (3 + ns)

    def positions(a: int, b: int) -> np.ndarray:
        s = slot(a, b)
        vox = np.stack([raw[s], raw[s + 1], raw[s + 2]], axis=1).astype(np.float64)
        return (vox @ aff[:3, :3].T + aff[:3, 3]).astype(np.float32)

    fa = (lambda a, b: raw[slot(a, b) + 3 + scalars.index("fa")]) if "fa" in scalars else None
    weight = raw[starts + 1 + lens * (3 + ns) + props.index("weight")] \
        if "weight" in props else None
    _stream_compare(res, exp, truth, counts.astype(np.int64), positions, fa, weight)


def _check_tck(path: Path, exp: Expected, truth: Truth, res: CheckResult) -> None:
    from nibabel.streamlines.tck import TckFile

    with open(path, "rb") as fh:
        hdr = TckFile._read_header(fh)
    rows = np.memmap(path, dtype="<f4", mode="r", offset=hdr["_offset_data"])
    rows = rows[: len(rows) // 3 * 3].reshape(-1, 3)
    lens = truth.lengths[exp.rows]
    n, v = len(lens), int(lens.sum())
    if int(hdr["count"]) != n or len(rows) != v + n + 1:
        res.fail(f"count {hdr['count']}, {len(rows)} rows; expected {n} and {v + n + 1}")
        return
    delim = np.cumsum(lens) + np.arange(n)
    if not np.all(np.isnan(rows[delim, 0])) or not np.isinf(rows[-1, 0]):
        res.fail("streamline delimiters are not where the lengths put them")
        return
    out_off = np.concatenate([[0], np.cumsum(lens)])

    def positions(a: int, b: int) -> np.ndarray:
        idx = np.arange(a, b)
        return rows[idx + np.searchsorted(out_off, idx, side="right") - 1]

    _stream_compare(res, exp, truth, lens.copy(), positions)
