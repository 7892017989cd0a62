"""Small tractograms for the docstring examples and the tests (made in a given folder)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trx_nipype.core import TrxFile, save

#: lengths of the streamlines of :func:`example_trx`
EXAMPLE_LENGTHS = (3, 2, 4, 2, 5, 3)


def example_trx(folder: str | os.PathLike, name: str = "bundle.trx", *, seed: int = 0,
                nb_streamlines: int | None = None, dpg: bool = True) -> str:
    """Write a small TRX (zip for ``*.trx``, else a directory) and return its path.

    It has ``len(EXAMPLE_LENGTHS)`` streamlines (or ``nb_streamlines``, cycling
    the lengths), a ``weight`` dps, an ``fa`` dpv, groups ``AF`` (streamlines
    0, 2, 4, ...) and ``CST`` (1, 3, ...) and (unless ``dpg=False``) a
    ``color`` dpg for ``AF``.

    >>> import tempfile
    >>> from trx_nipype.core import load
    >>> with load(example_trx(tempfile.mkdtemp())) as trx:
    ...     len(trx), sorted(trx.groups)
    (6, ['AF', 'CST'])
    """
    n = len(EXAMPLE_LENGTHS) if nb_streamlines is None else nb_streamlines
    lengths = np.resize(np.asarray(EXAMPLE_LENGTHS, dtype=np.int64), n)
    rng = np.random.default_rng(seed)
    v = int(lengths.sum())
    positions = (rng.random((v, 3)) * 40 + 10).astype(np.float32)
    trx = TrxFile.from_arrays(
        positions, lengths=lengths, affine=np.diag([2.0, 2.0, 2.0, 1.0]), dimensions=(40, 40, 40),
        dps={"weight": np.linspace(0, 1, n, dtype=np.float32)},
        dpv={"fa": rng.random(v).astype(np.float32)},
        groups={"AF": np.arange(0, n, 2, dtype=np.uint32),
                "CST": np.arange(1, n, 2, dtype=np.uint32)},
        dpg={"AF": {"color": np.array([255, 0, 0], dtype=np.uint8)}} if dpg else None)
    path = Path(folder, name)
    save(trx, path)
    return str(path)
