"""``header.json``: the four required keys, checked; any other key kept as it is."""

from __future__ import annotations

import functools
import json
import math
import numbers
from typing import Any

import numpy as np

from .errors import TrxFormatError

MEMBER = "header.json"
REQUIRED = ("VOXEL_TO_RASMM", "DIMENSIONS", "NB_VERTICES", "NB_STREAMLINES")
#: the largest ``header.json`` read (real ones hold a few hundred bytes; decoded JSON
#: takes up to ~35x its text in memory, so this bounds the decoded header to ~40 MB)
MAX_BYTES = 1 << 20
#: the largest grid size along one axis (NIfTI-1 and TRK store int16; int32 is generous)
MAX_DIMENSION = 2**31 - 1
#: the largest NB_VERTICES / NB_STREAMLINES (offsets and lengths are 64-bit)
MAX_COUNT = 2**63 - 1


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _numbers(value: Any, depth: int) -> bool:
    """True for ``depth`` levels of lists of JSON numbers (or a numeric array)."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf"
    if depth == 0:
        return _is_number(value)
    return isinstance(value, (list, tuple)) and all(_numbers(v, depth - 1) for v in value)


def found(value: Any) -> str:
    """A header value as a message shows it: text is called text (quotes alone look like
    the number they hold), anything else is cut to 80 characters.

    >>> found("150"), found(150), found([1, "2", 3])
    ("the string '150' (write numbers without quotes)", '150', "[1, '2', 3]")
    """
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f"the string {shown!r} (write numbers without quotes)"
    return str(value)[:80]


def check_affine(value: Any, path: str, member: str = MEMBER,
                 field: str = "VOXEL_TO_RASMM") -> np.ndarray:
    """``value`` as a usable (4, 4) float64 voxel-to-RAS+ affine, or a TrxFormatError.

    Usable: 4x4 (or 16) numbers -- not text, not booleans -- that are finite
    in float64, with a finite inverse and a direction for every axis.
    """
    if not (_numbers(value, 2) or _numbers(value, 1)):
        raise TrxFormatError(path, member, f"{field}: expected a 4x4 matrix of numbers, "
                             f"found {found(value)}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise TrxFormatError(path, member, f"{field}: expected finite numbers, found one too "
                             f"large for a float64: {str(value)[:80]}") from None
    except (TypeError, ValueError):
        raise TrxFormatError(path, member, f"{field}: expected a 4x4 matrix of numbers, "
                             f"found {found(value)}") from None
    if arr.shape == (16,):
        arr = arr.reshape(4, 4)
    if arr.shape != (4, 4):
        raise TrxFormatError(path, member,
                             f"{field}: expected a 4x4 matrix, found shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise TrxFormatError(path, member, f"{field}: expected finite values, found NaN/inf")
    if not usable_affine(arr):
        raise TrxFormatError(path, member, f"{field}: expected an invertible affine with a "
                             f"direction for every axis, found {arr.tolist()}")
    return arr


@functools.lru_cache(maxsize=64)
def _axcodes(affine_bytes: bytes) -> tuple[str | None, ...]:
    """nibabel's ``aff2axcodes`` of a float64 4x4 (its SVD is most of a TRK header's cost:
    the files of a dataset share a handful of affines)."""
    from nibabel.orientations import aff2axcodes

    return tuple(aff2axcodes(np.frombuffer(affine_bytes, dtype=np.float64).reshape(4, 4)))


def axcodes(affine: np.ndarray) -> tuple[str | None, ...]:
    """The axis codes (``("R", "A", "S")``...; None: no direction) of an affine."""
    return _axcodes(np.ascontiguousarray(affine, dtype=np.float64).tobytes())


def usable_affine(affine: np.ndarray) -> bool:
    """Finite, invertible (with a finite inverse) and with a direction for every axis."""
    if not np.all(np.isfinite(affine)):
        return False
    try:
        with np.errstate(all="ignore"):
            inverse = np.linalg.inv(affine)
    except np.linalg.LinAlgError:
        return False
    if not np.all(np.isfinite(inverse)):
        return False
    try:
        return None not in axcodes(affine)
    except (ValueError, np.linalg.LinAlgError):
        return False


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
    out["VOXEL_TO_RASMM"] = check_affine(header["VOXEL_TO_RASMM"], path)
    dims = header["DIMENSIONS"]
    if isinstance(dims, np.ndarray):
        dims = dims.tolist()
    if (not isinstance(dims, (list, tuple)) or len(dims) != 3
            or not all(_is_int(d) or (isinstance(d, float) and d.is_integer()) for d in dims)
            or not all(0 < d <= MAX_DIMENSION for d in dims)):
        raise TrxFormatError(path, MEMBER, f"DIMENSIONS: expected 3 positive integers up to "
                             f"{MAX_DIMENSION}, found {found(dims)}")
    out["DIMENSIONS"] = np.asarray([int(d) for d in dims], dtype=np.int64)
    for key in ("NB_VERTICES", "NB_STREAMLINES"):
        val = header[key]
        if not _is_int(val) or not 0 <= val <= MAX_COUNT:
            raise TrxFormatError(path, MEMBER, f"{key}: expected an integer from 0 to "
                                 f"{MAX_COUNT}, found {found(val)}")
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
