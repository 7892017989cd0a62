"""Loading what real TRX files contain; the read-only, lazy and lifetime guarantees."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from nibabel.streamlines import ArraySequence
from trx_test_helpers import (
    AFFINE,
    LENGTHS,
    assert_arrays_equal,
    header_bytes,
    valid_arrays,
    valid_members,
    write_trx_dir,
    write_trx_zip,
)

from trx_nipype.core import TrxFile, load, validate
from trx_nipype.core.container import Container
from trx_nipype.core.dtypes import DTYPES

CONTAINERS = ["dir", "stored", "deflate"]


def write(tmp_path: Path, members: dict[str, bytes], container: str, name: str = "t") -> Path:
    """Write ``members`` as a directory, a stored zip or a deflated zip."""
    if container == "dir":
        return write_trx_dir(tmp_path / name, members)
    method = zipfile.ZIP_STORED if container == "stored" else zipfile.ZIP_DEFLATED
    return write_trx_zip(tmp_path / f"{name}.trx", members, method)


def minimal(positions: np.ndarray, offsets: np.ndarray, nb_streamlines: int,
            **header) -> dict[str, bytes]:
    """header + positions + offsets members for these arrays."""
    return {
        "header.json": header_bytes(NB_VERTICES=len(positions), NB_STREAMLINES=nb_streamlines,
                                    **header),
        f"positions.3.{positions.dtype.name}": positions.tobytes(),
        f"offsets.{offsets.dtype.name}": offsets.tobytes(),
    }


# ---------------------------------------------------------------- what files contain
@pytest.mark.parametrize("container", CONTAINERS)
def test_valid_file_arrays(tmp_path: Path, temp_root: Path, container: str) -> None:
    expected = valid_arrays()
    with load(write(tmp_path, valid_members(), container)) as trx:
        assert len(trx) == 4 and trx.nb_vertices == 10
        assert_arrays_equal(trx.positions, expected["positions.3.float32"])
        assert_arrays_equal(trx.offsets, expected["offsets.uint64"])
        assert_arrays_equal(trx.lengths, np.array(LENGTHS, np.int64))
        assert_arrays_equal(trx.dps["weight"], expected["dps/weight.float32"])
        assert_arrays_equal(trx.dps["rgb"], expected["dps/rgb.3.uint8"])
        assert_arrays_equal(trx.dpv["fa"], expected["dpv/fa.float16"])
        assert_arrays_equal(trx.groups["CST"], expected["groups/CST.uint32"])
        assert_arrays_equal(trx.groups["AF"], expected["groups/AF.uint16"])
        assert_arrays_equal(trx.dpg["CST"]["mean"], expected["dpg/CST/mean.float32"])
        assert_arrays_equal(trx.dpg["AF"]["color"], expected["dpg/AF/color.3.uint8"])
        np.testing.assert_array_equal(trx.affine, AFFINE)
        assert trx.dimensions.tolist() == [20, 30, 40]
        seq = trx.streamlines
        assert isinstance(seq, ArraySequence) and len(seq) == 4
        assert seq._data is trx.positions  # over the map, no copy
        for i, n in enumerate(LENGTHS):
            start = int(expected["offsets.uint64"][i])
            np.testing.assert_array_equal(seq[i], expected["positions.3.float32"][start:start + n])
        text = repr(trx)
        assert "4 streamlines" in text and "10 vertices" in text and "CST" in text


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("offsets_dtype", ["uint32", "uint64"])
@pytest.mark.parametrize("entries", ["N", "N+1"])
@pytest.mark.parametrize("positions_dtype", ["float16", "float32", "float64"])
def test_offsets_and_positions_variants(tmp_path: Path, temp_root: Path, container: str,
                                        offsets_dtype: str, entries: str,
                                        positions_dtype: str) -> None:
    lengths = np.array([2, 5, 1, 3])
    full = np.concatenate([[0], np.cumsum(lengths)]).astype(DTYPES[offsets_dtype])
    offsets = full if entries == "N+1" else full[:-1]
    pos = (np.arange(11 * 3).reshape(11, 3) * 0.5).astype(DTYPES[positions_dtype])
    with load(write(tmp_path, minimal(pos, offsets, 4), container)) as trx:
        assert_arrays_equal(trx.positions, pos)
        assert trx.offsets.tolist() == full.tolist()  # always N+1 when exposed
        assert trx.offsets.dtype == DTYPES[offsets_dtype]
        assert trx.lengths.tolist() == lengths.tolist()
        assert [len(s) for s in trx.streamlines] == lengths.tolist()
        assert not trx.offsets.flags.writeable


@pytest.mark.parametrize("container", CONTAINERS)
def test_every_dtype(tmp_path: Path, temp_root: Path, container: str) -> None:
    members = valid_members()
    expected = {}
    rng = np.random.default_rng(1)
    for ext, dtype in DTYPES.items():
        if ext == "bit":
            dps = rng.integers(0, 2, 4).astype(bool)
            dpv = rng.integers(0, 2, (10, 2)).astype(bool)
        else:
            dps = (rng.random(4) * 100).astype(dtype)
            dpv = (rng.random((10, 2)) * 100).astype(dtype)
        for folder, arr in (("dps", dps), ("dpv", dpv)):
            name = f"{folder}/x_{ext}{'.2' if arr.ndim == 2 else ''}.{ext}"
            members[name] = arr.tobytes()
            expected[(folder, f"x_{ext}")] = arr
        members[f"dpg/CST/g_{ext}.{ext}"] = dps[:1].tobytes()
        expected[("dpg", f"g_{ext}")] = dps[:1]
        if dtype.kind in "iu":
            members[f"groups/grp_{ext}.{ext}"] = np.array([3, 1], dtype).tobytes()
            expected[("groups", f"grp_{ext}")] = np.array([3, 1], dtype)
    with load(write(tmp_path, members, container)) as trx:
        for (folder, key), arr in expected.items():
            table = trx.dpg["CST"] if folder == "dpg" else getattr(trx, folder)
            assert_arrays_equal(table[key], arr, f"{folder}/{key}")


@pytest.mark.parametrize("container", CONTAINERS)
def test_names_with_spaces_and_dots(tmp_path: Path, temp_root: Path, container: str) -> None:
    members = valid_members()
    effect = np.arange(10, dtype="<f4")
    abc = np.arange(12, dtype="<f4").reshape(4, 3)
    members["dpv/effect   .float32"] = effect.tobytes()
    members["dps/a.b.3.float32"] = abc.tobytes()
    members["groups/left arc.uint32"] = np.array([1], "<u4").tobytes()
    members["dpg/left arc/mean val.float32"] = np.array([2.5], "<f4").tobytes()
    with load(write(tmp_path, members, container)) as trx:
        assert_arrays_equal(trx.dpv["effect   "], effect)
        assert_arrays_equal(trx.dps["a.b"], abc)
        assert trx.groups["left arc"].tolist() == [1]
        assert trx.dpg["left arc"]["mean val"].tolist() == [2.5]


@pytest.mark.parametrize("container", CONTAINERS)
def test_extra_header_keys_kept(tmp_path: Path, temp_root: Path, container: str) -> None:
    members = valid_members()
    extra = {"COMMENT": "from a scanner", "SOFTWARE": {"name": "x", "version": [1, 2]},
             "NB_EXTRA": 3}
    members["header.json"] = header_bytes(**extra)
    with load(write(tmp_path, members, container)) as trx:
        for key, value in extra.items():
            assert trx.header[key] == value
        assert trx.header["NB_STREAMLINES"] == 4


@pytest.mark.parametrize("container", CONTAINERS)
def test_trailing_zero_length_streamlines(tmp_path: Path, temp_root: Path,
                                          container: str) -> None:
    """A preallocated file: capacity not yet used is zero-length streamlines at the end."""
    pos = np.arange(15, dtype="<f4").reshape(5, 3)
    offsets = np.array([0, 3, 5, 5, 5, 5], "<u4")
    members = minimal(pos, offsets, 5)
    members["dps/w.float32"] = np.arange(5, dtype="<f4").tobytes()
    path = write(tmp_path, members, container)
    with load(path) as trx:
        assert trx.lengths.tolist() == [3, 2, 0, 0, 0]
        assert [len(s) for s in trx.streamlines] == [3, 2, 0, 0, 0]
        assert trx.streamlines[4].shape == (0, 3)
    report = validate(path)
    assert report.ok and any("3 trailing zero-length" in w for w in report.warnings)


@pytest.mark.parametrize("container", CONTAINERS)
def test_empty_file(tmp_path: Path, temp_root: Path, container: str) -> None:
    members = {"header.json": header_bytes(NB_VERTICES=0, NB_STREAMLINES=0),
               "positions.3.float32": b"", "offsets.uint64": np.zeros(1, "<u8").tobytes(),
               "dps/w.float32": b"", "groups/G.uint32": b""}
    with load(write(tmp_path, members, container)) as trx:
        assert len(trx) == 0 and trx.nb_vertices == 0
        assert trx.positions.shape == (0, 3) and trx.offsets.tolist() == [0]
        assert trx.dps["w"].shape == (0,) and trx.groups["G"].shape == (0,)
        assert len(trx.streamlines) == 0
        for arr in (trx.positions, trx.dps["w"], trx.groups["G"]):
            with pytest.raises(ValueError):
                arr.flags.writeable = True


def test_header_only_empty_file(tmp_path: Path) -> None:
    """No positions or offsets at all is a valid empty tractogram."""
    path = write_trx_dir(tmp_path / "e", {"header.json": header_bytes(NB_VERTICES=0,
                                                                         NB_STREAMLINES=0)})
    with load(path) as trx:
        assert len(trx) == 0 and trx.positions.shape == (0, 3) and trx.offsets.tolist() == [0]


def test_directory_hidden_files_ignored(tmp_path: Path) -> None:
    path = write_trx_dir(tmp_path / "t", valid_members())
    (path / ".DS_Store").write_bytes(b"junk")
    (path / "dps" / ".x.float32.swp").write_bytes(b"junk")
    with load(path) as trx:
        assert sorted(trx.dps) == ["rgb", "weight"]


# ------------------------------------------------------------------ read-only
def _all_arrays(trx: TrxFile) -> list[np.ndarray]:
    out = [trx.positions, trx.offsets, trx.lengths]
    out += list(trx.dps.values()) + list(trx.dpv.values()) + list(trx.groups.values())
    out += [a for table in trx.dpg.values() for a in table.values()]
    return out


def _snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


@pytest.mark.parametrize("entries", ["N", "N+1"])
@pytest.mark.parametrize("container", CONTAINERS)
def test_read_only(tmp_path: Path, temp_root: Path, container: str, entries: str) -> None:
    members = valid_members()
    if entries == "N":
        members["offsets.uint64"] = members["offsets.uint64"][:-8]
    path = write(tmp_path, members, container)
    before = _snapshot(path)
    with load(path) as trx:
        arrays = _all_arrays(trx)
        for arr in arrays:
            assert not arr.flags.writeable
            with pytest.raises(ValueError):
                arr.flags.writeable = True
            with pytest.raises(ValueError):
                arr[...] = 0
        with pytest.raises(ValueError):
            trx.streamlines[0][:] = 0
        # use: views, selections, a save elsewhere
        view = trx.select([3, 0, 0])
        _ = view.positions.sum(), view.dps["weight"], view.dpv["fa"]
        from trx_nipype.core import save

        save(view, tmp_path / "out.trx")
    assert _snapshot(path) == before


# ------------------------------------------------------------------ laziness
@pytest.mark.parametrize("container", CONTAINERS)
def test_load_reads_only_offsets_and_groups(tmp_path: Path, temp_root: Path, container: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, valid_members(), container)
    asked: list[str] = []
    # offsets and groups are read into memory (read_array), the rest mapped on use (array)
    for cls in Container.__subclasses__():
        for method in ("array", "read_array"):
            original = getattr(cls, method)

            def spy(self, name, dtype, shape, _original=original):
                asked.append(name)
                return _original(self, name, dtype, shape)

            monkeypatch.setattr(cls, method, spy)
    with load(path) as trx:
        assert sorted(asked) == ["groups/AF.uint16", "groups/CST.uint32", "offsets.uint64"]
        assert trx.dps.spec("weight")[1] == (4,)  # metadata without reading
        assert sorted(asked) == ["groups/AF.uint16", "groups/CST.uint32", "offsets.uint64"]
        trx.positions  # noqa: B018
        assert "positions.3.float32" in asked and "dpv/fa.float16" not in asked


def test_deflated_positions_extracted_on_first_use(tmp_path: Path, temp_root: Path) -> None:
    path = write(tmp_path, valid_members(), "deflate")

    def extracted() -> list[bytes]:
        return sorted(p.read_bytes() for p in temp_root.rglob("*") if p.is_file())

    positions = valid_members()["positions.3.float32"]
    with load(path) as trx:
        assert positions not in extracted()
        assert len(extracted()) == 3  # offsets and the two groups
        trx.positions  # noqa: B018
        assert positions in extracted()
        folders = [p for p in temp_root.iterdir() if p.is_dir()]
        assert len(folders) == 1
        assert oct(folders[0].stat().st_mode & 0o777) == oct(0o700)
    assert not any(temp_root.iterdir())  # removed on close


# ------------------------------------------------------------------ lifetime
@pytest.mark.parametrize("container", CONTAINERS)
def test_context_manager_and_idempotent_close(tmp_path: Path, temp_root: Path,
                                              container: str) -> None:
    path = write(tmp_path, valid_members(), container)
    with load(path) as trx:
        assert trx.path == str(path)
        trx.dpv["fa"]  # noqa: B018
    trx.close()
    trx.close()
    assert not any(temp_root.iterdir())
    trx = load(path)
    view = trx.get_group("CST")
    view.close()  # a view only detaches
    assert view.positions.shape == (7, 3)
    trx.close()
    trx.close()


def test_temp_root_is_configurable(tmp_path: Path) -> None:
    from trx_nipype.core import get_temp_root, set_temp_root

    path = write(tmp_path, valid_members(), "deflate")
    root = tmp_path / "deep" / "root"
    set_temp_root(root)
    try:
        assert get_temp_root() == root and root.is_dir()
        with load(path) as trx:
            trx.positions  # noqa: B018
            assert len(list(root.iterdir())) == 1
        assert list(root.iterdir()) == []
    finally:
        set_temp_root(None)
    assert get_temp_root() != root


def test_temp_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trx_nipype.core import get_temp_root, set_temp_root

    set_temp_root(None)
    monkeypatch.setenv("TRX_NIPYPE_TMPDIR", str(tmp_path / "env-root"))
    assert get_temp_root() == tmp_path / "env-root"


def test_load_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.trx")


def test_header_json_written_by_json_module_with_indent(tmp_path: Path) -> None:
    """Whitespace, key order and integer-valued float DIMENSIONS are accepted."""
    members = valid_members()
    header = json.loads(members["header.json"])
    header["DIMENSIONS"] = [20.0, 30.0, 40.0]
    members["header.json"] = json.dumps(dict(reversed(header.items())), indent=4).encode()
    with load(write_trx_dir(tmp_path / "t", members)) as trx:
        assert trx.dimensions.tolist() == [20, 30, 40]


def test_close_while_arrays_alive(tmp_path: Path, temp_root: Path) -> None:
    """Arrays taken before close stay valid (the maps live as long as they are used)."""
    path = write(tmp_path, valid_members(), "stored")
    trx = load(path)
    pos = trx.positions
    trx.close()
    np.testing.assert_array_equal(pos, valid_arrays()["positions.3.float32"])
    del pos
    assert os.path.exists(path)


def test_from_arrays_and_from_tractogram_leave_the_callers_data_alone() -> None:
    import nibabel as nib

    pos = np.arange(9, dtype=np.float32).reshape(3, 3)
    trx = TrxFile.from_arrays(pos, lengths=[3])
    assert not trx.positions.flags.writeable and np.shares_memory(trx.positions, pos)
    with pytest.raises(ValueError):
        trx.positions[0, 0] = 1
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    tgm = nib.streamlines.Tractogram([np.array([[1.0, 2, 3]], "f4")], affine_to_rasmm=affine)
    out = TrxFile.from_tractogram(tgm)
    np.testing.assert_array_equal(out.positions, [[2, 4, 6]])
    np.testing.assert_array_equal(tgm.streamlines.get_data(), [[1, 2, 3]])
    np.testing.assert_array_equal(tgm.affine_to_rasmm, affine)


def test_from_tractogram_of_a_sequence_whose_rows_are_out_of_order() -> None:
    # a selection of an ArraySequence shares its rows, in another order: the TrxFile
    # holds the streamlines in their own order (nibabel's get_data packs them so)
    import nibabel as nib

    seq = nib.streamlines.ArraySequence([np.full((n, 3), n, "f4") for n in (1, 2, 3)])
    picked = seq[[2, 0, 1]]
    assert not np.array_equal(picked._offsets, [0, 3, 4])  # rows not packed in order
    trx = TrxFile.from_tractogram(nib.streamlines.Tractogram(picked, affine_to_rasmm=np.eye(4)))
    assert trx.lengths.tolist() == [3, 1, 2]
    np.testing.assert_array_equal(trx.positions[:, 0], [3, 3, 3, 1, 2, 2])
