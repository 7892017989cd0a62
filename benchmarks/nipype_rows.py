"""The Nipype rows of the benchmark: hashing cost of TRX inputs, cached pipeline rerun.

Both come from modules written alongside the interfaces and workflows; until
they exist these rows say so instead of failing.
"""

from __future__ import annotations

from typing import Any


def collect(ds: Any, scale: float) -> list[dict[str, Any]]:
    """Run whatever Nipype benchmarks are available; one dict per row."""
    return []


def markdown_row(row: dict[str, Any]) -> str:
    """One table row (same columns as the operations table)."""
    return f"| {row['label']} | {row.get('ours', '-')} | {row.get('other', '-')} | " \
           f"{row.get('other_tool', '-')} | {row.get('ratio', '-')} | - | - | " \
           f"{row.get('note', '')} |"


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PASS / MISS entries contributed by the Nipype rows."""
    return []
