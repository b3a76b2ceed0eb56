"""The domain of a model's training data, and warnings for structures outside it.

A model file written by training carries, in its metadata under ``"domain"``,
statistics of the training structures (:func:`domain_statistics`)::

    {"r_max": 5.0, "n_structures": 240,
     "elements": ["Si"],
     "combinations": [["Si"]],                    # element sets of whole structures
     "min_distance": {"Si-Si": 1.93, "*": 1.93},  # shortest pair distance (A)
     "coordination": {"Si": [14, 41]}}            # neighbours within r_max, min and max

:class:`pansim.PANCalculator` compares each structure it evaluates with them
(:func:`check_domain`) and reports, never refuses:

- an element combination no training structure had (``ethanol`` on H2),
- a pair of atoms closer than the closest such pair in training (two atoms
  0.3 A apart; pairs never seen in training are compared with the shortest
  distance of any pair),
- an atom with more or fewer neighbours within ``r_max`` than any atom of its
  element in training.

Each finding is a line in ``calc.results["warnings"]`` (empty list: inside the
domain) and, the first time a calculator meets each kind, a
:class:`DomainWarning` through :mod:`warnings` and a ``logging`` warning on the
``pansim.domain`` logger (MD runs would otherwise repeat them every step).
Models without statistics (older files, modules built in Python) are not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: metadata key of the statistics in a model file
DOMAIN_KEY = "domain"


class DomainWarning(UserWarning):
    """A structure outside the model's training domain (the message says how)."""


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]


def _pair(a: int, b: int) -> str:
    return "-".join(sorted((_symbol(a), _symbol(b))))


def _edges(graph: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sender, receiver and length of every edge of a :func:`pansim.graph.atoms_to_graph` graph."""
    send, recv = graph["edge_index"]
    pos = graph["positions"]
    lengths = np.linalg.norm(pos[recv] - pos[send] + graph["shifts"], axis=1)
    return send, recv, lengths


def domain_statistics(
    graphs: Iterable[dict[str, np.ndarray]], numbers: Iterable[Sequence[int]], r_max: float
) -> dict[str, Any]:
    """Statistics of training structures (graphs within ``r_max`` and their atomic numbers).

    Returns
    -------
    dict
        JSON-ready: ``r_max``, ``n_structures``, ``elements``, ``combinations``,
        ``min_distance`` (per sorted element pair and ``"*"``, A) and
        ``coordination`` (per element ``[min, max]`` neighbour count).
    """
    combos: set[tuple[str, ...]] = set()
    dmin: dict[str, float] = {}
    coord: dict[str, list[int]] = {}
    n = 0
    for graph, z in zip(graphs, numbers, strict=True):
        z = np.asarray(z, dtype=int)
        n += 1
        combos.add(tuple(sorted({_symbol(x) for x in z})))
        send, recv, lengths = _edges(graph)
        for key, d in _pair_minima(z, send, recv, lengths).items():
            dmin[key] = min(dmin.get(key, np.inf), d)
        counts = np.bincount(recv, minlength=len(z))
        for x in np.unique(z):
            c = counts[z == x]
            lo, hi = coord.get(_symbol(x), [int(c.min()), int(c.max())])
            coord[_symbol(x)] = [min(lo, int(c.min())), max(hi, int(c.max()))]
    if dmin:
        dmin["*"] = min(dmin.values())
    return {
        "r_max": float(r_max),
        "n_structures": n,
        "elements": sorted({s for c in combos for s in c}),
        "combinations": [list(c) for c in sorted(combos)],
        "min_distance": {k: round(float(v), 6) for k, v in sorted(dmin.items())},
        "coordination": dict(sorted(coord.items())),
    }


def _pair_minima(
    z: np.ndarray, send: np.ndarray, recv: np.ndarray, lengths: np.ndarray
) -> dict[str, float]:
    """Shortest edge per sorted element pair."""
    out: dict[str, float] = {}
    if not len(lengths):
        return out
    za, zb = np.minimum(z[send], z[recv]), np.maximum(z[send], z[recv])
    for a, b in set(zip(za.tolist(), zb.tolist(), strict=True)):
        mask = (za == a) & (zb == b)
        out[_pair(a, b)] = float(lengths[mask].min())
    return out


def check_domain(graph: dict[str, np.ndarray], numbers: Sequence[int], stats: dict) -> list[str]:
    """Findings (one line each) for a structure outside the domain ``stats``; [] if inside.

    ``graph`` must be built with the cutoff of ``stats`` (the model's ``r_max``).
    """
    z = np.asarray(numbers, dtype=int)
    send, recv, lengths = _edges(graph)
    minima = _pair_minima(z, send, recv, lengths)
    return domain_findings(z, minima, np.bincount(recv, minlength=len(z)), stats)


class DomainTally:
    """What :func:`check_domain` needs, gathered piece by piece (chunked evaluation).

    Every edge of the structure must be added exactly once (an edge belongs to the
    piece that owns its receiving atom); ``numbers`` are the whole structure's.
    :meth:`findings` then gives the lines :func:`check_domain` gives for the whole
    structure's graph.
    """

    def __init__(self, numbers: Sequence[int]) -> None:
        self.numbers = np.asarray(numbers, dtype=int)
        self.minima: dict[str, float] = {}
        self.counts = np.zeros(len(self.numbers), dtype=np.int64)

    def add(self, send: np.ndarray, recv: np.ndarray, lengths: np.ndarray) -> None:
        """Edges ``send -> recv`` (indices of the whole structure) and their lengths (A)."""
        for key, d in _pair_minima(self.numbers, send, recv, lengths).items():
            self.minima[key] = min(self.minima.get(key, np.inf), d)
        np.add.at(self.counts, recv, 1)

    def findings(self, stats: dict) -> list[str]:
        """The out-of-domain lines of everything added (see :func:`check_domain`)."""
        return domain_findings(self.numbers, self.minima, self.counts, stats)


def domain_findings(
    numbers: Sequence[int], minima: dict[str, float], counts: np.ndarray, stats: dict
) -> list[str]:
    """Out-of-domain lines from a structure's summary.

    ``numbers``: atomic number of every atom; ``minima``: shortest distance per sorted
    element pair (``"Si-O"``); ``counts``: neighbours of every atom within the cutoff
    of ``stats``.
    """
    z = np.asarray(numbers, dtype=int)
    found = []
    combo = sorted({_symbol(x) for x in z})
    if combo not in [sorted(c) for c in stats.get("combinations", [])]:
        known = ", ".join("".join(c) for c in stats.get("combinations", []))
        found.append(
            f"element combination {'-'.join(combo)} never seen in training (seen: {known})"
        )
    dmin = stats.get("min_distance", {})
    for key, d in sorted(minima.items()):
        limit = dmin.get(key, dmin.get("*"))
        if limit is not None and d < limit:
            found.append(f"distance {key} {d:.3f} A below the shortest in training ({limit:.3f} A)")
    coord = stats.get("coordination", {})
    for x in np.unique(z):
        span = coord.get(_symbol(x))
        if span is None:
            continue
        c = counts[z == x]
        if c.max() > span[1] or c.min() < span[0]:
            found.append(
                f"coordination of {_symbol(x)} {int(c.min())}..{int(c.max())} neighbours "
                f"outside the training range {span[0]}..{span[1]} (r_max {stats.get('r_max')} A)"
            )
    return found


def finding_kind(line: str) -> str:
    """The subject of a :func:`domain_findings` line, e.g. ``"distance Li-Li"``."""
    words = line.split(" ")
    return " ".join(words[: 3 if words[0] == "coordination" else 2])


def finding_distance(line: str) -> float:
    """The distance (A) of a ``distance ...`` line of :func:`domain_findings`; inf otherwise."""
    words = line.split(" ")
    try:
        return float(words[2]) if words[0] == "distance" else float("inf")
    except (IndexError, ValueError):
        return float("inf")


def model_domain(model: Any) -> dict | None:
    """The domain statistics a loaded model file carried (None if it had none)."""
    meta = getattr(model, "pansim_metadata", None) or {}
    stats = meta.get(DOMAIN_KEY)
    return stats if isinstance(stats, dict) and stats.get("combinations") else None


def add_domain_to_file(path, train_file) -> dict:
    """Rewrite model file ``path`` with the domain statistics of ``train_file``; return them.

    For models trained before files carried their training domain: the statistics of the
    structures in ``train_file`` (any ASE-readable file) with the model's own elements and
    cutoff go into ``metadata["domain"]`` and the content hash is recomputed; the tensors
    are written back unchanged (the file is replaced atomically).
    """
    import json

    from ase.io import read

    from pansim.graph import atoms_to_graph
    from pansim.model_checks import element_numbers
    from pansim.model_io import read_model_file, write_model_file

    config, meta, tensors = read_model_file(path)
    numbers, r_max = element_numbers(config["elements"]), float(config["r_max"])
    structures = read(str(train_file), index=":")
    graphs = [atoms_to_graph(a, numbers, r_max) for a in structures]
    meta[DOMAIN_KEY] = domain_statistics(graphs, [a.numbers for a in structures], r_max)
    write_model_file(
        path, json.dumps(config, sort_keys=True), json.dumps(meta, sort_keys=True), tensors
    )
    return meta[DOMAIN_KEY]
