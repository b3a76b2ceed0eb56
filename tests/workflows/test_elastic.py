import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT

from workflows.elastic import (
    ElasticResult,
    StressNotAvailableError,
    born_stability,
    elastic_constants,
    strain_matrix,
    vrh_moduli,
)


def energy_second_derivative(atoms, calc, voigt_a, voigt_b, h=1e-3):
    """(1/V) d2E/de_a de_b (GPa) by central differences of the energy (no stress used)."""

    def energy(ea, eb):
        work = atoms.copy()
        eps = strain_matrix(voigt_a, ea) + strain_matrix(voigt_b, eb)
        work.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        work.calc = calc
        return work.get_potential_energy()

    if voigt_a == voigt_b:
        d2 = (energy(h, 0) - 2 * energy(0, 0) + energy(-h, 0)) / h**2
    else:
        d2 = (energy(h, h) - energy(h, -h) - energy(-h, h) + energy(-h, -h)) / (4 * h**2)
    return d2 / atoms.get_volume() / units.GPa


@pytest.fixture(scope="module")
def cu():
    return elastic_constants(bulk("Cu", "fcc", a=3.6), EMT(), relax_ions=False, n_strains=4)


def test_emt_cu_against_energy_finite_differences(cu):
    # reference at the relaxed lattice constant, from energies only
    from workflows._common import relax

    relaxed = relax(bulk("Cu", "fcc", a=3.6), EMT(), fmax=1e-5, cell=True).atoms
    ref = {
        "C11": energy_second_derivative(relaxed, EMT(), 0, 0),
        "C12": energy_second_derivative(relaxed, EMT(), 0, 1),
        "C44": energy_second_derivative(relaxed, EMT(), 3, 3),
    }
    for name, value in cu.cubic.items():
        assert value == pytest.approx(ref[name], rel=0.02), name


def test_cubic_symmetry_and_moduli(cu):
    c = np.array(cu.C)
    assert c[0, 0] == pytest.approx(c[1, 1], rel=1e-3) == pytest.approx(c[2, 2], rel=1e-3)
    assert c[0, 1] == pytest.approx(c[0, 2], rel=1e-3) == pytest.approx(c[1, 2], rel=1e-3)
    assert c[3, 3] == pytest.approx(c[4, 4], rel=1e-3) == pytest.approx(c[5, 5], rel=1e-3)
    assert np.abs(c[:3, 3:]).max() < 0.5 and np.abs(c[3:, 3:] - np.diag(np.diag(c)[3:])).max() < 0.5
    c11, c12 = cu.cubic["C11"], cu.cubic["C12"]
    assert cu.bulk_modulus_vrh == pytest.approx((c11 + 2 * c12) / 3, rel=1e-6)
    assert cu.bulk_modulus_voigt == pytest.approx(cu.bulk_modulus_reuss, rel=1e-6)
    assert cu.shear_modulus_reuss <= cu.shear_modulus_vrh <= cu.shear_modulus_voigt
    assert cu.born_stable and min(cu.eigenvalues) > 0


def test_vrh_of_isotropic_tensor():
    lam, mu = 60.0, 30.0
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[np.diag_indices(6)] += [2 * mu] * 3 + [mu] * 3
    moduli = vrh_moduli(c)
    assert moduli["bulk_modulus_vrh"] == pytest.approx(lam + 2 * mu / 3)
    assert moduli["shear_modulus_voigt"] == pytest.approx(mu)
    assert moduli["shear_modulus_reuss"] == pytest.approx(mu)


def test_born_instability_detected():
    c = np.diag([100.0, 100, 100, 50, 50, -1])
    stable, eig = born_stability(c)
    assert not stable and eig.min() == -1


def test_ionic_relaxation_and_json_round_trip(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    before = atoms.copy()
    res = elastic_constants(atoms, EMT(), relax_ions=True, n_strains=2)
    assert atoms == before and atoms.calc is None
    assert res.born_stable
    path = tmp_path / "e.json"
    res.to_json(path)
    back = ElasticResult.from_json(path)
    assert np.allclose(back.C, res.C) and back.units["C"] == "GPa"
    assert back.cubic["C11"] == pytest.approx(res.cubic["C11"])


def test_calculator_without_stress_gets_clear_error(springs):
    with pytest.raises(StressNotAvailableError, match="stress"):
        elastic_constants(bulk("Cu", "fcc", a=3.6), springs())


def test_internal_relaxation_softens_c44_of_central_force_diamond(stress_springs):
    """Keating with no bond bending: C11 = C12 = C44(clamped, Cauchy) and C44(relaxed) = 0."""
    a = 5.43
    calc = stress_springs(
        k=5.0, r0=a * np.sqrt(3) / 4, cutoff=0.5 * (a * np.sqrt(3) / 4 + a / np.sqrt(2))
    )
    atoms = bulk("Si", "diamond", a=a)
    opts = dict(relax_cell_first=False, n_strains=2, max_strain=0.002)
    clamped = elastic_constants(atoms, calc, relax_ions=False, **opts).cubic
    relaxed = elastic_constants(atoms, calc, relax_ions=True, **opts)
    assert clamped["C12"] == pytest.approx(clamped["C44"], rel=1e-3)
    assert clamped["C11"] == pytest.approx(clamped["C12"], rel=1e-3)
    assert abs(relaxed.cubic["C44"]) < 1e-3 * clamped["C44"]
    assert relaxed.cubic["C12"] == pytest.approx(clamped["C12"], rel=1e-3)
    assert not relaxed.born_stable  # floppy: zero eigenvalues
