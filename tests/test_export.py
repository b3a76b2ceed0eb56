"""The LAMMPS exports, called the way LAMMPS calls them (no LAMMPS needed).

``libtorch``: as ``pair_style mace`` calls the TorchScript wrapper. ``mliap``: as
``pair_style mliap unified`` drives the loaded object, with a stand-in for
LAMMPS's ML-IAP data object.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.neighborlist import neighbor_list

from pansim.calculator import PANCalculator
from pansim.export import export_libtorch, export_mliap, load_mliap

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


# -- ML-IAP unified -----------------------------------------------------------------
class FakeMLIAPData:
    """Stand-in for LAMMPS's ML-IAP (Kokkos) data object on one MPI rank.

    Atoms ``0..nlocal-1`` are local, the rest ghosts (periodic images) with an
    owner each. Pairs ``(pair_i, pair_j)`` run from every local atom i to every
    atom j (local or ghost) within the cutoff, ``rij = r_j - r_i``. The methods
    do what LAMMPS does: ``update_pair_forces_gpu`` adds ``fij`` to atom i and
    subtracts it from atom j (LAMMPS's ``update_pair_forces``) and accumulates
    the pair virial; ``forward_exchange`` copies owner rows into ghost rows;
    ``reverse_exchange`` adds ghost rows onto owners.
    """

    def __init__(self, positions, elems, owner, nlocal, cutoff):
        from ase import Atoms

        self.nlocal = self.nlistatoms = nlocal
        self.ntotal = len(positions)
        self.owner = torch.as_tensor(owner, dtype=torch.int64)
        i, j, d = neighbor_list("ijD", Atoms(positions=positions, pbc=False), cutoff)
        keep = i < nlocal
        self.pair_i = i[keep].astype(np.int32)
        self.pair_j = self.jatoms = j[keep].astype(np.int32)
        self.rij = np.ascontiguousarray(d[keep])  # r_j - r_i
        self.npairs = len(self.pair_i)
        self.elems = np.asarray(elems, dtype=np.int32)
        self.eatoms = np.zeros(nlocal)
        self.energy = None
        self.f = np.zeros((self.ntotal, 3))
        self.virial = np.zeros((3, 3))
        self.exchanges = 0

    def update_pair_forces_gpu(self, fij):
        fij = fij.detach().numpy()
        np.add.at(self.f, self.pair_i, fij)
        np.add.at(self.f, self.pair_j, -fij)
        self.virial += self.rij.T @ fij  # sum_ij rij (x) dE/drij

    def forward_exchange(self, feats, out, vec_len):
        self.exchanges += 1
        out.copy_(feats[self.owner])

    def reverse_exchange(self, grad, gout, vec_len):
        gout.zero_()
        gout.index_add_(0, self.owner, grad)

    def local_forces(self):
        """Forces on local atoms after LAMMPS's reverse communication (newton on)."""
        forces = np.zeros((self.nlocal, 3))
        np.add.at(forces, self.owner.numpy(), self.f)
        return forces


def _mliap_data(atoms, unified):
    cutoff = 2.0 * unified.rcutfac
    pos, num, owner, n_local = _with_ghosts(atoms, cutoff + 1.0)  # one cutoff + a skin
    types = [str(e) for e in unified.element_types]
    from ase.data import chemical_symbols

    elems = [types.index(chemical_symbols[z]) for z in num]
    return FakeMLIAPData(pos, elems, owner, n_local, cutoff)


def _check_mliap(model, atoms, tmp_path, monkeypatch):
    path = tmp_path / "model-mliap_lammps.pt"
    export_mliap(model, path)
    # LAMMPS's route: torch.load of the file (older LAMMPS without weights_only=False
    # needs this variable set, as mace's own create_lammps_model does)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    unified = torch.load(str(path))
    assert unified.element_types == ["Si", "O", "H"]
    assert 2.0 * unified.rcutfac == pytest.approx(float(model.r_max))
    assert (unified.ndescriptors, unified.nparams) == (1, 1)
    data = _mliap_data(atoms, unified)
    unified.compute_forces(data)
    reference = atoms.copy()
    reference.calc = PANCalculator(model)
    assert data.exchanges == len(model.interactions) - 1
    assert data.energy == pytest.approx(reference.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(data.eatoms, reference.get_potential_energies(), atol=1e-6)
    np.testing.assert_allclose(data.local_forces(), reference.get_forces(), atol=1e-6)
    stress = data.virial / atoms.get_volume()  # ASE sign: (1/V) dE/d(strain)
    np.testing.assert_allclose(stress, reference.get_stress(voigt=False), atol=1e-6)


@pytest.mark.parametrize("variant", ["baseline", "pan+pgs"])
def test_mliap_matches_calculator_small_cell(tiny_model_factory, variant, tmp_path, monkeypatch):
    _check_mliap(tiny_model_factory(variant), _periodic_cell(1), tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["baseline", "pan+pgs"])
def test_mliap_matches_calculator_500_atoms(tiny_model_factory, variant, tmp_path, monkeypatch):
    _check_mliap(tiny_model_factory(variant), _periodic_cell(4), tmp_path, monkeypatch)


def test_mliap_refuses_data_without_exchange(tiny_model_factory, tmp_path):
    path = tmp_path / "m.pt"
    export_mliap(tiny_model_factory("baseline"), path)
    unified = load_mliap(path)
    data = _NoExchange(_mliap_data(_periodic_cell(1), unified))
    with pytest.raises(RuntimeError, match="forward_exchange"):
        unified.compute_forces(data)


class _NoExchange:
    """Plain (non-Kokkos) ML-IAP data: no ghost exchange."""

    def __init__(self, data):
        self._data = data

    def __getattr__(self, name):
        if name in ("forward_exchange", "reverse_exchange"):
            raise AttributeError(name)
        return getattr(self._data, name)


def test_cli_export_mliap(tiny_model_factory, tmp_path):
    from pansim.cli import main
    from pansim.export import PANMLIAP
    from pansim.model_io import save_model

    model_path = save_model(tiny_model_factory("pan+pgs"), tmp_path / "m.safetensors")
    out = tmp_path / "model-mliap_lammps.pt"
    assert main(["export", str(model_path), "--format", "mliap", "--out", str(out)]) == 0
    unified = load_mliap(out)
    assert isinstance(unified, PANMLIAP)
    assert unified.dtype == torch.float64


def test_mliap_baseline_matches_mace_own_class(tiny_model_factory):
    """Same numbers as mace-torch's LAMMPS_MLIAP_MACE running mace's own forward."""
    import types

    from mace.modules.models import ScaleShiftMACE

    from pansim.export import LAMMPS_MLIAP_MACE, PANMLIAP

    model, atoms = tiny_model_factory("baseline").eval(), _periodic_cell(1)
    plain = tiny_model_factory("baseline").eval()
    plain.forward = types.MethodType(ScaleShiftMACE.forward, plain)
    ours, theirs = PANMLIAP(model), LAMMPS_MLIAP_MACE(plain)
    data_ours, data_theirs = _mliap_data(atoms, ours), _mliap_data(atoms, theirs)
    ours.compute_forces(data_ours)
    theirs.compute_forces(data_theirs)
    # float(): mace-torch 0.3.14 stores the energy as a 0-d tensor
    assert data_ours.energy == pytest.approx(float(data_theirs.energy), abs=1e-10)
    np.testing.assert_allclose(data_ours.local_forces(), data_theirs.local_forces(), atol=1e-10)
