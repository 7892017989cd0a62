"""The operations layer (``trx_nipype.core.operations``): one function per operation, on real
files from dipy and nibabel and on TRX written by trx-python, checked against them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import trx.trx_file_memmap as tmm
from trx_test_helpers import real_tractograms, tree_bytes

from trx_nipype.core import TrxFile, convert, load, save
from trx_nipype.core.errors import OutputExistsError, ParameterError, UsageError
from trx_nipype.core.formats.trk_groups import groups_sidecar_path as sidecar_path
from trx_nipype.core.naming import (
    MADE_NAME_MAX,
    NAME_MAX,
    concatenation_name,
    fit_file_name,
)
from trx_nipype.core.operations import (
    concatenate_files,
    convert_file,
    resize,
    select_groups,
    split_groups,
    tractogram_info,
    write_info,
)
from trx_nipype.interfaces._examples import example_trx

pytestmark = pytest.mark.filterwarnings("ignore:.*cannot hold:UserWarning")

REAL = dict(real_tractograms())
TRACKS300 = REAL["dipy/tracks300.trk"]
STANDARD_TCK = REAL["nibabel/standard.tck"]


def nib_streamlines(path: Path) -> list[np.ndarray]:
    return list(nib.streamlines.load(str(path)).streamlines)


def positions_of(path: Path) -> np.ndarray:
    """Positions in RAS+ mm of any written file, read by nibabel (TRK/TCK) or trx-python."""
    if path.suffix in (".trk", ".tck"):
        return nib.streamlines.load(str(path)).streamlines.get_data()
    trx = tmm.load(str(path))
    try:
        return np.array(trx.streamlines.get_data())
    finally:
        trx.close()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return Path(example_trx(tmp_path, "bundle.trx"))


@pytest.fixture
def trk_with_groups(tmp_path: Path, bundle: Path) -> Path:
    """A TRK whose groups are in its .groups.json sidecar (written by convert)."""
    out = tmp_path / "grouped.trk"
    with pytest.warns(UserWarning, match="data per group"):
        convert(bundle, out)
    assert sidecar_path(out).is_file()
    return out


# ------------------------------------------------------------------ inputs of any format
def test_resize_reads_a_real_trk(tmp_path: Path) -> None:
    out = resize(TRACKS300, tmp_path / "first.trx", 10)
    assert (out.nb_streamlines, out.format) == (10, "trx")
    expected = nib_streamlines(TRACKS300)[:10]
    np.testing.assert_allclose(positions_of(out.path), np.concatenate(expected), atol=1e-4)


def test_select_groups_reads_a_trk_with_its_groups(tmp_path: Path, bundle: Path,
                                                   trk_with_groups: Path) -> None:
    out = select_groups(trk_with_groups, "CST", tmp_path / "cst.trx")
    with load(bundle) as src, load(out.path) as got:
        np.testing.assert_allclose(got.positions, src.get_group("CST").positions, atol=1e-4)
        assert got.groups == {}  # the default: the selection alone


def test_concatenate_real_trk_and_tck(tmp_path: Path) -> None:
    trk, tck = REAL["nibabel/standard.trk"], STANDARD_TCK
    with pytest.raises(ParameterError, match=r"\['standard'\]; pass unique group_names="):
        concatenate_files([trk, tck], tmp_path / "both.trx", reference=trk,
                          group_by_input=True)  # both are named after "standard"
    out = concatenate_files([trk, tck], tmp_path / "named.trx", reference=trk,
                            group_by_input=True, group_names=["trk", "tck"])
    n_trk, n_tck = len(nib_streamlines(trk)), len(nib_streamlines(tck))
    assert out.groups == {"trk": n_trk, "tck": n_tck}
    expected = np.concatenate(nib_streamlines(trk) + nib_streamlines(tck))
    np.testing.assert_allclose(positions_of(out.path), expected, atol=1e-4)


def test_a_spaceless_input_needs_a_reference_only_for_spaced_outputs(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="give reference= a NIfTI image") as err:
        resize(STANDARD_TCK, tmp_path / "x.trx", 2)
    assert err.value.parameters == ["reference"] and not (tmp_path / "x.trx").exists()
    out = resize(STANDARD_TCK, tmp_path / "x.tck", 2)  # TCK to TCK: no space needed
    np.testing.assert_allclose(positions_of(out.path),
                               np.concatenate(nib_streamlines(STANDARD_TCK)[:2]), atol=1e-5)


def test_trx_written_by_trx_python(tmp_path: Path) -> None:
    sft_path = tmp_path / "tp.trx"
    src = tmm.load(str(Path(example_trx(tmp_path, "mine.trx"))))
    tmm.save(src, str(sft_path))  # trx-python's writer: unaligned members
    src.close()
    out = split_groups(sft_path, tmp_path / "split")
    assert [p.name for p in out.paths] == ["tp_AF.trx", "tp_CST.trx"]
    with load(tmp_path / "mine.trx") as ref:
        for name, path in zip(out.groups, out.paths, strict=True):
            np.testing.assert_array_equal(positions_of(path), ref.get_group(name).positions)


# ------------------------------------------------------------------ output format by name
@pytest.mark.parametrize("name", ["sel.trk", "sel.tck", "sel.trx", "sel"])
def test_output_name_picks_the_format(tmp_path: Path, bundle: Path, name: str) -> None:
    out = select_groups(bundle, "AF", tmp_path / name)
    with load(bundle) as src:
        np.testing.assert_allclose(positions_of(out.path) if name != "sel" else
                                   load(out.path).positions,
                                   src.get_group("AF").positions, atol=1e-4)
    assert out.format == {"sel.trk": "trk", "sel.tck": "tck"}.get(name, "trx")
    assert (tmp_path / name).is_dir() == (name == "sel")


def test_a_trk_output_keeps_groups_in_its_sidecar(tmp_path: Path, bundle: Path) -> None:
    out = resize(bundle, tmp_path / "r.trk", 4)
    assert out.groups_sidecar == sidecar_path(tmp_path / "r.trk") and out.files[1].is_file()
    with load(bundle) as src:
        ref = src.resize(4)
        back = tmp_path / "back.trx"
        convert(out.path, back)
        with load(back) as got:
            assert {g: v.tolist() for g, v in got.groups.items()} == \
                {g: v.tolist() for g, v in ref.groups.items()}


@pytest.mark.parametrize(("call", "param"), [
    (lambda b, o: select_groups(b, "AF", o, keep_groups=True), "keep_groups=True"),
    (lambda b, o: concatenate_files([b, b], o, group_by_input=True, group_names=["a", "b"]),
     "group_by_input=True"),
])
def test_groups_in_a_format_without_groups_are_refused_before_any_work(
        tmp_path: Path, bundle: Path, call, param: str) -> None:
    with pytest.raises(UsageError, match=f"TCK files cannot hold groups, which {param}"):
        call(bundle, tmp_path / "x.tck")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.trx"]


def test_unknown_extensions_and_encodings_are_refused(tmp_path: Path, bundle: Path) -> None:
    with pytest.raises(UsageError, match="cannot tell the output format"):
        resize(bundle, tmp_path / "x.txt")
    with pytest.raises(UsageError, match="positions_dtype='float16' applies to TRX outputs"):
        resize(bundle, tmp_path / "x.trk", positions_dtype="float16")
    with pytest.raises(UsageError, match="output's folder does not exist"):
        resize(bundle, tmp_path / "no" / "x.trx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.trx"]


# ------------------------------------------------------------------ replacing outputs
def test_existing_outputs_need_overwrite_and_must_be_tractograms(tmp_path: Path,
                                                                 bundle: Path) -> None:
    out = tmp_path / "out.trx"
    select_groups(bundle, "AF", out)
    before = out.read_bytes()
    with pytest.raises(OutputExistsError, match="exists; pass overwrite=True"):
        select_groups(bundle, "CST", out)
    assert out.read_bytes() == before
    select_groups(bundle, "CST", out, overwrite=True)
    assert out.read_bytes() != before
    text = tmp_path / "J.trx"
    text.write_text("my notes", encoding="utf-8")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not a TRX file or another tractogram"):
            resize(bundle, text, overwrite=overwrite)
        with pytest.raises(FileExistsError, match="not a TRX file"):
            convert_file(bundle, text, overwrite=overwrite)
    assert text.read_text(encoding="utf-8") == "my notes"


# ------------------------------------------------------------------ outputs and inputs apart
def test_outputs_inside_an_input_trx_folder_are_refused(tmp_path: Path) -> None:
    folder = Path(example_trx(tmp_path, "a_dir"))
    before = tree_bytes(folder)
    with pytest.raises(UsageError, match="inside the input TRX folder"):
        select_groups(folder, "AF", folder / "sel.trx")
    with pytest.raises(UsageError, match="inside the input TRX folder"):
        split_groups(folder, folder / "dps")
    with pytest.raises(UsageError, match="holds the input"):
        concatenate_files([folder / ".." / "a_dir", folder], tmp_path)
    assert tree_bytes(folder) == before


# ------------------------------------------------------------------ split
def test_split_shortens_names_a_filesystem_cannot_hold(tmp_path: Path) -> None:
    long_a, long_b = "A" * 300, "A" * 299 + "B"
    trx = TrxFile.from_arrays(np.arange(18, dtype=np.float32).reshape(6, 3),
                              lengths=[2, 2, 2], groups={long_a: [0], long_b: [1], "C": [2]})
    save(trx, tmp_path / "long.trx")
    with pytest.warns(UserWarning, match=r"group 'AAAA.*\(300 characters\) is written as"):
        out = split_groups(tmp_path / "long.trx", tmp_path / "split")
    names = [p.name for p in out.paths]
    assert all(len(n.encode()) <= MADE_NAME_MAX < NAME_MAX for n in names)
    assert len(set(names)) == 3
    assert names[2] == "long_C.trx"
    assert names[0] == fit_file_name("long_" + long_a, ".trx")  # the stable rule
    digest = hashlib.sha256(("long_" + long_a).encode()).hexdigest()[:8]
    assert names[0].endswith(f"-{digest}.trx")
    with load(out.paths[1]) as got:
        assert list(got.groups) == [long_b] and len(got) == 1
    with pytest.raises(UsageError, match="too long to be a file name in a TRX folder"):
        select_groups(tmp_path / "long.trx", [long_a], tmp_path / "folder", keep_groups=True)
    assert not (tmp_path / "folder").exists()


def test_an_output_name_of_250_bytes_is_written(tmp_path: Path, bundle: Path) -> None:
    """The writer's temporary sibling fits in a file name too (it was name + 40 bytes)."""
    for name in ("A" * 246 + ".trx", "B" * 239 + ".trk", "C" * 250):
        out = resize(bundle, tmp_path / name, 2)
        assert out.path.exists() and out.nb_streamlines == 2
    assert out.groups_sidecar is None  # (a folder) but the TRK has its sidecar:
    assert (tmp_path / ("B" * 239 + ".trk.groups.json")).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(UsageError, match="a TRK file name holds at most 243"):
        resize(bundle, tmp_path / ("D" * 240 + ".trk"))  # no room for its .groups.json


def test_split_many_groups(tmp_path: Path) -> None:
    """Linear in groups + streamlines (no timing asserted: 10,000 groups split in seconds,
    measured apart; before, one pass per group over every group: 2,000 groups took 22 s,
    10,000 did not end in 300 s)."""
    n_groups = 2_000
    lengths = np.full(2 * n_groups, 3)
    groups = {f"b{i:05d}": np.array([2 * i, 2 * i + 1], np.uint32) for i in range(n_groups)}
    groups["odd"] = np.arange(1, 2 * n_groups, 2, dtype=np.uint32)
    save(TrxFile.from_arrays(np.random.default_rng(0).random((6 * n_groups, 3), np.float32),
                             lengths=lengths, groups=groups), tmp_path / "many.trx")
    out = split_groups(tmp_path / "many.trx", tmp_path / "split")
    assert len(out.paths) == n_groups + 1
    with load(out.paths[1234]) as one:
        assert out.groups[1234] == "b01234" and len(one) == 2
        assert {g: v.tolist() for g, v in one.groups.items()} == {"b01234": [0, 1],
                                                                  "odd": [1]}


# ------------------------------------------------------------------ info
def test_info_counts_a_tck_without_reference(tmp_path: Path) -> None:
    info = tractogram_info(STANDARD_TCK)
    assert info["nb_streamlines"] == len(nib_streamlines(STANDARD_TCK))
    assert info["affine"] is None and info["dimensions"] is None
    placed = tractogram_info(STANDARD_TCK, reference=REAL["nibabel/standard.trk"])
    assert placed["dimensions"] is not None
    written = write_info(STANDARD_TCK, tmp_path / "info.json")
    assert json.loads((tmp_path / "info.json").read_text(encoding="utf-8")) == written
    with pytest.raises(OutputExistsError):
        write_info(STANDARD_TCK, tmp_path / "info.json")


def test_concatenation_names_say_what_they_hold() -> None:
    assert concatenation_name(["AF_L", "CC", "CST_R"], ".trx") == "AF_L+CC+CST_R_concat.trx"
    assert concatenation_name(["sub 1"] * 2, ".trx") == "sub_1_concat.trx"
