import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import Trajectory

from workflows.md import ENSEMBLES, MDResult, first_peak, linear_drift, rdf, run_md

A_CU = 3.61


def cu(n=2):
    return bulk("Cu", "fcc", a=A_CU, cubic=True) * (n, n, n)


def test_nve_drift_near_zero_for_small_timestep():
    res = run_md(cu(), EMT(), ensemble="nve", steps=200, timestep_fs=0.5, temperature_K=300)
    assert res.status == "completed" and res.steps_done == 200
    assert abs(res.drift_meV_per_atom_per_ps) < 0.5
    etot = np.array(res.etot_eV_per_atom)
    assert np.ptp(etot) < 1e-3  # eV/atom
    assert 50 < res.temperature_mean_K < 300  # equipartition pulls 300 K toward 150 K


def test_linear_drift_known_slope():
    t = np.linspace(0, 2, 50)
    slope, err = linear_drift(t, 3.0 * t + 1.0 + 1e-3 * np.sin(40 * t))
    assert slope == pytest.approx(3.0, abs=1e-2) and 0 < err < 1e-2


def test_rdf_of_one_atom_cell_respects_periodic_images():
    atoms = bulk("Cu", "fcc", a=A_CU)  # cell much smaller than 2 * rmax
    r, g = rdf([atoms], rmax=5.0, nbins=250)
    peak, height = first_peak(r, g)
    assert peak == pytest.approx(A_CU / np.sqrt(2), abs=0.02)
    assert height > 1.0
    rho = len(atoms) / atoms.get_volume()
    edges = np.linspace(0.0, 5.0, 251)
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    first_shell = r < 0.5 * (A_CU / np.sqrt(2) + A_CU)
    coordination = np.sum(g[first_shell] * rho * shell[first_shell])
    assert coordination == pytest.approx(12.0, rel=1e-6)


def test_rdf_of_molecule_without_cell_is_neighbour_density():
    from ase import Atoms

    dimer = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])  # no cell, not periodic
    r, g = rdf([dimer], rmax=2.0, nbins=200)
    assert first_peak(r, g)[0] == pytest.approx(0.74, abs=0.01)
    edges = np.linspace(0.0, 2.0, 201)
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    assert np.sum(g * shell) == pytest.approx(1.0)  # one neighbour per atom


def test_run_md_of_a_molecule_in_vacuum(tmp_path):
    from ase.build import molecule

    res = run_md(molecule("CH4"), EMT(), ensemble="nve", steps=20, timestep_fs=0.25,
                 temperature_K=300, outdir=tmp_path)  # fmt: skip
    assert res.status == "completed" and res.rdf_first_peak_A == pytest.approx(1.1, abs=0.15)


def test_rdf_peak_of_cold_crystal_md(tmp_path):
    res = run_md(
        cu(), EMT(), ensemble="nve", steps=20, temperature_K=20, traj_every=5, outdir=tmp_path
    )
    assert res.rdf_first_peak_A == pytest.approx(A_CU / np.sqrt(2), abs=0.05)
    assert len(Trajectory(str(tmp_path / "md.traj"))) == 5


@pytest.mark.parametrize("ensemble", ["nve", "langevin", "nhc", "bussi", "npt", "npt_aniso"])
def test_restart_reproduces_uninterrupted_run(tmp_path, ensemble):
    opts = dict(
        ensemble=ensemble,
        timestep_fs=2.0,
        temperature_K=300,
        checkpoint_every=10,
        traj_every=5,
        seed=7,
    )
    full = run_md(cu(), EMT(), steps=30, outdir=tmp_path / "full", **opts)
    run_md(cu(), EMT(), steps=10, outdir=tmp_path / "cut", **opts)  # "interrupted" at 10
    resumed = run_md(cu(), EMT(), steps=30, outdir=tmp_path / "cut", **opts)
    assert resumed.restarted_from_step == 10
    assert np.allclose(full.etot_eV_per_atom, resumed.etot_eV_per_atom, atol=1e-10, rtol=0)
    assert np.allclose(full.temperature_K, resumed.temperature_K, atol=1e-8, rtol=0)
    a, b = Trajectory(str(tmp_path / "full/md.traj")), Trajectory(str(tmp_path / "cut/md.traj"))
    assert len(a) == len(b) == 7
    assert np.allclose(a[-1].positions, b[-1].positions, atol=1e-10)
    assert len((tmp_path / "cut/md.log").read_text().splitlines()) == 1 + 31


def test_blow_up_is_detected_and_trajectory_kept(tmp_path):
    res = run_md(
        cu(), EMT(), ensemble="nve", steps=200, timestep_fs=60, temperature_K=300, outdir=tmp_path
    )
    assert res.status == "blown_up" and res.steps_done < 200
    assert "temperature" in res.stop_reason or "non-finite" in res.stop_reason
    assert len(Trajectory(str(tmp_path / "md.traj"))) >= 2  # initial frame + the blown-up one
    assert MDResult.from_dict(res.to_dict()).status == "blown_up"


def test_caller_atoms_unchanged_and_json_round_trip(tmp_path):
    atoms = cu(1)
    before = atoms.copy()
    res = run_md(atoms, EMT(), ensemble="bussi", steps=10, temperature_K=300)
    assert atoms == before and atoms.calc is None and not atoms.get_momenta().any()
    res.to_json(tmp_path / "md.json")
    back = MDResult.from_json(tmp_path / "md.json")
    assert back.temperature_K == res.temperature_K and back.units["drift_meV_per_atom_per_ps"]
    assert back.drift_meV_per_atom_per_ps is None  # only defined for NVE


def test_unknown_ensemble():
    assert set(ENSEMBLES) >= {"nve", "langevin", "nhc", "bussi", "npt"}
    with pytest.raises(ValueError, match="unknown ensemble"):
        run_md(cu(1), EMT(), ensemble="nvx", steps=1)


class NaNAfter(EMT):
    """EMT that returns NaN energies and forces from its ``n``-th evaluation on."""

    def __init__(self, n):
        super().__init__()
        self.n, self.calls = n, 0

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.calls += 1
        if self.calls >= self.n:
            self.results["energy"] = np.nan
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


class RaisesAfter(NaNAfter):
    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        if self.calls >= self.n:
            raise RuntimeError("neighbour list overflow")


def test_nan_and_calculator_errors_stop_the_run(tmp_path):
    res = run_md(cu(1), NaNAfter(6), steps=50, traj_every=2, outdir=tmp_path / "nan")
    assert res.status == "blown_up" and "non-finite" in res.stop_reason
    assert res.steps_done == 5 and len(Trajectory(str(tmp_path / "nan/md.traj"))) == 4
    assert np.all(np.isfinite(res.etot_eV_per_atom))
    res = run_md(cu(1), RaisesAfter(6), steps=50, outdir=tmp_path / "err")
    assert res.status == "blown_up" and "RuntimeError" in res.stop_reason and res.steps_done == 4


class _DomainEMT(EMT):
    """EMT that reports, as PANCalculator does, pair distances below 2.45 A as findings."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        super().calculate(atoms, properties, system_changes or [])
        d = self.atoms.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        closest = d.min()
        self.results["warnings"] = (
            [f"distance Cu-Cu {closest:.3f} A below the shortest in training (2.450 A)"]
            if closest < 2.45
            else []
        )


def test_out_of_domain_steps_are_reported_and_survive_a_restart(tmp_path):
    opts = dict(ensemble="langevin", temperature_K=900, checkpoint_every=10, seed=3)
    full = run_md(cu(), _DomainEMT(), steps=40, outdir=tmp_path / "full", **opts)
    (line,) = [w for w in full.warnings if "training data" in w]
    assert line.startswith("outside the model's training data (distance Cu-Cu) on ")
    steps = int(line.split(" on ")[1].split(" of ")[0])
    assert 0 < steps <= 40 and "first at step" in line and "extrapolations" in line
    run_md(cu(), _DomainEMT(), steps=20, outdir=tmp_path / "cut", **opts)
    resumed = run_md(cu(), _DomainEMT(), steps=40, outdir=tmp_path / "cut", **opts)
    assert resumed.restarted_from_step == 20
    assert [w for w in resumed.warnings if "training data" in w] == [line]
    inside = run_md(cu(), EMT(), steps=10, **{**opts, "checkpoint_every": 100})
    assert not [w for w in inside.warnings if "training data" in w]
