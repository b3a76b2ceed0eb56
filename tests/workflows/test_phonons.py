import numpy as np
import pytest
from ase import units
from ase.build import bulk

from workflows.phonons import THZ_TO_CM1, PhononResult, phonons

A, K = 3.6, 2.0  # fcc lattice constant (A), spring constant (eV/A^2)
R0 = A / np.sqrt(2)


def thz(omega2_k_over_m, mass):
    """Frequency (THz) from omega^2 in units of K/m."""
    omega = np.sqrt(omega2_k_over_m * K / mass)  # 1/(ASE time unit)
    return omega * units.fs * 1e3 / (2 * np.pi)


def fcc(symbol="Cu"):
    return bulk(symbol, "fcc", a=A)


@pytest.fixture(scope="module")
def analytic():
    """Closed-form NN central-spring fcc: X: w^2 = 4K/m (x2), 8K/m; L: 2K/m (x2), 8K/m."""
    m = fcc().get_masses()[0]
    return {"X": thz(np.array([4, 4, 8]), m), "L": thz(np.array([2, 2, 8]), m)}


def test_harmonic_fcc_against_closed_form(springs, analytic):
    atoms = fcc()
    res = phonons(atoms, springs(k=K, r0=R0, cutoff=0.5 * (R0 + A)), mesh=(6, 6, 6))
    assert np.allclose(res.gamma_frequencies_THz, 0.0, atol=1e-3)
    assert np.allclose(res.high_symmetry_THz["X"], analytic["X"], rtol=1e-3)
    assert np.allclose(res.high_symmetry_THz["L"], analytic["L"], rtol=1e-3)
    assert res.imaginary_modes == []
    assert np.allclose(res.gamma_frequencies_cm1, np.array(res.gamma_frequencies_THz) * THZ_TO_CM1)
    assert res.band_labels[0] == "Gamma" and res.n_displacements == 1
    cv = res.thermal["heat_capacity_J_per_K_mol"]
    assert cv[-1] == pytest.approx(3 * 8.314462618, rel=0.02)  # Dulong-Petit at 1000 K


def test_batch_evaluate_is_used_once(batch_springs, analytic):
    res = phonons(
        fcc(), batch_springs(k=K, r0=R0, cutoff=0.5 * (R0 + A)), relax_first=False, mesh=(4, 4, 4)
    )
    assert batch_springs.batch_calls == 1
    assert np.allclose(res.high_symmetry_THz["X"], analytic["X"], rtol=1e-3)


def test_residual_forces_are_subtracted(springs, analytic):
    calc = springs(k=K, r0=R0, cutoff=0.5 * (R0 + A), bias=(0.02, -0.01, 0.005))
    res = phonons(fcc(), calc, relax_first=False, mesh=(4, 4, 4))
    assert np.allclose(res.high_symmetry_THz["X"], analytic["X"], rtol=1e-3)
    assert res.provenance["inputs"]["max_residual_force"] == pytest.approx(0.02)


def test_unstable_lattice_reports_imaginary_modes(springs):
    res = phonons(
        fcc(), springs(k=-K, r0=R0, cutoff=0.5 * (R0 + A)), relax_first=False, mesh=(4, 4, 4)
    )
    assert res.imaginary_modes and min(m["frequency_THz"] for m in res.imaginary_modes) < -1.0
    assert any("imaginary" in w for w in res.warnings)


def test_caller_atoms_unchanged_and_json_round_trip(springs, tmp_path):
    atoms = fcc()
    atoms.positions[0] += 0.01  # off equilibrium: the workflow relaxes a copy
    before = atoms.copy()
    res = phonons(atoms, springs(k=K, r0=R0, cutoff=0.5 * (R0 + A)), mesh=(4, 4, 4))
    assert atoms == before and atoms.calc is None
    assert res.relaxation["converged"] and res.relaxation["max_force_eV_per_A"] < 1e-4
    res.to_json(tmp_path / "p.json")
    back = PhononResult.from_json(tmp_path / "p.json")
    assert back.gamma_frequencies_THz == res.gamma_frequencies_THz
    assert back.high_symmetry_THz == res.high_symmetry_THz
