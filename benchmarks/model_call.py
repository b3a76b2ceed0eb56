"""The model call alone: pansim's baseline MACE against mace-torch's, same weights.

``benchmarks.calculator`` times whole ``calculate`` calls, where the model call is 99.8 %
of the time at 1000 atoms. This times only that call (energy, forces and stress: the
``forward_backward`` stage of both calculators) on one Si cell, interleaved with an A/A
control (a second ``MACECalculator`` on the same file), and prints median CPU and user
time ratios over mace and the 10th / 50th / 90th percentiles of the per-round ratios.

``--profile N`` then runs N more interleaved rounds of one call per side under
``torch.profiler`` and prints the ops whose median self CPU time per call differs most
from mace's, for pansim and for the control side by side: a difference that the
control shows too is noise, not pansim's adapter.

Usage (from the repository root, on a quiet machine)::

    python -m benchmarks.model_call [--atoms 1000] [--repeats 25] [--dtype float64]
        [--profile 9] [--top 15] [--no-write]

It checks first that pansim and mace give the same energy, forces and stress on the
cell, and writes ``results/bench/model_call/model_call.json`` and ``.md`` (machine,
versions, date) unless ``--no-write``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/model_call.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks import _common as common  # noqa: E402
from benchmarks import calculator as bench  # noqa: E402


def profile(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, dict[str, float]]:
    """Median over ``rounds`` interleaved rounds of each op's self CPU ms per call, per side.

    An op missing from a round counts as 0 ms in that round.
    """
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in calls}
    for order in common.shuffled_rounds(calls, rounds):
        for name in order:
            us = common.op_times(calls[name])
            samples[name].append({op: t / 1e3 for op, t in us.items()})
    out = {}
    for name, per_round in samples.items():
        ops = set().union(*per_round)
        out[name] = {op: float(np.median([r.get(op, 0.0) for r in per_round])) for op in ops}
        out[name]["total"] = float(np.median([sum(r.values()) for r in per_round]))
    return out


def profile_table(ops: dict[str, dict[str, float]], top: int) -> str:
    """Markdown: the ops whose median differs most from mace's, pansim and control columns."""
    mace, pansim, control = ops["mace"], ops["pansim"], ops[bench.CONTROL]

    def diff(side: dict[str, float], op: str) -> float:
        return side.get(op, 0.0) - mace.get(op, 0.0)

    names = set(mace) | set(pansim) | set(control)
    names.discard("total")
    lines = [
        "| op (self CPU ms per call, median) | mace | pansim | pansim - mace "
        "| control | control - mace |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for op in sorted(names, key=lambda k: -abs(diff(pansim, k)))[:top] + ["total"]:
        lines.append(
            f"| {op} | {mace.get(op, 0.0):.2f} | {pansim.get(op, 0.0):.2f} | "
            f"{diff(pansim, op):+.2f} | {control.get(op, 0.0):.2f} | {diff(control, op):+.2f} |"
        )
    return "\n".join(lines)


def ratios(samples: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, Any]]:
    """Median CPU seconds per side; CPU and user ratios over mace; per-round percentiles."""
    medians = {name: common.medians(s) for name, s in samples.items()}
    out = {}
    for name, m in medians.items():
        rounds = np.array(samples[name]["cpu"]) / np.array(samples["mace"]["cpu"])
        out[name] = {
            "cpu_s": m["cpu"],
            "cpu_ratio": m["cpu"] / medians["mace"]["cpu"],
            "user_ratio": m["user"] / medians["mace"]["user"],
            "round_ratio_p10_p50_p90": [float(x) for x in np.percentile(rounds, [10, 50, 90])],
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    """The ratio lines, the agreement of the sides and, with ``--profile``, the op table."""
    lines = [
        f"{result['atoms']} atoms, {result['dtype']}, {result['threads']} thread(s), "
        f"{result['repeats']} rounds",
        "",
        "```",
    ]
    for name, r in result["ratios"].items():
        lines.append(
            f"{name:>13}: {r['cpu_s']:.4f} s CPU; over mace: CPU {r['cpu_ratio']:.4f}, user "
            f"{r['user_ratio']:.4f}; per round p10/p50/p90 "
            + "/".join(f"{x:.4f}" for x in r["round_ratio_p10_p50_p90"])
        )
    lines.append("```")
    agree = ", ".join(f"{k} {v:.1e}" for k, v in result["agreement"].items())
    lines += ["", f"max |pansim - mace| (same weights): {agree}"]
    if result.get("profile_ms_per_call") is not None:
        lines += [
            "",
            f"profile, {result['profile_rounds']} interleaved rounds of one call per side",
            "",
            profile_table(result["profile_ms_per_call"], result["top"]),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time the three model calls; print, write and return medians and ratios."""
    p = common.parser(__doc__)
    p.set_defaults(out_dir=common.OUT_DIR / "model_call", name="model_call")
    p.add_argument("--atoms", type=int, default=1000)
    p.add_argument("--rounds", dest="repeats", type=int, help="the same as --repeats")
    p.add_argument("--dtype", choices=sorted(common.DTYPES), default="float64")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="then profile N interleaved rounds (per-op medians)")  # fmt: skip
    p.add_argument("--top", type=int, default=15, help="ops listed by --profile")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 25
    args.backbone = common.resolve_backbone(args)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = common.build("baseline", args.dtype, args.hyperparameters)
    atoms = common.si_cell(args.atoms)
    with tempfile.TemporaryDirectory() as directory:
        pan, mace, again = bench.calculators(model, args.dtype, directory, control=True)
        # both sides must compute the same thing, or the timing compares nothing
        agreement = bench.agreement(pan, mace, atoms)
        calls = {
            "pansim": bench.pansim_stages(pan, atoms)["forward_backward"],
            "mace": bench.mace_stages(mace, atoms)["forward_backward"],
            bench.CONTROL: bench.mace_stages(again, atoms)["forward_backward"],
        }
        samples = common.interleaved(calls, args.repeats)
        ops = profile(calls, args.profile) if args.profile > 0 else None
    return common.finish(
        "model_call", args, started, markdown,
        atoms=len(atoms),
        dtype=args.dtype,
        agreement=agreement,
        ratios=ratios(samples),
        profile_rounds=args.profile,
        top=args.top,
        profile_ms_per_call=ops,
    )  # fmt: skip


if __name__ == "__main__":
    main()
