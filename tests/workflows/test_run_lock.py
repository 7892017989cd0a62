"""One run at a time on a work dir and an output folder: the second is refused at once
(naming the holder) or waits when asked; a lock left by a dead process is taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trx_nipype.cli.main import main
from trx_nipype.workflows.runlock import LOCK_NAME, RunLockedError, read_holder, run_lock

from .conftest import digests
from .test_main_job import PINNED

#: a run of the bundles pipeline (run_workflow, as trx-nipype run calls it) with one more
#: node that waits for a file: the test decides when the run ends
HOLDER = textwrap.dedent(r"""
    import sys
    from pathlib import Path
    from nipype.interfaces.utility import Function
    from nipype.pipeline import engine as pe
    from trx_nipype.workflows import find_dataset, init_bundles_pipeline_wf, run_workflow

    data, out, work, plugin, go = sys.argv[1:]

    block = (
        "def block(go):\n"
        "    import os, time\n"
        "    open(go + '.ready', 'w').close()\n"
        "    t = time.time()\n"
        "    while not os.path.exists(go) and time.time() - t < 120:\n"
        "        time.sleep(0.05)\n"
        "    return go\n")
    wf = init_bundles_pipeline_wf(find_dataset(data), out)
    wf.add_nodes([pe.Node(Function(["go"], ["go"], block), name="block")])
    wf.get_node("block").inputs.go = go
    report = run_workflow(wf, work, plugin=plugin, nprocs=2)
    sys.exit(0 if report.ok else 1)
""")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trx_nipype.cli.main", "run", *args]


@pytest.mark.parametrize("plugin", ["Linear", "MultiProc"])
def test_a_second_run_is_refused_at_once_then_waits_when_asked(demo_copy: Path, tmp_path: Path,
                                                               plugin: str) -> None:
    out, work, go = tmp_path / "out", tmp_path / "work", tmp_path / "go"
    env = dict(os.environ, NIPYPE_NO_ET="1")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(demo_copy), str(out), str(work),
                               plugin, str(go)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(Path(f"{go}.ready"), holder)  # the first run is inside Nipype's loop
        command = _cli(str(demo_copy), "--output-dir", str(out), "--work-dir", str(work),
                       "--plugin", plugin, "--nprocs", "2")
        started = time.monotonic()
        second = subprocess.run([*command, "-q"], env=env, capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2, second.stderr
        assert time.monotonic() - started < 60  # refused at once, never hanging
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith("trx-nipype: error: run: ") and "is in use by another run: " \
            f"pid {holder.pid} on {socket.gethostname()}, started " in line, line
        assert "--wait-for-lock" in line
        assert read_holder(work / LOCK_NAME).pid == holder.pid  # untouched
        assert read_holder(out / LOCK_NAME).pid == holder.pid
        # asked to wait: it waits for the first run to end, then runs (all cached)
        third = subprocess.Popen([*command, "--wait-for-lock", "120", "--no-report"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "waiting for the run that holds " in third.stdout.readline()
        go.touch()
        assert holder.wait(timeout=120) == 0, holder.communicate()
        stdout, stderr = third.communicate(timeout=120)
        assert third.returncode == 0, stderr
        assert "done: 0 nodes ran, 18 cached" in stdout
    finally:
        go.touch()
        for proc in (holder,):
            if proc.poll() is None:
                proc.kill()
    assert digests(out) == PINNED
    assert not (out / LOCK_NAME).exists() and not (work / LOCK_NAME).exists()


def test_the_lock_of_a_killed_run_is_taken_over(demo_copy: Path, tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    take = ("import sys, time; from trx_nipype.workflows.runlock import run_lock\n"
            "with run_lock(sys.argv[1:], purpose='trx-nipype run'):\n"
            "    print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", take, str(work), str(out)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert read_holder(out / LOCK_NAME).pid == proc.pid  # left behind
    stray = out / f"{LOCK_NAME}.{socket.gethostname()}.{proc.pid}.0123abcd"
    stray.write_text("{}", encoding="utf-8")  # as if killed between writing and linking
    assert main(["run", str(demo_copy), "--output-dir", str(out), "--work-dir", str(work),
                 "-q", "--no-report"]) == 0
    assert digests(out) == PINNED
    assert not (out / LOCK_NAME).exists() and not (work / LOCK_NAME).exists()
    assert not stray.exists()


def _fake_lock(folder: Path, **fields: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"host": socket.gethostname(), "pid": os.getpid(), "started": "2026-01-01 00:00:00",
           "token": "f" * 32, "boot_id": "", "pid_start": "", "purpose": "trx-nipype run"}
    doc.update(fields)
    lock = folder / LOCK_NAME
    lock.write_text(json.dumps(doc), encoding="utf-8")
    return lock


def test_who_holds_a_lock_decides_whether_it_is_taken_over(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        live = _fake_lock(tmp_path / "live", pid=sleeper.pid)
        with pytest.raises(RunLockedError, match=f"pid {sleeper.pid} on .*started 2026-01-01"):
            with run_lock([tmp_path / "live"]):
                pass
        started = time.monotonic()
        with pytest.raises(RunLockedError, match=r"\(waited 1 s\)"):
            with run_lock([tmp_path / "live"], wait=1.0):
                pass
        assert time.monotonic() - started >= 1.0
        assert read_holder(live).pid == sleeper.pid  # never touched
    finally:
        sleeper.kill()
        sleeper.wait()
    # the same host and: no such process / a reused process id / another boot
    dead = [_fake_lock(tmp_path / "dead", pid=sleeper.pid),
            _fake_lock(tmp_path / "reused", pid_start="1"),
            _fake_lock(tmp_path / "rebooted", boot_id="another-boot")]
    with run_lock([lock.parent for lock in dead]):
        assert all(read_holder(lock).pid == os.getpid() and read_holder(lock).token != "f" * 32
                   for lock in dead)
    assert not any(lock.exists() for lock in dead)
    # another host: never judged from here; the message says how to remove it by hand
    remote = _fake_lock(tmp_path / "remote", host="node-elsewhere", pid=1)
    with pytest.raises(RunLockedError, match=f"remove {remote}"):
        with run_lock([tmp_path / "remote"]):
            pass
    assert remote.exists()


def test_locks_are_reentrant_and_leave_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with run_lock([out, tmp_path / "work", out / "sub" / ".."]):
        assert read_holder(out / LOCK_NAME).pid == os.getpid()
        with run_lock([out], purpose="nested"):  # trx-nipype run, then run_workflow
            assert read_holder(out / LOCK_NAME).purpose == ""
        assert (out / LOCK_NAME).exists()
    assert not out.exists()  # created for the run, left empty: removed
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["new"]
