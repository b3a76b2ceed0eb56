#!/usr/bin/env python
r"""Test force MAE per sampling route (strain, thermal, vacancy, contact, liquid) per model.

Usage (from the repository root)::

    python scripts/errors_by_route.py --system si \
        --model baseline=results/training/si/baseline-seed0/best_model.safetensors \
        --model "pan+pgs=results/training/si/pan+pgs-seed0/best_model.safetensors" \
        --out results/pilot/si/errors_by_route.md

Reads ``data/<system>/test.extxyz`` (the ``route`` of each configuration is in its
``info``, see ``data/README.md``), evaluates every model the way ``pansim eval`` does
(:func:`pansim.training.report.evaluate_file`) and writes a Markdown table of force MAE
(meV/A) per route, with the number of configurations, and prints it.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from ase.io import read

from pansim.files import write_text_atomic
from pansim.training.evaluate import metrics

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)
from lab.errors import evaluate  # noqa: E402


def route_force_mae(path: Path, routes: list[str], model: str, keys) -> dict[str, float]:
    """Force MAE (meV/A) of ``model`` on ``path``, per route and over all ('all')."""
    result, samples, preds = evaluate(model, path, keys)
    by_route = defaultdict(lambda: ([], []))
    for route, sample, pred in zip(routes, samples, preds, strict=True):
        by_route[route][0].append(sample)
        by_route[route][1].append(pred)
    mae = {route: metrics(*pair)["forces"]["mae"] for route, pair in by_route.items()}
    return {"all": result["forces"]["mae"], **mae}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--energy-key", default="REF_energy")
    parser.add_argument("--forces-key", default="REF_forces")
    parser.add_argument("--stress-key", default="REF_stress")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    models = {}
    for item in args.model:
        label, eq, path = item.partition("=")
        if not eq:
            parser.error(f"--model {item!r}: expected LABEL=PATH")
        models[label] = path
    path = ROOT / "data" / args.system / "test.extxyz"
    routes = [atoms.info.get("route", "unknown") for atoms in read(path, ":")]
    counts = defaultdict(int, all=len(routes))
    for route in routes:
        counts[route] += 1
    keys = (args.energy_key, args.forces_key, args.stress_key)
    mae = {label: route_force_mae(path, routes, model, keys) for label, model in models.items()}
    lines = [
        f"Test force MAE (meV/A) per sampling route, `data/{args.system}/test.extxyz`.",
        "",
        "| route | configurations | " + " | ".join(models) + " |",
        "| --- | ---: |" + " ---: |" * len(models),
    ]
    for route in sorted(counts, key=lambda r: (r != "all", r)):
        values = " | ".join(f"{mae[label][route]:.1f}" for label in models)
        lines.append(f"| {route} | {counts[route]} | {values} |")
    lines += ["", "Models:", *(f"- {label}: `{path}`" for label, path in models.items())]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
