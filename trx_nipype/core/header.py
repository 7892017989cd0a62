"""``header.json``: the four required keys, checked; any other key kept as it is."""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

import numpy as np

from .errors import TrxFormatError

MEMBER = "header.json"
REQUIRED = ("VOXEL_TO_RASMM", "DIMENSIONS", "NB_VERTICES", "NB_STREAMLINES")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _no_constants(name: str) -> Any:
    # NaN / Infinity are Python's extension to JSON; other readers of TRX refuse them
    raise ValueError(f"{name} is not standard JSON")


def parse_header(raw: bytes, path: str) -> dict[str, Any]:
    """Decode and check ``header.json``.

    Returns a dict whose ``VOXEL_TO_RASMM`` is a (4, 4) float64 array and
    ``DIMENSIONS`` a (3,) int64 array; other keys are kept as decoded.
    """
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TrxFormatError(path, MEMBER,
                             f"expected JSON, found unparsable text ({exc})") from None
    if not isinstance(header, dict):
        raise TrxFormatError(path, MEMBER, f"expected a JSON object, found {type(header).__name__}")
    return check_header(header, path)


def check_header(header: dict[str, Any], path: str) -> dict[str, Any]:
    """Check the four required keys; return a normalised copy."""
    missing = [k for k in REQUIRED if k not in header]
    if missing:
        raise TrxFormatError(path, MEMBER, f"missing required key(s) {', '.join(missing)}")
    out = dict(header)
    aff = header["VOXEL_TO_RASMM"]
    try:
        arr = np.asarray(aff, dtype=np.float64)
    except (TypeError, ValueError):
        raise TrxFormatError(path, MEMBER, f"VOXEL_TO_RASMM: expected a 4x4 matrix of numbers, "
                             f"found {str(aff)[:80]}") from None
    if arr.shape == (16,):
        arr = arr.reshape(4, 4)
    if arr.shape != (4, 4):
        raise TrxFormatError(path, MEMBER,
                             f"VOXEL_TO_RASMM: expected a 4x4 matrix, found shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise TrxFormatError(path, MEMBER, "VOXEL_TO_RASMM: expected finite values, found NaN/inf")
    out["VOXEL_TO_RASMM"] = arr
    dims = header["DIMENSIONS"]
    if (not isinstance(dims, (list, tuple, np.ndarray)) or len(dims) != 3
            or not all(_is_int(d) or (isinstance(d, float) and d.is_integer()) for d in dims)
            or not all(d > 0 for d in dims)):
        raise TrxFormatError(path, MEMBER,
                             f"DIMENSIONS: expected 3 positive integers, found {str(dims)[:80]}")
    out["DIMENSIONS"] = np.asarray(dims, dtype=np.int64)
    for key in ("NB_VERTICES", "NB_STREAMLINES"):
        val = header[key]
        if not _is_int(val) or val < 0:
            raise TrxFormatError(path, MEMBER,
                                 f"{key}: expected a non-negative integer, found {val!r}")
        out[key] = int(val)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def dump_header(header: dict[str, Any]) -> bytes:
    """Serialise deterministically: required keys first, the others in sorted order."""
    ordered: dict[str, Any] = {}
    aff = np.asarray(header["VOXEL_TO_RASMM"], dtype=np.float64).reshape(4, 4)
    ordered["VOXEL_TO_RASMM"] = [[float(v) for v in row] for row in aff]
    ordered["DIMENSIONS"] = [int(v) for v in np.asarray(header["DIMENSIONS"]).ravel()]
    ordered["NB_VERTICES"] = int(header["NB_VERTICES"])
    ordered["NB_STREAMLINES"] = int(header["NB_STREAMLINES"])
    for key in sorted(k for k in header if k not in REQUIRED):
        ordered[key] = _plain(header[key])
    text = json.dumps(ordered, indent=1, allow_nan=False, default=_plain)
    if any(isinstance(v, float) and not math.isfinite(v) for v in ordered.values()):
        raise ValueError("header values must be finite")
    return text.encode("utf-8")
