"""Nipype interfaces over the TRX engine: paths in, paths and small metadata out.

- :class:`LoadTrx`: validate a TRX (handed on as it is) or convert another format.
- :class:`ConcatenateTrx`, :class:`SelectGroup`, :class:`ResizeTrx`,
  :class:`SplitGroups`: TRX operations, written in the node's directory.
- :class:`ConvertTractogram`: TRX <-> TRK, TCK, ...
- :class:`AssembleBundles`, :class:`ConvertTractograms`: a subject's files in
  one node (one group per file in one TRX; a list converted).
- :class:`TrxInfo`: a summary as outputs and a JSON file.
- :class:`FilterStreamlines`, :class:`DensityMap`, :class:`SampleScalarMap`,
  :class:`TractProfile`, :class:`ResampleStreamlines`: tractography analysis,
  equal to dipy's functions, streamed over the maps.
- :class:`TractogramReportlet`: a figure (projections or lengths) for a report.
- :class:`DerivativesSink`, :class:`DerivativesListSink`, :class:`AnalysisSink`:
  results exported to a BIDS derivatives tree, atomically, each with a JSON
  sidecar (:mod:`.bids`).

Each interface calls the function of :mod:`trx_nipype.core.operations` that the
``trx-nipype`` command of the same operation calls. A TRK written with groups
comes with its ``.groups.json`` sidecar, declared as the ``out_groups`` output;
Nipype keeps it and DataSinks copy it beside the TRK (:func:`register_groups_sidecar`).

Every tractogram input is hashed by its members (a TRX directory changed in
place reruns the node) and, under ``hash_method = content``, through a
persistent digest cache (a cached rerun re-reads nothing): see
:mod:`trx_nipype.interfaces._hashing`.
"""

from ._hashing import digest_cache_dir, prune_digest_cache, set_digest_cache_dir
from ._traits import register_groups_sidecar
from .analysis import (
    DensityMap,
    FilterStreamlines,
    ResampleStreamlines,
    SampleScalarMap,
    TractProfile,
)
from .bids import AnalysisSink, DerivativesListSink, DerivativesSink
from .bundles import AssembleBundles, ConvertTractograms
from .info import TrxInfo
from .io import ConvertTractogram, LoadTrx
from .ops import ConcatenateTrx, ResizeTrx, SelectGroup, SplitGroups
from .reports import TractogramReportlet

register_groups_sidecar()  # a TRK output's .groups.json is kept and copied with it

__all__ = [
    "AnalysisSink",
    "AssembleBundles",
    "ConcatenateTrx",
    "ConvertTractogram",
    "ConvertTractograms",
    "DensityMap",
    "DerivativesListSink",
    "DerivativesSink",
    "FilterStreamlines",
    "LoadTrx",
    "ResampleStreamlines",
    "ResizeTrx",
    "SampleScalarMap",
    "SelectGroup",
    "SplitGroups",
    "TractogramReportlet",
    "TractProfile",
    "TrxInfo",
    "digest_cache_dir",
    "prune_digest_cache",
    "set_digest_cache_dir",
]
