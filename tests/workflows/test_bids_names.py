"""`trx-nipype run` on a dataset named as real ones are (issue 16 item 10).

The demo bundles renamed after BIDS (``sub-01_space-MNI_tract-CC_tractogram.trk``,
a ``bundle-``/``hemi-`` name, a TCK), beside a DWI, an FA and a mask image in
each dwi folder: ``--reference-pattern`` picks the FA, the bundles are named
after their entities, and the outputs follow BEP046 (``space-`` carried).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from trx_nipype.cli.main import main
from trx_nipype.core import load

from .conftest import digests

FILES = {"AF_L.trk": "sub-{s}_space-MNI_bundle-AF_hemi-L_tractogram.trk",
         "CC_ForcepsMajor.trk": "sub-{s}_space-MNI_tract-CC_tractogram.trk",
         "CST_R.trk": "sub-{s}_space-MNI_tract-CST_hemi-R_tractogram.tck"}


def bids_dataset(demo_source: Path, root: Path) -> Path:
    for s in ("01", "02"):
        src, dwi = demo_source / f"sub-{s}" / "dwi", root / f"sub-{s}" / "dwi"
        dwi.mkdir(parents=True)
        for old, new in FILES.items():
            trk = nib.streamlines.load(str(src / old))
            dest = dwi / new.format(s=s)
            header = trk.header if dest.suffix == ".trk" else None  # a TCK has no space
            nib.streamlines.save(trk.tractogram, str(dest), header=header)
        # the demo TRKs declare a 1 mm identity grid of 1 x 1 x 1: so does the FA
        for kind, shape in (("dwi", (1, 1, 1, 5)), ("FA", (1, 1, 1)), ("mask", (1, 1, 1))):
            nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)),
                     dwi / f"sub-{s}_space-MNI_{kind}.nii.gz")
    return root


def test_run_on_bids_names_with_a_reference_pattern(demo_source: Path, tmp_path: Path,
                                                    capsys) -> None:
    data = bids_dataset(demo_source, tmp_path / "data")
    out = tmp_path / "out"
    code = main(["run", str(data), "--output-dir", str(out), "-q"])
    assert code == 3
    assert "--reference-pattern" in capsys.readouterr().err
    code = main(["run", str(data), "--output-dir", str(out), "-q",
                 "--reference-pattern", "sub-{subject}/dwi/*_FA.nii.gz"])
    assert code == 0, capsys.readouterr().err
    assert sorted(digests(out)) == [
        "population/space-MNI_tract-AF_L_tractogram.trx",
        "population/space-MNI_tract-CC_tractogram.trx",
        "population/space-MNI_tract-CST_R_tractogram.trx",
        "sub-01/dwi/sub-01_space-MNI_desc-bundles_tractogram.trx",
        "sub-02/dwi/sub-02_space-MNI_desc-bundles_tractogram.trx"]
    with load(out / "sub-02/dwi/sub-02_space-MNI_desc-bundles_tractogram.trx") as trx:
        assert {g: len(i) for g, i in trx.groups.items()} == {"AF_L": 50, "CC": 50,
                                                               "CST_R": 50}
        original = nib.streamlines.load(str(demo_source / "sub-02/dwi/CST_R.trk"))
        np.testing.assert_allclose(trx.get_group("CST_R").streamlines[7],
                                   original.streamlines[7], atol=1e-4)
    side = json.loads((out / "sub-01/dwi/sub-01_space-MNI_desc-bundles_tractogram.json")
                      .read_text(encoding="utf-8"))
    assert any(s["path"].endswith("sub-01_space-MNI_FA.nii.gz") for s in side["Sources"])
