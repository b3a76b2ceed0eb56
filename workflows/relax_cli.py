"""``pansim relax``: relax positions and (by default) the cell with ASE's FrechetCellFilter.

CLI: ``pansim relax --structure POSCAR`` writes ``OUT/relaxed.extxyz`` (the relaxed
structure with its energy, forces and stress, and the model provenance in its
info), ``OUT/relax.extxyz`` (every optimiser step) and ``OUT/result.json``.
Python: :func:`workflows._common.relax`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from pansim.cli_common import nonnegative_int, positive_float, progress_bar
from pansim.provenance import calculator_provenance
from workflows._common import (
    WorkflowResult,
    add_common_arguments,
    cli_calculator,
    has_stress,
    provenance,
    read_structure,
    timed,
    with_calc,
    write_outputs,
)

RELAX_UNITS = {
    "energy_eV": "eV",
    "max_force_eV_per_A": "eV/A",
    "stress_GPa": "GPa (Voigt, ASE sign)",
    "cell_A": "A",
    "volume_A3": "A^3",
}


@dataclasses.dataclass
class RelaxResult(WorkflowResult):
    """Outcome of :func:`relax_structure`."""

    converged: bool = False
    steps: int = 0
    fmax_eV_per_A: float = 0.05
    relax_cell: bool = True
    energy_eV: float = float("nan")
    max_force_eV_per_A: float = float("nan")
    stress_GPa: list[float] | None = None
    cell_A: list[list[float]] = dataclasses.field(default_factory=list)
    volume_A3: float | None = None
    initial_volume_A3: float | None = None
    files: dict[str, str] = dataclasses.field(default_factory=dict)


def relax_structure(
    atoms: Atoms,
    calc: Any,
    *,
    fmax: float = 0.01,
    steps: int = 500,
    relax_cell: bool = True,
    trajectory: str | Path | None = None,
) -> tuple[Atoms, RelaxResult]:
    """Relax a copy of ``atoms`` (positions; the cell too when ``relax_cell``) with BFGS.

    ``fmax`` (eV/A) applies to the forces and, through FrechetCellFilter, to the
    stress times the volume. Returns the relaxed copy (results attached) and a
    :class:`RelaxResult`.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    relax_cell = relax_cell and bool(np.all(atoms.pbc)) and has_stress(calc)
    work = with_calc(atoms, calc)
    target = FrechetCellFilter(work) if relax_cell else work
    timings: dict[str, float] = {}
    with timed(timings, "relax"):
        opt = BFGS(target, logfile=None, trajectory=None)
        bar = progress_bar(total=steps, desc="relax")
        opt.attach(lambda: bar.update(1))
        if trajectory is not None:
            frames: list[Atoms] = []
            opt.attach(lambda: frames.append(_snapshot(work)))
        try:
            converged = bool(opt.run(fmax=fmax, steps=steps))
        finally:
            bar.close()
    if trajectory is not None:
        _write_extxyz(Path(trajectory), frames, calc)
    forces = work.get_forces()
    stress = work.get_stress() if np.all(work.pbc) and has_stress(calc) else None
    from ase.units import GPa

    inputs = {"fmax_eV_per_A": fmax, "steps": steps, "relax_cell": relax_cell}
    result = RelaxResult(
        units=dict(RELAX_UNITS),
        provenance=provenance(atoms, calc, inputs, timings),
        warnings=[] if converged else [f"not converged in {steps} steps (fmax {fmax} eV/A)"],
        converged=converged,
        steps=int(opt.nsteps),
        fmax_eV_per_A=fmax,
        relax_cell=relax_cell,
        energy_eV=float(work.get_potential_energy()),
        max_force_eV_per_A=float(np.linalg.norm(forces, axis=1).max()),
        stress_GPa=None if stress is None else (stress / GPa).tolist(),
        cell_A=work.cell.array.tolist(),
        volume_A3=float(work.get_volume()) if work.cell.rank == 3 else None,
        initial_volume_A3=float(atoms.get_volume()) if atoms.cell.rank == 3 else None,
    )
    return _snapshot(work), result


def _snapshot(atoms: Atoms) -> Atoms:
    """A copy of ``atoms`` with its current results in a SinglePointCalculator."""
    from ase.calculators.singlepoint import SinglePointCalculator

    frame = atoms.copy()
    frame.calc = SinglePointCalculator(frame, **atoms.calc.results)
    return frame


def _write_extxyz(path: Path, frames: list[Atoms], calc: Any) -> None:
    """Write ``frames`` atomically as extxyz, the provenance of ``calc`` in each frame's info."""
    from ase.io import write

    from pansim.files import atomic_path

    model = {k: v for k, v in calculator_provenance(calc).items() if v}
    for frame in frames:
        frame.info.update(model)
    with atomic_path(path) as tmp:
        write(tmp, frames, format="extxyz")


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim relax``."""
    add_common_arguments(parser)
    parser.add_argument(
        "--fmax", type=positive_float, default=0.01, help="force convergence criterion (eV/A)"
    )
    parser.add_argument("--steps", type=nonnegative_int, default=500, help="optimiser step limit")
    parser.add_argument(
        "--fix-cell", action="store_true", help="relax the positions only (keep the cell)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``pansim relax``; exit code 1 when it did not converge."""
    out = Path(args.out)
    calc = cli_calculator(args)
    relaxed, result = relax_structure(
        read_structure(args.structure),
        calc,
        fmax=args.fmax,
        steps=args.steps,
        relax_cell=not args.fix_cell,
        trajectory=out / "relax.extxyz",
    )
    _write_extxyz(out / "relaxed.extxyz", [relaxed], calc)
    result.files = {"relaxed": str(out / "relaxed.extxyz"), "steps": str(out / "relax.extxyz")}
    write_outputs(result, out, None)
    state = "converged" if result.converged else "NOT converged"
    print(f"{state} in {result.steps} steps; E = {result.energy_eV:.6f} eV")
    if result.volume_A3 is not None:
        print(f"volume {result.initial_volume_A3:.4f} -> {result.volume_A3:.4f} A^3")
    if result.stress_GPa is not None:
        print("residual stress (GPa): " + " ".join(f"{s:.4f}" for s in result.stress_GPa))
    return 0 if result.converged else 1
