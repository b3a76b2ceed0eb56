"""EOS: the local bulk modulus B(V) beside the fitted B0, and warnings for unphysical E(V)."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from workflows.bulk_modulus import (
    bulk_modulus_checks,
    is_monotone_decreasing,
    local_bulk_modulus,
)
from workflows.eos import birch_murnaghan, equation_of_state


class VolumeOnly(Calculator):
    """E(V) of one atom per cell from a function of the volume; stress = dE/dV, no forces."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, energy, **kw):
        super().__init__(**kw)
        self.energy_of = energy

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        v, h = self.atoms.get_volume(), 1e-4
        de = (self.energy_of(v + h) - self.energy_of(v - h)) / (2 * h)
        self.results = {
            "energy": self.energy_of(v),
            "forces": np.zeros((len(self.atoms), 3)),
            "stress": np.array([de, de, de, 0.0, 0.0, 0.0]),
        }


V0, B0 = 16.0, 100.0 * units.GPa


def _bm(bp):
    return lambda v: float(birch_murnaghan(np.array(v), -3.0, V0, B0, bp))


def _atom():
    return Atoms("Cu", cell=np.eye(3) * V0 ** (1 / 3), pbc=True)


def test_local_modulus_of_a_birch_murnaghan_curve_is_its_b0_at_v0():
    v = np.linspace(0.94, 1.06, 41) * V0
    e = birch_murnaghan(v, -3.0, V0, B0, 4.5)
    b = local_bulk_modulus(v, energies=e)
    assert np.interp(V0, v, b) == pytest.approx(100.0, rel=2e-3)
    assert is_monotone_decreasing(v, b, V0)
    # from pressures P = -dE/dV
    p = -np.gradient(e, v)
    assert np.interp(V0, v, local_bulk_modulus(v, pressures=p)) == pytest.approx(100.0, rel=2e-3)


def test_physical_eos_has_no_warnings():
    result = equation_of_state(_atom(), VolumeOnly(_bm(4.5)), relax_first=False, n_points=13)
    assert result.B0 == pytest.approx(100.0, rel=1e-3)
    assert result.B_V0 == pytest.approx(result.B0, rel=0.01)
    assert result.checks["monotone"] and result.checks["B0_prime_physical"]
    assert result.warnings == []
    assert len(result.local_bulk_modulus) == len(result.volumes) == len(result.pressures)


def test_unphysical_eos_is_flagged():
    """B(V) that rises on both sides of V0, as the issue saw for the si model."""

    def energy(v):
        x = v / V0 - 1.0
        return -3.0 + 0.5 * B0 * V0 * x**2 + 40.0 * B0 * V0 * x**4

    result = equation_of_state(_atom(), VolumeOnly(energy), relax_first=False, n_points=13)
    assert not result.checks["monotone"]
    assert any("does not decrease with V" in w for w in result.warnings)


@pytest.mark.parametrize("bp", [1.45, 9.5])
def test_b0_prime_outside_the_physical_range_is_flagged(bp):
    result = equation_of_state(_atom(), VolumeOnly(_bm(bp)), relax_first=False, n_points=13)
    assert result.B0_prime == pytest.approx(bp, rel=1e-2)
    assert not result.checks["B0_prime_physical"]
    assert any(f"B0' = {bp:.2f} is outside the physical range 2..8" in w for w in result.warnings)


def test_checks_compare_with_a_reference_b0():
    v = np.linspace(0.94, 1.06, 13) * V0
    b = local_bulk_modulus(v, energies=birch_murnaghan(v, -3.0, V0, B0, 4.0))
    assert bulk_modulus_checks(v, b, V0, 4.0, reference_b0=95.0)["B_V0_within_rtol"]
    assert not bulk_modulus_checks(v, b, V0, 4.0, reference_b0=80.0)["B_V0_within_rtol"]


def test_emt_copper_local_modulus_matches_fit():
    result = equation_of_state(bulk("Cu", "fcc", a=3.6), EMT(), n_points=11)
    assert result.B_V0 == pytest.approx(result.B0, rel=0.03)
    assert result.checks["monotone"]


def test_too_few_volumes_is_an_error():
    with pytest.raises(ValueError, match="at least 3 volumes"):
        local_bulk_modulus([1.0, 2.0], energies=[0.0, 1.0])


def test_a_sustained_rise_of_small_steps_is_not_monotone():
    """Each step below the noise tolerance, the rise from the minimum above it (lif, 100 epochs)."""
    from workflows.bulk_modulus import MONOTONE_TOLERANCE

    v = np.linspace(0.94, 1.06, 11)
    b = np.linspace(100.0, 61.0, 11)
    step = 0.6 * MONOTONE_TOLERANCE * 61.0
    b[-4:] = 61.0 + step * np.arange(4)  # four steps up, each under the tolerance
    assert np.all(np.diff(b[-4:]) < MONOTONE_TOLERANCE * 61.0)
    assert not is_monotone_decreasing(v, b, 1.0)
    # a rise within the tolerance from the minimum is noise
    b[-4:] = 61.0 + 0.3 * step * np.array([0.0, 1.0, 0.5, 1.0])
    assert is_monotone_decreasing(v, b, 1.0)


def test_shipped_lif_100_epoch_profile_fails_and_the_converged_ones_pass():
    """Measured B(V) rows of scripts/eos_check.py (GPa, 0.94..1.06 V0).

    The 100-epoch lif (pan+pgs) and the converged-recipe lif pan+pgs (seed 0, epoch 170).
    """
    v = np.linspace(0.94, 1.06, 11)
    old_lif = [101.8, 95.1, 87.9, 80.4, 73.5, 67.9, 64.0, 61.8, 60.9, 61.0, 61.4]
    converged = [103.9, 97.8, 91.2, 84.0, 76.9, 70.5, 65.5, 61.8, 59.2, 57.4, 56.0]
    assert not is_monotone_decreasing(v, old_lif, 1.0)
    assert is_monotone_decreasing(v, converged, 1.0)
