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

from ..core.dtypes import OFFSET_DTYPES, POSITION_DTYPES
from ..core.formats import OUTPUT_CHOICES

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3



def _encoding(p: argparse.ArgumentParser, offsets: bool = True) -> None:
    p.add_argument("--positions-dtype", choices=POSITION_DTYPES,
                   help="dtype of the output positions (TRX output; default: the input's)")
    if offsets:
        p.add_argument("--offsets-dtype", choices=OFFSET_DTYPES,
                       help="dtype of the output offsets (TRX output; default: the input's)")
    p.add_argument("--compression", choices=("stored", "deflate"),
                   help="zip compression of a .trx output (default: stored, memory-mappable)")


def _writes(p: argparse.ArgumentParser, what: str = "the output") -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help=f"replace {what} if it exists (only ever a tractogram; never a "
                        "folder of other files or a file of another kind)")


_OUTPUT_HELP = ("output; its extension picks the format: .trx (zip), .trk, .tck, .vtk, ... "
                "(no extension: a TRX folder)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``trx-nipype``."""
    from .. import __version__
    from .run import positive_int, seconds, streamlines_per_subject

    parser = argparse.ArgumentParser(
        prog="trx-nipype",
        description="Memory-mapped TRX tractograms: single operations, and Nipype pipelines "
                    "over datasets.",
        epilog="Exit codes: 0 ok, 1 processing error, 2 usage error, 3 invalid input.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("info", help="summarize tractograms (counts, space, groups, data)")
    p.add_argument("inputs", nargs="+", metavar="FILE", help="TRX (zip or folder) or TRK, TCK...")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--reference", help="reference image for formats without a space (TCK...)")

    p = sub.add_parser("validate", help="check TRX files against the format (exit 3 if not)")
    p.add_argument("inputs", nargs="+", metavar="FILE")
    p.add_argument("--deep", action="store_true",
                   help="also read every member (CRCs, finite coordinates)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")

    p = sub.add_parser("convert", help="convert between TRX, TRK, TCK, VTK, ...")
    p.add_argument("input", help="tractogram to convert")
    p.add_argument("output", help="destination; its extension gives the format "
                                  "(no extension: a TRX folder)")
    _writes(p)
    p.add_argument("--reference", help="reference image (NIfTI) for formats without a space")
    p.add_argument("--no-bbox-check", action="store_true",
                   help="do not check that streamlines lie inside the reference grid")
    p.add_argument("--drop-outside", action="store_true",
                   help="drop streamlines outside the reference grid (default: keep, warn)")
    _encoding(p)

    p = sub.add_parser("concatenate", help="concatenate tractograms into one")
    p.add_argument("inputs", nargs="+", metavar="FILE",
                   help="tractograms (TRX, TRK, TCK, ...), in output order")
    p.add_argument("-o", "--output", required=True, help=_OUTPUT_HELP)
    _writes(p)
    p.add_argument("--reference", help="reference image for inputs without a space (TCK...)")
    p.add_argument("--group-by-input", action="store_true",
                   help="add one group per input (named after the input's file)")
    p.add_argument("--group-names", nargs="+", metavar="NAME",
                   help="names of those groups (one per input)")
    p.add_argument("--delete-dps", action="store_true",
                   help="drop data-per-streamline keys not shared by every input")
    p.add_argument("--delete-dpv", action="store_true",
                   help="drop data-per-vertex keys not shared by every input")
    p.add_argument("--delete-groups", action="store_true", help="drop the inputs' groups")
    p.add_argument("--delete-dpg", action="store_true",
                   help="drop data-per-group entries that conflict between inputs")
    p.add_argument("--select-group", nargs="+", metavar="GROUP",
                   help="take only this group from every input (or one group per input); "
                        "the inputs' groups are then dropped")
    p.add_argument("--nb-streamlines", type=streamlines_per_subject, metavar="N|min",
                   help="keep a seeded random N streamlines of every (selected) input, in "
                        "file order ('min': the smallest input's count)")
    p.add_argument("--seed", type=int, default=0, help="seed of --nb-streamlines")
    _encoding(p)

    p = sub.add_parser("select-group", help="keep the streamlines of one or more groups")
    p.add_argument("input", help="tractogram with groups (TRX, or TRK with its .groups.json)")
    p.add_argument("groups", nargs="+", metavar="GROUP")
    p.add_argument("-o", "--output", required=True, help=_OUTPUT_HELP)
    _writes(p)
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep-groups", action="store_true",
                      help="keep the group memberships (re-indexed) and their dpg in the "
                           "output (default: the output is the selection, without groups)")
    keep.add_argument("--drop-groups", dest="keep_groups", action="store_false",
                      help=argparse.SUPPRESS)  # the default since 0.2; older scripts pass it
    p.set_defaults(keep_groups=False)
    _encoding(p, offsets=False)

    p = sub.add_parser("resize", help="keep N streamlines (first N or a seeded random subset), "
                                      "or trim unused capacity")
    p.add_argument("input", help="tractogram (TRX, TRK, TCK, ...)")
    p.add_argument("-o", "--output", required=True, help=_OUTPUT_HELP)
    _writes(p)
    p.add_argument("--reference", help="reference image for an input without a space (TCK...) "
                                       "written as TRX or TRK")
    p.add_argument("-n", "--nb-streamlines", type=int, help="streamlines to keep")
    p.add_argument("--random", action="store_true", help="a random subset, in file order")
    p.add_argument("--seed", type=int, default=0, help="seed of the random subset")
    _encoding(p, offsets=False)

    p = sub.add_parser("split-groups", help="write one file per group")
    p.add_argument("input", help="tractogram with groups (TRX, or TRK with its .groups.json)")
    p.add_argument("-o", "--output", required=True,
                   help="output folder (created if missing), for <input>_<group>.<format>")
    _writes(p, "files that exist")
    p.add_argument("--format", choices=list(OUTPUT_CHOICES), default="trx",
                   help="format of the files (default: trx)")
    p.add_argument("--reference", help="reference image for formats that need one")

    from .analysis import add_analysis_commands

    add_analysis_commands(sub)

    p = sub.add_parser(
        "run", help="run a pipeline over a dataset (default: the demo data)",
        description="Run a pipeline over a dataset laid out as sub-*/[ses-*/]dwi/* (one "
                    "tractogram per bundle, named after its tract-/bundle- entity or its file "
                    "name; one NIfTI per folder is its reference). Without "
                    "INPUT_DIR, the demo data: dipy's minimal_bundles (5 subjects x 3 "
                    "bundles). Pipelines: 'bundles' (one TRX per subject with one group per "
                    "bundle, then one TRX per bundle with one group per subject) and "
                    "'convert' (every file to --out-format).")
    p.add_argument("input_dir", nargs="?", metavar="INPUT_DIR",
                   help="dataset folder (default: the demo data, extracted in the work dir)")
    p.add_argument("--output-dir", required=True, help="derivatives folder to write")
    p.add_argument("--work-dir", help="Nipype's cache, reused across runs (default: "
                                      "OUTPUT_DIR-work, beside the output folder)")
    p.add_argument("--pipeline", choices=("bundles", "convert"), default="bundles")
    p.add_argument("--pattern", action="append",
                   help="glob of the bundle files, relative to INPUT_DIR (repeatable; "
                        "default: sub-*/dwi/* and sub-*/ses-*/dwi/*)")
    p.add_argument("--subjects", nargs="+", metavar="SUB",
                   help="process only these subjects (sub-01 or 01)")
    p.add_argument("--reference", help="reference image for every subject")
    p.add_argument("--reference-pattern", metavar="GLOB",
                   help="each subject's reference image, relative to INPUT_DIR, with {subject} "
                        "and {session} (labels without sub-/ses-): e.g. "
                        "'sub-{subject}/dwi/*_FA.nii.gz' when a dwi folder holds several "
                        "images; it must match one file per subject")
    p.add_argument("--streamlines-per-subject", type=streamlines_per_subject, metavar="N|min",
                   help="bundles pipeline: a seeded random N streamlines per subject in the "
                        "population files ('min': the smallest subject's count)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random subsets")
    p.add_argument("--no-population", action="store_true",
                   help="bundles pipeline: only the per-subject files")
    p.add_argument("--out-format", choices=list(OUTPUT_CHOICES), default="trx",
                   help="convert pipeline: output format (default: trx)")
    _encoding(p, offsets=False)
    p.set_defaults(compression="stored")  # trx-nipype run tells the default from a choice
    p.add_argument("--plugin", default="Linear", type=_plugin_name,
                   help="Nipype plugin: Linear (default), MultiProc, SLURMGraph, SGEGraph, "
                        "PBSGraph, SLURM, ...")
    p.add_argument("--plugin-args", metavar="JSON",
                   help='plugin options as JSON, e.g. \'{"sbatch_args": "--mem=4G"}\'')
    p.add_argument("--nprocs", type=positive_int, help="processes for MultiProc")
    p.add_argument("--wait-for-lock", nargs="?", type=seconds, default=0.0, const=None,
                   metavar="SECONDS",
                   help="when another run holds the output or work folder, wait for it to end "
                        "(at most SECONDS; no value: as long as it takes) instead of stopping "
                        "at once with exit code 2")
    p.add_argument("--hash-method", choices=("timestamp", "content"),
                   help="how Nipype's cache tells that an input changed: 'timestamp' "
                        "(default: size and modification time; an edit that keeps both is "
                        "not seen) or 'content' (the bytes; tractograms through a digest "
                        "cache, so a cached rerun reads no input again)")
    p.add_argument("--no-wait", action="store_true",
                   help="graph plugins (SLURMGraph, ...): submit the jobs and return, without "
                        "following them (default: wait until they are done and report them "
                        "as Linear does)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("-v", "--verbose", action="store_true", help="Nipype's own logging too")
    p.add_argument("--no-report", action="store_true",
                   help="do not write OUTPUT_DIR/report.html, qc.tsv and figures/")
    from .report import add_report_parser

    add_report_parser(sub)
    from .compare import add_parsers as add_compare_parsers

    add_compare_parsers(sub)  # compare, manifest (their handler set as a default)
    return parser


_COMMANDS = {"info": "cmd_info", "validate": "cmd_validate", "convert": "cmd_convert",
             "concatenate": "cmd_concatenate", "select-group": "cmd_select_group",
             "resize": "cmd_resize", "split-groups": "cmd_split_groups"}


def _one_line(exc: BaseException | Warning | str, command: str) -> str:
    """The message of an error or warning on one line, in this command's words."""
    from ..core.errors import ParameterMessage
    from .ops import spelling

    if isinstance(exc, ParameterMessage):
        text = exc.render(spelling(command))
    elif isinstance(exc, KeyError) and exc.args:
        text = exc.args[0]
    else:
        text = str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def _plugin_name(text: str) -> str:
    """A Nipype execution plugin's name (``MultiProc``, ``SLURMGraph``...), checked."""
    from nipype.pipeline import plugins

    name = text.removesuffix("Plugin")
    if not hasattr(plugins, f"{name}Plugin"):
        known = sorted(n.removesuffix("Plugin") for n in dir(plugins) if n.endswith("Plugin")
                       and n != "Plugin")
        raise argparse.ArgumentTypeError(f"unknown Nipype plugin {text!r}; one of "
                                         f"{', '.join(known)}")
    return name


def _exit_code(exc: BaseException) -> int:
    from ..core.errors import UsageError

    if isinstance(exc, UsageError | FileExistsError):  # FileExistsError: an output we keep
        return EXIT_USAGE
    if isinstance(exc, FileNotFoundError | KeyError | ValueError | IsADirectoryError):
        return EXIT_INVALID  # TrxFormatError, DatasetError and unknown groups included
    return EXIT_FAILED


def _warning_printer(command: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints one line in ``command``'s words."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: object = None, line: str | None = None) -> None:
        print(f"trx-nipype: warning: {_one_line(message, command)}", file=sys.stderr)

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
            if hasattr(args, "handler"):
                code = args.handler(args)
            elif args.command == "run":
                from .run import cmd_run

                code = cmd_run(args)
            elif args.command == "report":
                from .report import cmd_report

                code = cmd_report(args)
            else:
                from . import analysis, ops

                command = analysis.COMMANDS.get(args.command) or getattr(
                    ops, _COMMANDS[args.command])
                code = command(args)
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
    code = _exit_code(exc)
    if args.traceback:  # the traceback, then the same line and exit code
        traceback.print_exc()
    prefix = f"{args.command}: " if code == EXIT_USAGE else ""
    print(f"trx-nipype: error: {prefix}{_one_line(exc, args.command)}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
