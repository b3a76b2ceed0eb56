"""torch-sim batched NVT against the ASE loop: many small cells, the same model, side by side.

``--cells`` rattled 8-atom diamond Si cells, ``--steps`` Langevin NVT steps at
300 K with the shipped ``si`` model (``--model``; with ``--hyperparameters``
a random-initialised one): once as one batched ``torch_sim.integrate``
(``pansim.torchsim.PansimModel``: every step one model call for all cells),
once as ASE's ``Langevin`` on each cell in turn with ``PANCalculator``.
Rounds are interleaved (torch-sim, ASE, torch-sim, ...) and the medians of
wall and CPU time are reported, with the ratio; the trajectories differ
(independent thermostats), only the cost is compared.

Usage (from the repository root)::

    python -m benchmarks.torchsim [--quick] [--cells 16] [--steps 10] [--repeats 3]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/torchsim.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase import units  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.md.langevin import Langevin  # noqa: E402

from benchmarks import _common as common  # noqa: E402

FULL = {"cells": 16, "steps": 10, "repeats": 3}
QUICK = {"cells": 4, "steps": 3, "repeats": 1}


def cells(n: int) -> list:
    out = []
    for k in range(n):
        atoms = bulk("Si", "diamond", common.SI_A, cubic=True)
        atoms.rattle(0.05, seed=k)
        out.append(atoms)
    return out


def model_of(args) -> Any:
    if not args.hyperparameters:
        return args.model
    return common.build("pan+pgs", args.dtype, args.hyperparameters)


def run_torchsim(adapter, structures, steps: int) -> None:
    import torch_sim as ts

    ts.integrate(system=structures, model=adapter, integrator=ts.nvt_langevin,
                 n_steps=steps, temperature=300.0, timestep=0.001)  # fmt: skip


def run_ase(calc, structures, steps: int) -> None:
    for atoms in structures:
        work = atoms.copy()
        work.calc = calc
        Langevin(
            work, 1.0 * units.fs, temperature_K=300, friction=0.01, rng=np.random.default_rng(0)
        ).run(steps)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from pansim.calculator import PANCalculator
    from pansim.torchsim import PansimModel

    p = common.parser(__doc__)
    p.add_argument("--cells", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--model", default="si")
    p.add_argument("--dtype", choices=sorted(common.DTYPES), default="float64")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key in ("cells", "steps", "repeats"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    args.backbone = common.resolve_backbone(args)
    torch.set_num_threads(args.threads)
    model = model_of(args)
    adapter = PansimModel(model, dtype=common.DTYPES[args.dtype], compute_stress=False)
    calc = PANCalculator(model, default_dtype=args.dtype)
    structures = cells(args.cells)
    calls = {
        "torch-sim": lambda: run_torchsim(adapter, structures, args.steps),
        "ase": lambda: run_ase(calc, structures, args.steps),
    }
    started = time.perf_counter()
    samples = common.interleaved(calls, args.repeats, warmup=1)
    t = {name: common.medians(s) for name, s in samples.items()}
    n_steps = args.cells * args.steps
    row = {
        "cells": args.cells,
        "atoms_per_cell": 8,
        "steps": args.steps,
        "torchsim_wall_s": t["torch-sim"]["wall"],
        "ase_wall_s": t["ase"]["wall"],
        "torchsim_cpu_s": t["torch-sim"]["cpu"],
        "ase_cpu_s": t["ase"]["cpu"],
        "torchsim_ms_per_cell_step": 1e3 * t["torch-sim"]["wall"] / n_steps,
        "ase_ms_per_cell_step": 1e3 * t["ase"]["wall"] / n_steps,
        "speedup_wall": t["ase"]["wall"] / t["torch-sim"]["wall"],
        "speedup_cpu": t["ase"]["cpu"] / t["torch-sim"]["cpu"],
    }
    return common.finish(
        "torchsim", args, started, markdown, rows=[row], model=str(args.model),
        dtype=args.dtype, workload="Langevin NVT, 300 K, 8-atom Si cells",
    )  # fmt: skip


COLUMNS = [
    ("cells", "cells", "d"),
    ("steps", "steps", "d"),
    ("torchsim_ms_per_cell_step", "torch-sim ms/cell-step", ".1f"),
    ("ase_ms_per_cell_step", "ASE loop ms/cell-step", ".1f"),
    ("speedup_wall", "speed-up (wall)", ".2f"),
    ("speedup_cpu", "speed-up (CPU)", ".2f"),
]


def markdown(result: dict[str, Any]) -> str:
    return common.with_note(
        result["rows"], COLUMNS,
        f"{result['workload']}, model {result['model']}, {result['dtype']}, "
        f"{common.threads(result)} torch thread(s); torch-sim: one batched model call per "
        f"step for all cells (pansim.torchsim.PansimModel); ASE: Langevin on each cell in "
        f"turn (PANCalculator). Medians of {result['repeats']} interleaved round(s) after "
        f"one warm-up; speed-up = ASE time / torch-sim time.",
    )  # fmt: skip


def summary(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    """One row of the run_all summary table."""
    (r,) = result["rows"]
    what = (f"torch-sim batched NVT / ASE loop, {r['cells']} x 8-atom Si cells, "
            f"{result['dtype']}" + ("" if preset == "full" else f" ({preset} preset)"))  # fmt: skip
    text = f"{r['speedup_wall']:.2f}x wall ({r['speedup_cpu']:.2f}x CPU)"
    return [{"measurement": what, "result": text, "target": "(measured)", "met": "-"}]


if __name__ == "__main__":
    main()
