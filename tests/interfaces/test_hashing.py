"""Fingerprints of TRX inputs and the persistent digest cache (trx_nipype.interfaces._hashing)."""

from __future__ import annotations

import json
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from nipype.interfaces.base import BaseInterfaceInputSpec, Directory, File, traits

from trx_nipype.interfaces import _hashing
from trx_nipype.interfaces._examples import example_trx
from trx_nipype.interfaces._hashing import STATS, file_digest, fingerprint, path_digest
from trx_nipype.interfaces._traits import TrxInputSpec, TrxPath, TrxPathList

METHODS = ("timestamp", "content")


def rewrite_same_size(path: Path, keep_mtime: bool = False) -> None:
    """Change a file's bytes in place (same size); optionally put its mtime back."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    with open(path, "r+b") as fh:  # in place: same inode
        fh.write(data)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("digests-v*/*/*.json"))


@pytest.mark.parametrize("method", METHODS)
def test_directory_fingerprint_follows_its_members(tmp_path: Path, method: str) -> None:
    trx = Path(example_trx(tmp_path, "bundle"))
    first = path_digest(trx, method)
    assert path_digest(trx, method) == first
    assert first.startswith(f"{method}:dir:")

    rewrite_same_size(trx / "dps" / "weight.float32")
    changed = path_digest(trx, method)
    assert changed != first

    (trx / "dps" / "extra.uint8").write_bytes(b"\x01" * 6)
    added = path_digest(trx, method)
    assert added not in (first, changed)

    (trx / "dps" / "extra.uint8").rename(trx / "dps" / "other.uint8")
    assert path_digest(trx, method) != added


def test_content_sees_a_rewrite_that_keeps_size_and_mtime(tmp_path: Path) -> None:
    """ctime is in the cache key: a forged mtime cannot make a stale digest."""
    trx = Path(example_trx(tmp_path, "bundle"))
    member = trx / "dpv" / "fa.float32"
    before = {m: path_digest(trx, m) for m in METHODS}
    rewrite_same_size(member, keep_mtime=True)
    assert path_digest(trx, "content") != before["content"]
    # timestamp is, as in Nipype, size + mtime: a forged mtime goes unseen
    assert path_digest(trx, "timestamp") == before["timestamp"]


def test_timestamp_reads_nothing(tmp_path: Path, digest_cache: Path) -> None:
    trx = example_trx(tmp_path, "bundle")
    zipped = example_trx(tmp_path, "bundle.trx")
    _hashing.reset_stats()
    fingerprint([trx, zipped], "timestamp")
    assert STATS["bytes_read"] == 0 and STATS["files_read"] == 0
    assert not digest_cache.exists()


@pytest.mark.usefixtures("no_racy_window")
@pytest.mark.parametrize("name", ["bundle", "bundle.trx"])
def test_content_digests_are_cached(tmp_path: Path, digest_cache: Path, name: str) -> None:
    trx = Path(example_trx(tmp_path, name))
    size = sum(p.stat().st_size for p in ([trx] if trx.is_file() else trx.rglob("*"))
               if p.is_file())
    before = sorted(p.name for p in tmp_path.rglob("*"))
    first = path_digest(trx, "content")
    assert STATS["bytes_read"] == size
    assert entries(digest_cache)

    _hashing.reset_stats()
    assert path_digest(trx, "content") == first
    assert STATS["bytes_read"] == 0 and STATS["cache_hits"] >= 1
    # nothing was written inside (or beside) the input
    assert sorted(p.name for p in tmp_path.rglob("*")
                  if digest_cache not in p.parents and p != digest_cache) == before


def test_young_files_are_not_cached(tmp_path: Path, digest_cache: Path) -> None:
    """Within the racy window a digest is recomputed, never stored."""
    trx = example_trx(tmp_path, "bundle.trx")
    path_digest(trx, "content")
    path_digest(trx, "content")
    assert STATS["files_read"] == 2
    assert not entries(digest_cache)


@pytest.mark.usefixtures("no_racy_window")
def test_zip_replaced_or_rewritten_gets_a_new_digest(tmp_path: Path) -> None:
    trx = Path(example_trx(tmp_path, "bundle.trx"))
    first = path_digest(trx, "content")
    example_trx(tmp_path, "bundle.trx", seed=5)  # replaced by rename: new inode
    second = path_digest(trx, "content")
    assert second != first
    rewrite_same_size(trx, keep_mtime=True)  # in place, mtime forged back
    assert path_digest(trx, "content") not in (first, second)


@pytest.mark.usefixtures("no_racy_window")
def test_bad_cache_entries_are_ignored(tmp_path: Path, digest_cache: Path) -> None:
    trx = example_trx(tmp_path, "bundle.trx")
    good = file_digest(trx)
    (entry,) = entries(digest_cache)
    record = json.loads(entry.read_text(encoding="utf-8"))
    entry.write_text(json.dumps({"key": record["key"][:-1], "digest": "0" * 64}), encoding="utf-8")
    assert file_digest(trx) == good  # key mismatch: recomputed
    entry.write_text("{not json", encoding="utf-8")
    assert file_digest(trx) == good


@pytest.mark.usefixtures("no_racy_window")
def test_unwritable_cache_is_slow_not_wrong(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be", encoding="utf-8")
    monkeypatch.setenv(_hashing.CACHE_ENV, str(blocker / "cache"))
    trx = example_trx(tmp_path, "bundle.trx")
    assert file_digest(trx) == file_digest(trx)
    assert STATS["files_read"] == 2


def test_cache_dir_default_and_setter(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(_hashing.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _hashing.digest_cache_dir() == tmp_path / "xdg" / "trx-nipype"
    _hashing.set_digest_cache_dir(tmp_path / "mine")
    assert _hashing.digest_cache_dir() == tmp_path / "mine"
    assert os.environ[_hashing.CACHE_ENV] == str(tmp_path / "mine")  # inherited by workers
    _hashing.set_digest_cache_dir(None)
    assert _hashing.digest_cache_dir() == tmp_path / "xdg" / "trx-nipype"


@pytest.mark.usefixtures("no_racy_window")
def test_prune_removes_old_entries(tmp_path: Path, digest_cache: Path) -> None:
    file_digest(example_trx(tmp_path, "bundle.trx"))
    (entry,) = entries(digest_cache)
    assert _hashing.prune_digest_cache(max_age_days=1) == 0
    os.utime(entry, (0, 0))
    assert _hashing.prune_digest_cache(max_age_days=1) == 1
    assert not entries(digest_cache)


def _digest_in_child(path: str) -> str:
    _hashing.RACY_WINDOW_NS = -1
    return path_digest(path, "content")


def test_concurrent_processes_share_the_cache(tmp_path: Path, digest_cache: Path) -> None:
    trx = example_trx(tmp_path, "bundle")
    with ProcessPoolExecutor(max_workers=2) as pool:
        digests = set(pool.map(_digest_in_child, [trx] * 6))
    assert len(digests) == 1
    stray = [p for p in digest_cache.rglob("*") if p.is_file() and p.suffix != ".json"]
    assert not stray  # no temporary entry left behind
    assert all(json.loads(p.read_text(encoding="utf-8"))["digest"] for p in entries(digest_cache))


def test_links_are_followed_and_loops_walked_once(tmp_path: Path) -> None:
    trx = Path(example_trx(tmp_path, "bundle"))
    (trx / "loop").symlink_to(trx, target_is_directory=True)
    (trx / "dangling").symlink_to(tmp_path / "nowhere")
    for method in METHODS:
        assert path_digest(trx, method).startswith(f"{method}:dir:")


@pytest.mark.usefixtures("digest_cache")
def test_content_hash_reads_exactly_the_members_the_loader_reads(tmp_path: Path) -> None:
    """A folder linking elsewhere (``zz_link -> /usr`` read 6 GB in 81 s) costs a stat."""
    trx = Path(example_trx(tmp_path, "bundle"))
    outside = tmp_path / "outside"
    outside.mkdir()
    big = outside / "big.bin"
    big.write_bytes(bytes(8 << 20))
    (trx / "zz_link").symlink_to(outside, target_is_directory=True)
    (trx / "dps" / "w.float32").symlink_to(big)  # a member linking outside: refused
    (trx / ".DS_Store").write_bytes(bytes(1 << 20))  # hidden: not a member
    members = [p for p in trx.rglob("*") if p.is_file() and not p.is_symlink()
               and not p.name.startswith(".")]
    _hashing.reset_stats()
    first = path_digest(trx, "content")
    assert STATS["files_read"] == len(members)
    assert STATS["bytes_read"] == sum(p.stat().st_size for p in members)
    big.write_bytes(bytes(1 << 20))  # what a refused link points to is never read
    (trx / ".DS_Store").write_bytes(b"changed")
    assert path_digest(trx, "content") == first
    (trx / "dps" / "w.float32").unlink()  # but the entries themselves are hashed
    assert path_digest(trx, "content") != first


def test_missing_path_and_bad_method(tmp_path: Path) -> None:
    assert path_digest(tmp_path / "nope", "content") == "missing"
    with pytest.raises(ValueError, match="unknown hash method"):
        path_digest(tmp_path, "sha1")


def test_fingerprint_walks_containers(tmp_path: Path) -> None:
    a = example_trx(tmp_path, "a.trx")
    out = fingerprint({"x": [a, (a, 3)]}, "timestamp")
    assert out[0][0] == "x"
    assert out[0][1][0][0] == a and out[0][1][1][1] == 3


# ----------------------------------------------------------------- input specs
class _PlainSpec(BaseInterfaceInputSpec):
    in_dir = Directory(exists=True)
    in_zip = File(exists=True)
    level = traits.Int()


class _TrxSpec(TrxInputSpec):
    in_dir = TrxPath(exists=True)
    in_zip = TrxPath(exists=True)
    level = traits.Int()


@pytest.mark.parametrize("method", METHODS)
def test_trx_spec_sees_what_nipype_misses(tmp_path: Path, method: str) -> None:
    folder = Path(example_trx(tmp_path, "bundle"))
    zipped = example_trx(tmp_path, "bundle.trx")
    values = dict(in_dir=str(folder), in_zip=zipped, level=3)
    plain, ours = _PlainSpec(**values), _TrxSpec(**values)
    plain_before, ours_before = plain.get_hashval(method)[1], ours.get_hashval(method)[1]
    rewrite_same_size(folder / "positions.3.float32")
    assert plain.get_hashval(method)[1] == plain_before  # Nipype: a stale cache
    assert ours.get_hashval(method)[1] != ours_before
    hashed = dict(ours.get_hashval(method)[0])
    assert hashed["level"] == 3 and hashed["in_zip"][0] == zipped


def test_trx_spec_hashes_other_inputs_as_nipype_does(tmp_path: Path) -> None:
    class Plain(BaseInterfaceInputSpec):
        level = traits.Float()
        names = traits.List(traits.Str)
        skip = traits.Int(nohash=True)

    class Ours(TrxInputSpec):
        level = traits.Float()
        names = traits.List(traits.Str)
        skip = traits.Int(nohash=True)

    values = dict(level=0.5, names=["a", "b"], skip=3)
    assert Ours(**values).get_hashval("content") == Plain(**values).get_hashval("content")


def test_lists_of_trx_paths(tmp_path: Path) -> None:
    class Spec(TrxInputSpec):
        in_files = TrxPathList(mandatory=True)

    a, b = example_trx(tmp_path, "a"), example_trx(tmp_path, "b.trx")
    spec = Spec(in_files=[a, b])
    before = spec.get_hashval("timestamp")[1]
    member = Path(a) / "offsets.uint64"
    st = member.stat()
    member.write_bytes(np.zeros(st.st_size // 8, "<u8").tobytes())
    assert spec.get_hashval("timestamp")[1] != before
    assert zipfile.is_zipfile(b)


@pytest.mark.parametrize("method", ["timestamp", "content"])
def test_trk_fingerprint_follows_its_groups_sidecar(tmp_path: Path, method: str) -> None:
    """The groups sidecar changes what a TRK reads as, so it changes its fingerprint."""
    trk = tmp_path / "b.trk"
    trk.write_bytes(b"TRACK" + bytes(995))
    side = tmp_path / "b.trk.groups.json"
    without = fingerprint(str(trk), method)
    side.write_text('{"groups": {"0": "AF"}}', encoding="utf-8")
    with_one = fingerprint(str(trk), method)
    side.write_text('{"groups": {"0": "CST"}}', encoding="utf-8")
    os.utime(side, ns=(10**18, 10**18))  # another mtime, for timestamp hashing
    other = fingerprint(str(trk), method)
    assert len({str(without), str(with_one), str(other)}) == 3
    side.unlink()
    assert fingerprint(str(trk), method) == without
