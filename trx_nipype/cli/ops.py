"""The single operations of ``trx-nipype``: each command is one call of the operations layer.

Each ``cmd_*`` function takes the parsed arguments, calls the function of
:mod:`trx_nipype.core.operations` that the Nipype interface of the same
operation calls, prints what it wrote and returns an exit code. Errors are
raised and turned into one line and an exit code by :func:`trx_nipype.cli.main.main`,
which names this command's options where the operation names its parameters
(:func:`spelling`).
"""

from __future__ import annotations

import argparse
import ast
import json
from collections.abc import Callable
from typing import Any

from ..core import validate
from ..core.errors import UsageError, python_spelling
from ..core.operations import (
    concatenate_files,
    convert_file,
    resize,
    select_groups,
    split_groups,
    tractogram_info,
)

#: operation parameter -> the option that sets it, for every command and per command;
#: ``name=value`` keys spell one value (``keep_outside=False`` is ``--drop-outside``)
OPTIONS: dict[str, dict[str, str]] = {
    "*": {"overwrite": "-f/--force", "reference": "--reference", "out_path": "-o/--output",
          "compression": "--compression", "positions_dtype": "--positions-dtype",
          "offsets_dtype": "--offsets-dtype"},
    "concatenate": {"in_paths": "FILE", "group_by_input": "--group-by-input",
                    "group_names": "--group-names", "delete_dps": "--delete-dps",
                    "delete_dpv": "--delete-dpv", "delete_groups": "--delete-groups",
                    "delete_dpg": "--delete-dpg", "groups": "--select-group",
                    "nb_streamlines": "--nb-streamlines", "seed": "--seed"},
    "select-group": {"groups": "GROUP", "keep_groups": "--keep-groups"},
    "resize": {"nb_streamlines": "-n/--nb-streamlines", "random": "--random",
               "seed": "--seed"},
    "split-groups": {"out_format": "--format"},
    "convert": {"keep_outside=False": "--drop-outside", "keep_outside": "--drop-outside",
                "bbox_check=False": "--no-bbox-check", "bbox_check": "--no-bbox-check"},
}

_Usage = UsageError  # the name trx_nipype.cli.run raises usage errors under


def spelling(command: str) -> Callable[[str, str | None], str]:
    """How ``command`` names an operation's parameter: ``reference=`` -> ``--reference``.

    >>> spell = spelling("resize")
    >>> spell("nb_streamlines", "99"), spell("overwrite", "True"), spell("random", "True")
    ('-n/--nb-streamlines 99', '-f/--force', '--random')
    >>> spelling("convert")("keep_outside", "False"), spelling("info")("reference", None)
    ('--drop-outside', '--reference')
    """
    table = {**OPTIONS["*"], **OPTIONS.get(command, {})}

    def spell(name: str, value: str | None) -> str:
        if value is not None and f"{name}={value}" in table:
            return table[f"{name}={value}"]
        option = table.get(name)
        if option is None:
            return python_spelling(name, value)
        if value is None or value == "True":
            return option
        try:
            shown = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            shown = value
        return f"{option} {shown}"

    return spell


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
    """``trx-nipype info FILE... [--json] [--reference REF]``."""
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
