"""The demo dataset: dipy's shipped ``minimal_bundles.zip``, laid out as ``sub-*/dwi/*``.

dipy ships (inside the installed package, no network needed) a zip of five
subjects (``sub_1`` .. ``sub_5``) with three bundles each, as TrackVis
``.trk`` files of 50 streamlines x 20 points: ``AF_L``, ``CST_R`` and
``CC_ForcepsMajor``. :func:`fetch_demo_dataset` extracts it as a
BIDS-derivatives-like tree::

    <dest>/sub-01/dwi/AF_L.trk
    <dest>/sub-01/dwi/CC_ForcepsMajor.trk
    <dest>/sub-01/dwi/CST_R.trk
    <dest>/sub-02/dwi/...

Extraction is idempotent: a file already present with the same size is left
alone, and every extracted file gets the zip entry's timestamp. Nipype's
cache hashes files by size and modification time, so a work directory stays
valid when the demo data is extracted again.

``trx-nipype run`` without an input folder extracts it into the work dir and
names it by :data:`DEMO_DATASET_URI` in the outputs' ``dataset_description.json``
(``Dataset.uri``), not by where it happens to be, so that the same job gives the
same bytes wherever it runs.

>>> demo_bundles_zip().name
'minimal_bundles.zip'
"""

from __future__ import annotations

import os
import re
import shutil
import time
import zipfile
from pathlib import Path

_SUBJECT_DIR = re.compile(r"^sub_(\d+)/([^/]+)$")
#: where the demo data comes from: the zip shipped inside dipy (``sub_1/AF_L.trk`` there is
#: ``sub-01/dwi/AF_L.trk`` once extracted); the ``DatasetLinks`` value of outputs made from it
DEMO_DATASET_URI = "https://github.com/dipy/dipy/blob/master/dipy/data/files/minimal_bundles.zip"


def demo_bundles_zip() -> Path:
    """The path of ``minimal_bundles.zip`` inside the installed dipy package.

    Raises
    ------
    FileNotFoundError
        If the installed dipy does not ship the file.
    """
    import dipy

    path = Path(dipy.__file__).parent / "data" / "files" / "minimal_bundles.zip"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dipy's minimal_bundles.zip is missing; "
                                "reinstall dipy (>= 1.9)")
    return path


def fetch_demo_dataset(dest: str | os.PathLike) -> Path:
    """Extract the demo dataset to ``dest`` as ``sub-XX/dwi/<bundle>.trk``.

    Parameters
    ----------
    dest : str or os.PathLike
        The dataset root (created if needed).

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    dest = Path(dest)
    with zipfile.ZipFile(demo_bundles_zip()) as zf:
        for info in zf.infolist():
            match = _SUBJECT_DIR.match(info.filename)
            if info.is_dir() or match is None:
                continue
            subject = f"sub-{int(match.group(1)):02d}"
            target = dest / subject / "dwi" / match.group(2)
            if target.is_file() and target.stat().st_size == info.file_size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            with zf.open(info) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
            stamp = time.mktime((*info.date_time, 0, 0, -1))
            os.utime(tmp, (stamp, stamp))
            os.replace(tmp, target)
    return dest
