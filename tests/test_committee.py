"""Committee uncertainty in ``PANCalculator`` (pansim.committee)."""

import numpy as np
import pytest
from ase.build import bulk

from pansim.calculator import PANCalculator
from pansim.committee import COMMITTEE_KEYS, CommitteeError, committee_files


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def members(tiny_model_factory):
    return [tiny_model_factory("pan+pgs", elements=("Si",), seed=s) for s in (1, 2, 3)]


@pytest.fixture()
def atoms():
    a = bulk("Si", "diamond", 5.43, cubic=True)
    a.rattle(0.05, seed=3)
    return a


def test_mean_and_spread_match_the_members(members, atoms):
    calc = PANCalculator(model=members)
    atoms.calc = calc
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    singles = []
    for m in members:
        a = atoms.copy()
        a.calc = PANCalculator(model=m)
        singles.append((a.get_potential_energy(), a.get_forces(), a.get_stress()))
    energies = np.array([s[0] for s in singles])
    f = np.stack([s[1] for s in singles])
    s = np.stack([s[2] for s in singles])
    r = calc.results
    assert set(COMMITTEE_KEYS) <= set(r)
    assert r["energy"] == pytest.approx(energies.mean(), abs=1e-10)
    np.testing.assert_allclose(forces, f.mean(0), atol=1e-10)
    np.testing.assert_allclose(stress, s.mean(0), atol=1e-12)
    # shapes and units: eV, eV/A per atom, eV/A^3 per Voigt component
    assert r["forces_std"].shape == (len(atoms),)
    assert r["stress_std"].shape == (6,)
    assert r["energy_members"].shape == (3,)
    assert r["energy_std"] == pytest.approx(energies.std(), abs=1e-10)
    # rms over members of the force-vector deviation, computed by hand for atom 0
    dev0 = np.linalg.norm(f[:, 0] - f[:, 0].mean(0), axis=1)
    assert r["forces_std"][0] == pytest.approx(np.sqrt(np.mean(dev0**2)), abs=1e-12)
    assert r["forces_std_max"] == pytest.approx(r["forces_std"].max())
    np.testing.assert_allclose(r["stress_std"], s.std(0), atol=1e-12)
    assert r["forces_std_max"] > 1e-6  # different seeds disagree


def test_identical_members_have_zero_spread(tiny_model_factory, atoms):
    same = tiny_model_factory("pan+pgs", elements=("Si",), seed=1)
    atoms.calc = PANCalculator(model=[same, same])
    atoms.get_stress()
    r = atoms.calc.results
    assert r["energy_std"] == 0.0
    assert r["forces_std_max"] == 0.0
    assert np.all(r["stress_std"] == 0.0)


def test_batch_evaluate_gives_committee_keys(members, atoms):
    calc = PANCalculator(model=members)
    other = atoms.copy()
    other.rattle(0.1, seed=9)
    out = calc.batch_evaluate([atoms, other[:5]], ("energy", "forces"))
    assert out[1]["forces_std"].shape == (5,)
    atoms.calc = calc
    atoms.get_forces()
    np.testing.assert_allclose(out[0]["forces_std"], calc.results["forces_std"], atol=1e-12)


def test_mixing_elements_is_a_clear_error(tiny_model_factory):
    a = tiny_model_factory("pan+pgs", elements=("Si",), seed=1)
    b = tiny_model_factory("pan+pgs", elements=("Si", "O"), seed=1)
    with pytest.raises(CommitteeError, match="same elements"):
        PANCalculator(model=[a, b])
    with pytest.raises(CommitteeError, match="at least 2"):
        PANCalculator(model=[a])


def test_registered_committee_names(tmp_path):
    files = committee_files("si-committee")
    assert [f.parent.name for f in files] == ["pan+pgs-seed0", "pan+pgs-seed1", "pan+pgs-seed2"]
    # root moves the default members (results/training/<system>/<variant>); an entry that
    # names its runs (si: "committee") is resolved in the repository, whatever the root
    assert committee_files("si-committee", root=tmp_path) == files
    with pytest.raises(CommitteeError, match="missing member files"):
        committee_files("si-baseline-committee", root=tmp_path)
    with pytest.raises(KeyError, match="no pretrained model"):
        committee_files("xx-committee")


def test_calculator_takes_a_registered_committee_name_with_its_provenance():
    """``PANCalculator(model="<name>-committee")`` (the documented form) builds and records
    every member file and hash in its provenance."""
    from pansim import PANCalculator
    from pansim.committee import committee_files

    calc = PANCalculator(model="si-committee")
    files = committee_files("si-committee")
    assert calc.parameters["model_name"] == "si-committee"
    assert calc.parameters["model_file"].split(", ") == [str(f.resolve()) for f in files]
    assert len(calc.parameters["model_sha256"].split(", ")) == len(files) == 3
    listed = PANCalculator(model=[str(f) for f in files])
    assert listed.parameters["model_sha256"] == calc.parameters["model_sha256"]
    assert listed.parameters["model_name"] == (
        "committee(pan+pgs-seed0/best_model, pan+pgs-seed1/best_model, pan+pgs-seed2/best_model)"
    )


def test_an_entry_can_name_its_committee_runs(tmp_path, monkeypatch):
    """``"committee": prefix`` takes the members from that prefix's seeds 0-2."""
    import json

    from pansim import pretrained
    from pansim.committee import committee_files

    registry = tmp_path / "registry.json"
    entry = {"file": "x.safetensors", "system": "si", "variant": "baseline"}
    registry.write_text(json.dumps({
        "x": {**entry, "committee": "results/training/si/pan+pgs"}, "y": entry,
        "z": {**entry, "committee": 3}}))  # fmt: skip
    monkeypatch.setattr(pretrained, "REGISTRY", registry)
    pretrained._registry.cache_clear()
    try:
        with pytest.raises(pretrained.RegistryError, match="'committee' must be a run-folder"):
            committee_files("x-committee")
        registry.write_text(json.dumps({"x": {**entry, "committee": "results/training/si/pan+pgs"},
                                        "y": entry}))  # fmt: skip
        pretrained._registry.cache_clear()
        named = committee_files("x-committee")
        default = committee_files("y-committee")
    finally:
        pretrained._registry.cache_clear()
    assert [p.parent.name for p in named] == [f"pan+pgs-seed{k}" for k in range(3)]
    assert [p.parent.name for p in default] == [f"baseline-seed{k}" for k in range(3)]
    assert all(p.exists() for p in named + default)
