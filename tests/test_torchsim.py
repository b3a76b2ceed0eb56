"""pansim as a torch-sim model: batched results equal PANCalculator's, and a batched NVT."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from pansim.calculator import PANCalculator

ts = pytest.importorskip("torch_sim", reason="torch-sim missing: pip install pansim[torchsim]")
from pansim.torchsim import PansimModel, state_to_atoms  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def model(tiny_model_factory):
    return tiny_model_factory("pan+pgs")


def _structures():
    primitive = bulk("Si", "diamond", 5.43)  # 2 atoms, a cell smaller than the cutoff
    cubic = bulk("Si", "diamond", 5.43, cubic=True)
    cubic.rattle(0.05, seed=1)
    mixed = bulk("Si", "diamond", 5.43, cubic=True) * (2, 1, 1)
    mixed.numbers[::3] = 8
    mixed.rattle(0.04, seed=2)
    sheared = bulk("Si", "diamond", 5.5) * (2, 2, 1)
    sheared.set_cell(sheared.cell.array @ np.array([[1, 0.04, 0], [0, 1, 0.02], [0, 0, 1]]), True)
    sheared.rattle(0.03, seed=3)
    return [primitive, cubic, mixed, sheared]  # 2, 8, 16, 8 atoms


def test_batched_results_equal_the_calculator(model):
    structures = _structures()
    adapter = PansimModel(model, dtype=torch.float64)
    state = ts.io.atoms_to_state(structures, adapter.device, adapter.dtype)
    for atoms, back in zip(structures, state_to_atoms(state)):  # noqa: B905
        np.testing.assert_allclose(back.positions, atoms.positions, atol=1e-12)
    out = adapter(state)
    assert out["energy"].shape == (4,) and out["stress"].shape == (4, 3, 3)
    calc = PANCalculator(model)
    results = calc.batch_evaluate(structures, ["energy", "forces", "stress"])
    forces = torch.split(out["forces"], [len(a) for a in structures])
    for k, r in enumerate(results):
        assert abs(out["energy"][k].item() - r["energy"]) < 1e-10
        np.testing.assert_allclose(forces[k].numpy(), r["forces"], atol=1e-10)
        s = out["stress"][k].numpy()
        voigt = [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]
        np.testing.assert_allclose(voigt, r["stress"], atol=1e-10)


def test_batched_nvt_runs_through_torch_sim(model):
    structures = _structures()
    adapter = PansimModel(model, dtype=torch.float64)
    final = ts.integrate(
        system=structures, model=adapter, integrator=ts.nvt_langevin,
        n_steps=5, temperature=300.0, timestep=0.001,
    )  # fmt: skip
    assert final.n_systems == len(structures)
    moved = state_to_atoms(final)
    assert any(np.abs(a.positions - b.positions).max() > 1e-4 for a, b in zip(moved, structures))  # noqa: B905
    out = adapter(final)  # the final state is still a valid input
    assert torch.isfinite(out["energy"]).all()
