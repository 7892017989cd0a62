"""``trx-nipype run``'s record: a rerun with nothing changed skips Nipype, and only then.

Every kind of change (an input edited even with its size and times kept, a file
added, an output or an intermediate deleted or edited, a stray file in the
output folder, a parameter, the code) must send the run through Nipype; a run
that fails or is cut off leaves no record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trx_nipype.cli.main import main
from trx_nipype.workflows import runner, runrecord
from trx_nipype.workflows.runrecord import RECORD_NAME

from .conftest import digests


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs copied a moment ago count as settled (else the first record is untrusted)."""
    monkeypatch.setattr(runrecord, "RACY_SECONDS", 0.0)


@pytest.fixture
def nipype_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the runs that went through Nipype (``run_workflow``)."""
    calls: list[str] = []
    real = runner.run_workflow

    def counted(wf: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(wf.name)
        return real(wf, *args, **kwargs)

    monkeypatch.setattr(runner, "run_workflow", counted)
    return calls


def _run(data: Path, out: Path, *extra: str) -> int:
    return main(["run", str(data), "--output-dir", str(out), "--no-report", "-q", *extra])


def _record(out: Path) -> dict[str, Any]:
    return json.loads((Path(f"{out}-work") / RECORD_NAME).read_text(encoding="utf-8"))


def _result_mtimes(out: Path) -> dict[str, int]:
    work = Path(f"{out}-work")
    return {p.relative_to(work).as_posix(): p.stat().st_mtime_ns
            for p in work.rglob("result_*.pklz")}


def test_an_unchanged_rerun_skips_nipype_and_says_so(demo_copy: Path, tmp_path: Path,
                                                     trusting: None, nipype_runs: list[str],
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    out = tmp_path / "out"
    assert main(["run", str(demo_copy), "--output-dir", str(out)]) == 0
    first = capsys.readouterr().out
    assert nipype_runs == ["trx_bundles_wf"]
    before, results = digests(out), _result_mtimes(out)
    assert main(["run", str(demo_copy), "--output-dir", str(out)]) == 0
    again = capsys.readouterr().out
    assert nipype_runs == ["trx_bundles_wf"]  # not again
    assert digests(out) == before and _result_mtimes(out) == results
    assert "nothing changed since the last run" in again and "Nipype was not started" in again
    assert "done: 0 nodes ran, 18 cached, 0 failed" in again

    def nodes(text: str, status: str) -> list[str]:  # "  [  3] ran  sub-01  assemble  0.1 s"
        return sorted(" ".join(ln.split()[3:5]) for ln in text.splitlines()
                      if ln.startswith("  [") and ln.split()[2] == status)

    assert nodes(again, "cached") == nodes(first, "ran") and len(nodes(again, "cached")) == 18
    report = [ln for ln in first.splitlines() if ln.startswith("report: ")]
    assert report and report == [ln for ln in again.splitlines() if ln.startswith("report: ")]
    listed = [ln for ln in first.splitlines() if ln.startswith(f"  {os.path.relpath(out)}")]
    assert len(listed) == 8
    assert listed == [ln for ln in again.splitlines() if ln.startswith(f"  {os.path.relpath(out)}")]


def test_an_unchanged_rerun_does_not_import_nipype(demo_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, NIPYPE_NO_ET="1")
    command = [sys.executable, "-m", "trx_nipype.cli.main", "run", str(demo_copy),
               "--output-dir", str(out), "--no-report", "-q", "--plugin", "MultiProc"]
    script = ("import runpy, sys\n"
              "from trx_nipype.workflows import runrecord\n"
              "runrecord.RACY_SECONDS = 0.0\n"
              f"sys.argv = {command[2:]!r}\n"
              "try:\n"
              "    runpy.run_module('trx_nipype.cli.main', run_name='__main__')\n"
              "except SystemExit as exc:\n"
              "    assert not exc.code, exc.code\n"
              "print('NIPYPE' if any(m.split('.')[0] == 'nipype' for m in sys.modules) "
              "else 'NO-NIPYPE')\n")
    for expected in ("NIPYPE", "NO-NIPYPE"):
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[-1] == expected, done.stdout + done.stderr


def _touch_keeping_size(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0  # the same bytes, written again: a new change time
    path.write_bytes(bytes(data))


def _edit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _edit_keeping_size_and_mtime(path: Path) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # as ``touch -r`` or ``cp -p``


def _add_bundle(data: Path, out: Path) -> None:
    src = data / "sub-02" / "dwi" / "CST_R.trk"
    for sub in sorted(data.glob("sub-*")):
        (sub / "dwi" / "OR_L.trk").write_bytes(src.read_bytes())


CHANGES: dict[str, Callable[[Path, Path], None]] = {
    "input rewritten": lambda d, o: _touch_keeping_size(d / "sub-03" / "dwi" / "AF_L.trk"),
    "input edited, size and mtime kept": lambda d, o: _edit_keeping_size_and_mtime(
        d / "sub-03" / "dwi" / "AF_L.trk"),
    "bundle added": _add_bundle,
    "groups sidecar added to an input TRK": lambda d, o: (
        d / "sub-01" / "dwi" / "AF_L.trk.groups.json").write_text('{"groups": {}}'),
    "output deleted": lambda d, o: (o / "population" / "tract-AF_L_tractogram.trx").unlink(),
    "output edited": lambda d, o: _edit_keeping_size_and_mtime(
        o / "sub-01" / "dwi" / "sub-01_desc-bundles_tractogram.trx"),
    "sidecar deleted": lambda d, o: (o / "sub-01" / "dwi"
                                     / "sub-01_desc-bundles_tractogram.json").unlink(),
    "stray file in the output": lambda d, o: (o / "notes.txt").write_text("mine"),
    "intermediate deleted": lambda d, o: next(
        Path(f"{o}-work").rglob("sub-02_desc-bundles_tractogram.trx")).unlink(),
    "intermediate edited": lambda d, o: _edit(
        next(Path(f"{o}-work").rglob("sub-02_desc-bundles_tractogram.trx"))),
    "record of another command": lambda d, o: (Path(f"{o}-work") / RECORD_NAME).write_text(
        json.dumps(dict(_record(o), key={"pipeline": "convert"})), encoding="utf-8"),
    "record unreadable": lambda d, o: (Path(f"{o}-work") / RECORD_NAME).write_text("{"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_goes_through_nipype(change: str, demo_copy: Path, tmp_path: Path,
                                        trusting: None, nipype_runs: list[str]) -> None:
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    CHANGES[change](demo_copy, out)
    assert _run(demo_copy, out) == 0
    assert nipype_runs == ["trx_bundles_wf"] * 2, change
    assert _record(out)["trusted"]
    fresh = tmp_path / "fresh"  # what a first run over the inputs as they are now writes
    assert _run(demo_copy, fresh) == 0
    assert digests(out) == digests(fresh), change  # no edit left in place, none handed on
    assert _run(demo_copy, out) == 0  # and now nothing changed: recorded again
    assert len(nipype_runs) == 3, change
    assert digests(out) == digests(fresh)


@pytest.mark.parametrize("option", [["--seed", "3", "--streamlines-per-subject", "20"],
                                    ["--hash-method", "content"], ["--no-population"],
                                    ["--subjects", "sub-01", "sub-02"]])
def test_other_parameters_go_through_nipype(option: list[str], demo_copy: Path, tmp_path: Path,
                                            trusting: None, nipype_runs: list[str]) -> None:
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    assert _run(demo_copy, out, *option) == 0
    assert len(nipype_runs) == 2
    assert _run(demo_copy, out, *option) == 0
    assert len(nipype_runs) == 2


def test_the_report_is_part_of_the_command(demo_copy: Path, tmp_path: Path, trusting: None,
                                           nipype_runs: list[str]) -> None:
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0  # --no-report
    assert main(["run", str(demo_copy), "--output-dir", str(out), "-q"]) == 0
    assert len(nipype_runs) == 2 and (out / "report.html").is_file()
    (out / "figures").joinpath(next(p.name for p in (out / "figures").iterdir())).unlink()
    assert main(["run", str(demo_copy), "--output-dir", str(out), "-q"]) == 0
    assert len(nipype_runs) == 3  # a figure gone: the report is drawn again


def test_a_change_of_code_goes_through_nipype(demo_copy: Path, tmp_path: Path, trusting: None,
                                              nipype_runs: list[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    real = runrecord.code_state
    monkeypatch.setattr(runrecord, "code_state",
                        lambda: dict(real(), libraries={"nipype": "0.0"}))
    assert _run(demo_copy, out) == 0
    assert len(nipype_runs) == 2


def test_code_state_follows_the_sources(tmp_path: Path) -> None:
    state = runrecord.code_state()
    assert state == runrecord.code_state()
    assert set(state["libraries"]) == set(runrecord.LIBRARIES)
    assert all(state["libraries"].values())


def test_a_failed_run_leaves_no_record(demo_copy: Path, tmp_path: Path, trusting: None,
                                       nipype_runs: list[str]) -> None:
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    bad = demo_copy / "sub-04" / "dwi" / "CST_R.trk"
    good = bad.read_bytes()
    bad.write_bytes(b"not a TRK file")
    assert _run(demo_copy, out) == 1
    assert not (Path(f"{out}-work") / RECORD_NAME).exists()
    assert _run(demo_copy, out) == 1  # still broken: Nipype again, the same failure
    bad.write_bytes(good)
    assert _run(demo_copy, out) == 0
    assert len(nipype_runs) == 4


def test_a_run_cut_off_leaves_no_record(demo_copy: Path, tmp_path: Path, trusting: None,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    (demo_copy / "sub-01" / "dwi" / "AF_L.trk").touch()

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_workflow", interrupted)
    assert _run(demo_copy, out) not in (0, 1)  # "trx-nipype: interrupted"
    assert not (Path(f"{out}-work") / RECORD_NAME).exists()


def test_inputs_changed_just_before_the_run_make_an_untrusted_record(
        demo_copy: Path, tmp_path: Path, nipype_runs: list[str]) -> None:
    out = tmp_path / "out"
    (demo_copy / "sub-01" / "dwi" / "AF_L.trk").touch()  # within RACY_SECONDS of the run
    assert _run(demo_copy, out) == 0
    assert _record(out)["trusted"] is False
    assert _run(demo_copy, out) == 0  # could have changed again within the clock's tick
    assert len(nipype_runs) == 2


def test_tree_state_sees_files_links_and_nesting(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.trx").write_bytes(b"123")
    (tmp_path / "top.json").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "top.json")
    (tmp_path / ".trx-nipype-run.lock").write_text("")
    state = runrecord.tree_state(tmp_path)
    assert sorted(state) == ["a/b/x.trx", "link", "top.json"]
    assert state["a/b/x.trx"][0] == 3
    assert runrecord.tree_state(tmp_path / "missing") == {}


def test_the_plugin_names_known_without_nipype_are_nipype_s() -> None:
    from nipype.pipeline import plugins

    names = {n.removesuffix("Plugin") for n in dir(plugins)
             if n.endswith("Plugin") and n != "Plugin"}
    assert set(runner.NIPYPE_PLUGINS) == names
    assert set(runner.GRAPH_PLUGINS) <= names and set(runner.LOCAL_PLUGINS) <= names


def test_an_unreadable_sidecar_is_named_not_a_crash(demo_copy: Path, tmp_path: Path,
                                                    trusting: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    sidecar = out / "population" / "tract-AF_L_tractogram.json"
    good = sidecar.read_text()
    sidecar.write_text('{"Counts": ')
    assert _run(demo_copy, out) == 0  # the record sees the edit: the sidecar is made again
    assert sidecar.read_text() == good
    capsys.readouterr()
    sidecar.write_text('{"Counts": ')  # and without a record (a work dir of an older version)
    (Path(f"{out}-work") / RECORD_NAME).unlink()
    assert main(["run", str(demo_copy), "--output-dir", str(out), "--no-report"]) == 0
    captured = capsys.readouterr()
    assert f"{sidecar}: cannot read the sidecar" in captured.err
    assert "tract-AF_L_tractogram.trx  (? streamlines; groups: -)" in captured.out


def test_a_trx_folder_rewritten_in_place_goes_through_nipype(demo_copy: Path, tmp_path: Path,
                                                             trusting: None,
                                                             nipype_runs: list[str]) -> None:
    # a member rewritten in place changes no time of its folder: the folder's files count
    from trx_nipype.core import convert

    dwi = demo_copy / "sub-02" / "dwi"
    convert(dwi / "AF_L.trk", dwi / "AF_L", out_format="trx")  # a TRX folder, no extension
    (dwi / "AF_L.trk").unlink()
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    first = digests(out)
    assert _run(demo_copy, out) == 0 and len(nipype_runs) == 1
    folder_state = (dwi / "AF_L").stat()
    positions = next((dwi / "AF_L").glob("positions.3.*"))
    data = bytearray(positions.read_bytes())
    data[:12] = bytes(12)  # the first point moves to the origin: same size, same name
    positions.write_bytes(bytes(data))
    assert (dwi / "AF_L").stat().st_mtime_ns == folder_state.st_mtime_ns
    assert _run(demo_copy, out) == 0
    assert len(nipype_runs) == 2
    assert digests(out)["sub-02/dwi/sub-02_desc-bundles_tractogram.trx"] != \
        first["sub-02/dwi/sub-02_desc-bundles_tractogram.trx"]


def test_a_nipype_configuration_file_goes_through_nipype(demo_copy: Path, tmp_path: Path,
                                                         trusting: None,
                                                         nipype_runs: list[str],
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    # it may set the hash method: a file Nipype reads, present or not
    monkeypatch.setenv("NIPYPE_CONFIG_DIR", str(tmp_path / "nipype-config"))
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    (tmp_path / "nipype-config").mkdir()
    (tmp_path / "nipype-config" / "nipype.cfg").write_text("[execution]\nhash_method = content\n")
    assert _run(demo_copy, out) == 0
    assert len(nipype_runs) == 2


def test_a_copied_work_dir_is_judged_by_its_own_files(demo_copy: Path, tmp_path: Path,
                                                      trusting: None,
                                                      nipype_runs: list[str]) -> None:
    import shutil

    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    copy = tmp_path / "copy-work"
    shutil.copytree(f"{out}-work", copy, symlinks=True)
    shutil.rmtree(copy / "trx_bundles_wf")
    assert _run(demo_copy, out, "--work-dir", str(copy)) == 0
    assert len(nipype_runs) == 2  # not the fast path: the original's files are not its own


def test_tree_state_skips_lock_files_and_files_that_vanish(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from trx_nipype.workflows.runlock import LOCK_NAME

    (tmp_path / "kept.trx").write_bytes(b"1")
    (tmp_path / f"{LOCK_NAME}.node7.4242.abcd").write_text("")  # a waiting run's attempt
    (tmp_path / "vanishing.trx").write_bytes(b"2")
    listed = list(os.scandir(tmp_path))
    (tmp_path / "vanishing.trx").unlink()  # gone between listing and looking
    monkeypatch.setattr(runrecord.os, "scandir", lambda path: iter(listed))
    assert sorted(runrecord.tree_state(tmp_path)) == ["kept.trx"]


def test_an_unchanged_rerun_repeats_the_warning_about_earlier_outputs(
        demo_copy: Path, tmp_path: Path, trusting: None, nipype_runs: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _run(demo_copy, out) == 0
    assert _run(demo_copy, out, "--subjects", "sub-01", "sub-02") == 0
    through_nipype = capsys.readouterr().err
    assert "sub-03" in through_nipype and "warning" in through_nipype
    assert _run(demo_copy, out, "--subjects", "sub-01", "sub-02") == 0
    assert len(nipype_runs) == 2  # the record's path, with the same warning
    assert capsys.readouterr().err == through_nipype
