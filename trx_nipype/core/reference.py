"""A tractogram's reference: the :class:`~trx_nipype.core.space.Space` a path or object gives.

TRX and TRK files carry a space; TCK, VTK and DPY files do not, and need a
*reference*: a NIfTI image, a TRK file or a TRX file (or an object holding a
space) from which :func:`space_from_reference` reads it, the way dipy's
``get_reference_info`` does. Reading a reference file may load it, so this
module sits above the loaders; the space maths themselves are in :mod:`.space`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SpaceMismatchError, TrxFormatError
from .space import Space, space_mismatch


def require_same_space(path: str | os.PathLike, space: Space, reference: Any,
                       ref_space: Space | None = None, atol: float = 1e-3) -> None:
    """Refuse a tractogram whose own space the reference's disagrees with.

    Parameters
    ----------
    path : str or os.PathLike
        The tractogram (named in the error).
    space : Space
        Its space.
    reference : str, os.PathLike or object
        What the user gave as the reference (named in the error).
    ref_space : Space, optional
        The reference's space, when already read (else read from ``reference``).
    atol : float
        Tolerance on the affine, in mm.

    Raises
    ------
    SpaceMismatchError
        Naming the tractogram, the reference and how the spaces differ.
    """
    if ref_space is None:
        ref_space = space_from_reference(reference)
    diff = space_mismatch(ref_space.affine, ref_space.dimensions, space.affine,
                          space.dimensions, atol)
    if diff is None:
        return
    name = os.fspath(reference) if isinstance(reference, (str, os.PathLike)) else \
        f"a {type(reference).__name__}"
    raise SpaceMismatchError(path, None, f"its space (dimensions {space.dimensions.tolist()}, "
                             f"affine {np.round(space.affine, 4).tolist()}) differs from the "
                             f"reference's ({name}: dimensions "
                             f"{ref_space.dimensions.tolist()}, affine "
                             f"{np.round(ref_space.affine, 4).tolist()}): {diff}")


def space_from_reference(reference: Any) -> Space:
    """Read a :class:`Space` from a reference.

    Parameters
    ----------
    reference : str, os.PathLike, Space, TrxFile, nibabel image or header
        A NIfTI file (``.nii``, ``.nii.gz``), a TRK file (``.trk``,
        ``.trk.gz``), a TRX file or directory, or an object: a :class:`Space`,
        a :class:`~trx_nipype.core.TrxFile`, a nibabel spatial image or NIfTI
        header, or an ``(affine, dimensions)`` pair.

    Returns
    -------
    Space

    Raises
    ------
    FileNotFoundError
        If a reference path does not exist.
    TrxFormatError
        If a reference file cannot be read as any of these formats.
    TypeError
        If ``reference`` is not one of the accepted kinds.
    """
    from .trxfile import TrxFile

    if isinstance(reference, Space):
        return reference
    if isinstance(reference, TrxFile):
        return Space.from_affine(reference.affine, reference.dimensions)
    if isinstance(reference, (str, os.PathLike)):
        return _space_from_path(Path(reference))
    if isinstance(reference, tuple) and len(reference) == 2:
        return Space.from_affine(*reference)
    import nibabel as nib

    if isinstance(reference, nib.spatialimages.SpatialImage):
        return _space_from_nifti_header(reference.header, reference.affine)
    if isinstance(reference, nib.Nifti1Header):
        return _space_from_nifti_header(reference, reference.get_best_affine())
    raise TypeError(f"reference must be a path (NIfTI, TRK or TRX), a Space, a TrxFile, a "
                    f"nibabel image or header, or (affine, dimensions); got "
                    f"{type(reference).__name__}")


def _space_from_nifti_header(header: Any, affine: np.ndarray) -> Space:
    shape = tuple(header.get_data_shape())[:3]
    if len(shape) < 3:
        shape = shape + (1,) * (3 - len(shape))
    zooms = tuple(header.get_zooms())[:3]
    return Space.from_affine(affine, shape, zooms if len(zooms) == 3 else None)


def _space_from_path(path: Path) -> Space:
    from .formats import detect_format

    if not path.exists():
        raise FileNotFoundError(f"{path}: reference not found")
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz", ".img", ".hdr", ".mgz", ".mgh")):
        import nibabel as nib

        try:
            img = nib.load(path)
        except Exception as exc:  # nibabel raises many kinds
            raise TrxFormatError(path, None, f"expected a readable image reference, found "
                                 f"an error: {exc}") from None
        return _space_from_nifti_header(img.header, img.affine)
    fmt = detect_format(path)
    if fmt == "trk":
        from .formats.trk import read_trk_header

        return read_trk_header(path).space
    if fmt == "trx":
        from .loader import load

        with load(path) as trx:
            return Space.from_affine(trx.affine, trx.dimensions)
    raise TrxFormatError(path, None, "expected a reference with a space: a NIfTI image "
                         "(.nii, .nii.gz), a TRK file or a TRX file")


