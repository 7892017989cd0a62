"""Regression testing of tractography outputs: assertions, and a pytest fixture.

Assertions raise :class:`AssertionError` with the report of
:mod:`trx_nipype.core.operations.compare` (what differs, the largest position
deviation and where)::

    from trx_nipype.testing import (assert_matches_manifest, assert_tractograms_equal,
                                    assert_trees_equal)

    assert_tractograms_equal("out/sub-01.trx", "expected/sub-01.trk", atol=1e-3)
    assert_trees_equal("out", "expected")              # two output folders, by content
    assert_matches_manifest("out", "expected.json")    # a stored snapshot

The ``trx_regression`` pytest fixture (:mod:`trx_nipype.testing.plugin`,
registered as a pytest plugin when trx-nipype is installed) snapshots an
output folder on first use and compares with the snapshot afterwards, in the
manner of pytest-regressions (``--force-regen`` rewrites snapshots that
differ, ``--regen-all`` rewrites all)::

    def test_my_pipeline(tmp_path, trx_regression):
        run_my_pipeline(output_dir=tmp_path / "out")
        trx_regression.check(tmp_path / "out", atol=1e-4)
"""

from __future__ import annotations

from typing import Any

__all__ = ["assert_matches_manifest", "assert_tractograms_equal", "assert_trees_equal"]


def __getattr__(name: str) -> Any:
    """The assertions, imported on first use (see :mod:`trx_nipype.testing.assertions`)."""
    if name in __all__:
        from . import assertions

        return getattr(assertions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
