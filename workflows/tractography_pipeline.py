#!/usr/bin/env python3
"""Tractography pipeline: a DWI -> tracks -> filter -> sample FA -> tract profiles -> density.

Starts from a real diffusion image shipped inside dipy (``small_64D``: 10 x 10 x
10 voxels of 2 mm, 64 directions; no network), or your own DWI with its
b-values and b-vectors:

1. ``track`` (dipy): a tensor fit gives FA and peaks; deterministic local
   tracking (``LocalTracking``, FA > 0.1 as mask and stopping criterion,
   2 x 2 x 2 seeds per voxel, 0.5 mm steps) gives a TRX in the DWI's space,
   with one group per dominant direction of the streamlines (``LR``, ``AP``,
   ``SI``: stand-ins for tracts);
2. :func:`trx_nipype.workflows.tractometry.init_tractometry_wf`: keep
   streamlines of ``--min-length`` mm or more, sample FA along them (dpv
   ``fa``, dps ``fa_mean``), one ``--points``-node FA profile per group, and
   the streamline density map;
3. a derivatives tree with a JSON sidecar per file::

       <output>/dataset_description.json
       <output>/sub-01/dwi/sub-01_space-dwi_model-dti_param-fa_dwimap.nii.gz
       <output>/sub-01/dwi/sub-01_space-dwi_desc-filtered_tractogram.trx  (dpv fa, dps fa_mean)
       <output>/sub-01/dwi/sub-01_space-dwi_desc-fa_tractprofiles.csv
       <output>/sub-01/dwi/sub-01_space-dwi_desc-filtered_tdi.nii.gz

Usage::

    python workflows/tractography_pipeline.py --output-dir tracto-out
    python workflows/tractography_pipeline.py --dwi dwi.nii.gz --bval dwi.bval \\
        --bvec dwi.bvec --subject 02 --output-dir out --min-length 20
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

from nipype.interfaces.utility import Function, IdentityInterface  # noqa: E402
from nipype.pipeline import engine as pe  # noqa: E402

from trx_nipype.interfaces import AnalysisSink  # noqa: E402
from trx_nipype.workflows import default_work_dir, run_workflow  # noqa: E402
from trx_nipype.workflows.derivatives import write_dataset_description  # noqa: E402
from trx_nipype.workflows.tractometry import init_tractometry_wf  # noqa: E402

PIPELINE = "tractography"
DESCRIPTION = ("dipy tensor fit and deterministic local tracking, then trx-nipype filter, "
               "sample (FA), profile and density")


def demo_dwi() -> tuple[str, str, str]:
    """dipy's ``small_64D`` DWI, b-values and b-vectors (files inside the dipy package)."""
    import importlib.resources

    files = importlib.resources.files("dipy") / "data" / "files"
    return tuple(str(files / f"small_64D{ext}") for ext in (".nii", ".bval", ".bvec"))


def track(dwi, bval, bvec, seeds_per_axis):  # noqa: ANN001, ANN201 (a Nipype Function node)
    """Tensor fit, FA, deterministic tracking: ``(tractogram.trx, fa.nii.gz)`` in the cwd."""
    import os

    import nibabel as nib
    import numpy as np
    from dipy.core.gradients import gradient_table
    from dipy.data import default_sphere
    from dipy.direction import peaks_from_model
    from dipy.io.gradients import read_bvals_bvecs
    from dipy.reconst.dti import TensorModel
    from dipy.tracking import utils
    from dipy.tracking.local_tracking import LocalTracking
    from dipy.tracking.stopping_criterion import ThresholdStoppingCriterion
    from dipy.tracking.streamline import Streamlines

    from trx_nipype.core import TrxFile, save

    img = nib.load(dwi)
    bvals, bvecs = read_bvals_bvecs(bval, bvec)
    gtab = gradient_table(bvals, bvecs=bvecs)
    data = np.asarray(img.dataobj, dtype=np.float64)
    model = TensorModel(gtab)
    fa = np.clip(np.nan_to_num(model.fit(data).fa), 0, 1).astype(np.float32)
    mask = fa > 0.1
    peaks = peaks_from_model(model, data, default_sphere, relative_peak_threshold=0.5,
                             min_separation_angle=25, mask=mask)
    seeds = utils.seeds_from_mask(mask, img.affine, density=int(seeds_per_axis))
    streamlines = Streamlines(LocalTracking(peaks, ThresholdStoppingCriterion(fa, 0.1), seeds,
                                            img.affine, step_size=0.5))
    lengths = np.asarray(streamlines._lengths, dtype=np.int64)
    pos = np.asarray(streamlines.get_data(), dtype=np.float32)
    ends = np.cumsum(lengths)
    span = np.abs(pos[ends - 1] - pos[ends - lengths])  # end-to-end vector of each streamline
    axis = np.argmax(span, axis=1)
    groups = {name: np.flatnonzero(axis == i) for i, name in enumerate(("LR", "AP", "SI"))}
    trx = TrxFile.from_arrays(pos, lengths=lengths, affine=img.affine,
                              dimensions=img.shape[:3],
                              groups={g: i for g, i in groups.items() if len(i)})
    out = save(trx, os.path.abspath("tractogram.trx"))
    fa_path = os.path.abspath("fa.nii.gz")
    fa_img = nib.Nifti1Image(fa, img.affine)
    fa_img.header.set_xyzt_units("mm")
    nib.save(fa_img, fa_path)
    return str(out), fa_path


def init_tractography_pipeline_wf(dwi: str, bval: str, bvec: str, output_dir: str | Path, *,
                                  subject: str = "01", min_length: float = 5.0,
                                  nb_points: int = 20, seeds_per_axis: int = 2,
                                  name: str = "tractography_wf") -> pe.Workflow:
    """The whole pipeline for one subject (builds only; the run writes ``output_dir``).

    Nothing on disk is looked at: an export deleted since the last run is seen
    by :func:`~trx_nipype.workflows.run_workflow`, which reruns its sink.
    """
    output_dir = Path(output_dir).absolute()
    prefix = f"sub-{subject}/dwi/sub-{subject}_space-dwi"
    params = {"min_length_mm": min_length, "nb_points": nb_points,
              "seeds_per_axis": seeds_per_axis, "tracking": "dipy LocalTracking, DTI peaks, "
              "FA > 0.1, step 0.5 mm"}
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["dwi", "bval", "bvec"]), name="inputnode")
    inputnode.inputs.dwi, inputnode.inputs.bval, inputnode.inputs.bvec = dwi, bval, bvec
    tracker = pe.Node(Function(input_names=["dwi", "bval", "bvec", "seeds_per_axis"],
                               output_names=["tractogram", "fa"], function=track), name="track")
    tracker.inputs.seeds_per_axis = seeds_per_axis
    tractometry = init_tractometry_wf(min_length=min_length, nb_points=nb_points,
                                      scalar_name="fa")
    sinks = {}
    for field, rel in (("fa", "model-dti_param-fa_dwimap.nii.gz"),
                       ("sampled", "desc-filtered_tractogram.trx"),
                       ("profiles", "desc-fa_tractprofiles.csv"),
                       ("density", "desc-filtered_tdi.nii.gz")):
        sinks[field] = pe.Node(AnalysisSink(out_dir=str(output_dir), rel_path=f"{prefix}_{rel}",
                                            metadata={"Pipeline": PIPELINE,
                                                      "Description": DESCRIPTION,
                                                      "Parameters": params}),
                               name=f"ds_{field}")
    wf.connect([
        (inputnode, tracker, [("dwi", "dwi"), ("bval", "bval"), ("bvec", "bvec")]),
        (tracker, tractometry, [("tractogram", "inputnode.in_file"),
                                ("fa", "inputnode.scalar_map")]),
        (tracker, sinks["fa"], [("fa", "in_file")]),
        (tractometry, sinks["sampled"], [("outputnode.sampled", "in_file")]),
        (tractometry, sinks["profiles"], [("outputnode.profiles", "in_file")]),
        (tractometry, sinks["density"], [("outputnode.density", "in_file")]),
    ])
    for node in sinks.values():
        wf.connect([(inputnode, node, [(("dwi", _listify), "sources")])])
    return wf


def _listify(value):  # noqa: ANN001, ANN202 (a Nipype connection function)
    return [value]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dwi", help="diffusion image (default: dipy's small_64D)")
    parser.add_argument("--bval", help="its b-values")
    parser.add_argument("--bvec", help="its b-vectors")
    parser.add_argument("--subject", default="01", help="subject label (default: 01)")
    parser.add_argument("--output-dir", required=True, help="derivatives folder to write")
    parser.add_argument("--work-dir", help="Nipype's cache (default: OUTPUT_DIR-work)")
    parser.add_argument("--min-length", type=float, default=5.0,
                        help="shortest streamline kept, mm (default: 5)")
    parser.add_argument("--points", type=int, default=20, help="nodes per profile (default 20)")
    parser.add_argument("--seeds-per-axis", type=int, default=2,
                        help="seeds per voxel along each axis (default: 2)")
    parser.add_argument("--plugin", default="Linear")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    given = [args.dwi, args.bval, args.bvec]
    if any(given) and not all(given):
        parser.error("--dwi, --bval and --bvec go together")
    dwi, bval, bvec = given if all(given) else demo_dwi()
    out = Path(args.output_dir).absolute()
    write_dataset_description(out, PIPELINE, DESCRIPTION)
    wf = init_tractography_pipeline_wf(dwi, bval, bvec, out, subject=args.subject,
                                       min_length=args.min_length, nb_points=args.points,
                                       seeds_per_axis=args.seeds_per_axis)
    report = run_workflow(wf, Path(args.work_dir) if args.work_dir else default_work_dir(out),
                          plugin=args.plugin,
                          echo=None if args.quiet else print)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
