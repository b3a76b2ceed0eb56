"""Hartree/Bohr -> eV/Angstrom conversions of the PySCF labels."""

import numpy as np
from ase import units

from pansim.data.units import (
    BOHR_TO_ANGSTROM,
    HARTREE_TO_EV,
    angstrom_to_bohr,
    gradient_to_forces,
    hartree_to_ev,
)


def test_constants_match_codata_within_1e6():
    assert abs(HARTREE_TO_EV - units.Hartree) / units.Hartree < 1e-6
    assert abs(BOHR_TO_ANGSTROM - units.Bohr) / units.Bohr < 1e-6


def test_conversions():
    assert hartree_to_ev(1.0) == HARTREE_TO_EV
    np.testing.assert_allclose(angstrom_to_bohr(BOHR_TO_ANGSTROM), 1.0)
    g = np.array([[0.01, -0.02, 0.0]])
    np.testing.assert_allclose(gradient_to_forces(g), -g * 51.422067476, rtol=1e-9)
