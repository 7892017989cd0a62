"""Where an operation writes, checked before any work, and how its result reaches disk.

Every operation of this package plans its output with :func:`plan_output` before
it reads anything, and writes with :func:`write_tractogram` (a tractogram or a
view) or :func:`write_streams` (a header and member streams):

- the output's name picks its format, as in ``convert``: ``.trx``/``.zip`` a
  TRX zip, ``.trk[.gz]``, ``.tck[.gz]``, ``.vtk``/``.vtp``/``.fib``, ``.dpy``,
  no suffix a TRX folder; another suffix, or a format that cannot hold what
  was asked for (groups in a TCK), is refused;
- the output's folder must exist;
- an output is never inside an input TRX folder, never an input, and never
  holds an input (:func:`check_apart`);
- what is there may be replaced only when it is a tractogram (the core
  writer's :func:`~trx_nipype.core.writer.check_replaceable`: never a folder
  of other files, a file that is not a tractogram or a symbolic link), and
  only when ``overwrite`` is true (the CLI's ``--force``).

The analysis operations (filter, density, sample, profile, resample), whose
outputs may also be NIfTI images and tables, check theirs with
:func:`check_result_output`: the same rules, each kind of file recognised as
what it is (a tractogram as above, an image or a table by its content).

Errors name the parameter to change (:func:`~trx_nipype.core.errors.param`), so
the CLI can name its option instead.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..converting import convert
from ..errors import OutputExistsError, UsageError, param
from ..formats import SPACED_FORMATS, SUFFIXES, compound_suffix, detect_format
from ..formats.trk_groups import SIDECAR_SUFFIX, groups_sidecar_path
from ..naming import NAME_MAX
from ..saving import MemberStream, is_zip_path, save, write_members
from ..tempfiles import make_temp_dir, remove_temp_dir
from ..trxfile import TrxFile
from ..writer import check_replaceable

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Output:
    """A checked output: its path and format (``trx``, ``trk``, ``tck``, ``vtk``, ``dpy``)."""

    path: Path
    format: str

    @property
    def is_zip(self) -> bool:
        """A TRX zip (``.trx``/``.zip``); a TRX output otherwise is a folder."""
        return self.format == "trx" and is_zip_path(self.path)

    @property
    def needs_space(self) -> bool:
        """TRX and TRK files hold a space: their input needs one (or a reference)."""
        return self.format in SPACED_FORMATS


@dataclass(frozen=True)
class Written:
    """What an operation wrote: the output, its counts, and the files that make it up.

    Attributes
    ----------
    path : pathlib.Path
        The output (a file, or a TRX folder).
    format : str
        ``trx``, ``trk``, ``tck``, ``vtk`` or ``dpy``.
    nb_streamlines, nb_vertices : int
        What the output holds.
    groups : dict of str to int
        Its groups and their sizes (empty for formats without groups).
    groups_sidecar : pathlib.Path or None
        A TRK's ``<name>.trk.groups.json`` (the group names), which must stay
        beside the TRK.
    """

    path: Path
    format: str
    nb_streamlines: int
    nb_vertices: int
    groups: dict[str, int] = field(default_factory=dict)
    groups_sidecar: Path | None = None

    @property
    def files(self) -> list[Path]:
        """The output and its companion files."""
        return [self.path] + ([self.groups_sidecar] if self.groups_sidecar else [])

    def summary(self) -> str:
        """One line: ``out.trx: 6 streamlines, 40 vertices; groups: AF 3, CST 3``."""
        groups = ", ".join(f"{g} {n}" for g, n in sorted(self.groups.items()))
        return (f"{self.path}: {self.nb_streamlines} streamlines, {self.nb_vertices} vertices"
                + (f"; groups: {groups}" if groups else ""))


def output_format(path: str | os.PathLike, out_format: str | None = None) -> str:
    """The format an output's name (or ``out_format``) asks for; unknown suffixes refused.

    Raises
    ------
    UsageError
        If the suffix names no format.
    """
    if out_format is not None:
        return out_format
    try:
        return detect_format(path, for_output=True)
    except ValueError:
        known = ", ".join(s for s in SUFFIXES)
        raise UsageError(f"{path}: cannot tell the output format from its name; expected "
                         f"one of {known}, or no suffix (a TRX folder)") from None


def check_apart(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], *,
                folder: bool = False) -> None:
    """Refuse an output that is an input, lies inside an input TRX folder, or holds an input.

    Paths are compared after resolving links (``os.path.realpath``), so a link
    to an input or to a folder above it counts as that input or folder.
    ``folder``: the output is a folder that receives files (``split-groups``):
    inputs may lie in it, its files are checked one by one.

    Raises
    ------
    UsageError
        Naming the output and the input.
    """
    out = Path(os.path.realpath(output))
    for src in inputs:
        if src is None:
            continue
        real = Path(os.path.realpath(src))
        if out == real:
            raise UsageError(f"{output}: the output would overwrite the input {src}; "
                             "choose another output")
        if real.is_dir() and out.is_relative_to(real):
            raise UsageError(f"{output}: is inside the input TRX folder {src}; writing there "
                             "would change the input: choose an output outside it")
        if not folder and real.is_relative_to(out):
            raise UsageError(f"{output}: holds the input {src}; replacing it would delete "
                             "the input: choose another output")


def check_overwrite(path: Path, overwrite: bool) -> None:
    """Refuse what must never be replaced, and (unless ``overwrite``) anything that exists.

    Raises
    ------
    FileExistsError
        :func:`~trx_nipype.core.writer.check_replaceable`'s refusal (with or
        without ``overwrite``), or :class:`~trx_nipype.core.errors.OutputExistsError`.
    """
    check_replaceable(path)
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(f"{path}: exists; pass {param('overwrite', True)} to replace it")


def plan_output(out_path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                overwrite: bool = False, out_format: str | None = None,
                groups_from: tuple[str, Any] | None = None,
                encoding: Mapping[str, Any] | None = None) -> Output:
    """Check an output before any work (see the module docstring) and tell its format.

    Parameters
    ----------
    out_path : str or os.PathLike
        The output.
    inputs : iterable of paths
        Every input of the operation (references included); None entries skipped.
    overwrite : bool
        Replace an existing output (a tractogram only, whatever this says).
    out_format : str, optional
        The format, instead of the one the name tells.
    groups_from : (parameter, value), optional
        The parameter that asks for groups in the output (e.g.
        ``("group_by_input", True)``): a format without groups is then refused.
    encoding : mapping, optional
        TRX-only encoding parameters the caller set (``positions_dtype``...):
        refused for other formats, whose encoding is fixed.

    Returns
    -------
    Output

    Raises
    ------
    UsageError
        Unknown suffix, missing folder, an output among the inputs, groups or
        an encoding the format cannot hold.
    FileExistsError
        An existing output that may not be replaced.
    """
    path = Path(out_path)
    fmt = output_format(path, out_format)
    # a TRK's groups go in <name>.groups.json beside it: its name must fit as well
    limit = NAME_MAX - (len(SIDECAR_SUFFIX) if fmt == "trk" else 0)
    if len(path.name.encode("utf-8")) > limit:
        raise UsageError(f"{path.name[:40]}...: the output's name has "
                         f"{len(path.name.encode('utf-8'))} bytes; a {fmt.upper()} file name "
                         f"holds at most {limit}: choose a shorter name")
    _check_folder(path)
    check_apart(path, inputs)
    if groups_from is not None and fmt not in SPACED_FORMATS:
        name, value = groups_from
        raise UsageError(f"{path}: {fmt.upper()} files cannot hold groups, which "
                         f"{param(name, value)} asks for; write .trx, a TRX folder or .trk")
    check_encoding(path, fmt, encoding)
    check_overwrite(path, overwrite)
    return Output(path, fmt)


def check_encoding(output: str | os.PathLike, fmt: str,
                   encoding: Mapping[str, Any] | None) -> None:
    """Refuse TRX-only encoding parameters for an output of another format.

    Parameters
    ----------
    output : str or os.PathLike
        How the message names the output (its path, or the option that sets
        its format).
    fmt : str
        Its format (``"trx"``, ``"tck"``...: the second item of
        :data:`~trx_nipype.core.formats.OUTPUT_CHOICES`).
    encoding : mapping, optional
        The encoding parameters the caller set (``positions_dtype``,
        ``compression``...); None values are not set.

    Raises
    ------
    UsageError
        Naming the output and the first parameter set for a format that has
        its own encoding.
    """
    if fmt != "trx":
        for name, value in (encoding or {}).items():
            if value is not None:
                raise UsageError(f"{os.fspath(output)}: {param(name, value)} applies to TRX "
                                 f"outputs; a {fmt.upper()} file has its own encoding")


def _check_folder(path: Path) -> None:
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent}: the output's folder does not exist; create it first")


def _is_replaceable_tractogram(path: Path) -> bool:
    """A tractogram (file or TRX folder) or an empty folder: what :func:`check_replaceable`
    lets an output replace."""
    try:
        check_replaceable(path)
    except FileExistsError:
        return False
    return True


def check_result_output(out_path: str | os.PathLike, kind: str = "tractogram", *,
                        recognise: Callable[[Path], bool] | None = None,
                        inputs: Iterable[str | os.PathLike | None] = (),
                        overwrite: bool = False) -> Path:
    """Check the output of an analysis operation before any work (see the module docstring).

    Parameters
    ----------
    out_path : str or os.PathLike
        The output.
    kind : str
        What it is, for messages: ``"tractogram"`` (its name then picks its
        format, as for :func:`plan_output`), ``"NIfTI image"``, ``"profile table"``.
    recognise : callable, optional
        Whether an existing file is of that kind (required for kinds other
        than tractograms, which are recognised as :func:`plan_output` does).
    inputs : iterable of paths
        Every input of the operation; None entries skipped.
    overwrite : bool
        Replace an existing output of that kind.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    UsageError
        Unknown tractogram suffix, missing folder, an output among the inputs.
    FileExistsError
        A link, an existing file of another kind (never replaced), or (unless
        ``overwrite``) any existing output.
    """
    path = Path(out_path)
    if kind == "tractogram":
        output_format(path)
        recognise = _is_replaceable_tractogram
    elif recognise is None:
        raise TypeError(f"check_result_output: a {kind} needs recognise=")
    _check_folder(path)
    check_apart(path, inputs)
    if path.is_symlink():
        check_replaceable(path)  # never written through or over
    if not os.path.lexists(path):
        return path
    if not recognise(path):
        raise FileExistsError(f"{path}: exists and is not a {kind}; it is never replaced: "
                              "choose another output")
    if not overwrite:
        raise OutputExistsError(f"{path}: exists; add {param('overwrite', True)} to replace it")
    return path


def remove_tractogram(path: str | os.PathLike,
                      check: Callable[[Path], None] = check_replaceable) -> None:
    """Remove an output: a tractogram file or TRX folder (missing is fine), and a TRK's
    groups sidecar with it.

    ``check`` is the rule of what may go (default: a tractogram,
    :func:`~trx_nipype.core.writer.check_replaceable`).

    Raises
    ------
    FileExistsError
        If ``check`` refuses: nothing is removed.
    """
    path = Path(path)
    check(path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    if compound_suffix(path) in (".trk", ".trk.gz"):
        groups_sidecar_path(path).unlink(missing_ok=True)


def check_member_names(trx: TrxFile, dest: Path) -> None:
    """Refuse, before writing, keys too long to be file names in a TRX folder.

    Raises
    ------
    UsageError
        Naming the key, its length and the way out (a ``.trx`` zip).
    """
    keys = [("group", g) for g in trx.groups] + [("dps key", k) for k in trx.dps] + \
        [("dpv key", k) for k in trx.dpv] + [("dpg group", g) for g in trx.dpg] + \
        [("dpg key", k) for g in trx.dpg for k in trx.dpg[g]]
    for what, key in keys:
        size = len(key.encode("utf-8")) + len(".12345.float64")
        if size > NAME_MAX:
            shown = key if len(key) <= 40 else key[:40] + "..."
            raise UsageError(f"{dest}: {what} {shown!r} ({len(key)} characters) is too long to "
                             f"be a file name in a TRX folder (at most {NAME_MAX} bytes with "
                             "its dtype); write a .trx zip instead")


def write_tractogram(trx: TrxFile, output: Output, *, compression: str | None = None,
                     positions_dtype: Any = None, offsets_dtype: Any = None) -> Written:
    """Write a tractogram or a view in the output's format; return what was written.

    TRX is streamed by :func:`~trx_nipype.core.save`, other formats by
    :func:`~trx_nipype.core.convert` (straight from the view), which warns about
    what the format cannot hold; a TRK keeps the groups (in its ``.groups.json``
    sidecar).
    """
    path = output.path
    if output.format == "trx":
        if not output.is_zip:
            check_member_names(trx, path)
        save(trx, path, compression=compression or "stored", positions_dtype=positions_dtype,
             offsets_dtype=offsets_dtype)
    else:
        convert(trx, path, out_format=output.format, bbox_check=False)
    return written(trx, output)


def write_streams(header: Mapping[str, Any], members: list[MemberStream],
                  dest: str | os.PathLike) -> Path:
    """Write a header and member streams to ``dest``, in the format its extension names.

    ``.trx``/``.zip`` give a TRX zip and no extension a TRX directory, written
    by the one TRX writer; other formats (``.trk``, ``.tck``, ``.vtk``...) are
    converted from a private temporary TRX (removed at once), keeping what the
    format can hold. Atomic either way.
    """
    fmt = detect_format(dest, for_output=True)
    if fmt == "trx":
        return write_members(dest, header, members)
    tmp = make_temp_dir("analysis")
    try:
        staged = write_members(tmp / "staged.trx", header, members)
        # no bounding-box check: a TRX result gets none either, and its warning would
        # name this private copy and the Python API's keep_outside
        return convert(staged, dest, out_format=fmt, bbox_check=False)
    finally:
        remove_temp_dir(tmp)


def written(trx: TrxFile, output: Output) -> Written:
    """The :class:`Written` record of ``trx`` written as ``output``."""
    sidecar = None
    if output.format == "trk" and groups_sidecar_path(output.path).is_file():
        sidecar = groups_sidecar_path(output.path)
    groups = {g: len(i) for g, i in trx.groups.items()} if output.needs_space else {}
    return Written(output.path, output.format, len(trx), trx.nb_vertices, groups, sidecar)
