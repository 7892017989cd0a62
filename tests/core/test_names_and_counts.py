"""File names made from group and input names (stable, short enough for a filesystem), and
counting a file that carries no space without a reference (issue 16 item 11, 18 item 7)."""

from __future__ import annotations

import nibabel as nib
from trx_test_helpers import real_tractograms

from trx_nipype.core.naming import (
    MADE_NAME_MAX,
    concatenation_name,
    fit_file_name,
    tractogram_stem,
)
from trx_nipype.core.summary import summarize

REAL = dict(real_tractograms())


def test_fit_file_name_is_stable_short_and_distinct() -> None:
    names = ["é" * 200 + tail for tail in ("a", "b")]  # 2-byte characters
    fitted = [fit_file_name(n, ".trk") for n in names]
    assert fitted == [fit_file_name(n, ".trk") for n in names]  # stable
    assert all(len(f.encode()) <= MADE_NAME_MAX for f in fitted) and fitted[0] != fitted[1]
    assert all(f.endswith(".trk") and f.startswith("é" * 100) for f in fitted)
    assert fit_file_name("AF_L", ".trx") == "AF_L.trx"


def test_stems_and_concatenation_names() -> None:
    assert [tractogram_stem(p) for p in ("a/AF_L.trk.gz", "b/sub.trx", "c/dir/", "d.v2")] == [
        "AF_L", "sub", "dir", "d.v2"]
    assert concatenation_name(["AF_L", "CST_R"], ".trx") == "AF_L+CST_R_concat.trx"
    assert concatenation_name([f"sub-{i:03d}" for i in range(100)], ".trk") == \
        "sub-000+99_more_concat.trk"


def test_a_tck_is_counted_without_a_reference() -> None:
    tck = REAL["nibabel/standard.tck"]
    info = summarize(tck)
    streamlines = nib.streamlines.load(str(tck)).streamlines
    assert (info["nb_streamlines"], info["nb_vertices"]) == (len(streamlines),
                                                             len(streamlines.get_data()))
    assert info["affine"] is None and info["dimensions"] is None
    placed = summarize(tck, reference=REAL["nibabel/standard.trk"])
    assert placed["nb_streamlines"] == info["nb_streamlines"]
    assert placed["dimensions"] == summarize(REAL["nibabel/standard.trk"])["dimensions"]
