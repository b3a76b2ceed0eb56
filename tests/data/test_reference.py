"""Reference-property jobs: queueing, EOS fit, next stages, frozen phonon, validate schema.

Fake labels (no DFT): EOS energies from a known Birch-Murnaghan curve, forces from
nearest-neighbour central springs, whose Gamma optical frequency is analytic.
"""

import json

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.neighborlist import neighbor_list

from pansim.data import reference
from pansim.data.manifest import Manifest
from pansim.data.reference import EV_A3_TO_GPA, frozen_phonon_frequency

V0, E0, B0_GPA, B0P = 40.6, -10.8, 95.0, 4.2  # Si-like per 2-atom cell; V_ref = 40.92


def birch_murnaghan(v, v0=V0, e0=E0, b0=B0_GPA / EV_A3_TO_GPA, bp=B0P):
    eta = (v0 / v) ** (2 / 3)
    return e0 + 9 * v0 * b0 / 16 * ((eta - 1) ** 3 * bp + (eta - 1) ** 2 * (6 - 4 * eta))


def spring_forces(atoms, k, r0, cutoff):
    """Central nearest-neighbour springs k (eV/A^2) of rest length r0 (A)."""
    i, j, d, vec = neighbor_list("ijdD", atoms, cutoff)
    forces = np.zeros((len(atoms), 3))
    np.add.at(forces, i, (k * (d - r0) / d)[:, None] * vec)
    return forces


def _fake_done(root, system, energy, forces=None):
    from pansim.data.labelers import dict_to_atoms

    with Manifest.update(reference.jobs_path(system, root)) as m:
        for e in m.entries.values():
            if e["status"] == "pending":
                atoms = dict_to_atoms(e["job"]["atoms"])
                f = forces(atoms) if forces else np.zeros((len(atoms), 3))
                e.update(
                    status="done",
                    result={
                        "code": "gpaw",
                        "version": "22.8.0",
                        "energy": energy(atoms.get_volume()),
                        "forces": np.asarray(f).tolist(),
                        "stress": np.zeros((3, 3)).tolist(),
                    },
                )


def test_eos_queue_fit_and_next_stages(tmp_path):
    assert reference.queue("si", tmp_path) == 12 + 13  # EOS + contact scan
    assert reference.queue("si", tmp_path) == 0
    m = Manifest.load(reference.jobs_path("si", tmp_path))
    eos_jobs = [e for e in m.entries.values() if e["provenance"]["stage"] == "eos"]
    assert {tuple(e["job"]["calc"]["kpts"]) for e in eos_jobs} == {(8, 8, 8)}
    v0 = 40.9
    _fake_done(tmp_path, "si", lambda v: 0.5 * 0.6 * (v - v0) ** 2 / v0 - 10.0)
    res = reference.analyse("si", tmp_path)
    assert abs(res["eos"]["V0_A3"] - v0) < 0.05
    m = Manifest.load(reference.jobs_path("si", tmp_path))
    stages = {e["provenance"]["stage"] for e in m.entries.values()}
    assert stages == {"eos", "elastic", "frozen_phonon", "phonon", "contact"}
    relax = [e for e in m.entries.values() if e["job"]["task"] == "relax"]
    assert len(relax) == 2  # Si shear: ions relaxed
    _fake_done(tmp_path, "si", lambda v: 0.0)
    res = reference.analyse("si", tmp_path)
    assert set(res) >= {"eos", "elastic", "phonons"}


def test_frozen_phonon_frequency_of_an_analytic_harmonic_pair():
    k, u, masses = 13.0, 0.01, (28.0855, 28.0855)
    residual = np.array([[0.002, -0.001, 0.003], [0.001, 0.002, -0.002]])  # grid forces
    cubic = 50.0  # eV/A^3: quadratic force terms (cubic anharmonicity) cancel in +-u
    plus = np.array([[-k * u + cubic * u**2, 0, 0], [k * u - cubic * u**2, 0, 0]]) + residual
    minus = np.array([[k * u + cubic * u**2, 0, 0], [-k * u - cubic * u**2, 0, 0]]) + residual
    res = frozen_phonon_frequency(plus, minus, u, masses)
    mu = masses[0] / 2
    assert res["force_constant_eV_A2"] == pytest.approx(k, rel=1e-12)
    assert res["reduced_mass_amu"] == pytest.approx(mu)
    # omega = sqrt(k / mu) in SI: eV/A^2 -> J/m^2 (N/m), amu -> kg
    omega = np.sqrt(k * 1.602176634e-19 / 1e-20 / (mu * 1.66053906660e-27))
    assert res["frequency_THz"] == pytest.approx(omega / (2 * np.pi) / 1e12, rel=1e-6)
    assert res["frequency_cm1"] == pytest.approx(res["frequency_THz"] * 33.35641, rel=1e-5)
    unstable = frozen_phonon_frequency(minus, plus, u, masses)  # k < 0: imaginary, negative
    assert unstable["frequency_THz"] == pytest.approx(-res["frequency_THz"])


def _analyse_all(tmp_path, system, eos, k=2.0):
    """EOS from ``eos(V)``; later stages: springs of rest length = the V0 bond length."""
    from pansim.data.labelers import dict_to_atoms

    reference.queue(system, tmp_path)
    _fake_done(tmp_path, system, eos)
    reference.analyse(system, tmp_path)
    m = Manifest.load(reference.jobs_path(system, tmp_path))
    job = next(e for e in m.entries.values() if e["provenance"]["stage"] == "phonon")
    cell = dict_to_atoms(job["provenance"]["unitcell"])
    r0 = min(
        np.linalg.norm(cell.positions[1] - cell.positions[0]) if len(cell) > 1 else 9.0,
        float(np.linalg.norm(cell.cell[0])),
    )
    _fake_done(tmp_path, system, lambda v: 0.0, lambda a: spring_forces(a, k, r0, 1.1 * r0))
    reference.analyse(system, tmp_path)
    return cell


def test_frozen_phonon_matches_phonopy_and_validate_reads_the_properties(tmp_path, monkeypatch):
    from workflows.validate import comparison_table, load_reference

    k = 2.0
    cell = _analyse_all(tmp_path, "si", birch_murnaghan, k)
    out = reference.jobs_path("si", tmp_path).parent
    ph = json.loads((out / "phonons.json").read_text())
    mu = cell.get_masses()[0] / 2
    analytic = np.sqrt(4 * k / 3 / mu) * reference.THZ_PER_SQRT_EV_A2_AMU  # diamond springs
    optical = ph["gamma_optical_THz"]
    assert optical["frozen_phonon"] == pytest.approx(analytic, rel=1e-3)
    assert optical["phonopy"] == pytest.approx(analytic, rel=1e-3)
    assert abs(optical["difference_THz"]) < 1e-2 * analytic
    assert ph["frozen_phonon"]["kpts"] == [8, 8, 8]

    monkeypatch.setenv("PANSIM_DATA_DIR", str(tmp_path))
    ref, message = load_reference("si")
    assert str(reference.properties_path("si", tmp_path)) in message
    assert ref["reference"] == "DFT" and ref["system"] == "si"
    assert ref["eos"]["V0"] == pytest.approx(V0 / 2, rel=1e-4)  # per atom
    assert ref["eos"]["E0"] == pytest.approx(E0 / 2, rel=1e-6)
    assert ref["eos"]["B0"] == pytest.approx(B0_GPA, rel=1e-3)
    assert ref["eos"]["B0_prime"] == pytest.approx(B0P, rel=1e-3)
    comp = ref["eos"]["compressed"]
    assert comp["volume_ratio"] == [0.80, 0.85, 0.90]
    want = [birch_murnaghan(r * V0) / 2 for r in comp["volume_ratio"]]
    np.testing.assert_allclose(comp["energy"], want, atol=3e-4)  # cubic, 0.8 % extrapolated
    assert ref["phonons"]["gamma_optical_frozen_phonon_THz"] == pytest.approx(analytic, rel=1e-3)
    assert max(ref["phonons"]["gamma_THz"]) == pytest.approx(analytic, rel=1e-3)
    prov = ref["provenance"]
    assert prov["code"] == ["gpaw 22.8.0"] and prov["settings"]["ecut"] == 500.0
    assert set(prov["stages"].values()) == {"done"} and prov["kpts"]["eos"] == [8, 8, 8]
    rows = {r["quantity"]: r for r in comparison_table(ref, None, None, 2)}
    assert rows["B0"]["dft"] == pytest.approx(B0_GPA, rel=1e-3)
    assert rows["E(0.80 V0) - E0"]["dft"] == pytest.approx(want[0] - E0 / 2, abs=3e-4)


def test_properties_are_written_from_the_eos_alone_with_stage_status(tmp_path):
    reference.queue("si", tmp_path)
    path = reference.properties_path("si", tmp_path)
    reference.analyse("si", tmp_path)
    assert not path.exists()  # nothing complete yet
    _fake_done(tmp_path, "si", birch_murnaghan)
    reference.analyse("si", tmp_path)
    props = json.loads(path.read_text())
    assert set(props) == {"system", "reference", "provenance", "eos", "repulsion"}
    stages = props["provenance"]["stages"]
    assert stages["eos"] == "done" and stages["elastic"] == "0/4 done"
    assert stages["frozen_phonon"] == "0/2 done"


def test_one_atom_cell_has_no_frozen_phonon_jobs(tmp_path):
    cell = _analyse_all(tmp_path, "ag", lambda v: birch_murnaghan(v, v0=17.99, e0=-2.8))
    assert len(cell) == 1
    m = Manifest.load(reference.jobs_path("ag", tmp_path))
    assert not [e for e in m.entries.values() if e["provenance"]["stage"] == "frozen_phonon"]
    ph = json.loads((reference.jobs_path("ag", tmp_path).parent / "phonons.json").read_text())
    assert "not applicable" in ph["frozen_phonon"] and "gamma_optical_THz" not in ph
    props = json.loads(reference.properties_path("ag", tmp_path).read_text())
    assert props["phonons"]["n_atoms_primitive"] == 1


def test_label_queues_reference_only_and_datasets_only(tmp_path):
    from pansim.data import build

    build.sample("si", n=2, root=tmp_path)
    reference.queue("si", tmp_path)
    names = lambda **kw: [q.name for q in build.queues(["si"], tmp_path, **kw)]  # noqa: E731
    assert names() == ["si", "si-reference"]
    assert names(datasets=False) == ["si-reference"]
    assert names(reference=False) == ["si"]
    with pytest.raises(ValueError, match="nothing to label"):
        build.label(["si"], tmp_path, reference=False, datasets=False)


def test_phonon_residual_forces_come_from_a_symmetry_off_job_and_are_subtracted(tmp_path):
    """A fixed residual force field (GPAW's grid) on every supercell cancels exactly."""
    k = 2.0
    reference.queue("si", tmp_path)
    _fake_done(tmp_path, "si", birch_murnaghan)
    reference.analyse("si", tmp_path)
    m = Manifest.load(reference.jobs_path("si", tmp_path))
    phonon = {key: e for key, e in m.entries.items() if e["provenance"]["stage"] == "phonon"}
    assert "phonon-00" not in phonon  # the symmetric undisplaced run would have zero forces
    assert phonon[reference.RESIDUAL_KEY]["job"]["calc"]["symmetry"] == "off"
    assert all("symmetry" not in e["job"]["calc"] for key, e in phonon.items() if key[-1].isdigit())
    from pansim.data.labelers import dict_to_atoms

    cell = dict_to_atoms(phonon[reference.RESIDUAL_KEY]["provenance"]["unitcell"])
    r0 = float(np.linalg.norm(cell.positions[1] - cell.positions[0]))
    residual = np.random.default_rng(0).normal(0, 0.01, (16, 3))  # eV/A, 5x GPAW's

    def forces(atoms):
        return spring_forces(atoms, k, r0, 1.1 * r0) + (residual if len(atoms) == 16 else 0)

    _fake_done(tmp_path, "si", lambda v: 0.0, forces)
    reference.analyse("si", tmp_path)
    ph = json.loads((reference.jobs_path("si", tmp_path).parent / "phonons.json").read_text())
    mu = cell.get_masses()[0] / 2
    analytic = np.sqrt(4 * k / 3 / mu) * reference.THZ_PER_SQRT_EV_A2_AMU
    assert max(ph["frequencies_THz"]["Gamma"]) == pytest.approx(analytic, rel=1e-3)
    assert ph["residual_force_max_eV_A"] == pytest.approx(np.abs(residual).max())
    assert max(abs(f) for f in ph["frequencies_THz"]["Gamma"][:3]) < 1e-3  # acoustic sum rule


def _pair_energy_forces(atoms, k=3.0, r0=2.3, cutoff=3.0):
    """Central springs of rest length r0 between pairs closer than cutoff: energy (eV), forces."""
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    energy = 0.25 * k * float(np.sum((d - r0) ** 2))  # each pair counted twice
    return energy, spring_forces(atoms, k, r0, cutoff)


def test_contact_scan_is_the_validate_geometry_and_validate_reproduces_it(tmp_path):
    """DFT contact jobs = the cells repulsion_scan builds; a model equal to the labels scores 0."""
    from ase.calculators.calculator import Calculator, all_changes

    from pansim.data.labelers import dict_to_atoms
    from workflows.repulsion import repulsion_scan
    from workflows.validate import SYSTEMS

    class Springs(Calculator):
        implemented_properties = ("energy", "forces")

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            e, f = _pair_energy_forces(self.atoms)
            self.results = {"energy": e, "forces": f}

    reference.queue("si", tmp_path)
    with Manifest.update(reference.jobs_path("si", tmp_path)) as m:
        contact = {k: e for k, e in m.entries.items() if e["provenance"]["stage"] == "contact"}
        assert len(contact) == 13
        for e in contact.values():
            assert e["job"]["calc"]["symmetry"] == "off" and e["job"]["stress"] is False
            atoms = dict_to_atoms(e["job"]["atoms"])
            energy, forces = _pair_energy_forces(atoms)
            result = {"code": "gpaw", "version": "22.8.0", "energy": energy}
            e.update(status="done", result={**result, "forces": forces.tolist()})
    reference.analyse("si", tmp_path)
    props = json.loads(reference.properties_path("si", tmp_path).read_text())
    rep = props["repulsion"]
    conv = SYSTEMS["si"].conventional()
    model = repulsion_scan(conv, Springs(), reference=rep)
    np.testing.assert_allclose(rep["r"], model.r_A, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rep["energy"], model.energy_eV, rtol=0, atol=1e-10)
    np.testing.assert_allclose(rep["force"], model.force_eV_per_A, rtol=0, atol=1e-10)
    assert model.rmse_eV < 1e-10 and model.softening_ratio == pytest.approx(1.0, abs=1e-10)
    assert rep["energy"][-1] == 0.0 and rep["energy"][0] > 1.0  # strongly repulsive at 0.6 r_nn
    assert rep["force"][0] > 0  # pushes the moved atom back
    assert props["provenance"]["stages"]["contact"] == "done"
    # an older manifest without the stage gets it queued by analyse
    with Manifest.update(reference.jobs_path("si", tmp_path)) as m:
        for key in [k for k, e in m.entries.items() if e["provenance"]["stage"] == "contact"]:
            del m.entries[key]
    reference.analyse("si", tmp_path)
    m = Manifest.load(reference.jobs_path("si", tmp_path))
    assert sum(e["provenance"]["stage"] == "contact" for e in m.entries.values()) == 13


class PairSprings(Calculator):
    """:func:`_pair_energy_forces` as an ASE calculator: the stand-in for DFT and for a model."""

    implemented_properties = ("energy", "forces")

    def __init__(self, k, r0, cutoff):
        super().__init__()
        self.k, self.r0, self.cutoff = k, r0, cutoff

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        e, f = _pair_energy_forces(self.atoms, self.k, self.r0, self.cutoff)
        self.results = {"energy": e, "forces": f}


def _spy(module, name, calls):
    original = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    return spy


def test_dft_side_and_model_side_run_one_analysis(tmp_path, monkeypatch):
    """Labels from a calculator: ``analyse`` gives what the model workflows give on it.

    The phonons (``pansim.phonons.harmonic_phonons``) and the contact scan
    (``pansim.structures.contact_scan``) are called by both sides.
    """
    import pansim.phonons
    import pansim.structures
    from pansim.data.labelers import dict_to_atoms
    from workflows.phonons import phonons
    from workflows.repulsion import repulsion_scan
    from workflows.validate import SYSTEMS

    calls = []
    for module, name in ((pansim.phonons, "harmonic_phonons"), (pansim.structures, "contact_scan")):
        monkeypatch.setattr(module, name, _spy(module, name, calls))

    reference.queue("si", tmp_path)
    with Manifest.update(reference.jobs_path("si", tmp_path)) as m:
        for e in m.entries.values():
            if e["provenance"]["stage"] == "eos":
                v = dict_to_atoms(e["job"]["atoms"]).get_volume()
                e.update(status="done", result={"energy": birch_murnaghan(v), "forces": []})
    reference.analyse("si", tmp_path)  # queues the phonon jobs at V0
    m = Manifest.load(reference.jobs_path("si", tmp_path))
    unit = dict_to_atoms(m.entries[reference.RESIDUAL_KEY]["provenance"]["unitcell"])
    r0 = float(np.linalg.norm(unit.positions[1] - unit.positions[0]))
    calc = PairSprings(k=2.0, r0=r0, cutoff=1.1 * r0)
    with Manifest.update(reference.jobs_path("si", tmp_path)) as m:
        for e in m.entries.values():
            if e["status"] == "pending":
                atoms = dict_to_atoms(e["job"]["atoms"])
                atoms.calc = calc
                result = {"energy": atoms.get_potential_energy()}
                result.update(forces=atoms.get_forces().tolist(), stress=np.zeros((3, 3)).tolist())
                e.update(status="done", result=result)
    calls.clear()
    reference.analyse("si", tmp_path)
    assert calls == ["harmonic_phonons", "contact_scan"]  # the DFT side

    out = reference.jobs_path("si", tmp_path).parent
    dft = json.loads((out / "phonons.json").read_text())
    model = phonons(unit, calc, supercell=(2, 2, 2), relax_first=False, relax_cell=False)
    assert set(dft["high_symmetry_THz"]) == set(model.high_symmetry_THz) >= {"Gamma", "X", "L"}
    for q, freqs in dft["high_symmetry_THz"].items():
        np.testing.assert_allclose(freqs, model.high_symmetry_THz[q], rtol=0, atol=1e-12)
    for q, freqs in dft["frequencies_THz"].items():
        assert freqs == dft["high_symmetry_THz"][q]
    assert dft["imaginary_modes"] == model.imaginary_modes == []

    contact = json.loads((out / "contact.json").read_text())
    scan = repulsion_scan(SYSTEMS["si"].conventional(), calc)
    np.testing.assert_allclose(contact["r_A"], scan.r_A, rtol=0, atol=1e-12)
    np.testing.assert_allclose(contact["energy_eV"], scan.energy_eV, rtol=0, atol=1e-12)
    np.testing.assert_allclose(contact["force_eV_per_A"], scan.force_eV_per_A, rtol=0, atol=1e-12)
    assert contact["energy_eV"][0] > 0.5 and contact["force_eV_per_A"][0] > 0  # a real curve
    assert calls == ["harmonic_phonons", "contact_scan"] * 2  # the model side


def test_stored_forces_must_belong_to_the_phonon_set_up(tmp_path):
    from pansim.data.labelers import dict_to_atoms
    from pansim.phonons import displaced, supercells

    reference.queue("si", tmp_path)
    _fake_done(tmp_path, "si", birch_murnaghan)
    reference.analyse("si", tmp_path)
    _fake_done(tmp_path, "si", lambda v: 0.0)
    m = Manifest.load(reference.jobs_path("si", tmp_path))
    jobs = {k: e for k, e in m.entries.items() if e["provenance"]["stage"] == "phonon"}
    unit = dict_to_atoms(jobs[reference.RESIDUAL_KEY]["provenance"]["unitcell"])
    cells = supercells(displaced(unit))
    assert reference.stored_forces(jobs)(cells).shape == (len(cells), 16, 3)
    moved = [c.copy() for c in cells]
    moved[0].positions[3] += 0.01  # not the structure the job computed
    with pytest.raises(ValueError, match="not the supercell"):
        reference.stored_forces(jobs)(moved)
