"""Streamline lengths in mm, against dipy on the real tractograms shipped with dipy/nibabel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dipy.tracking.streamline import length
from trx.trx_file_memmap import load as trx_python_load
from trx.trx_file_memmap import save as trx_python_save
from trx_test_helpers import real_tractograms

from trx_nipype.core import TrxFile, load, load_any
from trx_nipype.core.metrics import lengths_mm


@pytest.mark.parametrize(("name", "path"), list(real_tractograms()))
def test_lengths_equal_dipy_on_real_files(name: str, path: Path) -> None:
    reference = path.with_suffix(".nii.gz") if path.suffix == ".tck" else None
    with load_any(path, reference=reference) as trx:
        expected = length([np.array(s, dtype=np.float64) for s in trx.streamlines])
        np.testing.assert_allclose(lengths_mm(trx), expected, rtol=1e-9, atol=1e-9)
        # tiny chunks: streamlines split across no chunk boundary, whatever the budget
        np.testing.assert_allclose(lengths_mm(trx, chunk_vertices=7), expected, rtol=1e-9,
                                   atol=1e-9)


def test_lengths_of_views_and_degenerate_streamlines() -> None:
    pos = np.arange(30, dtype=np.float32).reshape(10, 3)
    trx = TrxFile.from_arrays(pos, lengths=[0, 1, 4, 0, 5])
    step = np.sqrt(27.0)
    np.testing.assert_allclose(lengths_mm(trx), [0, 0, 3 * step, 0, 4 * step])
    view = trx.select([4, 2, 2, 0])
    np.testing.assert_allclose(lengths_mm(view, chunk_vertices=3),
                               [4 * step, 3 * step, 3 * step, 0])
    assert lengths_mm(trx.select([])).shape == (0,)


def test_lengths_of_mixed_empty_single_point_and_long_streamlines_at_any_chunk() -> None:
    """Every arrangement of empty, one-point and longer streamlines, cut anywhere into
    chunks, gives each streamline the float64 sum of its own segments and nothing of
    its neighbours' (the segments between two streamlines belong to neither)."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        lens = rng.integers(0, 4, size=int(rng.integers(1, 12)))
        pts = (rng.random((int(lens.sum()), 3)) * 10).astype(np.float32)
        trx = TrxFile.from_arrays(pts, lengths=lens)
        starts = np.cumsum(lens) - lens
        expected = [np.linalg.norm(np.diff(pts[o:o + n].astype(np.float64), axis=0),
                                   axis=1).sum() if n > 1 else 0.0
                    for o, n in zip(starts, lens, strict=True)]
        for chunk in (1, 2, 3, 5, 100):
            np.testing.assert_allclose(lengths_mm(trx, chunk_vertices=chunk), expected,
                                       rtol=1e-12, atol=1e-12)


def test_lengths_of_a_file_written_by_trx_python(tmp_path: Path) -> None:
    # trx-python's zips have unaligned members: what users have
    rng = np.random.default_rng(0)
    lens = rng.integers(2, 40, size=300)
    pos = rng.normal(size=(int(lens.sum()), 3)).astype(np.float32)
    src = TrxFile.from_arrays(pos, lengths=lens)
    from trx_nipype.core import save

    save(src, tmp_path / "ours.trx")
    theirs = trx_python_load(str(tmp_path / "ours.trx"))
    trx_python_save(theirs, str(tmp_path / "theirs.trx"))
    theirs.close()
    expected = length(np.split(pos.astype(np.float64), np.cumsum(lens)[:-1]))
    with load(tmp_path / "theirs.trx") as trx:
        np.testing.assert_allclose(lengths_mm(trx), expected, rtol=1e-9)


def test_packed_data_is_the_buffer_when_packed_and_a_copy_otherwise() -> None:
    from dipy.tracking.streamline import set_number_of_points
    from nibabel.streamlines import ArraySequence

    from trx_nipype.core.metrics import as_sequence, packed_data

    pos = np.arange(60, dtype=np.float32).reshape(20, 3)
    fixed = set_number_of_points(as_sequence(pos, np.array([5, 7, 8])), nb_points=4)
    data = packed_data(fixed)
    assert np.shares_memory(data, fixed._data)
    np.testing.assert_array_equal(data, fixed.get_data())
    # streamlines out of order in their buffer (a selection): copied, in order
    seq = ArraySequence()
    seq._data, seq._offsets, seq._lengths = pos, np.array([10, 0]), np.array([3, 2])
    np.testing.assert_array_equal(packed_data(seq), np.concatenate([pos[10:13], pos[0:2]]))
