"""The report of a run: ``report.html``, ``figures/``, ``qc.tsv``, after ``trx-nipype run``.

Counts and lengths are checked against independent readers: nibabel reads
the original TRK bundles and dipy measures their lengths.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dipy.tracking.streamline import length as dipy_length
from PIL import Image

from trx_nipype.cli.main import main
from trx_nipype.reports.qc import OUTLIER_RULE, QC_COLUMNS
from trx_nipype.reports.run_report import write_run_report
from trx_nipype.workflows import default_work_dir

from .conftest import BUNDLES, OUTLIER, SUBJECTS, figure_links, tree_bytes


def _qc(out: Path) -> list[dict[str, str]]:
    with open(out / "qc.tsv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _text(out: Path) -> str:
    return (out / "report.html").read_text(encoding="utf-8")


def test_main_job_writes_the_report_and_every_figure_it_links(main_run: Path) -> None:
    page = main_run / "report.html"
    links = figure_links(page)
    assert links and len(links) == len(set(links))
    for link in links:
        assert not os.path.isabs(link) and not link.startswith(("file:", "http", "/"))
        path = main_run / link
        assert path.is_file(), link
        if link.endswith(".png"):
            with Image.open(path) as im:
                assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
        else:
            assert path.read_bytes().startswith(b"<?xml") and b"<svg" in path.read_bytes()
    for subject in SUBJECTS:  # every subject: its section, projections and lengths
        assert f'<section id="{subject}">' in page.read_text(encoding="utf-8")
        mine = [link for link in links if Path(link).name.startswith(subject)]
        assert {Path(link).suffix for link in mine} == {".png", ".svg"}, subject
    for bundle in BUNDLES:  # every population file drawn, one colour per subject
        assert f"figures/tract-{bundle}_projections.png" in links
    assert "figures/population_qc.svg" in links
    # nothing in figures/ that the page does not link
    assert sorted(f"figures/{p.name}" for p in (main_run / "figures").iterdir()) == \
        sorted(links)


def test_main_job_qc_tsv_has_15_rows_of_50(main_run: Path) -> None:
    text = (main_run / "qc.tsv").read_text(encoding="utf-8")
    assert text.splitlines()[0].split("\t") == list(QC_COLUMNS)
    rows = _qc(main_run)
    assert len(rows) == 15
    assert [(r["subject"], r["bundle"]) for r in rows] == [
        (s, b) for s in SUBJECTS for b in BUNDLES]
    assert {r["nb_streamlines"] for r in rows} == {"50"}
    assert {r["outlier"] for r in rows} == {"false"}  # the demo data has none


def test_mean_lengths_match_dipy_on_the_original_trk(main_run: Path) -> None:
    demo = default_work_dir(main_run) / "demo-data"
    for row in _qc(main_run):
        trk = nib.streamlines.load(str(demo / row["subject"] / "dwi" / f"{row['bundle']}.trk"))
        expected = float(np.mean(dipy_length(trk.streamlines)))
        assert float(row["mean_length_mm"]) == pytest.approx(expected, abs=1e-3), row


def test_page_shows_counts_rule_provenance_and_that_nothing_failed(main_run: Path) -> None:
    text = _text(main_run)
    assert "Every node of the run succeeded." in text
    assert 'href="qc.tsv"' in text
    assert html.escape(OUTLIER_RULE) in text  # the rule, said on the page
    for subject in SUBJECTS:
        assert f'<a href="#{subject}">{subject}</a>' in text
    assert text.count('<td class="num">50</td>') >= 15  # each subject's bundles: 50
    side = json.loads((main_run / "sub-01/dwi/sub-01_desc-bundles_tractogram.json")
                      .read_text(encoding="utf-8"))
    assert side["sha256"] in text  # provenance from the sidecars
    for name, version in side["Software"].items():
        assert f"<dt>{name}</dt><dd>{version}</dd>" in text
    assert "<code>bids:raw:sub-01/dwi/AF_L.trk</code>" in text  # a source, as a BIDS URI


def test_no_absolute_path_and_the_folder_moves_with_its_report(main_run: Path,
                                                                tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(main_run, moved, ignore=shutil.ignore_patterns("work"))
    for rel in ["report.html", "qc.tsv", *figure_links(moved / "report.html")]:
        data = (moved / rel).read_bytes()
        for root in {str(main_run), os.path.realpath(main_run), str(Path.home()), "/tmp/"}:
            assert root.encode() not in data, (rel, root)
        assert not re.search(rb"(?<![\w.:/-])/(home|tmp|root|usr|var|work|data)/", data), rel
    for link in figure_links(moved / "report.html"):  # links resolve from the new place
        assert (moved / link).is_file()


def test_same_outputs_in_two_folders_give_the_same_report_bytes(main_run: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "other" / "place"
    assert main(["run", "--output-dir", str(out), "-q"]) == 0

    def report(root: Path) -> dict[str, bytes]:
        return {k: v for k, v in tree_bytes(root).items()
                if k in ("report.html", "qc.tsv") or k.startswith("figures/")}

    assert report(out) == report(main_run)
    assert len(report(out)) == 16  # page, qc.tsv, 14 figures


def test_rebuilding_from_the_outputs_alone(main_run: Path, tmp_path: Path, capsys) -> None:
    out = Path(shutil.copytree(main_run, tmp_path / "out",
                               ignore=shutil.ignore_patterns("work")))
    figures = {p.name: p.read_bytes() for p in (out / "figures").iterdir()}
    qc = (out / "qc.tsv").read_bytes()
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    said = capsys.readouterr().out
    assert "15 rows, 0 outlier(s)" in said and "report [8/8]" in said
    text = _text(out)
    assert "failed nodes of the run that made it are not known here" in text
    assert "Every node of the run succeeded." not in text
    assert {p.name: p.read_bytes() for p in (out / "figures").iterdir()} == figures
    assert (out / "qc.tsv").read_bytes() == qc


def test_outlier_bundle_is_flagged_and_few_others(outlier_run: Path) -> None:
    rows = _qc(outlier_run)
    assert len(rows) == 15
    flagged = [(r["subject"], r["bundle"]) for r in rows if r["outlier"] == "true"]
    assert OUTLIER in flagged
    assert len(flagged) <= 2, flagged
    row = next(r for r in rows if (r["subject"], r["bundle"]) == OUTLIER)
    assert row["nb_streamlines"] == "5"
    assert {int(r["nb_streamlines"]) for r in rows} - {5} <= set(range(45, 51))
    text = _text(outlier_run)
    assert re.search(r'<a href="#population">\d outlier\(s\)</a>: [^<]*sub-03 AF_L', text)
    assert '<a href="#sub-03" class=bad>sub-03</a>' in text
    assert re.search(r'<tr class="outlier"><td>sub-03</td><td>AF_L</td><td class="num">5</td>',
                     text)
    assert "streamlines z = -" in text


def test_failed_nodes_are_on_the_page_without_machine_paths(demo_data: Path,
                                                            tmp_path: Path) -> None:
    data = Path(shutil.copytree(demo_data, tmp_path / "data"))
    bad = data / "sub-03" / "dwi" / "CST_R.trk"
    bad.write_bytes(bad.read_bytes()[:3000])
    out = tmp_path / "out"
    assert main(["run", str(data), "--output-dir", str(out), "-q"]) == 1
    text = _text(out)
    assert '<section id="errors"><h2>Failed nodes</h2>' in text
    assert '<a href="#errors" class=bad>Failed (1)</a>' in text
    assert re.search(r"<td>sub-03</td><td>assemble</td><td>[^<]*…/sub-03/dwi/CST_R\.trk[^<]*"
                     r"truncated", text)
    assert str(tmp_path) not in text and str(data) not in text
    assert [r["subject"] for r in _qc(out)] == ["sub-01"] * 3 + ["sub-02"] * 3 + \
        ["sub-04"] * 3 + ["sub-05"] * 3  # the subjects that were written
    assert "crash-" not in text  # crash files' names carry a date and the user's name
    assert main(["run", str(data), "--output-dir", str(out), "-q"]) == 1  # fails again:
    assert _text(out) == text  # the same page


def test_no_report_option_and_replacing_only_a_report(demo_data: Path, tmp_path: Path,
                                                      capsys) -> None:
    out = tmp_path / "out"
    assert main(["run", str(demo_data), "--output-dir", str(out), "-q", "--no-report"]) == 0
    assert not (out / "report.html").exists() and not (out / "qc.tsv").exists()
    assert not (out / "figures").exists()
    (out / "report.html").write_text("<html>my own notes</html>", encoding="utf-8")
    assert main(["report", str(out)]) == 2
    assert "is not a trx-nipype report; not replaced" in capsys.readouterr().err
    assert (out / "report.html").read_text(encoding="utf-8") == "<html>my own notes</html>"
    assert main(["run", str(demo_data), "--output-dir", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "trx-nipype: error: report: " in err and "not replaced" in err
    # the report is not a node: the closing line says what failed
    assert "node(s) failed" not in err
    assert "trx-nipype: the QC report was not written (every node succeeded: 0 nodes ran, " \
        "18 cached, 0 failed" in err
    assert (out / "report.html").read_text(encoding="utf-8") == "<html>my own notes</html>"
    assert not (out / "qc.tsv").exists() and not (out / "figures").exists()
    (out / "report.html").unlink()
    (out / "qc.tsv").write_text("my table\n", encoding="utf-8")
    assert main(["report", str(out)]) == 2
    assert "is not a QC table of trx-nipype; not replaced" in capsys.readouterr().err
    assert (out / "qc.tsv").read_text(encoding="utf-8") == "my table\n"
    assert not (out / "report.html").exists()


def test_report_usage_and_input_errors(tmp_path: Path, main_run: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 3
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 3  # a folder without outputs
    assert "no output of trx-nipype here" in capsys.readouterr().err
    assert main(["report", str(main_run), "-o", str(tmp_path / "x.html")]) == 2
    assert "-o/--output and --reference are for a tractogram's page" in \
        capsys.readouterr().err


def test_stale_figures_of_an_earlier_report_are_removed(main_run: Path,
                                                        tmp_path: Path) -> None:
    out = Path(shutil.copytree(main_run, tmp_path / "out",
                               ignore=shutil.ignore_patterns("work")))
    mine = out / "figures" / "notes.png"
    mine.write_bytes(b"not ours")
    shutil.rmtree(out / "sub-05")
    files = write_run_report(out, [])
    assert not (out / "figures" / "sub-05_desc-bundles_projections.png").exists()
    assert mine.read_bytes() == b"not ours"  # never linked by a report: left alone
    assert len(files.rows) == 12 and all(p.is_file() for p in files.figures)


def test_convert_pipeline_outputs_with_a_reference_are_reported(demo_data: Path,
                                                                tmp_path: Path) -> None:
    # TCK outputs carry no space: the report reads them with the reference in their sources
    data = Path(shutil.copytree(demo_data, tmp_path / "data"))
    ref = nib.Nifti1Image(np.zeros((1, 1, 1), np.uint8), np.eye(4))  # the TRKs' space
    for subject in SUBJECTS[:3]:
        nib.save(ref, str(data / subject / "dwi" / "t1.nii.gz"))
    shutil.rmtree(data / "sub-04")
    shutil.rmtree(data / "sub-05")
    out = tmp_path / "out"
    assert main(["run", str(data), "--output-dir", str(out), "--pipeline", "convert",
                 "--out-format", "tck", "-q"]) == 0
    rows = _qc(out)
    assert [(r["subject"], r["bundle"], r["nb_streamlines"]) for r in rows] == [
        (s, b, "50") for s in SUBJECTS[:3] for b in BUNDLES]
    text = _text(out)
    assert "Could not be read" not in text
    for link in figure_links(out / "report.html"):
        assert (out / link).is_file()
    assert len(figure_links(out / "report.html")) == 3 * 3 * 2 + 1  # 9 files x 2, heatmap


def test_convert_pipeline_outputs_take_the_space_of_their_source_trk(
        demo_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a reference image, a TCK converted from a TRK is drawn in the TRK's space; when
    no source gives a space, one sentence says so for the run (not an exception per file)."""
    data = Path(shutil.copytree(demo_data, tmp_path / "data"))
    for subject in SUBJECTS[2:]:
        shutil.rmtree(data / subject)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(data), "--output-dir", str(out), "--pipeline", "convert",
                     "--out-format", "tck", "-q"]) == 0
    assert "no space" not in caplog.text and "ValueError" not in caplog.text
    assert "Could not be read" not in _text(out)
    assert len(figure_links(out / "report.html")) == 2 * 3 * 2 + 1  # 6 files x 2, heatmap
    shutil.rmtree(data)  # the sources are gone: nothing gives the TCKs a space
    monkeypatch.setenv("TRX_NIPYPE_CACHE_DIR", str(tmp_path / "cache"))  # drawn again
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        write_run_report(out, [])
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("report:")]
    assert said == ["report: 6 .tck output(s) are shown without figures: their files hold no "
                    "space, and no source that gives one (a NIfTI image, a TRK or TRX) is "
                    "found here"], said


def test_a_rerun_with_nothing_changed_draws_nothing(main_run: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from trx_nipype.reports import run_report
    from trx_nipype.reports.cache import prune_report_cache

    monkeypatch.setenv("TRX_NIPYPE_CACHE_DIR", str(tmp_path / "cache"))
    out = Path(shutil.copytree(main_run, tmp_path / "out", ignore=shutil.ignore_patterns("work")))
    write_run_report(out, [])
    first = tree_bytes(out)
    drawn: list[str] = []
    measure = run_report.measure_tractogram

    def counting(trx, **kwargs):  # noqa: ANN202
        drawn.append(Path(trx.path).name)
        return measure(trx, **kwargs)

    monkeypatch.setattr(run_report, "measure_tractogram", counting)
    write_run_report(out, [])
    assert drawn == [] and tree_bytes(out) == first
    # an output written again (a new file, the same bytes): only it is read and drawn again
    path = out / "sub-02/dwi/sub-02_desc-bundles_tractogram.trx"
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)
    write_run_report(out, [])
    assert drawn == [path.name] and tree_bytes(out) == first
    # a figure removed or changed: its output is drawn again
    (out / "figures/sub-03_desc-bundles_lengths.svg").unlink()
    (out / "figures/tract-AF_L_projections.png").write_bytes(b"changed")
    write_run_report(out, [])
    assert sorted(drawn[1:]) == ["sub-03_desc-bundles_tractogram.trx",
                                 "tract-AF_L_tractogram.trx"]
    assert tree_bytes(out) == first
    # another seed is another entry
    write_run_report(out, [], seed=1)
    assert len(drawn) == 3 + 8
    entries = len(list((tmp_path / "cache").rglob("*.json")))
    assert entries == 8 + 1 + 8 + 1  # seed 0, sub-02 written again, seed 1; the heatmap
    assert prune_report_cache(max_age_days=1) == 0
    assert prune_report_cache(max_age_days=-1) == entries


def test_no_report_yet_when_a_graph_plugin_took_the_jobs(tmp_path: Path) -> None:
    from trx_nipype.cli.report import report_after_run
    from trx_nipype.workflows.runner import RunReport

    said: list[str] = []
    run = RunReport(work_dir=str(tmp_path / "work"), plugin="SLURMGraph")
    report_after_run(tmp_path, run, said.append)  # nothing ran here: results come later
    assert said == [f"report: not yet (jobs handed to SLURMGraph); when they have finished: "
                    f"trx-nipype report {os.path.relpath(tmp_path)}"]
    assert run.failures == [] and not (tmp_path / "report.html").exists()


def _forking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawing processes forked from this one, whatever threads earlier tests left running:
    they see this test's monkeypatches."""
    import multiprocessing

    from trx_nipype.reports import run_report

    monkeypatch.setattr(run_report, "_pool_context",
                        lambda: multiprocessing.get_context("fork"))


def _report_bytes(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree_bytes(root).items()
            if k in ("report.html", "qc.tsv") or k.startswith("figures/")}


def _fresh_copy(main_run: Path, dest: Path) -> Path:
    """The main job's outputs without their report (drawn anew)."""
    out = Path(shutil.copytree(main_run, dest, ignore=shutil.ignore_patterns("work")))
    shutil.rmtree(out / "figures")
    for name in ("report.html", "qc.tsv"):
        (out / name).unlink()
    return out


def test_any_number_of_drawing_processes_gives_the_same_bytes(
        main_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trx_nipype.reports import run_report

    drawn_by: dict[str, set[int]] = {}
    real = run_report._draw_output
    marks = tmp_path / "marks"
    marks.mkdir()

    def recording(job):  # noqa: ANN001, ANN202  (runs in the pool's processes too: fork)
        (marks / f"{os.getpid()}_{job.stem}").touch()
        return real(job)

    monkeypatch.setattr(run_report, "_draw_output", recording)
    _forking(monkeypatch)
    expected = _report_bytes(main_run)
    for n in (1, 2, 3):
        monkeypatch.setenv("TRX_NIPYPE_CACHE_DIR", str(tmp_path / f"cache-{n}"))  # draw all
        out = _fresh_copy(main_run, tmp_path / f"out-{n}")
        files = write_run_report(out, [], processes=n)
        assert _report_bytes(out) == expected and len(files.figures) == 14
        drawn_by[str(n)] = {int(p.name.split("_")[0]) for p in marks.iterdir()}
        assert len(list(marks.iterdir())) == 8  # each output drawn once
        for mark in marks.iterdir():
            mark.unlink()
    assert drawn_by["1"] == {os.getpid()}
    for n in (2, 3):  # drawn by the pool's processes, not this one
        assert os.getpid() not in drawn_by[str(n)] and 1 <= len(drawn_by[str(n)]) <= n
    # the default: one process below POOL_MIN_OUTPUTS outputs, else one per CPU (at most 4)
    assert run_report.drawing_processes(run_report.POOL_MIN_OUTPUTS - 1) == 1
    assert 1 <= run_report.drawing_processes(1000) <= min(os.cpu_count() or 1,
                                                          run_report.MAX_PROCESSES)
    with pytest.raises(ValueError, match="processes must be at least 1"):
        run_report.drawing_processes(8, 0)


def test_without_a_pool_the_report_is_drawn_here(main_run: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    import concurrent.futures
    from concurrent.futures.process import BrokenProcessPool

    expected = _report_bytes(main_run)
    monkeypatch.setenv("TRX_NIPYPE_CACHE_DIR", str(tmp_path / "cache"))
    _forking(monkeypatch)  # a pool is tried, whatever threads earlier tests left

    class NoProcesses:  # no semaphores here (some containers), or no process may be forked
        def __init__(self, *args, **kwargs) -> None:
            raise OSError(38, "Function not implemented")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", NoProcesses)
    with caplog.at_level("INFO", logger="trx_nipype.reports"):
        out = _fresh_copy(main_run, tmp_path / "none")
        write_run_report(out, [], processes=2)
    assert _report_bytes(out) == expected
    assert "drawing in this process (OSError" in caplog.text

    class Breaking:  # a worker killed (out of memory) while it wrote the third output's figure
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __enter__(self) -> Breaking:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def map(self, fn, jobs):  # noqa: ANN001, ANN202
            jobs = list(jobs)
            yield fn(jobs[0])
            yield fn(jobs[1])
            (jobs[2].out_dir / "figures").mkdir(exist_ok=True)
            (jobs[2].out_dir / "figures" / f".{jobs[2].stem}_projections.png.k1ll3d").write_bytes(
                b"half a figure")
            raise BrokenProcessPool("A process in the process pool was terminated abruptly")

    monkeypatch.setenv("TRX_NIPYPE_CACHE_DIR", str(tmp_path / "cache-2"))
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Breaking)
    out = _fresh_copy(main_run, tmp_path / "broken")
    write_run_report(out, [], processes=2)
    assert _report_bytes(out) == expected
    assert not [p for p in (out / "figures").iterdir() if p.name.startswith(".")]


def test_a_drawing_error_in_the_pool_is_raised(main_run: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from trx_nipype.reports import run_report

    real = run_report.save_figure
    marks = tmp_path / "marks"
    marks.mkdir()

    def failing(fig, path):  # noqa: ANN001, ANN202  (in the pool's processes: fork)
        (marks / f"{os.getpid()}_{Path(path).name}").touch()
        if "sub-04" in Path(path).name:
            raise PermissionError(13, "Permission denied", str(path))
        return real(fig, path)

    monkeypatch.setenv("TRX_NIPYPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(run_report, "save_figure", failing)
    _forking(monkeypatch)
    out = _fresh_copy(main_run, tmp_path / "out")
    with pytest.raises(PermissionError, match="sub-04_desc-bundles_projections.png"):
        write_run_report(out, [], processes=2)
    assert not (out / "report.html").exists()
    # raised as in one process, not taken for the pool's failure and drawn again here
    assert not list(marks.glob(f"{os.getpid()}_*"))
    assert len(list(marks.glob("*_sub-04_desc-bundles_projections.png"))) == 1


def test_with_other_threads_running_this_process_draws(
        main_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # forking while another thread may hold a lock can hang the child, and a fresh
    # interpreter would run an unguarded user script again: no pool then
    import threading

    from trx_nipype.reports import run_report

    monkeypatch.setenv("TRX_NIPYPE_CACHE_DIR", str(tmp_path / "cache"))
    drawn_by: set[int] = set()
    real = run_report._draw_output

    def recording(job):  # noqa: ANN001, ANN202
        drawn_by.add(os.getpid())
        return real(job)

    monkeypatch.setattr(run_report, "_draw_output", recording)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert run_report._pool_context() is None
        out = _fresh_copy(main_run, tmp_path / "out")
        write_run_report(out, [], processes=2)
    finally:
        stop.set()
        other.join()
    assert drawn_by == {os.getpid()}
    assert _report_bytes(out) == _report_bytes(main_run)
    # a process with no other thread (trx-nipype run, when it draws its report) forks
    code = ("from trx_nipype.reports.run_report import _pool_context; "
            "print(_pool_context().get_start_method())")
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120).stdout.split()
    assert said == ["fork"]


def _report_in_a_daemon(out: str) -> None:
    write_run_report(out, [], processes=2)


def test_a_daemonic_process_draws_its_report_itself(main_run: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # a MultiProc worker (daemonic) may not start processes: the report is drawn in it
    import multiprocessing

    monkeypatch.setenv("TRX_NIPYPE_CACHE_DIR", str(tmp_path / "cache"))
    out = _fresh_copy(main_run, tmp_path / "out")
    worker = multiprocessing.get_context("fork").Process(target=_report_in_a_daemon,
                                                          args=(str(out),), daemon=True)
    worker.start()
    worker.join(300)
    assert worker.exitcode == 0
    assert _report_bytes(out) == _report_bytes(main_run)
