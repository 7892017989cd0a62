"""Fixtures of the report tests: runs of the main job and of a data set with an outlier."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from trx_nipype.cli.main import main
from trx_nipype.data import fetch_demo_dataset

os.environ.setdefault("NIPYPE_NO_ET", "1")

SUBJECTS = ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"]
BUNDLES = ["AF_L", "CC_ForcepsMajor", "CST_R"]
#: the subject and bundle given ten times fewer streamlines in ``outlier_run``
OUTLIER = ("sub-03", "AF_L")


def figure_links(page: Path) -> list[str]:
    """The ``src`` of every ``<img>`` of a page, in order."""
    return re.findall(r'<img src="([^"]+)"', page.read_text(encoding="utf-8"))


def tree_bytes(root: Path, *, skip: tuple[str, ...] = ("work",)) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every file below ``root`` (``skip`` folders aside)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not set(p.relative_to(root).parts) & set(skip)}


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset, extracted once (copy it before changing it)."""
    return fetch_demo_dataset(tmp_path_factory.mktemp("demo") / "data")


@pytest.fixture(scope="session")
def main_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``trx-nipype run --output-dir <tmp>/demo-out`` (the README's main job), run once."""
    out = tmp_path_factory.mktemp("main") / "demo-out"
    assert main(["run", "--output-dir", str(out), "-q"]) == 0
    return out


def make_outlier_dataset(source: Path, dest: Path) -> Path:
    """The demo data with counts that vary a little, and one bundle ten times smaller.

    Every subject's bundle loses a seeded 0-5 of its 50 streamlines (ordinary
    variation between subjects); ``OUTLIER`` keeps only 5 of its 50.
    """
    data = Path(shutil.copytree(source, dest))
    rng = np.random.default_rng(15)
    for subject in SUBJECTS:
        for bundle in BUNDLES:
            path = data / subject / "dwi" / f"{bundle}.trk"
            trk = nib.streamlines.load(str(path))
            keep = 5 if (subject, bundle) == OUTLIER else 50 - int(rng.integers(0, 6))
            picked = np.sort(rng.choice(50, size=keep, replace=False))
            nib.streamlines.TrkFile(trk.tractogram[picked], header=trk.header).save(str(path))
    return data


@pytest.fixture(scope="session")
def outlier_run(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``trx-nipype run`` over :func:`make_outlier_dataset`'s data."""
    base = tmp_path_factory.mktemp("outlier")
    data = make_outlier_dataset(demo_data, base / "data")
    out = base / "out"
    assert main(["run", str(data), "--output-dir", str(out), "-q"]) == 0
    return out
