"""The benchmarked operations, each runnable alone in a fresh process.

``python benchmarks/_ops.py OP SIDE DATA_ROOT OUT`` imports what ``SIDE``
needs (``ours`` = trx_nipype, ``other`` = the tool a user would otherwise
pick), then times the operation and prints one JSON line::

    {"t0": <monotonic>, "t1": <monotonic>, "wall": <seconds>, ...results}

Imports and interpreter start-up are outside the timed window on both sides;
loading the input, the operation and writing the output are inside it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SUM_CHUNK = 4_000_000  # vertices per chunk when reading all positions


@dataclass(frozen=True)
class Op:
    """One benchmarked operation: what it reads, writes, and who it is compared with."""

    name: str
    label: str
    other: str  # the tool on the other side
    output: str  # extension of the output ("" = none)
    streaming: bool  # bandwidth-bound: counted against the copy-bandwidth target
    needs: str = ""  # attribute of trx_nipype.core that "ours" needs
    variant: str = ""  # "tpy": on the files trx-python wrote (unaligned members)

    @property
    def base(self) -> str:
        """The operation without its variant (``select_save`` for ``select_save@tpy``)."""
        return self.name.split("@")[0]


BASE_OPS: list[Op] = [
    Op("lazy_load", "load (lazy, open only)", "trx-python", "", False),
    Op("load_read", "load + read all positions", "trx-python", "", True),
    Op("save_stored", "save stored", "trx-python", ".trx", True),
    Op("save_deflate", "save deflated", "trx-python", ".trx", False),
    Op("load_deflate", "load deflated + read positions", "trx-python", "", False),
    Op("select_save", "select 10% + save", "trx-python", ".trx", True),
    Op("group_save", "get_group + save", "trx-python", ".trx", True),
    Op("concat_save", "concatenate 2 + save", "trx-python", ".trx", True, "concatenate"),
    Op("convert_trk_trx", "convert TRK->TRX", "trx-python convert", ".trx", True, "convert"),
    Op("convert_tck_trx", "convert TCK->TRX", "trx-python convert", ".trx", True, "convert"),
    Op("convert_trx_trk", "convert TRX->TRK", "trx-python convert", ".trk", True, "convert"),
    Op("convert_trx_tck", "convert TRX->TCK", "trx-python convert", ".tck", True, "convert"),
    Op("convert_dir_trx", "convert TRX folder->stored zip", "trx-python", ".trx", True,
       "convert"),
]
#: operations whose TRX input can be the one trx-python wrote (the folder is the same)
TPY = {"lazy_load", "load_read", "save_stored", "save_deflate", "load_deflate", "select_save",
       "group_save", "concat_save", "convert_trx_trk", "convert_trx_tck"}


def _with_variants(ops: list[Op]) -> list[Op]:
    """Each operation, then (where it reads a TRX zip) the same on trx-python's file."""
    from dataclasses import replace

    out = []
    for op in ops:
        out.append(op)
        if op.name in TPY:
            out.append(replace(op, name=f"{op.name}@tpy", variant="tpy",
                               label=f"{op.label}, trx-python's file"))
    return out


OPS: list[Op] = _with_variants(BASE_OPS)
OPS_BY_NAME = {op.name: op for op in OPS}


def trx_input(root: Path, kind: str, variant: str = "") -> Path:
    """``stored.trx`` / ``deflated.trx`` / ``small.trx``, or trx-python's ``tpy_*`` ones."""
    return root / (f"tpy_{kind}.trx" if variant else f"{kind}.trx")
GROUP = "CST_L"
SELECT_FRACTION = 0.10


_SELECTIONS: dict[int, np.ndarray] = {}


def selection(nb_streamlines: int, seed: int = 99) -> np.ndarray:
    """The sorted 10% of streamlines that both sides select (made once per size).

    ``main`` makes it before the timed window: where the indices come from is
    not part of either side's selection.
    """
    if nb_streamlines not in _SELECTIONS:
        rng = np.random.default_rng(seed)
        k = max(1, int(nb_streamlines * SELECT_FRACTION))
        _SELECTIONS[nb_streamlines] = np.sort(rng.choice(nb_streamlines, size=k,
                                                         replace=False))
    return _SELECTIONS[nb_streamlines]


def chunked_sum(positions: np.ndarray) -> float:
    """Sum of every coordinate, read chunk by chunk (float64 accumulators)."""
    total = 0.0
    for a in range(0, len(positions), SUM_CHUNK):
        total += float(np.asarray(positions[a:a + SUM_CHUNK]).sum(dtype=np.float64))
    return total


# --------------------------------------------------------------------- ours
def core_function(name: str) -> Callable[..., Any] | None:
    """``trx_nipype.core.<name>`` (exported, or from its submodule), or None."""
    import importlib
    import types

    from trx_nipype import core

    func = getattr(core, name, None)
    if func is None:
        try:
            func = importlib.import_module(f"trx_nipype.core.{name}")
        except ImportError:
            return None
    if isinstance(func, types.ModuleType):
        func = getattr(func, name, None)
    return func if callable(func) else None


def _ours(name: str, root: Path, out: Path) -> dict[str, Any]:
    from trx_nipype import core

    op, variant = OPS_BY_NAME[name].base, OPS_BY_NAME[name].variant
    stored = trx_input(root, "stored", variant)
    if op == "lazy_load":
        return _lazy_load(lambda p: core.load(p), root, variant)
    if op in ("load_read", "load_deflate"):
        src = stored if op == "load_read" else trx_input(root, "deflated", variant)
        with core.load(src) as trx:
            return {"sum": chunked_sum(trx.positions), "n": len(trx), "v": trx.nb_vertices}
    if op in ("save_stored", "save_deflate", "select_save", "group_save"):
        with core.load(stored) as trx:
            what = trx
            if op == "select_save":
                what = trx.select(selection(len(trx)))
            elif op == "group_save":
                what = trx.get_group(GROUP)
            core.save(what, out, compression="deflate" if op == "save_deflate" else "stored")
        return {}
    if op == "concat_save":
        core_function("concatenate")([stored, root / "dir.trx"], out)
        return {}
    if op.startswith("convert_"):
        from bench_convert import convert_ours

        return _convert(convert_ours, op, root, out, variant)
    raise KeyError(op)


# -------------------------------------------------------------------- other
def _other(name: str, root: Path, out: Path) -> dict[str, Any]:
    import zipfile

    import trx.trx_file_memmap as tmm

    op, variant = OPS_BY_NAME[name].base, OPS_BY_NAME[name].variant
    stored = trx_input(root, "stored", variant)
    if op == "lazy_load":
        return _lazy_load(tmm.load, root, variant)
    if op == "convert_dir_trx":
        trx = tmm.load(str(root / "dir.trx"))
        tmm.save(trx, str(out), zipfile.ZIP_STORED)
        trx.close()
        return {}
    if op in ("load_read", "load_deflate"):
        src = stored if op == "load_read" else trx_input(root, "deflated", variant)
        trx = tmm.load(str(src))
        try:
            data = trx.streamlines._data
            return {"sum": chunked_sum(data), "n": len(trx), "v": len(data)}
        finally:
            trx.close()
    if op in ("save_stored", "save_deflate", "select_save", "group_save"):
        trx = tmm.load(str(stored))
        what = trx
        if op == "select_save":
            what = trx.select(selection(len(trx)))
        elif op == "group_save":
            what = trx.get_group(GROUP)
        tmm.save(what, str(out), zipfile.ZIP_DEFLATED if op == "save_deflate"
                 else zipfile.ZIP_STORED)
        if what is not trx:
            what.close()
        trx.close()
        return {}
    if op == "concat_save":
        parts = [tmm.load(str(stored)), tmm.load(str(root / "dir.trx"))]
        merged = tmm.concatenate(parts)
        tmm.save(merged, str(out))
        for t in (merged, *parts):
            t.close()
        return {}
    if op.startswith("convert_"):
        from bench_convert import convert_theirs

        return _convert(convert_theirs, op, root, out, variant)
    raise KeyError(op)


def _convert(convert: Callable[..., Any], op: str, root: Path, out: Path, variant: str = ""
             ) -> dict[str, Any]:
    """Run one side's converter (bench_convert's) on the op's input; TCK needs the reference."""
    src = _convert_input(op, root, variant)
    convert(src, out, root / "reference.nii.gz" if src.suffix == ".tck" else None)
    return {}


def _convert_input(op: str, root: Path, variant: str = "") -> Path:
    source = op.split("@")[0].split("_")[1]
    if source == "trx":
        return trx_input(root, "stored", variant)
    return root / {"trk": "data.trk", "tck": "data.tck", "dir": "dir.trx"}[source]


def _lazy_load(load: Callable[[str], Any], root: Path, variant: str = "", repeats: int = 5
               ) -> dict[str, Any]:
    """Open (and close) the full and the 1% file alternately; medians of each."""
    big, small, cpu = [], [], []
    for _ in range(repeats):
        for path, times in ((trx_input(root, "small", variant), small),
                            (trx_input(root, "stored", variant), big)):
            c, t = time.process_time(), time.perf_counter()
            trx = load(str(path))
            len(trx)
            trx.close()
            times.append(time.perf_counter() - t)
            if times is big:
                cpu.append(time.process_time() - c)
    return {"inner_wall": float(np.median(big)), "small_wall": float(np.median(small)),
            "inner_cpu": float(np.median(cpu))}


def copy_bytes(src: Path, out: Path, nbytes: int, block: int = 8 * 1024 * 1024) -> None:
    """The machine's limit for moving ``nbytes``: a user-space block copy into a new file.

    Reads ``src`` from the start (again from the start if ``nbytes`` is larger)
    and writes ``out``, ``block`` bytes at a time, as a streaming writer would.
    """
    buf = bytearray(block)
    view = memoryview(buf)
    left = nbytes
    with open(out, "wb", buffering=0) as fo:
        while left > 0:
            with open(src, "rb", buffering=0) as fi:
                while left > 0 and (n := fi.readinto(view[:min(block, left)])):
                    fo.write(view[:n])
                    left -= n


def prefault(nbytes: int) -> None:
    """Touch and free ``nbytes`` of memory so the operation's page-cache writes reuse it.

    This VM backs guest memory lazily and hands freed pages back to the host
    (free page reporting); a page-cache write that lands on such pages costs
    up to 8x more CPU than one on pages the guest still holds. Touching memory
    just before the timed window (every side alike) keeps that artefact of
    the host out of the comparison.
    """
    if nbytes > 0:
        block = np.ones(nbytes, dtype=np.uint8)
        del block


def main(argv: list[str]) -> int:
    op, side, root, out = argv[0], argv[1], Path(argv[2]), Path(argv[3])
    touch = int(argv[5]) if len(argv) > 5 else 0
    if side == "copy":
        prefault(touch)
        c0, t0 = time.process_time(), time.monotonic()
        copy_bytes(root / "stored.trx", out, int(argv[4]))
        t1, c1 = time.monotonic(), time.process_time()
        print(json.dumps({"t0": t0, "t1": t1, "wall": t1 - t0, "cpu": c1 - c0}))
        return 0
    run = _ours if side == "ours" else _other
    if side == "ours":
        import trx_nipype.core  # noqa: F401
        if op.startswith("convert_"):
            import bench_convert  # noqa: F401
    else:
        import trx.trx_file_memmap  # noqa: F401
        if op.startswith("convert_"):
            import bench_convert  # noqa: F401
            import trx.workflows  # noqa: F401
    if OPS_BY_NAME[op].base == "select_save":
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        selection(manifest["nb_streamlines"])
    prefault(touch)
    time.sleep(0.03)  # let the parent's sampler record the post-import baseline
    c0, t0 = time.process_time(), time.monotonic()  # CPU: user + system, all threads
    result = run(op, root, out)
    t1, c1 = time.monotonic(), time.process_time()
    result.update({"t0": t0, "t1": t1, "wall": result.pop("inner_wall", t1 - t0),
                   "cpu": result.pop("inner_cpu", c1 - c0)})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    sys.exit(main(sys.argv[1:]))
