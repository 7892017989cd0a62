"""trx_nipype.testing: assertions, and the trx_regression pytest fixture (a pytest plugin).

The fixture is exercised as a user meets it: pytest runs in a subprocess on a
test file written here, with the plugin loaded from its entry point, next to
pytest-regressions (which adds the same --force-regen/--regen-all options).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from trx_nipype.core import TrxFile, load, save
from trx_nipype.testing import (
    assert_matches_manifest,
    assert_tractograms_equal,
    assert_trees_equal,
)
from trx_nipype.testing.plugin import pytest_addoption

#: a user's test: a "pipeline" writing a small output tree; CHANGE=1 moves a point
USER_TEST = textwrap.dedent('''
    import json, os
    import numpy as np
    from trx_nipype.core import TrxFile, save

    def run_pipeline(out):
        out.mkdir(parents=True)
        pos = np.arange(30, dtype=np.float32).reshape(10, 3)
        if os.environ.get("CHANGE"):
            pos[7, 1] += 0.5
        trx = TrxFile.from_arrays(pos, lengths=[4, 6], groups={"AF": np.array([1], "u4")})
        save(trx, out / "sub-01_tractogram.trx")
        (out / "sub-01_tractogram.json").write_text(json.dumps(
            {"Counts": {"NB_STREAMLINES": 2}, "Software": {"x": os.environ.get("VERSION", "1")}}))
        (out / "work").mkdir()
        (out / "work" / ".trx-nipype-work").touch()
        (out / "work" / "cache.pklz").write_text(str(out))

    def test_pipeline(tmp_path, trx_regression):
        run_pipeline(tmp_path / "out")
        trx_regression.check(tmp_path / "out")
''')


def run_pytest(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m pytest -q -p no:cacheprovider ARGS`` in ``folder``."""
    environ = {k: v for k, v in os.environ.items() if k not in ("CHANGE", "VERSION")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args], cwd=folder, env=environ, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "test_pipe.py").write_text(USER_TEST)
    return folder


def test_snapshot_is_created_then_checked_then_regenerated(user_project: Path) -> None:
    snapshot = user_project / "test_pipe" / "test_pipeline.manifest.json"
    first = run_pytest(user_project)
    assert first.returncode == 1, first.stdout
    assert "Snapshot not found, created" in first.stdout and snapshot.is_file()
    doc = json.loads(snapshot.read_text())
    assert sorted(doc["Files"]) == ["sub-01_tractogram.json", "sub-01_tractogram.trx"]
    assert str(user_project.parent) not in snapshot.read_text()  # no machine path
    # the same output (another tmp folder, other software versions): passes
    second = run_pytest(user_project, VERSION="2")
    assert second.returncode == 0, second.stdout
    # a changed output: fails naming the file and the positions; the snapshot is kept
    changed = run_pytest(user_project, CHANGE="1")
    assert changed.returncode == 1
    assert "sub-01_tractogram.trx: positions: differ from the manifest" in changed.stdout
    assert "test_pipeline.obtained.manifest.json" in changed.stdout
    assert json.loads(snapshot.read_text()) == doc
    # --force-regen rewrites it (and fails once); then the changed output passes
    regen = run_pytest(user_project, "--force-regen", CHANGE="1")
    assert regen.returncode == 1 and "regenerating the snapshot" in regen.stdout
    assert json.loads(snapshot.read_text()) != doc
    assert run_pytest(user_project, CHANGE="1").returncode == 0
    # --regen-all rewrites and passes
    assert run_pytest(user_project, "--regen-all").returncode == 0
    assert json.loads(snapshot.read_text()) == doc


def test_coexists_with_pytest_regressions(user_project: Path) -> None:
    """Both plugins, in any order, share --force-regen; each fixture works."""
    pytest.importorskip("pytest_regressions")  # a test dependency: installed by .[test]
    (user_project / "test_both.py").write_text(textwrap.dedent('''
        def test_data(data_regression):
            data_regression.check({"streamlines": 2})
    '''))
    assert run_pytest(user_project, "--regen-all").returncode == 0
    runs = {
        "autoload": run_pytest(user_project),
        "theirs first": run_pytest(user_project, "-p", "pytest_datadir.plugin",
                                   "-p", "pytest_regressions.plugin",
                                   "-p", "trx_nipype.testing.plugin",
                                   PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"),
        "ours alone": run_pytest(user_project, "-p", "no:regressions", "-k", "pipeline"),
        "ours alone, no autoload": run_pytest(user_project, "-p", "trx_nipype.testing.plugin",
                                              "-k", "pipeline",
                                              PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"),
    }
    for label, run in runs.items():
        assert run.returncode == 0, (label, run.stdout, run.stderr)
    forced = run_pytest(user_project, "--force-regen", CHANGE="1")
    assert forced.returncode == 1 and "regenerating the snapshot" in forced.stdout
    assert "1 failed, 1 passed" in forced.stdout  # data_regression saw the flag: unchanged


def test_options_are_left_to_pytest_regressions_when_it_registers_later() -> None:
    """Ours first, theirs second (entry-point order): pytest must not fail on a clash."""
    plugin = pytest.importorskip("pytest_regressions.plugin")
    from _pytest.config.argparsing import Parser

    parser, manager = Parser(_ispytest=True), pytest.PytestPluginManager()
    pytest_addoption(parser, manager)  # nothing added: pytest-regressions will add them
    plugin.pytest_addoption(parser)
    pytest_addoption(parser, manager)  # and a second time, once they are there: no error
    names = [n for o in parser.getgroup("regressions").options for n in o.names()]
    assert names.count("--force-regen") == 1 and names.count("--regen-all") == 1


def _tiny(path: Path, shift: float = 0.0) -> Path:
    pos = np.arange(18, dtype=np.float32).reshape(6, 3) + np.float32(shift)
    save(TrxFile.from_arrays(pos, lengths=[2, 4], dps={"w": np.array([1.0, 2.0], "f4")}), path)
    return path


def test_assertions(tmp_path: Path) -> None:
    a = _tiny(tmp_path / "a.trx")
    b = _tiny(tmp_path / "b.trx", 1e-4)
    assert assert_tractograms_equal(a, a).equal
    with pytest.raises(AssertionError, match=r"(?s)differ: 1 difference.*positions: largest "
                                             r"deviation 0.00017\d mm at streamline"):
        assert_tractograms_equal(a, b, msg="after the change")
    assert assert_tractograms_equal(a, b, atol=1e-3).notes
    with load(a) as trx:
        assert_tractograms_equal(trx, b, atol=1e-3)
        with pytest.raises(AssertionError, match="nb_streamlines: 1 != 2"):
            assert_tractograms_equal(trx.select([1]), b, atol=1e-3)
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        _tiny(tmp_path / folder / "t.trx")
    assert_trees_equal(tmp_path / "x", tmp_path / "y")
    from trx_nipype.core.operations.manifest import write_manifest

    manifest = write_manifest(tmp_path / "x", tmp_path / "x.json")
    assert_matches_manifest(tmp_path / "y", manifest)
    _tiny(tmp_path / "y" / "t.trx", 1e-4)
    with pytest.raises(AssertionError, match="t.trx: positions"):
        assert_trees_equal(tmp_path / "x", tmp_path / "y")
    with pytest.raises(AssertionError, match="t.trx: positions"):
        assert_matches_manifest(tmp_path / "y", manifest)
    assert_matches_manifest(tmp_path / "y", manifest, atol=1e-3)


def test_the_readme_regression_test_works(tmp_path: Path) -> None:
    """The README's regression test of a user's pipeline, run as a user would: twice."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```python\n")
    (code,) = [b.split("```")[0] for b in blocks if "def test_my_pipeline" in b]
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_my_pipeline.py").write_text(code)
    first = run_pytest(project)
    assert first.returncode == 1 and "Snapshot not found, created" in first.stdout
    snapshot = project / "tests" / "test_my_pipeline" / "test_my_pipeline.manifest.json"
    assert snapshot.is_file()
    second = run_pytest(project)
    assert second.returncode == 0, second.stdout
