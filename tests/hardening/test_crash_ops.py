"""Crashes, SIGTERM, exceptions and full disks while concatenating and converting.

Guarantees, for ``concatenate`` (TRX), ``convert`` TRK -> TRX and ``convert``
TRX -> TRK:

- a process killed (SIGKILL, at seeded random points, at least one of them
  mid-write) leaves the destination absent or the previous complete file,
  never a partial one, and ``sweep_stale_siblings`` removes what it left;
- SIGTERM removes the process's own temporary sibling *and* its private
  folders under the temporary root (``TRX_NIPYPE_TMPDIR``), and leaves the
  destination as it was;
- a write failing part-way (``RLIMIT_FSIZE``, a full disk) or an exception
  raises an error naming the destination, leaves no partial output and
  leaves the inputs byte-for-byte untouched.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from _child import CHILD, leftovers, make, tree_digest

from trx_nipype.core import concatenate, convert, converting, load, save
from trx_nipype.core.formats import trk, trk_groups
from trx_nipype.core.tempfiles import sweep_stale_siblings


@dataclass(frozen=True)
class Op:
    """One operation: ``op`` of ``inputs`` (names in the inputs folder) into ``dest``."""

    op: str
    inputs: tuple[str, ...]
    dest: str


OPS = {
    "concatenate": Op("concatenate", ("a.trx", "b.trx"), "out.trx"),
    "trk-to-trx": Op("convert", ("a.trk",), "out.trx"),
    "trx-to-trk": Op("convert", ("b.trx",), "out.trk"),
}


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def run_in_process(op: Op, inputs: Path, dest: Path) -> Path:
    """What the child does, here."""
    paths = [str(inputs / name) for name in op.inputs]
    if op.op == "concatenate":
        return concatenate(paths, dest)
    return _quiet(convert, paths[0], dest)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two TRX inputs and a TRK input, large enough for several paced chunks."""
    folder = tmp_path_factory.mktemp("inputs")
    save(make(3000, seed=11), folder / "a.trx")
    save(make(3000, seed=12), folder / "b.trx")
    _quiet(convert, folder / "a.trx", folder / "a.trk")
    save(make(100, seed=13), folder / "small.trx")
    return folder


def previous_file(op: Op, inputs: Path, dest: Path) -> str:
    """Write a complete earlier version of ``dest``; its digest."""
    _quiet(convert, inputs / "small.trx", dest)
    return tree_digest(dest)


def expected_digest(op: Op, inputs: Path, folder: Path) -> str:
    """Digest of a clean run's output (the writers give the same bytes for the same content)."""
    folder.mkdir()
    return tree_digest(run_in_process(op, inputs, folder / op.dest))


def start(op: Op, inputs: Path, dest: Path, delay: float, env: dict[str, str] | None = None
          ) -> subprocess.Popen:
    """The paced child, once it is about to write."""
    proc = subprocess.Popen([sys.executable, str(CHILD), "paced-op", str(dest), str(delay),
                             op.op, *(str(inputs / n) for n in op.inputs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    assert proc.stdout.readline().strip() == "started", proc.stderr.read()
    return proc


def wait_for_sibling(folder: Path, proc: subprocess.Popen) -> None:
    """Poll until the child has a temporary sibling in ``folder`` (it is mid-write)."""
    deadline = time.monotonic() + 60
    while not leftovers(folder) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


@pytest.mark.parametrize("name", sorted(OPS))
def test_sigkill_mid_op_leaves_previous_file_or_new_one(tmp_path: Path, inputs: Path,
                                                        name: str) -> None:
    op = OPS[name]
    out = tmp_path / "out"
    out.mkdir()
    dest = out / op.dest
    previous = previous_file(op, inputs, dest)
    new = expected_digest(op, inputs, tmp_path / "clean")
    rng = random.Random(f"kill-{name}")
    mid_write = 0
    for attempt in range(3):
        proc = start(op, inputs, dest, 0.02, env={"TRX_NIPYPE_TMPDIR": str(tmp_path / "tmp")})
        if attempt == 0:
            wait_for_sibling(out, proc)  # this one is certainly mid-write
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        digest = tree_digest(dest)
        assert digest in (previous, new), "a partial or foreign destination"
        previous = digest
        mid_write += bool(leftovers(out))
        sweep_stale_siblings(out)
        assert leftovers(out) == []
        assert sorted(p.name for p in out.iterdir()) in ([op.dest], [op.dest, op.dest +
                                                                    trk_groups.SIDECAR_SUFFIX])
    assert mid_write, "no kill landed mid-write: the test proved nothing"
    if dest.suffix == ".trx":
        with load(dest) as trx:
            assert len(trx) in (100, 3000, 6000)


@pytest.mark.parametrize("name", sorted(OPS))
def test_sigterm_mid_op_removes_its_temporaries(tmp_path: Path, inputs: Path, name: str) -> None:
    op = OPS[name]
    out, root = tmp_path / "out", tmp_path / "tmp-root"
    out.mkdir()
    dest = out / op.dest
    previous = previous_file(op, inputs, dest)
    proc = start(op, inputs, dest, 0.05, env={"TRX_NIPYPE_TMPDIR": str(root)})
    wait_for_sibling(out, proc)
    assert leftovers(out), "the child should be mid-write by now"
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    assert code == 128 + signal.SIGTERM, proc.stderr.read()
    assert leftovers(out) == []  # removed by the process itself, not by a sweep
    assert tree_digest(dest) == previous
    assert not root.exists() or list(root.iterdir()) == []


def run_fsize(op: Op, inputs: Path, dest: Path, limit: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHILD), "fsize-op", str(dest), str(limit), op.op,
                           *(str(inputs / n) for n in op.inputs)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TRX_NIPYPE_TMPDIR": str(dest.parent.parent / "t")})


@pytest.mark.parametrize("name", sorted(OPS))
def test_full_disk_mid_op_names_the_destination_and_leaves_nothing(tmp_path: Path,
                                                                   inputs: Path,
                                                                   name: str) -> None:
    op = OPS[name]
    before = {n: tree_digest(inputs / n) for n in op.inputs}
    for existing in (False, True):
        out = tmp_path / f"out-{existing}"
        out.mkdir()
        dest = out / op.dest
        previous = previous_file(op, inputs, dest) if existing else None
        result = run_fsize(op, inputs, dest, 200_000)  # outputs are ~1.5 MB
        assert result.returncode == 3, result.stdout + result.stderr
        assert result.stdout.startswith("ERROR "), result.stdout
        assert str(dest) in result.stdout and "File too large" in result.stdout, result.stdout
        assert leftovers(out) == []
        if existing:
            assert tree_digest(dest) == previous
        else:
            assert list(out.iterdir()) == []
        assert not (tmp_path / "t").exists() or list((tmp_path / "t").iterdir()) == []
    assert {n: tree_digest(inputs / n) for n in op.inputs} == before


@pytest.mark.parametrize("name", sorted(OPS))
def test_exception_mid_op_leaves_nothing(tmp_path: Path, inputs: Path, name: str,
                                         temp_root: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from trx_nipype.core import writer

    op = OPS[name]
    before = {n: tree_digest(inputs / n) for n in op.inputs}
    calls = {"n": 0}

    def failing(inner):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("injected failure")
            return inner(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(writer, "_as_bytes", failing(writer._as_bytes))
    monkeypatch.setattr(trk, "_records", failing(trk._records))
    monkeypatch.setattr(converting, "BLOCK_VERTICES", 5_000)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError, match="injected failure"):
        run_in_process(op, inputs, out / op.dest)
    assert list(out.iterdir()) == []
    assert not temp_root.exists() or list(temp_root.iterdir()) == []
    assert {n: tree_digest(inputs / n) for n in op.inputs} == before
