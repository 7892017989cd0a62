"""Concatenating tractograms: one streaming pass straight into the destination.

:func:`concatenate` builds the output's member streams (the same
:class:`~trx_nipype.core.saving.MemberStream` objects that
:func:`~trx_nipype.core.save` uses) whose chunk generators chain the inputs'
chunks one after the other: positions and per-vertex data are copied (or, for
views, gathered) one chunk at a time, offsets are a running sum of the
lengths, group indices are shifted by each input's first streamline. Nothing
is staged in a temporary copy, and anonymous memory stays at a few chunks
whatever the total size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .arrays import identical_arrays, row_width
from .dtypes import (
    DTYPES,
    OFFSET_DTYPES,
    POSITION_DTYPES,
    check_dtype,
    dtype_name,
    format_member_name,
)
from .errors import IN_MEMORY, ParameterError, SpaceMismatchError, param
from .loader import load
from .saving import (
    MemberStream,
    check_offsets_dtype,
    length_blocks,
    offsets_chunks,
    row_chunks,
    small_members,
    write_members,
)
from .space import space_mismatch
from .trxfile import CHUNK_VERTICES, TrxFile, group_dtype
from .writer import same_file

log = logging.getLogger(__name__)

_BLOCK = 1 << 20  # streamlines per block for lengths and group indices


#: ``rows(table, key)``: the chunks of one array of a streamed input (``table`` is
#: "positions", "dps" or "dpv"), in row order
RowSource = Callable[[str, str], Iterator[np.ndarray]]


@dataclass(frozen=True)
class ConcatInput:
    """One input of a concatenation (see :func:`concatenation_members`).

    Attributes
    ----------
    trx : TrxFile
        The input: its counts, space, keys, groups, dpg and header, and (unless
        ``rows`` is given) its rows.
    label : str
        How messages name it (``"input 1 (b.trx)"``).
    name : str
        Its group name for ``group_by_input``.
    rows : callable, optional
        For an input streamed from another format: ``rows(table, key)`` yields
        the chunks of one array ("positions"/"positions", "dps"/key,
        "dpv"/key) in row order, re-reading the file, and ``trx`` is a stand-in
        with the right lengths, dtypes, keys and groups whose arrays are not read.
    """

    trx: TrxFile
    label: str
    name: str
    rows: RowSource | None = None



@dataclass(frozen=True)
class _Key:
    name: str
    dtype: np.dtype
    tail: tuple[int, ...]


def _as_list(inputs: Any) -> list[Any]:
    if isinstance(inputs, (str, os.PathLike, TrxFile)):
        return [inputs]
    return list(inputs)


def _input_name(item: Any, trx: TrxFile, i: int) -> str:
    path = trx.shown_path if isinstance(item, TrxFile) else item
    if path is None:
        return f"input_{i}"
    p = Path(path)
    return p.name if p.is_dir() else p.stem


def _shared_keys(what: str, inputs: list[ConcatInput], active: list[int], delete: bool
                 ) -> list[_Key]:
    """Keys present in every active input with the same dtype and number of columns."""
    tables = [getattr(inp.trx, what) for inp in inputs]
    union = sorted(set().union(*(tables[i] for i in active)))
    kept, problems = [], []
    for key in union:
        specs = {}
        for i in active:
            if key in tables[i]:
                dtype, shape = tables[i].spec(key)
                specs[i] = (DTYPES[dtype_name(dtype)], tuple(shape[1:]))
        missing = [inputs[i].label for i in active if i not in specs]
        kinds = {(dt, row_width(tail)) for dt, tail in specs.values()}
        if not missing and len(kinds) == 1:
            dtype, tail = next(iter(specs.values()))
            kept.append(_Key(key, dtype, tail))
            continue
        if missing:
            problems.append(f"{what} {key!r} is missing from {', '.join(missing)}")
        else:
            found = ", ".join(f"{dtype_name(dt)} x {row_width(tail)} in {inputs[i].label}"
                              for i, (dt, tail) in specs.items())
            problems.append(f"{what} {key!r} differs: {found}")
    _raise_or_drop(problems, delete, f"{param(f'delete_{what}', True)} to drop only these keys")
    return kept


def _raise_or_drop(problems: list[str], delete: bool, hint: str) -> None:
    """Raise one error listing ``problems``, or (``delete``) log what is dropped."""
    if problems and not delete:
        raise ParameterError(f"cannot concatenate: {'; '.join(problems)}; pass {hint}")
    for text in problems:
        log.warning("concatenate: dropping %s", text)


def _merged_dpg(inputs: list[ConcatInput], groups: Iterable[str], delete: bool
                ) -> dict[str, dict[str, np.ndarray]]:
    """dpg values equal across the inputs that define them; conflicts raise or are dropped."""
    out: dict[str, dict[str, np.ndarray]] = {}
    problems = []
    for group in groups:
        values: dict[str, list[tuple[str, np.ndarray]]] = {}
        for inp in inputs:
            for key, arr in inp.trx.dpg.get(group, {}).items():
                values.setdefault(key, []).append((inp.label, np.asarray(arr)))
        for key, found in sorted(values.items()):
            first = found[0][1]
            if all(identical_arrays(first, arr) for _, arr in found[1:]):
                out.setdefault(group, {})[key] = first
            else:
                shown = ", ".join(f"{arr.tolist()} ({arr.dtype}) in {label}"
                                  for label, arr in found)
                problems.append(f"dpg {group}/{key} conflicts: {shown}")
    _raise_or_drop(problems, delete, f"{param('delete_dpg', True)} to drop only these entries")
    return out


def _check_spaces(inputs: list[ConcatInput], atol: float) -> None:
    ref = inputs[0]
    for inp in inputs[1:]:
        diff = space_mismatch(ref.trx.affine, ref.trx.dimensions, inp.trx.affine,
                              inp.trx.dimensions, atol)
        if diff:
            raise SpaceMismatchError(inp.trx.shown_path or IN_MEMORY, None,
                                     f"cannot concatenate: {inp.label} is not in the space "
                                     f"of {ref.label}: {diff}")


def _group_names(inputs: list[ConcatInput], group_names: Sequence[str] | None,
                 existing: Iterable[str]) -> list[str]:
    names = [inp.name for inp in inputs] if group_names is None else \
        [str(g) for g in group_names]
    if len(names) != len(inputs):
        raise ParameterError(f"{param('group_names')} has {len(names)} names for "
                             f"{len(inputs)} inputs")
    bad = [g for g in names if not g or "/" in g or "\\" in g or "\x00" in g]
    if bad:
        raise ParameterError(f"{param('group_names')}: invalid group name(s) {bad}: names "
                             "must be non-empty, without slashes")
    dupes = sorted({g for g in names if names.count(g) > 1})
    if dupes:
        raise ParameterError(f"{param('group_by_input', True)}: the inputs would give the "
                             f"same group name(s) {dupes}; pass unique {param('group_names')}")
    clash = sorted(set(names) & set(existing))
    if clash:
        raise ParameterError(f"{param('group_by_input', True)}: group name(s) {clash} already "
                             f"exist in the inputs; pass other {param('group_names')} (or "
                             f"{param('delete_groups', True)})")
    return names


# ------------------------------------------------------------------ streams
def _chained(inputs: list[ConcatInput], table: str, key: str, per: str, dtype: np.dtype,
             tail: tuple[int, ...]) -> Callable[[], Iterator[np.ndarray]]:
    """Chunks of one array, input after input (``per``: "vertices" or "streamlines")."""
    def gen() -> Iterator[np.ndarray]:
        for k, inp in enumerate(inputs):
            trx = inp.trx
            if (trx.nb_vertices if per == "vertices" else len(trx)) == 0:
                continue
            if table == "positions":
                log.info("concatenate: positions of %s (%d/%d): %d streamlines", inp.label,
                         k + 1, len(inputs), len(trx))
            if inp.rows is not None:
                blocks: Iterable[np.ndarray] = (np.asarray(b).astype(dtype, copy=False)
                                                for b in inp.rows(table, key))
            else:
                reader = getattr(trx.source_arrays(), table).reader(key)
                blocks = row_chunks(trx, reader, dtype, per_vertex=per == "vertices",
                                    chunk_vertices=CHUNK_VERTICES)
            for block in blocks:
                yield block.reshape((len(block), *tail))  # (n,) and (n, 1) alike
    return gen


def _pieces(inputs: list[ConcatInput], table: str, key: str, dtype: np.dtype,
            tail: tuple[int, ...]) -> Callable[[], list[Any]] | None:
    """The inputs' members as they are, when the output member is just them end to end.

    None when an input is a view, is streamed from another format (``rows``) or
    stores the key in another dtype or layout.
    """
    tables = [getattr(inp.trx.source_arrays(), table) for inp in inputs]
    for inp, src in zip(inputs, tables, strict=True):
        if key not in src:  # an input without rows (the key is shared by the others)
            continue
        if inp.rows is not None or inp.trx.is_view or \
                DTYPES[dtype_name(src.spec(key)[0])] != dtype or \
                row_width(src.spec(key)[1][1:]) != row_width(tail):
            return None
    return lambda: [src.reader(key) for src in tables if key in src and src.spec(key)[1][0]]


def _lengths_chained(inputs: list[ConcatInput]) -> Iterator[np.ndarray]:
    for inp in inputs:
        yield from length_blocks(inp.trx, _BLOCK)


def _group_stream(name: str, parts: list[tuple[int, np.ndarray | range]], dtype: np.dtype
                  ) -> MemberStream:
    """A group's indices: each input's (shifted by its first row), in blocks."""
    total = sum(len(idx) for _, idx in parts)

    def gen() -> Iterator[np.ndarray]:
        for base, idx in parts:
            for a in range(0, len(idx), _BLOCK):
                block = idx[a:a + _BLOCK]
                if isinstance(block, range):
                    yield np.arange(block.start, block.stop, dtype=dtype)
                else:
                    yield (np.asarray(block, dtype=np.int64) + base).astype(dtype)

    return MemberStream(f"groups/{format_member_name(name, (total,), dtype)}",
                        total * dtype.itemsize, gen)


# --------------------------------------------------------------------- API
def concatenate(inputs: Iterable[str | os.PathLike | TrxFile] | str | os.PathLike | TrxFile,
                out_path: str | os.PathLike, *, group_by_input: bool = False,
                group_names: Sequence[str] | None = None, delete_dps: bool = False,
                delete_dpv: bool = False, delete_groups: bool = False,
                delete_dpg: bool = False, positions_dtype: Any = None,
                offsets_dtype: Any = None, compression: str = "stored",
                atol: float = 1e-3, groups: str | Sequence[str] | None = None,
                nb_streamlines: int | str | None = None, seed: int = 0) -> Path:
    """Concatenate tractograms into ``out_path`` in one streaming pass.

    The output is written by the core writer (atomically, through a temporary
    sibling) directly from the inputs' maps, chunk by chunk: no intermediate
    copy, and anonymous memory bounded by a few chunks whatever the total size.
    The streamlines come in input order.

    Parameters
    ----------
    inputs : sequence of path or TrxFile
        TRX files (zips or directories) or :class:`TrxFile` objects (views
        allowed; they are not closed). Zero-streamline inputs and a single
        input are fine.
    out_path : str or os.PathLike
        Destination: ``.trx``/``.zip`` gives a zip, anything else a directory.
    group_by_input : bool
        Add one group per input holding its streamlines, named from the
        input's file stem (``sub-01_AF_L.trx`` -> ``sub-01_AF_L``), its folder
        name for a directory, ``input_<i>`` for an in-memory tractogram.
    group_names : sequence of str, optional
        Names of those groups instead (requires ``group_by_input``; unique).
    delete_dps, delete_dpv : bool
        Drop the dps / dpv keys that are missing from some input or differ in
        dtype or number of columns, instead of raising. Keys that every input
        shares identically are always kept.
    delete_groups : bool
        Drop all the inputs' groups (and so their dpg).
    delete_dpg : bool
        Drop the dpg entries whose values conflict between inputs, instead of
        raising.
    positions_dtype, offsets_dtype : dtype, optional
        Output dtypes; default the widest of the inputs' (offsets become
        uint64 when the vertex count needs it).
    compression : {"stored", "deflate"}
        Zip member compression.
    atol : float
        Absolute tolerance on ``VOXEL_TO_RASMM`` when comparing spaces.
    groups : str or sequence of str, optional
        Take only the streamlines of this group from every input (or of one
        group per input: a sequence as long as ``inputs``), as views: nothing
        is written in between. The inputs' groups and dpg are then dropped
        (``group_by_input`` makes the output's groups).
    nb_streamlines : int or "min", optional
        Keep a seeded random sample of this many streamlines of every
        (selected) input, in file order (``"min"``: the smallest input's
        count, so that every input gives the same number). The sample is
        :meth:`TrxFile.sample` of the selection, exactly what selecting the
        group into a file and sampling that file gives.
    seed : int
        Seed of the samples (the same for every input: an input's sample
        depends only on its own streamlines).

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    ValueError
        If the inputs' spaces differ (naming the input and how), a dps/dpv key
        is mismatched (naming the key and the inputs) without ``delete_dps`` /
        ``delete_dpv``, dpg values conflict without ``delete_dpg``, a
        ``group_by_input`` name is repeated or clashes with an existing group,
        there are no inputs, or ``out_path`` is one of the inputs, or
        ``nb_streamlines`` is more than an input holds.
    KeyError
        If an input has no group ``groups`` names (naming the input and the
        groups it has).

    Notes
    -----
    - Header: the first input's (its extra keys included), with the new counts.
    - Groups: the union of the inputs' group names, re-indexed; an input
      without a group contributes nothing to it.
    - dpg: kept for a group when every input defining the entry agrees.
    - dps/dpv agreement is judged on the inputs that have streamlines (a
      zero-streamline input contributes no rows), or on all inputs when none
      has any; for keys stored 1-D in one input and with one column in
      another, the first input's layout is used.
    """
    items = _as_list(inputs)
    if not items:
        raise ValueError("concatenate: no inputs")
    if group_names is not None and not group_by_input:
        raise ParameterError(f"{param('group_names')} is only used with "
                             f"{param('group_by_input', True)}")
    opened: list[TrxFile] = []
    try:
        prepared = []
        for i, item in enumerate(items):
            if isinstance(item, TrxFile):
                trx = item
            else:
                if same_file(item, out_path):
                    raise ValueError(f"{out_path}: cannot write over input {i}")
                trx = load(item)
                opened.append(trx)
            if trx.path is not None and same_file(trx.path, out_path):
                raise ValueError(f"{out_path}: cannot write over input {i}")
            where = os.path.basename(trx.shown_path) if trx.shown_path else "in memory"
            prepared.append(ConcatInput(trx, f"input {i} ({where})", _input_name(item, trx, i)))
        if groups is not None or nb_streamlines is not None:
            prepared = _selected(prepared, groups, nb_streamlines, seed)
        header, members = concatenation_members(prepared, group_by_input=group_by_input,
                                   group_names=group_names, delete_dps=delete_dps,
                                   delete_dpv=delete_dpv, delete_groups=delete_groups,
                                   delete_dpg=delete_dpg, positions_dtype=positions_dtype,
                                   offsets_dtype=offsets_dtype, atol=atol, dest=out_path)
        log.info("concatenate: %d inputs, %d streamlines, %d vertices -> %s", len(prepared),
                 header["NB_STREAMLINES"], header["NB_VERTICES"], out_path)
        return write_members(out_path, header, members, compression=compression,
                             sources=[inp.trx for inp in prepared])
    finally:
        for trx in opened:
            trx.close()


def _selected(inputs: list[ConcatInput], groups: str | Sequence[str] | None,
              nb_streamlines: int | str | None, seed: int) -> list[ConcatInput]:
    """Each input as the view of its group (groups dropped), then its seeded sample."""
    if groups is not None:
        names = [groups] * len(inputs) if isinstance(groups, str) else [str(g) for g in groups]
        if len(names) != len(inputs):
            raise ValueError(f"groups has {len(names)} names for {len(inputs)} inputs")
        views = []
        for inp, name in zip(inputs, names, strict=True):
            if name not in inp.trx.groups:
                have = ", ".join(sorted(inp.trx.groups)) or "none"
                raise KeyError(f"{inp.label}: no group {name!r}; groups present: {have}")
            view = inp.trx.get_group(name)
            view.groups, view.dpg = {}, {}
            views.append(replace(inp, trx=view))
        inputs = views
    if nb_streamlines is None:
        return inputs
    if nb_streamlines == "min":
        n = min(len(inp.trx) for inp in inputs)
    elif isinstance(nb_streamlines, str) or int(nb_streamlines) < 0:
        raise ValueError(f"nb_streamlines must be a non-negative int or 'min', got "
                         f"{nb_streamlines!r}")
    else:
        n = int(nb_streamlines)
    out = []
    for inp in inputs:
        if n > len(inp.trx):
            raise ValueError(f"cannot draw {n} streamlines from {inp.label}: it has "
                             f"{len(inp.trx)}")
        out.append(replace(inp, trx=inp.trx.sample(n, seed=seed)))
    return out


def concatenation_members(inputs: list[ConcatInput], *, group_by_input: bool = False,
                          group_names: Sequence[str] | None = None, delete_dps: bool = False,
                          delete_dpv: bool = False, delete_groups: bool = False,
                          delete_dpg: bool = False, positions_dtype: Any = None,
                          offsets_dtype: Any = None, atol: float = 1e-3, dest: Any = "output"
                          ) -> tuple[dict[str, Any], list[MemberStream]]:
    """The header and member streams of a concatenation (nothing read yet).

    What :func:`concatenate` writes, for callers whose inputs are not all TRX
    files (see :class:`ConcatInput`): hand the result to
    :func:`~trx_nipype.core.saving.write_members`. The keyword arguments are
    :func:`concatenate`'s; ``dest`` names the output in messages.
    """
    _check_spaces(inputs, atol)
    counts = [len(inp.trx) for inp in inputs]
    n = sum(counts)
    v = sum(inp.trx.nb_vertices for inp in inputs)
    bases = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64).tolist()
    active = [i for i, c in enumerate(counts) if c] or list(range(len(inputs)))

    pos_default = np.result_type(*(inputs[i].trx.positions_dtype for i in active))
    pos_dt = DTYPES[dtype_name(pos_default)] if positions_dtype is None else \
        check_dtype(positions_dtype, POSITION_DTYPES, "positions")
    off_default = np.result_type(*(inp.trx.offsets_dtype for inp in inputs))
    if dtype_name(off_default) not in OFFSET_DTYPES or v > np.iinfo(np.uint32).max:
        off_default = np.dtype("<u8")
    off_dt = DTYPES[dtype_name(off_default)] if offsets_dtype is None else \
        check_dtype(offsets_dtype, OFFSET_DTYPES, "offsets")
    check_offsets_dtype(off_dt, v, dest)

    members = [
        MemberStream(f"offsets.{dtype_name(off_dt)}", (n + 1) * off_dt.itemsize,
                     lambda: offsets_chunks(_lengths_chained(inputs), off_dt)),
        MemberStream(f"positions.3.{dtype_name(pos_dt)}", v * 3 * pos_dt.itemsize,
                     _chained(inputs, "positions", "positions", "vertices", pos_dt, (3,)),
                     _pieces(inputs, "positions", "positions", pos_dt, (3,))),
    ]
    for what, per, rows, delete in (("dps", "streamlines", n, delete_dps),
                                    ("dpv", "vertices", v, delete_dpv)):
        for key in _shared_keys(what, inputs, active, delete):
            shape = (rows, *key.tail)
            members.append(MemberStream(
                f"{what}/{format_member_name(key.name, shape, key.dtype)}",
                rows * row_width(key.tail) * key.dtype.itemsize,
                _chained(inputs, what, key.name, per, key.dtype, key.tail),
                _pieces(inputs, what, key.name, key.dtype, key.tail)))

    group_parts: dict[str, list[tuple[int, np.ndarray | range]]] = {}
    if not delete_groups:
        for i, inp in enumerate(inputs):
            for name, idx in inp.trx.groups.items():
                group_parts.setdefault(name, []).append((bases[i], idx))
    dpg = _merged_dpg(inputs, sorted(group_parts), delete_dpg)
    if group_by_input:
        names = _group_names(inputs, group_names, group_parts)
        for i, name in enumerate(names):
            group_parts[name] = [(0, range(bases[i], bases[i + 1]))]
    gdt = group_dtype(n)
    members.extend(_group_stream(name, group_parts[name], gdt) for name in sorted(group_parts))
    for group in sorted(dpg):
        members.extend(small_members(f"dpg/{group}", dpg[group], per_group=True))

    header = inputs[0].trx.header
    header["NB_STREAMLINES"], header["NB_VERTICES"] = n, v
    return header, members

