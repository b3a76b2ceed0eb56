"""Batched evaluation (``PANCalculator.batch_evaluate``) against a serial loop of single points.

Workloads (diamond Si, a = 5.47 A, float64, random-initialised pan+pgs model):

- ``phonons-8``: phonopy finite displacements (0.01 A, plus and minus) of the
  8-atom cubic cell used as its own supercell, without symmetry reduction
  (phonopy then displaces the 2 atoms that the cell's lattice translations
  leave independent along x, y, z: 12 cells), plus the undisplaced cell;
  forces. The case of issue 6's target (8-atom-cell phonons, at least 2x).
- ``phonons-2x2x2``: what ``workflows/phonons.py`` evaluates for Si: the
  8-atom cell, 2x2x2 supercell (64 atoms), phonopy's symmetry-reduced
  displacements plus the undisplaced supercell; forces.
- ``elastic``: the 8-atom cell under the strains of ``workflows/elastic.py``
  (six Voigt components at -0.5, -0.25, +0.25, +0.5 %): 24 cells; energy,
  forces and stress.

Serial: ``calculate`` once per structure (nothing cached). Batched:
``batch_evaluate(structures, properties, batch_size)``. Interleaved rounds,
medians. The largest absolute difference between the two over energies,
forces and stresses is reported (required: at most 1e-10 in float64).

Usage (from the repository root)::

    python -m benchmarks.batched [--quick] [--repeats 10] [--batch-size 16] [--threads 2]
        [--shipped] [--workloads phonons-8 elastic] [--name batched-shipped-2threads]

``--shipped``: the backbone size of the shipped models (configs/pretrained/base/si.yaml)
instead of ``DEFAULTS``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/batched.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.calculator import all_changes  # noqa: E402

from benchmarks import _common as common  # noqa: E402

FULL = {"repeats": 10}
QUICK = {"repeats": 3}
TOLERANCE = 1e-10
STRAINS = (-0.005, -0.0025, 0.0025, 0.005)


def unit_cell():
    return bulk("Si", "diamond", a=common.SI_A, cubic=True)


def phonon_structures(supercell: int, symmetry: bool) -> list:
    """phonopy's displaced supercells (0.01 A, +-) and the undisplaced one, as ase Atoms."""
    from pansim.phonons import displaced, supercells

    phonon = displaced(
        unit_cell(),
        (supercell,) * 3,
        0.01,
        symmetry=symmetry,
        plusminus=True if not symmetry else "auto",
    )
    return supercells(phonon)


def elastic_structures() -> list:
    """The 8-atom cell under each Voigt strain of ``STRAINS`` (workflows/elastic.py's set)."""
    from workflows.elastic import strain_matrix

    base = unit_cell()
    cells = []
    for voigt in range(6):
        for e in STRAINS:
            strained = base.copy()
            deformation = np.eye(3) + strain_matrix(voigt, e)
            strained.set_cell(base.cell.array @ deformation, scale_atoms=True)
            cells.append(strained)
    return cells


def workloads() -> dict[str, tuple[list, list[str]]]:
    """name -> (structures, properties)."""
    return {
        "phonons-8": (phonon_structures(1, symmetry=False), ["energy", "forces"]),
        "phonons-2x2x2": (phonon_structures(2, symmetry=True), ["energy", "forces"]),
        "elastic": (elastic_structures(), ["energy", "forces", "stress"]),
    }


def serial(calc, structures, properties) -> list[dict[str, Any]]:
    """One ``calculate`` per structure; copies of the results."""
    out = []
    for atoms in structures:
        calc.calculate(atoms, properties, all_changes)
        out.append({k: np.array(calc.results[k], copy=True) for k in properties})
    return out


def max_difference(a: list[dict], b: list[dict], properties: list[str]) -> float:
    """Largest absolute difference over every property of every structure."""
    return max(
        float(np.max(np.abs(np.asarray(x[k], dtype=float) - np.asarray(y[k], dtype=float))))
        for x, y in zip(a, b, strict=True)
        for k in properties
    )


def measure(name: str, structures, properties, calc, args) -> dict[str, Any]:
    """Serial and batched timings and their largest difference for one workload."""
    results: dict[str, list] = {}
    calls = {
        "serial": lambda: results.__setitem__("serial", serial(calc, structures, properties)),
        "batched": lambda: results.__setitem__(
            "batched", calc.batch_evaluate(structures, properties, batch_size=args.batch_size)
        ),
    }
    t = {k: common.medians(s) for k, s in common.interleaved(calls, args.repeats).items()}
    diff = max_difference(results["serial"], results["batched"], properties)
    return {
        "workload": name,
        "structures": len(structures),
        "atoms_each": len(structures[0]),
        "properties": "+".join(properties),
        "serial_wall_s": t["serial"]["wall"],
        "batched_wall_s": t["batched"]["wall"],
        "speedup_wall": t["serial"]["wall"] / t["batched"]["wall"],
        "speedup_cpu": t["serial"]["cpu"] / t["batched"]["cpu"],
        "max_abs_diff": diff,
        "within_tolerance": diff <= TOLERANCE,
    }


COLUMNS = [
    ("workload", "workload", ""),
    ("structures", "structures", "d"),
    ("atoms_each", "atoms each", "d"),
    ("properties", "properties", ""),
    ("serial_wall_s", "serial (s)", ".3f"),
    ("batched_wall_s", "batched (s)", ".3f"),
    ("speedup_wall", "speed-up (wall)", ".2f"),
    ("speedup_cpu", "speed-up (CPU)", ".2f"),
    ("max_abs_diff", "max abs diff", ".1e"),
]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write JSON and Markdown; return the result."""
    p = common.parser(__doc__)
    p.add_argument("--dtype", choices=sorted(common.DTYPES), default="float64")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workloads", nargs="+", default=None, help="subset of the workloads")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = (QUICK if args.quick else FULL)["repeats"]
    args.backbone = common.resolve_backbone(args)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    from pansim.calculator import PANCalculator

    model = common.build("pan+pgs", args.dtype, args.hyperparameters)
    calc = PANCalculator(model, default_dtype=args.dtype)
    chosen = {k: v for k, v in workloads().items() if not args.workloads or k in args.workloads}
    rows = [measure(name, s, props, calc, args) for name, (s, props) in chosen.items()]
    return common.finish(
        "batched", args, started, markdown,
        dtype=args.dtype,
        threads=args.threads,
        batch_size=args.batch_size,
        rows=rows,
        tolerance=TOLERANCE,
        target="phonons-8: speed-up >= 2 (2 cores), max |diff| <= 1e-10 (float64)",
        all_within_tolerance=all(r["within_tolerance"] for r in rows),
    )  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    """The table and its notes, from a result."""
    note = (
        f"pan+pgs, backbone {result.get('backbone', common.DEFAULT_BACKBONE)}, "
        f"{result['dtype']}, {common.threads(result)} torch thread(s), batch size "
        f"{result['batch_size']}, medians of {result['repeats']} interleaved rounds. max abs "
        f"diff: largest absolute difference of energies (eV), forces (eV/A), stresses "
        f"(eV/A^3) between serial and batched (required <= {TOLERANCE:.0e}). Speed-up = "
        f"serial / batched time; below 1, batching costs more than it saves."
    )
    return common.with_note(result["rows"], COLUMNS, note)


if __name__ == "__main__":
    main()
