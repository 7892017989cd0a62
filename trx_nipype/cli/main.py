"""The ``trx-nipype`` command.

Single operations run straight on the core (no Nipype)::

    trx-nipype info in.trx [--json]
    trx-nipype validate in.trx [more.trx ...] [--deep] [--json]
    trx-nipype convert in.trk out.trx [--reference ref.nii.gz]
    trx-nipype concatenate a.trx b.trk -o out.trx [--group-by-input [--group-names A B]]
        [--select-group AF_L [--nb-streamlines N|min [--seed 0]]]
    trx-nipype select-group in.trx G1 [G2 ...] -o out.trk [--keep-groups]
    trx-nipype resize in.tck -o out.tck [-n 1000 [--random --seed 0]]
    trx-nipype split-groups in.trx -o folder/ [--format trk]

Inputs may be in any readable format (TRX zip or folder, TRK, TCK, VTK, ...); the
output's extension picks its format (``.trx`` zip, ``.trk``, ``.tck``, ...; none: a
TRX folder). An existing output is replaced only with ``-f/--force``, and only when
it is a tractogram; no output may lie inside an input TRX folder.

Tractography analysis (see :mod:`trx_nipype.cli.analysis`)::

    trx-nipype filter in.trx -o out.trx [--min-length 20] [--include roi.nii.gz] ...
    trx-nipype density in.trx -o density.nii.gz [--reference t1.nii.gz] [--binary]
    trx-nipype sample in.trx fa.nii.gz -o out.trx --name fa
    trx-nipype profile in.trx fa.nii.gz -o profiles.csv [--points 100]
    trx-nipype resample in.trx -o out.trx (--points 20 | --step 1.0)

Pipelines over a dataset (Nipype; the demo data when no folder is given)::

    trx-nipype run [INPUT_DIR] --output-dir OUT [--work-dir WORK] [--plugin MultiProc]

Regression checks of outputs (by content)::

    trx-nipype compare A B [--atol MM] [--json]
    trx-nipype manifest DIR -o expected.json
    trx-nipype manifest --check expected.json DIR [--atol MM]

QC reports (HTML with figures)::

    trx-nipype report OUT_DIR | FILE [-o PAGE.html]

Exit codes
----------
0
    Success.
1
    Processing error: a pipeline node failed, an output could not be written;
    for ``compare`` and ``manifest --check``: the compared things differ.
2
    Usage error: unknown option, bad option value (argparse's code).
3
    Invalid input: a missing file, a malformed tractogram, an unknown group,
    a missing or mismatched reference, an unusable dataset folder.

Errors are printed as one line on stderr, ``trx-nipype: error: <what>``,
without a traceback (``--traceback`` shows it; the exit code is the same). A
closed output pipe (``trx-nipype info x | head -1``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence

from . import analysis, compare, ops, report, run
from .options import EXIT_OK, EXIT_USAGE, exit_code, one_line


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``trx-nipype``: each command's module adds its own, with the
    function that runs it (``handler``)."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="trx-nipype",
        description="Memory-mapped TRX tractograms: single operations, and Nipype pipelines "
                    "over datasets.",
        epilog="Exit codes: 0 ok, 1 processing error, 2 usage error, 3 invalid input.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    ops.add_parsers(sub)  # info, validate, convert, concatenate, select-group, resize, ...
    analysis.add_parsers(sub)  # filter, density, sample, profile, resample
    run.add_parser(sub)
    report.add_parser(sub)
    compare.add_parsers(sub)  # compare, manifest
    return parser


def _warning_printer(command: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints one line in ``command``'s words."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: object = None, line: str | None = None) -> None:
        print(f"trx-nipype: warning: {one_line(message, command)}", file=sys.stderr)

    return show


def _stdout_broken() -> bool:
    """Whether stdout is a pipe whose reader has gone (the broken pipe was ours to print to,
    not one of the work's)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll, or no real stdout
        return True


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``| head``): stop quietly, print nothing more."""
    try:  # later writes (and the flush at exit) go nowhere instead of failing again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (captured in tests)
        pass
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``trx-nipype``; return the exit code (see the module docstring)."""
    os.environ.setdefault("NIPYPE_NO_ET", "1")  # no network: skip Nipype's version check
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(args.command)
        try:
            code = args.handler(args)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return code
        except BrokenPipeError as exc:
            if _stdout_broken():
                return _quiet_broken_pipe()
            return _report(exc, args)
        except KeyboardInterrupt:
            print("trx-nipype: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            return _report(exc, args)


def _report(exc: BaseException, args: argparse.Namespace) -> int:
    """Print an error as one line (after its traceback with ``--traceback``); its exit code."""
    code = exit_code(exc)
    if args.traceback:  # the traceback, then the same line and exit code
        traceback.print_exc()
    prefix = f"{args.command}: " if code == EXIT_USAGE else ""
    print(f"trx-nipype: error: {prefix}{one_line(exc, args.command)}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
