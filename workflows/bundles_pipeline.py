#!/usr/bin/env python3
"""The main job as a script: subject bundles, then balanced population bundles.

Per subject, every bundle file (TRK, TCK, TRX, ...) goes into one TRX with one
group per bundle; then, for each bundle, every subject's group goes into one
TRX with one group per subject, each subject contributing the same seeded
random number of streamlines. This is ``trx-nipype run`` with its options
spelled out: copy it and change what you need.

    python workflows/bundles_pipeline.py --output-dir out            # demo data
    python workflows/bundles_pipeline.py /data/derivatives/bundles --output-dir out \\
        --streamlines-per-subject 500 --plugin MultiProc --nprocs 8
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

from trx_nipype.cli.options import streamlines_per_subject  # noqa: E402
from trx_nipype.cli.run import DEMO_FOLDER  # noqa: E402
from trx_nipype.data import DEMO_DATASET_URI, fetch_demo_dataset  # noqa: E402
from trx_nipype.workflows import (  # noqa: E402
    RunReport,
    default_work_dir,
    find_dataset,
    init_bundles_pipeline_wf,
    run_workflow,
)


def run(input_dir: str | None, output_dir: str, *, work_dir: str | None = None,
        streamlines_per_subject: int | str | None = "min", seed: int = 0,
        plugin: str = "Linear", nprocs: int | None = None, quiet: bool = False) -> RunReport:
    """Build and run the pipeline; return Nipype's run report."""
    work = Path(work_dir) if work_dir else default_work_dir(output_dir)
    root = input_dir or fetch_demo_dataset(work / DEMO_FOLDER)
    dataset = find_dataset(root)
    if input_dir is None:  # the demo data: named by where it comes from, not by the work dir
        dataset.uri = DEMO_DATASET_URI
    wf = init_bundles_pipeline_wf(dataset, output_dir, nb_streamlines=streamlines_per_subject,
                                  seed=seed)
    return run_workflow(wf, work, plugin=plugin, nprocs=nprocs,
                        echo=None if quiet else print)


def per_subject(text: str) -> int | str | None:
    """``--streamlines-per-subject``: as ``trx-nipype run`` (N or 'min'), or 'all' (None)."""
    return None if text == "all" else streamlines_per_subject(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_dir", nargs="?", help="sub-*/[ses-*/]dwi/* dataset "
                                                     "(default: the demo data)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--work-dir")
    parser.add_argument("--streamlines-per-subject", type=per_subject, default="min",
                        metavar="N|min|all", help="N, 'min' (default) or 'all'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plugin", default="Linear")
    parser.add_argument("--nprocs", type=int)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.input_dir, args.output_dir, work_dir=args.work_dir,
                 streamlines_per_subject=args.streamlines_per_subject, seed=args.seed,
                 plugin=args.plugin,
                 nprocs=args.nprocs, quiet=args.quiet)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
