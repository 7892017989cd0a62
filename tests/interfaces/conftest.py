"""Fixtures of the interface tests: a private digest cache, Nipype's config restored."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("NIPYPE_NO_ET", "1")

from nipype import config  # noqa: E402

from trx_nipype.interfaces import _hashing  # noqa: E402


@pytest.fixture(autouse=True)
def digest_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own digest cache folder and zeroed hashing counters."""
    folder = tmp_path / "digest-cache"
    monkeypatch.setenv(_hashing.CACHE_ENV, str(folder))
    _hashing.reset_stats()
    yield folder


_KEYS = ("hash_method", "crashdump_dir", "poll_sleep_duration")


@pytest.fixture(autouse=True)
def _nipype_config(tmp_path: Path) -> Iterator[None]:
    """Crash files in tmp_path, quick MultiProc polling; the config restored after."""
    old = {key: config.get("execution", key, None) for key in _KEYS}
    config.set("execution", "crashdump_dir", str(tmp_path / "crash"))
    config.set("execution", "poll_sleep_duration", "0.05")
    yield
    for key, value in old.items():
        if value is None:
            config._sections["execution"].pop(key, None)
        else:
            config.set("execution", key, value)


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Store digests of files just written (tests have no 2 s to wait)."""
    monkeypatch.setattr(_hashing, "RACY_WINDOW_NS", -1)
