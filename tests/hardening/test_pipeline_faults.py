"""Pipelines under faults: a workflow run killed mid-node, then rerun.

Guarantee: when the process running the bundles pipeline (the demo data, the
workflow ``trx-nipype run`` builds) is killed with SIGKILL while a node is
executing -- once among the subject nodes, once among the population nodes --
a rerun with the same work and output folders reruns every interrupted node
(a partial output is never reused) and writes exactly the bytes of a clean
run in another folder, with no temporary file left in the outputs.

The other half of the issue's item 6 -- a corrupt input in one subject fails
that subject with a message naming the subject and the file while the other
subjects complete -- is proved by
``tests/workflows/test_main_job.py::test_bad_inputs_name_subject_file_and_problem``.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _child import CHILD

from trx_nipype.core.tempfiles import SIBLING_MARK
from trx_nipype.data import fetch_demo_dataset
from trx_nipype.workflows import find_dataset, init_bundles_pipeline_wf, run_workflow


def trx_digests(out_dir: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of the .trx outputs (the work folder aside)."""
    return {p.relative_to(out_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out_dir.rglob("*.trx"))
            if "work" not in p.relative_to(out_dir).parts}


def unfinished_nodes(work: Path) -> set[Path]:
    """Node folders a run started (inputs saved) but did not finish (no result file)."""
    return {p.parent for p in work.rglob("_inputs.pklz")
            if not any(p.parent.glob("result_*.pklz"))}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset (5 subjects x 3 bundles), extracted once."""
    return fetch_demo_dataset(tmp_path_factory.mktemp("demo") / "data")


@pytest.fixture(scope="module")
def clean_digests(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The outputs of an uninterrupted run in a folder of its own."""
    out = tmp_path_factory.mktemp("clean") / "out"
    report = run_workflow(init_bundles_pipeline_wf(find_dataset(dataset), out), out / "work")
    assert report.ok, [f.line() for f in report.failures]
    digests = trx_digests(out)
    assert len(digests) == 8  # 5 subjects + 3 bundles
    return digests


def kill_when(work: Path, marker: str, out: Path, data: Path, rng: random.Random) -> set[Path]:
    """Run the paced pipeline; once a ``marker`` node folder exists and a node is executing,
    SIGKILL it. Returns the nodes left unfinished (retrying if the kill fell between nodes)."""
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(CHILD), "paced-run", str(out), "0.01",
                                 str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert proc.stdout.readline().strip() == "started", proc.stderr.read()
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline and not (
                    any(work.rglob(marker)) and unfinished_nodes(work)):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.02))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        if unfinished := unfinished_nodes(work):
            return unfinished
    return set()


def test_killed_run_then_rerun_gives_the_clean_bytes(dataset: Path, tmp_path: Path,
                                                     clean_digests: dict[str, str]) -> None:
    data = Path(shutil.copytree(dataset, tmp_path / "data"))  # timestamps kept
    out = tmp_path / "out"
    work = out / "work"
    rng = random.Random(6)
    first = kill_when(work, "assemble", out, data, rng)  # among the subject nodes
    assert first, "the first kill landed while no node was executing: the test proved nothing"
    second = kill_when(work, "population_bundles_wf", out, data, rng)
    assert second, "the second kill landed while no node was executing"

    report = run_workflow(init_bundles_pipeline_wf(find_dataset(data), out), work)
    assert report.ok, [f.line() for f in report.failures]
    ran = {Path(e.output_dir) for e in report.ran}
    # nothing half-done is reused: each interrupted node ran again, and finished
    assert second <= ran
    assert unfinished_nodes(work) == set()
    assert trx_digests(out) == clean_digests
    stray = [p for p in out.rglob(f"*{SIBLING_MARK}*") if "work" not in p.relative_to(out).parts]
    assert stray == []
