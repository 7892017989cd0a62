"""Fixtures shared by the whole suite; helper functions live in ``trx_test_helpers``.

(Test modules import helpers from ``trx_test_helpers``, never from ``conftest``:
several folders have a ``conftest.py`` and the name would resolve to whichever
was imported first.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from trx_test_helpers import valid_members

from trx_nipype.core.tempfiles import live_temp_dirs, set_temp_root


@pytest.fixture
def temp_root(tmp_path: Path) -> Iterator[Path]:
    """A private temp root for extractions; restored (and checked empty) afterwards."""
    root = tmp_path / "temp-root"
    set_temp_root(root)
    before = set(live_temp_dirs())
    try:
        yield root
    finally:
        set_temp_root(None)
    leaked = [d for d in live_temp_dirs() if d not in before and d.startswith(str(root))]
    assert not leaked, f"temporary folders not removed: {leaked}"


@pytest.fixture
def small_members() -> dict[str, bytes]:
    """A fresh dict of the members of a small valid TRX."""
    return valid_members()
