"""The README's Quick start is what CI runs, and command 1 installs only what the job needs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_ci_runs_the_readme_commands_verbatim() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert [ln for ln in ci if ln in commands] == commands  # both, in this order


def test_command_1_installs_only_what_the_job_needs() -> None:
    setup, tests = quick_start_commands()
    assert "pip install . " in setup and "[test]" not in setup
    assert "trx-nipype run" in setup
    assert 'pip install ".[test]"' in tests and "pytest" in tests
