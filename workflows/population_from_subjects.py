#!/usr/bin/env python3
"""Population bundles from subject TRX files that already exist.

Input: one TRX per subject with one group per bundle, e.g. the
``sub-*/dwi/*_desc-bundles_tractogram.trx`` files of ``trx-nipype run`` (or of
any tool). Output: ``population/tract-<name>_tractogram.trx`` with one group
per subject, each subject contributing ``--streamlines-per-subject``
streamlines (a seeded random subset in file order). No iterables: the subject
files go into the population workflow as one list.

    python workflows/population_from_subjects.py demo-out --output-dir pop-out \\
        --bundles AF_L CST_R --streamlines-per-subject 20 --seed 7
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

from nipype.pipeline import engine as pe  # noqa: E402

from trx_nipype.cli.options import streamlines_per_subject  # noqa: E402
from trx_nipype.workflows import (  # noqa: E402
    default_work_dir,
    init_population_bundles_wf,
    run_workflow,
)
from trx_nipype.workflows.derivatives import population_bundle_path  # noqa: E402
from trx_nipype.workflows.pipelines import POPULATION_DESCRIPTION, sink_node  # noqa: E402


def build(subject_files: Sequence[str], subjects: Sequence[str], bundles: Sequence[str],
          output_dir: str, *, streamlines_per_subject: int | str | None, seed: int
          ) -> pe.Workflow:
    """The population workflow over given subject files, exporting to ``output_dir``."""
    wf = pe.Workflow(name="population_from_subjects_wf")
    population_wf = init_population_bundles_wf(
        bundles=list(bundles), nb_streamlines=streamlines_per_subject, seed=seed)
    population_wf.inputs.inputnode.in_files = [os.path.abspath(f) for f in subject_files]
    population_wf.inputs.inputnode.subjects = list(subjects)
    # rerun (by run_workflow) when a file it writes was deleted; the rest stays cached
    sink = sink_node("ds_population", output_dir, "population_from_subjects",
                     POPULATION_DESCRIPTION, {"streamlines_per_subject": streamlines_per_subject,
                                              "seed": seed})
    sink.inputs.sources = [os.path.abspath(f) for f in subject_files]
    wf.connect(population_wf, "outputnode.out_file", sink, "in_file")
    wf.connect(population_wf, ("outputnode.bundle", population_bundle_path), sink, "rel_path")
    return wf


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("subjects_dir", help="folder with sub-*/[ses-*/]dwi/*.trx files")
    parser.add_argument("--pattern", default="sub-*/**/*_desc-bundles_tractogram.trx")
    parser.add_argument("--bundles", nargs="+", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--work-dir")
    parser.add_argument("--streamlines-per-subject", type=streamlines_per_subject,
                        default="min", metavar="N|min")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    files = sorted(Path(args.subjects_dir).glob(args.pattern))
    if not files:
        print(f"error: {args.subjects_dir}: nothing matches {args.pattern}", file=sys.stderr)
        return 3
    labels = [f.name.split("_desc-")[0] for f in files]
    wf = build([str(f) for f in files], labels, args.bundles, args.output_dir,
               streamlines_per_subject=args.streamlines_per_subject, seed=args.seed)
    report = run_workflow(wf, args.work_dir or default_work_dir(args.output_dir),
                          echo=None if args.quiet else print)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
