"""Geometry helpers shared by the DFT reference builders and the validation workflows.

- :func:`nearest_neighbour`, :func:`contact_cell`: the compressed-contact cells of
  the repulsion scan (``workflows.repulsion`` and the crystal DFT jobs of
  :mod:`pansim.data.reference` build their points with these same functions);
- :func:`is_linear`, :func:`rigid_body_basis`: translations and rotations of a
  finite structure (``workflows.vibrations`` and the molecule DFT forces of
  :mod:`pansim.data.molecule_reference`).
"""

from __future__ import annotations

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
