"""Cost of PANCalculator's default ``keep_memory=False`` (malloc as it is) against kept memory.

``keep_memory`` changes malloc for the whole process and cannot be undone, so
each setting runs in processes of its own (``--child``), interleaved: every
round starts one process per setting, in a new random order, so that a change
of machine load hits both alike. A process loads the model, evaluates energy,
forces and stress of one rattled diamond-Si cell once (warm-up, not counted),
then ``--calls`` times (the positions move by 1e-4 A between calls, so
nothing is cached), and reports per call the median wall and CPU time, the
minor page faults (``getrusage``), and the process's peak resident memory.
The summary gives, per setting, the medians over rounds and the ratio
default / kept.

Usage (from the repository root)::

    python -m benchmarks.keep_memory [--model si] [--cells 3] [--calls 5] [--rounds 5]
        [--threads 1] [--out results/bench/keep_memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {"default (keep_memory=False)": False, "kept (keep_memory=True)": True}


def child(model: str, cells: int, calls: int, keep: bool) -> dict:
    """One process: per-call medians of wall and CPU seconds, faults, peak RSS (MiB)."""
    import numpy as np
    from ase.build import bulk

    from pansim import PANCalculator

    atoms = bulk("Si", "diamond", a=5.47, cubic=True).repeat(cells)
    atoms.rattle(0.02, seed=0)
    atoms.calc = PANCalculator(model=model, keep_memory=keep)
    atoms.get_stress()  # warm-up: TorchScript / e3nn first-call work
    wall, cpu, faults = [], [], []
    for k in range(calls):
        atoms.positions[0, 0] += 1e-4 * (-1) ** k
        f0, t0, c0 = (
            resource.getrusage(resource.RUSAGE_SELF).ru_minflt,
            time.perf_counter(),
            time.process_time(),
        )
        atoms.get_stress()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return {
        "atoms": len(atoms),
        "wall_s": statistics.median(wall),
        "cpu_s": statistics.median(cpu),
        "faults": statistics.median(faults),
        "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "finite": bool(np.isfinite(atoms.get_forces()).all()),
    }


def run(args: argparse.Namespace) -> dict:
    """Interleaved rounds of child processes; medians over rounds per setting."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    rng = random.Random(0)
    samples: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        order = list(SETTINGS)
        rng.shuffle(order)
        for name in order:
            cmd = [sys.executable, "-m", "benchmarks.keep_memory", "--child", "--model", args.model,
                   "--cells", str(args.cells), "--calls", str(args.calls)]  # fmt: skip
            cmd += ["--keep"] if SETTINGS[name] else []
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            samples[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = ("wall_s", "cpu_s", "faults", "peak_rss_MiB")
    medians = {n: {k: statistics.median(s[k] for s in v) for k in keys} for n, v in samples.items()}
    default, kept = (medians[n] for n in SETTINGS)
    return {
        "model": args.model,
        "atoms": samples[next(iter(SETTINGS))][0]["atoms"],
        "threads": args.threads,
        "rounds": args.rounds,
        "calls_per_process": args.calls,
        "medians": medians,
        "ratio_default_over_kept": {k: default[k] / kept[k] for k in keys},
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse arguments; run a child, or the interleaved comparison and print/write it."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="si")
    p.add_argument("--cells", type=int, default=3, help="repeats of the 8-atom cubic cell")
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.model, args.cells, args.calls, args.keep)))
        return
    result = run(args)
    for name, m in result["medians"].items():
        print(f"{name:28} wall {m['wall_s']:.3f} s  cpu {m['cpu_s']:.3f} s  "
              f"faults {m['faults']:.0f}  peak RSS {m['peak_rss_MiB']:.0f} MiB")  # fmt: skip
    print("default / kept:", {k: round(v, 3) for k, v in result["ratio_default_over_kept"].items()})
    if args.out:
        from pansim.files import write_json_atomic

        write_json_atomic(args.out, result, indent=1)


if __name__ == "__main__":
    main()
