import os
import subprocess
import sys

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
    model_evaluator,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def model(tiny_model_factory):
    return tiny_model_factory("pan+pgs")  # every variant: tests/backbones


@pytest.fixture(scope="module")
def calc(model):
    return PANCalculator(model=model)


def _evaluator(calc):
    """ASE-path evaluator with an energy-only path for the finite differences."""
    evaluate = calculator_evaluator(calc)

    def energy(atoms):
        work = atoms.copy()
        work.calc = calc
        return work.get_potential_energy()

    evaluate.energy = energy
    return evaluate


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
    triclinic[1].symbol = "O"
    slab = _si(cubic=False) * (1, 1, 2)
    slab.center(vacuum=5.0, axis=2)
    slab.pbc = (True, True, False)
    mol = molecule("H2O")
    mol.positions *= 1.2
    return {
        "bulk": _si(),  # 8 atoms, cell larger than the cutoff (4 A)
        "small_cell": _si(cubic=False),  # 2-atom primitive cell, smaller than the cutoff
        "triclinic": triclinic,
        "slab": slab,
        "molecule": mol,
    }


@pytest.mark.parametrize("name", ["bulk", "small_cell", "triclinic", "slab", "molecule"])
def test_geometries_consistent_and_invariant(calc, name):
    atoms = _geometries()[name]
    evaluate = _evaluator(calc)
    assert_invariance(evaluate, atoms)
    assert_forces_fd(evaluate, atoms, directions=2)
    if np.all(atoms.pbc):
        assert_stress_fd(evaluate, atoms)
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    assert np.isfinite(energy) and np.all(np.isfinite(atoms.get_forces()))
    assert atoms.get_potential_energy(force_consistent=True) == energy
    assert atoms.get_potential_energies().sum() == pytest.approx(energy, rel=1e-12)


def test_matches_direct_model_call(calc, model):
    atoms = _si()
    direct = model_evaluator(model)(atoms)
    atoms.calc = calc
    assert atoms.get_potential_energy() == pytest.approx(direct["energy"], rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), direct["forces"], atol=1e-12)
    np.testing.assert_allclose(atoms.get_stress(voigt=False), direct["stress"], atol=1e-12)
    data = pansim.testing.model_graph(model, atoms)
    node_energy = model(data, compute_force=False)["node_energy"].detach().numpy()
    np.testing.assert_allclose(atoms.get_potential_energies(), node_energy, atol=1e-12)


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
    e0 = atoms.get_potential_energy()
    assert calls == [(False, False)] and set(calc.results) == {"energy", "free_energy", "energies"}
    atoms.get_potential_energy()
    atoms.get_potential_energies()
    assert len(calls) == 1  # cached
    atoms.get_forces()
    assert calls[-1] == (True, False) and "stress" not in calc.results
    atoms.get_forces()
    assert len(calls) == 2
    atoms.positions[0, 0] += 0.01  # a change recomputes
    e1 = atoms.get_potential_energy()
    assert len(calls) == 3 and e1 != e0
    atoms.get_stress()  # forces come with stress from the same backward pass
    atoms.get_forces()
    assert calls[3:] == [(True, True)]
    atoms.set_cell(atoms.cell.array * 1.01, scale_atoms=True)
    atoms.get_potential_energy()
    assert len(calls) == 5


def test_batch_evaluate_equals_single_calls(calc):
    geometries = _geometries()
    structures = [_si(seed=k) for k in range(3)] + list(geometries.values())
    batched = calc.batch_evaluate(
        structures, properties=("energy", "forces", "energies"), batch_size=3
    )
    periodic = [a for a in structures if a.pbc.all()]
    with_stress = calc.batch_evaluate(periodic, properties=("stress",), batch_size=16)
    for atoms, res in zip(structures, batched, strict=True):
        atoms.calc = calc
        assert abs(atoms.get_potential_energy() - res["energy"]) < 1e-10
        assert res["free_energy"] == res["energy"]
        assert np.abs(atoms.get_forces() - res["forces"]).max() < 1e-10
        assert np.abs(atoms.get_potential_energies() - res["energies"]).max() < 1e-10
        assert "stress" not in res
    for atoms, res in zip(periodic, with_stress, strict=True):
        assert np.abs(atoms.get_stress() - res["stress"]).max() < 1e-10
    assert calc.batch_evaluate([]) == []


def test_batch_evaluate_bad_requests(calc):
    with pytest.raises(PropertyNotImplementedError, match="stress asked for non-periodic"):
        calc.batch_evaluate([_si(), molecule("H2O")], properties=("energy", "stress"))
    with pytest.raises(PropertyNotImplementedError, match="magmoms"):
        calc.batch_evaluate([_si()], properties=("magmoms",))
    with pytest.raises(ValueError, match="batch_size"):
        calc.batch_evaluate([_si()], batch_size=0)
    with pytest.raises(InvalidStructureError, match="structure 3: empty"):
        calc.batch_evaluate([_si(), _si(), _si(), Atoms()], batch_size=2)


def test_caller_atoms_and_model_unchanged(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calc = PANCalculator(model=model, default_dtype="float32")
    assert not calc.model.training
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in calc.model.parameters())
    atoms = _si()
    atoms.positions[0] += atoms.cell[0] * 1.5  # outside the cell: must not be wrapped
    atoms.info["tag"] = "mine"
    ref = atoms.copy()
    atoms.calc = calc
    atoms.get_stress()
    calc.batch_evaluate([atoms], properties=("energy", "forces", "stress"))
    assert np.array_equal(atoms.positions, ref.positions)
    assert np.array_equal(atoms.cell.array, ref.cell.array) and atoms.info == ref.info
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float64


def test_float32_close_to_float64(model):
    atoms = _si()
    e64 = calculator_evaluator(PANCalculator(model=model))(atoms)
    calc32 = PANCalculator(model=model, default_dtype="float32")
    e32 = calculator_evaluator(calc32)(atoms)
    assert abs(e64["energy"] - e32["energy"]) < 1e-4 * max(1.0, abs(e64["energy"]))
    assert np.abs(e64["forces"] - e32["forces"]).max() < 1e-4
    assert np.abs(e64["stress"] - e32["stress"]).max() < 1e-5
    batched = calc32.batch_evaluate([atoms], properties=("energy", "forces"))[0]
    assert batched["forces"].dtype == np.float64
    assert abs(batched["energy"] - e32["energy"]) < 1e-5


def test_torchscript_model(model):
    scripted = torch.jit.script(model)
    atoms = _si()
    eager = calculator_evaluator(PANCalculator(model=model))(atoms)
    script = calculator_evaluator(PANCalculator(model=scripted))(atoms)
    assert script["energy"] == pytest.approx(eager["energy"], rel=1e-12)
    np.testing.assert_allclose(script["forces"], eager["forces"], atol=1e-12)
    np.testing.assert_allclose(script["stress"], eager["stress"], atol=1e-12)
    single = PANCalculator(model=scripted, default_dtype="float32")
    assert abs(calculator_evaluator(single)(atoms)["energy"] - eager["energy"]) < 1e-4


def test_model_file_round_trip(tmp_path, model):
    path = tmp_path / "m.safetensors"
    pansim.save_model(model, path)
    atoms = _si()
    a = calculator_evaluator(PANCalculator(model=path))(atoms)
    b = calculator_evaluator(PANCalculator(model=str(path)))(atoms)
    c = calculator_evaluator(PANCalculator(model=model))(atoms)
    assert a["energy"] == b["energy"] == pytest.approx(c["energy"], rel=1e-12)
    np.testing.assert_allclose(a["forces"], c["forces"], atol=1e-12)


@pytest.mark.parametrize(
    "atoms, match",
    [
        (Atoms("Cu", positions=[[0, 0, 0]]), r"\['Cu'\].*supported: \['H', 'O', 'Si'\]"),
        (Atoms("Si2", positions=[[0, 0, 0], [np.nan, 0, 0]]), "NaN or inf in positions"),
        (Atoms("Si2", positions=[[0, 0, 0], [np.inf, 0, 0]]), "NaN or inf in positions"),
        (Atoms("Si2", positions=[[0, 0, 0], [0.05, 0, 0]]), "atoms 0 and 1 overlap"),
        (Atoms(), "empty"),
        (Atoms("Si", cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True), "zero volume"),
        (Atoms("Si", cell=[[3, 0, 0], [0, 3, 0], [0, 0, 0]], pbc=True), "zero volume"),
        (
            Atoms("Si", cell=[[np.inf, 0, 0], [0, 3, 0], [0, 0, 3]], pbc=True),
            "NaN or inf in the cell",
        ),
        (
            Atoms("Si", cell=[[np.nan, 0, 0], [0, 3, 0], [0, 0, 3]], pbc=False),
            "NaN or inf in the cell",
        ),
    ],
    ids=[
        "unknown-element",
        "nan-position",
        "inf-position",
        "overlap",
        "empty",
        "zero-volume",
        "zero-cell-vector",
        "inf-cell",
        "nan-cell",
    ],
)
def test_bad_structures(calc, atoms, match):
    atoms.calc = calc
    with pytest.raises(InvalidStructureError, match=match):
        atoms.get_potential_energy()


def test_overlap_through_periodic_image(calc):
    atoms = Atoms("Si2", positions=[[0, 0, 0], [2.95, 0, 0]], cell=[3, 5, 5], pbc=True)
    atoms.calc = calc
    with pytest.raises(InvalidStructureError, match="overlap"):
        atoms.get_forces()


def test_stress_needs_periodic_cell(calc):
    mol = molecule("H2O")
    mol.calc = calc
    with pytest.raises(PropertyNotImplementedError, match="fully periodic"):
        mol.get_stress()
    slab = _geometries()["slab"]
    slab.calc = calc
    with pytest.raises(PropertyNotImplementedError, match=r"pbc=\[True, True, False\]"):
        slab.get_stress()


def test_bad_model_names_and_files(tmp_path):
    with pytest.raises(UnknownModelError, match="'no-such-model'.*registered"):
        PANCalculator(model="no-such-model")
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"not a model file")
    with pytest.raises(ModelFileError, match="corrupt.safetensors"):
        PANCalculator(model=bad)
    with pytest.raises(ValueError, match="default_dtype"):
        PANCalculator(model="x", default_dtype="float16")
    with pytest.raises(TypeError, match="model must be"):
        PANCalculator(model=3)


def test_environment_untouched(tmp_path, model):
    """A fresh process: importing and using the calculator leaves os.environ as it was."""
    path = tmp_path / "m.safetensors"
    pansim.save_model(model, path)
    script = (
        "import os, sys\n"
        "before = dict(os.environ)\n"
        "from ase.build import bulk\n"
        "from pansim import PANCalculator\n"
        "atoms = bulk('Si', 'diamond', 5.43)\n"
        "atoms.calc = PANCalculator(model=sys.argv[1])\n"
        "atoms.get_stress()\n"
        "changed = set(os.environ.items()) ^ set(before.items())\n"
        "assert not changed, changed\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_implemented_properties_own_list(model):
    """PANCalculator has its own list and never extends ASE's shared base-class list.

    (mace-torch's MACECalculator extends ``self.implemented_properties`` in place,
    which is ASE's class-level list, so other tests may have changed it already:
    compare before and after, not against ASE's default.)
    """
    from ase.build import bulk
    from ase.calculators.calculator import Calculator

    before = list(Calculator.implemented_properties)
    calc = PANCalculator(model=model)
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.calc = calc
    atoms.get_potential_energies()
    assert PANCalculator.implemented_properties == [
        "energy",
        "free_energy",
        "forces",
        "stress",
        "energies",
    ]
    assert Calculator.implemented_properties == before
    assert calc.implemented_properties is PANCalculator.implemented_properties
