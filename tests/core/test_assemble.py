"""assemble_bundles: bundle files of any format -> one TRX, one group per file, streamed.

The reference is the old two-step way (convert each file to TRX, then
``concatenate(..., group_by_input=True)``): the same bytes, on the demo data and
on the real TRK/TCK files shipped with dipy and nibabel, whether the parsed
blocks are kept from the first pass or the files are read a second time.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from trx_test_helpers import real_tractograms

from trx_nipype.core import TrxFormatError, concatenate, convert, load
from trx_nipype.core.operations import assemble as assemble_mod
from trx_nipype.core.operations.assemble import assemble_bundles
from trx_nipype.data import fetch_demo_dataset

REFERENCE = Path(str(importlib.resources.files("nibabel") / "tests" / "data" /
                     "standard.nii.gz"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fetch_demo_dataset(tmp_path_factory.mktemp("demo") / "data")


def two_steps(files: list[Path], names: list[str], out: Path, reference: Path | None = None
              ) -> Path:
    staged = []
    for i, f in enumerate(files):
        staged.append(convert(f, out.parent / f"staged{i}.trx", reference=reference))
    return concatenate(staged, out, group_by_input=True, group_names=names, delete_dps=True,
                       delete_dpv=True)


@pytest.mark.parametrize("budget", [assemble_mod.MEMORY_BUDGET, 0])
def test_demo_subject_gives_the_two_step_bytes(demo: Path, tmp_path: Path, budget: int) -> None:
    files = sorted((demo / "sub-03" / "dwi").glob("*.trk"))
    names = [f.stem for f in files]
    old = two_steps(files, names, tmp_path / "old.trx")
    new = assemble_bundles(files, tmp_path / "new.trx", names=names, delete_dps=True,
                           delete_dpv=True, memory_budget=budget, chunk_bytes=5000)
    assert new.read_bytes() == old.read_bytes()
    with load(new) as trx:
        assert {g: len(i) for g, i in trx.groups.items()} == {n: 50 for n in names}


@pytest.mark.parametrize("label,path", list(real_tractograms()))
@pytest.mark.parametrize("budget", [assemble_mod.MEMORY_BUDGET, 0])
def test_real_files_give_the_two_step_bytes(label: str, path: Path, budget: int,
                                            tmp_path: Path) -> None:
    reference = REFERENCE if path.suffix == ".tck" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # float32 data, bounding boxes: not what is tested
        old = two_steps([path, path], ["a", "b"], tmp_path / "old.trx", reference)
        new = assemble_bundles([path, path], tmp_path / "new.trx", names=["a", "b"],
                               reference=reference, delete_dps=True, delete_dpv=True,
                               memory_budget=budget, chunk_bytes=4096)
    assert new.read_bytes() == old.read_bytes(), label


def test_mixed_formats_and_the_bundle_group(demo: Path, tmp_path: Path) -> None:
    trk = demo / "sub-01" / "dwi" / "AF_L.trk"
    # a TRX folder holding a group named like its own bundle (as split-groups writes it)
    staged = convert(demo / "sub-01" / "dwi" / "CST_R.trk", tmp_path / "c.trx")
    folder = concatenate([staged], tmp_path / "CST_R", group_by_input=True,
                         group_names=["CST_R"])
    tck = tmp_path / "CC.tck.gz"
    nib.streamlines.save(nib.streamlines.load(str(demo / "sub-01/dwi/CC_ForcepsMajor.trk"))
                         .tractogram, str(tmp_path / "CC.tck"))
    with open(tmp_path / "CC.tck", "rb") as src:
        import gzip

        tck.write_bytes(gzip.compress(src.read()))
    out = assemble_bundles([trk, folder, tck], tmp_path / "s.trx", reference=trk)
    with load(out) as trx, load(folder) as f:
        assert {g: len(i) for g, i in trx.groups.items()} == {"AF_L": 50, "CST_R": 50,
                                                               "CC": 50}
        assert set(f.groups) == {"CST_R"}  # the input is not changed
        original = nib.streamlines.load(str(demo / "sub-01/dwi/CC_ForcepsMajor.trk"))
        np.testing.assert_allclose(trx.streamlines[100], original.streamlines[0], atol=1e-5)
        np.testing.assert_allclose(trx.streamlines[149], original.streamlines[49], atol=1e-5)


def test_blocks_are_read_again_beyond_the_budget(demo: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = assemble_mod._Streamed.scan

    def counting_scan(self, budget, bbox):  # noqa: ANN001, ANN202
        real(self, budget, bbox)
        reads.append("kept" if self.cached is not None else "dropped")

    monkeypatch.setattr(assemble_mod._Streamed, "scan", counting_scan)
    files = sorted((demo / "sub-02" / "dwi").glob("*.trk"))
    one_file = sum(f.stat().st_size for f in files[:1])
    assemble_bundles(files, tmp_path / "a.trx", memory_budget=int(one_file * 1.5))
    assert reads == ["kept", "dropped", "dropped"]  # the budget is shared by the call


def test_a_tck_without_reference_is_refused_naming_it(demo: Path, tmp_path: Path) -> None:
    tck = tmp_path / "AF_L.tck"
    nib.streamlines.save(nib.streamlines.load(str(demo / "sub-01/dwi/AF_L.trk")).tractogram,
                         str(tck))
    with pytest.raises(ValueError, match=r"AF_L\.tck: \.tck files carry no space.*reference"):
        assemble_bundles([demo / "sub-01/dwi/CST_R.trk", tck], tmp_path / "o.trx")
    assert not (tmp_path / "o.trx").exists()


def test_a_reference_of_another_space_is_refused(demo: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"AF_L\.trk: its space .* differs from the reference"):
        assemble_bundles([demo / "sub-01/dwi/AF_L.trk"], tmp_path / "o.trx",
                         reference=REFERENCE)


def test_a_malformed_file_is_named(demo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "CST_R.trk"
    bad.write_bytes((demo / "sub-01/dwi/CST_R.trk").read_bytes()[:3000])
    with pytest.raises(TrxFormatError, match=r"CST_R\.trk.*truncated"):
        assemble_bundles([demo / "sub-01/dwi/AF_L.trk", bad], tmp_path / "o.trx")
    assert not (tmp_path / "o.trx").exists()


def test_a_file_changed_between_the_passes_is_an_error(demo: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(shutil.copy(demo / "sub-01/dwi/AF_L.trk", tmp_path / "AF_L.trk"))
    real = assemble_mod._Streamed.scan

    def scan_then_change(self, budget, bbox):  # noqa: ANN001, ANN202
        real(self, budget, bbox)
        trk = nib.streamlines.load(str(path))
        nib.streamlines.TrkFile(trk.tractogram[:40], header=trk.header).save(str(path))

    monkeypatch.setattr(assemble_mod._Streamed, "scan", scan_then_change)
    with pytest.raises(TrxFormatError, match=r"AF_L\.trk.*changed while it was being read"):
        assemble_bundles([path], tmp_path / "o.trx", memory_budget=0)
    assert not (tmp_path / "o.trx").exists()


def test_inputs_and_names_are_checked(demo: Path, tmp_path: Path) -> None:
    trk = demo / "sub-01/dwi/AF_L.trk"
    with pytest.raises(ValueError, match="no input files"):
        assemble_bundles([], tmp_path / "o.trx")
    with pytest.raises(ValueError, match="names has 1 names for 2 files"):
        assemble_bundles([trk, trk], tmp_path / "o.trx", names=["a"])
    with pytest.raises(FileNotFoundError, match="nope.trk"):
        assemble_bundles([tmp_path / "nope.trk"], tmp_path / "o.trx")
    trx = convert(trk, tmp_path / "x.trx")
    with pytest.raises(ValueError, match="cannot write over the input"):
        assemble_bundles([trx], trx)
    assert os.path.getsize(trx) > 0
