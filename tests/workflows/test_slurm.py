"""The main job on a real Slurm (``.ci/start-slurm`` brings up a one-node one).

For each of Nipype's Slurm plugins, as ``trx-nipype run`` drives them (with
``LOGNAME`` unset, as in many batch environments):

1. a run where one subject's file is broken: exit 1 with a line naming the
   subject, the node and the problem; the other subject's file is written,
   byte-identical to Linear's; no job is left in the queue;
2. the file repaired, the same command: every output written, byte-identical
   to a Linear run of the same data (only what was missing runs);
3. the same command again: exit 0, nothing submitted, nothing changed.

Without a reachable Slurm these tests skip -- unless ``TRX_NIPYPE_REQUIRE_SLURM=1``
(set by ``.ci/run``), which makes them fail: CI cannot pass without running them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from trx_test_helpers import files_holding

from trx_nipype.cli.main import main
from trx_nipype.workflows import default_work_dir, run_workflow

from .conftest import digests
from .test_run_safety import SECRET, killer_workflow

REQUIRE = os.environ.get("TRX_NIPYPE_REQUIRE_SLURM") == "1"
SUBJECTS = ("sub-01", "sub-02")
BUNDLES = ("AF_L", "CST_R")


def slurm_problem() -> str | None:
    """Why no Slurm node can run jobs here (None: one can)."""
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        return "no sbatch/squeue on the PATH (.ci/start-slurm installs a one-node Slurm)"
    proc = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True,
                          text=True, timeout=30, check=False)
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s.rstrip("*") in ("idle", "mixed", "allocated")
                                       for s in states):
        return f"no Slurm node up (sinfo: {proc.stdout.strip() or proc.stderr.strip()})"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    problem = slurm_problem()
    if problem is not None:
        if REQUIRE:
            pytest.fail(f"TRX_NIPYPE_REQUIRE_SLURM=1 but {problem}")
        pytest.skip(problem)


def our_jobs() -> list[str]:
    proc = subprocess.run(["squeue", "--noheader", "--me", "--format=%i %j %T"],
                          capture_output=True, text=True, check=True)
    return [line for line in proc.stdout.splitlines() if line.strip()]


def wait_until_no_job_is_left(timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while our_jobs():
        assert time.monotonic() < deadline, our_jobs()
        time.sleep(0.5)


def last_job_id() -> int:
    """Submit an empty job: its id tells how many jobs were submitted since the last one."""
    proc = subprocess.run(["sbatch", "--parsable", "--output=/dev/null", "--wrap", "true"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout.strip().split(";")[0])


@pytest.fixture(scope="module")
def small_dataset(demo_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two subjects x two bundles of the demo data (few jobs: the tests stay quick)."""
    root = tmp_path_factory.mktemp("slurm-data") / "data"
    for subject in SUBJECTS:
        (root / subject / "dwi").mkdir(parents=True)
        for bundle in BUNDLES:
            shutil.copy2(demo_source / subject / "dwi" / f"{bundle}.trk",
                         root / subject / "dwi" / f"{bundle}.trk")
    return root


@pytest.fixture(scope="module")
def linear_digests(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> dict[str, str]:
    out = tmp_path_factory.mktemp("linear") / "out"
    assert main(["run", str(small_dataset), "--output-dir", str(out), "-q"]) == 0
    found = digests(out)
    assert len(found) == len(SUBJECTS) + len(BUNDLES)
    return found


@pytest.mark.parametrize("plugin", ["SLURMGraph", "SLURM"])
def test_main_job_on_slurm(slurm: None, plugin: str, small_dataset: Path,
                           linear_digests: dict[str, str], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LOGNAME", raising=False)  # Nipype's SLURM plugin used to die on it
    monkeypatch.setenv("MY_API_TOKEN", SECRET)  # jobs inherit it: kept out of every file
    data = Path(shutil.copytree(small_dataset, tmp_path / "data"))
    broken = data / "sub-02" / "dwi" / "CST_R.trk"
    good = broken.read_bytes()
    broken.write_bytes(good[:3000])
    out = tmp_path / "out"
    command = ["run", str(data), "--output-dir", str(out), "--plugin", plugin, "-q"]

    # 1. one subject broken: named, the other written, nothing left in the queue
    assert main(command) == 1
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("trx-nipype: error: ")]
    assert len(errors) == 1, err
    assert "sub-02: assemble: " in errors[0] and "sub-02/dwi/CST_R.trk" in errors[0]
    assert "truncated" in errors[0]
    written = digests(out)
    assert written == {p: d for p, d in linear_digests.items() if p.startswith("sub-01/")}
    assert our_jobs() == []

    # 2. repaired: the rest runs, every output is Linear's bytes
    broken.write_bytes(good)
    assert main(command) == 0, capsys.readouterr().err
    assert digests(out) == linear_digests
    assert our_jobs() == []
    capsys.readouterr()

    # 3. again: nothing submitted, nothing changed
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()
              and "work" not in p.relative_to(out).parts}
    before = last_job_id()
    assert main(command[:-1]) == 0
    stdout = capsys.readouterr().out
    assert last_job_id() == before + 1, "the rerun submitted jobs"
    assert "done: 0 nodes ran" in stdout
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    wait_until_no_job_is_left()
    # the jobs' results and node reports are cleaned of the environment once they end
    assert files_holding(default_work_dir(out), SECRET.encode()) == []
    assert files_holding(out, SECRET.encode()) == []


def test_no_wait_says_it_did_not_wait(slurm: None, small_dataset: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["run", str(small_dataset), "--output-dir", str(out), "--plugin",
                 "SLURMGraph", "--no-wait"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "submitted: 10 job(s) handed to SLURMGraph, not waited for (--no-wait)" in stdout
    assert "done:" not in stdout
    wait_until_no_job_is_left()
    # once the queue is empty, the same command without --no-wait reports what was done
    assert main(["run", str(small_dataset), "--output-dir", str(out), "--plugin",
                 "SLURMGraph"]) == 0
    assert "done: 0 nodes ran, 10 cached, 0 failed" in capsys.readouterr().out
    assert len(digests(out)) == len(SUBJECTS) + len(BUNDLES)
    assert our_jobs() == []


def test_jobs_stuck_behind_a_failure_are_cancelled_and_explained(
        slurm: None, small_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # a Slurm without DependencyParameters=kill_invalid_depend keeps the jobs behind a failed
    # one pending forever (reason DependencyNeverSatisfied): the run cancels them and says
    # how to have Slurm do it. Such a job is added to what squeue reports, once.
    from trx_nipype.workflows import plugins

    real_jobs = plugins.SlurmQueue.jobs
    stuck = plugins.QueuedJob("999999", "j3_ds_subject", "PENDING", "DependencyNeverSatisfied")
    told: list[list[plugins.QueuedJob]] = []
    cancelled: list[str] = []

    def jobs(self, *args, **kwargs):  # noqa: ANN001, ANN202
        found = real_jobs(self, *args, **kwargs)
        if not told:
            found = [*found, stuck]
        told.append(found)
        return found

    monkeypatch.setattr(plugins.SlurmQueue, "jobs", jobs)
    monkeypatch.setattr(plugins.SlurmQueue, "cancel",
                        staticmethod(lambda ids: cancelled.extend(ids)))
    out = tmp_path / "out"
    assert main(["run", str(small_dataset), "--output-dir", str(out), "--plugin",
                 "SLURMGraph", "--no-population", "-q"]) == 0
    err = capsys.readouterr().err
    assert cancelled == ["999999"]
    assert "1 Slurm job(s) waited for a job that failed" in err
    assert "DependencyParameters=kill_invalid_depend" in err
    assert our_jobs() == []


@pytest.mark.parametrize("plugin", ["SLURMGraph", "SLURM"])
def test_a_job_killed_by_a_signal_names_subject_node_and_signal(slurm: None, plugin: str,
                                                               tmp_path: Path) -> None:
    # the job's Python dies of SIGBUS: no result, no crash file; Slurm knows how it ended
    wf = killer_workflow(["01", "02"])
    wf.config["execution"]["job_finished_timeout"] = "1"  # Nipype's wait for a result file
    report = run_workflow(wf, tmp_path / "work", plugin=plugin)
    assert [(f.context, f.node) for f in report.failures] == [("sub-02", "crunch")]
    assert "its Slurm job " in report.failures[0].message
    assert "by signal SIGBUS (Bus error" in report.failures[0].message, report.failures
    assert [e.context for e in report.ran] == ["sub-01"]
    assert our_jobs() == []
