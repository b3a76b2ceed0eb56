"""FLOPs, wall and CPU time of PAN / PGS / PAN+PGS over the baseline MACE (spec §1.3, item 5).

Spec: docs/spec.md.

Forward pass plus forces on a 64-atom Si cell (diamond, 2x2x2 conventional,
a = 5.47 A, slightly rattled), every variant at identical hyperparameters
(pansim.backbones.mace.DEFAULTS unless overridden). FLOPs come from
torch.utils.flop_counter.FlopCounterMode, which counts matmul-like operations
only (mm, bmm, addmm, convolutions, ...) in forward and backward: elementwise
work (Bessel functions, envelopes, tanh) is not counted, so the median wall
and CPU times of interleaved runs (variants in shuffled order every round) are
reported as well; on a shared machine the CPU time is the steadier of the two.

Usage::

    python benchmarks/flops.py [--repeats 20] [--dtype float64] [--threads 1] [--out flops.json]
        [--hyperparameters '{"num_channels": 128}']
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time

import torch
from ase.build import bulk
from torch.utils.flop_counter import FlopCounterMode

from pansim.backbones import VARIANTS, build_model
from pansim.files import write_json_atomic
from pansim.graph import atoms_to_graph, collate

R_MAX = 5.0


def si64():
    atoms = bulk("Si", "diamond", a=5.47, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=0)
    return atoms


def build_all(dtype: torch.dtype, hyperparameters: dict) -> dict:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return {
            v: build_model(variant=v, elements=["Si"], r_max=R_MAX, seed=0, **hyperparameters)
            for v in VARIANTS
        }
    finally:
        torch.set_default_dtype(previous)


def flops(model, data) -> int:
    with FlopCounterMode(display=False) as counter:
        model(dict(data), compute_force=True)
    return int(counter.get_total_flops())


def timings(models: dict, data, repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and median CPU time (s) per variant over interleaved, shuffled rounds.

    The CPU time (``time.process_time``) is much less sensitive than the wall time
    to other processes on a shared machine.
    """
    wall: dict[str, list[float]] = {v: [] for v in models}
    cpu: dict[str, list[float]] = {v: [] for v in models}
    for m in models.values():  # warm-up
        m(dict(data), compute_force=True)
    order = list(models)
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)  # interleaved, no variant always first: all see the same load
        for v in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            models[v](dict(data), compute_force=True)
            cpu[v].append(time.process_time() - start_cpu)
            wall[v].append(time.perf_counter() - start)
    return {
        v: {"wall": statistics.median(wall[v]), "cpu": statistics.median(cpu[v])} for v in models
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--hyperparameters", type=json.loads, default={})
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="flops.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    models = build_all(dtype, args.hyperparameters)
    atoms = si64()
    data = collate([atoms_to_graph(atoms, [14], R_MAX)], dtype=dtype)
    counts = {v: flops(m, data) for v, m in models.items()}
    times = timings(models, data, args.repeats)
    base_f, base_t = counts["baseline"], times["baseline"]
    rows = [
        {
            "variant": v,
            "gflops": counts[v] / 1e9,
            "flops_ratio": counts[v] / base_f,
            "parameters": sum(p.numel() for p in models[v].parameters()),
            "median_wall_s": times[v]["wall"],
            "wall_ratio": times[v]["wall"] / base_t["wall"],
            "median_cpu_s": times[v]["cpu"],
            "cpu_ratio": times[v]["cpu"] / base_t["cpu"],
        }
        for v in VARIANTS
    ]
    n_edges = data["edge_index"].shape[1]
    print(f"64-atom Si, r_max {R_MAX} A, {n_edges} edges, {args.dtype}, {args.threads} thread(s),")
    print(f"forward + forces, medians of {args.repeats} interleaved runs")
    head = f"{'variant':<9} {'GFLOPs':>9} {'ratio':>7} {'params':>8}"
    print(head + f" {'wall ms':>8} {'ratio':>6} {'CPU ms':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['variant']:<9} {r['gflops']:9.4f} {r['flops_ratio']:7.4f} {r['parameters']:8d} "
              f"{1e3 * r['median_wall_s']:8.2f} {r['wall_ratio']:6.3f} "
              f"{1e3 * r['median_cpu_s']:8.2f} {r['cpu_ratio']:6.3f}")  # fmt: skip
    result = {
        "structure": "Si diamond 2x2x2 conventional (64 atoms), a = 5.47 A, rattle 0.02 A",
        "r_max": R_MAX,
        "n_edges": int(data["edge_index"].shape[1]),
        "dtype": args.dtype,
        "threads": args.threads,
        "repeats": args.repeats,
        "hyperparameters": models["pan+pgs"].pansim_config,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
        "target": "flops_ratio(pan+pgs) <= 1.05",
        "target_met": rows[-1]["flops_ratio"] <= 1.05,
    }
    write_json_atomic(args.out, result, indent=1)
    return result


if __name__ == "__main__":
    main()
