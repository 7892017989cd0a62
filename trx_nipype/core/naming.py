"""File names made from input, group and bundle names (which may hold spaces, slashes...).

Names are made safe (:func:`safe_name`), distinct on case-insensitive filesystems
(:func:`unique_safe_names`) and short enough for every filesystem
(:func:`fit_file_name`: at most :data:`MADE_NAME_MAX` bytes, which leaves room
for a TRK's ``.groups.json`` sidecar within a filesystem's :data:`NAME_MAX`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .formats import SUFFIXES, compound_suffix

#: bytes in one file name on the filesystems users have (ext4, XFS, APFS, NTFS: 255)
NAME_MAX = 255
#: bytes of the names made here: room left for a TRK's ``.groups.json`` sidecar
MADE_NAME_MAX = NAME_MAX - len(".groups.json")
#: concatenations of more names than fit in this many characters are named after the first
JOINED_MAX = 64


def safe_name(text: str) -> str:
    """``text`` usable as one file name: other characters than ``[A-Za-z0-9._-]`` become ``_``.

    >>> safe_name("AF L/left"), safe_name("..")
    ('AF_L_left', 'group')
    """
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".")
    return keep or "group"


def unique_safe_names(names: Iterable[str]) -> dict[str, str]:
    """A distinct :func:`safe_name` for each name, also on case-insensitive filesystems.

    Names that would collide get ``-2``, ``-3``, ... in the order given.

    >>> unique_safe_names(["AF L", "AF_L", "af_l"])
    {'AF L': 'AF_L', 'AF_L': 'AF_L-2', 'af_l': 'af_l-3'}
    """
    used: set[str] = set()
    out = {}
    for name in names:
        base = safe_name(name)
        candidate, i = base, 1
        while candidate.lower() in used:
            i += 1
            candidate = f"{base}-{i}"
        used.add(candidate.lower())
        out[name] = candidate
    return out


def fit_file_name(base: str, ext: str = "", max_bytes: int = MADE_NAME_MAX) -> str:
    """``base + ext``, or, when that is longer than ``max_bytes`` bytes (UTF-8), the longest
    prefix of ``base`` that fits with ``-`` and 8 hex digits of the SHA-256 of ``base``.

    The rule is stable (the same name always gives the same file name) and keeps
    long names that differ anywhere apart.

    >>> fit_file_name("a" * 300, ".trx") == "a" * 230 + "-" + \\
    ...     hashlib.sha256(b"a" * 300).hexdigest()[:8] + ".trx"
    True
    >>> fit_file_name("AF_L", ".trx")
    'AF_L.trx'
    """
    if len((base + ext).encode("utf-8")) <= max_bytes:
        return base + ext
    tag = "-" + hashlib.sha256(base.encode("utf-8")).hexdigest()[:8]
    room = max_bytes - len((tag + ext).encode("utf-8"))
    prefix, used = [], 0
    for char in base:
        size = len(char.encode("utf-8"))
        if used + size > room:
            break
        prefix.append(char)
        used += size
    return "".join(prefix) + tag + ext


def tractogram_stem(path: str | os.PathLike) -> str:
    """A tractogram's name without its format extension (``sub-01.trk.gz`` -> ``sub-01``).

    >>> tractogram_stem("/d/sub-01.trk.gz"), tractogram_stem("bundle/"), tractogram_stem("a.v2")
    ('sub-01', 'bundle', 'a.v2')
    """
    name = Path(os.fspath(path).rstrip("/\\")).name
    suffix = compound_suffix(name)
    return name[: -len(suffix)] if suffix in SUFFIXES else name


def concatenation_name(names: Sequence[str], ext: str) -> str:
    """The name of a concatenation, after what it holds: ``AF_L+CST_R_concat.trx``.

    ``names`` are the inputs' (or their groups') names; past :data:`JOINED_MAX`
    characters the name is ``<first>+<n - 1>_more_concat<ext>``.

    >>> concatenation_name(["AF_L", "CC", "CST_R"], ".trx")
    'AF_L+CC+CST_R_concat.trx'
    >>> concatenation_name([f"sub-{i:02d}" for i in range(1, 41)], ".trx")
    'sub-01+39_more_concat.trx'
    """
    safe = list(dict.fromkeys(safe_name(n) for n in names))
    joined = "+".join(safe)
    if len(safe) > 1 and len(joined) > JOINED_MAX:
        joined = f"{safe[0]}+{len(safe) - 1}_more"
    return fit_file_name(f"{joined}_concat", ext)


#: extensions of tractogram files, longest first (a ``.trx`` may also be a directory): the
#: readers' suffixes (:data:`trx_nipype.core.formats.SUFFIXES`) but ``.zip``, which in a
#: dataset folder is an archive, not a bundle
TRACTOGRAM_EXTENSIONS = tuple(sorted((s for s in SUFFIXES if s != ".zip"), key=len,
                                     reverse=True))


def tractogram_extension(path: str | os.PathLike) -> str | None:
    """The tractogram extension of a name, lower-case and longest first, or None.

    One rule with the readers (:func:`trx_nipype.core.formats.compound_suffix`):
    ``x.trk.gz`` -> ``.trk.gz``; a bare ``.trk`` has none.

    >>> tractogram_extension("AF.L.TCK.gz"), tractogram_extension("AF.L")
    ('.tck.gz', None)
    """
    ext = compound_suffix(path)
    return ext if ext in TRACTOGRAM_EXTENSIONS else None


def strip_tractogram_extension(name: str) -> str:
    """``name`` without its tractogram extension (unchanged without one)."""
    ext = tractogram_extension(name)
    return name[: -len(ext)] if ext else name


#: extensions of the other results a sink exports (images, tables), replaced by ``.json``
#: in their sidecar's name as tractograms' are
RESULT_EXTENSIONS = (".nii.gz", ".nii", ".csv", ".tsv")


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of an output: ``x.trx`` -> ``x.json``, ``AF.L`` -> ``AF.L.json``.

    A known tractogram extension (:data:`TRACTOGRAM_EXTENSIONS`, ``.trk.gz``
    included) or result extension (:data:`RESULT_EXTENSIONS`: ``x.nii.gz`` ->
    ``x.json``) is replaced by ``.json``; any other name (a TRX folder without
    an extension, a name with dots) gets ``.json`` appended, so that ``AF.L``
    and ``AF.R`` do not share ``AF.json``.

    >>> sidecar_path("d/x.trk.gz").as_posix(), sidecar_path("d/x.nii.gz").as_posix()
    ('d/x.json', 'd/x.json')
    """
    path = Path(path)
    name = path.name
    for ext in RESULT_EXTENSIONS:
        if name.lower().endswith(ext) and len(name) > len(ext):
            return path.with_name(name[:-len(ext)] + ".json")
    return path.with_name(strip_tractogram_extension(name) + ".json")
