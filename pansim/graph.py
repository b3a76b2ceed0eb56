"""Atoms -> graph dictionaries in the model contract of :mod:`pansim.backbones`.

Neighbour lists come from vesin (a fast cell-list implementation that handles
periodic, mixed and open boundaries and cells smaller than the cutoff); the
edge convention is MACE's: ``vector = positions[receiver] - positions[sender] + shifts``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

#: two atoms closer than this (Angstrom) are rejected as overlapping
MIN_DISTANCE = 0.1
#: most neighbours per atom within r_max that a periodic cell's density may imply
#: (dense solids with a 6 A cutoff have about 100); above it the neighbour list
#: would take GBs: the cell is refused before the list is built
MAX_NEIGHBORS_PER_ATOM = 2000


class InvalidStructureError(ValueError):
    """A structure that no model can evaluate (the message names the problem)."""


def validate_atoms(atoms: Atoms, atomic_numbers: Sequence[int]) -> None:
    """Raise :class:`InvalidStructureError` for structures no model can evaluate.

    Checks: empty structure, elements outside ``atomic_numbers``, NaN/inf
    positions or cell, and a zero-volume cell along periodic directions.
    Overlapping atoms are detected during graph construction.
    """
    if len(atoms) == 0:
        raise InvalidStructureError("empty Atoms: the structure has no atoms")
    known = {int(z) for z in atomic_numbers}
    unknown = sorted({int(z) for z in atoms.numbers} - known)
    if unknown:
        from ase.data import chemical_symbols

        names = [chemical_symbols[z] for z in unknown]
        supported = [chemical_symbols[z] for z in sorted(known)]
        raise InvalidStructureError(
            f"element(s) {names} not supported by this model; supported: {supported}"
        )
    if not np.all(np.isfinite(atoms.positions)):
        bad = np.where(~np.isfinite(atoms.positions).all(axis=1))[0].tolist()
        raise InvalidStructureError(f"NaN or inf in positions of atom(s) {bad[:10]}")
    cell = np.asarray(atoms.cell)
    if not np.all(np.isfinite(cell)):
        raise InvalidStructureError("NaN or inf in the cell")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any():
        rows = cell[pbc]
        if pbc.all():
            singular = abs(np.linalg.det(cell)) < 1e-8
        else:
            singular = np.linalg.matrix_rank(rows, tol=1e-8) < len(rows)
        if singular:
            raise InvalidStructureError(
                f"cell has zero volume along periodic directions (pbc={pbc.tolist()})"
            )


def check_cell_density(atoms: Atoms, r_max: float) -> None:
    """Refuse tiny or near-singular periodic cells before a neighbour list is built.

    Two checks, both in microseconds: the shortest lattice vector (after
    Minkowski reduction) must be at least :data:`MIN_DISTANCE`, otherwise every
    atom overlaps its own periodic image; and the atom density of the periodic
    cell must not imply more than :data:`MAX_NEIGHBORS_PER_ATOM` neighbours
    within ``r_max`` (a cell of 0.03 A, or a near-singular one, otherwise makes
    the neighbour list allocate GBs or run for minutes).

    Raises
    ------
    InvalidStructureError
        Naming the shortest lattice vector or the density.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        return
    cell = np.asarray(atoms.cell, dtype=np.float64)
    reduced, _ = _minkowski(cell, pbc)
    lengths = np.linalg.norm(reduced[pbc], axis=1)
    if lengths.min() < MIN_DISTANCE:
        raise InvalidStructureError(
            f"periodic cell too small: a lattice vector of {lengths.min():.4g} A < "
            f"{MIN_DISTANCE} A makes every atom overlap its own periodic image"
        )
    rows = cell[pbc]
    # volume (3D), area (2D) or length (1D) of the periodic part
    measure = float(np.sqrt(abs(np.linalg.det(rows @ rows.T))))
    reach = {1: 2.0 * r_max, 2: np.pi * r_max**2, 3: 4.0 / 3.0 * np.pi * r_max**3}[len(rows)]
    expected = len(atoms) / measure * reach
    if expected > MAX_NEIGHBORS_PER_ATOM:
        raise InvalidStructureError(
            f"periodic cell too dense or near-singular: {len(atoms)} atom(s) in a cell of "
            f"{measure:.4g} A^{len(rows)} would give ~{expected:.3g} neighbours per atom "
            f"within {r_max} A (limit {MAX_NEIGHBORS_PER_ATOM})"
        )


def neighbor_list(atoms: Atoms, r_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges within ``r_max``.

    Returns
    -------
    edge_index : np.ndarray
        [2, n_edges] int64, (sender, receiver).
    shifts : np.ndarray
        [n_edges, 3] Cartesian shift vectors, Angstrom.
    unit_shifts : np.ndarray
        [n_edges, 3] integer cell shifts.
    """
    import vesin

    pbc = np.asarray(atoms.pbc, dtype=bool)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    box = _padded_box(np.asarray(atoms.cell, dtype=np.float64), pbc, positions, r_max)
    search, op = _search_box(box, pbc)
    nl = vesin.NeighborList(cutoff=float(r_max), full_list=True)
    i, j, S = nl.compute(positions, search, pbc.tolist(), quantities="ijS")
    i, j, S = i.astype(np.int64), j.astype(np.int64), S.astype(np.int64)
    if op is not None:  # shifts of the reduced cell -> shifts of the caller's cell
        S = S @ op
    keep = ~((i == j) & np.all(S == 0, axis=1))
    i, j, S = i[keep], j[keep], S[keep]
    shifts = S @ box
    return np.stack((i, j)), shifts, S


def _minkowski(cell: np.ndarray, pbc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ASE's Minkowski reduction of ``cell`` along ``pbc``, cached on the exact cell."""
    reduced, op = _minkowski_cached(np.ascontiguousarray(cell, dtype=np.float64).tobytes(),
                                    tuple(bool(p) for p in pbc))  # fmt: skip
    return reduced.copy(), op.copy()


@functools.lru_cache(maxsize=32)
def _minkowski_cached(cell: bytes, pbc: tuple[bool, ...]) -> tuple[np.ndarray, np.ndarray]:
    from ase.geometry import minkowski_reduce

    return minkowski_reduce(np.frombuffer(cell, dtype=np.float64).reshape(3, 3), pbc=pbc)


def _heights(box: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell ``box``."""
    volume = abs(np.linalg.det(box))
    return np.array(
        [volume / np.linalg.norm(np.cross(box[(k + 1) % 3], box[(k + 2) % 3])) for k in range(3)]
    )


def _search_box(box: np.ndarray, pbc: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The cell to search neighbours in, and the integer map back (None: ``box`` itself).

    A strongly skewed cell (a face spacing far below what its lattice allows)
    makes cell-list searches scan huge image ranges: a near-singular cell hangs
    for minutes. Such a cell is replaced by its Minkowski-reduced form, the same
    lattice; ``reduced = op @ box``, so shifts ``S`` in it are ``S @ op`` in ``box``.
    """
    if not pbc.any():
        return box, None
    reduced, op = _minkowski(box, pbc)
    if _heights(box)[pbc].min() >= 0.5 * _heights(reduced)[pbc].min():
        return box, None
    return reduced, np.asarray(op, dtype=np.int64)


def _padded_box(cell: np.ndarray, pbc: np.ndarray, positions: np.ndarray, r_max: float):
    """Replace the cell rows of open directions by long orthogonal vectors."""
    box = cell.copy()
    if pbc.all():
        return box
    span = np.ptp(positions, axis=0).max() if len(positions) else 0.0
    length = 2.0 * (span + np.abs(positions).max() + r_max) + 1.0
    for axis in np.where(~pbc)[0]:
        # a vector orthogonal to the periodic rows keeps open directions open
        box[axis] = _orthogonal_vector(box, pbc, axis) * length
    return box


def _orthogonal_vector(box: np.ndarray, pbc: np.ndarray, axis: int) -> np.ndarray:
    periodic = box[pbc]
    if len(periodic) == 0:
        return np.eye(3)[axis]
    if len(periodic) == 2:
        v = np.cross(periodic[0], periodic[1])
        return v / np.linalg.norm(v)
    # one periodic direction: build an orthonormal complement, pick by open axis order
    a = periodic[0] / np.linalg.norm(periodic[0])
    trial = np.eye(3)[np.argmin(np.abs(a))]
    b = np.cross(a, trial)
    b /= np.linalg.norm(b)
    c = np.cross(a, b)
    open_axes = list(np.where(~pbc)[0])
    return (b, c)[open_axes.index(axis)]


def atoms_to_graph(
    atoms: Atoms, atomic_numbers: Sequence[int], r_max: float
) -> dict[str, np.ndarray]:
    """One structure as a float64 numpy graph (keys of the model contract, no batch keys).

    Raises
    ------
    InvalidStructureError
        For any problem named by :func:`validate_atoms`, or two atoms closer than
        :data:`MIN_DISTANCE`.
    """
    validate_atoms(atoms, atomic_numbers)
    check_cell_density(atoms, r_max)
    edge_index, shifts, unit_shifts = neighbor_list(atoms, r_max)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if edge_index.shape[1]:
        vec = positions[edge_index[1]] - positions[edge_index[0]] + shifts
        dist = np.linalg.norm(vec, axis=1)
        k = int(np.argmin(dist))
        if dist[k] < MIN_DISTANCE:
            a, b = int(edge_index[0, k]), int(edge_index[1, k])
            raise InvalidStructureError(
                f"atoms {a} and {b} overlap: distance {dist[k]:.4f} A < {MIN_DISTANCE} A"
            )
    z_index = {int(z): n for n, z in enumerate(atomic_numbers)}
    node_attrs = np.zeros((len(atoms), len(atomic_numbers)))
    node_attrs[np.arange(len(atoms)), [z_index[int(z)] for z in atoms.numbers]] = 1.0
    cell = np.asarray(atoms.cell, dtype=np.float64) * np.asarray(atoms.pbc)[:, None]
    return {
        "positions": positions,
        "node_attrs": node_attrs,
        "edge_index": edge_index,
        "shifts": shifts,
        "unit_shifts": unit_shifts.astype(np.float64),
        "cell": cell,
    }


def collate(
    graphs: Sequence[dict[str, np.ndarray]],
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Batch graphs into one disconnected graph (edge indices offset, ``batch``/``ptr`` built).

    Any extra per-graph array keys (e.g. reference labels) are concatenated too.
    """
    counts = [len(g["positions"]) for g in graphs]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    out: dict[str, torch.Tensor] = {}
    for key in graphs[0]:
        if key == "edge_index":
            arr = np.concatenate([g[key] + offsets[n] for n, g in enumerate(graphs)], axis=1)
            out[key] = torch.as_tensor(arr, dtype=torch.int64, device=device)
        else:
            arr = np.concatenate([np.atleast_1d(g[key]) for g in graphs])
            out[key] = torch.as_tensor(arr, dtype=dtype, device=device)
    out["batch"] = torch.as_tensor(np.repeat(np.arange(len(graphs)), counts), device=device)
    out["ptr"] = torch.as_tensor(offsets, dtype=torch.int64, device=device)
    out["head"] = torch.zeros(len(graphs), dtype=torch.int64, device=device)
    return out
