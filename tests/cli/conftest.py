"""Fixtures of the command-line tests: small tractograms, and running ``main``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from trx_nipype.cli.main import main
from trx_nipype.data import fetch_demo_dataset
from trx_nipype.interfaces._examples import example_trx

os.environ.setdefault("NIPYPE_NO_ET", "1")

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """``cli("info", path)`` -> (exit code, stdout, stderr)."""
    def run(*argv: str | os.PathLike) -> tuple[int, str, str]:
        code = main([os.fspath(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def trx_path(tmp_path: Path) -> Path:
    """A TRX zip: 6 streamlines, groups AF (0, 2, 4) and CST (1, 3, 5), dps, dpv, dpg."""
    return Path(example_trx(tmp_path))


@pytest.fixture(scope="session")
def trk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset (TRK bundles of 50 streamlines x 20 points)."""
    return fetch_demo_dataset(tmp_path_factory.mktemp("demo") / "data")
