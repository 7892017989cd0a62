"""Hostile archives: deflate bombs, lying sizes, unsafe and very long member names.

Guarantee: nothing is written outside the private temporary folder (which is
gone after ``close()``), inflating streams in bounded memory and never past a
member's declared size, and every such archive gives a clear TrxFormatError.
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trx_nipype.core import TrxFormatError, load, set_temp_root
from trx_nipype.core import container as container_mod


def header(nb_vertices: int, nb_streamlines: int) -> bytes:
    return json.dumps({"VOXEL_TO_RASMM": np.eye(4).tolist(), "DIMENSIONS": [10, 10, 10],
                       "NB_VERTICES": nb_vertices, "NB_STREAMLINES": nb_streamlines}).encode()


@pytest.fixture
def temp_root(tmp_path: Path):
    root = tmp_path / "tmproot"
    set_temp_root(root)
    yield root
    set_temp_root(None)


def bomb(path: Path, nb_vertices: int) -> None:
    """A valid TRX whose positions are zeros that deflate ~1000:1."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("header.json", header(nb_vertices, 1))
        zf.writestr("offsets.uint64", np.array([0, nb_vertices], "<u8").tobytes())
        with zf.open("positions.3.float32", "w") as dst:
            block = bytes(1 << 20)
            left = nb_vertices * 12
            while left:
                dst.write(block[: min(left, len(block))])
                left -= min(left, len(block))


def test_deflate_bomb_inflates_in_bounded_memory_inside_the_temp_root(tmp_path: Path,
                                                                        temp_root: Path) -> None:
    src = tmp_path / "bomb.trx"
    bomb(src, nb_vertices=(48 << 20) // 12)  # 48 MiB of zeros
    assert src.stat().st_size < 200_000
    before = sorted(p.name for p in tmp_path.iterdir())
    tracemalloc.start()
    with load(src) as trx:
        inflated = sum(p.stat().st_size for p in temp_root.rglob("*.bin"))
        assert inflated < 1024  # only the offsets are inflated before the positions are used
        assert float(trx.positions[-1].sum()) == 0.0
        sizes = sorted(p.stat().st_size for p in temp_root.rglob("*.bin"))
        assert sizes[-1] == 48 << 20
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20
    assert not list(temp_root.iterdir())  # removed on close
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _patch_central_size(data: bytes, member: str, new_size: int) -> bytes:
    """Make the central directory declare ``new_size`` uncompressed bytes for ``member``."""
    out = bytearray(data)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", out, pos + 28)[0]
        name = bytes(out[pos + 46: pos + 46 + name_len]).decode()
        if name == member:
            struct.pack_into("<I", out, pos + 24, new_size)
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


def test_declared_size_larger_than_the_data_is_refused(tmp_path: Path, temp_root: Path) -> None:
    buf = io.BytesIO()
    v = 1000
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("header.json", header(v * 300, 1))  # the header agrees with the lie
        zf.writestr("offsets.uint64", np.array([0, v * 300], "<u8").tobytes())
        zf.writestr("positions.3.float32", bytes(v * 12))
    src = tmp_path / "liar.trx"
    src.write_bytes(_patch_central_size(buf.getvalue(), "positions.3.float32", v * 300 * 12))
    with load(src) as trx, pytest.raises(TrxFormatError, match="positions.3.float32"):
        trx.positions  # noqa: B018
    assert not list(temp_root.iterdir())


def test_member_larger_than_free_space_is_refused_before_inflating(
        tmp_path: Path, temp_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "big.trx"
    bomb(src, nb_vertices=(4 << 20) // 12)
    monkeypatch.setattr(container_mod.shutil, "disk_usage",
                        lambda p: type("U", (), {"free": 1 << 20})())
    with load(src) as trx, pytest.raises(TrxFormatError, match="free under"):
        trx.positions  # noqa: B018
    assert not list(temp_root.rglob("*.bin"))


@pytest.mark.parametrize("name", ["../../escape.float32", "/etc/escape.float32",
                                  "dps/../../x.float32", "dps\\..\\x.float32",
                                  "dps/" + "x" * 5000 + ".float32", ".", "dps/./x.float32",
                                  "dps//x.float32"])
def test_unsafe_or_huge_member_names_are_refused(tmp_path: Path, temp_root: Path,
                                                 name: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("header.json", header(0, 0))
        zf.writestr(name, b"\x00" * 4)
    src = tmp_path / "evil.trx"
    src.write_bytes(buf.getvalue())
    with pytest.raises(TrxFormatError) as info:
        load(src)
    assert str(src) in str(info.value)
    assert not (tmp_path.parent / "escape.float32").exists()
    assert not list(temp_root.rglob("*")) or not list(temp_root.rglob("*.bin"))
