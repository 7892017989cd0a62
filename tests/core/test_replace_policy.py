"""What an output may replace (``writer.check_replaceable``, the one rule for every writer):
a tractogram, an empty folder or nothing; never a link, a folder of other files or a file
of another kind (issue 16 item 5, issue 18 item 4)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from trx_nipype.core import TrxFile, TrxWriteError, convert, save
from trx_nipype.core.writer import check_replaceable, is_tractogram_file


def sample() -> TrxFile:
    return TrxFile.from_arrays(np.arange(12, dtype=np.float32).reshape(4, 3) / 2, lengths=[2, 2],
                               affine=np.eye(4), dimensions=(10, 10, 10))


def test_files_that_are_not_tractograms_are_never_replaced(tmp_path: Path) -> None:
    for name in ("J.trx", "x.trk", "x.tck", "x.trk.gz"):
        path = tmp_path / name
        path.write_text("my notes", encoding="utf-8")
        with pytest.raises(FileExistsError, match="not a TRX file or another tractogram"):
            (save if name.endswith(".trx") else convert)(
                sample() if name.endswith(".trx") else save(sample(), tmp_path / "s.trx"),
                path)
        assert path.read_text(encoding="utf-8") == "my notes"


def test_tractograms_of_every_format_may_be_replaced(tmp_path: Path) -> None:
    src = save(sample(), tmp_path / "s.trx")
    for name in ("a.trk", "a.tck", "a.trk.gz", "a.vtk"):
        convert(src, tmp_path / name)
        assert is_tractogram_file(tmp_path / name), name
        convert(src, tmp_path / name)  # a second time: replaced
    assert is_tractogram_file(src) and not is_tractogram_file(tmp_path / "nope")
    (tmp_path / "x.xml").write_text("<?xml version='1.0'?><svg/>", encoding="utf-8")
    assert not is_tractogram_file(tmp_path / "x.xml")  # XML is not enough: a VTKFile root


def test_links_are_refused_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious", encoding="utf-8")
    os.symlink(folder, tmp_path / "link", target_is_directory=True)
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    for dest in (tmp_path / "link", tmp_path / "dangling"):
        with pytest.raises(FileExistsError, match="symbolic link"):
            check_replaceable(dest)
        with pytest.raises(FileExistsError, match="symbolic link"):
            save(sample(), dest)
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


def test_a_missing_folder_names_the_destination_without_errno(tmp_path: Path) -> None:
    with pytest.raises(TrxWriteError) as err:
        save(sample(), tmp_path / "no" / "x.trx")
    assert "Errno" not in str(err.value) and "does not exist" in str(err.value)


def test_a_destination_name_of_255_bytes_is_written(tmp_path: Path) -> None:
    """The temporary sibling's name fits too (it was the name + 40 bytes: ENAMETOOLONG)."""
    for name in ("A" * 251 + ".trx", "B" * 255):
        save(sample(), tmp_path / name)
        save(sample(), tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A" * 251 + ".trx", "B" * 255]
