"""Tractograms built in memory: sources from arrays, nibabel and dipy objects, and back.

The ``source_from_*`` functions check arrays (as :func:`~trx_nipype.core.load`
checks a file) and wrap them as a :class:`~trx_nipype.core.source.Source`;
:class:`~trx_nipype.core.trxfile.TrxFile`'s constructors (``from_arrays``,
``from_tractogram``, ``from_sft``) and ``to_sft`` / ``to_tractogram`` are
these functions. They take a ``TrxFile`` as any object with its attributes:
this module sits below :mod:`.trxfile`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .arrays import LazyArrays
from .dtypes import dtype_name
from .errors import TrxFormatError
from .header import check_header
from .source import Source

_WHERE = "<arrays>"


def _as_le(arr: Any, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    dtype_name(arr.dtype)  # raises TypeError for dtypes TRX cannot hold
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if arr.ndim not in (1, 2):
        raise TrxFormatError(_WHERE, what, f"expected a 1-D or 2-D array, found shape {arr.shape}")
    view = arr.view()  # shares the caller's memory (no copy) but cannot write to it
    view.flags.writeable = False
    return view


def source_from_arrays(positions: Any, offsets: Any = None, *, lengths: Any = None,
                       affine: Any = None, dimensions: Sequence[int] | None = None,
                       dps: Mapping[str, Any] | None = None, dpv: Mapping[str, Any] | None = None,
                       groups: Mapping[str, Any] | None = None,
                       dpg: Mapping[str, Mapping[str, Any]] | None = None,
                       header: Mapping[str, Any] | None = None) -> Source:
    """Check arrays as :func:`~trx_nipype.core.load` checks a file; wrap them as a Source.

    ``offsets`` may have N or N+1 entries: N+1 when its last entry equals the
    number of vertices. With trailing zero-length streamlines N entries are
    ambiguous (the last one also equals the vertex count), so give N+1 offsets
    or ``lengths`` then.
    """
    pos = np.asarray(positions)
    if pos.size == 0:
        pos = pos.reshape(0, 3).astype(pos.dtype if pos.dtype.kind == "f" else np.float32)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.dtype.kind != "f":
        raise TrxFormatError(_WHERE, "positions", f"expected a (NB_VERTICES, 3) float array, "
                             f"found {pos.dtype} {pos.shape}")
    pos = _as_le(pos, "positions")
    v = len(pos)
    if (offsets is None) == (lengths is None):
        raise ValueError("give exactly one of offsets and lengths")
    if lengths is not None:
        lens = np.asarray(lengths, dtype=np.int64).ravel()
        off = np.zeros(len(lens) + 1, dtype=np.uint64)
        np.cumsum(lens, out=off[1:])
    else:
        off = np.asarray(offsets).ravel()
        if off.size and off.dtype.kind not in "iu":
            raise TrxFormatError(_WHERE, "offsets", f"expected integers, found {off.dtype}")
        if off.size == 0 or int(off[-1]) != v or (v == 0 and len(off) > 1 and off[-1] != 0):
            off = np.append(off, v)
        if off.size and int(off.min()) < 0:
            raise TrxFormatError(_WHERE, "offsets", "expected non-negative offsets")
        off = off.astype(np.uint64)
    if np.any(off[1:] < off[:-1]) or int(off[0]) != 0 or int(off[-1]) != v:
        raise TrxFormatError(_WHERE, "offsets", f"expected non-decreasing offsets from 0 to "
                             f"NB_VERTICES={v}, found {off[:8].tolist()}...")
    n = len(off) - 1
    hdr = dict(header or {})
    hdr.setdefault("VOXEL_TO_RASMM", np.eye(4))
    hdr.setdefault("DIMENSIONS", [1, 1, 1])
    if affine is not None:
        hdr["VOXEL_TO_RASMM"] = np.asarray(affine, dtype=np.float64)
    if dimensions is not None:
        hdr["DIMENSIONS"] = [int(d) for d in dimensions]
    hdr["NB_STREAMLINES"], hdr["NB_VERTICES"] = n, v
    hdr = check_header(hdr, _WHERE)

    def table(data: Mapping[str, Any] | None, rows: int, what: str) -> LazyArrays:
        out = {}
        for key, arr in (data or {}).items():
            arr = _as_le(arr, f"{what}/{key}")
            if len(arr) != rows:
                raise TrxFormatError(_WHERE, f"{what}/{key}", f"expected {rows} rows, "
                                     f"found {len(arr)}")
            out[key] = arr
        return LazyArrays.from_dict(out)

    grp = {}
    for key, idx in (groups or {}).items():
        idx = np.asarray(idx)
        if idx.size == 0:
            idx = idx.astype(np.uint32)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise TrxFormatError(_WHERE, f"groups/{key}", f"expected 1-D integer indices, "
                                 f"found {idx.dtype} {idx.shape}")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise TrxFormatError(_WHERE, f"groups/{key}", f"expected indices in 0..{n - 1}")
        grp[key] = _as_le(idx, f"groups/{key}")
    dpg_out = {}
    for g, entries in (dpg or {}).items():
        if g not in grp:
            raise TrxFormatError(_WHERE, f"dpg/{g}", "dpg for an undeclared group")
        dpg_out[g] = LazyArrays.from_dict(
            {k: _as_le(_per_group(a), f"dpg/{g}/{k}") for k, a in entries.items()})
    return Source(header=hdr, positions=LazyArrays.from_dict({"positions": pos}), offsets=off,
                  dps=table(dps, n, "dps"), dpv=table(dpv, v, "dpv"), groups=grp, dpg=dpg_out)


def _per_group(value: Any) -> np.ndarray:
    """Data per group as a loaded file gives it: ``(ncols,)`` (a single row is flattened)."""
    arr = np.atleast_1d(np.asarray(value))
    return arr.reshape(-1) if arr.ndim == 2 and arr.shape[0] == 1 else arr


def tractogram_space(tractogram: Any) -> tuple[np.ndarray | None, Any]:
    """(affine, dimensions) from a nibabel TractogramFile header, when it has one.

    A plain ``Tractogram`` (RAS+ mm, no space of its own) gives ``(None, None)``.
    """
    hdr = getattr(tractogram, "header", None)
    if isinstance(hdr, Mapping) and "voxel_to_rasmm" in hdr and "dimensions" in hdr:
        return np.asarray(hdr["voxel_to_rasmm"]), np.asarray(hdr["dimensions"])
    return None, None


def source_from_tractogram(tractogram: Any, *, affine: Any = None,
                           dimensions: Sequence[int] | None = None) -> Source:
    """A source from a nibabel Tractogram (RAS+ mm) or TractogramFile (TRK/TCK)."""
    file_affine, file_dims = tractogram_space(tractogram)
    tgm = getattr(tractogram, "tractogram", tractogram)
    if hasattr(tgm, "to_world"):  # to_world() moves the caller's data in place: use a copy
        tgm = tgm.copy().to_world() if not np.allclose(tgm.affine_to_rasmm, np.eye(4)) else tgm
    seq = tgm.streamlines
    lengths = np.asarray(seq._lengths, dtype=np.int64)
    # get_data() is already a packed copy, streamline after streamline (nibabel copies
    # the sequence): no second copy for sequences whose rows are not in order
    data = seq.get_data() if len(seq) else np.zeros((0, 3), np.float32)
    dps = {k: np.asarray(v) for k, v in tgm.data_per_streamline.items()}
    dpv = {k: np.asarray(v.get_data()) for k, v in tgm.data_per_point.items()}
    return source_from_arrays(
        data, lengths=lengths,
        affine=affine if affine is not None else file_affine,
        dimensions=dimensions if dimensions is not None else file_dims,
        dps=dps, dpv=dpv)


def source_from_sft(sft: Any) -> Source:
    """A source from a dipy StatefulTractogram, in RASMM / center (on a copy)."""
    from dipy.io.stateful_tractogram import Origin, Space, StatefulTractogram

    sft = StatefulTractogram.from_sft(sft.streamlines, sft,
                                      data_per_point=sft.data_per_point,
                                      data_per_streamline=sft.data_per_streamline)
    sft.to_space(Space.RASMM)
    sft.to_origin(Origin.NIFTI)
    affine, dims, _, _ = sft.space_attributes
    seq = sft.streamlines
    return source_from_arrays(
        seq.get_data() if len(seq) else np.zeros((0, 3), np.float32),
        lengths=np.asarray(seq._lengths, dtype=np.int64),
        affine=affine, dimensions=dims,
        dps={k: np.asarray(v) for k, v in sft.data_per_streamline.items()},
        dpv={k: np.asarray(v.get_data()) for k, v in sft.data_per_point.items()})


def reference_header(affine: np.ndarray, dimensions: Sequence[int]) -> Any:
    """A NIfTI header carrying a space (affine, dimensions, voxel sizes) for dipy."""
    import nibabel as nib
    from nibabel.affines import voxel_sizes

    hdr = nib.Nifti1Header()
    hdr.set_data_shape([int(d) for d in dimensions])
    hdr.set_zooms(tuple(float(z) for z in voxel_sizes(np.asarray(affine))))
    hdr.set_sform(affine, code=1)
    hdr.set_qform(affine, code=1)
    return hdr


def _as_2d(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    return arr.reshape(len(arr), -1)


def to_tractogram(trx: Any) -> Any:
    """A nibabel Tractogram in RAS+ mm (dps/dpv as 2-D arrays, as nibabel wants)."""
    from nibabel.streamlines import Tractogram

    return Tractogram(trx.streamlines,
                      data_per_streamline={k: _as_2d(v) for k, v in trx.dps.items()},
                      data_per_point={k: _per_point(trx, v) for k, v in trx.dpv.items()},
                      affine_to_rasmm=np.eye(4))


def _per_point(trx: Any, arr: np.ndarray) -> Any:
    from nibabel.streamlines import ArraySequence

    seq = ArraySequence()
    seq._data = _as_2d(arr)
    seq._offsets = np.asarray(trx.offsets[:-1], dtype=np.intp)
    seq._lengths = np.asarray(trx.lengths, dtype=np.intp)
    return seq


def to_sft(trx: Any) -> Any:
    """A dipy StatefulTractogram in RASMM; each group becomes a 0/1 uint8 dps entry."""
    from dipy.io.stateful_tractogram import Origin, Space, StatefulTractogram

    dps = {k: _as_2d(v) for k, v in trx.dps.items()}
    for name, idx in trx.groups.items():
        member = np.zeros((len(trx), 1), dtype=np.uint8)
        member[np.asarray(idx, dtype=np.int64)] = 1
        dps.setdefault(name, member)
    return StatefulTractogram(
        trx.streamlines, reference_header(trx.affine, trx.dimensions), Space.RASMM,
        origin=Origin.NIFTI,
        data_per_point={k: _per_point(trx, v) for k, v in trx.dpv.items()},
        data_per_streamline=dps)
