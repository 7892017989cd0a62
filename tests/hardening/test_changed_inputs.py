"""Inputs truncated, overwritten or replaced while they are open (issue 18, items 1 and 2).

A memory map of a file that another process truncates raises SIGBUS on the
next touch: the process dies without a message and may leave a temporary
output behind. Operations read their inputs with bounded ``pread`` s and check
each input's stamp (inode, size, modification time) as they go and before
their output replaces anything, so that:

- an input truncated while open gives an error naming the file ("changed
  while being read"), the process lives on, nothing is written (the SIGBUS
  cases run in a child process, which must exit normally with the error);
- an input replaced or rewritten while open gives either the old data (a zip
  renamed over: its open file is the old one) or that error, never a silent
  mix of two files.

Touching ``TrxFile.positions`` (a raw map) after a truncation cannot be made
safe (README, Guarantees): ``iter_positions`` is the safe way to read it all.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _child import CHILD, leftovers, make

from trx_nipype.cli.options import EXIT_INVALID
from trx_nipype.core import concatenate, load, save
from trx_nipype.core.reading import SourceChangedError
from trx_nipype.core.tempfiles import SIBLING_MARK

OPS = ["read", "select", "concatenate", "convert", "cli", "node", "node-midwrite", "lengths",
       "density"]
OLD = time.time() - 3600  # inputs were written a while ago (mtime differs from any rewrite)


def _input(folder: Path, kind: str, seed: int = 5) -> Path:
    """A TRX of 4,000 streamlines (group ``A``: every other one), zip or folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("in.trx" if kind == "zip" else "in_dir")
    save(make(4000, seed), path)
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (OLD, OLD))
    return path


def _truncate(path: Path) -> None:
    """Cut the zip, or the folder's positions, to a third of its size."""
    target = path if path.is_file() else next(path.glob("positions.*"))
    os.truncate(target, target.stat().st_size // 3)


def _dest(op: str, folder: Path) -> Path:
    return folder / ("out.trk" if op == "convert" else "out.trx")


def _run_child(op: str, src: Path, dest: Path) -> subprocess.CompletedProcess:
    """The child opens ``src``; once it says so, ``src`` is truncated; then it goes on."""
    proc = subprocess.Popen([sys.executable, str(CHILD), "changed-op", str(dest), op,
                             str(src)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=CHILD.parent)
    assert proc.stdout.readline().strip() == "loaded"
    if op == "node-midwrite":  # truncate once the node writes its output
        deadline = time.monotonic() + 60
        while not any(SIBLING_MARK in p.name for p in dest.parent.iterdir()):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.01)
        time.sleep(0.2)
    _truncate(src)
    out, err = proc.communicate("go\n", timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("kind", ["zip", "folder"])
@pytest.mark.parametrize("op", OPS)
def test_truncated_while_open_is_an_error_not_sigbus(tmp_path: Path, op: str, kind: str) -> None:
    src = _input(tmp_path / "in", kind)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dest = _dest(op, out_dir)
    res = _run_child(op, src, dest)
    assert res.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert res.returncode in (0, 3), (res.returncode, res.stdout, res.stderr)
    text = res.stdout + res.stderr
    assert "changed while being read" in text, text
    assert str(src) in text, text
    if op == "cli":
        assert f"EXIT {EXIT_INVALID}" in res.stdout and "trx-nipype: error:" in res.stderr
    else:
        assert "ERROR" in res.stdout
    assert not dest.exists() and leftovers(out_dir) == []


# ------------------------------------------------------- replaced or rewritten
def _expected(tmp_path: Path, src: Path, name: str) -> bytes:
    """What a selection of ``src`` saves when nothing happens to it."""
    ref = tmp_path / f"ref-{name}.trx"
    with load(src) as trx:
        save(trx.select(np.arange(0, len(trx), 3)), ref)
    return ref.read_bytes()


def _save_selection(trx, dest: Path) -> None:
    save(trx.select(np.arange(0, len(trx), 3)), dest)


def test_zip_renamed_over_while_open_gives_the_old_data(tmp_path: Path) -> None:
    src = _input(tmp_path / "a", "zip")
    other = _input(tmp_path / "b", "zip", seed=9)
    expected = _expected(tmp_path, src, "a")
    dest = tmp_path / "out.trx"
    with load(src) as trx:
        os.replace(other, src)  # what `mv b.trx a.trx` does
        _save_selection(trx, dest)
        concatenate([trx], tmp_path / "cat.trx")
    assert dest.read_bytes() == expected


@pytest.mark.parametrize("same_size", [True, False])
def test_zip_overwritten_in_place_while_open_is_refused(tmp_path: Path, same_size: bool) -> None:
    src = _input(tmp_path / "a", "zip")
    other = _input(tmp_path / "b", "zip", seed=5 if same_size else 9)
    data = other.read_bytes()
    if same_size:  # the same layout, other coordinates: only the content differs
        data = data.replace(src.read_bytes()[-200:], src.read_bytes()[-200:])
    dest = tmp_path / "out.trx"
    with load(src) as trx:
        with open(src, "r+b") as fh:  # what `cp b.trx a.trx` does: same inode, new bytes
            fh.truncate(0)
            fh.write(data)
        with pytest.raises(SourceChangedError, match="changed while being read") as err:
            _save_selection(trx, dest)
    assert str(src) in str(err.value)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_folder_swapped_while_open_is_refused(tmp_path: Path) -> None:
    src = _input(tmp_path / "a", "folder")
    other = _input(tmp_path / "b", "folder", seed=9)
    dest = tmp_path / "out.trx"
    with load(src) as trx:
        src.rename(tmp_path / "old")
        other.rename(src)
        with pytest.raises(SourceChangedError, match="replaced by another file") as err:
            _save_selection(trx, dest)
    assert str(src) in str(err.value) and "positions" in str(err.value)
    assert not dest.exists()


@pytest.mark.parametrize("member", ["positions", "dps"])
def test_one_member_overwritten_while_open_is_refused(tmp_path: Path, member: str) -> None:
    src = _input(tmp_path / "a", "folder")
    target = next(src.glob(f"{member}*")) if member == "positions" else \
        next((src / "dps").iterdir())
    dest = tmp_path / "out.trx"
    with load(src) as trx:
        data = bytearray(target.read_bytes())
        data[:8] = bytes(8)  # same size, other values
        target.write_bytes(bytes(data))
        with pytest.raises(SourceChangedError, match="changed while being read") as err:
            _save_selection(trx, dest)
    assert str(src) in str(err.value) and target.name in str(err.value)
    assert not dest.exists()


def test_member_read_before_the_change_is_rechecked_before_commit(tmp_path: Path) -> None:
    """A member already open keeps its inode; its rewrite still stops the output."""
    src = _input(tmp_path / "a", "folder")
    target = next(src.glob("positions*"))
    dest = tmp_path / "out.trx"
    with load(src) as trx:
        list(trx.iter_positions())  # opened and read
        with open(target, "r+b") as fh:  # rewritten in place, same size
            fh.write(bytes(16))
        with pytest.raises(SourceChangedError, match="modified"):
            save(trx, dest)
    assert not dest.exists()


def test_unchanged_inputs_still_save(tmp_path: Path) -> None:
    """The checks cost a stat per read: nothing changed, nothing refused."""
    for kind in ("zip", "folder"):
        src = _input(tmp_path / kind, kind)
        with load(src) as trx:
            _save_selection(trx, tmp_path / f"{kind}.trx")
            total = sum(float(b.sum(dtype=np.float64)) for _, b in trx.iter_positions(1000))
            assert np.isclose(total, float(np.asarray(trx.positions, np.float64).sum()))
    shutil.rmtree(tmp_path / "zip")


def test_a_truncation_waits_for_the_gather_holding_the_lease(tmp_path: Path) -> None:
    """Gathers read a map under a read lease: a truncation waits, the gather notices it."""
    from trx_nipype.core.reading import OpenFile

    path = tmp_path / "data.bin"
    path.write_bytes(bytes(1 << 20))
    f = OpenFile(path, path)
    try:
        assert f.hold(), "read leases are available on this machine (Linux, own file)"
        child = subprocess.Popen([sys.executable, "-c",
                                  f"import os; os.truncate({str(path)!r}, 10)"])
        time.sleep(0.5)
        assert child.poll() is None, "the truncation went ahead under the lease"
        assert len(f.mapped()) == 1 << 20 and f.mapped()[-1] == 0  # safe to touch
        with pytest.raises(SourceChangedError, match="opened it for writing or truncated"):
            f.check_held()
        assert child.wait(timeout=30) == 0  # let go: the truncation completes
        assert path.stat().st_size == 10
    finally:
        f.close()
