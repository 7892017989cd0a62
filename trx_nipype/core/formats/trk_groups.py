"""The groups of a TRK file: this project's ``.groups.json`` convention.

TRK has no groups. They are written as one per-streamline property
(:data:`GROUP_PROPERTY`, the index of the streamline's group) plus a JSON sidecar
``<file>.groups.json`` mapping index to group name; streamlines in several
groups get an index of their own, mapped to the list of those groups
(``"overlaps"``), so that overlapping groups survive the round trip.
Streamlines in no group get -1. The TRK and its sidecar are two files, renamed
into place one after the other, so they are tied together: the sidecar carries
a digest of its own content (``trk_token``) that the writer also puts at the
start of the header's ``reserved`` field. A sidecar whose token the TRK does
not carry (a write killed between the two renames, a TRK rewritten by another
tool) is ignored with a warning instead of mislabelling the streamlines.

A :class:`~trx_nipype.core.formats.trk.TrkInfo` (what :func:`groups_sidecar_for`
reads) is taken as any object with its ``path``, ``record`` and ``properties``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataLossWarning, TrxFormatError
from . import write_json

#: the per-streamline property that holds a streamline's group index
GROUP_PROPERTY = "trx_group"
#: the sidecar's name is the TRK's followed by this
SIDECAR_SUFFIX = ".groups.json"
#: the start of ``reserved`` in a TRK whose groups sidecar has the token that follows
TOKEN_TAG = b"trx-nipype groups:"


def groups_sidecar_path(path: str | os.PathLike) -> Path:
    """``<file>.groups.json`` beside a TRK file."""
    return Path(os.fspath(path) + SIDECAR_SUFFIX)


def read_groups_sidecar(path: str | os.PathLike) -> dict[str, Any] | None:
    """The group sidecar of a TRK file as ``{"property", "names", "members"}``, or None.

    ``members`` maps each group name to the index values of its streamlines.
    """
    side = groups_sidecar_path(path)
    if not side.is_file():
        return None
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
        prop = str(doc.get("property", GROUP_PROPERTY))
        single = {int(k): str(v) for k, v in doc.get("groups", {}).items()}
        overlaps = {int(k): [str(x) for x in v] for k, v in doc.get("overlaps", {}).items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise TrxFormatError(side, None, f"expected a groups sidecar (JSON with 'groups': "
                             f"{{index: name}}), found unreadable content ({exc})") from None
    members: dict[str, list[int]] = {name: [] for _, name in sorted(single.items())}
    for code, name in single.items():
        members[name].append(code)
    for code, names in overlaps.items():
        for name in names:
            members.setdefault(name, []).append(code)
    token = doc.get("trk_token")
    return {"property": prop, "members": members,
            "token": None if token is None else str(token)}


def groups_sidecar_for(info: Any) -> dict[str, Any] | None:
    """The groups sidecar beside a TRK, if it applies to this very file; else None.

    It applies when the TRK carries the sidecar's ``trk_token`` (sidecars
    without a token, written by hand, are trusted) and holds the sidecar's
    property as one value per streamline. A sidecar that does not apply is
    ignored with a warning. The result adds ``"column"``: the property's
    index among the streamline's properties.
    """
    sidecar = read_groups_sidecar(info.path)
    if sidecar is None:
        return None
    name = groups_sidecar_path(info.path).name
    if sidecar["token"] is not None:
        reserved = bytes(info.record["reserved"])
        if not reserved.startswith(TOKEN_TAG + sidecar["token"].encode("ascii", "replace")):
            warnings.warn(f"{info.path}: {name} was written for another version of this "
                          "file (its trk_token is not in the TRK header); groups not read",
                          category=DataLossWarning, stacklevel=3)
            return None
    sl = info.properties.get(sidecar["property"])
    if sl is None or sl.stop - sl.start != 1:
        warnings.warn(f"{info.path}: {name} names the property {sidecar['property']!r}, which "
                      "the file does not hold as one value per streamline; groups not read",
                      category=DataLossWarning, stacklevel=3)
        return None
    return {**sidecar, "column": sl.start}


class GroupCoder:
    """Per-streamline group indices for TRK: one index per group, more for overlaps."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = sorted(names)
        self.codes: dict[tuple[str, ...], int] = {(n,): i for i, n in enumerate(self.names)}

    def encode(self, n: int, groups: dict[str, np.ndarray]) -> np.ndarray:
        """Index per streamline of a block (-1: in no group)."""
        member = np.zeros((n, len(self.names)), dtype=bool)
        for j, name in enumerate(self.names):
            idx = groups.get(name)
            if idx is not None and len(idx):
                member[np.asarray(idx, dtype=np.int64), j] = True
        out = np.full(n, -1, dtype=np.float32)
        if n == 0 or not self.names:
            return out
        # each row of memberships as one integer, the first group the most significant
        # bit: sorting these integers orders the rows as np.unique(member, axis=0) did
        # (so codes are given out in the same order), without sorting rows of booleans
        if len(self.names) <= 62:
            weights = np.left_shift(1, np.arange(len(self.names) - 1, -1, -1, dtype=np.int64))
            keys = member @ weights
            rows_keys, inverse = np.unique(keys, return_inverse=True)
            rows = (rows_keys[:, None] & weights) != 0
        else:
            rows, inverse = np.unique(member, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        for r, row in enumerate(rows):  # one pass per distinct combination
            combo = tuple(self.names[j] for j in np.flatnonzero(row))
            if combo:
                code = self.codes.setdefault(combo, len(self.codes))
                out[inverse == r] = code
        return out

    def sidecar(self) -> dict[str, Any]:
        """The sidecar document, with its ``trk_token`` (a digest of the rest)."""
        single = {str(c): k[0] for k, c in self.codes.items() if len(k) == 1}
        multi = {str(c): list(k) for k, c in self.codes.items() if len(k) > 1}
        doc: dict[str, Any] = {"property": GROUP_PROPERTY, "no_group": -1, "groups": single}
        if multi:
            doc["overlaps"] = multi
        content = json.dumps(doc, sort_keys=True).encode("utf-8")
        doc["trk_token"] = hashlib.sha256(content).hexdigest()[:32]
        return doc


def write_groups_sidecar(path: str | os.PathLike, doc: dict[str, Any]) -> Path:
    """Write ``<file>.groups.json`` atomically (one-space indent, no final newline: the
    bytes these files have always had)."""
    side = groups_sidecar_path(path)
    write_json(doc, side, indent=1, end="")
    return side
