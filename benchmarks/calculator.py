"""PANCalculator against mace-torch's MACECalculator on the same baseline MACE weights.

A random-initialised baseline model (``DEFAULTS``) is evaluated by both
calculators: by pansim's ``PANCalculator`` directly, and by mace-torch's own
``MACECalculator`` from a ``.model`` file (``torch.save`` of a plain mace
``ScaleShiftMACE`` carrying exactly the baseline's weights, loaded with a
strict ``load_state_dict``; a temporary file of this benchmark). Both give the
same numbers (the max differences are reported).

Measured, interleaved, medians (``--repeats`` and ``--profile-repeats``
rounds at 1000 atoms, proportionally more for smaller cells, at most 20):

- single point: energy + forces + stress (``calculate`` called directly, so
  nothing is cached), Si cells of about 64 and 1000 atoms;
- NVE: ``n`` steps of ASE's VelocityVerlet (1 fs, 300 K Maxwell-Boltzmann
  velocities from a fixed seed), which asks for forces only. ``MACECalculator``
  computes the stress at every call anyway; ``PANCalculator`` computes only
  what is asked, which is part of what is measured;
- where the time goes, stage by stage, with timers around the same calls each
  calculator makes: neighbour list, graph building (everything from ``Atoms``
  to the model input, neighbour list included), model forward (energy with the
  autograd graph recorded), forward + backward (forces and stress), and the
  whole ``calculate``. autograd = (forward + backward) - forward; ASE and
  result handling = calculate - graph - (forward + backward);
- neighbour lists on the same cell: vesin (pansim), matscipy (mace-torch),
  ASE's ``neighbor_list``; identical pair counts are checked;
- an A/A control (``--control``, on in the full preset): a second
  ``MACECalculator`` loaded from the same file runs in the same interleaved
  rounds, and its ratio to the first is reported beside pansim's. The two run
  identical code on identical weights, so their ratio is the run-to-run noise
  of this machine; a pansim/mace ratio inside the control's spread is not a
  measured difference.

pansim uses vesin: a C++ cell-list neighbour list, linear in the number of
atoms, exact for any triclinic cell including cells smaller than the cutoff
(several periodic images), returning ``i, j, S`` in one call. Measured on this
machine while writing the benchmark (one thread, Si, r = 5 A): vesin and
matscipy tie at 64 atoms (0.3 ms), vesin is about 2x faster than matscipy from
1000 atoms on (1.9 vs 3.7 ms; 27 vs 59 ms at 20000 atoms) and 25x faster than
ASE's; matscipy is slightly faster only for a few atoms. Either way the
neighbour list is a small part of a single point (stage table).

Target (issue 6): pansim/mace time ratio at most 1.0.

Usage (from the repository root)::

    python -m benchmarks.calculator [--quick] [--sizes 64 1000] [--steps 100] [--dtype float64]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/calculator.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase import units  # noqa: E402
from ase.calculators.calculator import all_changes  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402

from benchmarks import _common as common  # noqa: E402
from pansim.compat import thermalize  # noqa: E402

FULL = {"sizes": [64, 1000], "dtype": "float64", "repeats": 10, "steps": 100,
        "nve_repeats": 3, "nve_max_atoms": 1000, "profile_repeats": 5, "control": True}  # fmt: skip
QUICK = {"sizes": [64, 1000], "dtype": "float32", "repeats": 2, "steps": 20,
         "nve_repeats": 1, "nve_max_atoms": 64, "profile_repeats": 2, "control": False}  # fmt: skip
CONTROL = "mace (again)"
PROPERTIES = ["energy", "forces", "stress"]


# -- the two calculators ------------------------------------------------------------
def mace_twin(model: torch.nn.Module) -> torch.nn.Module:
    """A plain mace ``ScaleShiftMACE`` with exactly the weights of a pansim baseline model."""
    from mace.modules.models import ScaleShiftMACE

    from pansim.backbones.mace import _mace_kwargs

    config = model.pansim_config
    if config["variant"] != "baseline":
        raise ValueError("only a baseline model has a plain mace twin")
    numbers = [int(z) for z in model.atomic_numbers]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(next(model.parameters()).dtype)
    try:
        twin = ScaleShiftMACE(**_mace_kwargs(config, numbers, float(model.r_max)))
    finally:
        torch.set_default_dtype(previous)
    twin.load_state_dict(model.state_dict(), strict=True)
    return twin.eval()


def calculators(model: torch.nn.Module, dtype: str, directory: str, control: bool = False):
    """``(PANCalculator, MACECalculator, control)`` on the same weights; mace's from a .model file.

    ``control`` is a second ``MACECalculator`` loaded from the same file (``None`` unless
    asked for): the A/A control of the timing.
    """
    from pansim._compat import preserved_environ
    from pansim.calculator import PANCalculator

    path = os.path.join(directory, "baseline.model")
    torch.save(mace_twin(model), path)
    with preserved_environ():  # mace's loader needs full unpickling of its own file
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
        from mace.calculators import MACECalculator

        mace = MACECalculator(model_paths=path, device="cpu", default_dtype=dtype)
        again = (
            MACECalculator(model_paths=path, device="cpu", default_dtype=dtype) if control else None
        )
    return PANCalculator(model, default_dtype=dtype), mace, again


def agreement(pan, mace, atoms) -> dict[str, float]:
    """Max absolute differences of energy, forces, stress between the two calculators."""
    pan.calculate(atoms, PROPERTIES, all_changes)
    mace.calculate(atoms, PROPERTIES, all_changes)
    return {
        key: float(np.max(np.abs(np.asarray(pan.results[key]) - np.asarray(mace.results[key]))))
        for key in PROPERTIES
    }


# -- what is timed ------------------------------------------------------------------------
def nve(calc, atoms, steps: int):
    """``steps`` VelocityVerlet steps (1 fs) from seeded 300 K velocities; the final Atoms."""
    moving = atoms.copy()
    moving.calc = calc
    thermalize(moving, 300, rng=np.random.default_rng(0))
    VelocityVerlet(moving, timestep=1.0 * units.fs).run(steps)
    return moving


def pansim_stages(pan, atoms) -> dict[str, Any]:
    """The calls ``PANCalculator.calculate`` makes, one stage each."""
    from pansim.graph import atoms_to_graph, collate, neighbor_list

    z, r_max, model = pan.atomic_numbers, pan.r_max, pan.model
    data = collate([atoms_to_graph(atoms, z, r_max)], dtype=pan.dtype)
    return {
        "neighbour_list": lambda: neighbor_list(atoms, r_max),
        "graph": lambda: collate([atoms_to_graph(atoms, z, r_max)], dtype=pan.dtype),
        "forward": lambda: model(dict(data), compute_force=False),
        "forward_backward": lambda: model(dict(data), compute_force=True, compute_stress=True),
        "calculate": lambda: pan.calculate(atoms, PROPERTIES, all_changes),
    }


def mace_stages(mace, atoms) -> dict[str, Any]:
    """The calls ``MACECalculator.calculate`` makes, one stage each.

    The model stages clone the batch first, as ``calculate`` does; pansim's pass a shallow
    copy of the graph. The clone is 0.2 ms of a 2.9 s call at 1000 atoms (measured
    2026-11-30), so it does not tilt the ratios.
    """
    from mace.data.neighborhood import get_neighborhood

    model = mace.models[0]
    batch = mace._atoms_to_batch(atoms)

    def run(**kwargs):
        return model(mace._clone_batch(batch).to_dict(), **kwargs)

    cell, pbc = np.array(atoms.cell), tuple(bool(p) for p in atoms.pbc)
    return {
        "neighbour_list": lambda: get_neighborhood(atoms.positions, mace.r_max, pbc, cell.copy()),
        "graph": lambda: mace._atoms_to_batch(atoms),
        "forward": lambda: run(compute_force=False),
        "forward_backward": lambda: run(compute_force=True, compute_stress=True),
        "calculate": lambda: mace.calculate(atoms, PROPERTIES, all_changes),
    }


def neighbour_lists(atoms, r_max: float) -> dict[str, Any]:
    """Full neighbour lists (i, j, S) of the three libraries on ``atoms``."""
    import vesin
    from ase.neighborlist import neighbor_list as ase_neighbor_list
    from matscipy.neighbours import neighbour_list as matscipy_neighbour_list

    pos, cell, pbc = atoms.positions, np.array(atoms.cell), atoms.pbc
    return {
        "vesin": lambda: vesin.NeighborList(cutoff=r_max, full_list=True).compute(
            pos, cell, True, quantities="ijS"
        ),
        "matscipy": lambda: matscipy_neighbour_list(
            "ijS", positions=pos, cell=cell, pbc=pbc, cutoff=r_max
        ),  # fmt: skip
        "ase": lambda: ase_neighbor_list("ijS", atoms, r_max),
    }


def profile(pan, mace, atoms, repeats: int) -> list[dict[str, Any]]:
    """Median ms per stage for both calculators, interleaved."""
    stages = {("pansim", k): f for k, f in pansim_stages(pan, atoms).items()}
    stages.update({("mace", k): f for k, f in mace_stages(mace, atoms).items()})
    samples = common.interleaved({f"{c}/{k}": f for (c, k), f in stages.items()}, repeats)
    ms = {name: 1e3 * common.medians(s)["cpu"] for name, s in samples.items()}
    rows = []
    for calc in ("pansim", "mace"):
        t = {k: ms[f"{calc}/{k}"] for c, k in stages if c == calc}
        row = {"atoms": len(atoms), "calculator": calc}
        row.update({f"{k}_ms": v for k, v in t.items()})
        row["graph_only_ms"] = t["graph"] - t["neighbour_list"]
        row["autograd_ms"] = t["forward_backward"] - t["forward"]
        row["ase_and_results_ms"] = t["calculate"] - t["graph"] - t["forward_backward"]
        rows.append(row)
    return rows


# -- the benchmark --------------------------------------------------------------------------
def measure(size: int, args, model, pan, mace, again=None) -> dict[str, Any]:
    """Single point, NVE (up to ``nve_max_atoms``), stages and neighbour lists for one cell size.

    With ``again`` (a second MACECalculator on the same file) every timed round also runs
    it, and ``*_control`` rows give its ratio to the first: the A/A noise floor.
    """
    atoms = common.si_cell(size)
    out: dict[str, Any] = {"atoms": len(atoms), "agreement": agreement(pan, mace, atoms)}
    n_rounds = common.rounds(args.repeats, len(atoms), reference=1000, cap=args.max_rounds)
    calls = {
        "pansim": lambda: pan.calculate(atoms, PROPERTIES, all_changes),
        "mace": lambda: mace.calculate(atoms, PROPERTIES, all_changes),
    }
    if again is not None:
        calls[CONTROL] = lambda: again.calculate(atoms, PROPERTIES, all_changes)
    sp = common.interleaved(calls, n_rounds)
    out["single_point"] = _ratio_row(len(atoms), "single point (E+F+S)", sp, n_rounds)
    if again is not None:
        out["single_point_control"] = _ratio_row(
            len(atoms), "single point (E+F+S)", sp, n_rounds, first=CONTROL
        )
    if len(atoms) <= args.nve_max_atoms:
        final: dict[str, Any] = {}
        runs_of = {"pansim": pan, "mace": mace}
        if again is not None:
            runs_of[CONTROL] = again

        def run(name: str) -> None:
            final[name] = nve(runs_of[name], atoms, args.steps)

        runs = common.interleaved(
            {name: functools.partial(run, name) for name in runs_of}, args.nve_repeats, warmup=0
        )
        label = f"NVE {args.steps} steps (forces)"
        out["nve"] = _ratio_row(len(atoms), label, runs, args.nve_repeats)
        drift = np.abs(final["pansim"].positions - final["mace"].positions).max()
        out["nve"]["max_final_position_diff_A"] = float(drift)
        if again is not None:
            out["nve_control"] = _ratio_row(
                len(atoms), label, runs, args.nve_repeats, first=CONTROL
            )
    n_rounds = common.rounds(args.profile_repeats, len(atoms), reference=1000, cap=args.max_rounds)
    out["stages"] = profile(pan, mace, atoms, n_rounds)
    nl = common.interleaved(neighbour_lists(atoms, common.R_MAX), n_rounds)
    pairs = {k: len(f()[0]) for k, f in neighbour_lists(atoms, common.R_MAX).items()}
    out["neighbour_lists"] = [
        {
            "atoms": len(atoms),
            "library": k,
            "pairs": pairs[k],
            "median_ms": 1e3 * common.medians(s)["cpu"],
        }  # fmt: skip
        for k, s in nl.items()
    ]
    if len(set(pairs.values())) != 1:
        raise AssertionError(f"neighbour lists disagree: {pairs}")
    return out


def _ratio_row(
    n: int, what: str, samples: dict, repeats: int, first: str = "pansim"
) -> dict[str, Any]:
    """Medians and ratio of ``first`` over ``mace`` (``first`` is pansim or the control)."""
    p, m = common.medians(samples[first]), common.medians(samples["mace"])
    rounds = [a / b for a, b in zip(samples[first]["wall"], samples["mace"]["wall"])]  # noqa: B905
    return {
        "atoms": n,
        "what": what,
        "calculator": first,
        "runs": repeats,
        "timed_wall_s": p["wall"],
        "mace_wall_s": m["wall"],
        "wall_ratio": p["wall"] / m["wall"],
        "timed_cpu_s": p["cpu"],
        "mace_cpu_s": m["cpu"],
        "cpu_ratio": p["cpu"] / m["cpu"],
        "round_wall_ratios": rounds,
        "round_ratio_range": f"{min(rounds):.3f}-{max(rounds):.3f}",
    }


RATIO_COLUMNS = [
    ("atoms", "atoms", "d"),
    ("what", "run", ""),
    ("calculator", "timed over mace", ""),
    ("runs", "runs", "d"),
    ("timed_wall_s", "timed wall (s)", ".3f"),
    ("mace_wall_s", "mace wall (s)", ".3f"),
    ("wall_ratio", "wall ratio", ".3f"),
    ("cpu_ratio", "CPU ratio", ".3f"),
    ("round_ratio_range", "wall ratio per round (min-max)", ""),
]
STAGE_COLUMNS = [
    ("atoms", "atoms", "d"),
    ("calculator", "calculator", ""),
    ("neighbour_list_ms", "neighbour list", ".2f"),
    ("graph_only_ms", "rest of graph", ".2f"),
    ("forward_ms", "forward", ".1f"),
    ("autograd_ms", "autograd", ".1f"),
    ("ase_and_results_ms", "ASE + results (rest)", ".2f"),
    ("calculate_ms", "calculate total", ".1f"),
]
NL_COLUMNS = [
    ("atoms", "atoms", "d"),
    ("library", "neighbour list", ""),
    ("pairs", "pairs", "d"),
    ("median_ms", "CPU ms", ".3f"),
]


def markdown(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    ratios = [
        s[key]
        for kind in ("single_point", "nve")
        for s in sizes
        for key in (kind, f"{kind}_control")
        if key in s
    ]
    stages = [row for s in sizes for row in s["stages"]]
    nls = [row for s in sizes for row in s["neighbour_lists"]]
    worst = max(max(abs(v) for v in s["agreement"].values()) for s in sizes)
    return "\n\n".join(
        [
            common.table(ratios, RATIO_COLUMNS),
            f"{result['dtype']}, {result['threads']} torch thread(s); ratio = pansim / mace "
            f"(target <= 1.0). Same weights: max |difference| of energy, forces, stress "
            f"{worst:.1e}. NVE asks for forces only: MACECalculator computes the stress too."
            + (
                f" Rows timed as '{CONTROL}' are the A/A control: a second MACECalculator on "
                "the same file, in the same rounds; their distance from 1 is this machine's "
                "run-to-run noise."
                if any("single_point_control" in s for s in sizes)
                else ""
            ),
            "Where the time goes (median CPU ms per call):",
            common.table(stages, STAGE_COLUMNS),
            common.table(nls, NL_COLUMNS),
            "pansim's neighbour list is vesin (C++ cell lists, linear in atoms, exact for any "
            "triclinic cell, also cells smaller than the cutoff); fastest here: "
            + ", ".join(f"{n} atoms: {k}" for n, k in _fastest(nls).items())
            + ".",
        ]
    )


def _fastest(rows: list[dict[str, Any]]) -> dict[int, str]:
    best: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row["atoms"] not in best or row["median_ms"] < best[row["atoms"]]["median_ms"]:
            best[row["atoms"]] = row
    return {n: row["library"] for n, row in best.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, write JSON and Markdown; return the result."""
    p = common.parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="target atom counts")
    p.add_argument("--dtype", choices=sorted(common.DTYPES), default=None)
    p.add_argument("--steps", type=int, default=None, help="NVE steps")
    p.add_argument("--nve-repeats", type=int, default=None)
    p.add_argument("--nve-max-atoms", type=int, default=None, help="largest cell run in NVE")
    p.add_argument("--profile-repeats", type=int, default=None)
    p.add_argument(
        "--control", action=argparse.BooleanOptionalAction, default=None,
        help="also time a second MACECalculator on the same file (A/A noise floor); "
        "on in the full preset",
    )  # fmt: skip
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.backbone = common.resolve_backbone(args)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = common.build("baseline", args.dtype, args.hyperparameters)
    with tempfile.TemporaryDirectory() as directory:
        pan, mace, again = calculators(model, args.dtype, directory, control=args.control)
        sizes = [measure(n, args, model, pan, mace, again) for n in args.sizes]
    worst = max(s[k]["wall_ratio"] for s in sizes for k in ("single_point", "nve") if k in s)
    return common.finish(
        "calculator", args, started, markdown,
        dtype=args.dtype,
        threads=args.threads,
        steps=args.steps,
        neighbour_list="vesin",
        sizes=sizes,
        target="pansim / mace wall ratio <= 1.0",
        target_met=worst <= 1.0,
        control=bool(args.control),
    )  # fmt: skip


if __name__ == "__main__":
    main()
