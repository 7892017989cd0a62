"""Errors raised by the TRX engine."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

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


# ------------------------------------------------------------ parameters named in messages
# A message that tells the caller what to change names a parameter. Python callers read it
# as ``reference=``; the CLI, where the user typed ``--reference``, renders the same error
# with its own option names (:meth:`ParameterMessage.render`). Parameters are marked in
# the message text with :func:`param`; the marks are NUL-delimited, so no file or group
# name (which cannot hold NUL) is ever mistaken for one.
_MARK = re.compile("\x00([A-Za-z_][A-Za-z0-9_]*)(?:\x01([^\x00]*))?\x00")
_NO_VALUE = object()


def param(name: str, value: Any = _NO_VALUE) -> str:
    """Mention the parameter ``name`` (optionally with the ``value`` to pass) in a message.

    Rendered ``name=`` / ``name=value`` for Python callers; front ends such as
    the CLI render it with their own spelling (``--name``).

    >>> str(ParameterError(f"give {param('reference')} an image; or {param('force', True)}"))
    'give reference= an image; or force=True'
    """
    if value is _NO_VALUE:
        return f"\x00{name}\x00"
    return f"\x00{name}\x01{value!r}\x00"


def python_spelling(name: str, value: str | None) -> str:
    """``name=`` or ``name=value`` (the value as its ``repr``)."""
    return f"{name}={'' if value is None else value}"


class ParameterMessage:
    """Mixin of the errors and warnings whose message names parameters (see :func:`param`).

    ``str()`` gives the Python spelling; :meth:`render` another one.
    """

    template: str

    def _set_template(self, template: str) -> str:
        self.template = template
        return self.render()

    @property
    def parameters(self) -> list[str]:
        """The parameters the message names, in order."""
        return [m.group(1) for m in _MARK.finditer(self.template)]

    def render(self, spell: Callable[[str, str | None], str] | None = None) -> str:
        """The message with each parameter spelled by ``spell(name, value_repr_or_None)``."""
        spell = spell or python_spelling
        return _MARK.sub(lambda m: spell(m.group(1), m.group(2)), self.template)


class ParameterError(ParameterMessage, ValueError):
    """A value the caller can fix by changing a parameter that the message names.

    >>> err = ParameterError(f"x.tck: no space; give {param('reference')} an image")
    >>> str(err), err.parameters
    ('x.tck: no space; give reference= an image', ['reference'])
    >>> err.render(lambda name, value: "--" + name)
    'x.tck: no space; give --reference an image'
    """

    def __init__(self, template: str) -> None:
        super().__init__(self._set_template(template))

    def __reduce__(self):  # picklable for Nipype's crash files / MultiProc
        return (type(self), (self.template,))


class UsageError(ParameterError):
    """Parameters that cannot go together, or an output path that cannot be used.

    Raised before any work; the CLI exits with its usage code (2).
    """


class OutputExistsError(ParameterMessage, FileExistsError):
    """An output exists and replacing it was not asked for (``overwrite``; ``--force``)."""

    def __init__(self, template: str) -> None:
        super().__init__(self._set_template(template))

    def __reduce__(self):
        return (type(self), (self.template,))


# ------------------------------------------------------------------------ warnings
# One category per kind of trouble, as nibabel's HeaderWarning / DataWarning, all under
# TrxWarning (a UserWarning): ``warnings.simplefilter("ignore", DataLossWarning)`` silences
# what a format cannot hold and keeps the others.
class TrxWarning(ParameterMessage, UserWarning):
    """A warning of trx-nipype: the base of its categories (filtering it silences them all).

    Its message may name parameters (:func:`param`), e.g. the one that changes the
    outcome: ``str()`` gives the Python spelling, front ends render their own.
    """

    def __init__(self, template: str) -> None:
        super().__init__(self._set_template(template))

    def __reduce__(self):
        return (type(self), (self.template,))


class HeaderWarning(TrxWarning):
    """A file's header lacks or contradicts something, and a default or the data is used
    instead (a TCK without ``datatype`` or ``file``, or whose count differs from its
    streamlines; a TRK without ``vox_to_ras`` or ``voxel_order``)."""


class DataLossWarning(TrxWarning):
    """Something of the input is not in the output: what the target format cannot hold
    (data per vertex, streamline or group, groups, header fields, names beyond a TRK's
    ten, empty streamlines), values that float32 changes, or a TRK's groups sidecar that
    does not apply to it (its groups are not read)."""


class NamingWarning(TrxWarning):
    """A name is changed to fit where it goes: a TRK field of 20 bytes, a TRX data name,
    a file name longer than a filesystem holds."""


class SpaceWarning(TrxWarning):
    """Streamlines lie outside the bounding box of their reference grid, or of an image
    read along them (``sample``, ``profile``)."""


class SpaceMismatchError(TrxFormatError):
    """Two spaces that must agree do not: a tractogram and its reference, or the
    inputs of a concatenation or an append.

    ``path`` is the file whose space differs (``"<in memory>"`` for a tractogram
    built in memory); the message names the other file and how the spaces differ
    (``VOXEL_TO_RASMM differs by up to 0.5 (atol=0.001)``, ``DIMENSIONS [1, 2, 3]
    instead of [30, 40, 50]``).
    """
