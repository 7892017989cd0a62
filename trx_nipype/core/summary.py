"""What a tractogram holds, as plain JSON-ready values (no arrays).

One summary for everyone: ``trx-nipype info --json`` prints it, the
``TrxInfo`` node writes it, and ``LoadTrx`` takes its outputs from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .formats import carries_space
from .loader import inspect, load
from .metrics import lengths_mm
from .saving import is_zip_path
from .space import NO_SPACE
from .trxfile import TrxFile


def _table(arrays: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``name -> {"dtype", "ncols"}`` for a data dictionary, from metadata only."""
    out = {}
    for key in sorted(arrays):
        spec = getattr(arrays, "spec", None)
        dtype, shape = spec(key) if spec else (arrays[key].dtype, arrays[key].shape)
        out[key] = {"dtype": np.dtype(dtype).name, "ncols": int(shape[1]) if len(shape) > 1 else 1}
    return out


def describe(trx: TrxFile, *, length_mm: bool = True) -> dict[str, Any]:
    """Counts, space, dtypes, length statistics, groups and data keys of ``trx``.

    ``points_per_streamline`` counts vertices; ``length_mm`` is the length in
    millimetres (:func:`~trx_nipype.core.metrics.lengths_mm`, which reads every
    position once, chunk by chunk; ``length_mm=False`` leaves it out).

    >>> import numpy as np
    >>> trx = TrxFile.from_arrays(np.array([[0, 0, 0], [0, 0, 2], [0, 0, 0], [0, 3, 0],
    ...                                     [0, 3, 4]], np.float32), lengths=[2, 3],
    ...                           groups={"CST": [1]}, dps={"w": np.ones(2)})
    >>> info = describe(trx)
    >>> info["nb_streamlines"], info["groups"], info["dps"]
    (2, {'CST': 1}, {'w': {'dtype': 'float64', 'ncols': 1}})
    >>> info["points_per_streamline"], info["length_mm"]
    ({'min': 2, 'max': 3, 'mean': 2.5}, {'min': 2.0, 'max': 7.0, 'mean': 4.5})
    """
    lengths = np.asarray(trx.lengths)
    info = {
        "nb_streamlines": len(trx),
        "nb_vertices": trx.nb_vertices,
        "affine": trx.affine.tolist(),
        "dimensions": [int(d) for d in trx.dimensions],
        "positions_dtype": trx.positions_dtype.name,
        "offsets_dtype": trx.offsets_dtype.name,
        "points_per_streamline": {"min": int(lengths.min()) if lengths.size else 0,
                                  "max": int(lengths.max()) if lengths.size else 0,
                                  "mean": round(float(lengths.mean()), 3) if lengths.size
                                  else 0.0},
        "groups": {g: int(len(trx.groups[g])) for g in sorted(trx.groups)},
        "dps": _table(trx.dps),
        "dpv": _table(trx.dpv),
        "dpg": {g: _table(trx.dpg[g]) for g in sorted(trx.dpg)},
    }
    if length_mm:
        mm = lengths_mm(trx)
        info["length_mm"] = {"min": round(float(mm.min()), 3) if mm.size else 0.0,
                             "max": round(float(mm.max()), 3) if mm.size else 0.0,
                             "mean": round(float(mm.mean()), 3) if mm.size else 0.0}
    return info


def summarize(path: str | os.PathLike, reference: Any = None, *,
              length_mm: bool = True) -> dict[str, Any]:
    """Check a tractogram file and :func:`describe` it, with where and how it is stored.

    A TRX (zip or directory) is loaded once (raising
    :class:`~trx_nipype.core.TrxFormatError` when invalid) and only its headers,
    offsets and group indices are read, plus every position once for the
    lengths in mm (``length_mm=False`` leaves them out); any other format is read with
    :func:`~trx_nipype.core.load_any`. A format without a space (TCK, VTK, DPY) is
    counted without ``reference``; its ``affine`` and ``dimensions`` are then None.
    """
    path = os.fspath(path)
    if os.path.isdir(path) or is_zip_path(path):
        with load(path) as trx:  # load raises what validate would report
            report = inspect(trx)
            info = describe(trx, length_mm=length_mm)
        info.update(container=report.container, compression=report.compression or None,
                    warnings=report.warnings)
    else:
        from .converting import load_any

        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file or directory")
        spaceless = reference is None and not carries_space(path)
        # counting needs no space: a TCK given no reference is read in a placeholder one
        with load_any(path, reference=NO_SPACE if spaceless else reference) as trx:
            info = describe(trx, length_mm=length_mm)
        if spaceless:
            info.update(affine=None, dimensions=None)
        info.update(container=Path(path).name.split(".", 1)[-1], compression=None, warnings=[])
    return {"path": path, **info}
