"""Molecule reference properties: bonds, scans, files, resumability (EMT stands in for DFT)."""

import json

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.emt import EMT

from pansim.cli import main
from pansim.data import molecule_reference as mr
from pansim.data.labelers import dict_to_atoms
from workflows.molecule_reference import compute_reference


class FakeDFT:
    """``evaluate(job)`` with EMT; counts calls, can fail chosen points or stop after ``stop``."""

    def __init__(self, stop=None, fail_below=None):
        self.calls, self.stop, self.fail_below = 0, stop, fail_below

    def __call__(self, job):
        if self.stop is not None and self.calls >= self.stop:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        atoms = dict_to_atoms(job["atoms"])
        shortest = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)].min()
        if self.fail_below is not None and shortest < self.fail_below:
            return {"ok": False, "error": "SCF not converged"}
        atoms.calc = EMT()
        return {
            "ok": True,
            "code": "emt",
            "version": "test",
            "energy": atoms.get_potential_energy(),
            "forces": atoms.get_forces().tolist(),
        }


def run(root, fake, **kw):
    return compute_reference(
        "ethanol", root, start=molecule("CH3OH"), evaluate=fake, log=None, **kw
    )


def test_scan_bonds_of_ethanol():
    atoms = molecule("CH3CH2OH")
    sym = atoms.get_chemical_symbols()
    xh, heavy = mr.scan_bonds(atoms)
    assert xh["name"] == "O-H" and sym[xh["j"]] == "H" and xh["fragment"] == [xh["j"]]
    assert heavy["name"] == "C-O" and sym[heavy["j"]] == "O"
    assert sorted(sym[k] for k in heavy["fragment"]) == ["H", "O"]
    for bond in (xh, heavy):
        squeezed = mr.compress_bond(atoms, bond, 0.7)
        assert squeezed.get_distance(bond["i"], bond["j"]) == pytest.approx(0.7 * bond["r0_A"])
        rest = [k for k in range(len(atoms)) if k not in bond["fragment"]]
        assert np.array_equal(squeezed.positions[rest], atoms.positions[rest])


def test_reference_files_and_resume(root):
    fake = FakeDFT()
    res = run(root, fake)
    out = root / "ethanol" / "reference"
    vib = json.loads((out / "vibrations.json").read_text())
    rep = json.loads((out / "repulsion.json").read_text())
    assert vib == json.loads(json.dumps(res["vibrations"]))
    assert len(vib["frequencies_cm1"]) == 3 * 6 - 6 and len(vib["rigid_body_cm1"]) == 6
    assert vib["relaxation"]["converged"] and vib["displacement_A"] == mr.DISPLACEMENT_A
    assert vib["code"] == "emt" and vib["settings"]["basis"] == "def2-SVP"
    assert vib["settings"]["conv_tol"] == 1e-10 and vib["settings"]["grid_level"] == 3
    xh, heavy = (b["name"] for b in rep["bonds"])  # EMT's own CH3OH geometry: C-H and C-O
    assert xh.endswith("-H") and "H" not in heavy
    for bond in rep["bonds"]:
        assert bond["fractions"] == list(mr.FRACTIONS) and bond["energy_eV"][-1] == 0.0
        assert bond["energy_eV"][0] > bond["energy_eV"][1] > 0 and bond["force_eV_per_A"][0] > 0
        assert np.array(bond["forces_eV_per_A"]).shape == (len(mr.FRACTIONS), 6, 3)
    records = [p for p in (out / "points").glob("*.json") if p.name != "start.json"]
    assert len(records) == fake.calls  # one record per computed point, named by its hash
    assert all(json.loads(p.read_text())["hash"].startswith(p.stem) for p in records)

    again = FakeDFT()
    rerun = run(root, again)
    assert again.calls == 0 and rerun["repulsion"]["points"]["computed_this_run"] == 0
    n_vib, n_rep = (rerun[k]["points"]["points"] for k in ("vibrations", "repulsion"))
    assert n_rep == 2 * len(mr.FRACTIONS) - 1  # both scans share the relaxed molecule
    assert n_vib + n_rep - 1 == fake.calls  # ... which the vibrations used too
    assert rerun["vibrations"]["hessian_eV_per_A2"] == res["vibrations"]["hessian_eV_per_A2"]
    assert rerun["repulsion"]["bonds"] == res["repulsion"]["bonds"]


def test_interrupted_run_computes_each_point_once(tmp_path):
    full = FakeDFT()
    expected = run(tmp_path / "a", full)
    first = FakeDFT(stop=full.calls // 2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", first)
    second = FakeDFT()
    resumed = run(tmp_path / "b", second)
    assert first.calls + second.calls == full.calls
    assert resumed["vibrations"]["frequencies_cm1"] == expected["vibrations"]["frequencies_cm1"]
    assert resumed["repulsion"]["bonds"] == expected["repulsion"]["bonds"]


def test_failed_points_leave_gaps_and_are_retried_on_request(root):
    run(root, FakeDFT(fail_below=0.88))  # EMT CH3OH: C-H 1.24 A, so only 0.70 r0 fails
    xh = json.loads((root / "ethanol" / "reference" / "repulsion.json").read_text())["bonds"][0]
    assert xh["energy_eV"][0] is None and xh["energy_eV"][1] is not None
    rerun = FakeDFT()
    run(root, rerun)
    assert rerun.calls == 0
    run(root, rerun, retry_failed=True)
    assert rerun.calls >= 1
    xh = json.loads((root / "ethanol" / "reference" / "repulsion.json").read_text())["bonds"][0]
    assert xh["energy_eV"][0] > 0


def test_cli_rejects_unknown_molecule(capsys):
    assert main(["molref", "aspirin"]) == 2
    assert "no reference recipe" in capsys.readouterr().err


@pytest.mark.dft
def test_pyscf_h2_frequency(tmp_path):
    """Real PBE/def2-SVP on H2: one stretch near 4300 cm^-1 (a few seconds)."""
    pytest.importorskip("pyscf")
    from ase import Atoms

    res = compute_reference(
        "ethanol", tmp_path, start=Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.75]]), log=None
    )
    vib = res["vibrations"]
    assert vib["code"] == "pyscf" and vib["linear"] and len(vib["frequencies_cm1"]) == 1
    assert 4100 < vib["frequencies_cm1"][0] < 4500
    assert res["repulsion"]["bonds"] == []


def test_rigid_body_forces_removed_internal_forces_kept():
    atoms = molecule("CH3CH2OH")
    rng = np.random.default_rng(0)
    noisy = rng.normal(size=(len(atoms), 3))
    clean = mr.remove_rigid_body_forces(noisy, atoms.positions)
    centred = atoms.positions - atoms.positions.mean(axis=0)
    assert np.allclose(clean.sum(axis=0), 0, atol=1e-12)
    assert np.allclose(np.cross(centred, clean).sum(axis=0), 0, atol=1e-12)
    atoms.calc = EMT()
    exact = atoms.get_forces()  # no net force or torque: unchanged
    assert np.allclose(mr.remove_rigid_body_forces(exact, atoms.positions), exact, atol=1e-10)


def test_dft_reference_and_molecule_report_share_the_bond_scan(tmp_path, monkeypatch):
    """Both sides call ``bond_scan``; on the same forces (EMT) they give the same curves."""
    from pansim.data.labelers import molecule_job
    from pansim.data.settings import MoleculeSettings
    from workflows.molecule_reference import reference_repulsion
    from workflows.validate_molecule import _bond_scan

    calls = []
    original = mr.bond_scan

    def spy(*args, **kwargs):
        calls.append("bond_scan")
        return original(*args, **kwargs)

    monkeypatch.setattr(mr, "bond_scan", spy)
    geometry = molecule("CH3OH")
    store = mr.PointStore(tmp_path / "points", FakeDFT(), molecule_job)
    dft = reference_repulsion("ethanol", geometry, store, MoleculeSettings(), tmp_path)
    assert calls == ["bond_scan"] * 2  # the DFT side: one per bond
    for bond in dft["bonds"]:
        model = _bond_scan(geometry, bond, EMT())
        assert model["energy_eV"] == bond["energy_eV"] and model["r_A"] == bond["r_A"]
        assert model["force_eV_per_A"] == bond["force_eV_per_A"]
    assert calls == ["bond_scan"] * 4  # the model side: one per bond
