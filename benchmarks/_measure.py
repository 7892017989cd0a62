"""Measuring helpers for the benchmarks: memory sampling, bandwidth, machine, stats.

Peak memory is the peak *anonymous* resident memory (``RssAnon`` in
``/proc/<pid>/status``) of the child process that runs one operation, sampled
by a thread of the parent every ~10 ms, restricted to the time window the child
reports for the operation itself. File-backed pages (memory-mapped inputs and
the page cache) are not counted: they are the kernel's cache, reclaimable at
any time, and counting them would make every memory-mapped reader look like it
holds the whole file. ``VmHWM`` would include them, so it is not used.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_INTERVAL_S = 0.01
MB = 1024 * 1024


def rss_anon(pid: int) -> int | None:
    """Anonymous resident bytes of ``pid`` (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


@dataclass
class MemorySampler:
    """Samples ``RssAnon`` of a process in a background thread until stopped."""

    pid: int
    interval: float = SAMPLE_INTERVAL_S
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            value = rss_anon(self.pid)
            if value is not None:
                self.samples.append((time.monotonic(), value))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def window(self, t0: float, t1: float) -> tuple[int, int]:
        """(baseline, peak) RssAnon: last sample before ``t0``, max sample in [t0, t1]."""
        before = [v for t, v in self.samples if t < t0]
        inside = [v for t, v in self.samples if t0 <= t <= t1]
        base = before[-1] if before else (inside[0] if inside else 0)
        # the first sample after t1 still reflects the end of the operation
        after = [v for t, v in self.samples if t > t1][:1]
        return base, max(inside + after + [base])


def run_child(cmd: list[str], env: dict[str, str] | None = None,
              timeout: float | None = None) -> tuple[subprocess.CompletedProcess, MemorySampler]:
    """Run ``cmd`` while sampling its anonymous memory."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True)
    sampler = MemorySampler(proc.pid).start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    finally:
        sampler.stop()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), sampler


def copy_bandwidth(workdir: Path, size: int = 256 * MB, block: int = 8 * MB,
                   repeats: int = 3) -> dict[str, float]:
    """Sequential bandwidths into the page cache, in bytes/s (median of ``repeats``).

    ``write``: writing ``size`` bytes from memory with ``block``-sized writes;
    ``read``: reading the (cached) file back into a buffer; ``copy``: reading
    it and writing a second file, block by block, in user space, which is what
    a streaming writer does. ``copy`` is the machine limit the table refers to.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    src, dst = workdir / "bw-src.bin", workdir / "bw-dst.bin"
    data = np.random.default_rng(0).integers(0, 255, size=block, dtype=np.uint8).tobytes()
    buf = bytearray(block)
    view = memoryview(buf)
    results: dict[str, list[float]] = {"write": [], "read": [], "copy": []}
    try:
        for _ in range(repeats):
            t = time.perf_counter()
            with open(src, "wb", buffering=0) as fh:
                for _ in range(size // block):
                    fh.write(data)
            results["write"].append(size / (time.perf_counter() - t))
            t = time.perf_counter()
            with open(src, "rb", buffering=0) as fh:
                while fh.readinto(buf):
                    pass
            results["read"].append(size / (time.perf_counter() - t))
            t = time.perf_counter()
            with open(src, "rb", buffering=0) as fi, open(dst, "wb", buffering=0) as fo:
                while (n := fi.readinto(buf)):
                    fo.write(view[:n])
            results["copy"].append(size / (time.perf_counter() - t))
            dst.unlink()
    finally:
        for p in (src, dst):
            if p.exists():
                p.unlink()
    return {k: statistics.median(v) for k, v in results.items()}


def try_drop_caches() -> bool:
    """Drop the page cache if permitted (root on a host that allows it)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cgroup_cpus() -> str:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="utf-8").split()
        if quota != "max":
            return f"{int(quota) / int(period):g}"
    except (OSError, ValueError):
        pass
    return ""


def machine_info() -> dict[str, str | int | float]:
    """CPU model, cores, RAM, OS, Python and library versions, date."""
    import nibabel
    import trx as trx_python

    try:
        import dipy
        dipy_version = dipy.__version__
    except ImportError:  # pragma: no cover - dipy is a dependency
        dipy_version = "missing"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    info: dict[str, str | int | float] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "ram_gb": round(mem / 1024 ** 3, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nibabel": nibabel.__version__,
        "dipy": dipy_version,
        "trx_python": getattr(trx_python, "__version__", "?"),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_avg": round(os.getloadavg()[0], 2),
    }
    quota = _cgroup_cpus()
    if quota:
        info["cpu_quota"] = quota
    return info


@dataclass
class Stats:
    """Median and spread of repeated measurements."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def spread(self) -> float:
        """Half the range relative to the median (0.05 = +/-5%)."""
        if len(self.values) < 2 or not self.median:
            return 0.0
        return (max(self.values) - min(self.values)) / 2 / self.median


def python() -> str:
    """The interpreter that runs the children (the one running the benchmark)."""
    return sys.executable
