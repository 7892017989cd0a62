"""Errors raised by the TRX engine."""

from __future__ import annotations

import os


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
