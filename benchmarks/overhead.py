"""Overhead of PAN, PGS and PAN+PGS over the baseline MACE: FLOPs and wall time.

docs/spec.md §1.3, invariant 5.

Energy + forces + stress of diamond Si cells (about 64, 512 and 4096 atoms,
a = 5.47 A, rattled 0.02 A, r_max = 5 A), in float32 and float64, every
variant at identical hyperparameters (``pansim.backbones.mace.DEFAULTS`` unless
``--hyperparameters``) and identical backbone weights (same seed).

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` over the whole
call (forward and the backward pass for forces and stress). It counts
matmul-like operations only (mm, bmm, addmm, einsum lowered to them,
convolutions): elementwise work (Bessel functions, envelopes, tanh, the ES
basis, scatter sums) is not counted, so the wall and CPU time ratios, medians
of interleaved rounds, are the measure of what PAN/PGS cost in practice
(``--repeats`` rounds at 512 atoms, proportionally more for smaller, cheaper
cells, at most 20, and proportionally fewer for larger cells, down to
``--min-rounds``: 3 at 4096 atoms by default). The FLOP-counting call doubles as
the warm-up of each variant. Freed memory is kept in the process as
``PANCalculator(keep_memory=True)`` does (``--no-keep-memory``: glibc as it
is). ``--shipped``: the backbone size of the shipped models
(configs/pretrained/base/si.yaml) instead of ``DEFAULTS``. Target (issue 6):
pan+pgs at most 1.05 in FLOPs and in wall time.

Each cell size and precision runs in a fresh process, so memory kept from one
(``keep_memory``) neither crowds nor fragments the next. Before a size starts
its peak memory is estimated from the smaller sizes of the same precision
(the growth of the peak per atom between the last two, :func:`memory_model`);
a size whose estimate exceeds ``--memory-fraction`` of the memory available
(MemAvailable) is skipped with that reason in the table instead of being killed
by the kernel. Cells of at least ``--separate-from`` atoms (default 2048) run
every variant in its own process per round instead (:func:`run_separate`):
four models side by side would not fit in memory there.

Usage (from the repository root)::

    python -m benchmarks.overhead [--quick] [--sizes 64 512 4096] [--dtypes float32 float64]
        [--repeats 10] [--min-rounds 3] [--threads 1] [--shipped]
        [--hyperparameters '{"num_channels": 128}'] [--name overhead-shipped]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/overhead.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks import _common as common  # noqa: E402
from pansim.variants import VARIANTS  # noqa: E402

FULL = {"sizes": [64, 512, 4096], "dtypes": ["float32", "float64"], "repeats": 10,
        "min_rounds": 3}  # fmt: skip
QUICK = {"sizes": [64, 512], "dtypes": ["float32", "float64"], "repeats": 3, "min_rounds": 3}
TARGET = 1.05


def graph(atoms, dtype: str) -> dict[str, torch.Tensor]:
    """The model input of one structure (``pansim.graph``) in ``dtype``."""
    from pansim.graph import atoms_to_graph, collate

    return collate([atoms_to_graph(atoms, [14], common.R_MAX)], dtype=common.DTYPES[dtype])


def call(model: torch.nn.Module, data: dict[str, torch.Tensor]) -> Any:
    """Energy, forces and stress in one model call."""
    return model(dict(data), compute_force=True, compute_stress=True)


def count_flops(model: torch.nn.Module, data: dict[str, torch.Tensor]) -> int:
    """Matmul-like FLOPs of one energy + forces + stress call (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        call(model, data)
    return int(counter.get_total_flops())


def measure(
    n_atoms: int,
    dtype: str,
    repeats: int,
    hyperparameters: dict,
    variants: tuple[str, ...] | list[str] = VARIANTS,
    max_rounds: int = 20,
    min_rounds: int | None = None,
) -> list[dict[str, Any]]:
    """One row per variant for one cell size and dtype (ratios over the baseline)."""
    atoms = common.si_cell(n_atoms)
    data = graph(atoms, dtype)
    variants = ("baseline",) + tuple(v for v in variants if v != "baseline")
    models = {v: common.build(v, dtype, hyperparameters) for v in variants}
    flops = {v: count_flops(m, data) for v, m in models.items()}  # also the warm-up
    calls = {v: (lambda m=m: call(m, data)) for v, m in models.items()}
    n_rounds = common.rounds(repeats, len(atoms), 512, cap=max_rounds, floor=min_rounds)
    times = {v: common.medians(s) for v, s in common.interleaved(calls, n_rounds, 0).items()}
    base_f, base_t = flops["baseline"], times["baseline"]
    return [
        {
            "atoms": len(atoms),
            "edges": int(data["edge_index"].shape[1]),
            "dtype": dtype,
            "variant": v,
            "rounds": n_rounds,
            "parameters": sum(p.numel() for p in models[v].parameters()),
            "gflops": flops[v] / 1e9,
            "flops_ratio": flops[v] / base_f,
            "median_wall_ms": 1e3 * times[v]["wall"],
            "wall_ratio": times[v]["wall"] / base_t["wall"],
            "median_cpu_ms": 1e3 * times[v]["cpu"],
            "cpu_ratio": times[v]["cpu"] / base_t["cpu"],
            "user_ratio": _ratio(times[v]["user"], base_t["user"]),
        }
        for v in variants
    ]


COLUMNS = [
    ("atoms", "atoms", "d"),
    ("dtype", "dtype", ""),
    ("variant", "variant", ""),
    ("rounds", "rounds", "d"),
    ("gflops", "GFLOPs", ".3f"),
    ("flops_ratio", "FLOPs ratio", ".4f"),
    ("median_wall_ms", "wall (ms)", ".1f"),
    ("wall_ratio", "wall ratio", ".3f"),
    ("cpu_ratio", "CPU ratio", ".3f"),
    ("user_ratio", "user CPU ratio", ".3f"),
]


def _child(args) -> dict[str, Any]:
    """Measure one size and precision in this process; print rows and memory as JSON."""
    setup = common.memory_mb()["rss"]
    rows = measure(
        args.sizes[0], args.dtypes[0], args.repeats, args.hyperparameters, args.variants,
        args.max_rounds, args.min_rounds,
    )  # fmt: skip
    memory = {"atoms": rows[0]["atoms"], "rss_setup_mb": setup,
              "rss_peak_mb": common.memory_mb()["peak"]}  # fmt: skip
    for row in rows:
        row["rss_peak_mb"] = memory["rss_peak_mb"]
    result = {"rows": rows, "memory": memory}
    print(json.dumps(result))
    return result


def memory_model(measured: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Peak memory of the measured sizes as ``common.predicted_peak_mb`` takes it.

    With two sizes the per-atom memory is the slope between their peaks (the four
    models, the FLOP counter and the interpreter do not grow with the cell); with one,
    everything above the set-up RSS counts as per-atom (an over-estimate).
    """
    if len(measured) < 2:
        return measured[-1] if measured else None
    a, b = measured[-2], measured[-1]
    slope = max(b["rss_peak_mb"] - a["rss_peak_mb"], 0.0) / (b["atoms"] - a["atoms"])
    return {**b, "rss_setup_mb": b["rss_peak_mb"] - slope * b["atoms"]}


def _single(args) -> dict[str, Any]:
    """One variant in this process: warm-up (the FLOP count if asked), then one timed call."""
    atoms = common.si_cell(args.sizes[0])
    data = graph(atoms, args.dtypes[0])
    model = common.build(args.variants[0], args.dtypes[0], args.hyperparameters)
    flops = count_flops(model, data) if args.count_flops else None
    if flops is None:
        call(model, data)  # warm-up
    (sample,) = common.interleaved({"call": lambda: call(model, data)}, 1, warmup=0).values()
    result = {
        "atoms": len(atoms),
        "edges": int(data["edge_index"].shape[1]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops": flops,
        "wall": sample["wall"][0],
        "cpu": sample["cpu"][0],
        "user": sample["user"][0],
        "rss_peak_mb": common.memory_mb()["peak"],
    }
    print(json.dumps(result))
    return result


def run_separate(n_atoms: int, dtype: str, args) -> tuple[dict[str, Any] | None, str | None]:
    """Large cells: every variant in its own process per round, rounds in shuffled order.

    Four models side by side in one process hold four heaps of kept memory (about 11 MiB
    per atom for the DEFAULTS backbone in float64) and push a 4096-atom cell out of a
    23 GB machine; one process per call keeps the memory of one. The order of the
    variants is shuffled in every round, so slow drifts of the machine cancel as in
    :func:`common.interleaved`.
    """
    variants = ["baseline"] + [v for v in args.variants if v != "baseline"]
    n_rounds = max(args.min_rounds or 3, 1)
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for k, order in enumerate(common.shuffled_rounds(variants, n_rounds)):
        for variant in order:
            extra = ["--single", "--variants", variant] + (["--count-flops"] if k == 0 else [])
            out, error = run_child(n_atoms, dtype, args, extra)
            if out is None:
                return None, f"{variant}, round {k + 1}: {error}"
            samples[variant].append(out)
    median = {
        v: {key: statistics.median(s[key] for s in samples[v]) for key in ("wall", "cpu", "user")}
        for v in variants
    }
    first = {v: samples[v][0] for v in variants}
    base = first["baseline"]
    rows = [
        {
            "atoms": base["atoms"],
            "edges": base["edges"],
            "dtype": dtype,
            "variant": v,
            "rounds": n_rounds,
            "mode": "one process per variant and round",
            "parameters": first[v]["parameters"],
            "gflops": first[v]["flops"] / 1e9,
            "flops_ratio": first[v]["flops"] / base["flops"],
            "median_wall_ms": 1e3 * median[v]["wall"],
            "wall_ratio": median[v]["wall"] / median["baseline"]["wall"],
            "median_cpu_ms": 1e3 * median[v]["cpu"],
            "cpu_ratio": median[v]["cpu"] / median["baseline"]["cpu"],
            "user_ratio": _ratio(median[v]["user"], median["baseline"]["user"]),
            "rss_peak_mb": max(s["rss_peak_mb"] for s in samples[v]),
        }
        for v in variants
    ]
    peak = max(r["rss_peak_mb"] for r in rows)
    return {"rows": rows, "memory": {"atoms": base["atoms"], "rss_setup_mb": 0.0,
                                     "rss_peak_mb": peak}}, None  # fmt: skip


def run_child(
    n_atoms: int, dtype: str, args, extra: list[str] | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """One size and precision in a fresh process: ``(result, None)`` or ``(None, why not)``."""
    command = [sys.executable, "-m", "benchmarks.overhead", "--child", "--no-write"]
    command += ["--sizes", str(n_atoms), "--dtypes", dtype, "--repeats", str(args.repeats)]
    command += ["--max-rounds", str(args.max_rounds), "--threads", str(args.threads)]
    command += ["--min-rounds", str(args.min_rounds)] if args.min_rounds is not None else []
    command += ["--hyperparameters", json.dumps(args.hyperparameters)]
    command += [] if args.keep_memory else ["--no-keep-memory"]
    command += extra if extra else ["--variants", *args.variants]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(command, cwd=common.ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        killed = " (killed: out of memory?)" if done.returncode == -9 else ""
        return None, f"exit code {done.returncode}{killed}: {tail[0][:200]}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]), None


def _ratio(value: float, base: float) -> float | None:
    """``value / base`` of user times; None below 0.5 s (the clock ticks every 10 ms)."""
    return value / base if base >= 0.5 else None


def _met(rows: list[dict[str, Any]], key: str) -> bool | None:
    """Whether every pan+pgs row meets the target (None without pan+pgs rows)."""
    if rows[0].get(key) is None:
        return None
    return all(r[key] <= TARGET for r in rows)


def _word(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[met]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write JSON and Markdown; return the result."""
    p = common.parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="target atom counts")
    p.add_argument("--dtypes", nargs="+", choices=sorted(common.DTYPES), default=None)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument(
        "--min-rounds", type=int, default=None,
        help="rounds of cells larger than 512 atoms: proportionally fewer, down to this",
    )  # fmt: skip
    p.add_argument(
        "--no-keep-memory", dest="keep_memory", action="store_false",
        help="glibc malloc as it is (default: keep freed memory, as PANCalculator does)",
    )  # fmt: skip
    p.add_argument(
        "--memory-fraction", type=float, default=0.85,
        help="skip a size whose estimated peak memory exceeds this share of MemAvailable",
    )  # fmt: skip
    p.add_argument(
        "--separate-from", type=int, default=2048,
        help="cells of at least this many atoms: one process per variant and round",
    )  # fmt: skip
    # internal, for the child processes: the first --sizes / --dtypes only, JSON on stdout
    for flag in ("--child", "--single", "--count-flops"):
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key in ("sizes", "dtypes", "repeats", "min_rounds"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    args.backbone = common.resolve_backbone(args)
    if args.keep_memory:
        from pansim._memory import keep_freed_memory

        args.keep_memory = keep_freed_memory()
    torch.set_num_threads(args.threads)
    if args.child:
        return _single(args) if args.single else _child(args)
    started = time.perf_counter()
    rows, skipped = [], []
    for dtype in args.dtypes:
        measured: list[dict[str, Any]] = []
        for n in args.sizes:
            n_atoms = len(common.si_cell(n, rattle=0.0))
            if n_atoms >= args.separate_from:
                child, error = run_separate(n, dtype, args)
            else:
                why = common.too_big(memory_model(measured), n, args.memory_fraction)
                child, error = (None, why) if why else run_child(n, dtype, args)
            if child is None:
                skipped.append({"atoms": n_atoms, "dtype": dtype, "why": error})
                print(f"{n} atoms {dtype}: skipped, {error}", file=sys.stderr)
                continue
            measured.append(child["memory"])
            rows.extend(child["rows"])
            r = rows[-1]
            line = f"FLOPs {r['flops_ratio']:.4f}, wall {r['wall_ratio']:.3f}"
            print(f"{r['atoms']} atoms {dtype}: pan+pgs {line}", file=sys.stderr)
    rows.sort(key=lambda r: (r["atoms"], r["dtype"]))
    full = [r for r in rows if r["variant"] == "pan+pgs"] or [{"flops_ratio": None}]
    return common.finish(
        "overhead", args, started, markdown,
        structure="diamond Si, a = 5.47 A, rattled 0.02 A, r_max 5 A",
        computed="energy + forces + stress, one model call",
        flop_counter="torch.utils.flop_counter (matmul-like ops only, forward + backward)",
        keep_memory=args.keep_memory,
        min_rounds=args.min_rounds,
        rows=rows,
        skipped=skipped,
        target=f"pan+pgs flops_ratio and wall_ratio <= {TARGET}",
        target_met_flops=_met(full, "flops_ratio"),
        target_met_wall=_met(full, "wall_ratio"),
        target_met_cpu=_met(full, "cpu_ratio"),
    )  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    """The table and its notes, from a result."""
    full = [r for r in result["rows"] if r["variant"] == "pan+pgs"] or [{"flops_ratio": None}]
    met = {key: _word(_met(full, f"{key}_ratio")) for key in ("flops", "wall", "cpu")}
    note = (
        f"Energy + forces + stress, backbone {result.get('backbone', common.DEFAULT_BACKBONE)}"
        f", medians of interleaved rounds ({result['repeats']} at 512 atoms, more for smaller "
        f"cells, at most {result.get('max_rounds', 20)}"
        + (
            f", fewer for larger cells, at least {result['min_rounds']}"
            if result.get("min_rounds") is not None
            else ""
        )
        + f"), {common.threads(result)} torch thread(s)"
        + {
            True: ", freed memory kept (as PANCalculator's keep_memory=True)",
            False: ", glibc malloc as it is",
        }.get(result.get("keep_memory"), "")
        + ". FLOPs: matmul-like only "
        f"(torch.utils.flop_counter). Target pan+pgs <= {TARGET}: FLOPs {met['flops']}, "
        f"wall time {met['wall']}, CPU time {met['cpu']}. On a shared machine the CPU time "
        f"is the steadier measure; few rounds leave several per cent of noise. User CPU "
        f"ratio: without the kernel's share (page faults, zeroing fresh memory), for calls "
        f"of at least 0.5 s."
    )
    separate = sorted({(r["atoms"], r["rounds"]) for r in result["rows"] if r.get("mode")})
    for atoms, rounds in separate:
        note += (
            f" {atoms} atoms: one process per variant and round ({rounds} rounds, variants in "
            f"shuffled order; four models in one process would not fit in memory)."
        )
    for skip in result.get("skipped", []):
        note += f" Not measured: {skip['atoms']} atoms {skip['dtype']}: {skip['why']}."
    return common.with_note(result["rows"], COLUMNS, note)


if __name__ == "__main__":
    main()
