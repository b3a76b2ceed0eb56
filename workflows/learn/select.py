"""Selection: above the disagreement threshold, diverse by farthest-point sampling.

The structural distance is the Euclidean distance between sorted-distance
histograms: for each structure, the histogram of all interatomic distances up to
``r_max`` (minimum image and periodic images through ASE's neighbour list),
normalised per atom. Cheap, invariant to rotations, translations and atom
order, and it separates compressed, hot, defective and close-contact cells.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list


def descriptor(atoms: Atoms, r_max: float = 6.0, bins: int = 40) -> np.ndarray:
    """Pair-distance histogram of ``atoms`` (pairs per atom in each of ``bins`` up to ``r_max``)."""
    d = neighbor_list("d", atoms, r_max)
    hist, _ = np.histogram(d, bins=bins, range=(0.0, r_max))
    return hist / max(len(atoms), 1)


def farthest_points(x: np.ndarray, first: int, n: int) -> list[int]:
    """``n`` rows of ``x`` by farthest-point sampling, starting from row ``first``."""
    chosen = [first]
    dist = np.linalg.norm(x - x[first], axis=1)
    while len(chosen) < min(n, len(x)):
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 0.0 and len(chosen) > 0:  # only duplicates left: still take by order
            rest = [i for i in range(len(x)) if i not in chosen]
            nxt = rest[0]
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(x - x[nxt], axis=1))
    return chosen


def select(
    candidates: list[Atoms], threshold: float, cap: int, r_max: float = 6.0, bins: int = 40
) -> list[int]:
    """Indices of the selected candidates (most disagreeing first, then farthest points).

    Candidates need ``info["forces_std_max"]`` (:func:`workflows.learn.explore.score`).
    """
    spread = np.array([a.info["forces_std_max"] for a in candidates])
    above = np.flatnonzero(spread > threshold)
    if above.size == 0 or cap <= 0:
        return []
    x = np.stack([descriptor(candidates[i], r_max, bins) for i in above])
    first = int(np.argmax(spread[above]))
    return [int(above[k]) for k in farthest_points(x, first, cap)]
