"""The LAMMPS export, called the way ``pair_style mace`` calls it (no LAMMPS needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.neighborlist import neighbor_list

from pansim.calculator import PANCalculator
from pansim.export import export_libtorch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _periodic_cell(repeat: int, seed: int = 0):
    atoms = bulk("Si", "diamond", a=5.47, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=seed)
    symbols = atoms.get_chemical_symbols()
    symbols[1], symbols[5] = "O", "H"
    atoms.set_chemical_symbols(symbols)
    return atoms


def _with_ghosts(atoms, reach: float):
    """Local atoms then explicit periodic images within ``reach`` of the cell (LAMMPS ghosts).

    Returns positions [n_all, 3], numbers [n_all], owner index [n_all], n_local.
    """
    cell = np.asarray(atoms.cell)
    spacing = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)  # lattice-plane spacings
    n = np.ceil(reach / spacing).astype(int)
    frac = atoms.get_scaled_positions(wrap=False)
    pos, num, owner = [atoms.positions], [atoms.numbers], [np.arange(len(atoms))]
    for image in np.ndindex(*(2 * n + 1)):
        shift = np.array(image) - n
        if not shift.any():
            continue
        f = frac + shift
        keep = np.all((f > -reach / spacing) & (f < 1 + reach / spacing), axis=1)
        pos.append((f[keep]) @ cell)
        num.append(atoms.numbers[keep])
        owner.append(np.nonzero(keep)[0])
    return np.concatenate(pos), np.concatenate(num), np.concatenate(owner), len(atoms)


def _lammps_call(wrapper, atoms, compute_virials=False):
    """Energy and owner-summed forces as LAMMPS gets them from ``pair_style mace``."""
    r_max = float(wrapper.r_max)
    reach = int(wrapper.num_interactions) * r_max
    pos, num, owner, n_local = _with_ghosts(atoms, reach)
    from ase import Atoms

    i, j = neighbor_list("ij", Atoms(numbers=num, positions=pos, pbc=False), r_max)
    z = [int(x) for x in wrapper.atomic_numbers]
    node_attrs = np.zeros((len(num), len(z)))
    node_attrs[np.arange(len(num)), [z.index(int(x)) for x in num]] = 1.0
    positions = torch.tensor(pos, dtype=torch.float64, requires_grad=True)
    data = {
        "positions": positions,
        "node_attrs": torch.tensor(node_attrs),
        "edge_index": torch.tensor(np.stack([i, j]), dtype=torch.int64),
        "shifts": torch.zeros((len(i), 3), dtype=torch.float64),
        "unit_shifts": torch.zeros((len(i), 3), dtype=torch.float64),
        "cell": torch.zeros((3, 3), dtype=torch.float64),
        "batch": torch.zeros(len(num), dtype=torch.int64),
        "ptr": torch.tensor([0, len(num)], dtype=torch.int64),
        "head": torch.zeros(1, dtype=torch.int64),
    }
    mask = torch.zeros(len(num), dtype=torch.float64)
    mask[:n_local] = 1.0
    out = wrapper(data, mask, compute_virials)
    forces = np.zeros((n_local, 3))
    np.add.at(forces, owner, out["forces"].detach().numpy())  # reverse communication
    return float(out["total_energy_local"][0]), forces, out["virials"]


def _check(model, atoms, tmp_path):
    path = tmp_path / "model-lammps.pt"
    export_libtorch(model, path)
    wrapper = torch.jit.load(str(path))
    assert int(wrapper.num_interactions) == len(model.interactions)
    assert [int(z) for z in wrapper.atomic_numbers] == [int(z) for z in model.atomic_numbers]
    energy, forces, virials = _lammps_call(wrapper, atoms, compute_virials=True)
    reference = atoms.copy()
    reference.calc = PANCalculator(model)
    assert energy == pytest.approx(reference.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(forces, reference.get_forces(), atol=1e-6)
    stress = -virials[0].numpy() / atoms.get_volume()  # ASE sign: stress = -virial / V
    np.testing.assert_allclose(stress, reference.get_stress(voigt=False), atol=1e-6)


@pytest.mark.parametrize("variant", ["baseline", "pan+pgs"])
def test_libtorch_matches_calculator_small_cell(tiny_model_factory, variant, tmp_path):
    _check(tiny_model_factory(variant), _periodic_cell(1), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["baseline", "pan+pgs"])
def test_libtorch_matches_calculator_500_atoms(tiny_model_factory, variant, tmp_path):
    _check(tiny_model_factory(variant), _periodic_cell(4), tmp_path)  # 512 atoms


def test_cli_export(tiny_model_factory, tmp_path):
    from pansim.cli import main
    from pansim.model_io import save_model

    model_path = save_model(tiny_model_factory("baseline"), tmp_path / "m.safetensors")
    out = tmp_path / "lammps.pt"
    assert main(["export", str(model_path), "--format", "libtorch", "--out", str(out)]) == 0
    assert torch.jit.load(str(out)).r_max.item() == pytest.approx(4.0)
