"""pansim.testing: every helper passes a correct toy model and catches a broken one."""

import numpy as np
import pytest
import torch
from ase import Atoms

from pansim import testing as T

R_MAX = 3.5


class ToyPair(torch.nn.Module):
    """Smooth pair potential behind the pansim model contract; ``bug`` breaks one property."""

    def __init__(self, bug: str = "") -> None:
        super().__init__()
        self.register_buffer("atomic_numbers", torch.tensor([1, 8]))
        self.register_buffer("r_max", torch.tensor(R_MAX, dtype=torch.float64))
        self.strength = torch.nn.Parameter(torch.tensor([1.0, 0.7], dtype=torch.float64))
        self.bug = bug
        self.pansim_config = {}

    def pair(self, r: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = r / self.r_max
        envelope = (1 - x) ** 4 * (x < 1) if self.bug != "hard_cutoff" else (x < 1).double()
        return z @ self.strength * torch.exp(-r) * envelope

    def forward(self, data: dict[str, torch.Tensor], training: bool = False,
                compute_force: bool = True, compute_stress: bool = False):  # fmt: skip
        pos = data["positions"]
        if not pos.requires_grad:
            pos = pos.clone().requires_grad_(True)
        n_graphs = data["ptr"].numel() - 1
        strain = torch.zeros(n_graphs, 3, 3, dtype=pos.dtype, requires_grad=True)
        eye = torch.eye(3, dtype=pos.dtype) + 0.5 * (strain + strain.transpose(1, 2))
        send, recv = data["edge_index"]
        cell = data["cell"].view(-1, 3, 3)
        shifts = torch.einsum(
            "ei,eij->ej", data["unit_shifts"], cell[data["batch"][send]] @ eye[data["batch"][send]]
        )
        strained = torch.einsum("ni,nij->nj", pos, eye[data["batch"]])
        r = (strained[recv] - strained[send] + shifts).norm(dim=-1)
        node = torch.zeros(len(pos), dtype=pos.dtype).index_add(
            0, recv, 0.5 * self.pair(r, data["node_attrs"][send])
        )
        node = node + self._bugs(strained, data)
        energy = torch.zeros(n_graphs, dtype=pos.dtype).index_add(0, data["batch"], node)
        f, s = torch.autograd.grad(
            energy.sum(), [pos, strain], create_graph=training and self.bug != "detached"
        )
        volume = torch.linalg.det(cell).abs().clamp(min=1e-30).view(-1, 1, 1)
        forces = -f * (1.01 if self.bug == "forces" else 1.0)
        stress = s / volume * (-1.0 if self.bug == "stress" else 1.0)
        return {"energy": energy, "node_energy": node, "forces": forces,
                "stress": stress if compute_stress else None}  # fmt: skip

    def _bugs(self, pos: torch.Tensor, data: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-atom energy terms that break exactly one symmetry each."""
        zero = torch.zeros(pos.shape[0], dtype=pos.dtype)
        centred = pos - pos.mean(0)
        if self.bug == "translation":  # depends on the distance of the centroid from the origin
            return zero + 0.01 * pos.mean(0).square().sum()
        if self.bug == "rotation":  # anisotropic
            return 0.01 * centred[:, 0] ** 2
        if self.bug == "permutation":  # weights by atom index
            return 0.01 * torch.arange(pos.shape[0], dtype=pos.dtype) * centred.square().sum(1)
        if self.bug == "reflection":  # a pseudoscalar: changes sign under inversion
            d = pos[1:4] - pos[0]
            return zero + 0.01 * torch.linalg.det(d)
        if self.bug == "image":  # depends on which periodic image of each atom is used
            frac = torch.linalg.solve(data["cell"].view(3, 3).T, pos.T).T[:, 0]
            return 0.001 * torch.cos(1.9 * (frac.unsqueeze(0) - frac.unsqueeze(1))).sum(1)
        return zero


class Quadratic(torch.nn.Module):
    """``E = k |r|^2``; its TorchScript version adds 1 eV (a script-only bug)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("atomic_numbers", torch.tensor([1, 8]))
        self.register_buffer("r_max", torch.tensor(R_MAX, dtype=torch.float64))
        self.k = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, data: dict[str, torch.Tensor], compute_stress: bool = False):
        pos = data["positions"]
        node = self.k * pos.square().sum(1)
        if torch.jit.is_scripting():
            node = node + 1.0
        energy = node.sum().unsqueeze(0)
        stress = torch.zeros(1, 3, 3, dtype=pos.dtype)
        return {"energy": energy, "node_energy": node, "forces": -2 * self.k * pos,
                "stress": stress}  # fmt: skip


def _molecule():
    return Atoms("H2O2", positions=[[0, 0, 0], [0.97, 0.1, 0], [-0.3, 1.3, 0.2], [0.4, 1.9, 1.0]])


def _bulk():
    return T.random_atoms("H2O2", pbc=True, seed=0, volume_per_atom=9.0, min_distance=1.0)


@pytest.fixture(params=["molecule", "bulk"])
def atoms(request):
    return {"molecule": _molecule, "bulk": _bulk}[request.param]()


def test_correct_toy_passes_everything(atoms):
    evaluate = T.model_evaluator(ToyPair())
    T.assert_invariance(evaluate, atoms)
    T.assert_forces_fd(evaluate, atoms)
    if atoms.pbc.all():
        T.assert_stress_fd(evaluate, atoms)
    T.assert_smooth_cutoff(evaluate, atoms, R_MAX)
    T.assert_identity_at_init([ToyPair(), ToyPair()], atoms)
    T.assert_twice_differentiable(ToyPair(), atoms)


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        ("translation", "translation"),
        ("rotation", "rotation"),
        ("permutation", "permutation"),
        ("reflection", "reflection"),
    ],
)
def test_invariance_catches(bug, message):
    with pytest.raises(AssertionError, match=message):
        T.assert_invariance(T.model_evaluator(ToyPair(bug)), _molecule())


def test_invariance_catches_periodic_image_dependence():
    with pytest.raises(AssertionError, match="periodic image"):
        T.assert_invariance(T.model_evaluator(ToyPair("image")), _bulk())


def test_forces_fd_catches_wrong_forces(atoms):
    with pytest.raises(AssertionError, match="finite differences"):
        T.assert_forces_fd(T.model_evaluator(ToyPair("forces")), atoms)


def test_stress_fd_catches_wrong_stress():
    with pytest.raises(AssertionError, match="stress"):
        T.assert_stress_fd(T.model_evaluator(ToyPair("stress")), _bulk())


def test_stress_fd_needs_periodic_cell():
    with pytest.raises(ValueError, match="periodic"):
        T.assert_stress_fd(T.model_evaluator(ToyPair()), _molecule())


def test_smooth_cutoff_catches_hard_cutoff(atoms):
    with pytest.raises(AssertionError, match="not smooth"):
        T.assert_smooth_cutoff(T.model_evaluator(ToyPair("hard_cutoff")), atoms, R_MAX)


def test_identity_catches_different_models():
    other = ToyPair()
    with torch.no_grad():
        other.strength[0] += 1e-6
    with pytest.raises(AssertionError, match="model 1 vs model 0"):
        T.assert_identity_at_init([ToyPair(), other], _molecule())


def test_twice_differentiable_catches_detached_forces():
    with pytest.raises((AssertionError, RuntimeError)):
        T.assert_twice_differentiable(ToyPair("detached"), _molecule())


def test_jit_matches_catches_script_only_difference():
    with pytest.raises(AssertionError, match="scripted vs eager energy"):
        T.assert_jit_matches(Quadratic(), _bulk())


def test_calculator_evaluator_matches_model_evaluator():
    from ase.calculators.emt import EMT

    atoms = T.random_atoms("Cu4", pbc=True, seed=1, volume_per_atom=12.0, min_distance=2.0)
    evaluate = T.calculator_evaluator(EMT())
    before = atoms.copy()
    out = evaluate(atoms)
    assert atoms == before and atoms.calc is None
    assert out["forces"].shape == (4, 3) and out["stress"].shape == (3, 3)
    T.assert_invariance(evaluate, atoms, rtol=1e-8, atol=1e-9)
    T.assert_forces_fd(evaluate, atoms, rtol=1e-6, atol=1e-7)


def test_assert_close_reports_nan():
    with pytest.raises(AssertionError, match="x"):
        T.assert_close(np.array([np.nan]), np.array([1.0]), "x", 1e-8, 1e-8)


def test_random_atoms_respects_minimum_distance():
    atoms = T.random_atoms("Si8", pbc=True, seed=3, min_distance=2.0)
    d = atoms.get_all_distances(mic=True)[np.triu_indices(8, 1)]
    assert d.min() > 2.0 and len(atoms) == 8
    with pytest.raises(RuntimeError, match="could not place"):
        T.random_atoms("Si2", volume_per_atom=1.0, min_distance=3.0)
