"""Overhead of PAN, PGS and PAN+PGS over the baseline MACE: FLOPs and wall time (SPEC invariant 5).

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

Usage (from the repository root)::

    python -m benchmarks.overhead [--quick] [--sizes 64 512 4096] [--dtypes float32 float64]
        [--repeats 10] [--min-rounds 3] [--threads 1] [--shipped]
        [--hyperparameters '{"num_channels": 128}'] [--name overhead-shipped]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/overhead.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks import _common as common  # noqa: E402

VARIANTS = ("baseline", "pan", "pgs", "pan+pgs")
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
]


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
    started = time.perf_counter()
    rows = []
    for n in args.sizes:
        for dtype in args.dtypes:
            rows.extend(
                measure(
                    n,
                    dtype,
                    args.repeats,
                    args.hyperparameters,
                    args.variants,
                    args.max_rounds,
                    args.min_rounds,
                )  # fmt: skip
            )
            r = rows[-1]
            line = f"FLOPs {r['flops_ratio']:.4f}, wall {r['wall_ratio']:.3f}"
            print(f"{r['atoms']} atoms {dtype}: pan+pgs {line}", file=sys.stderr)
    full = [r for r in rows if r["variant"] == "pan+pgs"] or [{"flops_ratio": None}]
    return common.finish(
        "overhead", args, started, markdown,
        structure="diamond Si, a = 5.47 A, rattled 0.02 A, r_max 5 A",
        computed="energy + forces + stress, one model call",
        flop_counter="torch.utils.flop_counter (matmul-like ops only, forward + backward)",
        keep_memory=args.keep_memory,
        min_rounds=args.min_rounds,
        rows=rows,
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
        f"is the steadier measure; few rounds leave several per cent of noise."
    )
    return common.with_note(result["rows"], COLUMNS, note)


if __name__ == "__main__":
    main()
