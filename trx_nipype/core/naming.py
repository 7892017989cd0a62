"""File names made from group and bundle names (which may hold spaces, slashes...)."""

from __future__ import annotations

from collections.abc import Iterable


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
