#!/usr/bin/env python3
"""Batch conversion: every bundle file of a dataset to another format, same layout.

``<input>/sub-01/dwi/AF_L.trk`` -> ``<output>/sub-01/dwi/AF_L.<format>`` (plus a
JSON sidecar), one MapNode per subject, subjects as iterables.

    python workflows/convert_dataset.py /data/bundles --output-dir tck-out --format tck
    python workflows/convert_dataset.py --output-dir trx-out     # the demo data to TRX
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

from trx_nipype.data import DEMO_DATASET_URI, fetch_demo_dataset  # noqa: E402
from trx_nipype.workflows import (  # noqa: E402
    default_work_dir,
    find_dataset,
    init_convert_pipeline_wf,
    run_workflow,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_dir", nargs="?", help="dataset (default: the demo data)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--work-dir")
    parser.add_argument("--format", default="trx",
                        choices=("trx", "trx_dir", "trk", "tck", "vtk", "vtp", "fib", "dpy"))
    parser.add_argument("--reference", help="reference image for formats without a space")
    parser.add_argument("--positions-dtype", choices=("float16", "float32", "float64"))
    parser.add_argument("--plugin", default="Linear")
    parser.add_argument("--nprocs", type=int)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    work = Path(args.work_dir) if args.work_dir else default_work_dir(args.output_dir)
    dataset = find_dataset(args.input_dir or fetch_demo_dataset(work / "demo-data"),
                           reference=args.reference)
    if args.input_dir is None:  # the demo data: named by where it comes from
        dataset.uri = DEMO_DATASET_URI
    wf = init_convert_pipeline_wf(dataset, args.output_dir, out_format=args.format,
                                  positions_dtype=args.positions_dtype)
    report = run_workflow(wf, work, plugin=args.plugin, nprocs=args.nprocs,
                          echo=None if args.quiet else print)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
