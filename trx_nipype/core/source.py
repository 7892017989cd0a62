"""``Source``: the full, unselected arrays of a tractogram, as a loader or a builder gives them.

A :class:`~trx_nipype.core.trxfile.TrxFile` is a source plus an optional
selection of its streamlines. Sources come from :func:`~trx_nipype.core.load`
(maps of a file), :mod:`.build` (arrays, nibabel and dipy objects) and the
growable TRX (its own writable maps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arrays import LazyArrays, frozen_copy


@dataclass
class Source:
    """What a loader (or a constructor) provides: the full, unselected data."""

    header: dict[str, Any]
    positions: LazyArrays  # one key, "positions"
    offsets: np.ndarray  # N + 1 entries
    dps: LazyArrays
    dpv: LazyArrays
    groups: dict[str, np.ndarray]
    dpg: dict[str, LazyArrays]
    path: str | None = None
    container: Any = None
    #: how messages name the file: the user's file a private copy was converted from
    shown_as: str | None = None
    #: the file's offsets member held N entries (the usual is N + 1)
    short_offsets: bool = False
    _lengths: np.ndarray | None = field(default=None, repr=False)

    @property
    def lengths(self) -> np.ndarray:
        """Vertices per streamline (int64), from the offsets; computed once."""
        if self._lengths is None:
            # shared by every view of this source: nobody may change it
            # the offsets are non-decreasing (checked at load): their differences fit int64
            # as they are, without an int64 copy of the offsets first (80 MB at 10M)
            diff = np.diff(np.asarray(self.offsets))
            self._lengths = frozen_copy(diff.view(np.int64) if diff.dtype == np.uint64
                                        else diff.astype(np.int64))
        return self._lengths

    @property
    def offsets_dtype(self) -> np.dtype:
        """The dtype of the stored offsets."""
        return np.dtype(self.offsets.dtype)

    def check_unchanged(self) -> None:
        """Raise ``SourceChangedError`` if a file this source read has changed since."""
        check = getattr(self.container, "check_unchanged", None)
        if check is not None:  # a loaded file's container (not a growable's own store)
            check()

    @property
    def positions_dtype(self) -> np.dtype:
        """The dtype of the stored positions."""
        return self.positions.spec("positions")[0]
