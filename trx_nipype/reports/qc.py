"""The QC table: one row per subject x bundle, outliers flagged by a robust z-score.

Within each bundle, every subject's streamline count and mean length is
compared with the other subjects' by the modified z-score of Iglewicz and
Hoaglin (1993), ``z = 0.6745 (x - median) / MAD``, where MAD is the median
absolute deviation from the median (0.6745 makes it comparable with a
standard score for normal data). Counts and lengths are compared as ratios:
``x`` is ``log(1 + count)`` and ``log(mean length)``, so that ten times
fewer and ten times more streamlines are equally far from the median. MAD
is taken as at least :data:`MAD_FLOOR` (5 %): with the few subjects of a
small study MAD is itself noisy, or 0 when most subjects share a count, and
a difference of a few percent must not become an outlier. A row is an
outlier when ``|z| > 3.5`` for its count or its mean length. Bundles found in
fewer than :data:`MIN_SUBJECTS` subjects are not scored.

>>> robust_z([50, 48, 52, 49, 5]).round(2).tolist()
[0.67, -0.67, 2.02, 0.0, -29.68]
>>> robust_z(np.log1p([50, 50, 50, 50, 5]), floor=MAD_FLOOR).round(1).tolist()
[0.0, 0.0, 0.0, 0.0, -28.9]
>>> robust_z(np.log1p([50, 50, 50, 50, 49]), floor=MAD_FLOOR).round(1).tolist()
[0.0, 0.0, 0.0, 0.0, -0.3]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .render import write_bytes_atomic

#: |z| above which a value is an outlier
OUTLIER_THRESHOLD = 3.5
#: bundles found in fewer subjects are not scored
MIN_SUBJECTS = 3
#: the smallest MAD used, on the log scale (0.05: 5 %)
MAD_FLOOR = 0.05
#: the columns of ``qc.tsv``
QC_COLUMNS = ("subject", "bundle", "nb_streamlines", "mean_length_mm", "outlier")
#: the rule, as the report states it
OUTLIER_RULE = (
    f"Within each bundle, a subject's streamline count and its mean length are each compared "
    f"with the other subjects' by a robust z-score, z = 0.6745 (x − median) / MAD, where MAD "
    f"is the median absolute deviation from the median (Iglewicz and Hoaglin's modified "
    f"z-score). Both are compared as ratios: x = log(1 + count) and x = log(mean length), so "
    f"that ten times fewer and ten times more streamlines are equally far from the median; "
    f"MAD is taken as at least {MAD_FLOOR:g} (5 %), so that with few subjects a difference of "
    f"a few percent is never an outlier. A subject's bundle is an outlier when "
    f"|z| > {OUTLIER_THRESHOLD:g} for its count or its mean length. Bundles found in fewer "
    f"than {MIN_SUBJECTS} subjects are not scored.")


def robust_z(values: Iterable[float], *, floor: float = 0.0) -> np.ndarray:
    """Modified z-scores ``0.6745 (x - median) / max(MAD, floor)`` (NaN stays NaN).

    Parameters
    ----------
    values : iterable of float
        One value per subject; NaN for none.
    floor : float
        The smallest MAD used. With ``floor=0`` and MAD 0, values equal to
        the median score 0 and the others infinity.

    Returns
    -------
    numpy.ndarray
        float64, same length.
    """
    x = np.asarray(list(values), dtype=np.float64)
    z = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if not ok.any():
        return z
    dev = x[ok] - np.median(x[ok])
    scale = max(float(np.median(np.abs(dev))), floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        z[ok] = np.where(dev == 0, 0.0, 0.6745 * dev / scale)
    return z


@dataclass(frozen=True)
class QcRow:
    """One subject's bundle: its counts, robust z-scores and whether it is an outlier.

    ``mean_length_mm`` is None for an empty bundle; the z-scores are NaN
    where not computed (too few subjects, empty bundle).
    """

    subject: str
    bundle: str
    nb_streamlines: int
    mean_length_mm: float | None
    z_count: float = float("nan")
    z_length: float = float("nan")

    @property
    def outlier(self) -> bool:
        """``|z| > OUTLIER_THRESHOLD`` for the count or the mean length."""
        return any(np.isfinite(z) and abs(z) > OUTLIER_THRESHOLD
                   for z in (self.z_count, self.z_length))

    @property
    def reasons(self) -> list[str]:
        """Why it is an outlier: ``["streamlines z = -12.3", ...]``."""
        out = []
        for what, z in (("streamlines", self.z_count), ("mean length", self.z_length)):
            if np.isfinite(z) and abs(z) > OUTLIER_THRESHOLD:
                out.append(f"{what} z = {z:+.1f}")
        return out


def score_rows(rows: Sequence[QcRow]) -> list[QcRow]:
    """The rows with their z-scores, sorted by subject then bundle (see the module docstring)."""
    out: list[QcRow] = []
    for bundle in sorted({r.bundle for r in rows}):
        members = [r for r in rows if r.bundle == bundle]
        if len(members) < MIN_SUBJECTS:
            out.extend(replace(r, z_count=float("nan"), z_length=float("nan"))
                       for r in members)
            continue
        zc = robust_z((np.log1p(r.nb_streamlines) for r in members), floor=MAD_FLOOR)
        zl = robust_z((np.log(r.mean_length_mm) if r.mean_length_mm else np.nan
                       for r in members), floor=MAD_FLOOR)
        out.extend(replace(r, z_count=float(a), z_length=float(b))
                   for r, a, b in zip(members, zc, zl, strict=True))
    return sorted(out, key=lambda r: (r.subject, r.bundle))


def qc_tsv(rows: Sequence[QcRow]) -> str:
    """The text of ``qc.tsv``: a header and one row per subject x bundle (``n/a``: none)."""
    lines = ["\t".join(QC_COLUMNS)]
    for r in rows:
        length = "n/a" if r.mean_length_mm is None else f"{r.mean_length_mm:.3f}"
        lines.append("\t".join((r.subject, r.bundle, str(r.nb_streamlines), length,
                                "true" if r.outlier else "false")))
    return "\n".join(lines) + "\n"


def check_qc_replaceable(path: str | os.PathLike) -> None:
    """Refuse (``FileExistsError``) to replace anything but an earlier ``qc.tsv`` of ours."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
    except OSError:
        first = b""
    if first.rstrip(b"\r\n") != "\t".join(QC_COLUMNS).encode():
        raise FileExistsError(f"{path}: exists and is not a QC table of trx-nipype; not "
                              "replaced")


def write_qc_tsv(path: str | os.PathLike, rows: Sequence[QcRow]) -> Path:
    """Write :func:`qc_tsv` to ``path`` atomically (replacing only a QC table); return it."""
    check_qc_replaceable(path)
    return write_bytes_atomic(path, qc_tsv(rows).encode("utf-8"))
