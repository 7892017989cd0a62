"""run_workflow with users' own workflows: their settings win, labels read right, any plugin."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from nipype.interfaces.utility import Function, IdentityInterface
from nipype.pipeline import engine as pe

from trx_nipype.workflows import find_dataset, init_bundles_pipeline_wf, run_workflow
from trx_nipype.workflows.runner import node_context


def _double(x):  # noqa: ANN001, ANN202 (a Nipype Function)
    if x == "bad":
        raise ValueError(f"cannot double {x!r}")
    return x * 2


def _logname(x):  # noqa: ANN001, ANN202 (a Nipype Function)
    import os

    return os.environ.get("LOGNAME", "")


def user_workflow(values: list[str], field: str = "subject_id", function=_double) -> pe.Workflow:
    """A workflow as a user writes it: an iterable over subjects, one Function node."""
    wf = pe.Workflow(name="user_wf")
    source = pe.Node(IdentityInterface(fields=[field]), name="source")
    source.iterables = (field, values)
    node = pe.Node(Function(input_names=["x"], output_names=["y"], function=function),
                   name="double")
    wf.connect(source, field, node, "x")
    return wf


def test_the_users_execution_settings_are_kept(tmp_path: Path) -> None:
    # issue 16 item 2: run_workflow used to overwrite these with its own values
    wf = user_workflow(["01", "bad"])
    mine = {"hash_method": "content", "crashdump_dir": str(tmp_path / "my-crashes"),
            "stop_on_first_crash": "true", "remove_unnecessary_outputs": "false",
            "crashfile_format": "pklz"}
    wf.config["execution"].update(mine)
    report = run_workflow(wf, tmp_path / "work")
    assert {k: wf.config["execution"][k] for k in mine} == mine
    # the failure is still reported, from the user's crash folder
    assert [f.line() for f in report.failures] == ["sub-bad: double: cannot double 'bad'"]
    assert Path(report.failures[0].crashfile).parent == tmp_path / "my-crashes"


def test_unset_settings_are_filled_in(tmp_path: Path) -> None:
    wf = user_workflow(["01"])
    assert run_workflow(wf, tmp_path / "work").ok
    assert wf.config["execution"]["crashdump_dir"] == str(tmp_path / "work" / "crash")
    assert wf.config["execution"]["crashfile_format"] == "pklz"


@pytest.mark.parametrize("field,values,expected", [
    ("subject_id", ["01", "02"], {"sub-01", "sub-02"}),        # issue 16 item 12: id_sub-01
    ("subject_id", ["sub-01", "sub-02"], {"sub-01", "sub-02"}),
    ("participant_label", ["01"], {"sub-01"}),
    ("session_id", ["pre"], {"ses-pre"}),
    ("bundle_name", ["AF_L"], {"bundle_name-AF_L"}),
])
def test_progress_labels_for_any_iterable_name(tmp_path: Path, field: str, values: list[str],
                                               expected: set[str]) -> None:
    lines: list[str] = []
    report = run_workflow(user_workflow(values, field), tmp_path / "work", echo=lines.append)
    assert report.ok
    assert {e.context for e in report.events} == expected
    assert all(any(f" {c} " in ln for ln in lines) for c in expected)


def test_node_context_without_known_fields() -> None:
    assert node_context("/w/wf/_subject_sub-03/load", "/w") == "sub-03"
    assert node_context("/w/wf/_bundle_AF_L/concat", "/w") == "bundle-AF_L"
    assert node_context("/w/wf/_subject_id_01/x", "/w", fields=("subject_id",)) == "sub-01"


def test_logname_is_set_for_the_run_when_unset(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Nipype's cluster plugins read os.environ["LOGNAME"]: unset in many batch environments
    monkeypatch.delenv("LOGNAME", raising=False)
    wf = user_workflow(["01"], function=_logname)
    assert run_workflow(wf, tmp_path / "work").ok
    result = next((tmp_path / "work").rglob("result_double.pklz"))
    from nipype.utils.filemanip import loadpkl

    assert loadpkl(result).outputs.y == pwd.getpwuid(os.getuid()).pw_name
    assert "LOGNAME" not in os.environ  # only for the run


def test_multiproc_never_sleeps_a_fixed_poll(demo_copy: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Nipype's MultiProc sleeps poll_sleep_duration (2 s by default) after every scheduling
    # round, and a round hands out at most n_procs nodes, cached ones too: a cached rerun of
    # 200 nodes took 100 rounds. Ours waits for its workers instead.
    from nipype.pipeline.plugins import base

    slept: list[float] = []
    real = base.sleep
    monkeypatch.setattr(base, "sleep", lambda s: (slept.append(s), real(s)))
    out, work = tmp_path / "out", tmp_path / "work"
    wf = init_bundles_pipeline_wf(find_dataset(demo_copy), out)
    assert run_workflow(wf, work, plugin="MultiProc", nprocs=2).ok
    report = run_workflow(init_bundles_pipeline_wf(find_dataset(demo_copy), out), work,
                          plugin="MultiProc", nprocs=2)
    assert report.ok and report.ran == [] and len(report.cached) == 18
    assert slept and max(slept) == 0


def test_wf_run_settings_and_user_poll_win(demo_copy: Path, tmp_path: Path) -> None:
    wf = init_bundles_pipeline_wf(find_dataset(demo_copy), tmp_path / "out")
    wf.config["execution"]["poll_sleep_duration"] = "0.01"
    assert run_workflow(wf, tmp_path / "work", plugin="MultiProc", nprocs=2).ok
    assert wf.config["execution"]["poll_sleep_duration"] == "0.01"
