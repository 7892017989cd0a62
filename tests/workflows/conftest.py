"""Fixtures of the workflow tests: the demo dataset, and runs of the main job."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from trx_nipype.data import fetch_demo_dataset

os.environ.setdefault("NIPYPE_NO_ET", "1")


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digests(out_dir: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every .trx output (the work dir aside)."""
    return {p.relative_to(out_dir).as_posix(): sha256(p) for p in sorted(out_dir.rglob("*.trx"))
            if "work" not in p.relative_to(out_dir).parts}


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset, extracted once (copy it before changing it)."""
    return fetch_demo_dataset(tmp_path_factory.mktemp("demo") / "data")


@pytest.fixture
def demo_copy(demo_source: Path, tmp_path: Path) -> Path:
    """A private copy of the demo dataset (timestamps kept)."""
    return Path(shutil.copytree(demo_source, tmp_path / "data"))
