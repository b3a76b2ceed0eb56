import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from workflows._common import load_calculator
from workflows.repulsion import RepulsionResult, compare_curves, load_curve, repulsion_scan

SIGMA, EPS = 3.4, 0.0104  # the "lj" built-in


def lj_pair(r):
    return 4 * EPS * ((SIGMA / r) ** 12 - (SIGMA / r) ** 6)


def argon():
    return bulk("Ar", "fcc", a=5.3)


def test_lj_dimer_matches_analytic_pair_curve():
    probe = repulsion_scan(argon(), load_calculator("lj"), mode="dimer", n_points=9)
    r = np.array(probe.r_A)
    reference = {"r": r.tolist(), "energy": (lj_pair(r) - lj_pair(r[-1])).tolist()}
    res = repulsion_scan(
        argon(), load_calculator("lj"), mode="dimer", n_points=9, reference=reference
    )
    assert res.pair == ["Ar", "Ar"] and res.r_nn_A == pytest.approx(5.3 / np.sqrt(2))
    assert res.rmse_eV < 1e-9
    assert res.softening_ratio == pytest.approx(1.0, abs=1e-9)
    analytic_force = 24 * EPS / r * (2 * (SIGMA / r) ** 12 - (SIGMA / r) ** 6)
    assert np.allclose(res.force_eV_per_A, analytic_force, rtol=1e-6, atol=1e-9)


def test_contact_scan_is_repulsive_and_softening_ratio():
    atoms = bulk("Cu", "fcc", a=3.61) * (2, 2, 2)
    before = atoms.copy()
    res = repulsion_scan(atoms, EMT(), rmin_fraction=0.7, n_points=7)
    assert atoms == before and atoms.calc is None
    e, f = np.array(res.energy_eV), np.array(res.force_eV_per_A)
    assert e[-1] == 0.0 and np.all(np.diff(e) < 0)  # rises as the contact shortens
    assert np.all(f[:-1] > 0) and abs(f[-1]) < 1e-6
    stiffer = np.array([res.r_A, 2.0 * e]).T  # any (r, E) array is accepted
    res2 = repulsion_scan(atoms, EMT(), rmin_fraction=0.7, n_points=7, reference=stiffer)
    assert res2.softening_ratio == pytest.approx(0.5)
    assert res2.r_shortest_A == pytest.approx(res.r_A[0])
    back = RepulsionResult.from_dict(res2.to_dict())
    assert back.softening_ratio == res2.softening_ratio


def test_reference_loading_and_partial_overlap(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text('{"repulsion": {"r": [3.0, 1.0, 2.0], "energy": [0.0, 2.0, 0.5]}}')
    curve = load_curve(path)
    assert curve["r"] == [1.0, 2.0, 3.0]
    rmse, ratio, r_short = compare_curves(
        np.array([1.5, 2.0, 3.0]),
        np.array([1.0, 0.5, 0.0]),
        np.array(curve["r"]),
        np.array(curve["energy"]),
    )
    assert r_short == 2.0 and ratio == pytest.approx(1.0) and rmse == pytest.approx(0.0)
    with pytest.raises(ValueError):
        load_curve({"x": [1]})
