"""Selection: above the disagreement threshold, diverse by farthest-point sampling.

Optionally, part of each round is reserved for named exploration routes
(``select.min_per_route``, e.g. ``{contact: 2}``): up to that many candidates of
each such route are taken first, whatever their disagreement (the route's most
disagreeing one, then farthest points among the route's candidates), within the
cap and in the order given. The rest of the cap is filled as without quotas, but
the farthest-point distances start from every candidate already chosen.

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
    return _continue_fps(x, n, [first], np.linalg.norm(x - x[first], axis=1))


def _continue_fps(x: np.ndarray, n: int, chosen: list[int], dist: np.ndarray) -> list[int]:
    """Farthest-point sampling of rows of ``x`` up to ``n`` in all, from ``chosen``.

    ``dist`` is each row's distance to what is already chosen (``chosen`` rows,
    and any structure chosen outside ``x``); rows in ``chosen`` are never re-picked.
    """
    chosen = list(chosen)
    while len(chosen) < min(n, len(x)):
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 0.0:  # only duplicates left: still take by order
            rest = [i for i in range(len(x)) if i not in chosen]
            nxt = rest[0]
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(x - x[nxt], axis=1))
    return chosen


def select(*args, **kwargs) -> list[int]:
    """Indices of the selected candidates: :func:`select_with_quota` without its counts.

    Candidates need ``info["forces_std_max"]`` (:func:`workflows.learn.explore.score`)
    and, with ``min_per_route``, ``info["route"]``.
    """
    return select_with_quota(*args, **kwargs)[0]


def select_with_quota(
    candidates: list[Atoms],
    threshold: float,
    cap: int,
    r_max: float = 6.0,
    bins: int = 40,
    min_per_route: dict[str, int] | None = None,
) -> tuple[list[int], dict[str, int]]:
    """The selected indices and how many were picked by each route's quota.

    First, for each route of ``min_per_route`` in its order, up to its quota of
    that route's candidates whatever their disagreement: the most disagreeing
    one, then farthest points among the route's candidates; quota picks stop
    when ``cap`` is reached. Then the rest of ``cap`` from the candidates above
    ``threshold``: the most disagreeing one (unless already chosen), then
    farthest points, the distances counting every candidate already chosen.
    Quota picks come first in the result (routes in the order given). Without
    quotas the result is the plain threshold + farthest-point selection.
    """
    spread = np.array([a.info["forces_std_max"] for a in candidates])
    by_quota: dict[str, int] = {route: 0 for route in (min_per_route or {})}
    if cap <= 0 or not candidates:
        return [], by_quota
    cache: dict[int, np.ndarray] = {}

    def desc(idx) -> np.ndarray:
        for i in idx:
            if i not in cache:
                cache[i] = descriptor(candidates[i], r_max, bins)
        return np.stack([cache[i] for i in idx])

    chosen: list[int] = []
    for route, quota in (min_per_route or {}).items():
        members = [i for i, a in enumerate(candidates) if a.info.get("route") == route]
        n = min(int(quota), cap - len(chosen), len(members))
        if n <= 0:
            continue
        first = int(np.argmax(spread[members]))
        picks = farthest_points(desc(members), first, n)
        chosen += [members[k] for k in picks]
        by_quota[route] = len(picks)
    taken = set(chosen)
    above = np.flatnonzero(spread > threshold)
    pool = [int(i) for i in above if int(i) not in taken]
    n_rest = cap - len(chosen)
    if not pool or n_rest <= 0:
        return chosen, by_quota
    x = desc(pool)
    dist = np.full(len(pool), np.inf)
    for c in chosen:
        dist = np.minimum(dist, np.linalg.norm(x - cache[c], axis=1))
    start: list[int] = []
    top = int(above[np.argmax(spread[above])])
    if top not in taken:  # the most disagreeing above the threshold comes first, as always
        k = pool.index(top)
        start = [k]
        dist = np.minimum(dist, np.linalg.norm(x - x[k], axis=1))
    picks = _continue_fps(x, n_rest, start, dist)
    return chosen + [pool[k] for k in picks], by_quota
