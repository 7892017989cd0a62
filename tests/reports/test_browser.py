"""The report in a real browser: headless Chromium loads every figure and paints the page.

Skipped when Chromium is not installed, unless ``TRX_NIPYPE_REQUIRE_CHROMIUM=1``
(set by ``.ci/run``, which installs it): then a missing browser fails the test,
so CI cannot pass without running it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import figure_links

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: after the load event, the page lists each image: src, complete, natural size
_PROBE = """<script>
window.addEventListener("load", () => {
  const found = Array.from(document.images).map(
    (img) => [img.getAttribute("src"), img.complete, img.naturalWidth, img.naturalHeight]);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>
"""


@pytest.fixture
def chromium() -> str:
    """The browser's path (asked before the main job is run: a skip costs nothing)."""
    found = next((p for p in map(shutil.which, _NAMES) if p), None)
    if found is None:
        if os.environ.get("TRX_NIPYPE_REQUIRE_CHROMIUM") == "1":
            pytest.fail("Chromium is required (TRX_NIPYPE_REQUIRE_CHROMIUM=1) but none of "
                        f"{', '.join(_NAMES)} is on PATH: run .ci/install-chromium")
        pytest.skip("Chromium is not installed (.ci/install-chromium installs it)")
    return found


def _browse(browser: str, tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
           f"--user-data-dir={profile}", *args, url]
    return subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace",
                          timeout=180, check=False,
                          env={**os.environ, "HOME": str(tmp_path)})


def test_report_in_headless_chromium(chromium: str, main_run: Path, tmp_path: Path) -> None:
    browser = chromium
    out = Path(shutil.copytree(main_run, tmp_path / "out", ignore=shutil.ignore_patterns("work")))
    page = out / "report.html"
    links = figure_links(page)

    # 1. every image loads: a copy of the page, next to it, that lists them after load
    probe = out / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                     encoding="utf-8")
    done = _browse(browser, tmp_path, probe.as_uri(), "--dump-dom",
                   "--virtual-time-budget=20000")
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert match, done.stdout[-2000:]
    images = json.loads(html.unescape(match.group(1)))
    assert [src for src, *_ in images] == links
    for src, complete, width, height in images:
        assert complete and width > 100 and height > 100, (src, width, height)
    # a figure that is not there does not load: the check can fail
    broken = out / "broken.html"
    broken.write_text(probe.read_text(encoding="utf-8").replace(links[0], "figures/none.png"),
                      encoding="utf-8")
    done = _browse(browser, tmp_path, broken.as_uri(), "--dump-dom",
                   "--virtual-time-budget=20000")
    match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert match and json.loads(html.unescape(match.group(1)))[0][2] == 0

    # 2. the page as a person sees it: not blank, the figures' colours painted
    shot = tmp_path / "report.png"
    done = _browse(browser, tmp_path, page.as_uri(), f"--screenshot={shot}",
                   "--window-size=1280,2400", "--virtual-time-budget=20000")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.size == (1280, 2400)
        pixels = np.asarray(im.convert("RGB")).astype(int)
    assert pixels.std() > 20  # not one colour
    flat = pixels.reshape(-1, 3)
    saturated = (flat.max(axis=1) - flat.min(axis=1)) > 80  # streamlines' colours, not greys
    assert saturated.sum() > 5000, saturated.sum()
    header = pixels[:40].reshape(-1, 3).mean(axis=0)  # the dark blue title bar
    assert header[2] > header[0] + 20
    # a page without its figures paints far fewer coloured pixels
    bare = out / "bare.html"
    bare.write_text(re.sub(r"<figure>.*?</figure>", "", page.read_text(encoding="utf-8")),
                    encoding="utf-8")
    done = _browse(browser, tmp_path, bare.as_uri(), f"--screenshot={tmp_path / 'bare.png'}",
                   "--window-size=1280,2400")
    with Image.open(tmp_path / "bare.png") as im:
        flat = np.asarray(im.convert("RGB")).astype(int).reshape(-1, 3)
    assert ((flat.max(axis=1) - flat.min(axis=1)) > 80).sum() < saturated.sum() / 4
