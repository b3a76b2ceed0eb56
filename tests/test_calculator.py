import os

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError

import pansim
from pansim.calculator import PANCalculator
from pansim.graph import InvalidStructureError
from pansim.model_io import ModelFileError
from pansim.pretrained import UnknownModelError
from pansim.testing import (
    assert_forces_fd,
    assert_invariance,
    assert_stress_fd,
    calculator_evaluator,
    perturb_parameters,
)

TINY = {
    "num_channels": 8,
    "max_L": 1,
    "max_ell": 2,
    "correlation": 2,
    "num_interactions": 2,
    "num_bessel": 6,
    "radial_MLP": [16, 16],
    "MLP_irreps": "8x0e",
    "avg_num_neighbors": 6.0,
    "c_max": 6.0,
    "atomic_energies": [-1.5, -2.0, -0.5],
}


@pytest.fixture(scope="module", params=["pan+pgs"])  # variants: tests/backbones
def model(request):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        m = pansim.build_model(
            variant=request.param, elements=["Si", "O", "H"], r_max=4.0, seed=1, **TINY
        )
    finally:
        torch.set_default_dtype(previous)
    perturb_parameters(m, seed=3)  # PAN/PGS start as identities; exercise them
    return m


@pytest.fixture(scope="module")
def calc(model):
    return PANCalculator(model=model)


def _si(cubic=True, seed=0):
    a = bulk("Si", "diamond", 5.43, cubic=cubic)
    a.rattle(0.05, seed=seed)
    return a


def _geometries():
    triclinic = _si(cubic=False)
    triclinic.set_cell(
        triclinic.cell.array @ np.array([[1, 0.05, 0.02], [0, 1, 0.03], [0, 0, 1.02]]),
        scale_atoms=True,
    )
    slab = _si() * (1, 1, 2)
    slab.center(vacuum=5.0, axis=2)
    slab.pbc = (True, True, False)
    mol = molecule("H2O")
    mol.positions *= 1.2
    return {
        "bulk": _si(),
        "small_cell": _si(cubic=False),
        "triclinic": triclinic,
        "slab": slab,
        "molecule": mol,
    }


@pytest.mark.parametrize("name", ["small_cell", "triclinic", "slab", "molecule"])
def test_geometries_consistent_and_invariant(calc, name):
    atoms = _geometries()[name]
    evaluate = calculator_evaluator(calc)
    res = evaluate(atoms)
    assert np.isfinite(res["energy"]) and np.all(np.isfinite(res["forces"]))
    assert_invariance(evaluate, atoms)
    assert_forces_fd(evaluate, atoms, directions=2, rtol=1e-6, atol=1e-7)
    if np.all(atoms.pbc):
        assert_stress_fd(evaluate, atoms, rtol=1e-6, atol=1e-8)


def test_matches_direct_model_call(calc, model):
    from pansim.testing import model_evaluator

    atoms = _si()
    direct = model_evaluator(model)(atoms)
    atoms.calc = calc
    assert atoms.get_potential_energy() == pytest.approx(direct["energy"], rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), direct["forces"], atol=1e-12)
    np.testing.assert_allclose(atoms.get_stress(voigt=False), direct["stress"], atol=1e-12)
    assert atoms.get_potential_energy(force_consistent=True) == atoms.get_potential_energy()
    assert atoms.get_potential_energies().sum() == pytest.approx(atoms.get_potential_energy())


def test_compute_only_what_is_asked_and_cache(model, monkeypatch):
    calc = PANCalculator(model=model)
    calls = []
    original = calc.model.forward

    def spy(data, training=False, compute_force=True, compute_stress=False):
        calls.append((compute_force, compute_stress))
        return original(data, training, compute_force, compute_stress)

    monkeypatch.setattr(calc.model, "forward", spy)
    atoms = _si()
    atoms.calc = calc
    atoms.get_potential_energy()
    assert calls == [(False, False)] and "stress" not in calc.results
    atoms.get_potential_energy()
    assert len(calls) == 1  # cached
    atoms.get_forces()
    assert calls[-1] == (True, False)
    atoms.positions[0, 0] += 0.01
    atoms.get_stress()
    assert calls[-1] == (False, True)


def test_batch_evaluate_equals_single_calls(calc):
    structures = [_si(seed=k) for k in range(3)] + [_si(cubic=False, seed=7)]
    batched = calc.batch_evaluate(
        structures, properties=("energy", "forces", "stress"), batch_size=3
    )
    for atoms, res in zip(structures, batched):
        atoms.calc = calc
        assert abs(atoms.get_potential_energy() - res["energy"]) < 1e-10
        assert np.abs(atoms.get_forces() - res["forces"]).max() < 1e-10
        assert np.abs(atoms.get_stress() - res["stress"]).max() < 1e-10


def test_caller_atoms_and_model_unchanged(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calc = PANCalculator(model=model, default_dtype="float32")
    atoms = _si()
    ref = atoms.copy()
    atoms.calc = calc
    atoms.get_forces()
    assert np.array_equal(atoms.positions, ref.positions) and atoms.info == ref.info
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float64


def test_float32_close_to_float64(model):
    atoms = _si()
    e64 = calculator_evaluator(PANCalculator(model=model))(atoms)
    e32 = calculator_evaluator(PANCalculator(model=model, default_dtype="float32"))(atoms)
    assert abs(e64["energy"] - e32["energy"]) < 1e-4 * max(1.0, abs(e64["energy"]))
    assert np.abs(e64["forces"] - e32["forces"]).max() < 1e-4


def test_model_file_round_trip(tmp_path, model):
    path = tmp_path / "m.safetensors"
    pansim.save_model(model, path)
    atoms = _si()
    a = calculator_evaluator(PANCalculator(model=path))(atoms)
    b = calculator_evaluator(PANCalculator(model=model))(atoms)
    assert a["energy"] == pytest.approx(b["energy"], rel=1e-12)


@pytest.mark.parametrize(
    "atoms, match",
    [
        (Atoms("Cu", positions=[[0, 0, 0]]), r"\['Cu'\].*supported: \['H', 'O', 'Si'\]"),
        (Atoms("Si2", positions=[[0, 0, 0], [np.nan, 0, 0]]), "NaN or inf in positions"),
        (Atoms("Si2", positions=[[0, 0, 0], [0.05, 0, 0]]), "overlap"),
        (Atoms(), "empty"),
        (Atoms("Si", cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True), "zero volume"),
        (
            Atoms("Si", cell=[[np.inf, 0, 0], [0, 3, 0], [0, 0, 3]], pbc=True),
            "NaN or inf in the cell",
        ),
    ],
    ids=["unknown-element", "nan", "overlap", "empty", "zero-volume", "inf-cell"],
)
def test_bad_structures(calc, atoms, match):
    atoms.calc = calc
    with pytest.raises(InvalidStructureError, match=match):
        atoms.get_potential_energy()


def test_stress_needs_periodic_cell(calc):
    mol = molecule("H2O")
    mol.calc = calc
    with pytest.raises(PropertyNotImplementedError, match="fully periodic"):
        mol.get_stress()


def test_bad_model_names_and_files(tmp_path):
    with pytest.raises(UnknownModelError, match="registered"):
        PANCalculator(model="no-such-model")
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"not a model file")
    with pytest.raises(ModelFileError, match="corrupt.safetensors"):
        PANCalculator(model=bad)
    with pytest.raises(ValueError, match="default_dtype"):
        PANCalculator(model="x", default_dtype="float16")


def test_environment_untouched(model):
    before = dict(os.environ)
    atoms = _si()
    atoms.calc = PANCalculator(model=model)
    atoms.get_forces()
    assert dict(os.environ) == before
