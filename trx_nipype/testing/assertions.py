"""Assertions over tractograms and output folders, raising the compare report.

Imported by :mod:`trx_nipype.testing` (lazily: the pytest plugin in the same
package must not load numpy and nibabel into every pytest run).
"""

from __future__ import annotations

import os
from typing import Any

from ..core.operations.compare import (
    Comparison,
    compare,
    compare_tractograms,
    compare_trees,
    compare_trx,
)
from ..core.operations.manifest import check_manifest
from ..core.trxfile import TrxFile

__all__ = [
    "assert_matches_manifest",
    "assert_tractograms_equal",
    "assert_trees_equal",
]


def _raise_unless_equal(result: Comparison, msg: str | None) -> Comparison:
    if not result.equal:
        report = result.report()
        raise AssertionError(f"{msg}\n{report}" if msg else report)
    return result


def assert_tractograms_equal(a: str | os.PathLike | TrxFile, b: str | os.PathLike | TrxFile,
                             *, atol: float = 0.0, data_atol: float | None = None,
                             check_dtypes: bool = True, reference: Any = None,
                             msg: str | None = None) -> Comparison:
    """Assert that two tractograms hold the same content (within tolerances).

    Parameters
    ----------
    a, b : path or TrxFile
        Files of any readable format (a TRX zip or folder, TRK, TCK...), or
        opened tractograms and views.
    atol : float
        Largest distance between corresponding points, in mm.
    data_atol : float, optional
        Largest difference between float dps/dpv/dpg values (default: ``atol``).
    check_dtypes : bool
        Also require the same dtypes of positions and data.
    reference : optional
        Space of files without one (TCK...): see
        :func:`~trx_nipype.core.operations.compare.compare_tractograms`.
    msg : str, optional
        Put before the report.

    Returns
    -------
    Comparison
        When equal (its ``notes`` say what was within tolerance).

    Raises
    ------
    AssertionError
        With the report: counts, groups, keys, the largest deviation and where.

    Examples
    --------
    >>> import numpy as np
    >>> a = TrxFile.from_arrays(np.zeros((3, 3), np.float32), lengths=[3])
    >>> b = TrxFile.from_arrays(np.ones((3, 3), np.float32), lengths=[3])
    >>> assert_tractograms_equal(a, a).equal
    True
    >>> assert_tractograms_equal(a, b)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    AssertionError: A and B differ: 1 difference (content compared, atol 0 mm)
      positions: largest deviation 1.73 mm at streamline 0, point 0 (of 3) > atol 0 mm; ...
    """
    if isinstance(a, TrxFile) or isinstance(b, TrxFile):
        from ..core.operations.compare import open_for_comparison

        opened = []
        try:
            sides = []
            for side in (a, b):
                if isinstance(side, TrxFile):
                    sides.append(side)
                else:
                    trx, _ = open_for_comparison(side, reference)
                    opened.append(trx)
                    sides.append(trx)
            result = compare_trx(sides[0], sides[1], atol=atol, data_atol=data_atol,
                                 check_dtypes=check_dtypes)
        finally:
            for trx in opened:
                trx.close()
    else:
        result = compare_tractograms(a, b, atol=atol, data_atol=data_atol,
                                     check_dtypes=check_dtypes, reference=reference)
    return _raise_unless_equal(result, msg)


def assert_trees_equal(a: str | os.PathLike, b: str | os.PathLike, *, atol: float = 0.0,
                       data_atol: float | None = None, check_dtypes: bool = True,
                       reference: Any = None, msg: str | None = None) -> Comparison:
    """Assert that two output folders hold the same files with the same content.

    Tractograms are compared as by :func:`assert_tractograms_equal`, JSON
    files as JSON without provenance (software versions, byte digests), other
    files by bytes; see :func:`~trx_nipype.core.operations.compare.compare_trees`.

    Raises
    ------
    AssertionError
        Naming every file missing, extra or different, and how.
    """
    if not (os.path.isdir(a) and os.path.isdir(b)):
        result = compare(a, b, atol=atol, data_atol=data_atol, check_dtypes=check_dtypes,
                         reference=reference)
    else:
        result = compare_trees(a, b, atol=atol, data_atol=data_atol,
                               check_dtypes=check_dtypes, reference=reference)
    return _raise_unless_equal(result, msg)


def assert_matches_manifest(path: str | os.PathLike, manifest: str | os.PathLike, *,
                            atol: float = 0.0, data_atol: float | None = None,
                            check_dtypes: bool = True, reference: Any = None,
                            msg: str | None = None) -> Comparison:
    """Assert that an output folder (or tractogram) matches a stored manifest.

    See :func:`~trx_nipype.core.operations.manifest.check_manifest` (and
    ``trx-nipype manifest --check``).

    Raises
    ------
    AssertionError
        Naming every file missing, extra or different, and how.
    """
    result = check_manifest(manifest, path, atol=atol, data_atol=data_atol,
                            check_dtypes=check_dtypes, reference=reference)
    return _raise_unless_equal(result, msg)
