"""Unit conversions of the molecular labels (CODATA 2018, the values PySCF uses).

PySCF returns energies in Hartree and gradients in Hartree/Bohr; pansim stores
eV and eV/Angstrom (docs/spec.md §3). Coordinates go to PySCF in Bohr converted with the
same constant, so energies and forces stay exactly consistent with each other.
"""

from __future__ import annotations

import numpy as np

#: 1 Hartree in eV (CODATA 2018)
HARTREE_TO_EV = 27.211386245988
#: 1 Bohr in Angstrom (CODATA 2018)
BOHR_TO_ANGSTROM = 0.529177210903


def hartree_to_ev(e: float | np.ndarray) -> float | np.ndarray:
    """Energy: Hartree -> eV."""
    return e * HARTREE_TO_EV


def angstrom_to_bohr(x: float | np.ndarray) -> float | np.ndarray:
    """Length: Angstrom -> Bohr."""
    return np.asarray(x) / BOHR_TO_ANGSTROM


def gradient_to_forces(grad: np.ndarray) -> np.ndarray:
    """Gradient in Hartree/Bohr [n, 3] -> forces (minus the gradient) in eV/Angstrom [n, 3]."""
    return -np.asarray(grad, dtype=float) * (HARTREE_TO_EV / BOHR_TO_ANGSTROM)
