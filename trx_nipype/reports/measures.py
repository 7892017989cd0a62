"""What a report shows of one tractogram: counts and lengths per group, a sample to draw.

:func:`measure_tractogram` reads a tractogram once, chunk by chunk over its
maps (:func:`trx_nipype.core.metrics.lengths_mm`): anonymous memory holds the
``(N,)`` lengths, the group indices and a seeded sample of at most
``max_streamlines`` streamlines, whatever the file size.

Groups are drawn one colour each, in sorted order; streamlines in no group
form one more category (``(no group)``, grey), and a file without groups
is one category (``all streamlines``). Groups may overlap: a streamline in
two groups counts in both.

>>> import numpy as np
>>> from trx_nipype.core import TrxFile
>>> trx = TrxFile.from_arrays(np.array([[0, 0, 0], [3, 4, 0], [0, 0, 0], [0, 0, 9]],
...                                    dtype=np.float32), lengths=[2, 2],
...                           groups={"CST": [1]})
>>> m = measure_tractogram(trx)
>>> [(c.name, c.count, c.lengths.tolist()) for c in m.categories]
[('CST', 1, [9.0]), ('(no group)', 1, [5.0])]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..core.metrics import lengths_mm
from ..core.trxfile import TrxFile
from .render import NO_GROUP_COLOUR, group_colours

#: streamlines drawn per figure at most (a seeded sample beyond)
DEFAULT_MAX_STREAMLINES = 3000
#: streamlines drawn per category at least (when it has them), whatever the budget
MIN_PER_CATEGORY = 20
#: the category of streamlines that belong to no group
NO_GROUP = "(no group)"
#: the category of a file without groups
ALL_STREAMLINES = "all streamlines"


@dataclass(frozen=True)
class CategoryStats:
    """A category's counts and length statistics (mm; None when empty), without its arrays."""

    name: str
    colour: str
    count: int
    mean: float | None
    median: float | None
    minimum: float | None
    maximum: float | None


@dataclass
class Category:
    """One colour of a figure: a group, the ungrouped streamlines, or all of them.

    Attributes
    ----------
    name : str
        The group's name, :data:`NO_GROUP` or :data:`ALL_STREAMLINES`.
    count : int
        Its streamlines.
    lengths : numpy.ndarray
        Their lengths in mm (float64).
    colour : str
        ``#rrggbb``.
    positions : numpy.ndarray
        ``(V, 3)`` RAS+ mm vertices of the drawn sample.
    sample_lengths : numpy.ndarray
        Vertices per drawn streamline (they sum to ``V``).
    """

    name: str
    count: int
    lengths: np.ndarray
    colour: str
    positions: np.ndarray = field(repr=False)
    sample_lengths: np.ndarray = field(repr=False)

    @property
    def mean_length(self) -> float | None:
        """Mean length in mm (None when empty)."""
        return float(self.lengths.mean()) if self.count else None

    @property
    def drawn(self) -> int:
        """Streamlines in the drawn sample."""
        return len(self.sample_lengths)

    def stats(self) -> CategoryStats:
        """Its counts and length statistics, small enough to keep for many files."""
        if not self.count:
            return CategoryStats(self.name, self.colour, 0, None, None, None, None)
        lengths = self.lengths
        return CategoryStats(self.name, self.colour, self.count, float(lengths.mean()),
                             float(np.median(lengths)), float(lengths.min()),
                             float(lengths.max()))


@dataclass
class TractogramMeasures:
    """Counts, lengths and a drawable sample of one tractogram (see the module docstring).

    Attributes
    ----------
    nb_streamlines, nb_vertices : int
        The whole tractogram's counts.
    categories : list of Category
        Groups in sorted order, then :data:`NO_GROUP` if any streamline is in
        none (or one :data:`ALL_STREAMLINES` category without groups).
    box : numpy.ndarray or None
        ``(2, 3)`` lowest and highest RAS+ mm corner of the reference grid
        (voxel edges), or None for a grid of one voxel in some axis (no box).
    dimensions : tuple of int
        The grid's ``DIMENSIONS``.
    voxel_sizes : tuple of float
        Voxel sizes in mm (norms of the affine's columns).
    """

    nb_streamlines: int
    nb_vertices: int
    categories: list[Category]
    box: np.ndarray | None
    dimensions: tuple[int, ...]
    voxel_sizes: tuple[float, ...]

    @property
    def sampled(self) -> bool:
        """Whether the figures draw a sample (some category has more than it draws)."""
        return any(c.drawn < c.count for c in self.categories)

    @property
    def drawn(self) -> int:
        """Streamlines drawn, over every category."""
        return sum(c.drawn for c in self.categories)

    @property
    def all_lengths(self) -> np.ndarray:
        """Lengths (mm) of every category together (overlapping groups count twice)."""
        arrays = [c.lengths for c in self.categories]
        return np.concatenate(arrays) if arrays else np.zeros(0)


def grid_box(affine: np.ndarray, dimensions: np.ndarray) -> np.ndarray | None:
    """``(2, 3)`` RAS+ mm extent of a voxel grid (voxel edges), None if any dimension is <= 1.

    >>> grid_box(np.diag([2.0, 2.0, 2.0, 1.0]), np.array([10, 10, 5])).tolist()
    [[-1.0, -1.0, -1.0], [19.0, 19.0, 9.0]]
    """
    dims = np.asarray(dimensions, dtype=np.float64)
    if dims.shape != (3,) or np.any(dims <= 1):
        return None
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)],
                       dtype=np.float64) * dims - 0.5
    ras = corners @ np.asarray(affine, np.float64)[:3, :3].T + np.asarray(affine)[:3, 3]
    return np.stack([ras.min(axis=0), ras.max(axis=0)])


def _category_members(trx: TrxFile) -> list[tuple[str, np.ndarray | None]]:
    """(name, streamline indices) of each category; None means every streamline."""
    if not trx.groups:
        return [(ALL_STREAMLINES, None)]
    out: list[tuple[str, np.ndarray | None]] = []
    grouped = np.zeros(len(trx), dtype=bool)
    for name in sorted(trx.groups):
        idx = np.asarray(trx.groups[name], dtype=np.int64)
        grouped[idx] = True
        out.append((name, idx))
    if not grouped.all():
        out.append((NO_GROUP, np.flatnonzero(~grouped)))
    return out


def _sample_indices(vertex_counts: np.ndarray, members: np.ndarray | None, cap: int,
                    seed: int) -> np.ndarray:
    """The streamlines of a category to draw: all of them, or a seeded draw of ``cap``.

    The same draw as ``trx.select(members).sample(cap, seed=seed)`` (trailing
    empty streamlines left out, ``numpy.random.default_rng(seed)``, file
    order), without building views: a view re-indexes every group, which
    costs groups x categories for a population file of many subjects.
    """
    idx = np.arange(len(vertex_counts), dtype=np.int64) if members is None else members
    if len(idx) <= cap:
        return idx
    nonzero = np.flatnonzero(vertex_counts[idx])
    used = idx[:int(nonzero[-1]) + 1] if nonzero.size else idx[:0]
    if len(used) <= cap:
        return used
    rng = np.random.default_rng(seed)
    return used[np.sort(rng.choice(len(used), size=cap, replace=False))]


def _read_samples(trx: TrxFile, picked: list[np.ndarray]
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Positions (float32) and vertex counts of each category's picked streamlines, read
    in one pass of bounded reads (not the map: a file cut short meanwhile is an error,
    not SIGBUS)."""
    every = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    view = trx.select(every)
    blocks = [pos for _, pos in view.iter_positions(dtype=np.float32)]
    points = np.concatenate(blocks).reshape(-1, 3) if blocks else np.zeros((0, 3), np.float32)
    lengths = np.asarray(view.lengths, dtype=np.int64)
    out = []
    first = vertex = 0
    for idx in picked:
        lens = lengths[first:first + len(idx)]
        nv = int(lens.sum())
        out.append((points[vertex:vertex + nv], lens))
        first, vertex = first + len(idx), vertex + nv
    return out


def measure_tractogram(trx: TrxFile, *, max_streamlines: int = DEFAULT_MAX_STREAMLINES,
                       seed: int = 0, colours: Mapping[str, str] | None = None
                       ) -> TractogramMeasures:
    """Counts and lengths per group, and a seeded sample of each group to draw.

    Parameters
    ----------
    trx : TrxFile
        A loaded tractogram (or a view).
    max_streamlines : int
        Streamlines drawn in all: each category draws at most
        ``max(MIN_PER_CATEGORY, max_streamlines // categories)`` of its
        streamlines, a seeded random sample in file order when it has more.
    seed : int
        Seed of the samples (the same file and seed: the same figures).
    colours : mapping, optional
        Colours of some names (a population's subjects, the same in every
        figure); the other categories get :func:`~.render.group_colours`.

    Returns
    -------
    TractogramMeasures
    """
    if max_streamlines < 1:
        raise ValueError(f"max_streamlines must be >= 1, got {max_streamlines}")
    lengths = lengths_mm(trx)
    members = _category_members(trx)
    names = [name for name, _ in members if name != NO_GROUP]
    palette = group_colours(names)
    palette.update({k: v for k, v in (colours or {}).items() if k in palette})
    palette[NO_GROUP] = NO_GROUP_COLOUR
    cap = max(MIN_PER_CATEGORY, max_streamlines // len(members))
    counts = np.asarray(trx.lengths)
    samples = _read_samples(trx, [_sample_indices(counts, idx, cap, seed) for _, idx in members])
    categories = []
    for (name, idx), (positions, sample_lengths) in zip(members, samples, strict=True):
        cat_lengths = lengths if idx is None else lengths[idx]
        categories.append(Category(name, len(cat_lengths), cat_lengths, palette[name],
                                   positions, sample_lengths))
    affine = trx.affine
    return TractogramMeasures(
        nb_streamlines=len(trx), nb_vertices=trx.nb_vertices, categories=categories,
        box=grid_box(affine, trx.dimensions),
        dimensions=tuple(int(d) for d in trx.dimensions),
        voxel_sizes=tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0)))
