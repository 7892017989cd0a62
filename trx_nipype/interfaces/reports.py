"""TractogramReportlet: a figure of a tractogram for your own workflows' reports.

A reportlet in the niworkflows sense: one figure file (PNG or SVG) made in
the node's directory, to put in a report. It calls
:func:`trx_nipype.reports.figures.tractogram_figure`.
"""

from __future__ import annotations

import logging
from typing import Any

from nipype.interfaces.base import File, SimpleInterface, TraitedSpec, traits

from ..reports.figures import FIGURE_KINDS, tractogram_figure
from ..reports.measures import DEFAULT_MAX_STREAMLINES
from ._traits import TrxInputSpec, TrxPath, optional, output_path

log = logging.getLogger("nipype.interface")

#: the default format of each figure: PNG for the many lines of projections, SVG for charts
_DEFAULT_EXT = {"projections": ".png", "lengths": ".svg"}


class _TractogramReportletInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True,
                      desc="tractogram to draw (TRX zip or directory, TRK, TCK, ...)")
    figure = traits.Enum(*FIGURE_KINDS, usedefault=True,
                         desc="'projections': sagittal, coronal and axial projections of the "
                              "streamlines, one colour per group, on the reference grid's box; "
                              "'lengths': streamline length distributions (mm), one per group")
    reference = File(exists=True, desc="reference image for formats without a space (TCK, ...)")
    max_streamlines = traits.Range(low=1, value=DEFAULT_MAX_STREAMLINES, usedefault=True,
                                   desc="streamlines drawn at most: a seeded random sample "
                                        "beyond")
    seed = traits.Int(0, usedefault=True, desc="seed of the drawn sample")
    title = traits.Str(desc="title above the figure (default: the input's file name)")
    out_filename = traits.Str(desc="name of the figure, .png or .svg (default: "
                                   "<input>_<figure>.png for projections, .svg for lengths)")


class _TractogramReportletOutputSpec(TraitedSpec):
    out_report = File(exists=True, desc="the figure (PNG or SVG)")


class TractogramReportlet(SimpleInterface):
    """Draw a tractogram's projections or length distributions as a PNG or SVG reportlet.

    The same input and seed always give the same bytes.

    Examples
    --------
    >>> import tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> res = TractogramReportlet(in_file=example_trx(tmp)).run(cwd=tmp)
    >>> res.outputs.out_report.endswith("bundle_projections.png")
    True
    >>> res = TractogramReportlet(in_file=example_trx(tmp), figure="lengths").run(cwd=tmp)
    >>> res.outputs.out_report.endswith("bundle_lengths.svg")
    True
    """

    input_spec = _TractogramReportletInputSpec
    output_spec = _TractogramReportletOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        kind = self.inputs.figure
        out = output_path(self.inputs.in_file, f"_{kind}", _DEFAULT_EXT[kind],
                          self.inputs.out_filename)
        tractogram_figure(self.inputs.in_file, out, figure=kind,
                          reference=optional(self.inputs.reference),
                          max_streamlines=self.inputs.max_streamlines, seed=self.inputs.seed,
                          title=optional(self.inputs.title))
        log.info("TractogramReportlet: %s -> %s", self.inputs.in_file, out)
        self._results["out_report"] = str(out)
        return runtime
