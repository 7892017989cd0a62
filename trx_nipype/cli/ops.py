"""The single operations of ``trx-nipype``: straight calls into the core, no Nipype.

Each ``cmd_*`` function takes the parsed arguments and returns an exit code;
errors are raised and turned into one line and an exit code by
:func:`trx_nipype.cli.main.main`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..core import load, save, validate
from ..core.formats import OUTPUT_CHOICES
from ..core.naming import unique_safe_names
from ..core.summary import summarize


def tractogram_info(path: str, reference: str | None = None) -> dict[str, Any]:
    """What ``trx-nipype info --json`` prints (:func:`trx_nipype.core.summary.summarize`)."""
    _exists(path)
    return summarize(path, reference=reference)


def _fmt_table(table: dict[str, dict[str, Any]]) -> str:
    if not table:
        return "-"
    return ", ".join(f"{k} ({v['dtype']}" + (f" x{v['ncols']})" if v["ncols"] > 1 else ")")
                     for k, v in table.items())


def format_info(info: dict[str, Any]) -> str:
    """The human-readable ``info`` text."""
    kind = info["container"] + (f", {info['compression']}" if info["compression"] else "")
    lens = info["lengths"]
    groups = ", ".join(f"{g} {n}" for g, n in info["groups"].items()) or "-"
    affine = "  ".join("[" + " ".join(f"{v:g}" for v in row) + "]" for row in info["affine"])
    ngroups = f"groups ({len(info['groups'])})"
    lines = [
        f"{info['path']} ({kind})",
        f"  streamlines  {info['nb_streamlines']}",
        f"  vertices     {info['nb_vertices']}",
        f"  lengths      {lens['min']}..{lens['max']} (mean {lens['mean']:g})",
        f"  dtypes       positions {info['positions_dtype']}, offsets {info['offsets_dtype']}",
        f"  dimensions   {' x '.join(str(d) for d in info['dimensions'])}",
        f"  affine       {affine}",
        f"  {ngroups:13s}{groups}",
        f"  dps          {_fmt_table(info['dps'])}",
        f"  dpv          {_fmt_table(info['dpv'])}",
    ]
    for group, table in info["dpg"].items():
        lines.append(f"  dpg {group:8s} {_fmt_table(table)}")
    lines.extend(f"  warning      {w}" for w in info["warnings"])
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """``trx-nipype info FILE [--json]``."""
    infos = [tractogram_info(p, args.reference) for p in args.inputs]
    if args.json:
        print(json.dumps(infos[0] if len(infos) == 1 else infos, indent=2))
    else:
        print("\n\n".join(format_info(i) for i in infos))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """``trx-nipype validate FILE... [--deep] [--json]``: exit 3 if any file is invalid."""
    import sys

    reports = [validate(p, deep=args.deep) for p in args.inputs]
    if args.json:
        payload = [r.as_dict() for r in reports]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
    for r in reports:
        if r.ok and not args.json:
            print(f"{r.path}: valid TRX ({r.container}, {r.nb_streamlines} streamlines, "
                  f"{r.nb_vertices} vertices)")
            for w in r.warnings:
                print(f"{r.path}: warning: {w}")
        elif not r.ok:
            print(f"trx-nipype: error: {r.errors[0]}", file=sys.stderr)
    return 0 if all(r.ok for r in reports) else 3


def cmd_convert(args: argparse.Namespace) -> int:
    """``trx-nipype convert IN OUT [--reference REF] ...``."""
    from ..core.convert import convert

    _exists(args.input, args.reference)
    out = convert(args.input, args.output, reference=args.reference,
                  positions_dtype=args.positions_dtype, offsets_dtype=args.offsets_dtype,
                  compression=args.compression, bbox_check=not args.no_bbox_check,
                  keep_outside=not args.drop_outside)
    print(f"{out}")
    return 0


def cmd_concatenate(args: argparse.Namespace) -> int:
    """``trx-nipype concatenate A B ... -o OUT [--group-by-input] ...``."""
    from ..core import concatenate

    _exists(*args.inputs)
    if args.group_names and not args.group_by_input:
        raise _Usage("--group-names needs --group-by-input")
    if args.group_names and len(args.group_names) != len(args.inputs):
        raise _Usage(f"--group-names has {len(args.group_names)} names for "
                     f"{len(args.inputs)} inputs")
    groups = args.select_group
    if groups and len(groups) not in (1, len(args.inputs)):
        raise _Usage(f"--select-group takes one group for every input or one per input: "
                     f"{len(groups)} for {len(args.inputs)} inputs")
    out = concatenate(args.inputs, args.output, group_by_input=args.group_by_input,
                      group_names=args.group_names or None, delete_dps=args.delete_dps,
                      delete_dpv=args.delete_dpv, delete_groups=args.delete_groups,
                      delete_dpg=args.delete_dpg, positions_dtype=args.positions_dtype,
                      offsets_dtype=args.offsets_dtype, compression=args.compression,
                      groups=(groups[0] if len(groups) == 1 else groups) if groups else None,
                      nb_streamlines=args.nb_streamlines, seed=args.seed)
    return _report_written(out)


def cmd_select_group(args: argparse.Namespace) -> int:
    """``trx-nipype select-group IN G1 [G2 ...] -o OUT [--drop-groups]``."""
    _exists(args.input)
    with load(args.input) as trx:
        view = trx.select_groups(args.groups)
        if args.drop_groups:
            view.groups, view.dpg = {}, {}
        save(view, args.output, compression=args.compression,
             positions_dtype=args.positions_dtype)
    return _report_written(args.output)


def cmd_resize(args: argparse.Namespace) -> int:
    """``trx-nipype resize IN -o OUT [-n N [--random [--seed S]]]``."""
    _exists(args.input)
    if args.random and args.nb_streamlines is None:
        raise _Usage("--random needs -n/--nb-streamlines")
    with load(args.input) as trx:
        if args.random:
            view = trx.sample(args.nb_streamlines, seed=args.seed)
        else:
            view = trx.resize(nb_streamlines=args.nb_streamlines)
        save(view, args.output, compression=args.compression,
             positions_dtype=args.positions_dtype)
    return _report_written(args.output)


def cmd_split_groups(args: argparse.Namespace) -> int:
    """``trx-nipype split-groups IN -o DIR [--format FMT] [--reference REF]``."""
    from ..core.convert import save_bundle

    _exists(args.input, args.reference)
    ext = OUTPUT_CHOICES[args.format][0]
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(args.input.rstrip("/")).name
    for suffix in (".trx", ".zip"):
        stem = stem.removesuffix(suffix)
    with load(args.input) as trx:
        if not trx.groups:
            raise ValueError(f"{args.input}: no groups to split")
        for group, safe in unique_safe_names(sorted(trx.groups)).items():
            dest = out_dir / f"{stem}_{safe}{ext}"
            view = trx.get_group(group)
            save_bundle(view, dest, reference=args.reference)
            print(f"{dest}\t{len(view)} streamlines")
    return 0


class _Usage(ValueError):
    """A wrong combination of options (exit code 2)."""


def _exists(*paths: str | None) -> None:
    for path in paths:
        if path is not None and not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file or directory")


def _report_written(path: str | os.PathLike) -> int:
    with load(path) as trx:
        groups = ", ".join(f"{g} {len(i)}" for g, i in sorted(trx.groups.items()))
        print(f"{path}: {len(trx)} streamlines, {trx.nb_vertices} vertices"
              + (f"; groups: {groups}" if groups else ""))
    return 0
