"""``trx-nipype report``: the HTML QC report of a run's output folder, or of one tractogram.

::

    trx-nipype report OUT_DIR                  # OUT_DIR/report.html, qc.tsv, figures/
    trx-nipype report FILE [-o PAGE.html]      # one self-contained page

``trx-nipype run`` ends with the same report of its output folder
(:func:`report_after_run`), with the failed nodes of the run; built again
from the folder alone, the page says that failures are not known.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..reports.measures import DEFAULT_MAX_STREAMLINES
from .options import EXIT_USAGE, positive_int


def add_parser(sub: Any) -> None:
    """Add the ``report`` command to the ``trx-nipype`` subparsers ``sub``, with its handler."""
    p = sub.add_parser(
        "report", help="an HTML QC report with figures: of a run's output folder, or of one "
                       "tractogram",
        description="With an output folder of 'trx-nipype run': write OUT_DIR/report.html "
                    "(per subject: its bundles drawn in three projections, counts, lengths; "
                    "for the population: subjects x bundles counts and mean lengths, "
                    "outliers flagged; provenance), its figures in OUT_DIR/figures/ and "
                    "OUT_DIR/qc.tsv, from the outputs alone. With a tractogram (TRX, TRK, "
                    "TCK, ...): one self-contained page (groups, counts, colours, "
                    "projections, lengths).")
    p.add_argument("input", metavar="OUT_DIR|FILE",
                   help="output folder of trx-nipype run, or a tractogram")
    p.add_argument("-o", "--output", metavar="PAGE.html",
                   help="a tractogram's page (default: <name>_report.html here); an output "
                        "folder's report is always OUT_DIR/report.html")
    p.add_argument("--reference", help="reference image for a tractogram without a space "
                                       "(TCK, ...)")
    p.add_argument("--max-streamlines", type=positive_int, default=DEFAULT_MAX_STREAMLINES,
                   metavar="N", help="streamlines drawn per figure at most: a seeded random "
                                     f"sample beyond (default: {DEFAULT_MAX_STREAMLINES})")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn sample (default 0)")
    p.add_argument("--nprocs", type=positive_int, metavar="N",
                   help="processes drawing an output folder's figures (default: one per "
                        "available CPU, a few at most, when there are many outputs; the same "
                        "bytes whatever the number)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=cmd_report)


def _usage_error(message: str) -> int:
    print(f"trx-nipype: error: report: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_report(args: argparse.Namespace) -> int:
    """``trx-nipype report OUT_DIR`` or ``trx-nipype report FILE [-o PAGE.html]``."""
    path = Path(args.input)
    if not path.exists():
        raise FileNotFoundError(f"{args.input}: no such file or directory")
    if args.reference is not None and not os.path.exists(args.reference):
        raise FileNotFoundError(f"{args.reference}: no such file or directory")
    if path.is_dir() and not (path / "header.json").is_file():  # not a TRX directory
        if args.output or args.reference:
            return _usage_error("-o/--output and --reference are for a tractogram's page; an "
                                "output folder's report is OUT_DIR/report.html")
        from ..reports.run_report import write_run_report

        files = write_run_report(path, None, max_streamlines=args.max_streamlines,
                                 seed=args.seed, echo=None if args.quiet else print,
                                 processes=args.nprocs)
        print(written_line(written_summary(files)))
        return 0
    from ..core.formats import SUFFIXES, compound_suffix
    from ..reports.tractogram import tractogram_report

    name = path.resolve().name
    ext = compound_suffix(name)
    page = args.output or f"{name[:-len(ext)] if ext in SUFFIXES else name}_report.html"
    if not page.lower().endswith((".html", ".htm")):
        return _usage_error(f"-o/--output must name an .html page, got {page!r}")
    out = tractogram_report(path, page, reference=args.reference,
                            max_streamlines=args.max_streamlines, seed=args.seed)
    print(out)
    return 0


def written_summary(files: Any) -> dict[str, Any]:
    """What a written report holds, for :func:`written_line` (JSON: a run record keeps it)."""
    return {"page": os.fspath(files.page), "figures": len(files.figures),
            "qc_tsv": os.fspath(files.qc_tsv), "rows": len(files.rows),
            "outliers": [f"{r.subject} {r.bundle}" for r in files.outliers]}


def written_line(summary: dict[str, Any]) -> str:
    """``report: OUT/report.html (14 figures); OUT/qc.tsv: 15 rows, 0 outlier(s)``."""
    outliers = summary["outliers"]
    return (f"report: {os.path.relpath(summary['page'])} ({summary['figures']} figures); "
            f"{os.path.relpath(summary['qc_tsv'])}: {summary['rows']} rows, "
            f"{len(outliers)} outlier(s)" + (f": {', '.join(outliers)}" if outliers else ""))


def report_after_run(out_dir: str | os.PathLike, run: Any,
                     say: Callable[[str], None], *, processes: int | None = None,
                     written: list[dict[str, Any]] | None = None) -> str | None:
    """The end of ``trx-nipype run``: ``OUT/report.html`` with the run's failed nodes.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The run's output folder.
    run : trx_nipype.workflows.runner.RunReport
        What the run did: its ``failures`` go on the page.
    say : callable
        Prints a progress line (or does nothing: ``--quiet``).
    processes : int, optional
        At most this many processes draw the figures (the run's ``--nprocs``);
        default: :func:`~trx_nipype.reports.run_report.drawing_processes`.
    written : list, optional
        Gets the :func:`written_summary` of the report once it is written.

    Returns
    -------
    str or None
        Why the report could not be written (one line), or None. The report is
        not a node: the caller says so apart from the failed nodes (and ends
        with exit status 1); the run's outputs stand.

    Notes
    -----
    Nothing is drawn when a cluster's graph plugin took the jobs and returned
    (no results yet): ``trx-nipype report OUT`` draws it once they finish.
    """
    from ..reports.run_report import write_run_report
    from ..workflows.runner import LOCAL_PLUGINS

    if run.plugin not in LOCAL_PLUGINS and not run.events:
        say(f"report: not yet (jobs handed to {run.plugin}); when they have finished: "
            f"trx-nipype report {os.path.relpath(out_dir)}")
        return None
    try:
        files = write_run_report(out_dir, run.failures, echo=None, processes=processes)
    except Exception as exc:  # the run's outputs stand; say why there is no report
        return " ".join(str(exc).split()) or type(exc).__name__
    summary = written_summary(files)
    say(written_line(summary))
    if written is not None:
        written.append(summary)
    return None
