import ase.io
import numpy as np
import pytest
from ase import Atoms

from pansim.training.data import (
    DataError,
    fit_atomic_energies,
    given_atomic_energies,
    load_dataset,
    polynomial_envelope,
    resolve_elements,
    statistics,
)
from pansim.training.synthetic import emt_structures

KEYS = ("REF_energy", "REF_forces", "REF_stress")


def test_missing_label_names_file_index_and_key(tmp_path):
    frames = emt_structures(3, seed=0)
    del frames[2].arrays["REF_forces"]
    path = tmp_path / "bad.xyz"
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(DataError, match=r"bad.xyz, structure 2: no forces label 'REF_forces'"):
        load_dataset(path, KEYS, [29, 47], 4.0)
    with pytest.raises(DataError, match=r"structure 0: no energy label 'my_energy'"):
        load_dataset(path, ("my_energy", *KEYS[1:]), [29, 47], 4.0)


def test_stress_optional_and_voigt_accepted(tmp_path):
    frames = emt_structures(2, seed=0)
    del frames[0].info["REF_stress"]
    full = frames[1].info["REF_stress"].reshape(3, 3)
    frames[1].info["REF_stress"] = full[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    path = tmp_path / "s.xyz"
    ase.io.write(path, frames, format="extxyz")
    samples = load_dataset(path, KEYS, [29, 47], 4.0)
    assert samples[0].stress is None
    np.testing.assert_allclose(samples[1].stress, full)


def test_elements_absent_from_training_rejected(tmp_path):
    train, valid = tmp_path / "train.xyz", tmp_path / "valid.xyz"
    ase.io.write(train, emt_structures(2, seed=0, elements=("Cu",)), format="extxyz")
    ase.io.write(valid, emt_structures(2, seed=1, elements=("Cu", "Ag")), format="extxyz")
    with pytest.raises(DataError, match=r"valid_file .*valid.xyz contains elements \['Ag'\]"):
        resolve_elements(str(train), {"valid_file": str(valid)})
    assert resolve_elements(str(train), {"valid_file": str(train)}) == [29]


def test_e0_fit_recovers_reference_energies():
    rng = np.random.default_rng(0)
    e0 = np.array([-1.5, -3.25])  # H, O
    samples = []
    for _ in range(6):
        n_h, n_o = rng.integers(1, 5, size=2)
        atoms = Atoms(f"H{n_h}O{n_o}")
        energy = n_h * e0[0] + n_o * e0[1]
        samples.append(_sample(atoms, energy))
    np.testing.assert_allclose(fit_atomic_energies(samples, [1, 8]), e0, atol=1e-12)
    np.testing.assert_allclose(given_atomic_energies({"O": 2.0, "H": 1.0}, [1, 8]), [1.0, 2.0])
    with pytest.raises(DataError, match=r"\['O'\]"):
        given_atomic_energies({"H": 1.0}, [1, 8])


def _sample(atoms, energy):
    from pansim.training.data import Sample

    graph = {"node_attrs": np.zeros((len(atoms), 2))}
    return Sample(graph, atoms.numbers, energy, np.zeros((len(atoms), 3)), None)


def test_statistics_and_envelope(emt_files):
    samples = load_dataset(emt_files["train"], KEYS, [29, 47], 4.0)
    stats = statistics(samples, np.zeros(2), 4.0, 99.0)
    assert stats["avg_num_neighbors"] > 10
    assert 1.0 < stats["c_max"] < stats["avg_num_neighbors"] * 2
    u = polynomial_envelope(np.array([0.0, 2.0, 4.0, 5.0]), 4.0)
    assert u[0] == 1.0 and 0 < u[1] < 1 and u[2] == 0 and u[3] == 0
