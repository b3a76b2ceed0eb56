"""Out-of-domain warnings of PANCalculator with the shipped models' training statistics."""

import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from pansim import PANCalculator
from pansim.domain import DomainWarning, check_domain, domain_statistics
from pansim.graph import atoms_to_graph


@pytest.fixture(scope="module")
def si_calc():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PANCalculator("si", keep_memory=False)


@pytest.fixture(scope="module")
def ethanol_calc():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PANCalculator("ethanol", keep_memory=False)


@pytest.mark.parametrize("distance", [0.1, 0.3, 0.5])
def test_two_atoms_closer_than_any_training_pair_warn(si_calc, distance):
    atoms = Atoms("Si2", positions=[[0, 0, 0], [0, 0, distance]], cell=[12, 12, 12], pbc=True)
    atoms.calc = si_calc
    si_calc._warned.clear()
    with pytest.warns(DomainWarning, match=f"distance Si-Si {distance:.3f} A below the shortest"):
        atoms.get_potential_energy()
    assert any("distance Si-Si" in w for w in si_calc.results["warnings"])


def test_ethanol_model_on_h2_warns(ethanol_calc):
    atoms = molecule("H2")
    atoms.calc = ethanol_calc
    with pytest.warns(DomainWarning, match="element combination H never seen in training"):
        atoms.get_potential_energy()
    lines = ethanol_calc.results["warnings"]
    assert any(line.startswith("element combination H never seen") for line in lines)
    assert any(line.startswith("coordination of H") for line in lines)


def test_structure_inside_the_domain_gives_no_warning(si_calc, ethanol_calc):
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    si.calc = si_calc
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        si.get_potential_energy()
    assert si_calc.results["warnings"] == []
    mol = molecule("CH3CH2OH")
    mol.calc = ethanol_calc
    mol.get_potential_energy()
    assert ethanol_calc.results["warnings"] == []


def test_each_kind_is_warned_once_but_always_reported(si_calc):
    si_calc._warned.clear()
    atoms = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 0.4]], cell=[12, 12, 12], pbc=True)
    atoms.calc = si_calc
    with pytest.warns(DomainWarning):
        atoms.get_potential_energy()
    atoms.positions[1, 2] = 0.45
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        atoms.get_potential_energy()
    assert any("0.450 A" in w for w in si_calc.results["warnings"])


def test_batch_evaluate_reports_per_structure(si_calc):
    good = bulk("Si", "diamond", a=5.43, cubic=True)
    bad = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 0.3]], cell=[12, 12, 12], pbc=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = si_calc.batch_evaluate([good, bad], properties=["energy"])
    assert out[0]["warnings"] == [] and out[1]["warnings"]


def test_statistics_of_training_structures_contain_them():
    structures = [bulk("Si", "diamond", a=a, cubic=True) for a in (5.3, 5.43, 5.6)]
    graphs = [atoms_to_graph(a, [14], 5.0) for a in structures]
    stats = domain_statistics(graphs, [a.numbers for a in structures], 5.0)
    assert stats["min_distance"]["Si-Si"] == pytest.approx(5.3 * np.sqrt(3) / 4, abs=1e-6)
    for g, a in zip(graphs, structures, strict=True):
        assert check_domain(g, a.numbers, stats) == []


def test_models_without_statistics_are_not_checked(tiny_model_factory):
    calc = PANCalculator(tiny_model_factory(elements=("Si",)), keep_memory=False)
    atoms = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 0.3]], cell=[12, 12, 12], pbc=True)
    atoms.calc = calc
    atoms.get_potential_energy()
    assert "warnings" not in calc.results


def test_finding_kind_and_distance_read_the_lines_domain_findings_writes():
    from pansim.domain import domain_findings, finding_distance, finding_kind

    stats = {"combinations": [["F", "Li"]], "min_distance": {"Li-Li": 2.1, "*": 1.2},
             "coordination": {"F": [4, 8]}, "r_max": 5.0}  # fmt: skip
    lines = domain_findings([3, 3, 9, 1], {"Li-Li": 0.514}, np.array([6, 6, 9, 6]), stats)
    kinds = [finding_kind(line) for line in lines]
    assert kinds == ["element combination", "distance Li-Li", "coordination of F"]
    assert [finding_distance(line) for line in lines] == [np.inf, 0.514, np.inf]
