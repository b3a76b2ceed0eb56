"""Time and peak memory per atom of PANCalculator from about 100 to about 20000 atoms.

Each size runs in its own Python process (``--child``). Memory of the
evaluation: the process's peak resident memory during the first evaluation
(VmHWM of /proc/self/status, reset to the current RSS just before it with
Linux's ``clear_refs``) minus its resident memory just before it; the graph,
features and the autograd graph of the forces, reported per atom. Without
/proc the ``getrusage`` peak is used, whose set-up peak can hide the
evaluation's. (``ru_maxrss`` is not used on Linux: after ``fork`` + ``exec`` it
still carries the parent's peak. ``tracemalloc`` would not see torch's
allocations.) Time per atom is the median of the repeats after the first call
(the first call is reported separately); both wall and CPU (process) time are
kept, the CPU time split into user and system time, with the page faults per
atom (``getrusage`` over the repeats): on a shared machine the CPU time is the
steadier measure.

Diamond Si (a = 5.47 A, rattled 0.02 A, r_max 5 A: 28 neighbours per atom),
a random-initialised pan+pgs model at ``DEFAULTS`` (``--shipped``: the
backbone of the shipped pretrained models, the ``hyperparameters`` of
``configs/pretrained/base/si.yaml``; ``--config`` another training config),
energy + forces (add ``--stress``), with ``keep_memory=True`` (as the ``pansim``
command line runs; ``--no-keep-memory``: glibc malloc as it is, every large tensor
faulted in afresh, PANCalculator's default). ``--dtype`` takes one or more precisions,
scanned one after the other. Sizes grow until ``--max-atoms``. Before each
size the peak memory of its process is estimated from the previous size
(set-up RSS + peak RSS growth per atom x atoms); a size whose estimate
exceeds ``--memory-fraction`` of the memory available now (MemAvailable) is
not started: the scan of that precision stops there cleanly and says so. It
also stops at the first size whose process fails (out of memory,
``--timeout``). Target (issue 6): time and memory per atom stay flat.

Usage (from the repository root)::

    python -m benchmarks.scaling [--quick] [--max-atoms 20000] [--sizes 100 1000 ...]
        [--dtype float32 float64] [--shipped] [--name scaling-shipped] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/scaling.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from ase.calculators.calculator import all_changes  # noqa: E402

from benchmarks import _common as common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FULL = {"sizes": [100, 200, 500, 1000, 2000, 5000, 10000, 20000], "repeats": 3}
QUICK = {"sizes": [100, 200, 500], "repeats": 1}
SHIPPED_CONFIG = common.SHIPPED_CONFIG
config_hyperparameters = common.config_hyperparameters


def _usage() -> tuple[float, float, int]:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime, u.ru_stime, u.ru_minflt


def measure_one(
    n_atoms: int,
    dtype: str,
    repeats: int,
    hyperparameters: dict,
    variant: str,
    stress: bool,
    keep_memory: bool = True,
) -> dict[str, Any]:
    """Time and memory of one size in this process (the child's work)."""
    from pansim.calculator import PANCalculator
    from pansim.graph import neighbor_list

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    atoms = common.si_cell(n_atoms)
    model = common.build(variant, dtype, hyperparameters)
    calc = PANCalculator(model, default_dtype=dtype, keep_memory=keep_memory)
    properties = ["energy", "forces"] + (["stress"] if stress else [])
    edges = neighbor_list(atoms, common.R_MAX)[0].shape[1]
    before = common.memory_mb()
    reset = common.reset_peak_memory()
    start = time.perf_counter()
    calc.calculate(atoms, properties, all_changes)
    first = time.perf_counter() - start
    after = common.memory_mb()
    eval_mb = after["peak"] - (before["rss"] if reset else before["peak"])
    calls = {"calculate": lambda: calc.calculate(atoms, properties, all_changes)}
    usage = _usage()
    t = common.medians(common.interleaved(calls, repeats, warmup=0)["calculate"])
    user, system, faults = (b - a for a, b in zip(usage, _usage()))  # noqa: B905
    n = len(atoms)
    per_call = 1e6 / (n * repeats)
    return {
        "atoms": n,
        "dtype": dtype,
        "edges": int(edges),
        "first_call_s": first,
        "median_wall_s": t["wall"],
        "median_cpu_s": t["cpu"],
        "wall_us_per_atom": 1e6 * t["wall"] / n,
        "cpu_us_per_atom": 1e6 * t["cpu"] / n,
        "user_us_per_atom": user * per_call,
        "sys_us_per_atom": system * per_call,
        "faults_per_atom": faults * per_call / 1e6,
        "rss_setup_mb": before["rss"],
        "rss_peak_mb": max(after["peak"], common.memory_mb()["peak"]),
        "eval_memory_mb": eval_mb,
        "eval_kb_per_atom": 1024.0 * eval_mb / n,
        "peak_reset": reset,
        "load_1min": round(load, 2),
    }


def run_child(n_atoms: int, dtype: str, args) -> tuple[dict[str, Any] | None, str | None]:
    """``measure_one`` in a fresh process; ``(row, None)`` or ``(None, why it failed)``."""
    command = [sys.executable, "-m", "benchmarks.scaling", "--child", str(n_atoms)]
    command += ["--dtype", dtype, "--repeats", str(args.repeats), "--variant", args.variant]
    command += ["--threads", str(args.threads)]
    command += ["--hyperparameters", json.dumps(args.hyperparameters)]
    command += ["--stress"] if args.stress else []
    command += [] if args.keep_memory else ["--no-keep-memory"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        return None, f"timeout after {args.timeout} s"
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        return None, f"exit code {done.returncode} ({tail[0][:200]})"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]), None


def scan(args, dtype: str) -> tuple[list[dict[str, Any]], str]:
    """Rows for every size up to ``--max-atoms``, and where (and why) the scan stopped."""
    rows: list[dict[str, Any]] = []
    for n in [s for s in args.sizes if s <= args.max_atoms]:
        if args.in_process:
            row, error = measure_one(n, dtype, args.repeats, args.hyperparameters,
                                     args.variant, args.stress, args.keep_memory), None  # fmt: skip
        else:
            error = common.too_big(rows[-1] if rows else None, n, args.memory_fraction)
            if error is not None:
                return rows, error
            row, error = run_child(n, dtype, args)
        if error is not None:
            return rows, f"stopped at about {n} atoms: {error}"
        rows.append(row)
        print(f"{dtype} {row['atoms']} atoms: CPU {row['cpu_us_per_atom']:.0f} us/atom, "
              f"{row['eval_kb_per_atom']:.1f} KiB/atom", file=sys.stderr)  # fmt: skip
    largest = rows[-1]["atoms"] if rows else 0
    return rows, f"completed every requested size (largest {largest} atoms)"


COLUMNS = [
    ("atoms", "atoms", "d"),
    ("edges", "edges", "d"),
    ("median_wall_s", "wall (s)", ".3f"),
    ("wall_us_per_atom", "wall us/atom", ".0f"),
    ("cpu_us_per_atom", "CPU us/atom", ".0f"),
    ("time_per_atom_rel", "time/atom rel.", ".2f"),
    ("sys_us_per_atom", "of which system", ".0f"),
    ("faults_per_atom", "page faults/atom", ".0f"),
    ("eval_memory_mb", "eval memory (MiB)", ".1f"),
    ("eval_kb_per_atom", "KiB/atom", ".1f"),
    ("rss_peak_mb", "peak RSS (MiB)", ".0f"),
    ("load_1min", "load", ".1f"),
]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the scan (or, with ``--child``, one size), print, write JSON and Markdown."""
    p = common.parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="target atom counts")
    p.add_argument("--max-atoms", type=int, default=20000, help="largest size tried")
    p.add_argument("--dtype", nargs="+", choices=sorted(common.DTYPES), default=["float64"])
    p.add_argument("--variant", default="pan+pgs")
    p.add_argument("--stress", action="store_true", help="also compute the stress")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per size")
    p.add_argument(
        "--memory-fraction", type=float, default=0.85, help="of MemAvailable, for the next size"
    )
    p.add_argument(
        "--no-keep-memory", dest="keep_memory", action="store_false", help="keep_memory=False"
    )
    p.add_argument(
        "--in-process", action="store_true", help="no child processes (memory is then cumulative)"
    )
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key in ("sizes", "repeats"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    args.backbone = common.resolve_backbone(args)
    torch.set_num_threads(args.threads)
    if args.child is not None:
        row = measure_one(args.child, args.dtype[0], args.repeats, args.hyperparameters,
                          args.variant, args.stress, args.keep_memory)  # fmt: skip
        print(json.dumps(row))
        return row
    started = time.perf_counter()
    rows, stopped = [], {}
    for dtype in args.dtype:
        dtype_rows, stopped[dtype] = scan(args, dtype)
        reference = dtype_rows[0]["cpu_us_per_atom"] if dtype_rows else float("nan")
        for row in dtype_rows:
            row["time_per_atom_rel"] = row["cpu_us_per_atom"] / reference
        rows += dtype_rows
    return common.finish(
        "scaling", args, started, markdown,
        structure="diamond Si, a = 5.47 A, rattled 0.02 A, r_max 5 A",
        variant=args.variant,
        dtype=args.dtype[0] if len(args.dtype) == 1 else args.dtype,
        computed="energy + forces" + (" + stress" if args.stress else ""),
        memory="peak RSS during the first evaluation (VmHWM, reset before) - RSS before",
        in_process=args.in_process,
        keep_memory=args.keep_memory,
        rows=rows,
        stopped=stopped[args.dtype[0]] if len(args.dtype) == 1 else stopped,
    )  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    """The table(s), one per precision, and their notes, from a result."""
    dtypes = result["dtype"] if isinstance(result["dtype"], list) else [result["dtype"]]
    stopped = result["stopped"]
    stopped = stopped if isinstance(stopped, dict) else {dtypes[0]: stopped}
    backbone = result.get("backbone", "pansim.backbones.mace.DEFAULTS")
    parts = []
    for dtype in dtypes:
        rows = [r for r in result["rows"] if r.get("dtype", dtype) == dtype]
        if len(dtypes) > 1:
            parts.append(f"{dtype}:")
        parts.append(common.table(rows, COLUMNS))
        parts.append(f"{dtype} scan {stopped[dtype]}.")
    load = result["machine"]["load_average_1_5_15"]
    keep = {True: "keep_memory=True", False: "keep_memory=False"}.get(
        result.get("keep_memory"), "before keep_memory"
    )
    parts.append(
        f"{result['variant']}, backbone {backbone}, {result['computed']}, PANCalculator "
        f"({keep}), "
        f"{common.threads(result)} torch thread(s), medians of {result['repeats']} call(s) "
        f"after the first; CPU = process time (user + system), 'of which system' and page "
        f"faults from getrusage; time/atom rel. = CPU time per atom over the first row's of "
        f"the same precision. Memory: one process per size, peak RSS during the first "
        f"evaluation minus RSS before it; peak RSS: whole process. Load: 1-min load average "
        f"when the size started (load {load} at the start of the scan; the machine is "
        f"shared, so wall time exceeds CPU time)."
    )
    return "\n\n".join(parts)


if __name__ == "__main__":
    main()
