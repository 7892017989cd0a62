"""Errors raised by the TRX engine."""

from __future__ import annotations

import os

#: the ``path`` of errors about a tractogram that was built in memory, not read
IN_MEMORY = "<in memory>"


class TrxFormatError(ValueError):
    """A TRX container (or another tractogram file) violates its format.

    The message always names the file, the member, what was expected and what
    was found, e.g. ``"bundle.trx: positions.3.float32: expected 36 bytes
    (NB_VERTICES=3 x 3 x float32), found 24"``.

    Parameters
    ----------
    path : str or os.PathLike
        The file or directory being read.
    member : str or None
        The member (``header.json``, ``offsets.uint64``, ...), or None when the
        problem concerns the container as a whole.
    problem : str
        What was expected and what was found.
    """

    def __init__(self, path: str | os.PathLike, member: str | None, problem: str) -> None:
        self.path = os.fspath(path)
        self.member = member
        self.problem = problem
        where = f"{self.path}: {member}" if member else self.path
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # keep picklable for Nipype's crash files / MultiProc
        return (type(self), (self.path, self.member, self.problem))


class SpaceMismatchError(TrxFormatError):
    """Two spaces that must agree do not: a tractogram and its reference, or the
    inputs of a concatenation or an append.

    ``path`` is the file whose space differs (``"<in memory>"`` for a tractogram
    built in memory); the message names the other file and how the spaces differ
    (``VOXEL_TO_RASMM differs by up to 0.5 (atol=0.001)``, ``DIMENSIONS [1, 2, 3]
    instead of [30, 40, 50]``).
    """
