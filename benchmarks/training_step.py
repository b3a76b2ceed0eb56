"""Seconds per training step: float64 against float32, per variant (issue 23's compute).

The converged plan of issue 23 is compute-bound (``results/converged/report.md``,
"Compute"): every run is float64, batch 4, one thread. This times
:meth:`pansim.training.trainer.Trainer.train_step` (forward, forces and stress by
autograd, the loss, its backward through the force graph, the optimizer step) of the
converged configs of one system, as configured and in float32, interleaved rounds on
the same batch, and prints the median CPU and wall seconds per step and the float32 /
float64 ratio per variant. A choice of precision for new runs is an accuracy question
too; this measures only the cost.

Usage (from the repository root)::

    python -m benchmarks.training_step [--system si] [--variants baseline pan+pgs]
        [--repeats 15] [--no-write]

Writes ``results/bench/training_step/training_step_<system>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks._common import OUT_DIR, ROOT, interleaved, machine, versions, write

DTYPES = ("float64", "float32")


def trainers(system: str, variants: list[str], scratch: Path) -> dict:
    """One Trainer per (variant, dtype), built from ``configs/converged/<system>``."""
    from pansim.training.config import load_config
    from pansim.training.trainer import Trainer

    out = {}
    for variant in variants:
        path = ROOT / "configs" / "converged" / system / f"{variant}-seed0.yaml"
        for dtype in DTYPES:
            overrides = {"out_dir": str(scratch / f"{variant}-{dtype}"), "progress": False,
                         "test_file": None, "dtype": dtype}  # fmt: skip
            out[(variant, dtype)] = Trainer(load_config(path, overrides))
    return out


def main(argv: list[str] | None = None) -> int:
    """Time, print, write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="si")
    parser.add_argument("--variants", nargs="+", default=["baseline", "pan+pgs"])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR / "training_step")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        built = trainers(args.system, args.variants, Path(scratch))
        batch = {key: t._batches(0)[0] for key, t in built.items()}
        calls = {key: (lambda t=t, b=batch[key]: t.train_step(b)) for key, t in built.items()}
        samples = interleaved(calls, args.repeats, warmup=2)
        batch_size = next(iter(built.values())).config.batch_size
    rows, table = [], []
    for variant in args.variants:
        med = {d: {k: statistics.median(samples[(variant, d)][k]) for k in ("cpu", "wall")}
               for d in DTYPES}  # fmt: skip
        ratio = med["float32"]["cpu"] / med["float64"]["cpu"]
        rows.append({"variant": variant, "median_s": med, "cpu_ratio_float32": ratio})
        table.append(
            f"| {variant} | {med['float64']['cpu']:.3f} | {med['float32']['cpu']:.3f} | "
            f"{ratio:.2f} | {med['float64']['wall']:.3f} | {med['float32']['wall']:.3f} |"
        )
    info = machine()
    markdown = "\n".join([
        f"Training step of `configs/converged/{args.system}/<variant>-seed0.yaml` (batch "
        f"{batch_size}), median of {args.repeats} interleaved rounds after 2 warm-up rounds; "
        f"{info['cpu']}, torch threads {info['torch_threads']}, load average "
        f"{info['load_average_1_5_15']} (CPU seconds are less disturbed by other "
        "processes than wall seconds).",
        "",
        "| variant | float64 CPU s/step | float32 CPU s/step | float32 / float64 | "
        "float64 wall s | float32 wall s |",
        "| --- | --- | --- | --- | --- | --- |",
        *table,
    ])  # fmt: skip
    result = {"benchmark": "training_step", "name": f"training_step_{args.system}",
              "preset": "full", "machine": info, "versions": versions(),
              "repeats": args.repeats, "rows": rows, "markdown": markdown}  # fmt: skip
    write(result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
