"""Member names of a TRX container: ``<name>[.<ncols>].<dtype>``.

The TRX layout, spelled out once::

    header.json
    positions.3.<float16|float32|float64>     (NB_VERTICES, 3)
    offsets.<uint32|uint64>                   NB_STREAMLINES (+1) start indices
    dps/<name>[.<ncols>].<dtype>              (NB_STREAMLINES[, ncols])
    dpv/<name>[.<ncols>].<dtype>              (NB_VERTICES[, ncols])
    groups/<name>.<integer dtype>             streamline indices
    dpg/<group>/<name>[.<ncols>].<dtype>      (ncols,) per group

Names may contain spaces and dots: the last dot-field is the dtype and the one
before it, when it is a positive integer, the number of columns.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

#: dtype extension -> little-endian numpy dtype (``bit`` is one byte per value).
DTYPES: dict[str, np.dtype] = {
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
    "float16": np.dtype("<f2"),
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "bit": np.dtype("?"),
}
POSITION_DTYPES = ("float16", "float32", "float64")
OFFSET_DTYPES = ("uint32", "uint64")
INTEGER_DTYPES = tuple(k for k, v in DTYPES.items() if v.kind in "iu")


class MemberName(NamedTuple):
    """A parsed member file name (without its folder)."""

    name: str
    ncols: int | None
    dtype_name: str

    @property
    def dtype(self) -> np.dtype:
        """The little-endian numpy dtype of the member."""
        return DTYPES[self.dtype_name]

    @property
    def width(self) -> int:
        """Values per row (1 when the name gives no column count)."""
        return self.ncols or 1


def parse_member_name(basename: str) -> MemberName | None:
    """Split ``name[.ncols].dtype``; None when the last field is not a TRX dtype.

    >>> parse_member_name("effect   .float32")
    MemberName(name='effect   ', ncols=None, dtype_name='float32')
    >>> parse_member_name("a.b.3.float32")
    MemberName(name='a.b', ncols=3, dtype_name='float32')
    >>> parse_member_name("notes.txt") is None
    True
    """
    stem, dot, ext = basename.rpartition(".")
    if not dot or ext not in DTYPES or not stem:
        return None
    name, dot, cols = stem.rpartition(".")
    if dot and name and cols.isdigit() and cols.isascii():
        return MemberName(name, int(cols), ext)
    return MemberName(stem, None, ext)


def dtype_name(dtype: np.dtype | type | str) -> str:
    """The TRX extension of a numpy dtype (``bool`` -> ``bit``).

    >>> dtype_name(np.float32), dtype_name(bool), dtype_name(">u2")
    ('float32', 'bit', 'uint16')
    """
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return "bit"
    name = dt.newbyteorder("=").name if dt.byteorder not in "=|" else dt.name
    if name not in DTYPES:
        raise TypeError(f"dtype {dt} has no TRX equivalent (use one of {', '.join(DTYPES)})")
    return name


def check_dtype(dtype: Any, allowed: tuple[str, ...], what: str) -> np.dtype:
    """``dtype`` as the little-endian dtype of its TRX name, if that name is ``allowed``.

    >>> check_dtype(">f4", POSITION_DTYPES, "positions")
    dtype('float32')
    >>> check_dtype("int8", OFFSET_DTYPES, "offsets")
    Traceback (most recent call last):
    ValueError: offsets dtype must be one of uint32, uint64, got int8
    """
    name = dtype_name(dtype)
    if name not in allowed:
        raise ValueError(f"{what} dtype must be one of {', '.join(allowed)}, got {name}")
    return DTYPES[name]


def format_member_name(name: str, array_shape: tuple[int, ...], dtype: np.dtype) -> str:
    """``name[.ncols].dtype`` for an array of per-item data of this shape.

    A 1-D array gets no column field; a 2-D array always gets one, so that the
    shape round-trips exactly.

    >>> format_member_name("fa", (10,), np.dtype("float32"))
    'fa.float32'
    >>> format_member_name("rgb", (10, 3), np.dtype("uint8"))
    'rgb.3.uint8'
    """
    check_key(name)
    ext = dtype_name(dtype)
    if len(array_shape) == 1:
        if parse_member_name(f"{name}.{ext}") != MemberName(name, None, ext):
            raise ValueError(f"{name!r}: a 1-D array's name cannot end in '.<digits>' (it would "
                             "read back as a column count); rename it or give it 2-D shape")
        return f"{name}.{ext}"
    if len(array_shape) == 2:
        return f"{name}.{array_shape[1]}.{ext}"
    raise ValueError(f"{name}: arrays must be 1-D or 2-D, got shape {array_shape}")


def check_key(name: str) -> None:
    """Refuse names that cannot be stored as one member file name and read back.

    >>> try:
    ...     check_key("a/b")
    ... except ValueError:
    ...     print("refused")
    refused
    """
    if not name or name.startswith(".") or any(c in name for c in "/\\\x00"):
        raise ValueError(f"{name!r}: data, group and dpg names must be non-empty, not start "
                         "with '.', and not contain '/', '\\' or NUL")
