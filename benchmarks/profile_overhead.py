"""Where a variant's extra time goes: per-op self CPU time, variant minus baseline.

The overhead benchmark (:mod:`benchmarks.overhead`) measures the ratio; this
profile explains it. The baseline and the variant (same backbone, same cell,
same dtype) each run ``--calls`` energy + forces + stress calls under
``torch.profiler``, in shuffled interleaved rounds; every op's self CPU time is
summed per call and assigned to the forward pass or the autograd backward (as in
:mod:`benchmarks.profile_scaling`). The table lists the ops whose per-call time
differs most between the two models, then the totals. ``torch.profiler`` adds
its own per-op cost, so the profiled totals run above the benchmark's medians;
the differences are what matter here.

Usage (from the repository root; seconds at 64 atoms)::

    python -m benchmarks.profile_overhead --shipped --atoms 64 --dtype float32
        [--variant pan+pgs] [--calls 30] [--top 20] [--json FILE]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks import _common as common  # noqa: E402
from benchmarks.overhead import call, graph  # noqa: E402


def profile(n_atoms: int, dtype: str, hyperparameters: dict, variant: str, calls: int,
            rounds: int = 3) -> dict[str, Any]:  # fmt: skip
    """Per-op self CPU time per call of ``baseline`` and ``variant``, averaged over rounds."""
    data = graph(common.si_cell(n_atoms), dtype)
    models = {v: common.build(v, dtype, hyperparameters) for v in ("baseline", variant)}
    for model in models.values():  # warm-up
        call(model, data)
    per_round = max(1, calls // rounds)
    totals: dict[str, dict[str, float]] = {v: defaultdict(float) for v in models}
    for order in common.shuffled_rounds(models, rounds):
        for v in order:
            for op, us in common.op_times(lambda m=models[v]: call(m, data), per_round).items():
                totals[v][op] += us / rounds
    return {
        "atoms": int(data["positions"].shape[0]),
        "edges": int(data["edge_index"].shape[1]),
        "dtype": dtype,
        "variant": variant,
        "calls": per_round * rounds,
        "ops_us_per_call": {v: dict(t) for v, t in totals.items()},
    }


def report(result: dict[str, Any], top: int) -> str:
    """Markdown: the ops that differ most, then forward / backward / total per call."""
    variant = result["variant"]
    base, var = (result["ops_us_per_call"][v] for v in ("baseline", variant))
    diff = {k: var.get(k, 0.0) - base.get(k, 0.0) for k in set(base) | set(var)}
    lines = [
        f"{result['atoms']} atoms, {result['edges']} edges, {result['dtype']}, "
        f"{result['calls']} profiled calls per model (self CPU us per call)",
        "",
        f"| op | baseline | {variant} | difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in sorted(diff, key=lambda k: -abs(diff[k]))[:top]:
        lines.append(f"| {name} | {base.get(name, 0.0):.1f} | {var.get(name, 0.0):.1f} | "
                     f"{diff[name]:+.1f} |")  # fmt: skip
    lines += ["", f"| phase | baseline | {variant} | ratio |", "| --- | ---: | ---: | ---: |"]
    for phase in ("forward", "backward", ""):
        b = sum(t for k, t in base.items() if k.startswith(phase))
        v = sum(t for k, t in var.items() if k.startswith(phase))
        lines.append(f"| {phase or 'total'} | {b:.0f} | {v:.0f} | {v / b:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.parser(__doc__)
    p.add_argument("--atoms", type=int, default=64)
    p.add_argument("--dtype", choices=sorted(common.DTYPES), default="float32")
    p.add_argument("--variant", default="pan+pgs")
    p.add_argument("--calls", type=int, default=30)
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args(argv)
    backbone = common.resolve_backbone(args)  # --shipped / --config
    torch.set_num_threads(args.threads)
    result = profile(args.atoms, args.dtype, args.hyperparameters, args.variant, args.calls)
    print(report(result, args.top))
    if args.json is not None:
        result["meta"] = {"machine": common.machine(), "versions": common.versions(),
                          "date": common.now(), "backbone": backbone,
                          "hyperparameters": args.hyperparameters}  # fmt: skip
        common.write_text_atomic(args.json, json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
