"""Geometry helpers shared by the DFT reference builders and the validation workflows.

- :func:`nearest_neighbour`, :func:`contact_cell`, :func:`contact_scan`: the
  compressed-contact scan, cells and analysis (``workflows.repulsion`` on a
  calculator, and the crystal DFT jobs of :mod:`pansim.data.reference` on their
  stored energies and forces, go through :func:`contact_scan`);
- :func:`is_linear`, :func:`rigid_body_basis`: translations and rotations of a
  finite structure (``workflows.vibrations`` and the molecule DFT forces of
  :mod:`pansim.data.molecule_reference`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms


def nearest_neighbour(atoms: Atoms, index: int = 0) -> tuple[int, np.ndarray]:
    """Nearest neighbour of atom ``index`` and the vector to it (A), periodic images included."""
    from ase.neighborlist import neighbor_list

    cutoff = 3.0
    while True:
        i, j, d_vec = neighbor_list("ijD", atoms, cutoff)
        mask = i == index
        if mask.any():
            k = int(np.argmin(np.linalg.norm(d_vec[mask], axis=1)))
            return int(j[mask][k]), d_vec[mask][k]
        if cutoff > 20.0:
            raise ValueError(f"atom {index} has no neighbour within 20 A")
        cutoff *= 1.5


def contact_cell(atoms: Atoms, index: int, vec: np.ndarray, fraction: float) -> Atoms:
    """``atoms`` copied, atom ``index`` moved along ``vec`` to ``fraction`` of the distance.

    ``vec`` points from the atom to its nearest neighbour; the DFT contact jobs
    (:func:`pansim.data.reference.contact_cells`) and ``workflows.repulsion`` use
    this same construction.
    """
    work = atoms.copy()
    work.positions[index] += (1.0 - fraction) * vec
    return work


#: the distances of the contact scan: 0.6 to 1 of the nearest-neighbour distance, 13 points
CONTACT_FRACTIONS = tuple(float(f) for f in np.linspace(0.6, 1.0, 13))


@dataclasses.dataclass
class ContactScan:
    """A compressed-contact scan: atom ``index`` moved toward its nearest neighbour.

    Attributes
    ----------
    index, neighbour : int
        The moved atom and its nearest neighbour.
    r_nn_A : float
        Their uncompressed distance (A).
    fractions : list of float
        Distances as fractions of ``r_nn_A``, ascending, the last one 1.
    r_A : np.ndarray
        Distances (A).
    energy_eV : np.ndarray
        Energy rise of the cell (eV), zero at the last (least compressed) point.
    force_eV_per_A : np.ndarray
        Force on the moved atom along the bond (eV/A), positive when repulsive.
    """

    index: int
    neighbour: int
    r_nn_A: float
    fractions: list[float]
    r_A: np.ndarray
    energy_eV: np.ndarray
    force_eV_per_A: np.ndarray


def contact_cells(
    atoms: Atoms,
    index: int = 0,
    fractions: Sequence[float] = CONTACT_FRACTIONS,
    toward: tuple[int, np.ndarray] | None = None,
) -> tuple[int, np.ndarray, list[Atoms]]:
    """The cells of the contact scan: neighbour, vector to it (A), one cell per fraction.

    ``toward``: the neighbour approached and the vector to it (A), default
    :func:`nearest_neighbour`. In a perfect crystal several neighbours (and, in a
    small cell, several images of one) are equally near; a stored scan gives its own.
    """
    j, vec = nearest_neighbour(atoms, index) if toward is None else toward
    vec = np.asarray(vec, dtype=float)
    return int(j), vec, [contact_cell(atoms, index, vec, f) for f in fractions]


def contact_scan(
    atoms: Atoms,
    evaluate: Callable[[list[Atoms]], tuple[np.ndarray, np.ndarray]],
    *,
    index: int = 0,
    fractions: Sequence[float] = CONTACT_FRACTIONS,
    toward: tuple[int, np.ndarray] | None = None,
) -> ContactScan:
    """Scan the compressed contact of atom ``index`` of ``atoms`` (not modified) with its neighbour.

    ``evaluate(cells) -> (energies [n] eV, forces [n, n_atoms, 3] eV/A)`` of the cells
    of :func:`contact_cells` (a calculator's, or stored DFT results). Energies are
    taken relative to the last fraction (give them ascending, ending at 1); the
    force is the one on the moved atom projected on the bond, positive = repulsive.
    ``toward`` as in :func:`contact_cells`.
    """
    fractions = [float(f) for f in fractions]
    j, vec, cells = contact_cells(atoms, index, fractions, toward)
    energies, forces = evaluate(cells)
    energies = np.asarray(energies, dtype=float)
    forces = np.asarray(forces, dtype=float)
    d_nn = float(np.linalg.norm(vec))
    unit = vec / d_nn
    return ContactScan(
        index=index,
        neighbour=j,
        r_nn_A=d_nn,
        fractions=fractions,
        r_A=np.asarray(fractions) * d_nn,
        energy_eV=energies - energies[-1],
        force_eV_per_A=np.array([float(-f[index] @ unit) for f in forces]),
    )


def is_linear(positions: np.ndarray, masses: np.ndarray, tol: float = 1e-3) -> bool:
    """Whether a structure is linear: smallest principal moment of inertia ~ 0."""
    pos = np.asarray(positions, float)
    if len(pos) < 3:
        return True
    m = np.asarray(masses, float)
    r = pos - m @ pos / m.sum()
    inertia = np.eye(3) * np.sum(m * (r**2).sum(1)) - np.einsum("i,ia,ib->ab", m, r, r)
    moments = np.linalg.eigvalsh(inertia)
    return bool(moments[0] < tol * max(moments[-1], 1e-12))


def rigid_body_basis(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal translations and rotations in mass-weighted coordinates, ``[3N, 6 or 5]``."""
    pos = np.asarray(positions, float)
    m = np.asarray(masses, float)
    sqm = np.sqrt(m)[:, None]
    r = pos - m @ pos / m.sum()
    vectors = []
    for axis in np.eye(3):
        vectors.append((sqm * axis).ravel())
        vectors.append((sqm * np.cross(axis, r)).ravel())
    u, s, _ = np.linalg.svd(np.array(vectors).T, full_matrices=False)
    rank = 5 if is_linear(pos, m) else 6
    return u[:, :rank] if s[rank - 1] > 1e-8 * s[0] else u[:, : int((s > 1e-8 * s[0]).sum())]
