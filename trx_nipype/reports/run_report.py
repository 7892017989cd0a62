"""The report of a run: ``OUT/report.html``, its ``OUT/figures/`` and ``OUT/qc.tsv``.

:func:`write_run_report` builds everything from the output folder alone (the
tractograms and their JSON sidecars, found by
:func:`~trx_nipype.reports.outputs.find_run_outputs`), plus, when a run
hands them over, the failures of its nodes. Per subject: each output's
groups (bundles) with counts and lengths, three projections and the length
distributions; for the population: the subjects x bundles counts and mean
lengths with outliers flagged (:mod:`trx_nipype.reports.qc`), and each
population file drawn with one colour per subject; provenance from the
sidecars (sources, parameters, versions); the failed nodes.

Outputs are read one at a time, chunk by chunk: memory stays bounded by one
output's lengths and drawn sample. What was drawn for an output is kept
(:mod:`trx_nipype.reports.cache`): a rerun after a run with nothing changed
reads no tractogram and draws nothing. Figures are linked by relative paths and
no absolute path of the machine is written: the folder can be moved or
copied with its report. The same outputs give the same bytes.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.formats import compound_suffix
from ..core.naming import unique_safe_names
from .cache import content_key, load_entry, readable_sha256, state_key, store_entry
from .figures import lengths_figure, population_figure, projections_figure
from .html import (
    cell,
    check_page_replaceable,
    esc,
    figure,
    is_report_page,
    kv_list,
    page,
    table,
    write_page,
)
from .measures import (
    ALL_STREAMLINES,
    DEFAULT_MAX_STREAMLINES,
    NO_GROUP,
    CategoryStats,
    measure_tractogram,
)
from .outputs import RunOutput, display_path, find_run_outputs, scrub_paths
from .qc import (
    OUTLIER_RULE,
    OUTLIER_THRESHOLD,
    QcRow,
    check_qc_replaceable,
    score_rows,
    write_qc_tsv,
)
from .render import group_colours, save_figure
from .tractogram import groups_table, projections_caption, space_summary

log = logging.getLogger("trx_nipype.reports")

#: the page, the QC table and the figures' folder, inside the output folder
REPORT_NAME, QC_NAME, FIGURES_DIR = "report.html", "qc.tsv", "figures"
_HEATMAP = "population_qc"
#: outputs to draw from which the report draws them in several processes by default
POOL_MIN_OUTPUTS = 16
#: processes drawing at most by default (each holds one output's sample at a time)
MAX_PROCESSES = 4
_LINK = re.compile(rf'src="({FIGURES_DIR}/[^"/]+)"')


@dataclass
class _OutputView:
    """What the page shows of one output (small: no arrays)."""

    output: RunOutput
    categories: list[CategoryStats] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (link, caption, alt)
    error: str = ""
    no_space: bool = False  # the error is that its space is nowhere to be found


@dataclass
class RunReportFiles:
    """What :func:`write_run_report` wrote.

    Attributes
    ----------
    page, qc_tsv : pathlib.Path
        ``report.html`` and ``qc.tsv``.
    figures : list of pathlib.Path
        Every figure the page links.
    rows : list of QcRow
        The rows of ``qc.tsv``.
    errors : list of str
        Outputs that could not be read (shown on the page).
    """

    page: Path
    qc_tsv: Path
    figures: list[Path]
    rows: list[QcRow]
    errors: list[str]

    @property
    def outliers(self) -> list[QcRow]:
        """The flagged rows."""
        return [r for r in self.rows if r.outlier]


class _NoSpace(ValueError):
    """An output without a space whose sources give none (reported once per run)."""


def _reference_for(output: RunOutput, out_dir: Path) -> str | None:
    """A source of an output that gives its space, for formats without one: a reference
    image, else a tractogram that holds its space (the TRK a TCK was converted from)."""
    from ..core.formats import carries_space
    from ..workflows.derivatives import resolve_source

    if carries_space(output.path):
        return None
    images, tractograms = [], []
    for source in output.sidecar.get("Sources", []):
        path = str(source.get("path", "")) if isinstance(source, dict) else ""
        full = resolve_source(path, out_dir) if path else None
        if full is None or not full.exists():
            continue
        if path.lower().endswith((".nii", ".nii.gz")):
            images.append(str(full))
            continue
        try:
            if carries_space(full):
                tractograms.append(str(full))
        except ValueError:  # not a tractogram
            pass
    if images or tractograms:
        return (images or tractograms)[0]
    raise _NoSpace(f"{output.rel}: a .{output.path.suffix.lstrip('.')} file has no space, and "
                   "none of its sources that would give one is found here")


def _sidecar_groups(output: RunOutput) -> list[CategoryStats]:
    """Counts from the sidecar, for an output that cannot be read."""
    counts = output.sidecar.get("Counts", {})
    groups = counts.get("Groups") or {}
    if not groups and "NB_STREAMLINES" in counts:
        groups = {ALL_STREAMLINES: counts["NB_STREAMLINES"]}
    colours = group_colours(list(groups))
    return [CategoryStats(str(g), colours[g], int(n), None, None, None, None)
            for g, n in groups.items()]


def _from_cache(output: RunOutput, key: str, out_dir: Path) -> _OutputView | None:
    """The view drawn earlier for this state of the output, if its figures are intact."""
    entry = load_entry(key)
    if entry is None:
        return None
    try:
        figures = [(str(link), str(caption), str(alt)) for link, caption, alt, _ in
                   entry["figures"]]
        intact = all(readable_sha256(out_dir / link) == digest
                     for link, _, _, digest in entry["figures"])
        view = _OutputView(output, [CategoryStats(*c) for c in entry["categories"]],
                           [(str(k), str(v)) for k, v in entry["facts"]], figures)
    except (KeyError, TypeError, ValueError):
        return None
    return view if intact else None


@dataclass(frozen=True)
class _Drawing:
    """One output to measure and draw: all a process needs (picklable)."""

    output: RunOutput
    out_dir: Path
    stem: str
    key: str
    max_streamlines: int
    seed: int
    colours: dict[str, str] | None
    lengths: bool


def _draw_output(job: _Drawing) -> _OutputView:
    """Measure and draw one output, and keep what was drawn (:mod:`.cache`); an unreadable
    output gives a view with its error and the sidecar's counts."""
    from ..core import load_any

    output, out_dir = job.output, job.out_dir
    view = _OutputView(output)
    try:
        with load_any(output.path, reference=_reference_for(output, out_dir)) as trx:
            measures = measure_tractogram(trx, max_streamlines=job.max_streamlines,
                                          seed=job.seed, colours=job.colours)
    except _NoSpace as exc:  # said once for the run, not once per output
        view.error, view.no_space = scrub_paths(str(exc), out_dir), True
        view.categories = _sidecar_groups(output)
        return view
    except Exception as exc:  # one unreadable output must not hide the others
        view.error = scrub_paths(f"{type(exc).__name__}: {exc}", out_dir)
        view.categories = _sidecar_groups(output)
        return view
    view.categories = [c.stats() for c in measures.categories]
    view.facts = space_summary(measures)
    drawn = [(f"{FIGURES_DIR}/{job.stem}_projections.png", projections_figure,
              projections_caption(measures, job.seed), "projections")]
    if job.lengths:
        drawn.append((f"{FIGURES_DIR}/{job.stem}_lengths.svg", lengths_figure,
                      "Streamline lengths (mm), one outline per group.", "lengths"))
    digests = []
    for link, draw, caption, what in drawn:
        digests.append(readable_sha256(save_figure(draw(measures), out_dir / link)))
        view.figures.append((link, caption, f"{what} of {output.rel}"))
    store_entry(job.key, {"categories": [list(astuple(c)) for c in view.categories],
                          "facts": view.facts,
                          "figures": [[*f, d] for f, d in zip(view.figures, digests,
                                                                strict=True)]})
    return view


def drawing_processes(jobs: int, processes: int | None = None) -> int:
    """How many processes draw ``jobs`` outputs: ``processes`` (at most one per output), or
    by default one per available CPU, at most :data:`MAX_PROCESSES`, when there are
    :data:`POOL_MIN_OUTPUTS` outputs or more (fewer are drawn sooner in one process).

    >>> drawing_processes(3), drawing_processes(3, 8), drawing_processes(100, 1)
    (1, 3, 1)
    """
    if processes is not None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        return max(1, min(processes, jobs))
    if jobs < POOL_MIN_OUTPUTS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_PROCESSES, jobs))


def _pool_context() -> Any:
    """The processes' start method: fork, where it is safe; else None (this process draws).

    Forking is the platform's way on Linux, and quick (nothing imported again),
    but a process whose other threads may hold a lock can hang the child. A
    fresh interpreter (spawn, forkserver) would run the main script of an
    unguarded user program again: the report does not start one.
    """
    import multiprocessing
    import threading

    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods() \
            and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return None


def _draw_in_worker(job: _Drawing) -> _OutputView | Exception:
    """:func:`_draw_output` in a pool's process: its error is returned, for the caller to
    raise (and tell apart from the pool's own failures)."""
    try:
        return _draw_output(job)
    except Exception as exc:
        return exc


def _drawn_views(jobs: Sequence[_Drawing], processes: int) -> Iterator[_OutputView]:
    """The views of ``jobs``, in order: drawn by ``processes`` processes, or in this one.

    Each output is drawn alone, whatever the process: the bytes are the same. A
    pool that may not be forked (:func:`_pool_context`; a daemonic process),
    cannot start (no semaphores, no process may be created) or breaks (a
    worker killed) leaves the outputs not yet drawn to this process.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    done = 0
    context = _pool_context() if processes > 1 else None
    if context is not None and not multiprocessing.current_process().daemon:
        error: Exception | None = None
        try:
            with ProcessPoolExecutor(processes, mp_context=context) as pool:
                for result in pool.map(_draw_in_worker, jobs):
                    if isinstance(result, Exception):
                        error = result
                        pool.shutdown(cancel_futures=True)
                        break
                    done += 1
                    yield result
        except (BrokenProcessPool, OSError, NotImplementedError, ImportError) as exc:
            log.info("report: drawing in this process (%s: %s)", type(exc).__name__, exc)
            for job in jobs[done:]:  # a worker killed mid-write leaves a temporary file
                for name in (f"{job.stem}_projections.png", f"{job.stem}_lengths.svg"):
                    for tmp in (job.out_dir / FIGURES_DIR).glob(f".{glob.escape(name)}.*"):
                        tmp.unlink(missing_ok=True)
        if error is not None:
            raise error
    for job in jobs[done:]:
        yield _draw_output(job)


def _rows(view: _OutputView) -> list[QcRow]:
    """QC rows of a subject's output: one per group (or one for a file without groups)."""
    subject = view.output.subject or ""
    rows = []
    for cat in view.categories:
        if cat.name == NO_GROUP:
            continue
        bundle = view.output.label if cat.name == ALL_STREAMLINES else cat.name
        rows.append(QcRow(subject, bundle, cat.count, cat.mean))
    return rows


def _figure_stems(outputs: Sequence[RunOutput]) -> dict[str, str]:
    """A distinct, file-name-safe figure stem per output (its subject first)."""
    wanted = [_HEATMAP]
    for o in outputs:
        prefix = f"{o.subject}_" if o.subject and not o.stem.startswith(o.subject) else ""
        wanted.append(f"{prefix}{o.stem}")
    safe = unique_safe_names(wanted)
    return {o.rel: safe[w] for o, w in zip(outputs, wanted[1:], strict=True)}


def _linked_figures(page_path: Path) -> set[str]:
    """The figures an earlier report page links (``figures/...``)."""
    if not is_report_page(page_path):
        return set()
    try:
        return set(_LINK.findall(page_path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return set()


# ------------------------------------------------------------------- sections
def _status(failures: Sequence[Any] | None, rows: Sequence[QcRow],
            errors: Sequence[str]) -> str:
    out = []
    if failures is None:
        out.append('<div class="info">Built from the output folder alone (<code>trx-nipype '
                   'report</code>): the failed nodes of the run that made it are not known '
                   "here (<code>trx-nipype run</code> reports them, on its page too).</div>")
    elif failures:
        out.append(f'<div class="alert"><a href="#errors">{len(failures)} node(s) failed</a>: '
                   "their subjects' or bundles' outputs are missing or out of date.</div>")
    else:
        out.append('<div class="ok">Every node of the run succeeded.</div>')
    if errors:
        out.append(f'<div class="alert">{len(errors)} output(s) could not be read: see their '
                   "sections.</div>")
    flagged = [r for r in rows if r.outlier]
    if flagged:
        names = ", ".join(f"{r.subject} {r.bundle}" for r in flagged)
        out.append(f'<div class="alert"><a href="#population">{len(flagged)} outlier(s)</a>: '
                   f"{esc(names)}.</div>")
    elif rows:
        out.append('<div class="ok">No subject\'s bundle is an outlier.</div>')
    return "".join(out)


def _summary(outputs: Sequence[RunOutput], subjects: Sequence[str], rows: Sequence[QcRow],
             failures: Sequence[Any] | None, errors: Sequence[str], out_dir: Path) -> str:
    pipelines = sorted({str(o.sidecar.get("Pipeline")) for o in outputs})
    bundles = sorted({r.bundle for r in rows})
    facts = [("pipeline", esc(", ".join(pipelines))),
             ("subjects", f"{len(subjects)}" + (f" ({esc(', '.join(subjects))})"
                                                  if subjects else "")),
             ("bundles", f"{len(bundles)}" + (f" ({esc(', '.join(bundles))})" if bundles
                                                else "")),
             ("outputs", f"{len(outputs)} tractograms with their JSON sidecars")]
    name = _dataset_name(out_dir / "dataset_description.json")
    if name:
        facts.append(("dataset", f"{esc(name)} (<code>dataset_description.json</code>)"))
    if rows:
        facts.append(("QC table", f'<a href="{QC_NAME}">{QC_NAME}</a> (one row per subject '
                                  "and bundle: counts, mean length, outlier)"))
    return (f'<section id="summary"><h2>Summary</h2>{kv_list(facts)}'
            f"{_status(failures, rows, errors)}</section>")


def _dataset_name(path: Path) -> str:
    """The ``Name`` of a ``dataset_description.json`` ("" if none)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(doc.get("Name", "")) if isinstance(doc, dict) else ""


def _errors(failures: Sequence[Any], out_dir: Path) -> str:
    # the crash files are not named: their names carry a date and the user's name
    rows = [[cell(getattr(f, "context", "") or "-"), cell(getattr(f, "node", "?")),
             cell(scrub_paths(str(getattr(f, "message", "")), out_dir))] for f in failures]
    return ('<section id="errors"><h2>Failed nodes</h2><p class="note">Their crash files '
            "are in the work folder's <code>crash/</code> (<code>nipypecli crash FILE</code> "
            f"shows one).</p>{table(['where', 'node', 'error'], rows)}</section>")


def _population(rows: Sequence[QcRow], heatmap: str | None,
                views: Sequence[_OutputView]) -> str:
    parts = ['<section id="population"><h2>Population</h2>']
    if rows:
        parts.append(f'<p class="note"><b>Outlier rule.</b> {esc(OUTLIER_RULE)}</p>')
        if heatmap:
            parts.append(figure(heatmap, "Streamlines and mean length (mm) of each subject's "
                                "bundles. Colour: the robust z-score within the bundle (blue "
                                f"below the median, red above); framed: |z| &gt; "
                                f"{OUTLIER_THRESHOLD:g} (an outlier).", "subjects x bundles"))
        flagged = [r for r in rows if r.outlier]
        if flagged:
            parts.append("<h3>Outliers</h3>" + _qc_table(flagged))
        else:
            parts.append('<div class="ok">No subject\'s bundle is an outlier.</div>')
        parts.append(f"<details><summary>All {len(rows)} rows (also in "
                     f"{QC_NAME})</summary>{_qc_table(rows)}</details>")
    for view in views:
        parts.append(_output_block(view, None, table_first=False))
    if not rows and not views:
        parts.append('<p class="note">No subject or population output.</p>')
    parts.append("</section>")
    return "".join(parts)


def _qc_table(rows: Sequence[QcRow]) -> str:
    def z(value: float) -> str:
        return f"{value:+.1f}" if np.isfinite(value) else "-"

    body = [[cell(r.subject), cell(r.bundle), cell(f"{r.nb_streamlines:,}", num=True),
             cell("-" if r.mean_length_mm is None else f"{r.mean_length_mm:.1f}", num=True),
             cell(z(r.z_count), num=True), cell(z(r.z_length), num=True),
             cell("; ".join(r.reasons) or "-")] for r in rows]
    return table(["subject", "bundle", "streamlines", "mean length (mm)", "z streamlines",
                  "z mean length", "outlier"], body,
                 row_classes=["outlier" if r.outlier else "" for r in rows],
                 num_columns=(2, 3, 4, 5))


def _output_block(view: _OutputView, flag: Callable[[str], tuple[str, bool]] | None,
                  *, table_first: bool = True) -> str:
    out = [f"<h3><code>{esc(view.output.rel)}</code></h3>"]
    if view.error:
        out.append(f'<div class="alert">Could not be read: {esc(view.error)} (counts below '
                   "from its sidecar).</div>")
    facts = kv_list(view.facts) if view.facts else ""
    groups = groups_table(view.categories, flag)
    figures = "".join(figure(link, caption, alt) for link, caption, alt in view.figures)
    if table_first:
        out.append(facts + groups + figures)
    else:
        out.append(f"{figures}<details><summary>{len(view.categories)} groups: counts and "
                   f"lengths</summary>{facts}{groups}</details>")
    return "".join(out)


def _subject_section(subject: str, views: Sequence[_OutputView],
                     rows: dict[tuple[str, str], QcRow]) -> str:
    def flag_for(output: RunOutput) -> Callable[[str], tuple[str, bool]]:
        def flag(name: str) -> tuple[str, bool]:
            bundle = output.label if name == ALL_STREAMLINES else name
            row = rows.get((subject, bundle))
            if row is None:
                return "-", False
            if row.outlier:
                return "outlier: " + "; ".join(row.reasons), True
            scored = np.isfinite(row.z_count)
            return ("ok" if scored else "not scored"), False
        return flag

    body = "".join(_output_block(v, flag_for(v.output)) for v in views)
    return f'<section id="{esc(subject)}"><h2>{esc(subject)}</h2>{body}</section>'


def _provenance(outputs: Sequence[RunOutput], out_dir: Path) -> str:
    parts = ['<section id="provenance"><h2>Provenance</h2><p class="note">From the JSON '
             "sidecar next to each output: how it was made, from which files (with their "
             "SHA-256), with which software.</p>"]
    software = {_canonical(o.sidecar.get("Software", {})) for o in outputs}
    if outputs and len(software) == 1:
        versions = outputs[0].sidecar.get("Software", {})
        parts.append("<h3>Software</h3>" + kv_list(
            (str(k), esc(v)) for k, v in sorted(versions.items())))
    params = {_canonical(o.sidecar.get("Parameters", {})) for o in outputs}
    if outputs and len(params) == 1:
        values = outputs[0].sidecar.get("Parameters", {})
        parts.append("<h3>Parameters</h3>" + (kv_list(
            (str(k), f"<code>{esc(_canonical(v))}</code>") for k, v in sorted(values.items()))
            or '<p class="note">none</p>'))
    parts.append("<h3>Outputs</h3>" if outputs else '<p class="note">No output.</p>')
    for o in outputs:
        side = o.sidecar
        facts = [("pipeline", esc(side.get("Pipeline", ""))),
                 ("description", esc(side.get("Description", "")))]
        if len(params) > 1:
            facts.append(("parameters", f"<code>{esc(_canonical(side.get('Parameters', {})))}"
                                        "</code>"))
        if len(software) > 1:
            facts.append(("software", esc(", ".join(
                f"{k} {v}" for k, v in sorted(side.get("Software", {}).items())))))
        facts.append(("sha256", f"<code>{esc(side.get('sha256', '-'))}</code>"))
        sources = [[cell(f"<code>{esc(display_path(str(s.get('path', '')), out_dir))}</code>",
                         raw=True),
                    cell(f"<code>{esc(str(s.get('sha256', '-'))[:16])}</code>", raw=True)]
                   for s in side.get("Sources", []) if isinstance(s, dict)]
        parts.append(f"<details><summary><code>{esc(o.rel)}</code> "
                     f"({len(sources)} sources)</summary>{kv_list(facts)}"
                     f"{table(['source', 'sha256 (first 16)'], sources)}</details>")
    parts.append("</section>")
    return "".join(parts)


def _canonical(value: Any) -> str:
    """A canonical JSON text of ``value`` (sorted keys): to compare and to show."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# ------------------------------------------------------------------------ main
def write_run_report(out_dir: str | os.PathLike, failures: Sequence[Any] | None = None, *,
                     max_streamlines: int = DEFAULT_MAX_STREAMLINES, seed: int = 0,
                     echo: Callable[[str], None] | None = None,
                     processes: int | None = None) -> RunReportFiles:
    """Write ``report.html``, ``qc.tsv`` and ``figures/`` into a run's output folder.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The output folder of ``trx-nipype run`` (or of any pipeline whose
        outputs have this tool's JSON sidecars).
    failures : sequence of Failure, optional
        The run's failed nodes (:attr:`trx_nipype.workflows.runner.RunReport.failures`:
        objects with ``context``, ``node`` and ``message``). None: not known (a
        report built from the outputs alone says so).
    max_streamlines : int
        Streamlines drawn per figure at most (a seeded sample beyond).
    seed : int
        Seed of the samples.
    echo : callable, optional
        Called with one progress line per output.
    processes : int, optional
        Processes drawing the outputs' figures (1: this one). Default: one
        per available CPU, at most :data:`MAX_PROCESSES`, when at least
        :data:`POOL_MIN_OUTPUTS` outputs are to be drawn. The bytes are the
        same whatever the number; where no process can be started, this one
        draws them.

    Returns
    -------
    RunReportFiles

    Raises
    ------
    FileNotFoundError
        If ``out_dir`` is not a folder.
    ValueError
        If it holds no output with a sidecar naming a pipeline (and no failure
        is given: a run whose every node failed still gets its page).
    FileExistsError
        If ``report.html`` exists and is not a report page, or ``qc.tsv`` is not
        a QC table of this tool (nothing is written then).
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: no such folder")
    outputs = find_run_outputs(out)
    if not outputs and failures is None:
        raise ValueError(f"{out}: no output of trx-nipype here (no tractogram with a JSON "
                         "sidecar naming its Pipeline)")
    page_path = out / REPORT_NAME
    check_page_replaceable(page_path)  # before any work
    check_qc_replaceable(out / QC_NAME)
    before = _linked_figures(page_path)
    stems = _figure_stems(outputs)
    subjects = sorted({o.subject for o in outputs if o.subject})
    subject_colours = group_colours(subjects)
    say = echo or (lambda line: None)
    jobs: dict[str, _Drawing] = {}
    views: dict[str, _OutputView] = {}
    for o in outputs:  # what the cache holds is not drawn again
        colours = None if o.subject else subject_colours
        key = state_key(o.path, rel=o.rel, stem=stems[o.rel], max_streamlines=max_streamlines,
                        seed=seed, colours=colours, lengths=o.subject is not None)
        cached = _from_cache(o, key, out)
        if cached is not None:
            views[o.rel] = cached
        else:
            jobs[o.rel] = _Drawing(o, out, stems[o.rel], key, max_streamlines, seed, colours,
                                   o.subject is not None)
    drawn = _drawn_views(list(jobs.values()), drawing_processes(len(jobs), processes))
    for k, o in enumerate(outputs, 1):
        say(f"  report [{k}/{len(outputs)}] {o.rel}")
        if o.rel in jobs:
            views[o.rel] = next(drawn)
            if views[o.rel].error and not views[o.rel].no_space:
                log.warning("report: %s", views[o.rel].error)
    spaceless = [o.rel for o in outputs if o.rel in jobs and views[o.rel].no_space]
    if spaceless:
        kinds = ", ".join(sorted({compound_suffix(Path(r)) for r in spaceless}))
        log.warning("report: %d %s output(s) are shown without figures: their files hold no "
                    "space, and no source that gives one (a NIfTI image, a TRK or TRX) is "
                    "found here", len(spaceless), kinds)
    views = {o.rel: views[o.rel] for o in outputs}
    rows = score_rows([r for v in views.values() if v.output.subject for r in _rows(v)])
    qc_path = write_qc_tsv(out / QC_NAME, rows)
    heatmap = None
    if rows and len(subjects) >= 2:
        heatmap = f"{FIGURES_DIR}/{_HEATMAP}.svg"
        _draw_heatmap(rows, out / heatmap)
    errors = [v.error for v in views.values() if v.error]
    by_key = {(r.subject, r.bundle): r for r in rows}
    by_subject = {s: [v for v in views.values() if v.output.subject == s] for s in subjects}
    population = [v for v in views.values() if not v.output.subject]
    body = [_summary(outputs, subjects, rows, failures, errors, out)]
    if failures:
        body.append(_errors(failures, out))
    body.append(_population(rows, heatmap, population))
    body.extend(_subject_section(s, by_subject[s], by_key) for s in subjects)
    body.append(_provenance(outputs, out))
    nav = [("summary", "Summary", False)]
    if failures:
        nav.append(("errors", f"Failed ({len(failures)})", True))
    nav.append(("population", "Population", any(r.outlier for r in rows)))
    nav.extend((s, s, any(r.subject == s and r.outlier for r in rows)
                or any(v.error for v in by_subject[s])) for s in subjects)
    nav.append(("provenance", "Provenance", False))
    bundles = sorted({r.bundle for r in rows})
    subtitle = esc(f"{len(subjects)} subjects, {len(bundles)} bundles, {len(outputs)} outputs"
                   f" · {sum(r.outlier for r in rows)} outlier(s)"
                   + (f" · {len(failures)} failed node(s)" if failures else ""))
    text = page("trx-nipype QC report", subtitle, nav, "\n".join(body))
    figures = sorted({link for v in views.values() for link, _, _ in v.figures}
                     | ({heatmap} if heatmap else set()))
    written = write_page(page_path, text)
    for stale in sorted(before - set(figures)):  # figures only an earlier page linked
        (out / stale).unlink(missing_ok=True)
    log.info("report: %s (%d figures, %d outliers)", written, len(figures),
             sum(r.outlier for r in rows))
    return RunReportFiles(written, qc_path, [out / f for f in figures], rows, errors)


def _draw_heatmap(rows: Sequence[QcRow], path: Path) -> None:
    """Draw the subjects x bundles figure, unless the same rows drew the file there."""
    key = content_key(heatmap=[astuple(r) for r in rows], name=path.name)
    entry = load_entry(key)
    if entry is not None and entry.get("sha256") == readable_sha256(path):
        return
    save_figure(_heatmap(rows), path)
    store_entry(key, {"sha256": readable_sha256(path)})


def _heatmap(rows: Sequence[QcRow]) -> Any:
    subjects = sorted({r.subject for r in rows})
    bundles = sorted({r.bundle for r in rows})
    shape = (len(subjects), len(bundles))
    counts, means, zc, zl = (np.full(shape, np.nan) for _ in range(4))
    for r in rows:
        i, j = subjects.index(r.subject), bundles.index(r.bundle)
        counts[i, j] = r.nb_streamlines
        means[i, j] = np.nan if r.mean_length_mm is None else r.mean_length_mm
        zc[i, j], zl[i, j] = r.z_count, r.z_length
    return population_figure(subjects, bundles, counts, means, zc, zl,
                             threshold=OUTLIER_THRESHOLD)
