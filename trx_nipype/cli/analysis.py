"""The analysis commands of ``trx-nipype``: filter, density, sample, profile, resample.

Each command calls one function of :mod:`trx_nipype.core.operations` (as the
Nipype interfaces do) and prints one line about what it wrote::

    trx-nipype filter IN -o OUT [--min-length MM] [--max-length MM] [--include MASK ...]
                      [--exclude MASK ...] [--roi-mode any|endpoints] [--dps KEY:MIN:MAX ...]
                      [--reference IMG]
    trx-nipype density IN -o OUT.nii.gz [--reference IMG] [--group G ...] [--binary]
    trx-nipype sample IN IMAGE -o OUT --name KEY
    trx-nipype profile IN IMAGE -o OUT.csv [--points N] [--group G ...]
    trx-nipype resample IN -o OUT (--points N | --step MM) [--drop-dpv] [--reference IMG]

A TCK input (no space of its own) needs ``--reference`` only where a space is
used: a TRX or TRK output, masks; ``density`` counts in the reference's grid and
``sample``/``profile`` read the image's, which is also the TCK's space.

Outputs follow the operations' rules
(:func:`~trx_nipype.core.operations.outputs.check_result_output`): an existing
output is replaced only with ``-f/--force``, and a file that is not an output of
that kind (a tractogram, a NIfTI image, a profile table) never is; an output
never touches an input; a tractogram output's extension picks its format
(``.trx``, none for a TRX folder, ``.trk``, ``.tck``...).
"""

from __future__ import annotations

import argparse
import math

from .options import add_reference


def _points(text: str) -> int:
    """``--points``: an integer of at least 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"a streamline needs at least 2 points, got {value}")
    return value


def _positive(text: str) -> float:
    """A distance in mm above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a distance above 0 mm, got {text}")
    return value


def _length(text: str) -> float:
    """A length in mm, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of mm, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a length of 0 mm or more, got {text}")
    return value


def _dps_range(text: str):  # noqa: ANN202 (an argparse type)
    from ..core.operations.filtering import DpsRange

    try:
        return DpsRange.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(p: argparse.ArgumentParser, output_help: str) -> None:
    p.add_argument("-o", "--output", required=True, help=output_help)
    p.add_argument("-f", "--force", action="store_true", help="replace an existing output")


_TRACTOGRAM_OUT = ("output tractogram; its extension picks the format (.trx zip, none: a TRX "
                   "folder, .trk, .tck, ...)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the analysis subcommands to ``trx-nipype``'s subparsers, each with its handler."""
    from ..core.operations.filtering import ROI_MODES

    p = sub.add_parser("filter", help="keep streamlines by length (mm), regions of interest "
                                      "or per-streamline values")
    p.add_argument("input", help="tractogram")
    _common(p, _TRACTOGRAM_OUT)
    p.add_argument("--min-length", type=_length, metavar="MM", help="shortest length kept")
    p.add_argument("--max-length", type=_length, metavar="MM", help="longest length kept")
    p.add_argument("--include", nargs="+", action="extend", default=[], metavar="MASK",
                   help="NIfTI masks on the tractogram's grid: keep streamlines reaching each")
    p.add_argument("--exclude", nargs="+", action="extend", default=[], metavar="MASK",
                   help="NIfTI masks on the tractogram's grid: drop streamlines reaching any")
    p.add_argument("--roi-mode", choices=ROI_MODES, default="any",
                   help="'any' vertex in a mask (as dipy's target; default) or 'endpoints' "
                        "(the first or last vertex)")
    p.add_argument("--dps", nargs="+", action="extend", default=[], type=_dps_range,
                   metavar="KEY:MIN:MAX", help="bounds on data per streamline (inclusive; a "
                                               "bound may be empty: weight:0.5:)")
    add_reference(p, "the space of an input without one (TCK...), needed for a .trx or "
                     ".trk output or masks")
    p.set_defaults(handler=cmd_filter)

    p = sub.add_parser("density", help="streamlines per voxel, as a NIfTI image")
    p.add_argument("input", help="tractogram")
    _common(p, "output image (.nii or .nii.gz)")
    add_reference(p, "the grid to count in (default: the tractogram's); also the space of "
                     "an input without one (TCK...), which needs it")
    p.add_argument("--group", nargs="+", action="extend", default=[], metavar="G",
                   help="count only these groups' streamlines")
    p.add_argument("--binary", action="store_true", help="1 where a streamline passes, else 0")
    p.set_defaults(handler=cmd_density)

    p = sub.add_parser("sample", help="an image's values at every vertex (dpv KEY) and their "
                                      "mean per streamline (dps KEY_mean)")
    p.add_argument("input", help="tractogram")
    p.add_argument("image", help="3-D NIfTI image on the tractogram's grid")
    _common(p, _TRACTOGRAM_OUT)
    p.add_argument("--name", required=True, metavar="KEY", help="key of the new data")
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("profile", help="one tract profile per group (as AFQ), as a CSV/TSV")
    p.add_argument("input", help="tractogram (one tract per group)")
    p.add_argument("image", help="3-D NIfTI image on the tractogram's grid")
    _common(p, "output table (.csv or .tsv)")
    p.add_argument("--points", type=_points, default=100, metavar="N",
                   help="nodes per profile (default: 100)")
    p.add_argument("--group", nargs="+", action="extend", default=[], metavar="G",
                   help="profile these groups (default: every group)")
    p.set_defaults(handler=cmd_profile)

    p = sub.add_parser("resample", help="resample streamlines to N points or a step in mm")
    p.add_argument("input", help="tractogram")
    _common(p, _TRACTOGRAM_OUT)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--points", type=_points, metavar="N", help="points per streamline")
    how.add_argument("--step", type=_positive, metavar="MM",
                     help="largest distance between consecutive points")
    p.add_argument("--drop-dpv", action="store_true",
                   help="leave data per vertex out (integer dpv cannot be interpolated)")
    add_reference(p, "the space of an input without one (TCK...), needed for a .trx or "
                     ".trk output")
    p.set_defaults(handler=cmd_resample)


def cmd_filter(args: argparse.Namespace) -> int:
    """``trx-nipype filter``."""
    from ..core.operations.filtering import filter_streamlines

    res = filter_streamlines(args.input, args.output, min_length=args.min_length,
                             max_length=args.max_length, include=args.include,
                             exclude=args.exclude, roi_mode=args.roi_mode,
                             dps_ranges=args.dps, reference=args.reference,
                             overwrite=args.force)
    removed = ", ".join(f"{k} {v}" for k, v in res.removed.items())
    print(f"{args.output}: kept {res.nb_streamlines} of {res.nb_input} streamlines"
          + (f" (removed by {removed})" if removed else ""))
    return 0


def cmd_density(args: argparse.Namespace) -> int:
    """``trx-nipype density``."""
    from ..core.operations.density import density_map

    res = density_map(args.input, args.output, reference=args.reference,
                      groups=args.group or None, binary=args.binary, overwrite=args.force)
    print(f"{args.output}: {res.nb_streamlines} streamlines over {res.nb_voxels} voxels "
          f"(at most {res.max_count} in one)")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """``trx-nipype sample``."""
    from ..core.operations.scalars import sample_scalar_map

    res = sample_scalar_map(args.input, args.image, args.output, name=args.name,
                            overwrite=args.force)
    print(f"{args.output}: dpv {res.dpv_key} and dps {res.dps_key} over "
          f"{res.nb_streamlines} streamlines")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """``trx-nipype profile``."""
    from ..core.operations.scalars import tract_profile

    res = tract_profile(args.input, args.image, args.output, nb_points=args.points,
                        groups=args.group or None, overwrite=args.force)
    print(f"{args.output}: {len(res.tracts)} tracts x {res.nb_points} points ("
          + ", ".join(f"{t} {n}" for t, n in zip(res.tracts, res.nb_streamlines, strict=True))
          + " streamlines)")
    return 0


def cmd_resample(args: argparse.Namespace) -> int:
    """``trx-nipype resample``."""
    from ..core.operations.resampling import resample_streamlines

    res = resample_streamlines(args.input, args.output, nb_points=args.points, step=args.step,
                               drop_dpv=args.drop_dpv, reference=args.reference,
                               overwrite=args.force)
    print(f"{args.output}: {res.nb_streamlines} streamlines, {res.nb_vertices} vertices")
    return 0
