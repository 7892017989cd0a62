"""Figures: what they draw, the same bytes every time, headless whatever the backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from trx_nipype.core import TrxFile, load, save
from trx_nipype.core.metrics import lengths_mm
from trx_nipype.interfaces._examples import example_trx
from trx_nipype.reports.figures import tractogram_figure
from trx_nipype.reports.measures import (
    ALL_STREAMLINES,
    NO_GROUP,
    grid_box,
    measure_tractogram,
)
from trx_nipype.reports.render import group_colours

#: the SVG id salt the report set in matplotlib while it drew with matplotlib
SVG_HASHSALT = "trx-nipype"


def _bundle(tmp_path: Path, n: int = 400) -> str:
    """A TRX whose streamlines lie in the middle of an 80 x 80 x 80 grid of 1 mm."""
    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 15, size=n)
    steps = rng.normal(0, 1.0, size=(int(lengths.sum()), 3))
    positions = (np.cumsum(steps, axis=0) * 0.2 % 30 + 25).astype(np.float32)
    trx = TrxFile.from_arrays(positions, lengths=lengths, affine=np.eye(4),
                              dimensions=(80, 80, 80),
                              groups={"left": np.arange(0, n // 2, dtype=np.uint32),
                                      "right": np.arange(n // 2, n - 10, dtype=np.uint32)})
    save(trx, tmp_path / "bundle.trx")
    return str(tmp_path / "bundle.trx")


def test_measures_count_groups_ungrouped_and_sample(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    with load(path) as trx:
        m = measure_tractogram(trx, max_streamlines=90, seed=4)
        expected = lengths_mm(trx)
    assert [(c.name, c.count, c.drawn) for c in m.categories] == [
        ("left", 200, 30), ("right", 190, 30), (NO_GROUP, 10, 10)]
    assert m.sampled and m.drawn == 70
    np.testing.assert_array_equal(m.categories[0].lengths, expected[:200])
    np.testing.assert_array_equal(m.categories[2].lengths, expected[390:])
    assert m.categories[2].colour == "#7f7f7f"
    assert [c.colour for c in m.categories[:2]] == list(group_colours(["left", "right"])
                                                         .values())
    np.testing.assert_array_equal(m.box, [[-0.5] * 3, [79.5] * 3])
    with load(path) as trx:  # the same seed draws the same sample; another, another one
        again = measure_tractogram(trx, max_streamlines=90, seed=4)
        other = measure_tractogram(trx, max_streamlines=90, seed=5)
    np.testing.assert_array_equal(again.categories[0].positions, m.categories[0].positions)
    assert not np.array_equal(other.categories[0].positions, m.categories[0].positions)


def test_the_drawn_sample_is_each_groups_seeded_sample(tmp_path: Path) -> None:
    # a population file: many groups (each group's sample is read without building views)
    rng = np.random.default_rng(3)
    lengths = rng.integers(2, 6, size=600)
    positions = rng.normal(size=(int(lengths.sum()), 3)).astype(np.float32)
    groups = {f"sub-{k:02d}": np.arange(k * 30, k * 30 + 30, dtype=np.uint32)
              for k in range(19)}
    trx = TrxFile.from_arrays(positions, lengths=lengths, groups=groups)
    m = measure_tractogram(trx, max_streamlines=400, seed=7)  # 20 categories: 20 each
    assert [c.name for c in m.categories] == [*sorted(groups), NO_GROUP]
    for cat in m.categories:
        members = groups.get(cat.name, np.arange(570, 600))
        view = trx.select(members).sample(20, seed=7)
        assert cat.drawn == 20 and cat.count == 30
        np.testing.assert_array_equal(cat.sample_lengths, view.lengths)
        np.testing.assert_array_equal(cat.positions, view.positions)


def test_a_file_without_groups_is_one_category(tmp_path: Path) -> None:
    trx = TrxFile.from_arrays(np.zeros((6, 3), np.float32), lengths=[3, 3])
    m = measure_tractogram(trx)
    assert [(c.name, c.count) for c in m.categories] == [(ALL_STREAMLINES, 2)]
    assert m.box is None  # a 1 x 1 x 1 grid: no box


def test_grid_box_of_an_oblique_affine() -> None:
    affine = np.array([[0, -2.0, 0, 10], [2.0, 0, 0, -5], [0, 0, 3.0, 1], [0, 0, 0, 1]])
    box = grid_box(affine, np.array([4, 6, 2]))
    np.testing.assert_allclose(box, [[-1.0, -6.0, -0.5], [11.0, 2.0, 5.5]])


@pytest.mark.parametrize("figure,ext", [("projections", ".png"), ("lengths", ".svg"),
                                        ("projections", ".svg"), ("lengths", ".png")])
def test_figures_are_the_same_bytes_every_time(tmp_path: Path, figure: str, ext: str) -> None:
    path = _bundle(tmp_path)
    a = tractogram_figure(path, tmp_path / f"a{ext}", figure=figure)
    b = tractogram_figure(path, tmp_path / f"b{ext}", figure=figure)
    assert a.read_bytes() == b.read_bytes()
    data = a.read_bytes()
    if ext == ".svg":
        assert b"<dc:date>" not in data and b"Matplotlib v" not in data
    else:
        assert b"Software" not in data and b"matplotlib" not in data.lower()
        with Image.open(a) as im:
            assert im.format == "PNG"


def test_figures_ignore_the_users_matplotlib_settings(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    before = tractogram_figure(path, tmp_path / "a.svg", figure="lengths").read_bytes()
    with matplotlib.rc_context({"svg.hashsalt": "other", "lines.linewidth": 7.0,
                                "font.size": 20, "axes.prop_cycle": matplotlib.cycler(
                                    color=["k"])}):
        after = tractogram_figure(path, tmp_path / "b.svg", figure="lengths").read_bytes()
        assert matplotlib.rcParams["svg.hashsalt"] == "other"  # restored, not overwritten
    assert before == after
    assert matplotlib.rcParams["svg.hashsalt"] != SVG_HASHSALT


def test_figures_in_a_process_without_a_display_or_gui_backend(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["MPLBACKEND"] = "TkAgg"  # pyplot would need a display; the figures never use it
    code = ("import sys; from trx_nipype.reports.figures import tractogram_figure; "
            "tractogram_figure(sys.argv[1], sys.argv[2]); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, path, str(tmp_path / "x.png")], env=env,
                   check=True, timeout=120)
    expected = tractogram_figure(path, tmp_path / "y.png").read_bytes()
    assert (tmp_path / "x.png").read_bytes() == expected


def test_projections_draw_the_box_and_the_group_colours(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    out = tractogram_figure(path, tmp_path / "p.png")
    with Image.open(out) as im:
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    colours = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))
               for c in group_colours(["left", "right"]).values()}
    box_face = (0xF4, 0xF4, 0xF4)
    found = {tuple(p) for p in np.unique(pixels, axis=0)}
    assert box_face in found  # the grid's box behind the lines
    for colour in colours:  # each group's colour (where lines are solid)
        near = np.abs(pixels.astype(int) - colour).sum(axis=1) < 60
        assert near.sum() > 50, colour


def test_bad_figure_requests_are_refused(tmp_path: Path) -> None:
    path = example_trx(tmp_path)
    with pytest.raises(ValueError, match="must be .png or .svg"):
        tractogram_figure(path, tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="figure must be one of projections, lengths"):
        tractogram_figure(path, tmp_path / "x.png", figure="density")
    assert not list(tmp_path.glob("x.*"))
