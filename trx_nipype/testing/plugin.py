"""The ``trx_regression`` pytest fixture: snapshot an output folder, compare afterwards.

Registered as a pytest plugin (entry point ``pytest11``) when trx-nipype is
installed; in the manner of pytest-regressions::

    def test_my_pipeline(tmp_path, trx_regression):
        run_my_pipeline(output_dir=tmp_path / "out")
        trx_regression.check(tmp_path / "out")

The first run writes the snapshot, a manifest
(:mod:`trx_nipype.core.operations.manifest`), to
``<test file's folder>/<test module name>/<test name>.manifest.json`` and
fails, asking to review and commit it. Later runs check the folder against it
and fail with the report of what differs (files missing, extra or changed;
counts, groups, positions...). ``--force-regen`` rewrites a snapshot that
differs (the test still fails, once); ``--regen-all`` rewrites every snapshot
and lets the tests pass. Those options are shared with pytest-regressions
when it is installed: one flag regenerates both kinds of snapshots.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

#: the option names of the pytest-regressions convention
OPTIONS = (("--force-regen", "Regenerate regression snapshots that differ (the tests fail)."),
           ("--regen-all", "Regenerate all regression snapshots (the tests pass)."))
#: suffix of a snapshot file
SNAPSHOT_SUFFIX = ".manifest.json"


def _regressions_adds_options(pluginmanager: Any) -> bool:
    """Whether pytest-regressions is (or will be) registered and so adds the shared options.

    pytest calls each plugin's ``pytest_addoption`` as the plugin registers,
    in entry-point order: when pytest-regressions comes later, adding the
    options here would make its own ``addoption`` fail, so they are left to it.
    """
    if pluginmanager.has_plugin("regressions") or pluginmanager.is_blocked("regressions"):
        return False  # already there (the options exist) or never coming
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(ep.value.startswith("pytest_regressions")
               for ep in metadata.entry_points(group="pytest11"))


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """``--force-regen`` and ``--regen-all``, unless pytest-regressions adds them."""
    if _regressions_adds_options(pluginmanager):
        return
    group = parser.getgroup("regressions")
    for name, text in OPTIONS:
        try:
            group.addoption(name, action="store_true", default=False, help=text)
        except ValueError:  # added by a plugin registered before this one
            pass


def snapshot_name(node_name: str) -> str:
    """A test's name as a file name (pytest-regressions' rule: non-word characters -> ``_``).

    >>> snapshot_name("test_pipeline[MultiProc-2]")
    'test_pipeline_MultiProc_2_'
    """
    return re.sub(r"\W", "_", node_name)


class TrxRegression:
    """What the ``trx_regression`` fixture gives: :meth:`check` an output against its snapshot.

    Parameters
    ----------
    datadir : pathlib.Path
        Folder of the snapshots (``<test file's folder>/<module name>``).
    name : str
        Default snapshot name (the test's).
    force_regen, regen_all : bool
        The command-line options.
    obtained_dir : pathlib.Path
        Where the manifest of a differing output is written, for a look.
    """

    def __init__(self, datadir: Path, name: str, *, force_regen: bool = False,
                 regen_all: bool = False, obtained_dir: Path | None = None) -> None:
        self.datadir = datadir
        self.name = name
        self.force_regen = force_regen
        self.regen_all = regen_all
        self.obtained_dir = obtained_dir

    def snapshot_path(self, basename: str | None = None) -> Path:
        """``<datadir>/<basename or the test's name>.manifest.json``."""
        return self.datadir / f"{basename or self.name}{SNAPSHOT_SUFFIX}"

    def check(self, path: str | os.PathLike, *, basename: str | None = None,
              fullpath: str | os.PathLike | None = None, atol: float = 0.0,
              data_atol: float | None = None, check_dtypes: bool = True,
              reference: Any = None) -> None:
        """Compare an output folder (or one tractogram) with its snapshot.

        Parameters
        ----------
        path : str or os.PathLike
            The output folder (work folders of trx-nipype and hidden files are
            not part of it) or a tractogram.
        basename : str, optional
            Snapshot name (default: the test's name); for several checks in one test.
        fullpath : str or os.PathLike, optional
            The snapshot file itself, instead of ``datadir/basename``.
        atol : float
            Tolerance on positions, in mm; ``data_atol`` on float data
            (default: ``atol``). See :mod:`trx_nipype.core.operations.manifest`.
        check_dtypes : bool
            Fail when a dtype changed.
        reference : optional
            Space of tractograms without one (TCK, VTK).

        Raises
        ------
        AssertionError
            With the report, when the output differs from the snapshot.
        """
        from ..core.operations.manifest import check_manifest, write_manifest

        snapshot = Path(fullpath) if fullpath is not None else self.snapshot_path(basename)

        def regenerate() -> None:
            snapshot.parent.mkdir(parents=True, exist_ok=True)
            write_manifest(path, snapshot, force=True, reference=reference)

        if self.regen_all:
            regenerate()
            return
        if not snapshot.is_file():
            regenerate()
            pytest.fail(f"Snapshot not found, created (review it and commit it):\n- {snapshot}",
                        pytrace=False)
        result = check_manifest(snapshot, path, atol=atol, data_atol=data_atol,
                                check_dtypes=check_dtypes, reference=reference)
        if result.equal:
            return
        if self.force_regen:
            regenerate()
            pytest.fail(f"Output differs and --force-regen set, regenerating the snapshot:\n"
                        f"- {snapshot}\n{result.report()}", pytrace=False)
        hint = ""
        if self.obtained_dir is not None:
            obtained = self.obtained_dir / f"{snapshot.name[:-len(SNAPSHOT_SUFFIX)]}.obtained" \
                                           f"{SNAPSHOT_SUFFIX}"
            write_manifest(path, obtained, force=True, reference=reference)
            hint = f"\n(the output's manifest: {obtained}; --force-regen replaces the snapshot)"
        raise AssertionError(result.report() + hint)


@pytest.fixture
def trx_regression(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                   ) -> TrxRegression:
    """Check an output folder or tractogram against a stored snapshot (see the module)."""
    option: Callable[[str], Any] = request.config.getoption
    return TrxRegression(Path(request.path).with_suffix(""), snapshot_name(request.node.name),
                         force_regen=bool(option("force_regen", default=False)),
                         regen_all=bool(option("regen_all", default=False)),
                         obtained_dir=tmp_path_factory.mktemp("trx_regression"))
