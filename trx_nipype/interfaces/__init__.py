"""Nipype interfaces over the TRX engine: paths in, paths and small metadata out.

- :class:`LoadTrx`: validate a TRX (handed on as it is) or convert another format.
- :class:`ConcatenateTrx`, :class:`SelectGroup`, :class:`ResizeTrx`,
  :class:`SplitGroups`: TRX operations, written in the node's directory.
- :class:`ConvertTractogram`: TRX <-> TRK, TCK, ...
- :class:`TrxInfo`: a summary as outputs and a JSON file.
- :class:`FilterStreamlines`, :class:`DensityMap`, :class:`SampleScalarMap`,
  :class:`TractProfile`, :class:`ResampleStreamlines`: tractography analysis,
  equal to dipy's functions, streamed over the maps.

Every tractogram input is hashed by its members (a TRX directory changed in
place reruns the node) and, under ``hash_method = content``, through a
persistent digest cache (a cached rerun re-reads nothing): see
:mod:`trx_nipype.interfaces._hashing`.
"""

from ._hashing import digest_cache_dir, prune_digest_cache, set_digest_cache_dir
from .analysis import (
    DensityMap,
    FilterStreamlines,
    ResampleStreamlines,
    SampleScalarMap,
    TractProfile,
)
from .info import TrxInfo
from .io import ConvertTractogram, LoadTrx
from .ops import ConcatenateTrx, ResizeTrx, SelectGroup, SplitGroups

__all__ = [
    "ConcatenateTrx",
    "ConvertTractogram",
    "DensityMap",
    "FilterStreamlines",
    "LoadTrx",
    "ResampleStreamlines",
    "ResizeTrx",
    "SampleScalarMap",
    "SelectGroup",
    "SplitGroups",
    "TractProfile",
    "TrxInfo",
    "digest_cache_dir",
    "prune_digest_cache",
    "set_digest_cache_dir",
]
