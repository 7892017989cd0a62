"""TRK/TCK -> TRX writes the data once (issue 14, item 4), with the bytes of the staged path.

When the input's header and size give the counts, ``convert`` lays the TRX out
first and writes each block's positions and data straight into their places
(``core.blockwrite``): no staging folder, one pass over the input. A header
that lies is found out while writing and the staged path takes over.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from trx_nipype.core import TrxFile, load, load_any, save
from trx_nipype.core import convert as convert_fn
from trx_nipype.core import converting as convert_module
from trx_nipype.core.blockwrite import BlockSource, predicted_counts, write_blocks
from trx_nipype.core.space import Space
from trx_nipype.core.writer import SizeMismatch

AFFINE = np.array([[2.0, 0, 0, -10], [0, 2, 0, -12], [0, 0, 2, 5], [0, 0, 0, 1]])
DIMS = (20, 30, 40)


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_fn(*args, **kwargs)


def tractogram(n: int = 300, seed: int = 0) -> TrxFile:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 30, n)
    v = int(lengths.sum())
    vox = rng.uniform(0.5, np.array(DIMS) - 1.5, (v, 3))
    pos = (vox @ AFFINE[:3, :3].T + AFFINE[:3, 3]).astype(np.float32)
    return TrxFile.from_arrays(
        pos, lengths=lengths, affine=AFFINE, dimensions=DIMS,
        dpv={"fa": rng.random(v).astype(np.float32),
             "rgb": rng.random((v, 3)).astype(np.float32)},
        dps={"weight": rng.random(n).astype(np.float32)},
        groups={"CST": np.arange(0, n, 3, dtype=np.uint32),
                "AF": np.arange(1, n, 2, dtype=np.uint32)})


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    trx = save(tractogram(), tmp_path / "src.trx")
    ref = tmp_path / "ref.nii.gz"
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros(DIMS, np.uint8), AFFINE), str(ref))
    return {"trk": _quiet(trx, tmp_path / "in.trk"), "tck": _quiet(trx, tmp_path / "in.tck"),
            "ref": ref}


def _staged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert_module, "predicted_counts", lambda path: None)


def _tree(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("fmt", ["trk", "tck"])
@pytest.mark.parametrize("out_name", ["out.trx", "out_dir"])
def test_written_once_with_the_bytes_of_the_staged_path(tmp_path: Path, inputs: dict,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        fmt: str, out_name: str) -> None:
    ref = inputs["ref"] if fmt == "tck" else None
    once = tmp_path / "once"
    staged = tmp_path / "staged"
    once.mkdir()
    staged.mkdir()

    class NoSpool:
        def __init__(self, *args, **kwargs):
            raise AssertionError("the data were staged")

    with monkeypatch.context() as m:
        m.setattr(convert_module, "_Spool", NoSpool)
        _quiet(inputs[fmt], once / out_name, reference=ref)
    with monkeypatch.context() as m:
        _staged(m)
        _quiet(inputs[fmt], staged / out_name, reference=ref)
    assert _tree(once / out_name) == _tree(staged / out_name)
    with load(once / out_name) as a, load(tmp_path / "src.trx") as b:
        assert len(a) == len(b) == 300
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-3)
        if fmt == "trk":
            assert sorted(a.dpv) == ["fa", "rgb"] and sorted(a.groups) == ["AF", "CST"]
            np.testing.assert_array_equal(a.groups["AF"], np.arange(1, 300, 2))


def test_counts_predicted_from_the_header_and_size(inputs: dict) -> None:
    with load_any(inputs["trk"]) as trx:
        expected = (len(trx), trx.nb_vertices)
    assert predicted_counts(inputs["trk"]) == expected
    assert predicted_counts(inputs["tck"]) == expected


def test_a_header_that_lies_falls_back_to_staging(tmp_path: Path, inputs: dict) -> None:
    """A TCK whose advisory count is one short: found out while writing, staged instead."""
    data = bytearray(inputs["tck"].read_bytes())
    text = data[:200].decode("latin-1")
    start = text.index("count: ") + len("count: ")
    count = int(text[start:start + 10])
    data[start:start + 10] = f"{count - 1:010d}".encode()
    bad = tmp_path / "bad.tck"
    bad.write_bytes(bytes(data))
    assert predicted_counts(bad) == (count - 1, predicted_counts(inputs["tck"])[1] + 1)
    out = _quiet(bad, tmp_path / "o.trx", reference=inputs["ref"])
    with load(out) as trx, load(tmp_path / "src.trx") as src:
        assert len(trx) == 300
        np.testing.assert_allclose(trx.positions, src.positions, atol=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir() if ".trx-tmp-" in p.name) == []


def test_deflated_output_and_gzipped_input_are_staged(tmp_path: Path, inputs: dict) -> None:
    import gzip

    gz = tmp_path / "in.trk.gz"
    gz.write_bytes(gzip.compress(inputs["trk"].read_bytes()))
    assert predicted_counts(gz) is None
    a = _quiet(gz, tmp_path / "a.trx")
    b = _quiet(inputs["trk"], tmp_path / "b.trx", compression="deflate")
    with load(a) as x, load(b) as y:
        assert len(x) == len(y) == 300
        np.testing.assert_array_equal(x.positions, y.positions)


def test_write_blocks_assembles_several_sources(tmp_path: Path, inputs: dict) -> None:
    """The reusable piece: two inputs into one TRX, written once, groups re-indexed."""
    from trx_nipype.core.formats.trk import iter_trk_blocks, read_trk_header

    info = read_trk_header(inputs["trk"])
    n, v = predicted_counts(inputs["trk"])

    def source(label: str) -> BlockSource:
        return BlockSource(lambda: iter_trk_blocks(inputs["trk"], chunk_bytes=4096), n, v,
                           dpv={"fa": 1, "rgb": 3}, dps={"weight": 1}, groups=["AF", "CST"],
                           label=label)
    out = write_blocks(tmp_path / "both.trx", [source("a"), source("b")], info.space)
    with load(out) as trx, load_any(inputs["trk"]) as one:
        assert len(trx) == 2 * n and trx.nb_vertices == 2 * v
        np.testing.assert_array_equal(trx.positions[:v], one.positions)
        np.testing.assert_array_equal(trx.positions[v:], one.positions)
        np.testing.assert_array_equal(trx.groups["AF"],
                                      np.concatenate([one.groups["AF"], one.groups["AF"] + n]))
    with pytest.raises(SizeMismatch):
        write_blocks(tmp_path / "lie.trx", [BlockSource(source("x").blocks, n + 1, v,
                                                        dpv={"fa": 1, "rgb": 3},
                                                        dps={"weight": 1})], info.space)
    assert not (tmp_path / "lie.trx").exists()
    assert [p for p in tmp_path.iterdir() if ".trx-tmp-" in p.name] == []
    assert isinstance(info.space, Space)
