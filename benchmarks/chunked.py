"""Chunked evaluation (``PANCalculator(max_atoms_per_chunk=N)``): time and peak memory per atom.

Diamond Si supercells (a = 5.47 A, rattled 0.02 A) from about 1,000 to
100,000 atoms, the shipped ``si`` model (``--model``; with
``--hyperparameters`` a random-initialised model of that backbone instead),
float32, energy + forces, one single point per size. Each size runs in its
own Python process (``--child``): its peak resident memory (VmHWM of
/proc/self/status, the whole process: interpreter, model, structure, chunks)
is what the table reports, with the time of the call (wall and CPU). A
structure with at most N atoms is evaluated whole (one model call); larger
ones chunk by chunk (:mod:`pansim.chunking`), so peak memory should stay flat
in the atom count from N on. ``evaluated / atoms``: atoms of all chunks
(owned + halo images) over the atoms of the cell, the redundant work.

The JSON is rewritten after every size; ``--resume`` keeps the rows of a
previous run with the same settings and measures only the missing sizes.
``--stop-after`` (seconds) starts no new size after that much time.

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.chunked [--quick] [--sizes 1000 ... 100000]
        [--max-atoms-per-chunk 5000] [--dtype float32] [--resume] [--stop-after 5400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/chunked.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.calculators.calculator import all_changes  # noqa: E402

from benchmarks import _common as common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FULL = {"sizes": [1000, 2000, 5000, 10000, 20000, 50000, 100000]}
QUICK = {"sizes": [1000, 2000]}


def _cpu() -> float:
    return time.process_time()


def make_calculator(args: argparse.Namespace):
    """PANCalculator of the shipped model, or of a random one of ``--hyperparameters``."""
    import pansim
    from pansim.calculator import PANCalculator
    from pansim.model_io import default_dtype

    model = args.model
    if args.hyperparameters:
        with default_dtype(common.DTYPES[args.dtype]):
            model = pansim.build_model(
                variant="pan+pgs", elements=["Si"], r_max=args.r_max, **args.hyperparameters
            )
    return PANCalculator(model, default_dtype=args.dtype, max_atoms_per_chunk=args.chunk)


def measure_one(n_atoms: int, args: argparse.Namespace) -> dict[str, Any]:
    """One size in this process: plan, then one timed single point (the child's work)."""
    from pansim import chunking

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    calc = make_calculator(args)
    atoms = common.si_cell(n_atoms)
    grid = chunking.plan(atoms, calc.model, args.chunk)
    halo = chunking.halo_depth(calc.model)
    if grid is None:
        chunks, evaluated, largest = 1, len(atoms), len(atoms)
    else:
        sizes = chunking.counts(chunking.make_frame(atoms, calc.r_max), grid, halo)
        chunks, evaluated, largest = int((sizes > 0).sum()), int(sizes.sum()), int(sizes.max())
    before = common.memory_mb()
    wall, cpu = time.perf_counter(), _cpu()
    calc.calculate(atoms, ["energy", "forces"], all_changes)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    peak = common.memory_mb()["peak"]
    n = len(atoms)
    return {
        "atoms": n,
        "chunks": chunks,
        "largest_chunk": largest,
        "evaluated_ratio": evaluated / n,
        "wall_s": wall,
        "cpu_s": cpu,
        "wall_ms_per_atom": 1e3 * wall / n,
        "cpu_ms_per_atom": 1e3 * cpu / n,
        "rss_setup_mb": before["rss"],
        "rss_peak_mb": peak,
        "peak_kb_per_atom": 1024.0 * peak / n,
        "energy_per_atom": calc.results["energy"] / n,
        "max_force": float(np.abs(calc.results["forces"]).max()),
        "load_1min": round(load, 2),
    }


def run_child(n_atoms: int, args: argparse.Namespace) -> tuple[dict | None, str | None]:
    """``measure_one`` in a fresh process; ``(row, None)`` or ``(None, why it failed)``."""
    command = [sys.executable, "-m", "benchmarks.chunked", "--child", str(n_atoms)]
    command += ["--dtype", args.dtype, "--model", str(args.model), "--threads", str(args.threads)]
    command += ["--max-atoms-per-chunk", str(args.chunk), "--r-max", str(args.r_max)]
    command += ["--hyperparameters", json.dumps(args.hyperparameters)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        return None, f"timeout after {args.timeout:.0f} s"
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        return None, f"exit code {done.returncode} ({tail[0][:200]})"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]), None


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "dtype": args.dtype,
        "model": "random pan+pgs (--hyperparameters)" if args.hyperparameters else str(args.model),
        "max_atoms_per_chunk": args.chunk,
        "threads": args.threads,
        "hyperparameters": args.hyperparameters,
        "r_max": args.r_max if args.hyperparameters else None,
    }


def previous_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Rows of an earlier run with the same settings (``--resume``), else none."""
    path = args.out_dir / f"{args.name or 'chunked'}.json"
    if not (args.resume and path.exists()):
        return []
    saved = json.loads(path.read_text())
    return saved["rows"] if saved.get("settings") == _settings(args) else []


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the sizes (or, with ``--child``, one size); write JSON and Markdown after each."""
    p = common.parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="target atom counts")
    p.add_argument("--dtype", choices=sorted(common.DTYPES), default="float32")
    p.add_argument("--model", default="si", help="registered name or model file")
    p.add_argument("--max-atoms-per-chunk", dest="chunk", type=int, default=5000)
    p.add_argument("--r-max", type=float, default=common.R_MAX, help="of a random model")
    p.add_argument("--timeout", type=float, default=7200.0, help="seconds per size")
    p.add_argument("--stop-after", type=float, default=None, help="start no size after (s)")
    p.add_argument("--resume", action="store_true", help="keep finished sizes of the last run")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = args.sizes or (QUICK if args.quick else FULL)["sizes"]
    args.repeats = 1
    args.backbone = common.resolve_backbone(args)
    torch.set_num_threads(args.threads)
    if args.child is not None:
        row = measure_one(args.child, args)
        print(json.dumps(row))
        return row
    started = time.perf_counter()
    rows = previous_rows(args)
    stopped = f"completed every requested size ({max(args.sizes)} atoms)"
    for n in args.sizes:
        if any(abs(r["atoms"] - n) <= 0.3 * n for r in rows):
            continue
        if args.stop_after is not None and time.perf_counter() - started > args.stop_after:
            budget = f"time budget (--stop-after {args.stop_after:.0f} s)"
            stopped = f"stopped before {n} atoms: {budget}"
            break
        check = common.describe_quiet(common.quiet_check())
        row, error = run_child(n, args)
        if error is not None:
            stopped = f"stopped at about {n} atoms: {error}"
            break
        row["machine_before"] = check
        rows.append(row)
        print(f"{row['atoms']} atoms: {row['wall_s']:.0f} s wall, {row['rss_peak_mb']:.0f} MiB "
              f"peak RSS, {row['chunks']} chunk(s)", file=sys.stderr)  # fmt: skip
        _write(args, started, rows, f"running (last finished: {row['atoms']} atoms)")
    return _write(args, started, rows, stopped)


def _write(args, started: float, rows: list[dict[str, Any]], stopped: str) -> dict[str, Any]:
    return common.finish(
        "chunked", args, started, markdown,
        settings=_settings(args),
        structure="diamond Si, a = 5.47 A, rattled 0.02 A",
        computed="energy + forces, one single point per size",
        memory="peak RSS of the whole process (VmHWM), one process per size",
        rows=sorted(rows, key=lambda r: r["atoms"]),
        stopped=stopped,
    )  # fmt: skip


COLUMNS = [
    ("atoms", "atoms", "d"),
    ("chunks", "chunks", "d"),
    ("largest_chunk", "largest chunk", "d"),
    ("evaluated_ratio", "evaluated / atoms", ".2f"),
    ("wall_s", "wall (s)", ".1f"),
    ("wall_ms_per_atom", "wall ms/atom", ".2f"),
    ("cpu_ms_per_atom", "CPU ms/atom", ".2f"),
    ("rss_peak_mb", "peak RSS (MiB)", ".0f"),
    ("peak_kb_per_atom", "peak KiB/atom", ".1f"),
    ("energy_per_atom", "E/atom (eV)", ".5f"),
    ("load_1min", "load", ".1f"),
]


def markdown(result: dict[str, Any]) -> str:
    """The table and its notes."""
    s = result["settings"]
    load = result["machine"]["load_average_1_5_15"]
    return "\n\n".join([
        common.table(result["rows"], COLUMNS),
        f"Scan {result['stopped']}.",
        f"Model {s['model']}, {s['dtype']}, max_atoms_per_chunk={s['max_atoms_per_chunk']}, "
        f"{result['structure']}, {result['computed']}, {s['threads']} torch thread(s). "
        f"Memory: {result['memory']}. Chunks: regions with owned atoms; evaluated / atoms: "
        f"owned + halo images of every chunk over the cell's atoms (1 for the whole-cell "
        f"path). Load: 1-min load average when the size started (load {load} at the end; "
        f"the machine is shared, so wall time exceeds CPU time).",
    ])  # fmt: skip


def summary(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    """One row of the run_all summary table: peak memory flat, time per atom."""
    rows = [r for r in result["rows"] if r["chunks"] > 1]
    if not rows:
        return []
    first, last = rows[0], rows[-1]
    what = (f"chunked single point (max_atoms_per_chunk={result['settings']['max_atoms_per_chunk']}"
            f", {result['settings']['dtype']}), {first['atoms']} -> {last['atoms']} atoms"
            + ("" if preset == "full" else f" ({preset} preset)"))  # fmt: skip
    ratio = last["rss_peak_mb"] / first["rss_peak_mb"]
    text = (f"peak RSS {first['rss_peak_mb']:.0f} -> {last['rss_peak_mb']:.0f} MiB "
            f"({ratio:.2f}x for {last['atoms'] / first['atoms']:.1f}x atoms); CPU "
            f"{first['cpu_ms_per_atom']:.1f} -> {last['cpu_ms_per_atom']:.1f} ms/atom")  # fmt: skip
    reached = last["atoms"] >= 90000
    met = f"flat: {'yes' if ratio <= 1.2 else 'no'}; 100k atoms: {'yes' if reached else 'no'}"
    target = "peak memory flat (<= 1.2x) up to 100,000 atoms"
    return [{"measurement": what, "result": text, "target": target, "met": met}]


if __name__ == "__main__":
    main()
