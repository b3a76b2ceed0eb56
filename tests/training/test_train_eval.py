import json

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms

from pansim.training.data import load_dataset
from pansim.training.evaluate import metrics, predict
from pansim.training.report import evaluate_file, format_table, write_report

GPA = 160.21766208


class ConstantModel(torch.nn.Module):
    """Energy 0.5 eV per atom, zero forces and stress: errors are the labels themselves."""

    def __init__(self):
        super().__init__()
        self.register_buffer("atomic_numbers", torch.tensor([29, 47]))
        self.register_buffer("r_max", torch.tensor(3.0))
        self.c = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, data, training=False, compute_force=True, compute_stress=False):
        n = data["ptr"][1:] - data["ptr"][:-1]
        out = {"energy": self.c * n, "forces": torch.zeros_like(data["positions"])}
        out["stress"] = torch.zeros(len(n), 3, 3, dtype=torch.float64) if compute_stress else None
        return out


@pytest.fixture
def tiny_file(tmp_path):
    a = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=np.eye(3) * 6, pbc=True)
    a.info["REF_energy"] = 1.0
    a.info["REF_stress"] = np.full(9, 0.1)
    a.arrays["REF_forces"] = np.array([[1.0, 0, 0], [-1.0, 0, 0]])
    b = Atoms("Ag", positions=[[0, 0, 0]])
    b.info["REF_energy"] = -2.0
    b.arrays["REF_forces"] = np.zeros((1, 3))
    path = tmp_path / "tiny.xyz"
    ase.io.write(path, [a, b], format="extxyz")
    return path


def test_metrics_match_hand_computed_values(tiny_file, tmp_path):
    result, samples, preds = evaluate_file(ConstantModel(), tiny_file)
    # energy per atom errors: (1.0 - 1.0) / 2 = 0 and (0.5 + 2.0) / 1 = 2.5 eV/atom
    assert result["energy_per_atom"]["mae"] == pytest.approx(1250.0)
    assert result["energy_per_atom"]["rmse"] == pytest.approx(1e3 * np.sqrt(6.25 / 2))
    # force components: errors 1, 0, 0, -1, 0, 0 (Cu) and 0, 0, 0 (Ag)
    assert result["forces"]["mae"] == pytest.approx(1e3 * 2 / 9)
    assert result["forces"]["rmse"] == pytest.approx(1e3 * np.sqrt(2 / 9))
    assert result["forces_per_element"]["Cu"]["mae"] == pytest.approx(1e3 / 3)
    assert result["forces_per_element"]["Ag"]["rmse"] == 0.0
    # stress: only the crystal is labelled, 9 components off by 0.1 eV/A^3
    assert result["stress"]["mae"] == pytest.approx(0.1 * GPA)
    assert result["stress"]["rmse"] == pytest.approx(0.1 * GPA)
    assert (result["n_structures"], result["n_atoms"], result["n_stress"]) == (2, 3, 1)
    assert "forces Cu" in format_table(result)
    files = write_report(result, samples, preds, tmp_path / "report")
    assert json.loads(files[0].read_text())["forces"]["mae"] == pytest.approx(1e3 * 2 / 9)
    names = sorted(p.name for p in files[1:])
    assert names == ["parity_energy.png", "parity_forces.png", "parity_stress.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in files[1:])


def tiny_model():
    from _tiny import TINY

    from pansim.backbones import build_model

    model = build_model(
        variant="pan+pgs", elements=["Cu", "Ag"], r_max=4.0, seed=0, atomic_energies=[0.1, 0.2],
        avg_num_neighbors=20.0, atomic_inter_shift=0.0, atomic_inter_scale=1.0, **TINY,
    )  # fmt: skip
    return model.double()


def test_batched_predictions_equal_calculator(emt_files):
    calculator = pytest.importorskip("pansim.calculator")
    model = tiny_model()
    result, _, preds = evaluate_file(model, emt_files["test"], batch_size=4)
    for atoms, pred in zip(ase.io.read(emt_files["test"], ":"), preds, strict=True):
        atoms.calc = calculator.PANCalculator(model=model)
        assert atoms.get_potential_energy() == pytest.approx(pred["energy"], rel=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), pred["forces"], rtol=1e-10, atol=1e-12)


def test_batched_predictions_equal_single_structure_ones(emt_files):
    model = tiny_model()
    samples = load_dataset(emt_files["test"], ("REF_energy", "REF_forces", "REF_stress"),
                           [29, 47], 4.0)  # fmt: skip
    batched = predict(model, samples, batch_size=4)
    single = predict(model, samples, batch_size=1)
    for a, b in zip(batched, single, strict=True):
        assert a["energy"] == pytest.approx(b["energy"], rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(a["forces"], b["forces"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a["stress"], b["stress"], rtol=1e-10, atol=1e-12)
    assert metrics(samples, batched)["forces"]["mae"] > 0
