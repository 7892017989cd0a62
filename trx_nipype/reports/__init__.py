"""QC reports with figures: of a run's output folder, of one tractogram, and reportlets.

- :func:`write_run_report`: ``OUT/report.html`` (per subject: each output's
  groups drawn in three projections, counts, length distributions; the
  population: subjects x bundles with outliers flagged, each population file
  drawn; provenance; failed nodes), ``OUT/figures/`` and ``OUT/qc.tsv``, from
  the outputs alone (:mod:`~trx_nipype.reports.run_report`).
- :func:`tractogram_report`: one self-contained page about one tractogram
  (:mod:`~trx_nipype.reports.tractogram`).
- :func:`tractogram_figure`: one figure of a tractogram, PNG or SVG (what the
  :class:`~trx_nipype.interfaces.TractogramReportlet` interface calls).
- :mod:`~trx_nipype.reports.qc`: the outlier rule and ``qc.tsv``;
  :mod:`~trx_nipype.reports.measures`: counts, lengths and the drawn sample,
  read chunk by chunk; :mod:`~trx_nipype.reports.raster`: streamlines drawn
  into pixels with numpy; :mod:`~trx_nipype.reports.render`: the figures'
  canvas (SVG text, or PNG drawn by Pillow), the same bytes every time.
"""

from typing import Any

__all__ = ["tractogram_figure", "tractogram_report", "write_run_report"]

_HOMES = {"tractogram_figure": "figures", "tractogram_report": "tractogram",
          "write_run_report": "run_report"}


def __getattr__(name: str) -> Any:
    # imported on first use: the page of one tractogram does not need Nipype (which the
    # run report's output discovery imports)
    if name in _HOMES:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
