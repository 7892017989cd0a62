"""Property-based mutation of valid TRX zips and directories.

Guarantee: every mutated input either loads (and then every array can be read,
selected and saved again) or raises :class:`TrxFormatError` naming the file;
never another exception, never a hang, never an allocation far beyond the
file's size. ``TRX_FUZZ_EXAMPLES`` scales the number of cases (CI: a few
thousand in well under a minute; maintainers: e.g. ``TRX_FUZZ_EXAMPLES=200000``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trx_nipype.core import TrxFile, TrxFormatError, load, save

N_EXAMPLES = int(os.environ.get("TRX_FUZZ_EXAMPLES", "500"))
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def _valid_members() -> dict[str, bytes]:
    """The members of a small valid TRX with every kind of data."""
    rng = np.random.default_rng(0)
    trx = TrxFile.from_arrays(
        rng.normal(size=(40, 3)).astype(np.float32), lengths=[10, 0, 12, 18],
        dps={"w": rng.random(4), "rgb": rng.integers(0, 255, (4, 3)).astype(np.uint8)},
        dpv={"fa": rng.random(40).astype(np.float16)},
        groups={"A": np.array([0, 2], np.uint32), "B": np.array([2, 3], np.uint16)},
        dpg={"A": {"mean": np.array([0.5], np.float32)}},
        header={"COMMENT": "fuzz base"})
    root = Path(tempfile.mkdtemp())
    try:
        save(trx, root / "d")
        return {p.relative_to(root / "d").as_posix(): p.read_bytes()
                for p in sorted((root / "d").rglob("*")) if p.is_file()}
    finally:
        shutil.rmtree(root)


BASE = _valid_members()
NAMES = sorted(BASE)
SCRATCH = Path(tempfile.mkdtemp(prefix="trx-fuzz-"))


def write_zip(members: list[tuple[str, bytes]], compression: int) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are part of the fuzzing
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def exercise(path: Path, size: int) -> None:
    """Load; on success touch everything and save a view; else check the error."""
    tracemalloc.start()
    try:
        with load(path) as trx, np.errstate(all="ignore"):
            n = len(trx)
            float(np.asarray(trx.positions, dtype=np.float64).sum())
            trx.offsets.sum()
            for table in (trx.dps, trx.dpv, *trx.dpg.values()):
                for key in table:
                    np.asarray(table[key]).sum()
            list(trx.streamlines[: min(n, 3)])
            view = trx.select(np.arange(n)[::-1])
            out = SCRATCH / "resaved.trx"
            save(view, out)
            with load(out) as again:
                assert len(again) == n
    except TrxFormatError as exc:
        assert str(path) in str(exc)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 50 * size + (8 << 20), f"peak {peak} bytes for a {size}-byte input"


def _target(data: bytes, suffix: str = ".trx") -> Path:
    path = SCRATCH / f"case{suffix}"
    path.write_bytes(data)
    return path


@FUZZ
@given(compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                      min_size=1, max_size=8))
def test_bit_flips_in_zips(compression: int, flips: list[tuple[float, int]]) -> None:
    data = bytearray(write_zip(list(BASE.items()), compression))
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    exercise(_target(bytes(data)), len(data))


@FUZZ
@given(compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
       cut=st.floats(0, 1, exclude_max=True), junk=st.binary(max_size=64))
def test_truncated_or_padded_zips(compression: int, cut: float, junk: bytes) -> None:
    data = write_zip(list(BASE.items()), compression)
    data = data[: int(cut * len(data))] + junk
    exercise(_target(data), len(data))


HEADER_VALUES = st.one_of(
    st.integers(-3, 100), st.sampled_from([2**31, 2**32 + 40, 2**62, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5), st.none(),
    st.lists(st.integers(-2, 300), max_size=5),
    st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def edited_members(draw) -> list[tuple[str, bytes]]:
    """Members with lying header fields, and members renamed, duplicated or removed."""
    header = json.loads(BASE["header.json"])
    for key in draw(st.lists(st.sampled_from(sorted(header)), max_size=3)):
        if draw(st.booleans()):
            header[key] = draw(HEADER_VALUES)
        else:
            header.pop(key, None)
    members = [("header.json", json.dumps(header).encode())]
    members += [(n, BASE[n]) for n in NAMES if n != "header.json"]
    for _ in range(draw(st.integers(0, 3))):
        if not members:
            break
        i = draw(st.integers(0, len(members) - 1))
        name, data = members[i]
        action = draw(st.sampled_from(["remove", "rename", "duplicate", "resize"]))
        if action == "remove":
            members.pop(i)
        elif action == "duplicate":
            members.append((name, data[: draw(st.integers(0, len(data)))]))
        elif action == "resize":
            members[i] = (name, data[: draw(st.integers(0, len(data)))] +
                          draw(st.binary(max_size=16)))
        else:
            stem = name.rsplit(".", 1)[0]
            new = draw(st.one_of(
                st.sampled_from(["int8", "uint64", "float64", "bit", "float128", "txt", ""]
                                ).map(lambda ext, s=stem: f"{s}.{ext}"),
                st.text(alphabet="abc./ _-", min_size=1, max_size=12),
                st.sampled_from(["dpg/ZZ/x.float32", "dps/a/b.float32", "../evil.float32",
                                 "/abs.float32", "positions.2.float32", "offsets.int64"])))
            members[i] = (new, data)
    return members


@FUZZ
@given(members=edited_members(),
       compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
def test_structural_edits_in_zips(members: list[tuple[str, bytes]], compression: int) -> None:
    data = write_zip(members, compression)
    exercise(_target(data), len(data))


@FUZZ
@given(members=edited_members(),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                      max_size=4))
def test_structural_edits_and_flips_in_directories(members: list[tuple[str, bytes]],
                                                   flips: list[tuple[float, int]]) -> None:
    root = SCRATCH / "case_dir"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    size = 0
    for name, data in members:
        target = root / name
        try:
            if not target.resolve().is_relative_to(root.resolve()) or name.endswith("/"):
                continue  # a directory cannot hold such names
            target.parent.mkdir(parents=True, exist_ok=True)
            data = bytearray(data)
            for where, bit in flips:
                if data:
                    data[int(where * len(data))] ^= 1 << bit
            target.write_bytes(bytes(data))
            size += len(data)
        except (OSError, ValueError):
            continue  # e.g. a file where a folder is needed: not representable
    exercise(root, size)


LINK_TARGETS = ["another member", "outside file", "outside folder", "itself", "loop",
                "dangling", "inside hidden file", "the folder"]


@settings(FUZZ, max_examples=max(N_EXAMPLES // 5, 10))  # files and links on disk: slower
@given(links=st.lists(st.tuples(st.sampled_from(NAMES + ["dps", "groups", "zz_link"]),
                                st.sampled_from(LINK_TARGETS), st.sampled_from(NAMES)),
                      min_size=1, max_size=3))
def test_links_in_directories(links: list[tuple[str, str, str]]) -> None:
    """Members (or folders) replaced by symbolic links: inside the folder they are read
    as their target; leaving it, looping or dangling, a TrxFormatError names the member
    -- and nothing outside is read into an output."""
    root = SCRATCH / "link_dir"
    outside = SCRATCH / "outside"
    for folder in (root, outside):
        shutil.rmtree(folder, ignore_errors=True)
    for name, data in BASE.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        (outside / name).parent.mkdir(parents=True, exist_ok=True)
        (outside / name).write_bytes(data)  # the right sizes: only the link gives it away
    (root / ".hidden").mkdir()
    (root / ".hidden" / "copy").write_bytes(BASE[NAMES[-1]])
    for name, kind, other in links:
        path = root / name
        if not path.parent.is_dir() or path.parent.is_symlink():
            continue  # an earlier link replaced the folder: not representable
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        depth = "../" * (len(Path(name).parts) - 1)
        target = {"another member": Path(depth + other),
                  "outside file": outside / other,
                  "outside folder": outside / "dps",
                  "itself": Path(Path(name).name),
                  "loop": Path(Path(name).name + ".loop"),
                  "dangling": Path(depth + "nowhere.float32"),
                  "inside hidden file": Path(depth + ".hidden/copy"),
                  "the folder": Path(depth or ".")}[kind]
        path.symlink_to(target)
        partner = path.parent / (path.name + ".loop")
        if kind == "loop" and not partner.is_symlink():
            partner.symlink_to(path.name)
    exercise(root, sum(len(d) for d in BASE.values()))
