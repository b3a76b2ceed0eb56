"""``pansim single``: energy, forces and stress of every structure in a file, written as extxyz.

Python::

    from workflows.single import single_points
    frames = single_points(read("structures.extxyz", ":"), calc)   # copies with results

CLI: ``pansim single --structure structures.extxyz`` writes ``OUT/single.extxyz``
(per frame: ``energy`` (eV), ``forces`` (eV/A), ``stress`` (eV/A^3, fully periodic
frames only) and the model provenance in the frame info) and ``OUT/result.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from pansim.cli_common import progress, read_structure
from pansim.provenance import calculator_provenance
from workflows._common import (
    WorkflowResult,
    add_common_arguments,
    cli_calculator,
    provenance,
    write_outputs,
)

SINGLE_UNITS = {
    "energy_eV": "eV",
    "energy_per_atom_eV": "eV/atom",
    "max_force_eV_per_A": "eV/A",
    "stress_GPa": "GPa (Voigt xx yy zz yz xz xy, ASE sign: positive = tensile)",
}


@dataclasses.dataclass
class SingleResult(WorkflowResult):
    """Per-frame energies, largest forces and stresses (GPa) of :func:`single_points`."""

    formula: list[str] = dataclasses.field(default_factory=list)
    energy_eV: list[float] = dataclasses.field(default_factory=list)
    energy_per_atom_eV: list[float] = dataclasses.field(default_factory=list)
    max_force_eV_per_A: list[float] = dataclasses.field(default_factory=list)
    stress_GPa: list[list[float] | None] = dataclasses.field(default_factory=list)
    files: dict[str, str] = dataclasses.field(default_factory=dict)


def single_points(structures: list[Atoms], calc: Any) -> list[Atoms]:
    """Copies of ``structures`` carrying energy, forces and (when periodic) stress.

    Each copy holds a :class:`~ase.calculators.singlepoint.SinglePointCalculator`
    with the results and the model provenance in ``info``.
    """
    model = {k: v for k, v in calculator_provenance(calc).items() if v}
    out = []
    for atoms in progress(structures, total=len(structures), desc="single points"):
        work = atoms.copy()
        work.calc = calc
        results = {"energy": work.get_potential_energy(), "forces": work.get_forces()}
        if np.all(work.pbc):
            results["stress"] = work.get_stress()
        frame = atoms.copy()
        frame.info.update(model)
        frame.calc = SinglePointCalculator(frame, **results)
        out.append(frame)
    return out


def summary(frames: list[Atoms]) -> dict[str, list]:
    """Per-frame table: formula, energy, energy per atom, largest force, stress (GPa)."""
    from ase.units import GPa

    rows: dict[str, list] = {k: [] for k in ("formula", *SINGLE_UNITS)}
    for frame in frames:
        e = frame.get_potential_energy()
        f = frame.get_forces()
        s = frame.calc.results.get("stress")
        rows["formula"].append(frame.get_chemical_formula())
        rows["energy_eV"].append(e)
        rows["energy_per_atom_eV"].append(e / len(frame))
        rows["max_force_eV_per_A"].append(float(np.linalg.norm(f, axis=1).max()))
        rows["stress_GPa"].append(None if s is None else (np.asarray(s) / GPa).tolist())
    return rows


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim single``."""
    add_common_arguments(parser)
    parser.add_argument(
        "--index", default=":", help="frames of --structure to evaluate (ase.io.read syntax)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``pansim single``."""
    from ase.io import write

    from pansim.files import atomic_path

    frames = read_structure(args.structure, index=args.index)
    frames = frames if isinstance(frames, list) else [frames]
    calc = cli_calculator(args)
    done = single_points(frames, calc)
    out = Path(args.out)
    with atomic_path(out / "single.extxyz") as tmp:
        write(tmp, done, format="extxyz")
    table = summary(done)
    inputs = {"structure": args.structure, "index": args.index, "n_frames": len(done)}
    result = SingleResult(
        units=dict(SINGLE_UNITS),
        provenance=provenance(frames[0], calc, inputs, {}),
        files={"structures": str(out / "single.extxyz")},
        **table,
    )
    write_outputs(result, out, None)
    print(f"{'frame':>5} {'formula':>12} {'E (eV)':>14} {'E/atom (eV)':>12} {'max|F| (eV/A)':>13}")
    for k, (formula, e, e_atom, fmax) in enumerate(
        zip(
            table["formula"],
            table["energy_eV"],
            table["energy_per_atom_eV"],
            table["max_force_eV_per_A"],
            strict=True,
        )
    ):
        print(f"{k:>5} {formula:>12} {e:>14.6f} {e_atom:>12.6f} {fmax:>13.4f}")
    print(f"wrote {out / 'single.extxyz'}")
    return 0
