"""``trx-nipype compare`` and ``trx-nipype manifest``: regression checks of outputs.

::

    trx-nipype compare A B [--atol MM] [--data-atol X] [--ignore-dtypes] [--json]
    trx-nipype manifest DIR -o expected.json [--force]
    trx-nipype manifest --check expected.json DIR [--atol MM] [--json]

Both exit 0 when equal (within the tolerances), 1 when something differs,
2 on a usage error and 3 on invalid input (a missing or unreadable file).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

#: exit status when the compared things differ
EXIT_DIFFERENT = 1


def tolerance(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def decimals(text: str) -> int:
    """An argparse type: decimals of a rounding, 0 to 12."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 12:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 12, got {text!r}")
    return value


def _tolerances(p: argparse.ArgumentParser) -> None:
    p.add_argument("--atol", type=tolerance, default=0.0, metavar="MM",
                   help="largest distance between corresponding points that counts as equal, "
                        "in mm (default: 0, exact)")
    p.add_argument("--data-atol", type=tolerance, metavar="X",
                   help="largest difference between float data values (dps, dpv, dpg, JSON "
                        "numbers, voxels) that counts as equal (default: --atol)")
    p.add_argument("--ignore-dtypes", action="store_true",
                   help="compare values only, not the dtypes of positions and data")
    p.add_argument("--reference",
                   help="reference image giving the space of files without one (TCK, VTK); "
                        "without it their space is not compared")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_parsers(sub: Any) -> None:
    """Register ``compare`` and ``manifest`` on the ``trx-nipype`` subparsers."""
    p = sub.add_parser(
        "compare", help="compare two tractograms or two output folders by content",
        description="Compare two tractograms (any readable format: a TRX zip, deflated or "
                    "not, and a TRX folder of the same content are equal) or two output "
                    "folders (file by file; JSON sidecars as JSON, software versions and byte "
                    "digests left out). Exit 0 equal, 1 different, 2 usage error, 3 invalid "
                    "input.")
    p.add_argument("a", metavar="A", help="tractogram or folder")
    p.add_argument("b", metavar="B", help="tractogram or folder")
    _tolerances(p)
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser(
        "manifest", help="snapshot an output folder (or check it against a snapshot)",
        description="Write the manifest of an output folder or tractogram (counts, groups, "
                    "content digests, statistics; no machine paths), or check one against a "
                    "stored manifest with --check. Exit 0 when it matches, 1 when it "
                    "differs, 2 usage error, 3 invalid input.")
    p.add_argument("path", metavar="DIR", help="output folder (or a tractogram)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("-o", "--output", help="manifest to write (JSON)")
    mode.add_argument("--check", metavar="EXPECTED", help="check DIR against this manifest")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing --output")
    p.add_argument("--decimals", type=decimals, default=3,
                   help="decimals of the rounded positions digest (default: 3, 0.001 mm)")
    _tolerances(p)
    p.set_defaults(handler=cmd_manifest)


def _progress(args: argparse.Namespace) -> Any:
    if args.json or not sys.stderr.isatty():
        return None
    return lambda rel: print(f"\r\033[K{rel}", end="", file=sys.stderr, flush=True)


def _finish(args: argparse.Namespace, result: Any) -> int:
    if sys.stderr.isatty() and not args.json:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.report())
    return 0 if result.equal else EXIT_DIFFERENT


def cmd_compare(args: argparse.Namespace) -> int:
    """``trx-nipype compare A B [--atol MM] [--json]``: 0 equal, 1 different."""
    from ..core.operations.compare import compare

    result = compare(args.a, args.b, atol=args.atol, data_atol=args.data_atol,
                     check_dtypes=not args.ignore_dtypes, reference=args.reference,
                     progress=_progress(args))
    return _finish(args, result)


def cmd_manifest(args: argparse.Namespace) -> int:
    """``trx-nipype manifest DIR -o OUT`` or ``manifest --check EXPECTED DIR``."""
    from ..core.operations.manifest import check_manifest, write_manifest

    if args.check:
        result = check_manifest(args.check, args.path, atol=args.atol,
                                data_atol=args.data_atol, check_dtypes=not args.ignore_dtypes,
                                reference=args.reference, progress=_progress(args))
        return _finish(args, result)
    out = write_manifest(args.path, args.output, force=args.force, reference=args.reference,
                         decimals=args.decimals, progress=_progress(args))
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    print(out)
    return 0
