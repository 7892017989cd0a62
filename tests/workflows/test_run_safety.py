"""What a run leaves behind and how it fails: no environment in any file it writes."""

from __future__ import annotations

from pathlib import Path

from trx_test_helpers import files_holding

from trx_nipype.cli.main import main
from trx_nipype.workflows import default_work_dir

SECRET = "s3cr3t-7d1f0c2a9b"


def test_no_environment_variable_reaches_any_file(tmp_path: Path, monkeypatch) -> None:
    # Nipype pickles the whole environment into every node result (and lists it in every
    # node report): a token in the environment ended up in 10 files of OUTPUT_DIR/work
    monkeypatch.setenv("MY_API_TOKEN", SECRET)
    out = tmp_path / "demo-out"
    assert main(["run", "--output-dir", str(out), "-q", "--plugin", "MultiProc",
                 "--nprocs", "2"]) == 0
    work = default_work_dir(out)
    assert work == tmp_path / "demo-out-work" and (work / "demo-data").is_dir()
    assert not (out / "work").exists()  # the cache is not part of the shareable tree
    results = list(work.rglob("result_*.pklz"))
    assert len(results) == 18 and files_holding(work, b"NIPYPE_NO_ET") == []
    assert files_holding(out, SECRET.encode()) == []
    assert files_holding(work, SECRET.encode()) == []
