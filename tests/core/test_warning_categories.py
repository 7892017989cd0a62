"""Every warning of trx-nipype has a category of its own under TrxWarning (issue 17.5):
a user can silence what a format cannot hold and keep "streamlines outside the box"."""

from __future__ import annotations

import importlib.resources
import warnings
from pathlib import Path

import numpy as np
import pytest

from trx_nipype.core import TrxFile, convert, load, save
from trx_nipype.core.errors import (
    DataLossWarning,
    HeaderWarning,
    NamingWarning,
    SpaceWarning,
    TrxWarning,
)
from trx_nipype.core.formats.trk import HEADER_DTYPE, read_trk_header
from trx_nipype.core.operations import split_groups
from trx_nipype.interfaces._examples import example_trx

NIB = Path(str(importlib.resources.files("nibabel") / "tests" / "data"))


def _categories(record: list[warnings.WarningMessage]) -> set[type[Warning]]:
    return {w.category for w in record}


def test_the_categories_form_one_hierarchy_of_user_warnings() -> None:
    for category in (HeaderWarning, DataLossWarning, NamingWarning, SpaceWarning):
        assert issubclass(category, TrxWarning) and issubclass(category, UserWarning)
    assert str(SpaceWarning("a.trx: x")) == "a.trx: x"


def test_what_a_format_cannot_hold_is_a_data_loss(tmp_path: Path) -> None:
    src = example_trx(tmp_path)  # dps, dpv, groups, dpg
    with pytest.warns(TrxWarning) as rec:
        convert(src, tmp_path / "out.tck")
    assert _categories(rec) == {DataLossWarning}
    assert any("TCK cannot hold data per vertex; dropped 'fa'" in str(w.message) for w in rec)
    with warnings.catch_warnings():  # silenced by its category alone
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", DataLossWarning)
        convert(src, tmp_path / "again.tck")


def test_a_header_that_lacks_something_is_a_header_warning(tmp_path: Path) -> None:
    raw = bytearray((NIB / "complex.trk").read_bytes())
    hdr = np.frombuffer(raw[:1000], dtype=HEADER_DTYPE).copy()
    hdr["voxel_order"] = b""
    raw[:1000] = hdr.tobytes()
    path = tmp_path / "no_order.trk"
    path.write_bytes(bytes(raw))
    with pytest.warns(HeaderWarning, match="no voxel_order; assuming 'LPS'"):
        read_trk_header(path)


def test_streamlines_outside_the_grid_are_a_space_warning(tmp_path: Path) -> None:
    pos = np.array([[1, 1, 1], [2, 2, 2], [500, 1, 1], [501, 1, 1]], dtype=np.float32)
    src = save(TrxFile.from_arrays(pos, lengths=[2, 2], dimensions=[10, 10, 10]),
               tmp_path / "in.trx")
    with pytest.warns(SpaceWarning, match="1 of 2 streamlines fall outside") as rec:
        convert(src, tmp_path / "out.trx")
    warning = rec[0].message
    assert warning.render(lambda name, value: "--drop-outside").endswith(
        "kept (--drop-outside drops them)")  # the CLI names its option


def test_a_name_changed_to_fit_is_a_naming_warning(tmp_path: Path) -> None:
    long = "G" * 300
    pos = np.zeros((4, 3), np.float32)
    src = save(TrxFile.from_arrays(pos, lengths=[2, 2], groups={long: [0], "B": [1]}),
               tmp_path / "in.trx")
    with pytest.warns(NamingWarning, match="is written as"):
        split_groups(src, tmp_path / "out")
    with load(src) as trx:
        assert sorted(trx.groups) == ["B", long]
