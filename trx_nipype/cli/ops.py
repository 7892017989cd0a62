"""The single operations of ``trx-nipype``: each command is one call of the operations layer.

Each ``cmd_*`` function takes the parsed arguments, calls the function of
:mod:`trx_nipype.core.operations` that the Nipype interface of the same
operation calls, prints what it wrote and returns an exit code. Errors are
raised and turned into one line and an exit code by :func:`trx_nipype.cli.main.main`,
which names this command's options where the operation names its parameters
(:func:`~trx_nipype.cli.options.spelling`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..core import validate
from ..core.errors import UsageError
from ..core.formats import OUTPUT_CHOICES
from ..core.operations import (
    concatenate_files,
    convert_file,
    resize,
    select_groups,
    split_groups,
    tractogram_info,
)
from .options import (
    OUTPUT_HELP,
    add_encoding,
    add_force,
    exit_code,
    one_line,
    streamlines_per_subject,
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the single operations to ``trx-nipype``'s subparsers, each with its handler."""
    p = sub.add_parser("info", help="summarize tractograms (counts, space, groups, data)")
    p.add_argument("inputs", nargs="+", metavar="FILE", help="TRX (zip or folder) or TRK, TCK...")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--reference", help="reference image for formats without a space (TCK...)")
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser("validate", help="check TRX files against the format (exit 3 if not)")
    p.add_argument("inputs", nargs="+", metavar="FILE")
    p.add_argument("--deep", action="store_true",
                   help="also read every member (CRCs, finite coordinates)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("convert", help="convert between TRX, TRK, TCK, VTK, ...")
    p.add_argument("input", help="tractogram to convert")
    p.add_argument("output", help="destination; its extension gives the format "
                                  "(no extension: a TRX folder)")
    add_force(p)
    p.add_argument("--reference", help="reference image (NIfTI) for formats without a space")
    p.add_argument("--no-bbox-check", action="store_true",
                   help="do not check that streamlines lie inside the reference grid")
    p.add_argument("--drop-outside", action="store_true",
                   help="drop streamlines outside the reference grid (default: keep, warn)")
    add_encoding(p)
    p.set_defaults(handler=cmd_convert)

    p = sub.add_parser("concatenate", help="concatenate tractograms into one")
    p.add_argument("inputs", nargs="+", metavar="FILE",
                   help="tractograms (TRX, TRK, TCK, ...), in output order")
    p.add_argument("-o", "--output", required=True, help=OUTPUT_HELP)
    add_force(p)
    p.add_argument("--reference", help="reference image for inputs without a space (TCK...)")
    p.add_argument("--group-by-input", action="store_true",
                   help="add one group per input (named after the input's file)")
    p.add_argument("--group-names", nargs="+", metavar="NAME",
                   help="names of those groups (one per input)")
    p.add_argument("--delete-dps", action="store_true",
                   help="drop data-per-streamline keys not shared by every input")
    p.add_argument("--delete-dpv", action="store_true",
                   help="drop data-per-vertex keys not shared by every input")
    p.add_argument("--delete-groups", action="store_true", help="drop the inputs' groups")
    p.add_argument("--delete-dpg", action="store_true",
                   help="drop data-per-group entries that conflict between inputs")
    p.add_argument("--select-group", nargs="+", metavar="GROUP",
                   help="take only this group from every input (or one group per input); "
                        "the inputs' groups are then dropped")
    p.add_argument("--nb-streamlines", type=streamlines_per_subject, metavar="N|min",
                   help="keep a seeded random N streamlines of every (selected) input, in "
                        "file order ('min': the smallest input's count)")
    p.add_argument("--seed", type=int, default=0, help="seed of --nb-streamlines")
    add_encoding(p)
    p.set_defaults(handler=cmd_concatenate)

    p = sub.add_parser("select-group", help="keep the streamlines of one or more groups")
    p.add_argument("input", help="tractogram with groups (TRX, or TRK with its .groups.json)")
    p.add_argument("groups", nargs="+", metavar="GROUP")
    p.add_argument("-o", "--output", required=True, help=OUTPUT_HELP)
    add_force(p)
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep-groups", action="store_true",
                      help="keep the group memberships (re-indexed) and their dpg in the "
                           "output (default: the output is the selection, without groups)")
    keep.add_argument("--drop-groups", dest="keep_groups", action="store_false",
                      help=argparse.SUPPRESS)  # the default since 0.2; older scripts pass it
    add_encoding(p, offsets=False)
    p.set_defaults(keep_groups=False, handler=cmd_select_group)

    p = sub.add_parser("resize", help="keep N streamlines (first N or a seeded random subset), "
                                      "or trim unused capacity")
    p.add_argument("input", help="tractogram (TRX, TRK, TCK, ...)")
    p.add_argument("-o", "--output", required=True, help=OUTPUT_HELP)
    add_force(p)
    p.add_argument("--reference", help="reference image for an input without a space (TCK...) "
                                       "written as TRX or TRK")
    p.add_argument("-n", "--nb-streamlines", type=int, help="streamlines to keep")
    p.add_argument("--random", action="store_true", help="a random subset, in file order")
    p.add_argument("--seed", type=int, default=0, help="seed of the random subset")
    add_encoding(p, offsets=False)
    p.set_defaults(handler=cmd_resize)

    p = sub.add_parser("split-groups", help="write one file per group")
    p.add_argument("input", help="tractogram with groups (TRX, or TRK with its .groups.json)")
    p.add_argument("-o", "--output", required=True,
                   help="output folder (created if missing), for <input>_<group>.<format>")
    add_force(p, "the files of the same names already in the folder")
    p.add_argument("--format", choices=list(OUTPUT_CHOICES), default="trx",
                   help="format of the files (default: trx)")
    p.add_argument("--reference", help="reference image for formats that need one")
    p.set_defaults(handler=cmd_split_groups)


# ------------------------------------------------------------------ info / validate
def _fmt_table(table: dict[str, dict[str, Any]]) -> str:
    if not table:
        return "-"
    return ", ".join(f"{k} ({v['dtype']}" + (f" x{v['ncols']})" if v["ncols"] > 1 else ")")
                     for k, v in table.items())


def format_info(info: dict[str, Any]) -> str:
    """The human-readable ``info`` text."""
    kind = info["container"] + (f", {info['compression']}" if info["compression"] else "")
    lens = info["points_per_streamline"]
    mm = info.get("length_mm")
    groups = ", ".join(f"{g} {n}" for g, n in info["groups"].items()) or "-"
    if info["affine"] is None:
        space = "-  (the file carries no space; --reference gives one)"
        dims = affine = "-"
    else:
        dims = " x ".join(str(d) for d in info["dimensions"])
        affine = "  ".join("[" + " ".join(f"{v:g}" for v in row) + "]" for row in info["affine"])
        space = None
    ngroups = f"groups ({len(info['groups'])})"
    lines = [
        f"{info['path']} ({kind})",
        f"  streamlines  {info['nb_streamlines']}",
        f"  vertices     {info['nb_vertices']}",
        f"  points       {lens['min']}..{lens['max']} per streamline (mean {lens['mean']:g})",
        *([f"  length       {mm['min']:g}..{mm['max']:g} mm (mean {mm['mean']:g})"] if mm else []),
        f"  dtypes       positions {info['positions_dtype']}, offsets {info['offsets_dtype']}",
        f"  dimensions   {dims}",
        f"  affine       {affine}",
        *([f"  space        {space}"] if space else []),
        f"  {ngroups:13s}{groups}",
        f"  dps          {_fmt_table(info['dps'])}",
        f"  dpv          {_fmt_table(info['dpv'])}",
    ]
    for group, table in info["dpg"].items():
        lines.append(f"  dpg {group:8s} {_fmt_table(table)}")
    lines.extend(f"  warning      {w}" for w in info["warnings"])
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """``trx-nipype info FILE... [--json] [--reference REF]``: the files that can be read
    are described, the others reported (one line each, exit code of the first)."""
    import sys

    infos, failed = [], []
    for path in args.inputs:
        try:
            infos.append(tractogram_info(path, args.reference))
        except (OSError, ValueError, KeyError) as exc:
            if len(args.inputs) == 1:
                raise  # one file: the usual error
            failed.append(exc)
    if args.json and infos:
        print(json.dumps(infos[0] if len(args.inputs) == 1 else infos, indent=2))
    elif infos:
        print("\n\n".join(format_info(i) for i in infos))
    for exc in failed:
        print(f"trx-nipype: error: {one_line(exc, 'info')}", file=sys.stderr)
    return exit_code(failed[0]) if failed else 0


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


# ------------------------------------------------------------------ operations
def cmd_convert(args: argparse.Namespace) -> int:
    """``trx-nipype convert IN OUT [--reference REF] [-f] ...``."""
    files = convert_file(args.input, args.output, reference=args.reference,
                         overwrite=args.force, compression=args.compression,
                         positions_dtype=args.positions_dtype,
                         offsets_dtype=args.offsets_dtype, bbox_check=not args.no_bbox_check,
                         keep_outside=not args.drop_outside)
    print(files[0])
    return 0


def cmd_concatenate(args: argparse.Namespace) -> int:
    """``trx-nipype concatenate A B ... -o OUT [--group-by-input] [-f] ...``."""
    groups = args.select_group
    if groups and len(groups) not in (1, len(args.inputs)):
        raise UsageError(f"--select-group takes one group for every input or one per input: "
                         f"{len(groups)} for {len(args.inputs)} inputs")
    written = concatenate_files(
        args.inputs, args.output, reference=args.reference, overwrite=args.force,
        group_by_input=args.group_by_input, group_names=args.group_names or None,
        delete_dps=args.delete_dps, delete_dpv=args.delete_dpv,
        delete_groups=args.delete_groups, delete_dpg=args.delete_dpg,
        positions_dtype=args.positions_dtype, offsets_dtype=args.offsets_dtype,
        compression=args.compression,
        groups=(groups[0] if len(groups) == 1 else groups) if groups else None,
        nb_streamlines=args.nb_streamlines, seed=args.seed)
    print(written.summary())
    return 0


def cmd_select_group(args: argparse.Namespace) -> int:
    """``trx-nipype select-group IN G1 [G2 ...] -o OUT [--keep-groups] [-f]``."""
    written = select_groups(args.input, args.groups, args.output,
                            keep_groups=args.keep_groups, overwrite=args.force,
                            compression=args.compression,
                            positions_dtype=args.positions_dtype)
    print(written.summary())
    return 0


def cmd_resize(args: argparse.Namespace) -> int:
    """``trx-nipype resize IN -o OUT [-n N [--random [--seed S]]] [-f]``."""
    written = resize(args.input, args.output, args.nb_streamlines, random=args.random,
                     seed=args.seed, reference=args.reference, overwrite=args.force,
                     compression=args.compression, positions_dtype=args.positions_dtype)
    print(written.summary())
    return 0


def cmd_split_groups(args: argparse.Namespace) -> int:
    """``trx-nipype split-groups IN -o DIR [--format FMT] [--reference REF] [-f]``."""
    split = split_groups(args.input, args.output, out_format=args.format,
                         reference=args.reference, overwrite=args.force)
    for written in split.outputs:
        print(f"{written.path}\t{written.nb_streamlines} streamlines")
    return 0
