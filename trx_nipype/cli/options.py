"""What every ``trx-nipype`` command shares: exit codes, option types, option names.

The command modules (:mod:`.ops`, :mod:`.analysis`, :mod:`.run`, :mod:`.report`,
:mod:`.compare`) each add their parsers and handlers; :mod:`.main` puts them
together and turns errors into one line and an exit code. They all import
this module, and it imports none of them.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable

from ..core.dtypes import OFFSET_DTYPES, POSITION_DTYPES
from ..core.errors import python_spelling

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3

#: operation parameter -> the option that sets it, for every command and per command;
#: ``name=value`` keys spell one value (``keep_outside=False`` is ``--drop-outside``)
OPTIONS: dict[str, dict[str, str]] = {
    "*": {"overwrite": "-f/--force", "reference": "--reference", "out_path": "-o/--output",
          "compression": "--compression", "positions_dtype": "--positions-dtype",
          "offsets_dtype": "--offsets-dtype"},
    "concatenate": {"in_paths": "FILE", "group_by_input": "--group-by-input",
                    "group_names": "--group-names", "delete_dps": "--delete-dps",
                    "delete_dpv": "--delete-dpv", "delete_groups": "--delete-groups",
                    "delete_dpg": "--delete-dpg", "groups": "--select-group",
                    "nb_streamlines": "--nb-streamlines", "seed": "--seed"},
    "select-group": {"groups": "GROUP", "keep_groups": "--keep-groups"},
    "resize": {"nb_streamlines": "-n/--nb-streamlines", "random": "--random",
               "seed": "--seed"},
    "split-groups": {"out_format": "--format", "out_dir": "-o/--output"},
    "sample": {"name": "--name"},
    "manifest": {"manifest": "--check", "force": "-f/--force"},
    "run": {"output_dir": "--output-dir", "work_dir": "--work-dir"},
    "filter": {"min_length": "--min-length", "max_length": "--max-length"},
    "resample": {"nb_points": "--points", "step": "--step", "drop_dpv": "--drop-dpv"},
    "convert": {"keep_outside=False": "--drop-outside", "keep_outside": "--drop-outside",
                "bbox_check=False": "--no-bbox-check", "bbox_check": "--no-bbox-check"},
}

#: the help of a tractogram output option
OUTPUT_HELP = ("output; its extension picks the format: .trx (zip), .trk, .tck, .vtk, ... "
               "(no extension: a TRX folder)")


def spelling(command: str) -> Callable[[str, str | None], str]:
    """How ``command`` names an operation's parameter: ``reference=`` -> ``--reference``.

    >>> spell = spelling("resize")
    >>> spell("nb_streamlines", "99"), spell("overwrite", "True"), spell("random", "True")
    ('-n/--nb-streamlines 99', '-f/--force', '--random')
    >>> spelling("convert")("keep_outside", "False"), spelling("info")("reference", None)
    ('--drop-outside', '--reference')
    """
    table = {**OPTIONS["*"], **OPTIONS.get(command, {})}

    def spell(name: str, value: str | None) -> str:
        if value is not None and f"{name}={value}" in table:
            return table[f"{name}={value}"]
        option = table.get(name)
        if option is None:
            return python_spelling(name, value)
        if value is None or value == "True":
            return option
        try:
            shown = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            shown = value
        return f"{option} {shown}"

    return spell


def one_line(exc: BaseException | Warning | str, command: str) -> str:
    """The message of an error or warning on one line, in ``command``'s words.

    Parameters
    ----------
    exc : BaseException, Warning or str
        What to say; a message naming parameters is rendered with :func:`spelling`.
    command : str
        The ``trx-nipype`` command (``"convert"``...).

    Returns
    -------
    str
        One line, without a trailing newline.
    """
    from ..core.errors import ParameterMessage

    if isinstance(exc, ParameterMessage):
        text = exc.render(spelling(command))
    elif isinstance(exc, KeyError) and exc.args:
        text = exc.args[0]
    else:
        text = str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def exit_code(exc: BaseException) -> int:
    """The exit code of an error (see :mod:`trx_nipype.cli.main`).

    Parameters
    ----------
    exc : BaseException
        The error that ended the command.

    Returns
    -------
    int
        :data:`EXIT_USAGE`, :data:`EXIT_INVALID` or :data:`EXIT_FAILED`.
    """
    from ..core.errors import UsageError

    if isinstance(exc, UsageError | FileExistsError):  # FileExistsError: an output we keep
        return EXIT_USAGE
    if isinstance(exc, FileNotFoundError | KeyError | ValueError | IsADirectoryError):
        return EXIT_INVALID  # TrxFormatError, DatasetError and unknown groups included
    return EXIT_FAILED


# ------------------------------------------------------------------ option types
def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def streamlines_per_subject(text: str | None) -> int | str | None:
    """``--streamlines-per-subject``: a positive int, ``min`` or nothing."""
    if text is None or text == "min":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'min', "
                                         f"got {text!r}") from None


# ------------------------------------------------------------------ shared options
def add_encoding(p: argparse.ArgumentParser, offsets: bool = True) -> None:
    """``--positions-dtype``, ``--offsets-dtype`` and ``--compression`` (TRX outputs)."""
    p.add_argument("--positions-dtype", choices=POSITION_DTYPES,
                   help="dtype of the output positions (TRX output; default: the input's)")
    if offsets:
        p.add_argument("--offsets-dtype", choices=OFFSET_DTYPES,
                       help="dtype of the output offsets (TRX output; default: the input's)")
    p.add_argument("--compression", choices=("stored", "deflate"),
                   help="zip compression of a .trx output (default: stored, memory-mappable)")


def add_reference(p: argparse.ArgumentParser, what: str) -> None:
    """``--reference IMG``: the space of an input without one (TCK...), and ``what`` else."""
    p.add_argument("--reference", metavar="IMG",
                   help=f"reference image (NIfTI; or a TRK or TRX file): {what}")


def add_force(p: argparse.ArgumentParser, what: str = "the output if it exists") -> None:
    """``-f/--force``: replace an existing output (a tractogram only); ``what`` says which."""
    p.add_argument("-f", "--force", action="store_true",
                   help=f"replace {what} (only ever a tractogram; never a "
                        "folder of other files or a file of another kind)")
