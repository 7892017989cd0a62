"""Full disks, shared inputs, racing writers and read-only inputs.

Guarantees:
- a write that fails part-way (``RLIMIT_FSIZE``, standing in for a full disk)
  raises an ``OSError`` naming the destination, leaves no partial output and
  leaves the destination's previous content and the inputs untouched;
- two processes reading one input and writing different outputs both succeed;
  two writers racing to one destination leave one complete file;
- inputs on read-only files and folders load and process, also as a non-root user.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _child import CHILD, leftovers, make, tree_digest

from trx_nipype.core import load, save


def run_child(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


@pytest.mark.parametrize("suffix", [".trx", ""], ids=["zip", "directory"])
def test_write_failing_part_way_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    dest = tmp_path / f"out{suffix}"
    save(make(50, seed=3), dest)
    previous = tree_digest(dest)
    result = run_child("fsize-save", str(dest), "20000", str(2 << 20))  # ~1M vertices, 2 MiB cap
    assert result.returncode == 3, result.stderr
    assert "ERROR TrxWriteError" in result.stdout
    assert str(dest) in result.stdout and "File too large" in result.stdout
    assert tree_digest(dest) == previous
    assert leftovers(tmp_path) == []


def test_failed_write_to_new_destination_creates_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "new.trx"
    result = run_child("fsize-save", str(dest), "20000", str(1 << 20))
    assert result.returncode == 3, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_two_readers_of_one_input_write_different_outputs(tmp_path: Path) -> None:
    src = tmp_path / "in.trx"
    save(make(3000, seed=4), src)
    before = tree_digest(src)
    procs = [subprocess.Popen([sys.executable, str(CHILD), "select-save",
                               str(tmp_path / f"out{i}.trx"), str(src)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    assert tree_digest(src) == before
    assert tree_digest(tmp_path / "out0.trx") == tree_digest(tmp_path / "out1.trx")
    with load(src) as a, load(tmp_path / "out0.trx") as b:
        np.testing.assert_array_equal(b.lengths, a.lengths[::-1])


@pytest.mark.parametrize("suffix", [".trx", ""], ids=["zip", "directory"])
def test_two_writers_to_one_destination_leave_one_complete_file(tmp_path: Path,
                                                                 suffix: str) -> None:
    dest = tmp_path / f"out{suffix}"
    procs = [subprocess.Popen([sys.executable, str(CHILD), "save", str(dest), str(seed), "3000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for seed in (5, 6)]
    codes = [p.wait(timeout=120) for p in procs]
    # a directory swap may lose the race to the other writer's rename (an error, never a mix)
    assert 0 in codes
    with load(dest) as trx:
        candidates = [make(3000, seed) for seed in (5, 6)]
        assert any(np.array_equal(trx.positions, c.positions)
                   and np.array_equal(trx.dps["w"], c.dps["w"]) for c in candidates)
    assert leftovers(tmp_path) == []


def _make_readonly(path: Path) -> None:
    for p in sorted(path.rglob("*"), reverse=True) if path.is_dir() else []:
        p.chmod(0o555 if p.is_dir() else 0o444)
    path.chmod(0o555 if path.is_dir() else 0o444)


@pytest.mark.parametrize("suffix", [".trx", ""], ids=["zip", "directory"])
def test_readonly_inputs_load_and_process(tmp_path: Path, suffix: str) -> None:
    src = tmp_path / "ro" / f"in{suffix}"
    src.parent.mkdir()
    save(make(200, seed=8), src, compression="deflate" if suffix else "stored")
    _make_readonly(src)
    src.parent.chmod(0o555)
    try:
        with load(src) as trx:
            save(trx.get_group("A"), tmp_path / "a.trx")
            with pytest.raises(ValueError):
                trx.positions[0, 0] = 1.0
        with load(tmp_path / "a.trx") as out:
            assert len(out) == 100
    finally:
        src.parent.chmod(0o755)


AUDIT = r"""
import mmap, os, sys
src = os.path.realpath(sys.argv[1])
bad = []

def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        mode, flags = args[1] or "", args[2] or 0
        writing = any(c in str(mode) for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR)
        if path.startswith(src) and writing:
            bad.append((path, mode, flags))
    elif event == "mmap.__new__" and args[2] not in (mmap.ACCESS_READ,):
        bad.append(("mmap", args))

sys.addaudithook(hook)
from trx_nipype.core import load, save, validate
validate(sys.argv[1], deep=True)
with load(sys.argv[1]) as t:
    save(t.select(list(range(len(t)))[::-1]), sys.argv[2])
    save(t, sys.argv[3])
print("BAD", bad)
"""


@pytest.mark.parametrize("compression", ["stored", "deflate", "directory"])
def test_inputs_are_never_opened_or_mapped_for_writing(tmp_path: Path, compression: str) -> None:
    """Even as root (who ignores file modes), the engine cannot change an input."""
    src = tmp_path / ("in" if compression == "directory" else "in.trx")
    save(make(200, seed=9), src, compression="stored" if compression == "directory"
         else compression)
    before = tree_digest(src)
    result = subprocess.run([sys.executable, "-c", AUDIT, str(src), str(tmp_path / "o1.trx"),
                             str(tmp_path / "o2")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("BAD []"), result.stdout
    assert tree_digest(src) == before
