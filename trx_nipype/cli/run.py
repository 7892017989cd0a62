"""``trx-nipype run``: a pipeline over a dataset, with a reusable Nipype cache."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..core.errors import UsageError
from ..core.formats import OUTPUT_CHOICES
from ..workflows.runrecord import record_path
from .options import add_encoding, positive_int, seconds, streamlines_per_subject

#: where the demo dataset is extracted, inside the work dir
DEMO_FOLDER = "demo-data"


def _print_line(line: str) -> None:
    print(line, flush=True)


def _echo(quiet: bool) -> Any:
    return None if quiet else _print_line


def plugin_args(text: str | None) -> dict[str, Any]:
    """``--plugin-args`` JSON -> dict (a usage error if it is not a JSON object)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--plugin-args is not valid JSON ({exc.msg}): {text}") from None
    if not isinstance(value, dict):
        raise UsageError(f"--plugin-args must be a JSON object, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``run`` to ``trx-nipype``'s subparsers, with its handler."""
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
    add_encoding(p, offsets=False)
    p.set_defaults(compression="stored")  # trx-nipype run tells the default from a choice
    p.add_argument("--plugin", default="Linear", type=_plugin_name,
                   help="Nipype plugin: Linear (default), MultiProc, SLURMGraph, SGEGraph, "
                        "PBSGraph, SLURM, ...")
    p.add_argument("--plugin-args", metavar="JSON",
                   help='plugin options as JSON, e.g. \'{"sbatch_args": "--mem=4G"}\'')
    p.add_argument("--nprocs", type=positive_int,
                   help="processes for MultiProc (and at most for drawing the report)")
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
    p.set_defaults(handler=cmd_run)


def _plugin_name(text: str) -> str:
    """A Nipype execution plugin's name (``MultiProc``, ``SLURMGraph``...), checked."""
    from ..workflows.runner import NIPYPE_PLUGINS

    name = text.removesuffix("Plugin")
    if name in NIPYPE_PLUGINS:  # (importing Nipype takes half a second)
        return name
    from nipype.pipeline import plugins

    if not hasattr(plugins, f"{name}Plugin"):
        known = sorted(n.removesuffix("Plugin") for n in dir(plugins) if n.endswith("Plugin")
                       and n != "Plugin")
        raise argparse.ArgumentTypeError(f"unknown Nipype plugin {text!r}; one of "
                                         f"{', '.join(known)}")
    return name


def _some(names: list[str], most: int = 8) -> str:
    """``a, b, c`` or, for long lists, ``a, b, c, ..., y, z``."""
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join([*names[:3], "...", *names[-2:]])


def closing_line(report: Any, report_failed: bool) -> str:
    """What went wrong in a run, counted by kind: failed nodes, and the QC report (not a node).

    >>> from trx_nipype.workflows.runner import Failure, RunReport
    >>> closing_line(RunReport("w", "Linear"), True)
    'the QC report was not written (every node succeeded: 0 nodes ran, 0 cached, 0 failed in 0.0 s)'
    >>> run = RunReport("w", "Linear", failures=[Failure("assemble", "sub-01", "bad", "")])
    >>> closing_line(run, True)
    '1 node(s) failed (0 nodes ran, 0 cached, 1 failed in 0.0 s) and the QC report was not written'
    """
    if not report.failures:
        return f"the QC report was not written (every node succeeded: {report.summary()})"
    return (f"{len(report.failures)} node(s) failed ({report.summary()})"
            + (" and the QC report was not written" if report_failed else ""))


def cmd_run(args: argparse.Namespace) -> int:
    """Lock the work dir and the output folder, then run the pipeline (:func:`run_locked`)."""
    from ..core.operations.compare import WORK_DIR_MARKER
    from ..core.tempfiles import install_sigterm_cleanup
    from ..workflows.derivatives import check_description
    from ..workflows.runlock import RunLockedError, run_lock
    from ..workflows.runner import GRAPH_PLUGINS, default_work_dir
    extra = plugin_args(args.plugin_args)
    if args.no_wait and args.plugin not in GRAPH_PLUGINS:
        raise UsageError(f"--no-wait applies to graph plugins ({', '.join(GRAPH_PLUGINS)}), whose "
                     f"jobs run on their own; {args.plugin} runs the pipeline from this "
                     f"process")
    out_dir = Path(args.output_dir).absolute()
    echo = _echo(args.quiet)
    say = echo or (lambda line: None)
    work_dir = Path(args.work_dir).absolute() if args.work_dir else default_work_dir(out_dir)
    check_run_options(args)
    work_option = (f"--work-dir {args.work_dir}" if args.work_dir else
                   f"the work dir {work_dir} (the default, beside --output-dir; give another "
                   f"with --work-dir)")
    check_run_folders(args.input_dir, (f"--output-dir {args.output_dir}", out_dir),
                      (work_option, work_dir))
    check_description(out_dir)  # another dataset's description: refused before any work
    old = out_dir / "work"
    if not args.work_dir and (old / WORK_DIR_MARKER).exists():
        print(f"trx-nipype: warning: {old} is the work dir of an earlier version (inside "
              f"the output folder, where its results held the environment); this run "
              f"uses {work_dir}: delete {old}", file=sys.stderr)
    install_sigterm_cleanup()  # a SIGTERM ends the run through its clean-up: locks released

    def waiting(holder: Any, folder: Path) -> None:
        who = holder.describe() if holder else "a process that did not say who it is"
        say(f"waiting for the run that holds {folder}: {who}")

    try:
        with run_lock([work_dir, out_dir], wait=args.wait_for_lock, purpose="trx-nipype run",
                      waiting=waiting, option="--wait-for-lock [SECONDS]"):
            return run_locked(args, out_dir, work_dir, extra, echo)
    except RunLockedError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # creating a folder (or one of its parents) failed
        made = Path(os.path.abspath(exc.filename)) if isinstance(exc.filename, str) else None
        for option, folder in ((work_option, work_dir), (f"--output-dir {args.output_dir}",
                                                         out_dir)):
            if made is not None and folder.is_relative_to(made):
                raise UsageError(f"{option}: cannot create it ({exc.strerror or exc})"
                                 ) from None
        raise


def check_run_options(args: argparse.Namespace) -> None:
    """Refuse options that the chosen pipeline would not use, or that its outputs cannot hold.

    Parameters
    ----------
    args : argparse.Namespace
        ``trx-nipype run``'s arguments.

    Raises
    ------
    UsageError
        Naming the options: encoding options with the bundles pipeline, or
        with a ``--out-format`` that has its own encoding (the check of the
        ``convert`` command, :func:`~trx_nipype.core.operations.outputs.check_encoding`);
        bundles-only options with the convert pipeline.
    """
    from ..core.operations.outputs import check_encoding

    if args.pipeline == "bundles" and (args.positions_dtype or args.compression != "stored"):
        raise UsageError("--positions-dtype and --compression apply to --pipeline convert; "
                         "the bundles pipeline writes stored TRX in the inputs' dtypes")
    if args.pipeline == "convert":
        bundles_only = [option for option, given in (
            ("--streamlines-per-subject", args.streamlines_per_subject is not None),
            ("--no-population", args.no_population)) if given]
        if bundles_only:
            verb = "applies" if len(bundles_only) == 1 else "apply"
            raise UsageError(f"{' and '.join(bundles_only)} {verb} to --pipeline bundles; the "
                             f"convert pipeline converts every file whole")
        given = {"compression": None if args.compression == "stored" else args.compression,
                 "positions_dtype": args.positions_dtype}
        check_encoding(f"--out-format {args.out_format}", OUTPUT_CHOICES[args.out_format][1],
                       given)


def check_run_folders(input_dir: str | None, output: tuple[str, Path],
                      work: tuple[str, Path]) -> None:
    """Refuse folders of a run that are files, or that overlap where they must not.

    The output folder must not be or hold INPUT_DIR (the dataset's own files
    could be replaced, and the outputs read as inputs by the next run); the
    work dir (Nipype's cache, with absolute paths) must not be, be inside or
    hold the output folder, nor be or hold INPUT_DIR. Both may lie inside
    INPUT_DIR (BIDS's ``derivatives/``): the dataset search leaves this tool's
    output and work folders out. The demo data, extracted inside the work dir,
    is the one input that lives there.

    Parameters
    ----------
    input_dir : str or None
        INPUT_DIR as given (None: the demo data).
    output, work : (str, pathlib.Path)
        How the message names the folder (``"--output-dir out"``) and the folder.

    Raises
    ------
    UsageError
        Naming the option, the folder and the problem.
    """
    folders = [output, work]
    if input_dir is not None:
        folders.insert(0, (f"INPUT_DIR {input_dir}", Path(input_dir).absolute()))
    for name, folder in folders:
        _check_not_a_file(name, folder)
    real = {name: Path(os.path.realpath(folder)) for name, folder in folders}
    # (folder, other, may it lie inside the other, why not)
    pairs = [(work, output, False, "Nipype's cache (absolute paths, crash files) does not "
                                   "belong in the shareable output folder, nor outputs in "
                                   "the cache")]
    if input_dir is not None:
        pairs[:0] = [(output, folders[0], True, "the outputs could replace the dataset's own "
                                                "files, and be read as inputs by the next run")]
        pairs.append((work, folders[0], True, "Nipype's cache does not belong in the dataset's "
                                              "own folder, nor the dataset in the cache"))
    for (name, _), (other, _), inside_ok, why in pairs:
        a, b = real[name], real[other]
        how = ("is the same folder as" if a == b else
               "" if inside_ok and a.is_relative_to(b) else
               "is inside" if a.is_relative_to(b) else "holds" if b.is_relative_to(a) else "")
        if how:
            option = name.split(" ")[0] if name.startswith("--") else "--work-dir"
            where = (f"a folder of its own inside {other.split(' ')[0]} (such as "
                     f"derivatives/trx-nipype) or outside it" if inside_ok else
                     f"outside {other.split(' ')[0]}, and not holding it")
            raise UsageError(f"{name}: {how} {other}; {why}: choose {option} {where}")


def _check_not_a_file(name: str, folder: Path) -> None:
    """Refuse a folder that is a file, or whose nearest existing parent is one."""
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            if not path.is_dir():
                where = "" if path == folder else f" its parent {path}"
                raise UsageError(f"{name}:{where} is a file, not a folder")
            return


def known_count(path: str) -> int | None:
    """Streamlines of a bundle file when its header tells them cheaply, else None.

    TRX (its header and offsets), uncompressed TRK and TCK (their headers,
    checked against the file's size); other files are counted while the run
    reads them.
    """
    from ..core import load
    from ..core.blockwrite import predicted_counts
    from ..core.formats import detect_format

    try:
        if detect_format(path) == "trx":
            with load(path) as trx:
                return len(trx)
        counts = predicted_counts(path)
    except (OSError, ValueError):  # unreadable: the run says why
        return None
    return counts[0] if counts else None


def check_streamlines_per_subject(args: argparse.Namespace, dataset: Any) -> None:
    """Refuse ``--streamlines-per-subject N`` larger than a bundle file, before any work.

    Only the files whose counts are cheap to know (:func:`known_count`) are
    looked at; the others fail in the run, per bundle.

    Raises
    ------
    UsageError
        Naming the option, the subject, the bundle, its file and its count.
    """
    wanted = args.streamlines_per_subject
    if args.pipeline != "bundles" or args.no_population or not isinstance(wanted, int):
        return
    for s in dataset.subjects:
        for bundle, path in zip(s.bundles, s.files, strict=True):
            have = known_count(path)
            if have is not None and have < wanted:
                raise UsageError(f"--streamlines-per-subject {wanted}: {s.label}'s bundle "
                                 f"{bundle} ({path}) has {have} streamlines; the population "
                                 f"files draw as many from every subject: give at most "
                                 f"{have}, or 'min' (the smallest subject's count)")


def run_key(args: argparse.Namespace, dataset: Any, out_dir: Path) -> dict[str, Any]:
    """What a run is asked to do: its parameters and its dataset (a run record's key)."""
    return {
        "output_dir": str(out_dir), "root": os.path.abspath(dataset.root),
        "pipeline": args.pipeline, "population": not args.no_population,
        "streamlines_per_subject": args.streamlines_per_subject, "seed": args.seed,
        "out_format": args.out_format, "positions_dtype": args.positions_dtype,
        "compression": args.compression, "hash_method": args.hash_method,
        "report": not args.no_report, "uri": dataset.uri,
        "subjects": [[s.label, list(s.parts), list(s.bundles), list(s.files), s.reference,
                      s.space] for s in dataset.subjects],
    }


def dataset_inputs(dataset: Any) -> list[str]:
    """Every file a run over ``dataset`` reads: bundle files, the groups sidecars the TRK
    reader looks for beside them (present or not), and reference images."""
    from ..core.formats.trk_groups import groups_sidecar_path

    files = [f for s in dataset.subjects for f in s.files]
    sidecars = [os.fspath(groups_sidecar_path(f)) for f in files
                if f.lower().endswith((".trk", ".trk.gz"))]
    return (files + sidecars + sorted({s.reference for s in dataset.subjects if s.reference})
            + nipype_config_files())


def nipype_config_files() -> list[str]:
    """The configuration files Nipype reads, present or not (they may set its hash method).

    ``$NIPYPE_CONFIG_DIR/nipype.cfg`` (default ``~/.nipype``) and ``./nipype.cfg``.
    """
    folder = os.path.expanduser(os.getenv("NIPYPE_CONFIG_DIR", default="~/.nipype"))
    return [os.path.join(folder, "nipype.cfg"), os.path.abspath("nipype.cfg")]


def run_locked(args: argparse.Namespace, out_dir: Path, work_dir: Path, extra: dict[str, Any],
               echo: Any) -> int:
    """Find the dataset; unless nothing changed since the last run, build and run the
    pipeline; say what was written (folders locked)."""
    from ..core.naming import sidecar_path
    from ..workflows.dataset import find_dataset
    from ..workflows.derivatives import pipeline_outputs
    from ..workflows.runrecord import load_record, look, unchanged

    say = echo or (lambda line: None)
    if args.input_dir is None:
        from ..data import fetch_demo_dataset

        root = fetch_demo_dataset(work_dir / DEMO_FOLDER)
        origin = " (demo data: dipy's minimal_bundles.zip)"
    else:
        root = Path(args.input_dir)
        origin = ""
    dataset = find_dataset(root, patterns=args.pattern, subjects=args.subjects,
                           reference=args.reference, reference_pattern=args.reference_pattern)
    if args.input_dir is None:  # named by where it comes from, not by the work dir
        from ..data import DEMO_DATASET_URI

        dataset.uri = DEMO_DATASET_URI
    outputs = pipeline_outputs(dataset, args.pipeline, population=not args.no_population,
                               out_format=args.out_format)
    key, last = run_key(args, dataset, out_dir), load_record(work_dir)
    now = look(dataset_inputs(dataset), out_dir, work_dir, last)  # once: every use reads it
    record = last if unchanged(last, key, now) else None
    nfiles = sum(len(s.files) for s in dataset.subjects)
    say(f"trx-nipype run: pipeline '{args.pipeline}', {len(dataset.subjects)} subjects "
        f"({_some(dataset.labels)}), {nfiles} files, {len(dataset.bundles)} bundles "
        f"({_some(dataset.bundles)})")
    say(f"  input     {root}{origin}")
    say(f"  output    {out_dir}")
    say(f"  work dir  {work_dir} (Nipype's cache: reused by the next run)")
    if record is not None:
        report, report_error = _unchanged_run(args, record, work_dir, extra, echo)
    else:
        report, report_error = _pipeline_run(args, dataset, out_dir, work_dir, extra, echo,
                                             key, last, now)
    failed = report.finish("trx-nipype: ", max_warnings=None if args.verbose else 3,
                           warnings_hint=" (--verbose shows them)", summary=False)
    if report_error is not None:
        print(f"trx-nipype: error: report: {report_error}", file=sys.stderr)
    if failed or report_error is not None:
        made = sum(os.path.lexists(out_dir / rel) for rel in outputs)
        where = (f"{made} of the {len(outputs)} output files are in {out_dir}" if made
                 else f"no output file is in {out_dir}")
        print(f"trx-nipype: {closing_line(report, report_error is not None)}; {where}"
              + (f"; crash files in {work_dir / 'crash'}" if failed else ""), file=sys.stderr)
        return 1
    if not report.waited:
        jobs = "" if report.submitted is None else f"{report.submitted} job(s) "
        why = "--no-wait" if args.no_wait else f"{args.plugin} runs are not followed"
        say(f"submitted: {jobs}handed to {args.plugin}, not waited for ({why}); results "
            f"appear in {out_dir} as the jobs finish, and nothing here says whether they "
            f"fail. When the queue holds none of them any more, run the same command again "
            f"(without --no-wait): it reports what is done and what failed, and runs only "
            f"what is missing")
        return 0
    say(f"done: {report.summary()}" + ("; nothing changed since the last run (its record: "
                                       f"{os.path.relpath(record_path(work_dir))}), so "
                                       "Nipype was not started" if record is not None else ""))
    for rel in outputs:
        counts = _sidecar_counts(sidecar_path(out_dir / rel))
        say(f"  {os.path.relpath(out_dir / rel)}  ({counts.get('NB_STREAMLINES', '?')} "
            f"streamlines; groups: {', '.join(counts.get('Groups', {})) or '-'})")
    return 0


def _sidecar_counts(sidecar: Path) -> dict[str, Any]:
    """The ``Counts`` of an output's sidecar; a warning and none when it cannot be read."""
    try:
        counts = json.loads(sidecar.read_text(encoding="utf-8")).get("Counts", {})
        if isinstance(counts, dict):
            return counts
        problem = "its Counts are not an object"
    except (OSError, ValueError, AttributeError) as exc:
        problem = str(getattr(exc, "strerror", None) or exc)
    print(f"trx-nipype: warning: {sidecar}: cannot read the sidecar ({problem}); it was "
          f"not written by this run: delete it and run again to have it made", file=sys.stderr)
    return {}


def _plugin_line(args: argparse.Namespace, extra: dict[str, Any], hash_method: str) -> str:
    return (f"  plugin    {args.plugin}" + (f" {json.dumps(extra)}" if extra else "")
            + (f", {args.nprocs} processes" if args.nprocs else "")
            + f"; hash method {hash_method}")


def _unchanged_run(args: argparse.Namespace, record: Any, work_dir: Path,
                   extra: dict[str, Any], echo: Any) -> tuple[Any, str | None]:
    """A rerun that found nothing changed: the last run's nodes, all cached, and its report."""
    from ..workflows.runner import cached_report
    from .report import written_line

    say = echo or (lambda line: None)
    say(_plugin_line(args, extra, record.hash_method))
    report = cached_report(work_dir, args.plugin, record.events, echo)
    for summary in record.report:
        say(written_line(summary))
    report.warnings = list(record.warnings)
    return report, None


def _pipeline_run(args: argparse.Namespace, dataset: Any, out_dir: Path, work_dir: Path,
                  extra: dict[str, Any], echo: Any, key: dict[str, Any], last: Any, now: Any
                  ) -> tuple[Any, str | None]:
    """Build the pipeline and run it through Nipype; record the run when it succeeded.

    ``last``: the work dir's record (or None), ``now``: the state of the files taken
    with it (:func:`~trx_nipype.workflows.runrecord.look`).
    """
    from ..workflows.pipelines import init_bundles_pipeline_wf, init_convert_pipeline_wf
    from ..workflows.runner import run_workflow
    from ..workflows.runrecord import begin_run, changed_files, save_record
    from ..workflows.workdir import forget_missing_outputs

    say = echo or (lambda line: None)
    check_streamlines_per_subject(args, dataset)
    changed = changed_files(last, now, out_dir, work_dir) if last is not None else []
    pending = begin_run(work_dir, key, now)  # the last record is gone from here on
    if args.pipeline == "bundles":
        wf = init_bundles_pipeline_wf(dataset, out_dir, population=not args.no_population,
                                      nb_streamlines=args.streamlines_per_subject,
                                      seed=args.seed)
    else:
        wf = init_convert_pipeline_wf(dataset, out_dir, out_format=args.out_format,
                                      positions_dtype=args.positions_dtype,
                                      compression=args.compression)
    if args.hash_method:  # else the workflow's (Nipype's configuration; timestamp by default)
        wf.config["execution"]["hash_method"] = args.hash_method
    pending.hash_method = wf.config["execution"].get("hash_method", "timestamp")
    say(_plugin_line(args, extra, pending.hash_method))
    if changed:  # edited where Nipype's cache does not look: their nodes run again
        forgotten = forget_missing_outputs(work_dir / wf.name, changed=changed)
        if forgotten:
            say(f"  changed   {_some([os.path.relpath(p) for p in changed], 3)} since the last "
                f"run (Nipype's cache does not see it): {len(forgotten)} node(s) run again")
    report = run_workflow(wf, work_dir, plugin=args.plugin, plugin_args=extra,
                          nprocs=args.nprocs, echo=echo, verbose=args.verbose,
                          wait=not args.no_wait)
    report_error = None
    if not args.no_report and report.waited:  # report.html, qc.tsv, figures/ + failures
        from .report import report_after_run

        report_error = report_after_run(out_dir, report, say, processes=args.nprocs,
                                        written=pending.report)
    if report.ok and report.waited and report_error is None:
        pending.warnings = [report.stale] if report.stale else []
        pending.events = [[e.node, e.context] for e in report.events]
        save_record(pending, work_dir, out_dir, work_dir / wf.name)
    return report, report_error
