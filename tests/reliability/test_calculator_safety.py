"""PANCalculator: shared between threads, unavailable devices, tiny and near-singular cells."""

import copy
import threading
import time

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from pansim import PANCalculator
from pansim.graph import InvalidStructureError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def model():
    from _tiny_models import build_tiny

    return build_tiny(elements=["Si", "O"], r_max=4.0, seed=2)


@pytest.fixture(scope="module")
def calc(model):
    return PANCalculator(model, keep_memory=False)


def _structures(n=6):
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        a = bulk("Si", "diamond", a=5.43 + 0.05 * k)
        a.rattle(0.05, seed=k)
        a.positions += rng.normal(0, 0.01, a.positions.shape)
        out.append(a)
    return out


def test_one_calculator_shared_by_two_threads_gives_each_its_own_results(calc):
    structures = _structures()
    expected = []
    for a in structures:
        a.calc = calc
        expected.append((a.get_potential_energy(), a.get_forces().copy()))
    got: dict[int, list] = {0: [], 1: []}

    def work(tid):
        for _ in range(6):
            for k in range(tid, len(structures), 2):
                a = structures[k].copy()
                a.calc = calc
                got[tid].append((k, a.get_potential_energy(), a.get_forces().copy()))

    threads = [threading.Thread(target=work, args=(t,)) for t in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = 0
    for tid in (0, 1):
        for k, e, f in got[tid]:
            assert e == pytest.approx(expected[k][0], abs=1e-10), k
            np.testing.assert_allclose(f, expected[k][1], atol=1e-10)
            n += 1
    assert n == 6 * len(structures)


def test_calculator_survives_deepcopy(calc):
    twin = copy.deepcopy(calc)
    a = _structures(1)[0]
    a.calc = twin
    e = a.get_potential_energy()
    b = a.copy()
    b.calc = calc
    assert e == pytest.approx(b.get_potential_energy())


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_clear_error(model, device):
    with pytest.raises(ValueError, match="CUDA is not available here"):
        PANCalculator(model, device=device, keep_memory=False)


def test_unknown_device_is_a_clear_error(model):
    with pytest.raises(ValueError, match="'warp-drive' is not a torch device"):
        PANCalculator(model, device="warp-drive", keep_memory=False)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (np.eye(3) * 0.03, "periodic cell too small"),
        (np.eye(3) * 0.015, "periodic cell too small"),
        (np.eye(3) * 0.5, "too dense or near-singular"),
        ([[5, 0, 0], [0, 5, 0], [5, 5, 1e-6]], "periodic cell too small"),
    ],
)
def test_tiny_and_near_singular_cells_fail_fast(calc, cell, message):
    atoms = Atoms("Si", cell=cell, pbc=True)
    atoms.calc = calc
    start = time.perf_counter()
    with pytest.raises(InvalidStructureError, match=message):
        atoms.get_potential_energy()
    assert time.perf_counter() - start < 1.0


def test_skewed_cell_of_a_sound_lattice_is_searched_in_its_reduced_form(calc):
    """Near-singular as written (face spacing 1e-3 A), but the lattice's vectors are >= 0.5 A.

    The neighbour search used to hang for minutes here; it now runs in the
    Minkowski-reduced cell and gives what the same lattice written sanely gives.
    """
    skewed = [[50, 0, 0], [0, 50, 0], [25.3, 17.1, 1e-3]]
    atoms = Atoms("Si", cell=skewed, pbc=True)
    atoms.calc = calc
    start = time.perf_counter()
    energy = atoms.get_potential_energy()
    assert time.perf_counter() - start < 5.0
    from ase.geometry import minkowski_reduce

    sane = Atoms("Si", cell=minkowski_reduce(np.array(skewed, dtype=float))[0], pbc=True)
    sane.calc = calc
    assert energy == pytest.approx(sane.get_potential_energy(), abs=1e-8)


def test_slab_with_tiny_periodic_vector_fails_fast(calc):
    atoms = Atoms("Si", cell=[0.02, 10, 10], pbc=[True, False, False])
    atoms.calc = calc
    with pytest.raises(InvalidStructureError, match="periodic cell too small"):
        atoms.get_potential_energy()
