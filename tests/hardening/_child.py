"""Programs run in child processes by the hardening tests (killed, limited, raced).

Usage: ``python _child.py <mode> <dest> [args...]``. Each prints ``started``
and flushes once it is about to write, so a parent can time a kill.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from trx_nipype.core import TrxFile, load, save
from trx_nipype.core.saving import trx_members, write_members
from trx_nipype.core.tempfiles import SIBLING_MARK

CHILD = Path(__file__)


def tree_digest(path: Path) -> str:
    """Digest of a file, or of a directory's (relative name, bytes) pairs."""
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f.relative_to(path).as_posix().encode())
            h.update(f.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Names of the temporary siblings in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if SIBLING_MARK in p.name)


def make(n_streamlines: int, seed: int) -> TrxFile:
    """A deterministic synthetic tractogram (same seed -> same content)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 60, n_streamlines)
    pos = rng.normal(size=(int(lengths.sum()), 3)).astype(np.float32)
    return TrxFile.from_arrays(pos, lengths=lengths, dps={"w": rng.random(n_streamlines)},
                               groups={"A": np.arange(0, n_streamlines, 2)})


def slow_save(trx: TrxFile, dest: str, delay: float) -> None:
    """``save`` through the one writer, pausing between chunks so kills land mid-write."""
    header, members = trx_members(trx, dest=dest, chunk_vertices=2_000)
    for m in members:
        inner = m.chunks

        def paced(inner=inner):
            for chunk in inner():
                time.sleep(delay)
                yield chunk
        m.chunks = paced
    print("started", flush=True)
    write_members(dest, header, members)


def pace(delay: float) -> None:
    """Slow every write of the one TRX writer (chunks and kernel copies) and of the TRK
    writer, so kills land mid-write."""
    from trx_nipype.core import converting, writer
    from trx_nipype.core.formats import trk

    converting.BLOCK_VERTICES = 5_000  # several TRK blocks from a TRX input
    for module, name in ((writer, "_as_bytes"), (writer, "_copy_range"), (trk, "_records")):
        inner = getattr(module, name)

        def paced(*args, _inner=inner, **kwargs):
            time.sleep(delay)
            return _inner(*args, **kwargs)
        setattr(module, name, paced)


def run_op(op: str, dest: str, inputs: list[str]) -> None:
    """``concatenate`` the inputs, or ``convert`` the first one, into ``dest``."""
    import warnings

    from trx_nipype.core import concatenate, convert

    warnings.simplefilter("ignore")  # e.g. TRK's float32 data: not what is tested here
    if op == "concatenate":
        concatenate(inputs, dest)
    elif op == "convert":
        convert(inputs[0], dest)
    else:
        raise SystemExit(f"unknown op {op}")


def _wait_for_go() -> None:
    """Tell the parent the input is open, and wait until it has changed it."""
    print("loaded", flush=True)
    sys.stdin.readline()


def _hook_load() -> None:
    """Make every ``load`` of the package wait for the parent once the file is open."""
    from trx_nipype.core import loader

    inner = loader.load

    def waiting_load(path, *args, **kwargs):
        trx = inner(path, *args, **kwargs)
        _wait_for_go()
        return trx
    for module in ("trx_nipype.core", "trx_nipype.core.loader", "trx_nipype.core.converting",
                   "trx_nipype.cli.ops", "trx_nipype.interfaces.ops"):
        __import__(module)
        if getattr(sys.modules[module], "load", None) is inner:
            sys.modules[module].load = waiting_load


def _small_chunks_and_paced(delay: float) -> None:
    """Save in chunks of 2,000 vertices, each written ``delay`` s apart (kills mid-write)."""
    from trx_nipype.core import saving

    inner = saving.trx_members
    saving.trx_members = lambda *a, **k: inner(*a, **{**k, "chunk_vertices": 2_000})
    pace(delay)


def changed_op(op: str, dest: str, src: str) -> None:
    """Open ``src``, wait while the parent changes it, then run ``op`` into ``dest``.

    ``op``: ``read`` (every coordinate through ``iter_positions``), ``select``
    (a selection saved), ``concatenate`` (with itself), ``convert`` (to TRK),
    ``cli`` (``trx-nipype select-group``), ``node`` (a ``SelectGroup`` node),
    ``node-midwrite`` (the node, writing slowly: the parent changes the input
    once it has started writing), ``lengths`` and ``density`` (what the analysis
    operations read: lengths in mm, streamlines per voxel).
    """
    import warnings

    from trx_nipype.core import concatenate, convert

    warnings.simplefilter("ignore")
    if op in ("cli", "node", "convert"):
        _hook_load()
    if op == "node-midwrite":
        _small_chunks_and_paced(0.05)
    if op == "cli":
        from trx_nipype.cli.main import main as cli

        print(f"EXIT {cli(['select-group', src, 'A', '-o', dest])}", flush=True)
        raise SystemExit(0)
    if op in ("node", "node-midwrite"):
        from trx_nipype.interfaces import SelectGroup

        if op == "node-midwrite":
            print("loaded", flush=True)  # the parent waits for "started" writes
        SelectGroup(in_file=src, group_names="A", out_filename=Path(dest).name).run(
            cwd=str(Path(dest).parent))
        return
    if op == "convert":
        convert(src, dest)
        return
    with load(src) as trx:
        if op in ("lengths", "density"):
            float(trx.positions[0, 0])  # the map made before the cut (a user's earlier look)
        _wait_for_go()
        if op == "read":
            total = sum(float(block.sum()) for _, block in trx.iter_positions(2_000))
            print(f"SUM {total}", flush=True)
        elif op == "select":
            save(trx.select(np.arange(0, len(trx), 3)), dest)
        elif op == "concatenate":
            concatenate([trx, trx], dest)
        elif op == "lengths":  # the analysis operations' reads: lengths in mm, densities
            from trx_nipype.core.metrics import lengths_mm

            print(f"SUM {lengths_mm(trx, chunk_vertices=2_000).sum()}", flush=True)
        elif op == "density":
            from trx_nipype.core.operations.analysis_io import grid_of
            from trx_nipype.core.operations.density import count_streamlines

            count_streamlines(trx, grid_of(trx), chunk_vertices=2_000)
        else:
            raise SystemExit(f"unknown op {op}")


def main(argv: list[str]) -> int:
    mode, dest = argv[0], argv[1]
    if mode == "changed-op":  # changed-op <dest> <op> <src>: prints ERROR ... on an error
        try:
            changed_op(argv[2], dest, argv[3])
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which checks it
            print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
            return 3
        print("OK", flush=True)
        return 0
    if mode == "paced-op":  # paced-op <dest> <delay> <op> <inputs...>
        pace(float(argv[2]))
        print("started", flush=True)
        run_op(argv[3], dest, argv[4:])
        return 0
    if mode == "paced-run":  # paced-run <output dir> <delay> <dataset dir>
        from trx_nipype.workflows import find_dataset, init_bundles_pipeline_wf, run_workflow

        pace(float(argv[2]))
        wf = init_bundles_pipeline_wf(find_dataset(argv[3]), dest)
        print("started", flush=True)
        report = run_workflow(wf, Path(dest) / "work")
        return 0 if report.ok else 1
    if mode == "fsize-op":  # fsize-op <dest> <limit> <op> <inputs...>
        import resource
        import signal

        limit = int(argv[2])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            run_op(argv[3], dest, argv[4:])
        except OSError as exc:
            print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
            return 3
        return 0
    if mode == "slow-save":
        slow_save(make(4000, int(argv[2])), dest, float(argv[3]))
    elif mode == "save":
        trx = make(int(argv[3]), int(argv[2]))
        print("started", flush=True)
        save(trx, dest)
    elif mode == "fsize-save":
        import resource
        import signal

        limit = int(argv[3])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of a kill
        trx = make(int(argv[2]), 7)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            save(trx, dest)
        except OSError as exc:
            print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
            return 3
    elif mode == "select-save":
        with load(argv[2]) as trx:
            print("started", flush=True)
            save(trx.select(np.arange(len(trx))[::-1]), dest)
    else:
        raise SystemExit(f"unknown mode {mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
