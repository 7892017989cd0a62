"""Nipype interfaces over the TRX engine: paths in, paths and small metadata out.

- :class:`LoadTrx`: validate a TRX (handed on as it is) or convert another format.
- :class:`ConcatenateTrx`, :class:`SelectGroup`, :class:`ResizeTrx`,
  :class:`SplitGroups`: TRX operations, written in the node's directory.
- :class:`ConvertTractogram`: TRX <-> TRK, TCK, ...
- :class:`AssembleBundles`, :class:`ConvertTractograms`: a subject's files in
  one node (one group per file in one TRX; a list converted).
- :class:`TrxInfo`: a summary as outputs and a JSON file.

Every tractogram input is hashed by its members (a TRX directory changed in
place reruns the node) and, under ``hash_method = content``, through a
persistent digest cache (a cached rerun re-reads nothing): see
:mod:`trx_nipype.interfaces._hashing`.
"""

from ._hashing import digest_cache_dir, prune_digest_cache, set_digest_cache_dir
from .bundles import AssembleBundles, ConvertTractograms
from .info import TrxInfo
from .io import ConvertTractogram, LoadTrx
from .ops import ConcatenateTrx, ResizeTrx, SelectGroup, SplitGroups

__all__ = [
    "AssembleBundles",
    "ConcatenateTrx",
    "ConvertTractogram",
    "ConvertTractograms",
    "LoadTrx",
    "ResizeTrx",
    "SelectGroup",
    "SplitGroups",
    "TrxInfo",
    "digest_cache_dir",
    "prune_digest_cache",
    "set_digest_cache_dir",
]
