"""Where the time per atom goes as cells grow: torch.profiler self CPU time per op, per atom.

For each size, one PANCalculator single point (energy + forces) is first run
unprofiled (warm-up; its user / system CPU time and page faults come from
``getrusage``), then once under ``torch.profiler``. Every op's self CPU time is
assigned to the forward pass or to the autograd backward (an op whose ancestors
include ``autograd::engine::evaluate_function`` is backward), divided by the
atom count, and the ops whose per-atom cost grows most between the smallest and
the largest size are listed. Graph building (neighbour list, tensors) and the
model call are timed around them.

Usage (from the repository root; minutes at 4000 atoms on one thread)::

    python -m benchmarks.profile_scaling --sizes 512 4096 [--dtype float64]
        [--hyperparameters '{"num_channels": 32}'] [--top 25]
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks import _common as common  # noqa: E402


def _usage() -> dict[str, float]:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "user": u.ru_utime,
        "sys": u.ru_stime,
        "minflt": u.ru_minflt,
        "cpu": time.process_time(),
    }


def profile_one(n_atoms: int, dtype: str, hyperparameters: dict, variant: str) -> dict[str, Any]:
    """Per-atom self CPU time (us) of every op, forward / backward, at one size."""
    from pansim.calculator import PANCalculator
    from pansim.graph import atoms_to_graph, collate

    atoms = common.si_cell(n_atoms)
    n = len(atoms)
    calc = PANCalculator(common.build(variant, dtype, hyperparameters), default_dtype=dtype)
    model = calc.model
    before = _usage()
    start = time.perf_counter()
    c0 = time.process_time()
    data = collate([atoms_to_graph(atoms, calc.atomic_numbers, calc.r_max)], dtype=calc.dtype)
    graph_cpu = time.process_time() - c0
    out = model(data, compute_force=True)
    del out
    wall = time.perf_counter() - start
    after = _usage()
    rusage = {k: (after[k] - before[k]) for k in before}
    ops = common.op_times(lambda: model(data, compute_force=True))
    per_op = {op: us / n for op, us in ops.items()}
    totals = {phase: sum(v for k, v in per_op.items() if k.startswith(phase + " "))
              for phase in ("forward", "backward")}  # fmt: skip
    return {
        "atoms": n,
        "edges": int(data["edge_index"].shape[1]),
        "graph_cpu_us_per_atom": 1e6 * graph_cpu / n,
        "call_wall_us_per_atom": 1e6 * wall / n,
        "call_cpu_us_per_atom": 1e6 * rusage["cpu"] / n,
        "user_us_per_atom": 1e6 * rusage["user"] / n,
        "sys_us_per_atom": 1e6 * rusage["sys"] / n,
        "minor_faults_per_atom": rusage["minflt"] / n,
        "profiled_us_per_atom": totals,
        "ops_us_per_atom": dict(per_op),
    }


def report(rows: list[dict[str, Any]], top: int) -> str:
    """A Markdown summary: totals per size, then the ops by growth of their per-atom cost."""
    lines = ["| atoms | edges | call CPU us/atom | user | sys | minor faults/atom | "
             "forward (prof.) | backward (prof.) | graph |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in rows:
        p = r["profiled_us_per_atom"]
        lines.append(
            f"| {r['atoms']} | {r['edges']} | {r['call_cpu_us_per_atom']:.0f} | "
            f"{r['user_us_per_atom']:.0f} | {r['sys_us_per_atom']:.0f} | "
            f"{r['minor_faults_per_atom']:.0f} | {p['forward']:.0f} | {p['backward']:.0f} | "
            f"{r['graph_cpu_us_per_atom']:.1f} |"
        )
    small, large = rows[0]["ops_us_per_atom"], rows[-1]["ops_us_per_atom"]
    growth = {k: large.get(k, 0.0) - small.get(k, 0.0) for k in set(small) | set(large)}
    lines += ["", f"| op | us/atom at {rows[0]['atoms']} | us/atom at {rows[-1]['atoms']} | "
              "growth | ratio |", "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name in sorted(growth, key=lambda k: -abs(growth[k]))[:top]:
        a, b = small.get(name, 0.0), large.get(name, 0.0)
        ratio = b / a if a else float("inf")
        lines.append(f"| {name} | {a:.1f} | {b:.1f} | {growth[name]:+.1f} | {ratio:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = common.parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 4096])
    p.add_argument("--dtype", choices=sorted(common.DTYPES), default="float64")
    p.add_argument("--variant", default="pan+pgs")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)
    backbone = common.resolve_backbone(args)  # --shipped / --config
    torch.set_num_threads(args.threads)
    rows = []
    for n in args.sizes:
        rows.append(profile_one(n, args.dtype, args.hyperparameters, args.variant))
        print(f"{rows[-1]['atoms']} atoms done", file=sys.stderr)
    text = report(rows, args.top)
    print(text)
    if args.json is not None:
        meta = {"machine": common.machine(), "versions": common.versions(), "date": common.now(),
                "backbone": backbone, "hyperparameters": args.hyperparameters}  # fmt: skip
        common.write_text_atomic(args.json, json.dumps({"meta": meta, "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
