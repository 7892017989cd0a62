"""Property-based mutation of valid TRK and TCK files (plain and gzipped).

Guarantee: every mutated TRK/TCK input -- bit flips, truncations in the
header, the first record, the middle and at the end marker, header fields
edited to lie (TRK ``n_count``, ``hdr_size``, ``n_scalars``, ``n_properties``,
``dim``, ``voxel_size``, ``vox_to_ras``, byte order, ``version``; TCK ``count``,
``file: . <offset>``, ``datatype``, a missing ``END``, a broken NaN/Inf
layout), huge declared sizes, gzip bombs (a cut base with tens of megabytes
of one pattern inflated from a few kilobytes) -- either loads with
:func:`load_any` *and* converts to TRX with :func:`convert` to the same
streamlines, or raises :class:`TrxFormatError` naming the file; never another
exception, never a hang, never an allocation far beyond the file's size, and
for a refused bomb, never one beyond a few read chunks. ``TRX_FUZZ_EXAMPLES``
scales the number of cases, as in ``test_fuzz_trx.py``.
"""

from __future__ import annotations

import gzip
import importlib.resources
import os
import re
import shutil
import tempfile
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trx_nipype.core import TrxFile, TrxFormatError, convert, load, load_any, save
from trx_nipype.core.formats.trk import CHUNK_BYTES, HEADER_DTYPE, HEADER_SIZE
from trx_nipype.core.reference import space_from_reference

N_EXAMPLES = int(os.environ.get("TRX_FUZZ_EXAMPLES", "500"))
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

NIB = Path(str(importlib.resources.files("nibabel") / "tests" / "data"))
#: the space of nibabel's standard.nii.gz (read once: the reference is not what is fuzzed)
REFERENCE = space_from_reference(NIB / "standard.nii.gz")
SCRATCH = Path(tempfile.mkdtemp(prefix="trx-fuzz-streamlines-"))


def _synthetic(suffix: str) -> bytes:
    """A small TRK (with scalars and properties) or TCK written by our converter."""
    rng = np.random.default_rng(0)
    lengths = np.array([5, 1, 7, 3, 4])
    v = int(lengths.sum())
    trx = TrxFile.from_arrays(
        rng.uniform(-20, 20, (v, 3)).astype(np.float32), lengths=lengths,
        affine=np.diag([2.0, 2.0, 2.0, 1.0]), dimensions=[40, 40, 40],
        dpv={"fa": rng.random(v).astype(np.float32)},
        dps={"w": rng.random(len(lengths)).astype(np.float32),
             "rgb": rng.random((len(lengths), 3)).astype(np.float32)})
    root = Path(tempfile.mkdtemp(dir=SCRATCH))
    save(trx, root / "base.trx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(root / "base.trx", root / f"base{suffix}")
    data = (root / f"base{suffix}").read_bytes()
    shutil.rmtree(root)
    return data


#: name -> (suffix, bytes) of the valid files that are mutated
BASES: dict[str, tuple[str, bytes]] = {
    "synthetic.trk": (".trk", _synthetic(".trk")),
    "synthetic.tck": (".tck", _synthetic(".tck")),
    "standard.trk": (".trk", (NIB / "standard.trk").read_bytes()),
    "standard.tck": (".tck", (NIB / "standard.tck").read_bytes()),
}
TRK_BASES = sorted(k for k in BASES if k.endswith(".trk"))
TCK_BASES = sorted(k for k in BASES if k.endswith(".tck"))


def tck_data_offset(data: bytes) -> int:
    """Where the coordinates of a (valid) TCK file start."""
    return int(re.search(rb"\nfile: \. (\d+)", data).group(1))


def regions(name: str) -> dict[str, tuple[int, int]]:
    """Byte ranges of the header, the first record, the middle and the end of a base."""
    suffix, data = BASES[name]
    if suffix == ".trk":
        start = HEADER_SIZE
        rec = 3 + int(np.frombuffer(data, HEADER_DTYPE, 1)["n_scalars"][0])
        nprops = int(np.frombuffer(data, HEADER_DTYPE, 1)["n_properties"][0])
        first = start + 4 * (1 + int(np.frombuffer(data, "<i4", 1, start)[0]) * rec + nprops)
        end_marker = 4 * (rec + nprops)  # the last point and the properties
    else:
        start = tck_data_offset(data)
        xyz = np.frombuffer(data, "<f4", offset=start).reshape(-1, 3)
        first = start + 12 * (int(np.flatnonzero(np.isnan(xyz[:, 0]))[0]) + 1)
        end_marker = 24  # the last delimiter and the Inf triplet
    return {"header": (0, start), "first record": (start, first),
            "middle": (first, len(data) - end_marker), "end": (len(data) - end_marker, len(data))}


def exercise(path: Path, size: int, refused_peak: int | None = None) -> None:
    """Load and convert ``path``; both succeed alike, or a TrxFormatError names it.

    ``refused_peak``: when given, a refused input must also have cost at most that
    many bytes (a bomb's refusal is bounded by the read chunk, not by ``size``).
    """
    reference = REFERENCE if path.name.endswith((".tck", ".tck.gz")) else None
    out = SCRATCH / "converted.trx"
    refused = False
    tracemalloc.start()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            loaded = load_any(path, reference=reference)
            with loaded:
                n, positions = len(loaded), np.array(loaded.positions)
                for table in (loaded.dps, loaded.dpv):
                    for key in table:
                        np.asarray(table[key]).sum()
                list(loaded.streamlines[: min(n, 3)])
            convert(path, out, reference=reference)
        with load(out) as again:
            assert len(again) == n
            np.testing.assert_array_equal(again.positions, positions)
    except TrxFormatError as exc:
        assert str(path) in str(exc), exc
        refused = True
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 50 * size + (8 << 20), f"peak {peak} bytes for a {size}-byte input"
    if refused and refused_peak is not None:
        assert peak < refused_peak, f"peak {peak} bytes to refuse a {size}-byte input"


def _target(data: bytes, suffix: str, gz: bool) -> Path:
    path = SCRATCH / (f"case{suffix}.gz" if gz else f"case{suffix}")
    if gz:
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


FLIPS = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                 min_size=1, max_size=6)


@FUZZ
@given(name=st.sampled_from(sorted(BASES)), flips=FLIPS,
       region=st.sampled_from(["header", "first record", "middle", "end", "anywhere"]),
       gz=st.booleans())
def test_bit_flips(name: str, flips: list[tuple[float, int]], region: str, gz: bool) -> None:
    suffix, base = BASES[name]
    lo, hi = regions(name).get(region, (0, len(base)))
    data = bytearray(base)
    for where, bit in flips:
        data[lo + int(where * (hi - lo))] ^= 1 << bit
    exercise(_target(bytes(data), suffix, gz), len(data))


@FUZZ
@given(name=st.sampled_from(sorted(BASES)),
       region=st.sampled_from(["header", "first record", "middle", "end"]),
       where=st.floats(0, 1), junk=st.binary(max_size=24), gz=st.booleans())
def test_truncations_in_every_region(name: str, region: str, where: float, junk: bytes,
                                     gz: bool) -> None:
    suffix, base = BASES[name]
    lo, hi = regions(name)[region]
    data = base[: lo + int(where * (hi - lo))] + junk
    exercise(_target(data, suffix, gz), len(data))


@FUZZ
@given(name=st.sampled_from(sorted(BASES)), cut=st.floats(0, 1, exclude_max=True))
def test_truncated_gzip_streams(name: str, cut: float) -> None:
    suffix, base = BASES[name]
    packed = gzip.compress(base, mtime=0)
    path = SCRATCH / f"case{suffix}.gz"
    path.write_bytes(packed[: int(cut * len(packed))])
    exercise(path, len(base))


#: patterns that gzip bombs repeat: zeros (TRK: empty records; TCK: one endless point run),
#: 0xff (TRK: negative counts; TCK: NaN delimiters), a huge count / float, a count of 1,
#: NaN and Inf triplets
BOMB_FILLS = [b"\x00", b"\xff", b"\x7f\x7f\x7f\x7f", b"\x01\x00\x00\x00",
              np.full(3, np.nan, "<f4").tobytes(), np.full(3, np.inf, "<f4").tobytes()]
#: what each bomb inflates to (from a few kilobytes), and the most its refusal may cost
#: (traced allocations): the readers' working set over a few 16 MiB read chunks (about
#: 130 MB measured), whatever the bomb claims -- readers that held what it claims reached
#: gigabytes
BOMB_BYTES = 48 << 20
BOMB_REFUSED_PEAK = 10 * CHUNK_BYTES


@settings(FUZZ, max_examples=max(N_EXAMPLES // 20, 10))
@example(name="standard.trk", region="first record", where=0.5, fill=b"\x00", tail=False)
@example(name="synthetic.trk", region="first record", where=0.0, fill=b"\x7f\x7f\x7f\x7f",
         tail=True)
@example(name="synthetic.tck", region="middle", where=0.5, fill=b"\x00", tail=False)
@given(name=st.sampled_from(sorted(BASES)),
       region=st.sampled_from(["header", "first record", "middle", "end"]),
       where=st.floats(0, 1), fill=st.sampled_from(BOMB_FILLS), tail=st.booleans())
def test_gzip_bombs_in_every_region(name: str, region: str, where: float, fill: bytes,
                                    tail: bool) -> None:
    """A gzipped base cut anywhere, with ~48 MiB of one repeated pattern (a few KB once
    gzipped) and maybe the rest of the base after it: loads and converts alike, or is
    refused naming the file -- then in memory bounded by the read chunk (the readers grow
    past it only for a record the file is shown to hold)."""
    suffix, base = BASES[name]
    lo, hi = regions(name)[region]
    cut = lo + int(where * (hi - lo))
    member = gzip.compress(fill * ((8 << 20) // len(fill)), mtime=0)
    path = SCRATCH / f"bomb{suffix}.gz"
    with open(path, "wb") as fh:  # a multi-member gzip stream
        fh.write(gzip.compress(base[:cut], mtime=0))
        for _ in range(BOMB_BYTES // (8 << 20)):
            fh.write(member)
        if tail:
            fh.write(gzip.compress(base[cut:], mtime=0))
    inflated = len(base) + BOMB_BYTES
    exercise(path, inflated, refused_peak=BOMB_REFUSED_PEAK)


# ------------------------------------------------------------------------ TRK
I32 = st.one_of(st.integers(-3, 40), st.sampled_from([2**31 - 1, -(2**31), 2**24, 1000, 999]))
I16 = st.one_of(st.integers(-3, 12), st.sampled_from([2**15 - 1, -(2**15), 255, 256]))
F32 = st.one_of(st.floats(width=32), st.sampled_from([0.0, -1.0, 1e-30, 3e38]))
AFFINES = st.one_of(
    st.sampled_from(["zero", "nan", "inf", "singular", "rank2", "last0"]),
    st.lists(F32, min_size=16, max_size=16))


def _affine(kind: str | list[float]) -> np.ndarray:
    if isinstance(kind, list):
        return np.array(kind, np.float32).reshape(4, 4)
    a = np.diag([2.0, 2.0, 2.0, 1.0]).astype(np.float32)
    if kind == "zero":
        a[:] = 0
    elif kind == "nan":
        a[1, 1] = np.nan
    elif kind == "inf":
        a[0, 3] = np.inf
    elif kind == "singular":
        a[:3, :3] = 1.0
    elif kind == "rank2":
        a[2, :3] = 0
    else:
        a[3, 3] = 0
    return a


@st.composite
def trk_header_edits(draw) -> list[tuple[str, object]]:
    """(field, value) pairs that make a TRK header lie."""
    fields = {
        "n_count": I32, "hdr_size": I32, "version": I32, "n_scalars": I16,
        "n_properties": I16, "dim": st.lists(I16, min_size=3, max_size=3),
        "voxel_size": st.lists(F32, min_size=3, max_size=3), "vox_to_ras": AFFINES,
        "voxel_order": st.sampled_from([b"", b"RAS", b"LPS", b"XYZ", b"RRR", b"\xff\x00"]),
        "scalar_name": st.binary(max_size=20), "property_name": st.binary(max_size=20),
        "id_string": st.sampled_from([b"TRACK", b"TRACk", b""]),
        "byte order": st.just(None), "first count": I32,
    }
    keys = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True))
    return [(k, draw(fields[k])) for k in keys]


def edit_trk(base: bytes, edits: list[tuple[str, object]]) -> bytes:
    """``base`` with header fields (and the first record's point count) replaced."""
    hdr = np.frombuffer(base[:HEADER_SIZE], HEADER_DTYPE).copy()
    body = bytearray(base[HEADER_SIZE:])
    swap = False
    for key, value in edits:
        if key == "byte order":
            swap = True  # a big-endian header over little-endian records
        elif key == "first count":
            body[:4] = np.int32(value).astype("<i4").tobytes()
        elif key == "vox_to_ras":
            hdr[key] = _affine(value)
        elif key in ("scalar_name", "property_name"):
            hdr[key][0, 0] = value
        else:
            with np.errstate(all="ignore"):
                hdr[key] = value
    if swap:
        hdr = hdr.astype(HEADER_DTYPE.newbyteorder(">"))
    return hdr.tobytes() + bytes(body)


@FUZZ
@given(name=st.sampled_from(TRK_BASES), edits=trk_header_edits(), gz=st.booleans())
def test_lying_trk_headers(name: str, edits: list[tuple[str, object]], gz: bool) -> None:
    data = edit_trk(BASES[name][1], edits)
    exercise(_target(data, ".trk", gz), len(data))


# ------------------------------------------------------------------------ TCK
@st.composite
def tck_edits(draw) -> bytes:
    """A TCK base whose header text lies or whose NaN/Inf layout is broken."""
    name = draw(st.sampled_from(TCK_BASES))
    data = BASES[name][1]
    offset = tck_data_offset(data)
    head, body = data[:offset].decode("latin1"), bytearray(data[offset:])
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["count", "file", "datatype", "END", "magic", "duplicate",
                                     "garbage line", "layout", "huge"]))
        if what == "count":
            value = draw(st.sampled_from(["-1", "0", "1", "999999999999", "x", "", "3.5",
                                          str(2**70)]))
            head = re.sub(r"count: [^\n]*", f"count: {value}", head)
        elif what == "file":
            value = draw(st.one_of(
                st.integers(-5, len(data) + 20).map(lambda n: f". {n}"),
                st.sampled_from([".", "other.dat 0", f". {2**62}", ". 1e3", "", f"./x {offset}",
                                 f". {offset} extra"])))
            head = re.sub(r"file: [^\n]*", f"file: {value}", head)
        elif what == "datatype":
            value = draw(st.sampled_from(["Float32BE", "Float64LE", "Float64BE", "Int32LE",
                                          "float32le", "", "Float16LE"]))
            head = re.sub(r"datatype: [^\n]*", f"datatype: {value}", head)
        elif what == "END":
            head = head.replace("END\n", draw(st.sampled_from(["", "END", "ENDX\n", "end\n"])))
        elif what == "magic":
            head = draw(st.sampled_from(["mrtrix track", "", "MRTRIX TRACKS"])) + \
                head[len("mrtrix tracks"):]
        elif what == "duplicate":
            head = head.replace("datatype:", "file: . 0\ndatatype:", 1)
        elif what == "garbage line":
            head = head.replace("\n", draw(st.sampled_from(
                ["\nno colon here\n", "\n\x00\xff\n", "\n:\n", "\n" + "k" * 5000 + ": v\n"])), 1)
        elif what == "huge":
            body[:12] = np.array([3e38, -3e38, 1e30], "<f4").tobytes()
        else:
            triplets = len(body) // 12
            at = 12 * draw(st.integers(0, max(triplets - 1, 0)))
            value = draw(st.sampled_from([
                (np.nan, np.nan, np.nan), (np.inf, np.inf, np.inf), (np.nan, 1.0, 2.0),
                (np.inf, np.nan, 0.0), (-np.inf, -np.inf, -np.inf), (1.0, 2.0, 3.0)]))
            body[at:at + 12] = np.array(value, "<f4").tobytes()
            if draw(st.booleans()):
                del body[len(body) - draw(st.integers(1, 24)):]  # lose the end marker
    return head.encode("latin1") + bytes(body)


@FUZZ
@given(data=tck_edits(), gz=st.booleans())
def test_lying_tck_headers_and_broken_layouts(data: bytes, gz: bool) -> None:
    exercise(_target(data, ".tck", gz), len(data))


def test_unmutated_bases_load_and_convert() -> None:
    """The bases themselves load (a fuzz run over unreadable bases would prove nothing)."""
    for name, (suffix, data) in BASES.items():
        path = _target(data, suffix, gz=False)
        reference = REFERENCE if suffix == ".tck" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with load_any(path, reference=reference) as trx:
                assert len(trx) > 0, name
