"""Hostile inputs to the core: folder members that lead elsewhere, names and numbers no
writer can store, reads that a small file cannot justify, points that TCK cannot hold.

Guarantees:

- a member of a TRX folder whose real path leaves the folder (a link to a file or a
  folder elsewhere), a link loop, a dangling link, a name that is not UTF-8, an
  unreadable member and a member truncated after loading are each a
  ``TrxFormatError`` naming the folder and the member (exit 3 in the CLI); nothing
  is read through such a link and no output is written;
- a data or group name that no writer can store (``groups/...uint32``: the group
  ``..``) is refused at load, not at every later save;
- ``header.json`` numbers that do not fit (``DIMENSIONS`` 1e308 or 2**64,
  ``VOXEL_TO_RASMM`` 10**400), text or booleans for numbers, a zero or singular
  ``VOXEL_TO_RASMM``, and TRK headers whose space sends points past float32 (a
  ``voxel_size`` of 1e-45, a ``vox_to_ras`` of 1e38) are ``TrxFormatError`` naming the
  file and the field, at load;
- small inputs that claim or inflate to gigabytes -- a ``header.json`` deflate bomb (its
  size told or hidden), a ``.trk.gz`` record claiming 2**31-1 points, a ``.trk.gz``
  whose records never start, a ``.tck.gz`` streamline that never ends -- are refused
  with a ``TrxFormatError`` in bounded memory: measured in a child process (peak RSS at
  most 256 MB, with ``RLIMIT_AS`` as a backstop against a runaway) and, as a guard
  against hangs only, a generous timeout;
- converting points with a NaN or infinite coordinate to TCK (whose delimiter is NaN
  and end marker Inf) is refused naming the input and the streamline, and writes
  nothing.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from trx_nipype.cli.main import main
from trx_nipype.core import TrxFile, TrxFormatError, convert, load, load_any, save, validate
from trx_nipype.core.formats.trk import HEADER_DTYPE, read_trk_header

#: peak resident memory allowed to a child refusing a small hostile input
MAX_RSS_MB = 256
#: address space of that child: a runaway fails fast instead of swapping the machine
RLIMIT_AS_BYTES = 2 << 30
#: inflated size of the gzip and deflate bombs (from inputs of ~0.4 MB): past 256 MB, so
#: that a reader holding what they claim cannot pass
BOMB_BYTES = 384 << 20


def small_trx() -> TrxFile:
    rng = np.random.default_rng(0)
    return TrxFile.from_arrays(rng.normal(size=(30, 3)).astype(np.float32) + 5,
                               lengths=[10, 10, 10], affine=np.diag([2.0, 2.0, 2.0, 1.0]),
                               dimensions=[20, 20, 20],
                               dps={"w": rng.random(3).astype(np.float32)},
                               groups={"A": np.array([0, 2], np.uint32)})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A small TRX folder: dps/w.float32, groups/A.uint32."""
    path = tmp_path / "in_trx"
    save(small_trx(), path)
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str | os.PathLike) -> tuple[int, str]:
    code = main([os.fspath(a) for a in argv])
    return code, capsys.readouterr().err


def refused(path: Path, member: str, *words: str) -> TrxFormatError:
    """``load(path)`` raises a TrxFormatError naming ``path``, ``member`` and ``words``."""
    with pytest.raises(TrxFormatError) as err:
        load(path).close()
    text = str(err.value)
    assert text.startswith(f"{path}: {member}: "), text
    for word in words:
        assert word in text, text
    return err.value


# ------------------------------------------------------------- folder members
def test_member_linking_to_a_file_outside_the_folder_is_refused(
        folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "elsewhere" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(np.array([7.5, 8.5, 9.5], np.float32).tobytes())  # the right size
    (folder / "dps" / "w.float32").unlink()
    (folder / "dps" / "w.float32").symlink_to(Path("../../elsewhere/secret.bin"))
    refused(folder, "dps/w.float32", "symbolic link", str(secret), "outside the TRX folder")
    assert not validate(folder).ok
    out = tmp_path / "sel.trx"
    code, err = cli(capsys, "select-group", folder, "A", "-o", out)
    assert code == 3 and "dps/w.float32" in err and "outside the TRX folder" in err
    assert not out.exists()  # its bytes are copied nowhere


def test_linked_folder_leaving_the_trx_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    shutil.move(folder / "dps", tmp_path / "dps_elsewhere")
    (folder / "dps").symlink_to(tmp_path / "dps_elsewhere", target_is_directory=True)
    refused(folder, "dps", "symbolic link", "outside the TRX folder")
    (folder / "dps").unlink()
    (folder / "zz_link").symlink_to("/usr", target_is_directory=True)  # once ignored, now named
    refused(folder, "zz_link", "/usr", "outside the TRX folder")


def test_links_inside_the_folder_are_followed(folder: Path) -> None:
    store = folder / ".store"  # hidden: not a member itself
    store.mkdir()
    shutil.move(folder / "dps" / "w.float32", store / "w.float32")
    (folder / "dps" / "w.float32").symlink_to(Path("../.store/w.float32"))
    shutil.move(folder / "groups", store / "groups")
    (folder / "groups").symlink_to(Path(".store/groups"), target_is_directory=True)
    with load(folder) as trx:
        np.testing.assert_array_equal(trx.dps["w"], small_trx().dps["w"])
        assert trx.groups["A"].tolist() == [0, 2]


@pytest.mark.parametrize("kind", ["loop", "self", "dangling"])
def test_link_loops_and_dangling_links_are_format_errors(
        folder: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    dps = folder / "dps"
    if kind == "loop":
        (dps / "x.float32").symlink_to("y.float32")
        (dps / "y.float32").symlink_to("x.float32")
        words = ("dps/x.float32", "symbolic link loop")
    elif kind == "self":
        (dps / "x.float32").symlink_to("x.float32")
        words = ("dps/x.float32", "symbolic link loop")
    else:
        (dps / "x.float32").symlink_to("nowhere.float32")
        words = ("dps/x.float32", "dangling")
    refused(folder, words[0], words[1])
    code, err = cli(capsys, "validate", folder)
    assert code == 3 and all(w in err for w in words), err


UNREADABLE = r"""
import os, sys
import nibabel.orientations  # what loading imports, while the interpreter can still read it
from trx_nipype.core import TrxFormatError, load
os.setgid(65534); os.setuid(65534)  # nobody: file modes apply again
try:
    load(sys.argv[1]).close()
except TrxFormatError as exc:
    print("REFUSED", exc)
else:
    print("LOADED")
"""


def test_an_unreadable_member_is_named(tmp_path: Path) -> None:
    # a folder that the unprivileged child can reach (pytest's tmp_path is private to root)
    base = Path(tempfile.mkdtemp(prefix="trx-unreadable-"))
    try:
        base.chmod(0o755)
        src = base / "in_trx"
        save(small_trx(), src)
        for p in [src, *src.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        (src / "dps" / "w.float32").chmod(0o000)
        if os.geteuid() != 0:  # file modes apply to this very process
            refused(src, "dps/w.float32", "cannot read", "ermission denied")
            return
        result = subprocess.run([sys.executable, "-c", UNREADABLE, str(src)],
                                capture_output=True, text=True, timeout=120,
                                cwd=str(base))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"REFUSED {src}: dps/w.float32: cannot read"), \
            result.stdout
    finally:
        shutil.rmtree(base)


def test_a_member_truncated_after_loading_is_named(folder: Path) -> None:
    with load(folder) as trx:
        with open(folder / "positions.3.float32", "r+b") as fh:
            fh.truncate(100)
        with pytest.raises(TrxFormatError) as err:
            np.asarray(trx.positions).sum()
    text = str(err.value)
    # the file, the member, and what changed (the stamp taken at load: 360 -> 100 bytes)
    assert text.startswith(f"{folder}: positions.3.float32: changed while being read"), text
    assert "360 -> 100 bytes" in text, text
    assert "buffer is smaller" not in text


def test_a_name_that_is_not_utf8_is_named(folder: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    groups = os.fsencode(folder / "groups")
    os.rename(groups + b"/A.uint32", groups + b"/\xff.uint32")
    refused(folder, "groups/\\xff.uint32", "UTF-8")
    code, err = cli(capsys, "select-group", folder, "A", "-o", folder.parent / "x.trx")
    assert code == 3 and "groups/\\xff.uint32" in err and "UTF-8" in err, err


@pytest.mark.parametrize(("old", "new"), [
    ("groups/A.uint32", "groups/...uint32"),  # the group ".."
    ("groups/A.uint32", "groups/.A.uint32"),
    ("dps/w.float32", "dps/.w.float32"),
    ("dps/w.float32", "dps/..float32"),  # the dps "."
])
def test_names_no_writer_can_store_are_refused_at_load(
        folder: Path, tmp_path: Path, old: str, new: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.trx"
    with zipfile.ZipFile(path, "w") as zf:  # in a folder such names are hidden files
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                rel = p.relative_to(folder).as_posix()
                zf.writestr(new if rel == old else rel, p.read_bytes())
    refused(path, new, "names must be non-empty, not start with '.'")
    code, err = cli(capsys, "validate", path)
    assert code == 3 and new in err


def test_a_member_with_only_a_dtype_is_a_nameless_group(folder: Path, tmp_path: Path) -> None:
    """``groups/.uint32`` was "unknown dtype extension", though its dtype is one."""
    path = tmp_path / "bad.trx"
    with zipfile.ZipFile(path, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                rel = p.relative_to(folder).as_posix()
                zf.writestr("groups/.uint32" if rel == "groups/A.uint32" else rel,
                            p.read_bytes())
    err = refused(path, "groups/.uint32", "this group has no name")
    assert "unknown dtype" not in str(err)


# ------------------------------------------------------------------- headers
def _header_variant(folder: Path, key: str, raw: str) -> None:
    header = json.loads((folder / "header.json").read_text())
    header[key] = "@@"
    (folder / "header.json").write_text(json.dumps(header).replace('"@@"', raw))


IDENTITY_ROWS = "[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]"


@pytest.mark.parametrize(("key", "raw", "words"), [
    ("DIMENSIONS", "[1e308, 1, 1]", "positive integers"),
    ("DIMENSIONS", f"[{2**64}, 1, 1]", "positive integers"),
    ("DIMENSIONS", "[1.5, 1, 1]", "positive integers"),
    ("VOXEL_TO_RASMM", f"[[{10**400}, 0, 0, 0], {IDENTITY_ROWS}]", "too large"),
    ("VOXEL_TO_RASMM", "[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1e400]]",
     "finite"),
    ("VOXEL_TO_RASMM", f'[["1", "0", "0", "0"], {IDENTITY_ROWS}]', "matrix of numbers"),
    ("VOXEL_TO_RASMM", f"[[true, false, false, false], {IDENTITY_ROWS}]", "matrix of numbers"),
    ("VOXEL_TO_RASMM", f"[[null, 0, 0, 0], {IDENTITY_ROWS}]", "matrix of numbers"),
    ("VOXEL_TO_RASMM", "[[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]",
     "invertible"),
    ("VOXEL_TO_RASMM", "[[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]]",
     "invertible"),
    ("NB_VERTICES", str(2**64), "integer from 0"),
    # a number in quotes: "found 12" looked like the integer it asked for
    ("NB_STREAMLINES", '"12"', "integer from 0 to 9223372036854775807, found the string '12' "
                              "(write numbers without quotes)"),
    ("DIMENSIONS", '["1", 1, 1]', "found ['1', 1, 1]"),
])
def test_header_numbers_that_do_not_fit_are_named_at_load(
        folder: Path, key: str, raw: str, words: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _header_variant(folder, key, raw)
    refused(folder, "header.json", key, words)
    for command in (["validate", folder], ["convert", folder, folder.parent / "out.trk"]):
        code, err = cli(capsys, *command)
        assert code == 3 and f"{folder}: header.json: {key}" in err, err
    assert not (folder.parent / "out.trk").exists()


def _trk_variant(tmp_path: Path, name: str, **fields: object) -> Path:
    """The small TRX as a TRK, with header fields replaced (and, optionally, a far point)."""
    base = tmp_path / "base.trk"
    if not base.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            convert(save(small_trx(), tmp_path / "base.trx"), base)
    data = bytearray(base.read_bytes())
    far = fields.pop("far_point", None)
    hdr = np.frombuffer(bytes(data[:1000]), HEADER_DTYPE).copy()
    for key, value in fields.items():
        hdr[key] = value
    if far is not None:  # the first point of the first record, in voxmm
        data[1004:1016] = np.array(far, "<f4").tobytes()
    path = tmp_path / name
    path.write_bytes(hdr.tobytes() + bytes(data[1000:]))
    return path


@pytest.mark.parametrize(("fields", "words"), [
    ({"voxel_size": [1e-45, 1.0, 1.0]}, "voxel_size: expected sizes of at least"),
    ({"vox_to_ras": np.diag([1e38, 1e38, 1e38, 1.0])}, "vox_to_ras and voxel_size"),
    ({"vox_to_ras": np.diag([1e34, 1.0, 1.0, 1.0])}, "vox_to_ras and voxel_size"),
])
def test_trk_spaces_that_send_points_past_float32_are_refused_at_load(
        tmp_path: Path, fields: dict, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = _trk_variant(tmp_path, "bad.trk", **fields)
    with pytest.raises(TrxFormatError) as err:
        read_trk_header(path)
    assert str(err.value).startswith(f"{path}: header: ") and words in str(err.value)
    out = tmp_path / "out.trx"
    code, err_text = cli(capsys, "convert", path, out)
    assert code == 3 and f"{path}: header: " in err_text and not out.exists()


def test_a_trk_point_sent_past_float32_names_the_streamline(tmp_path: Path) -> None:
    # the header passes (its grid and a kilometre around it stay finite) but one point lies
    # 1e9 voxmm away, 1e39 mm once the 1e-30 mm voxel size is divided out
    path = _trk_variant(tmp_path, "far.trk", voxel_size=[1e-30, 1e-30, 1e-30],
                        far_point=[1e9, 0.0, 0.0])
    read_trk_header(path)
    with pytest.raises(TrxFormatError) as err:
        load_any(path)
    text = str(err.value)
    assert text.startswith(f"{path}: header: vox_to_ras and voxel_size") and \
        "streamline 0's point" in text, text
    with pytest.raises(TrxFormatError, match="streamline 0's point"):
        convert(path, tmp_path / "far.trx")
    assert not (tmp_path / "far.trx").exists()


# ------------------------------------------------------- non-finite to TCK
@pytest.mark.parametrize("point", [(np.nan,) * 3, (np.inf,) * 3, (np.nan, 1.0, 2.0),
                                   (1.0, -np.inf, 2.0)], ids=["nan", "inf", "nan_x", "ninf_y"])
@pytest.mark.parametrize("suffix", [".tck", ".tck.gz"])
def test_non_finite_points_are_refused_for_tck(tmp_path: Path, point: tuple, suffix: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    positions = np.asarray(small_trx().positions).copy()
    positions[14] = point  # streamline 1, point 4
    src = save(TrxFile.from_arrays(positions, lengths=[10, 10, 10]), tmp_path / "nan.trx")
    dest = tmp_path / f"out{suffix}"
    with pytest.raises(TrxFormatError) as err:
        convert(src, dest)
    text = str(err.value)
    assert text.startswith(f"{src}: positions: streamline 1 ") and "(point 4)" in text, text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.trx"]  # nothing written
    code, err_text = cli(capsys, "convert", src, dest)
    assert code == 3 and f"{src}: positions: streamline 1 " in err_text, err_text
    assert not dest.exists()
    # an existing output (a tractogram: nothing else may be replaced) stays as it was
    finite = save(TrxFile.from_arrays(np.asarray(small_trx().positions), lengths=[10, 10, 10]),
                  tmp_path / "finite.trx")
    convert(finite, dest)
    previous = dest.read_bytes()
    with pytest.raises(TrxFormatError):
        convert(src, dest)
    assert dest.read_bytes() == previous


# ------------------------------------------------------------ bounded reads
MEASURE = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from trx_nipype.core import TrxFormatError, convert, load, load_any
path, op, dest = sys.argv[1], sys.argv[2], sys.argv[3]
ref = (np.eye(4), (10, 10, 10)) if ".tck" in path else None
start = time.perf_counter()
try:
    if op == "load":
        with (load(path) if path.endswith(".trx") else load_any(path, reference=ref)):
            pass
    else:
        convert(path, dest, reference=ref)
    outcome = {"error": None}
except Exception as exc:
    outcome = {"error": type(exc).__name__, "message": str(exc)[:500]}
outcome["seconds"] = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child of a
# large pytest process would report the parent's peak
with open("/proc/self/status", encoding="ascii") as status:
    hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
outcome["max_rss_mb"] = hwm_kb / 1024
print(json.dumps(outcome))
"""


def measure(path: Path, op: str) -> dict:
    """Run ``op`` (``load`` or ``convert``) on ``path`` in a child with bounded memory."""
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (RLIMIT_AS_BYTES, RLIMIT_AS_BYTES))

    result = subprocess.run([sys.executable, "-c", MEASURE, str(path), op,
                             str(path.parent / "out.trx")],
                            capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def gzip_bomb(path: Path, head: bytes, fill: bytes, size: int = BOMB_BYTES) -> Path:
    """``head`` then about ``size`` bytes repeating ``fill``, gzipped (one member per
    ~16 MiB of fill: a valid multi-member stream, written in milliseconds)."""
    body = gzip.compress(fill * ((16 << 20) // len(fill)), compresslevel=9, mtime=0)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(head, mtime=0))
        for _ in range(size // (16 << 20)):
            fh.write(body)
    return path


def trk_head(n_count: int = 0) -> bytes:
    hdr = np.zeros((), HEADER_DTYPE)
    hdr["id_string"], hdr["dim"], hdr["voxel_size"] = b"TRACK", [10, 10, 10], [1, 1, 1]
    hdr["vox_to_ras"], hdr["voxel_order"] = np.eye(4), b"RAS"
    hdr["n_count"], hdr["version"], hdr["hdr_size"] = n_count, 2, 1000
    return hdr.tobytes()


TCK_HEAD = b"mrtrix tracks\ncount: 1\ndatatype: Float32LE\nfile: . 64\nEND\n".ljust(64, b" ")


def header_bomb(path: Path, lie: bool) -> Path:
    """A TRX zip whose header.json inflates to BOMB_BYTES (``lie``: declaring 400 bytes).

    Deflated once per session (a few seconds), then copied."""
    made = _MADE.get(lie)
    if made is None or not made.exists():
        made = Path(tempfile.mkdtemp(prefix="trx-bomb-")) / path.name
        with zipfile.ZipFile(made, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            with zf.open("header.json", "w") as dst:
                dst.write(b'{"VOXEL_TO_RASMM": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]], '
                          b'"DIMENSIONS": [1,1,1], "NB_VERTICES": 0, "NB_STREAMLINES": 0, '
                          b'"X": "')
                block = b" " * (16 << 20)
                for _ in range(BOMB_BYTES // len(block)):
                    dst.write(block)
                dst.write(b'"}')
        if lie:  # the central directory's uncompressed size (what zipfile trusts) says 400
            data = bytearray(made.read_bytes())
            struct.pack_into("<I", data, data.rfind(b"PK\x01\x02") + 24, 400)
            made.write_bytes(bytes(data))
        _MADE[lie] = made
    shutil.copyfile(made, path)
    return path


_MADE: dict[bool, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def _remove_bombs() -> Iterator[None]:
    yield
    for made in _MADE.values():
        shutil.rmtree(made.parent, ignore_errors=True)


BOMBS = {
    "header.json bomb": (lambda d: header_bomb(d / "hbomb.trx", lie=False),
                         "header.json: expected at most"),
    "header.json bomb, size hidden": (lambda d: header_bomb(d / "hbomb_lie.trx", lie=True),
                                      "header.json"),
    "trk.gz record of 2**31-1 points": (
        lambda d: gzip_bomb(d / "bigrec.trk.gz", trk_head() + struct.pack("<i", 2**31 - 1),
                            b"\x00"), "streamline 0: truncated: 2147483647 points"),
    "trk.gz of no records": (lambda d: gzip_bomb(d / "none.trk.gz", trk_head(), b"\xff"),
                             "streamline 0: expected a non-negative point count"),
    "trk.gz of zero-point records beyond n_count": (
        lambda d: gzip_bomb(d / "zeros.trk.gz", trk_head(n_count=5), b"\x00"),
        "n_count says 5 streamlines, the file holds at least"),
    "tck.gz streamline without delimiter": (
        lambda d: gzip_bomb(d / "nodelim.tck.gz", TCK_HEAD, b"\x00"),
        "no NaN delimiter"),
}


@pytest.mark.parametrize("op", ["load", "convert"])
@pytest.mark.parametrize("case", sorted(BOMBS))
def test_small_inputs_claiming_gigabytes_are_refused_in_bounded_memory(
        tmp_path: Path, case: str, op: str) -> None:
    make, words = BOMBS[case]
    path = make(tmp_path)
    assert path.stat().st_size < 2 << 20
    outcome = measure(path, op)
    assert outcome["error"] == "TrxFormatError", outcome
    assert outcome["message"].startswith(str(path)) and words in outcome["message"], outcome
    assert outcome["max_rss_mb"] <= MAX_RSS_MB, outcome
    assert not (tmp_path / "out.trx").exists()


def test_a_long_gzipped_streamline_that_ends_is_read_whole(tmp_path: Path) -> None:
    """What the caps let through: an outsized record (past the reader's chunk) that the
    file does hold is read exactly (TRK and TCK, plain and gzipped)."""
    rng = np.random.default_rng(3)
    lengths = [3, 20_000, 5]
    positions = rng.uniform(1, 19, (sum(lengths), 3)).astype(np.float32)
    trx = TrxFile.from_arrays(positions, lengths=lengths, affine=np.eye(4),
                              dimensions=[20, 20, 20])
    src = save(trx, tmp_path / "long.trx")
    for suffix in (".trk", ".trk.gz", ".tck", ".tck.gz"):
        out = tmp_path / f"long{suffix}"
        convert(src, out)
        ref = None if ".trk" in suffix else src
        for chunk in (4096, 1 << 16):  # the long streamline is 20-60x the chunk
            back = tmp_path / f"back_{chunk}{suffix}.trx"
            convert(out, back, reference=ref, chunk_bytes=chunk)
            with load(back) as got:
                assert got.lengths.tolist() == lengths
                np.testing.assert_allclose(got.positions, positions, atol=1e-4)
