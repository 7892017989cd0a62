"""The outlier rule and the QC table."""

from __future__ import annotations

import numpy as np
import pytest

from trx_nipype.reports.qc import (
    MAD_FLOOR,
    OUTLIER_THRESHOLD,
    QcRow,
    qc_tsv,
    robust_z,
    score_rows,
)


def test_robust_z_is_the_modified_z_score() -> None:
    x = np.array([10.0, 12.0, 11.0, 13.0, 9.0, 40.0])
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    np.testing.assert_allclose(robust_z(x), 0.6745 * (x - med) / mad)
    assert np.isnan(robust_z([1.0, np.nan, 3.0])[1])
    np.testing.assert_array_equal(robust_z([5, 5, 5]), [0, 0, 0])
    assert robust_z([5, 5, 5, 6])[3] == np.inf  # MAD 0, no floor: any difference is infinite
    assert robust_z([5, 5, 5, 6], floor=0.5)[3] == pytest.approx(0.6745 * 1 / 0.5)


def _rows(counts: dict[str, int], lengths: dict[str, float] | None = None,
          bundle: str = "AF") -> list[QcRow]:
    lengths = lengths or {}
    return [QcRow(s, bundle, n, lengths.get(s, 100.0)) for s, n in counts.items()]


def test_ten_times_fewer_or_more_streamlines_is_an_outlier() -> None:
    counts = {"s1": 50, "s2": 48, "s3": 5, "s4": 52, "s5": 47, "s6": 51}
    scored = {r.subject: r for r in score_rows(_rows(counts))}
    assert [s for s, r in scored.items() if r.outlier] == ["s3"]
    assert scored["s3"].reasons == [f"streamlines z = {scored['s3'].z_count:+.1f}"]
    counts["s3"] = 500
    scored = {r.subject: r for r in score_rows(_rows(counts))}
    assert [s for s, r in scored.items() if r.outlier] == ["s3"]


def test_a_few_percent_is_never_an_outlier_even_when_most_subjects_agree() -> None:
    # MAD is 0 here (4 of 5 equal): without a floor, 49 against 50 would be infinitely far
    rows = score_rows(_rows({"s1": 50, "s2": 50, "s3": 50, "s4": 50, "s5": 49},
                            {"s1": 120, "s2": 120, "s3": 120, "s4": 120, "s5": 112}))
    assert not any(r.outlier for r in rows)
    # the floor: |log ratio| > 3.5 x 0.05 / 0.6745 (about 26 %) is needed
    limit = OUTLIER_THRESHOLD * MAD_FLOOR / 0.6745
    short = score_rows(_rows({f"s{k}": 50 for k in range(5)},
                             {"s0": 120 * np.exp(-limit * 1.05)} | {f"s{k}": 120
                                                                    for k in range(1, 5)}))
    assert [r.subject for r in short if r.outlier] == ["s0"]
    assert short[0].reasons[0].startswith("mean length z = -")


def test_bundles_are_scored_apart_and_need_three_subjects() -> None:
    rows = _rows({"s1": 50, "s2": 50, "s3": 5}, bundle="AF") + \
        _rows({"s1": 500, "s2": 5}, bundle="CST")
    scored = score_rows(rows)
    assert [(r.subject, r.bundle) for r in scored] == [
        ("s1", "AF"), ("s1", "CST"), ("s2", "AF"), ("s2", "CST"), ("s3", "AF")]
    assert [(r.subject, r.bundle) for r in scored if r.outlier] == [("s3", "AF")]
    cst = [r for r in scored if r.bundle == "CST"]
    assert all(np.isnan(r.z_count) and not r.outlier for r in cst)  # two subjects: not scored


def test_an_empty_bundle_is_flagged_by_its_count() -> None:
    rows = score_rows([QcRow("s1", "AF", 0, None)] + _rows({"s2": 40, "s3": 45, "s4": 50}))
    empty = rows[0]
    assert empty.outlier and np.isnan(empty.z_length)


def test_qc_tsv_text() -> None:
    rows = score_rows(_rows({"s1": 50, "s2": 48, "s3": 5, "s4": 49, "s5": 51},
                            {"s1": 120.12345}) + [QcRow("s6", "AF", 0, None)])
    assert qc_tsv(rows) == (
        "subject\tbundle\tnb_streamlines\tmean_length_mm\toutlier\n"
        "s1\tAF\t50\t120.123\tfalse\n"
        "s2\tAF\t48\t100.000\tfalse\n"
        "s3\tAF\t5\t100.000\ttrue\n"
        "s4\tAF\t49\t100.000\tfalse\n"
        "s5\tAF\t51\t100.000\tfalse\n"
        "s6\tAF\t0\tn/a\ttrue\n")
