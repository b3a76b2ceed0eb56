"""Harmonic vibrations against analytic spring models with exact frequencies."""

import json

import numpy as np
import pytest
from ase import Atoms, units
from ase.io import write

from pansim.cli import main
from workflows.vibrations import VibrationsResult, harmonic_analysis, vibrations


def wavenumber(k: float, mass: float) -> float:
    """Exact sqrt(k / m) in cm^-1 for k in eV/A^2 and m in amu (SI constants)."""
    omega = np.sqrt(k * units._e / 1e-20 / (mass * units._amu))
    return omega / (2 * np.pi * units._c * 100)


def diatomic(r: float = 0.8) -> Atoms:
    return Atoms("H2", positions=[[0, 0, 0], [0, 0, r]])


def triangle(side: float = 1.2) -> Atoms:
    return Atoms("C3", positions=[[0, 0, 0], [side, 0, 0], [side / 2, side * np.sqrt(3) / 2, 0]])


def test_diatomic_exact_frequency_and_five_rigid_modes(springs):
    atoms = diatomic()
    res = vibrations(atoms, springs(k=10.0, r0=0.74, cutoff=1.5), delta=1e-3)
    mu = atoms.get_masses()[0] / 2
    assert res.linear and len(res.rigid_body_cm1) == 5
    assert res.frequencies_cm1 == pytest.approx([wavenumber(10.0, mu)], rel=1e-8)
    assert res.relaxation["converged"] and res.relaxation["max_force_eV_per_A"] < 1e-4
    assert np.linalg.norm(np.subtract(res.positions_A[1], res.positions_A[0])) == pytest.approx(
        0.74, abs=1e-5
    )
    assert res.imaginary_cm1 == [] and res.n_evaluations == 13
    assert res.zero_point_energy_eV == pytest.approx(0.5 * res.frequencies_cm1[0] * units.invcm)


def test_triangle_exact_frequencies_projected_or_not(springs):
    """Equilateral X3 with equal springs: A1 breathing sqrt(3k/m), E pair sqrt(3k/2m)."""
    calc = springs(k=20.0, r0=1.2, cutoff=1.6)
    mass = triangle().get_masses()[0]
    exact = sorted([wavenumber(1.5 * 20.0, mass)] * 2 + [wavenumber(3 * 20.0, mass)])
    for project in (True, False):
        res = vibrations(triangle(), calc, delta=1e-3, project=project)
        assert not res.linear and len(res.rigid_body_cm1) == 6
        assert res.frequencies_cm1 == pytest.approx(exact, rel=1e-6)
        assert max(abs(f) for f in res.rigid_body_cm1) < 1.0  # O(delta^2) rotational curvature


def test_batched_path_uses_one_call_and_agrees(springs, batch_springs):
    plain = vibrations(triangle(), springs(k=20.0, r0=1.2, cutoff=1.6), relax_first=False)
    batched = vibrations(triangle(), batch_springs(k=20.0, r0=1.2, cutoff=1.6), relax_first=False)
    assert batch_springs.batch_calls == 1
    assert batched.frequencies_cm1 == pytest.approx(plain.frequencies_cm1, rel=1e-12)


def test_callers_atoms_untouched(springs):
    atoms = diatomic(0.9)
    atoms.info["tag"] = "mine"
    calc = springs(k=10.0, r0=0.74, cutoff=1.5)
    atoms.calc = calc
    before = atoms.positions.copy()
    vibrations(atoms, calc)
    assert np.array_equal(atoms.positions, before)
    assert atoms.calc is calc and atoms.info == {"tag": "mine"} and not atoms.constraints


def test_imaginary_mode_reported_at_a_maximum(springs):
    res = vibrations(diatomic(0.74), springs(k=-10.0, r0=0.74, cutoff=1.5), relax_first=False)
    mu = diatomic().get_masses()[0] / 2
    assert res.imaginary_cm1 == pytest.approx([-wavenumber(10.0, mu)], rel=1e-4)
    assert any("imaginary" in w for w in res.warnings)


def test_relaxation_failure_is_reported_not_retried(springs):
    res = vibrations(diatomic(1.2), springs(k=10.0, r0=0.74, cutoff=1.5), max_steps=1)
    assert res.relaxation == {**res.relaxation, "converged": False, "steps": 1}
    assert any("did not converge" in w for w in res.warnings)
    assert len(res.frequencies_cm1) == 1


def test_reference_metrics_and_json_round_trip(springs, tmp_path):
    res = vibrations(triangle(), springs(k=20.0, r0=1.2, cutoff=1.6), relax_first=False)
    shifted = [f + 10.0 for f in res.frequencies_cm1]
    res = vibrations(triangle(), springs(k=20.0, r0=1.2, cutoff=1.6), reference=shifted)
    assert res.mae_cm1 == pytest.approx(10.0, abs=1e-6)
    assert res.highest_shift_cm1 == pytest.approx(-10.0, abs=1e-6)
    assert res.mean_signed_error_cm1 == pytest.approx(-10.0, abs=1e-6)
    res.to_json(tmp_path / "r.json")
    assert VibrationsResult.from_json(tmp_path / "r.json").to_dict() == res.to_dict()
    assert res.units["frequencies_cm1"].startswith("cm^-1")
    assert res.provenance["inputs"]["delta"] == 0.01


def test_harmonic_analysis_units():
    """One H-H spring written directly as a Hessian (no finite differences)."""
    k, pos, m = 5.0, np.array([[0, 0, 0], [0, 0, 1.0]]), np.array([1.0, 1.0])
    hess = np.zeros((6, 6))
    for a, b, s in ((2, 2, 1), (5, 5, 1), (2, 5, -1), (5, 2, -1)):
        hess[a, b] = s * k
    out = harmonic_analysis(hess, pos, m)
    assert out["frequencies_cm1"] == pytest.approx([wavenumber(k, 0.5)], rel=1e-10)
    assert out["linear"]


def test_vibrations_cli(tmp_path):
    from ase.build import molecule

    structure = tmp_path / "h2o.xyz"
    write(structure, molecule("H2O"))
    ref = tmp_path / "ref.json"
    out = tmp_path / "out"
    code = main(["vibrations", "--model", "emt", "--structure", str(structure), "--out", str(out)])
    assert code == 0
    data = json.loads((out / "result.json").read_text())
    assert len(data["frequencies_cm1"]) == 3 and data["frequencies_cm1"] == sorted(
        data["frequencies_cm1"]
    )
    assert (out / "plot.png").stat().st_size > 1000
    ref.write_text(json.dumps({"vibrations": {"frequencies_cm1": data["frequencies_cm1"]}}))
    argv = ["vibrations", "--model", "emt", "--structure", str(structure), "--reference", str(ref)]
    assert main(argv + ["--out", str(out / "ref")]) == 0
    again = json.loads((out / "ref" / "result.json").read_text())
    assert again["mae_cm1"] == pytest.approx(0.0, abs=1e-6)
