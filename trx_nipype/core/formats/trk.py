"""TrackVis ``.trk`` (and ``.trk.gz``), read and written in vectorised chunks.

The layout (version 2, nibabel's ``header_2_dtype``; all fields in one byte
order, given away by ``hdr_size`` reading 1000)::

    offset size  field
         0    6  id_string            b"TRACK\\0"
         6    6  dim                  int16[3]   grid dimensions
        12   12  voxel_size           float32[3] mm
        24   12  origin               float32[3] (unused, 0)
        36    2  n_scalars            int16      values per point after x, y, z
        38  200  scalar_name          char[10][20]  "name" or "name\\0<ncols>"
       238    2  n_properties         int16      values per streamline
       240  200  property_name        char[10][20]
       440   64  vox_to_ras           float32[4][4]  voxel (centre) -> RAS+ mm
       504  444  reserved
       948    4  voxel_order          char[4]    e.g. b"RAS", b"LPS"
       952    4  pad2
       956   24  image_orientation_patient float32[6]
       980    2  pad1
       982    6  invert_x/y/z, swap_xy/yz/zx  one byte each
       988    4  n_count              int32      streamlines (0: unknown, read to EOF)
       992    4  version              int32      2 (1: no vox_to_ras)
       996    4  hdr_size             int32      1000
      1000       records, one per streamline:
                   int32   n_points
                   float32 [n_points][3 + n_scalars]   x, y, z in voxmm, scalars
                   float32 [n_properties]

Coordinates are in *voxmm*: voxel coordinates with the origin at the voxel
**corner**, times the voxel size, along the axes of ``voxel_order``. The affine
from voxmm to RAS+ mm is :func:`voxmm_to_rasmm` (nibabel's
``get_affine_trackvis_to_rasmm``, in float64).

Record boundaries are found without a per-streamline loop: every int32 word
that could be a point count is a candidate record start, each candidate points
to where its record would end, and the chain from the first word is followed
with pointer doubling (``log2(streamlines)`` vectorised jumps). Only true
record starts are on that chain, so data words that happen to look like counts
do not matter.

Groups travel as one per-streamline property and a JSON sidecar, this
project's convention: see :mod:`.trk_groups`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from nibabel.streamlines.trk import MAX_NB_NAMED_SCALARS_PER_POINT, header_2_dtype

from ..errors import DataLossWarning, HeaderWarning, NamingWarning, TrxFormatError
from ..header import axcodes, usable_affine
from ..reading import IN_FLIGHT, in_background
from ..space import Space, transform_points
from . import (
    FIRST_READ,
    Block,
    ReadBuffer,
    Scratch,
    atomic_output,
    format_names,
    open_input,
    without_empty,
)
from .trk_groups import (
    GROUP_PROPERTY,
    TOKEN_TAG,
    GroupCoder,
    groups_sidecar_for,
    groups_sidecar_path,
    write_groups_sidecar,
)

log = logging.getLogger(__name__)

MAGIC = b"TRACK"
HEADER_SIZE = 1000
MAX_NAMES = MAX_NB_NAMED_SCALARS_PER_POINT  # 10, as many properties
NAME_LEN = 20
#: bytes read per chunk (whole records are carried over to the next chunk)
CHUNK_BYTES = 16 * 1024 * 1024

#: nibabel's names of the header's fields -> TrackVis's (the format's documentation's)
_TRACKVIS_NAMES = {"magic_number": "id_string", "dimensions": "dim", "voxel_sizes": "voxel_size",
                   "nb_scalars_per_point": "n_scalars",
                   "nb_properties_per_streamline": "n_properties",
                   "voxel_to_rasmm": "vox_to_ras", "nb_streamlines": "n_count"}
#: the version-2 header record: nibabel's layout (``nibabel.streamlines.trk.header_2_dtype``:
#: the same offsets and types), little-endian (nibabel's is the machine's order, and a
#: big-endian file is read through ``newbyteorder``), its fields under TrackVis's names,
#: which the layout above and this module's messages use (nibabel's are its own)
HEADER_DTYPE = np.dtype({
    "names": [_TRACKVIS_NAMES.get(name, name) for name in header_2_dtype.names],
    "formats": [header_2_dtype.fields[name][0] for name in header_2_dtype.names],
    "offsets": [header_2_dtype.fields[name][1] for name in header_2_dtype.names],
    "itemsize": header_2_dtype.itemsize}).newbyteorder("<")
assert HEADER_DTYPE.itemsize == HEADER_SIZE
N_COUNT_OFFSET = HEADER_DTYPE.fields["n_count"][1]
RESERVED_OFFSET = HEADER_DTYPE.fields["reserved"][1]
#: the largest float32: RAS+ positions beyond it are infinite
F32_MAX = float(np.finfo(np.float32).max)
#: how far around its grid (in mm, a kilometre) a header's space must keep points finite
MARGIN_MM = 1e6


# ------------------------------------------------------------------- header
@dataclass
class TrkInfo:
    """What a TRK header says.

    Attributes
    ----------
    path : str
    byteorder : str
        ``"<"`` or ``">"``.
    nb_streamlines : int
        ``n_count`` (0 means "not recorded": read to the end of the file).
    nb_scalars, nb_properties : int
        Values per point after x, y, z, and per streamline.
    scalars, properties : dict of str to slice
        Named columns (unnamed leftovers are called ``"scalars"`` /
        ``"properties"``, as nibabel does).
    space : Space
    to_rasmm : ndarray, shape (4, 4)
        voxmm -> RAS+ mm (float64).
    """

    path: str
    byteorder: str
    nb_streamlines: int
    nb_scalars: int
    nb_properties: int
    scalars: dict[str, slice]
    properties: dict[str, slice]
    space: Space
    to_rasmm: np.ndarray
    record: np.ndarray = field(repr=False)


def _decode_name(raw: bytes, path: str, what: str) -> tuple[str, int]:
    """``b"name\\0<n>"`` -> (name, n); ``b""`` -> ("", 0) (nibabel's encoding)."""
    text = raw.decode("latin1")
    if not text:
        return "", 0
    parts = text.rstrip("\x00").split("\x00")
    if len(parts) == 1:
        return parts[0], 1
    if len(parts) == 2 and parts[1].isdigit():
        return parts[0], int(parts[1])
    raise TrxFormatError(path, "header", f"{what}: expected 'name' or 'name\\0<count>', "
                         f"found {raw!r}")


def _storable_name(name: str, count: int, taken: dict[str, slice], path: str, what: str) -> str:
    """``name``, or a variant that TRX can store and that no other column has (warned about).

    TRK names are free bytes; TRX data names cannot be empty, start with '.',
    hold '/' or '\\', or (one column) end in '.<digits>'; two columns of one
    name would overwrite each other.
    """
    safe = name.replace("/", "_").replace("\\", "_").lstrip(".") or what
    if count == 1 and safe.rsplit(".", 1)[-1].isdigit() and "." in safe:
        safe += "_"
    base, i = safe, 0
    while safe in taken:
        i += 1
        safe = f"{base}~{i}"
    if safe != name:
        warnings.warn(f"{path}: {what} {name!r} cannot be a TRX data name (or is taken); "
                      f"read as {safe!r}", category=NamingWarning, stacklevel=4)
    return safe


def _named_columns(names: np.ndarray, total: int, path: str, what: str,
                   rest: str) -> dict[str, slice]:
    out: dict[str, slice] = {}
    col = 0
    for raw in names:
        name, count = _decode_name(bytes(raw), path, what)
        if count == 0:
            continue
        out[_storable_name(name, count, out, path, what)] = slice(col, col + count)
        col += count
    if col > total:
        raise TrxFormatError(path, "header", f"{what}: names cover {col} values, but the "
                             f"header declares only {total}")
    if col < total:
        out[_storable_name(rest, total - col, out, path, what)] = slice(col, total)
    return out


def voxmm_to_rasmm(affine: np.ndarray, dimensions: Sequence[int], voxel_sizes: Sequence[float],
                   voxel_order: str) -> np.ndarray:
    """The affine from TRK voxmm (corner origin, ``voxel_order`` axes) to RAS+ mm.

    voxmm -> voxel (divide by the voxel sizes) -> centre origin (minus half a
    voxel) -> the axes of ``affine`` when ``voxel_order`` differs from them ->
    ``affine``.
    """
    from nibabel.orientations import axcodes2ornt, inv_ornt_aff, ornt_transform

    scale = np.diag([*(1.0 / np.asarray(voxel_sizes, dtype=np.float64)), 1.0])
    shift = np.eye(4)
    shift[:3, 3] = -0.5
    header_ornt = axcodes2ornt(voxel_order.upper())
    affine_ornt = axcodes2ornt("".join(axcodes(affine)))
    flip = inv_ornt_aff(ornt_transform(header_ornt, affine_ornt), dimensions)
    return np.asarray(affine, dtype=np.float64) @ flip @ shift @ scale


def _grid_overflows(to_rasmm: np.ndarray, dims: np.ndarray, sizes: np.ndarray) -> bool:
    """Whether a corner of the grid, widened by :data:`MARGIN_MM` on every side (in
    voxmm), lands beyond float32 in RAS+ mm.

    A usable space sends every point a tractogram can hold to finite RAS+ mm;
    what this misses (points far outside the grid) is caught as it is read.
    """
    extent = np.asarray(dims, np.float64) * sizes
    lo, hi = -MARGIN_MM, extent + MARGIN_MM
    corners = np.array([[x, y, z] for x in (lo, hi[0]) for y in (lo, hi[1])
                        for z in (lo, hi[2])])
    with np.errstate(all="ignore"):
        ras = transform_points(to_rasmm, corners)
    return not bool(np.all(np.abs(ras) <= F32_MAX))


def read_trk_header(path: str | os.PathLike, fh: IO[bytes] | None = None) -> TrkInfo:
    """Read and check a TRK header.

    Raises
    ------
    TrxFormatError
        Wrong magic, truncated header, ``hdr_size`` not 1000 in either byte
        order, unknown version, an affine without axis directions, or
        inconsistent names.
    """
    path = os.fspath(path)
    if fh is None:
        with open_input(path) as f:
            raw = f.read(HEADER_SIZE)
    else:
        raw = fh.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE:
        raise TrxFormatError(path, "header", f"expected a {HEADER_SIZE}-byte TRK header, "
                             f"found {len(raw)} bytes")
    if raw[:5] != MAGIC:
        raise TrxFormatError(path, "header", f"expected the magic string {MAGIC!r}, "
                             f"found {raw[:6]!r}")
    rec = np.frombuffer(raw, dtype=HEADER_DTYPE)
    order = "<"
    if int(rec["hdr_size"][0]) != HEADER_SIZE:
        rec = rec.view(HEADER_DTYPE.newbyteorder(">"))
        order = ">"
        if int(rec["hdr_size"][0]) != HEADER_SIZE:
            raise TrxFormatError(path, "header", f"expected hdr_size {HEADER_SIZE}, found "
                                 f"{int(rec.view(HEADER_DTYPE)['hdr_size'][0])}")
    rec = rec[0].copy()
    version = int(rec["version"])
    if version not in (1, 2, 3):
        raise TrxFormatError(path, "header", f"expected version 1 or 2, found {version}")
    affine = np.asarray(rec["vox_to_ras"], dtype=np.float64)
    if version == 1 or affine[3, 3] == 0:
        warnings.warn(f"{path}: the TRK header records no vox_to_ras; assuming the identity",
                      category=HeaderWarning, stacklevel=3)
        affine = np.eye(4)
    if not usable_affine(affine):
        raise TrxFormatError(path, "header", f"vox_to_ras: expected a finite, invertible "
                             f"affine with axis directions, found {affine.tolist()}")
    order_code = bytes(rec["voxel_order"]).rstrip(b"\x00").decode("latin1").upper()
    if not order_code:
        warnings.warn(f"{path}: the TRK header has no voxel_order; assuming 'LPS' "
                      "(TrackVis's default)", category=HeaderWarning, stacklevel=3)
        order_code = "LPS"
    dims = np.asarray(rec["dim"], dtype=np.int64)
    sizes = np.asarray(rec["voxel_size"], dtype=np.float64)
    if np.any(dims <= 0) or np.any(~np.isfinite(sizes)) or np.any(sizes <= 0):
        raise TrxFormatError(path, "header", f"expected positive dim and voxel_size, found "
                             f"{dims.tolist()} and {sizes.tolist()}")
    if np.any(sizes < np.finfo(np.float32).tiny):  # 1e-45: points / size overflow float32
        raise TrxFormatError(path, "header", f"voxel_size: expected sizes of at least "
                             f"{np.finfo(np.float32).tiny:g} mm, found {sizes.tolist()}")
    n_scalars, n_props = int(rec["n_scalars"]), int(rec["n_properties"])
    count = int(rec["n_count"])
    if n_scalars < 0 or n_props < 0 or count < 0:
        raise TrxFormatError(path, "header", f"expected non-negative n_scalars, n_properties "
                             f"and n_count, found {n_scalars}, {n_props}, {count}")
    try:
        to_rasmm = voxmm_to_rasmm(affine, dims, sizes, order_code)
    except ValueError as exc:
        raise TrxFormatError(path, "header", f"voxel_order: expected axis codes such as "
                             f"'RAS', found {order_code!r} ({exc})") from None
    if _grid_overflows(to_rasmm, dims, sizes):
        raise TrxFormatError(path, "header", f"vox_to_ras and voxel_size: expected a space "
                             f"that keeps its grid (and {MARGIN_MM:g} mm around it) within "
                             f"float32 range in RAS+ mm, found vox_to_ras {affine.tolist()} "
                             f"and voxel_size {sizes.tolist()}")
    return TrkInfo(
        path=path, byteorder=order, nb_streamlines=count, nb_scalars=n_scalars,
        nb_properties=n_props,
        scalars=_named_columns(rec["scalar_name"], n_scalars, path, "scalar_name", "scalars"),
        properties=_named_columns(rec["property_name"], n_props, path, "property_name",
                                  "properties"),
        space=Space(affine, dims, sizes, order_code), to_rasmm=to_rasmm, record=rec)


# ------------------------------------------------------------------ reading
def _chain(words: np.ndarray, rec: int, nprops: int) -> tuple[np.ndarray, int]:
    """Record starts of the complete records at the front of ``words``.

    ``words`` must begin at a record start. Returns the start word of each
    complete record, and the number of words they use (where the next,
    incomplete or malformed, record begins).
    """
    m = len(words)
    if m == 0:
        return np.zeros(0, dtype=np.int64), 0
    limit = (m - 1 - nprops) // rec
    if limit < 0:
        return np.zeros(0, dtype=np.int64), 0
    # int32 indices while they fit (a chunk is far below 2**31 words): half the temporaries
    idx = np.int32 if m + 1 < np.iinfo(np.int32).max else np.int64
    # 0 <= word <= limit in one comparison: a negative count is a huge unsigned one
    cand = np.flatnonzero(words.view(words.dtype.str.replace("i", "u")) <= limit).astype(idx)
    nxt = words[cand].astype(idx)  # <= limit, so count * rec + cand + 1 + nprops <= m
    nxt *= rec
    nxt += cand
    nxt += 1 + nprops
    fits = nxt <= m
    if not fits.all():
        cand, nxt = cand[fits], nxt[fits]
    del fits
    if len(cand) == 0 or cand[0] != 0:
        return np.zeros(0, dtype=np.int64), 0
    c = len(cand)
    j = np.searchsorted(cand, nxt).astype(idx)
    hit = j < c
    hit[hit] = cand[j[hit]] == nxt[hit]
    jump = np.empty(c + 1, dtype=idx)
    np.copyto(jump[:c], np.where(hit, j, c))  # node c: the chain left the candidates
    jump[c] = c
    del j, hit
    reach = np.zeros(1, dtype=idx)
    while reach[-1] != c:  # reach = the nodes 0 .. 2^k - 1 steps from node 0, in order
        reach = np.concatenate([reach, jump[reach]])
        jump = jump[jump]
    path = reach[reach != c]
    return cand[path].astype(np.int64), int(nxt[path[-1]])


def _bad_record(info: TrkInfo, words: np.ndarray, index: int, left_bytes: int) -> TrxFormatError:
    rec = 3 + info.nb_scalars
    if len(words) == 0:
        return TrxFormatError(info.path, f"streamline {index}",
                              f"truncated: expected a 4-byte point count, found {left_bytes} "
                              "byte(s)")
    n = int(words[0])
    if n < 0:
        return TrxFormatError(info.path, f"streamline {index}",
                              f"expected a non-negative point count, found {n}")
    need = 4 * (1 + n * rec + info.nb_properties)
    return TrxFormatError(info.path, f"streamline {index}",
                          f"truncated: {n} points need {need} bytes, found {left_bytes}")


def iter_trk_blocks(path: str | os.PathLike, *, chunk_bytes: int = CHUNK_BYTES,
                    groups: bool = True, sidecar: dict[str, Any] | None = None
                    ) -> Iterator[Block]:
    """Read a TRK file as :class:`Block` s of whole streamlines in RAS+ mm.

    Parameters
    ----------
    path : str or os.PathLike
        ``.trk`` or ``.trk.gz``.
    chunk_bytes : int
        Bytes read at a time (grown when one record is larger).
    groups : bool
        Decode the group-index property when a ``.groups.json`` sidecar is
        present (otherwise it stays a data-per-streamline entry).
    sidecar : dict, optional
        What :func:`groups_sidecar_for` returned, when the caller has read it
        already (it is then neither read nor warned about again).

    Yields
    ------
    Block
        Scalars as ``dpv`` and properties as ``dps`` (float32; one column
        gives a 1-D array).

    Raises
    ------
    TrxFormatError
        A malformed header, a truncated or malformed record, trailing bytes, or
        a streamline count different from the header's ``n_count``.
    """
    path = os.fspath(path)
    with open_input(path) as fh:
        info = read_trk_header(path, fh)
        if groups and sidecar is None:
            sidecar = groups_sidecar_for(info)
        elif not groups:
            sidecar = None
        rec, nprops = 3 + info.nb_scalars, info.nb_properties
        idt, fdt = np.dtype(info.byteorder + "i4"), np.dtype(info.byteorder + "f4")
        full = max(int(chunk_bytes) // 4 * 4, 4096)
        # one buffer, read into and reused (small files: a small first buffer, grown on
        # full reads); the records left incomplete at its end move to its front
        rb = ReadBuffer(fh, FIRST_READ, full)
        index = 0
        while True:
            rb.fill()
            words = np.frombuffer(rb.buf, dtype=idt, count=rb.filled // 4)
            if idt.byteorder == ">":
                words = words.astype(np.int32)
            starts, used = _chain(words, rec, nprops)
            if len(starts):
                floats = np.frombuffer(rb.buf, dtype=fdt, count=used)
                block = _block(info, floats, words, starts, used, sidecar, index)
                del floats, words
                index += len(starts)
                if info.nb_streamlines and index > info.nb_streamlines:  # refused early
                    whole = rb.eof and 4 * used == rb.filled
                    raise TrxFormatError(path, "header", f"n_count says "
                                         f"{info.nb_streamlines} streamlines, the file holds "
                                         f"{'' if whole else 'at least '}{index}")
                rb.consume(4 * used)
                yield block
                continue
            # no whole record at the front: its count says how many bytes it needs, and
            # the buffer grows to that only once the file is known to hold them
            if rb.filled >= 4 and int(words[0]) < 0:
                raise _bad_record(info, words, index, rb.filled)
            need = 4 * (1 + int(words[0]) * rec + nprops) if rb.filled >= 4 else 0
            if not rb.eof and need > rb.filled:
                first = words[:1].copy()
                del words
                have = rb.reserve(need)
                if have < need:
                    raise _bad_record(info, first, index, have)
                continue
            if rb.filled:
                raise _bad_record(info, words, index, rb.filled)
            break
    if info.nb_streamlines and info.nb_streamlines != index:
        raise TrxFormatError(path, "header", f"n_count says {info.nb_streamlines} streamlines, "
                             f"the file holds {index}")


def _block(info: TrkInfo, floats: np.ndarray, words: np.ndarray, starts: np.ndarray,
           used: int, sidecar: dict | None, first: int = 0) -> Block:
    """One Block from the complete records at ``starts`` (copies out of the read buffer).

    ``first`` is the index of the block's first streamline in the file (for messages).
    """
    rec, nprops = 3 + info.nb_scalars, info.nb_properties
    counts = words[starts].astype(np.int64)
    ends = starts + 1 + counts * rec + nprops
    keep = np.ones(used, dtype=bool)
    keep[starts] = False
    props = np.zeros((len(starts), nprops), dtype=np.float32)
    if nprops:
        pidx = (ends - nprops)[:, None] + np.arange(nprops)
        keep[pidx] = False
        props = floats[pidx].astype(np.float32)
    data = floats[keep].reshape(-1, rec)
    del keep
    try:
        with np.errstate(over="raise"):  # a finite point pushed past float32 by the header
            pos = transform_points(info.to_rasmm, data[:, :3], np.float32)
    except FloatingPointError:
        raise _overflow(info, data[:, :3], counts, first) from None
    dpv = {k: _column(data[:, 3:], s) for k, s in info.scalars.items()}
    dps = {k: _column(props, s) for k, s in info.properties.items()}
    groups: dict[str, np.ndarray] = {}
    if sidecar is not None:
        dps = {k: v for k, v in dps.items() if k != sidecar["property"]}
        codes = props[:, sidecar["column"]]
        for name, members in sidecar["members"].items():
            groups[name] = np.flatnonzero(np.isin(codes, members))
    return Block(counts, pos, dpv, dps, groups)


def _overflow(info: TrkInfo, voxmm: np.ndarray, counts: np.ndarray, first: int
              ) -> TrxFormatError:
    """The error for finite points that the header's space sends past float32."""
    with np.errstate(all="ignore"):
        ras = transform_points(info.to_rasmm, voxmm, np.float32)
    bad = np.flatnonzero(~np.isfinite(ras).all(axis=1) & np.isfinite(voxmm).all(axis=1))
    vertex = int(bad[0]) if len(bad) else 0
    streamline = first + int(np.searchsorted(np.cumsum(counts), vertex, side="right"))
    return TrxFormatError(info.path, "header", f"vox_to_ras and voxel_size: expected a space "
                          f"that keeps the points within float32 range, found streamline "
                          f"{streamline}'s point {voxmm[vertex].tolist()} (voxmm) sent to "
                          f"{ras[vertex].tolist()} by vox_to_ras {info.space.affine.tolist()} "
                          f"and voxel_size {info.space.voxel_sizes.tolist()}")


def _column(table: np.ndarray, cols: slice) -> np.ndarray:
    sub = table[:, cols]
    if sub.shape[1] == 1:
        return sub[:, 0].astype(np.float32)  # a contiguous copy
    return sub.astype(np.float32)


# ------------------------------------------------------------------ writing
def fit_names(keys: Sequence[str], ncols: dict[str, int], what: str, dest: str,
              reserved: int = 0) -> dict[str, bytes]:
    """Encoded TRK names (``name`` or ``name\\0<ncols>``, 20 bytes) for ``keys``.

    Names too long are shortened (and warned about); keys beyond the ten
    names a TRK header holds are left out (and warned about).
    """
    room = MAX_NAMES - reserved
    if len(keys) > room:
        warnings.warn(f"{dest}: TRK holds at most {room} {what} names; dropped "
                      f"{format_names(keys[room:])}", category=DataLossWarning, stacklevel=4)
        keys = keys[:room]
    out: dict[str, bytes] = {}
    used: set[str] = set()
    for key in keys:
        suffix = "" if ncols[key] <= 1 else "\x00" + str(ncols[key])
        fit = NAME_LEN - len(suffix)
        try:
            name = key.encode("latin1")
        except UnicodeEncodeError:
            name = key.encode("ascii", "replace")
        short = name[:fit].replace(b"\x00", b"_")
        i = 0
        while short.decode("latin1") in used:
            i += 1
            short = name[:fit - len(str(i)) - 1] + f"~{i}".encode()
        if short != name:
            warnings.warn(f"{dest}: {what} name {key!r} does not fit TRK's {NAME_LEN}-byte "
                          f"field; written as {short.decode('latin1')!r}",
                          category=NamingWarning, stacklevel=4)
        used.add(short.decode("latin1"))
        out[key] = short + suffix.encode("latin1")
    return out


def trk_header(space: Space, nb_streamlines: int, scalar_names: Sequence[bytes],
               n_scalars: int, property_names: Sequence[bytes], n_properties: int,
               dest: str = "output") -> np.ndarray:
    """A little-endian version-2 TRK header record for ``space``."""
    if np.any(space.dimensions > np.iinfo(np.int16).max):
        raise ValueError(f"{dest}: TRK stores dimensions as int16; "
                         f"{space.dimensions.tolist()} do not fit")
    hdr = np.zeros((), dtype=HEADER_DTYPE)
    hdr["id_string"] = MAGIC
    hdr["dim"] = space.dimensions
    hdr["voxel_size"] = space.voxel_sizes
    hdr["n_scalars"] = n_scalars
    hdr["scalar_name"][:len(scalar_names)] = list(scalar_names)
    hdr["n_properties"] = n_properties
    hdr["property_name"][:len(property_names)] = list(property_names)
    hdr["vox_to_ras"] = space.affine
    hdr["voxel_order"] = space.voxel_order.encode("latin1")
    hdr["n_count"] = nb_streamlines
    hdr["version"] = 2
    hdr["hdr_size"] = HEADER_SIZE
    return hdr


@dataclass
class TrkLayout:
    """Which TRX data go where in the TRK records."""

    dpv: dict[str, int]  # key -> ncols, in column order
    dps: dict[str, int]
    group_names: list[str]


def plan_layout(dpv: dict[str, int], dps: dict[str, int], group_names: Sequence[str],
                dest: str) -> tuple[TrkLayout, dict[str, bytes], dict[str, bytes]]:
    """Pick and name the scalars and properties a TRK file will hold (warning for the rest)."""
    reserve = 1 if group_names else 0
    if GROUP_PROPERTY in dps and group_names:
        warnings.warn(f"{dest}: data per streamline {GROUP_PROPERTY!r} clashes with the "
                      "group index property; dropped", category=DataLossWarning, stacklevel=3)
        dps = {k: v for k, v in dps.items() if k != GROUP_PROPERTY}
    snames = fit_names(sorted(dpv), dpv, "data_per_point (scalar)", dest)
    pnames = fit_names(sorted(dps), dps, "data_per_streamline (property)", dest, reserve)
    layout = TrkLayout({k: dpv[k] for k in snames}, {k: dps[k] for k in pnames},
                       sorted(group_names))
    if group_names:
        pnames = {**pnames, "\x00groups": GROUP_PROPERTY.encode()}
    return layout, snames, pnames


def write_trk(dest: str | os.PathLike, space: Space, blocks: Iterable[Block], *,
              dpv: dict[str, int] | None = None, dps: dict[str, int] | None = None,
              group_names: Sequence[str] = (), nb_streamlines: int = 0) -> Path:
    """Write blocks (RAS+ mm) to a TRK file (``.trk.gz``: gzipped), atomically.

    Parameters
    ----------
    dest : str or os.PathLike
    space : Space
        The header's space; positions are written as voxmm in it.
    blocks : iterable of Block
    dpv, dps : dict of str to int, optional
        Keys (and column counts) to write as scalars and properties; other keys
        of the blocks are ignored (the caller warns about them).
    group_names : sequence of str
        Groups to write as the :data:`GROUP_PROPERTY` index with a sidecar.
    nb_streamlines : int
        Header count when known in advance (else patched at the end).

    Empty streamlines are left out, with a warning (nibabel and dipy skip
    them on reading, misaligning their data).

    Returns
    -------
    pathlib.Path
    """
    dest_s = os.fspath(dest)
    layout, snames, pnames = plan_layout(dict(dpv or {}), dict(dps or {}), group_names, dest_s)
    n_scalars = sum(layout.dpv.values())
    n_props = sum(layout.dps.values()) + (1 if layout.group_names else 0)
    hdr = trk_header(space, nb_streamlines, list(snames.values()), n_scalars,
                     list(pnames.values()), n_props, dest_s)
    from_rasmm = np.linalg.inv(voxmm_to_rasmm(space.affine, space.dimensions,
                                              space.voxel_sizes, space.voxel_order))
    coder = GroupCoder(layout.group_names) if layout.group_names else None
    lossy: set[str] = set()
    total = empty = 0
    scratch = Scratch()

    def records() -> Iterator[memoryview]:
        nonlocal total, empty
        for k, block in enumerate(blocks):
            block, skipped = without_empty(block)
            empty += skipped
            extra = [coder.encode(len(block), block.groups)] if coder else []
            total += len(block)
            yield _records(block, layout, from_rasmm, extra, lossy, scratch, k % IN_FLIGHT)

    with atomic_output(dest) as fh:
        fh.write(hdr.tobytes())
        # the records are built in a thread (the blocks read, the affine applied) while
        # this one writes them: numpy and the writes release the GIL
        with closing(in_background(records(), depth=IN_FLIGHT - 2, name="trx-trk")) as built:
            for chunk in built:
                fh.write(chunk)
        if total != nb_streamlines:
            fh.seek(N_COUNT_OFFSET)
            fh.write(np.int32(total).astype("<i4").tobytes())
        doc = coder.sidecar() if coder is not None else None
        if doc is not None:  # tie the sidecar to this very file
            fh.seek(RESERVED_OFFSET)
            fh.write(TOKEN_TAG + doc["trk_token"].encode("ascii"))
    if empty:
        warnings.warn(f"{dest_s}: nibabel and dipy skip empty streamlines in TRK files; "
                      f"{empty} left out", category=DataLossWarning, stacklevel=2)
    if lossy:
        warnings.warn(f"{dest_s}: TRK stores data as float32; values of "
                      f"{format_names(sorted(lossy))} changed in the conversion",
                      category=DataLossWarning, stacklevel=2)
    if doc is not None:
        write_groups_sidecar(dest, doc)
    elif groups_sidecar_path(dest).exists():
        os.unlink(groups_sidecar_path(dest))  # a stale sidecar would mislabel this file
    log.info("wrote %s: %d streamlines", dest_s, total)
    return Path(dest)


def _as_f4(arr: np.ndarray, key: str, lossy: set[str], out: np.ndarray | None = None
           ) -> np.ndarray:
    """``arr`` as float32 rows (into ``out`` when given), noting in ``lossy`` a changed value."""
    arr = np.asarray(arr)
    arr2 = arr.reshape(len(arr), -1)
    if out is None:
        out = arr2.astype("<f4")
    else:
        out[...] = arr2
    if arr.dtype != np.float32 and not np.array_equal(out.astype(arr.dtype), arr2,
                                                      equal_nan=arr.dtype.kind == "f"):
        lossy.add(key)
    return out


def _records(block: Block, layout: TrkLayout, from_rasmm: np.ndarray,
             extra: list[np.ndarray], lossy: set[str], scratch: Scratch | None = None,
             slot: int = 0) -> memoryview:
    """The bytes of a block's records: count, points with scalars, properties.

    The points and their scalars are built in one (V, rec) float32 table (the
    affine written straight into its first three columns), then scattered once
    into the record buffer. With ``scratch``, the table, the mask and the
    record buffer (one per ``slot``) come from it: the bytes stay valid until
    the next call with the same ``slot``.
    """
    scratch = scratch if scratch is not None else Scratch()
    n = len(block)
    lengths = np.asarray(block.lengths, dtype=np.int64)
    rec = 3 + sum(layout.dpv.values())
    nprops = sum(layout.dps.values()) + len(extra)
    sizes = lengths * rec
    sizes += 1 + nprops
    ends = np.cumsum(sizes)
    starts = ends - sizes
    del sizes
    out = scratch.array(f"records{slot}", (int(ends[-1]) if n else 0,), "<f4")
    if not n:
        return memoryview(out).cast("B")
    table = scratch.array("table", (int(lengths.sum()), rec), "<f4")
    transform_points(from_rasmm, block.positions, out=table)
    col = 3
    for k, width in layout.dpv.items():
        _as_f4(block.dpv[k], k, lossy, table[:, col:col + width])
        col += width
    keep = scratch.array("keep", (len(out),), bool)
    keep.fill(True)
    keep[starts] = False
    if nprops:
        pidx = (ends - nprops)[:, None] + np.arange(nprops)
        keep[pidx] = False
        props = np.empty((n, nprops), dtype="<f4")
        col = 0
        for k, width in layout.dps.items():
            _as_f4(block.dps[k], k, lossy, props[:, col:col + width])
            col += width
        for e in extra:
            props[:, col] = e
            col += 1
        out[pidx] = props
    out[keep] = table.reshape(-1)
    out.view("<i4")[starts] = lengths
    return memoryview(out).cast("B")
