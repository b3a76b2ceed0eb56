import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.neighborlist import neighbor_list


class Springs(Calculator):
    """Nearest-neighbour central springs: E = sum_pairs k/2 (r - r0)^2 within ``cutoff``.

    No stress on purpose (the elastic workflow must refuse it). ``bias`` adds a
    uniform force to every atom (a stand-in for DFT grid residual forces).
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, k=1.0, r0=2.5, cutoff=3.0, bias=(0.0, 0.0, 0.0), **kwargs):
        super().__init__(**kwargs)
        self.k, self.r0, self.cutoff, self.bias = k, r0, cutoff, np.asarray(bias, float)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        i, j, d, vec = neighbor_list("ijdD", self.atoms, self.cutoff)
        stretch = d - self.r0
        energy = 0.25 * self.k * np.sum(stretch**2)  # each pair appears twice
        pair_force = (self.k * stretch / d)[:, None] * vec  # force on i from j
        forces = np.zeros((len(self.atoms), 3))
        np.add.at(forces, i, pair_force)
        self.results = {"energy": energy, "forces": forces + self.bias}


class BatchSprings(Springs):
    """Springs with a ``batch_evaluate`` method that counts its calls."""

    batch_calls = 0

    def batch_evaluate(self, structures):
        type(self).batch_calls += 1
        out = []
        for atoms in structures:
            work = atoms.copy()
            work.calc = Springs(self.k, self.r0, self.cutoff)
            out.append({"energy": work.get_potential_energy(), "forces": work.get_forces()})
        return out


@pytest.fixture
def springs():
    return Springs


@pytest.fixture
def batch_springs():
    BatchSprings.batch_calls = 0
    return BatchSprings


class StressSprings(Springs):
    """Springs with the virial stress (eV/A^3, ASE sign: (1/V) dE/d(strain))."""

    implemented_properties = ["energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        i, j, d, vec = neighbor_list("ijdD", self.atoms, self.cutoff)
        dphi = self.k * (d - self.r0)
        virial = 0.5 * np.einsum("p,pa,pb->ab", dphi / d, vec, vec)
        stress = virial / self.atoms.get_volume()
        self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]]


@pytest.fixture
def stress_springs():
    return StressSprings
