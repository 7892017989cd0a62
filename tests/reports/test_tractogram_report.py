"""``trx-nipype report FILE -o PAGE.html``: one self-contained page, for TRK, TCK and TRX.

Counts come from nibabel (an independent reader of the TRK/TCK files) and
lengths from dipy.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dipy.tracking.streamline import length as dipy_length
from PIL import Image

from trx_nipype.cli.main import main
from trx_nipype.core import convert, load
from trx_nipype.interfaces._examples import example_trx

from .conftest import BUNDLES


def _images(text: str) -> list[tuple[str, bytes]]:
    """(format, bytes) of every embedded figure of a page."""
    found = re.findall(r'<img src="data:image/(png|svg\+xml);base64,([A-Za-z0-9+/=]+)"', text)
    return [(fmt, base64.b64decode(data)) for fmt, data in found]


def _check_page(page: Path, name: str, counts: dict[str, int], total: int) -> str:
    text = page.read_text(encoding="utf-8")
    assert f"<title>trx-nipype report: {html.escape(name)}</title>" in text
    assert "<img src=\"data:" in text and 'src="figures/' not in text  # self-contained
    images = _images(text)
    assert [fmt for fmt, _ in images] == ["png", "svg+xml"]
    with Image.open(io.BytesIO(images[0][1])) as im:
        assert im.format == "PNG" and im.size[0] > 300
    assert images[1][1].startswith(b"<?xml")
    assert f"<dt>streamlines</dt><dd>{total:,}</dd>" in text
    for group, n in counts.items():
        assert re.search(rf'<span class="swatch" style="background:#[0-9a-f]{{6}}"></span>'
                         rf'{re.escape(html.escape(group))}</td><td class="num">{n:,}</td>',
                         text), group
    return text


def test_trk_page(demo_data: Path, tmp_path: Path, capsys) -> None:
    trk = demo_data / "sub-01" / "dwi" / "AF_L.trk"
    page = tmp_path / "af.html"
    assert main(["report", str(trk), "-o", str(page)]) == 0
    assert capsys.readouterr().out.strip() == str(page)
    streamlines = nib.streamlines.load(str(trk)).streamlines
    text = _check_page(page, "AF_L.trk", {"all streamlines": len(streamlines)}, 50)
    mean = float(np.mean(dipy_length(streamlines)))
    assert f'<td class="num">{len(streamlines)}</td><td class="num">{mean:.1f}</td>' in text
    assert "all 50 streamlines" in text  # not a sample
    assert str(tmp_path) not in text and str(demo_data) not in text


def test_tck_page_needs_its_reference(tmp_path: Path, capsys) -> None:
    trx = example_trx(tmp_path, nb_streamlines=40)
    tck = tmp_path / "bundle.tck"
    with pytest.warns(UserWarning, match="TCK cannot hold"):
        convert(trx, tck)
    ref = tmp_path / "t1.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((40, 40, 40), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0])),
             str(ref))
    assert main(["report", str(tck), "-o", str(tmp_path / "x.html")]) == 3
    assert "reference" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
    assert main(["report", str(tck), "--reference", str(ref), "-o",
                 str(tmp_path / "x.html")]) == 0
    n = len(nib.streamlines.load(str(tck)).streamlines)
    text = _check_page(tmp_path / "x.html", "bundle.tck", {"all streamlines": n}, n)
    assert "<dt>grid</dt><dd>40 × 40 × 40 voxels of 2 × 2 × 2 mm</dd>" in text
    assert "on the reference grid&#x27;s box" in text


@pytest.mark.parametrize("container", ["zip", "directory"])
def test_trx_page_groups_and_sample(tmp_path: Path, container: str) -> None:
    name = "bundle.trx" if container == "zip" else "bundle_dir"
    path = example_trx(tmp_path, name, nb_streamlines=5000)
    page = tmp_path / "page.html"
    assert main(["report", path, "-o", str(page), "--max-streamlines", "300", "--seed",
                 "3"]) == 0
    with load(path) as trx:
        counts = {g: len(i) for g, i in trx.groups.items()}
    text = _check_page(page, Path(path).name, counts, 5000)
    assert counts == {"AF": 2500, "CST": 2500}
    assert ("a seeded random sample of 300 of the 5,000 streamlines (at most 150 per group, "
            "seed 3)") in text
    assert "<dt>data per streamline</dt><dd>weight</dd>" in text


def test_default_page_name_and_what_is_not_replaced(tmp_path: Path, monkeypatch,
                                                    capsys) -> None:
    path = example_trx(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["report", path]) == 0
    assert (tmp_path / "bundle_report.html").is_file()
    first = (tmp_path / "bundle_report.html").read_bytes()
    assert main(["report", path]) == 0  # its own page: replaced (the same bytes)
    assert (tmp_path / "bundle_report.html").read_bytes() == first
    notes = tmp_path / "notes.html"
    notes.write_text("mine", encoding="utf-8")
    capsys.readouterr()
    assert main(["report", path, "-o", str(notes)]) == 2
    assert "not a trx-nipype report; not replaced" in capsys.readouterr().err
    assert notes.read_text(encoding="utf-8") == "mine"
    assert main(["report", path, "-o", str(tmp_path / "page.png")]) == 2
    assert "must name an .html page" in capsys.readouterr().err


def test_population_file_page(main_run: Path, tmp_path: Path) -> None:
    path = main_run / "population" / "tract-CST_R_tractogram.trx"
    assert main(["report", str(path), "-o", str(tmp_path / "p.html")]) == 0
    _check_page(tmp_path / "p.html", path.name, {f"sub-0{k}": 50 for k in range(1, 6)}, 250)
    assert BUNDLES  # the same demo data as the run report tests
