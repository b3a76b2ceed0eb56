"""Chunked evaluation (pansim.chunking): exact against the whole cell, and its bad input."""

import warnings

import numpy as np
import pytest
from ase.build import bulk

from pansim import chunking
from pansim.calculator import PANCalculator
from pansim.graph import InvalidStructureError, neighbor_list

R_MAX = 2.6  # Si first shell (2.35 A) only: halo 2 * 2.6 A, small cells give several chunks
TOLERANCE = 1e-8


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def model(tiny_model_factory):
    return tiny_model_factory("pan+pgs", r_max=R_MAX)


@pytest.fixture(scope="module")
def whole(model):
    return PANCalculator(model)


def _si(repeat, cubic=True, seed=0):
    atoms = bulk("Si", "diamond", 5.43, cubic=cubic) * repeat
    atoms.rattle(0.05, seed=seed)
    return atoms


def _structures():
    triclinic = _si((6, 5, 5), cubic=False, seed=1)
    triclinic.set_cell(
        triclinic.cell.array @ np.array([[1, 0.05, 0.02], [0, 1, 0.03], [0, 0, 1.02]]),
        scale_atoms=True,
    )
    triclinic.numbers[::5] = 8  # O
    cluster = _si((3, 3, 2), seed=2)
    cluster.pbc = False
    slab = _si((3, 3, 1), seed=3)
    slab.center(vacuum=4.0, axis=2)
    slab.pbc = (True, True, False)
    return {
        "cubic": (_si((4, 3, 3)), 260),
        "triclinic": (triclinic, 280),
        "cluster": (cluster, 130),
        "slab": (slab, 60),
    }


STRUCTURES = _structures()


def _compare(chunked: dict, reference: dict, properties) -> None:
    for key in properties:
        a, b = np.asarray(chunked[key]), np.asarray(reference[key])
        scale = max(np.abs(b).max(), 1e-12)
        assert np.abs(a - b).max() <= TOLERANCE * scale, key


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_chunked_equals_whole_cell(model, whole, name):
    atoms, max_atoms = STRUCTURES[name]
    properties = ["energy", "energies", "forces"] + (["stress"] if atoms.pbc.all() else [])
    grid = chunking.plan(atoms, model, max_atoms)
    assert grid is not None and grid.prod() > 1  # really chunked
    frame = chunking.make_frame(atoms, R_MAX)
    assert chunking.counts(frame, grid, chunking.halo_depth(model)).max() <= max_atoms
    calc = PANCalculator(model, max_atoms_per_chunk=max_atoms)
    calc.calculate(atoms, properties)
    whole.calculate(atoms, properties)
    _compare(calc.results, whole.results, properties)


def test_every_atom_owned_once_and_edges_pruned(model):
    atoms, max_atoms = STRUCTURES["cubic"]
    grid = chunking.plan(atoms, model, max_atoms)
    chunks = list(chunking.iter_chunks(atoms, grid, chunking.halo_depth(model), R_MAX))
    owned = np.concatenate([c.index[c.owned] for c in chunks])
    np.testing.assert_array_equal(np.sort(owned), np.arange(len(atoms)))
    chunk = chunks[0]
    graph = chunking.chunk_graph(chunk, atoms.numbers, [14, 8, 1], R_MAX)
    from ase import Atoms

    full = neighbor_list(Atoms(atoms.numbers[chunk.index], chunk.positions), R_MAX)[0]
    assert 0 < graph["edge_index"].shape[1] < full.shape[1]  # the outer halo receives nothing
    assert chunk.receives.sum() < len(chunk.index)


def test_one_interaction_model(tiny_model_factory):
    from _tiny_models import build_tiny

    model = build_tiny(variant="pan", elements=["Si"], r_max=R_MAX, seed=4, num_interactions=1)
    atoms = _si((2, 2, 2), seed=5)
    calc = PANCalculator(model, max_atoms_per_chunk=30)
    assert chunking.plan(atoms, calc.model, 30).prod() > 1
    properties = ["energy", "forces", "stress"]
    calc.calculate(atoms, properties)
    reference = PANCalculator(model)
    reference.calculate(atoms, properties)
    _compare(calc.results, reference.results, properties)


def test_energy_only_request_runs_no_backward(model, whole):
    atoms, max_atoms = STRUCTURES["cubic"]
    calc = PANCalculator(model, max_atoms_per_chunk=max_atoms)
    calc.calculate(atoms, ["energy"])
    assert "forces" not in calc.results
    whole.calculate(atoms, ["energy"])
    _compare(calc.results, whole.results, ["energy", "energies"])


def test_small_structures_use_the_whole_cell(model):
    atoms = _si((1, 1, 1))
    assert chunking.plan(atoms, model, len(atoms)) is None
    cell = _si((1, 1, 2), cubic=False)  # 4 atoms in a cell thinner than the halo
    calc = PANCalculator(model, max_atoms_per_chunk=2)
    with pytest.warns(UserWarning, match="cell too small for chunking"):
        calc.calculate(cell, ["energy", "forces"])
    reference = PANCalculator(model)
    reference.calculate(cell, ["energy", "forces"])
    _compare(calc.results, reference.results, ["energy", "forces"])


def test_chunk_smaller_than_the_halo_is_refused(model):
    atoms = _si((3, 3, 3))
    calc = PANCalculator(model, max_atoms_per_chunk=10)
    with pytest.raises(chunking.ChunkSizeError, match="smaller than the halo needs.*5.2 A"):
        calc.get_potential_energy(atoms)


@pytest.mark.parametrize("value", [0, -5, 2.5, True, "100"])
def test_bad_chunk_size(model, value):
    with pytest.raises(ValueError, match="max_atoms_per_chunk must be a positive integer"):
        PANCalculator(model, max_atoms_per_chunk=value)


def test_model_without_interaction_count(model):
    import copy

    bare = copy.deepcopy(model)
    del bare.num_interactions
    with pytest.raises(TypeError, match="num_interactions"):
        PANCalculator(bare, max_atoms_per_chunk=100)


def test_bad_structures_named(model):
    atoms, max_atoms = STRUCTURES["cubic"]
    atoms = atoms.copy()
    atoms.positions[3] = atoms.positions[5] + 0.01
    calc = PANCalculator(model, max_atoms_per_chunk=max_atoms)
    with pytest.raises(InvalidStructureError, match="atoms 3 and 5 overlap|atoms 5 and 3 overlap"):
        calc.get_potential_energy(atoms)
    atoms = STRUCTURES["cubic"][0].copy()
    atoms.numbers[0] = 6
    with warnings.catch_warnings(), pytest.raises(InvalidStructureError, match="not supported"):
        calc.get_potential_energy(atoms)
    atoms = STRUCTURES["cubic"][0].copy()
    atoms.positions[4, 1] = np.nan
    with pytest.raises(InvalidStructureError, match=r"NaN or inf in positions of atom\(s\) \[4\]"):
        calc.get_potential_energy(atoms)


def _with_domain(model, stats):
    import copy

    model = copy.deepcopy(model)
    model.pansim_metadata = {"domain": stats}
    return model


def test_domain_check_runs_on_the_chunked_path(model, whole):
    """The chunked path reports the whole-cell path's out-of-domain lines and warns once."""
    from pansim.domain import DomainWarning, domain_statistics
    from pansim.graph import atoms_to_graph

    atoms, max_atoms = STRUCTURES["triclinic"]  # Si and O
    atoms = atoms.copy()
    atoms.positions[7] = atoms.positions[3] + [0.0, 0.0, 1.3]  # a short pair: below training
    train = _si((1, 1, 1))  # pure Si, bulk-like coordination only
    stats = domain_statistics([atoms_to_graph(train, [14, 8, 1], R_MAX)], [train.numbers], R_MAX)
    calc = PANCalculator(_with_domain(model, stats), max_atoms_per_chunk=max_atoms)
    reference = PANCalculator(_with_domain(model, stats))
    assert chunking.plan(atoms, calc.model, max_atoms).prod() > 1
    with pytest.warns(DomainWarning) as chunked_warnings:
        calc.calculate(atoms, ["energy", "forces"])
    with pytest.warns(DomainWarning) as whole_warnings:
        reference.calculate(atoms, ["energy", "forces"])
    lines = reference.results["warnings"]
    assert {line.split(" ")[0] for line in lines} == {"element", "distance", "coordination"}
    assert calc.results["warnings"] == lines
    assert [str(w.message) for w in chunked_warnings] == [str(w.message) for w in whole_warnings]
    with warnings.catch_warnings():  # each kind is warned once per calculator, as whole-cell
        warnings.simplefilter("error", DomainWarning)
        calc.calculate(atoms, ["energy"])
    assert calc.results["warnings"] == lines
    inside = PANCalculator(_with_domain(model, stats), max_atoms_per_chunk=260)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        inside.calculate(train.repeat((4, 3, 3)), ["energy"])  # the training cell, repeated
    assert inside.results["warnings"] == []


def test_check_domain_false_skips_it_on_the_chunked_path(model):
    atoms, max_atoms = STRUCTURES["cubic"]
    stats = {"r_max": R_MAX, "combinations": [["O"]], "min_distance": {}, "coordination": {}}
    calc = PANCalculator(_with_domain(model, stats), max_atoms_per_chunk=max_atoms,
                         check_domain=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calc.calculate(atoms, ["energy"])
    assert "warnings" not in calc.results


# -- max_atoms_per_chunk="auto" -------------------------------------------------------------
def _auto(model, monkeypatch, available):
    """An "auto" calculator that sees ``available`` bytes; the bytes per atom it will use."""
    monkeypatch.setattr(chunking, "available_memory", lambda device="cpu": available)
    return PANCalculator(model, max_atoms_per_chunk="auto")


def _per_atom(calc, atoms):
    memory = chunking.calibrate(calc.model, calc.dtype, calc.device)
    return memory.per_atom(chunking.edges_per_atom(atoms, R_MAX))


def test_auto_chunk_size_follows_the_available_memory(model, whole, monkeypatch):
    atoms, _ = STRUCTURES["cubic"]  # 288 atoms
    calc = _auto(model, monkeypatch, 0)
    per_atom = _per_atom(calc, atoms)
    assert 10e3 < per_atom < 1e6  # bytes: the tiny model's graph, times the peak factor
    available = 2 * 200 * per_atom / chunking.AUTO_MEMORY_FRACTION  # room for ~400 atoms
    monkeypatch.setattr(chunking, "available_memory", lambda device="cpu": available)
    properties = ["energy", "energies", "forces", "stress"]
    calc.calculate(atoms, properties)
    expected = int(chunking.AUTO_MEMORY_FRACTION * available // per_atom)
    assert abs(calc.chunk_size - expected) <= 1  # float round-off of the division
    assert calc.chunk_size > len(atoms)  # fits: the whole cell, one model call
    whole.calculate(atoms, properties)
    _compare(calc.results, whole.results, properties)
    available = 260 * per_atom / chunking.AUTO_MEMORY_FRACTION  # room for 260 atoms: chunks
    monkeypatch.setattr(chunking, "available_memory", lambda device="cpu": available)
    calc.calculate(atoms.copy(), properties)
    assert abs(calc.chunk_size - 260) <= 1
    grid = chunking.plan(atoms, calc.model, calc.chunk_size)
    assert grid.prod() > 1
    frame = chunking.make_frame(atoms, R_MAX)
    assert chunking.counts(frame, grid, chunking.halo_depth(model)).max() <= calc.chunk_size
    _compare(calc.results, whole.results, properties)


def test_auto_never_chooses_a_chunk_smaller_than_the_halo_needs(model, whole, monkeypatch):
    atoms = _si((3, 3, 3))  # 216 atoms
    per_atom = _per_atom(PANCalculator(model), atoms)
    calc = _auto(model, monkeypatch, 40 * per_atom / chunking.AUTO_MEMORY_FRACTION)
    with pytest.raises(chunking.ChunkSizeError):  # what 40 atoms per chunk would do
        chunking.plan(atoms, calc.model, 40)
    with pytest.warns(UserWarning, match=r"the memory available allows chunks of (39|40) atoms.*"
                      r"halo of n_interactions \* r_max = 5.2 A needs at least"):  # fmt: skip
        calc.calculate(atoms, ["energy", "forces"])
    assert 40 < calc.chunk_size < len(atoms)
    assert chunking.plan(atoms, calc.model, calc.chunk_size).prod() > 1
    whole.calculate(atoms, ["energy", "forces"])
    _compare(calc.results, whole.results, ["energy", "forces"])


def test_auto_on_a_cell_too_small_for_the_halo_falls_back_and_says_so(model, monkeypatch):
    cell = _si((1, 1, 2), cubic=False)  # 4 atoms in a cell thinner than the halo
    calc = _auto(model, monkeypatch, 1)  # room for one atom
    with pytest.warns(UserWarning, match="cell too small for chunking"):
        calc.calculate(cell, ["energy", "forces"])
    reference = PANCalculator(model)
    reference.calculate(cell, ["energy", "forces"])
    _compare(calc.results, reference.results, ["energy", "forces"])


def test_auto_needs_to_know_the_memory(model, monkeypatch):
    calc = _auto(model, monkeypatch, None)
    with pytest.raises(RuntimeError, match="cannot read the memory available.*as a number"):
        calc.get_potential_energy(_si((2, 2, 2)))


def test_available_memory_reads_meminfo_without_psutil(monkeypatch):
    import builtins
    import sys

    real_import = builtins.__import__

    def no_psutil(name, *args, **kwargs):
        if name == "psutil":
            raise ImportError("No module named 'psutil'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psutil)
    monkeypatch.delitem(sys.modules, "psutil", raising=False)
    available = chunking.available_memory("cpu")
    assert available is None or available > 1 << 20
    assert chunking.available_memory("meta") is None
