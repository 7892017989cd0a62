"""What a run leaves behind and how it fails: no environment in any file it writes; a
worker killed by a signal is a failure naming subject, node and signal."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.utility import Function, IdentityInterface
from nipype.pipeline import engine as pe
from trx_test_helpers import files_holding

from trx_nipype.cli.main import main
from trx_nipype.workflows import default_work_dir, run_workflow

SECRET = "s3cr3t-7d1f0c2a9b"


def test_no_environment_variable_reaches_any_file(tmp_path: Path, monkeypatch) -> None:
    # Nipype pickles the whole environment into every node result (and lists it in every
    # node report): a token in the environment ended up in 10 files of OUTPUT_DIR/work
    monkeypatch.setenv("MY_API_TOKEN", SECRET)
    out = tmp_path / "demo-out"
    assert main(["run", "--output-dir", str(out), "-q", "--plugin", "MultiProc",
                 "--nprocs", "2"]) == 0
    work = default_work_dir(out)
    assert work == tmp_path / "demo-out-work" and (work / "demo-data").is_dir()
    assert not (out / "work").exists()  # the cache is not part of the shareable tree
    results = list(work.rglob("result_*.pklz"))
    assert len(results) == 18 and files_holding(work, b"NIPYPE_NO_ET") == []
    assert files_holding(out, SECRET.encode()) == []
    assert files_holding(work, SECRET.encode()) == []


def _crunch(subject: str, victim: str) -> str:
    import os
    import signal
    import time

    time.sleep(0.5)  # the others run meanwhile
    if subject == victim:  # as a read through a map of a file truncated meanwhile
        os.kill(os.getpid(), signal.SIGBUS)
    return subject


def killer_workflow(subjects: list[str], victim: str = "02") -> pe.Workflow:
    """One node per subject (iterables); the victim's process dies of SIGBUS."""
    wf = pe.Workflow(name="killer_wf")
    source = pe.Node(IdentityInterface(fields=["subject"]), name="source")
    source.iterables = ("subject", subjects)
    crunch = pe.Node(Function(["subject", "victim"], ["out"], _crunch), name="crunch")
    crunch.inputs.victim = victim
    wf.connect(source, "subject", crunch, "subject")
    return wf


def test_a_worker_killed_by_a_signal_names_subject_node_and_signal(tmp_path: Path) -> None:
    # Nipype's MultiProc: "A child process terminated abruptly, the process pool is not
    # usable anymore", no subject, no node, and the other subjects lost (or a hang)
    report = run_workflow(killer_workflow(["01", "02", "03", "04"]), tmp_path / "work",
                          plugin="MultiProc", nprocs=2)
    assert [(f.context, f.node) for f in report.failures] == [("sub-02", "crunch")]
    assert "was killed by signal SIGBUS (Bus error" in report.failures[0].message
    assert sorted(e.context for e in report.ran) == ["sub-01", "sub-03", "sub-04"]
    assert len(list((tmp_path / "work" / "crash").glob("crash-*.pklz"))) == 1
