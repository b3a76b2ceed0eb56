import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from workflows.eos import EOSResult, birch_murnaghan, equation_of_state, fit_birch_murnaghan

SIGMA, EPS = 3.4, 0.0104
A12, A6 = 12.131880196, 14.453921150  # fcc lattice sums of r^-12 and r^-6 (NN distance = 1)


def lj():
    return LennardJones(sigma=SIGMA, epsilon=EPS, rc=6.0 * SIGMA, smooth=True)


def analytic_lj_fcc():
    """V0 (A^3/atom) and B0 (GPa) of the infinite LJ fcc crystal from its lattice sums."""
    r0 = SIGMA * (2 * A12 / A6) ** (1 / 6)

    def energy(v):  # eV/atom, v in A^3/atom; NN distance r = (sqrt(2) v)^(1/3)
        r = (np.sqrt(2) * v) ** (1 / 3)
        return 2 * EPS * (A12 * (SIGMA / r) ** 12 - A6 * (SIGMA / r) ** 6)

    v0 = r0**3 / np.sqrt(2)
    h = 1e-4 * v0
    d2 = (energy(v0 + h) - 2 * energy(v0) + energy(v0 - h)) / h**2
    return v0, v0 * d2 / units.GPa, energy(v0)


def independent_b0(calc, a0):
    """V0 and B0 = V d2E/dV2 of a 1-atom fcc cell from a scan of the same calculator (no BM fit)."""
    from scipy.optimize import minimize_scalar

    def energy(v):
        atoms = bulk("Ar", "fcc", a=(4 * v) ** (1 / 3))
        atoms.calc = calc
        return atoms.get_potential_energy()

    v0 = minimize_scalar(
        energy, bracket=(0.95 * a0**3 / 4, a0**3 / 4, 1.05 * a0**3 / 4), tol=1e-10
    ).x
    h = 1e-3 * v0
    d2 = (energy(v0 + h) - 2 * energy(v0) + energy(v0 - h)) / h**2
    return v0, v0 * d2 / units.GPa


@pytest.fixture(scope="module")
def lj_result():
    return equation_of_state(bulk("Ar", "fcc", a=5.3), lj(), n_points=11)


def test_lj_eos_matches_analytic_lattice_sums(lj_result):
    v0, b0, e0 = analytic_lj_fcc()
    assert lj_result.V0 == pytest.approx(v0, rel=5e-3)
    assert lj_result.B0 == pytest.approx(b0, rel=0.03)
    assert lj_result.E0 == pytest.approx(e0, rel=0.01)


def test_lj_eos_matches_independent_second_derivative(lj_result):
    v0, b0 = independent_b0(lj(), (4 * lj_result.V0) ** (1 / 3))
    assert lj_result.V0 == pytest.approx(v0, rel=1e-4)
    assert lj_result.B0 == pytest.approx(b0, rel=0.01)
    assert lj_result.fit_rms_residual < 1e-5
    assert len(lj_result.volumes) == 11
    assert min(lj_result.volumes) / lj_result.V0 == pytest.approx(0.94, abs=1e-3)


def test_fit_recovers_exact_birch_murnaghan():
    v = np.linspace(15, 19, 9)
    e = birch_murnaghan(v, -3.0, 17.0, 0.6, 4.5)
    params, rms = fit_birch_murnaghan(v, e)
    assert np.allclose(params, [-3.0, 17.0, 0.6, 4.5], rtol=1e-6)
    assert rms < 1e-10


def test_eos_emt_cu_compressed_points_and_json_round_trip(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.7)
    before = atoms.copy()
    res = equation_of_state(atoms, EMT(), n_points=9)
    assert atoms == before and atoms.calc is None
    assert res.relaxation["converged"]
    assert 120 < res.B0 < 150  # EMT Cu: 134 GPa
    comp = res.compressed
    assert comp["volume_ratio"] == [0.80, 0.85, 0.90]
    assert (
        comp["energy_eV_per_atom"][0]
        > comp["energy_eV_per_atom"][1]
        > comp["energy_eV_per_atom"][2]
        > res.E0
    )
    res.to_json(tmp_path / "r.json")
    back = EOSResult.from_json(tmp_path / "r.json")
    assert back.B0 == res.B0 and back.units["B0"] == "GPa"
    assert back.provenance["versions"]["ase"]
    assert "relax" in back.provenance["timings_s"]


def test_relaxation_failure_is_reported_not_looped():
    res = equation_of_state(bulk("Cu", "fcc", a=4.2), EMT(), n_points=9, max_steps=1, strain=0.2)
    assert res.relaxation["converged"] is False
    assert any("did not converge" in w for w in res.warnings)


def test_calculator_without_stress_scans_the_input_cell(springs):
    a = 3.6
    atoms = bulk("Cu", "fcc", a=a)
    res = equation_of_state(atoms, springs(k=1.0, r0=a / np.sqrt(2), cutoff=3.0), n_points=9)
    assert any("no stress" in w for w in res.warnings)
    assert res.V0 == pytest.approx(a**3 / 4, rel=1e-4)  # springs at rest at the input lattice
    assert res.E0 == pytest.approx(0.0, abs=1e-5)  # BM is not exact for springs
