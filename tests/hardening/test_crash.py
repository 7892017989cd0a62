"""Crashes mid-write: SIGKILL / SIGTERM while saving never leave a partial file.

Guarantee: after a writer dies, the destination is either absent or the
previous complete file; SIGTERM removes the temporary sibling itself, and
``sweep_stale_siblings`` removes what a SIGKILL left behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _child import CHILD, leftovers, make, tree_digest

from trx_nipype.core import load, save
from trx_nipype.core.tempfiles import (
    _HOST,
    SIBLING_MARK,
    sweep_stale_siblings,
    sweep_stale_temp_dirs,
)


def start(mode: str, dest: Path, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(CHILD), mode, str(dest), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started", proc.stderr.read()
    return proc


@pytest.mark.parametrize("suffix", [".trx", ""], ids=["zip", "directory"])
def test_sigkill_mid_save_leaves_previous_file_or_new_one(tmp_path: Path, suffix: str) -> None:
    dest = tmp_path / f"out{suffix}"
    save(make(300, seed=1), dest)
    previous = tree_digest(dest)
    expected_new = make(4000, seed=2)
    rng = random.Random(1234)
    mid_write = 0
    for _ in range(4):
        proc = start("slow-save", dest, "2", "0.002")
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        digest = tree_digest(dest)
        if digest != previous:  # the kill came after the rename: the new file, complete
            with load(dest) as trx:
                np.testing.assert_array_equal(trx.positions, expected_new.positions)
                np.testing.assert_array_equal(trx.dps["w"], expected_new.dps["w"])
            previous = digest
        mid_write += bool(leftovers(tmp_path))
        swept = sweep_stale_siblings(tmp_path)
        assert leftovers(tmp_path) == [], swept
    assert mid_write, "no kill landed mid-write: the test proved nothing"
    with load(dest) as trx:  # whatever survived is a valid TRX
        assert len(trx) in (300, 4000)


def test_sweep_keeps_siblings_of_live_writers(tmp_path: Path) -> None:
    dest = tmp_path / "out.trx"
    proc = start("slow-save", dest, "3", "0.01")
    try:
        time.sleep(0.2)
        assert leftovers(tmp_path), "the writer should have a temporary sibling by now"
        assert sweep_stale_siblings(tmp_path) == []  # its owner is alive
        assert leftovers(tmp_path)
    finally:
        proc.kill()
        proc.wait()
    assert sweep_stale_siblings(tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".trx", ""], ids=["zip", "directory"])
def test_sigterm_mid_save_removes_its_temporary_output(tmp_path: Path, suffix: str) -> None:
    dest = tmp_path / f"out{suffix}"
    save(make(300, seed=1), dest)
    previous = tree_digest(dest)
    proc = start("slow-save", dest, "2", "0.01")
    deadline = time.monotonic() + 30
    while not leftovers(tmp_path) and time.monotonic() < deadline:  # wait until mid-write
        time.sleep(0.01)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    assert code == 128 + signal.SIGTERM, proc.stderr.read()
    assert leftovers(tmp_path) == []  # removed by the writer itself, not by a sweep
    assert tree_digest(dest) == previous


def test_stale_sibling_names_of_other_files_are_left_alone(tmp_path: Path) -> None:
    keep = [tmp_path / "notes.trx-tmp-1-x", tmp_path / ".hidden", tmp_path / "a.trx"]
    for p in keep:
        p.write_text("x", encoding="utf-8")
    live = tmp_path / f".b.trx{SIBLING_MARK}{_HOST}-{os.getpid()}-abc"
    elsewhere = tmp_path / f".c.trx{SIBLING_MARK}otherhost-999999999-abc"  # a cluster node
    dead = tmp_path / f".a.trx{SIBLING_MARK}{_HOST}-999999999-abc"
    for p in (live, elsewhere, dead):
        p.write_text("partial", encoding="utf-8")
    assert sweep_stale_siblings(tmp_path) == [dead]
    assert all(p.exists() for p in [*keep, live, elsewhere])


def test_temp_folders_of_dead_processes_are_swept(tmp_path: Path) -> None:
    """What a SIGKILLed process left under the temp root goes; nothing else does."""
    names = {"dead": f"trx_nipype-extract-{_HOST}-999999999-ab12_cd",
             "live": f"trx_nipype-extract-{_HOST}-{os.getpid()}-ab12_cd",
             "elsewhere": "trx_nipype-extract-otherhost-999999999-ab12_cd",
             "foreign": "something-else-999999999-x"}
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "member-000000.bin").write_bytes(b"x")
    assert sweep_stale_temp_dirs(tmp_path) == [tmp_path / names["dead"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        v for k, v in names.items() if k != "dead")


def test_a_killed_process_temp_folder_is_swept_by_the_next_one(tmp_path: Path) -> None:
    root = tmp_path / "root"
    code = ("import os, sys; from trx_nipype.core.tempfiles import make_temp_dir; "
            "print(make_temp_dir('extract'), flush=True); os.kill(os.getpid(), 9)")
    env = {**os.environ, "TRX_NIPYPE_TMPDIR": str(root)}
    killed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    left = Path(killed.stdout.strip())
    assert killed.returncode == -signal.SIGKILL and left.is_dir()
    code = ("from trx_nipype.core.tempfiles import make_temp_dir, remove_temp_dir; "
            "remove_temp_dir(make_temp_dir('extract'))")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert not left.exists() and list(root.iterdir()) == []
