#!/usr/bin/env python
r"""Test force MAE per sampling route (strain, thermal, vacancy, contact, liquid) per model.

Usage (from the repository root)::

    python scripts/errors_by_route.py --system si \
        --model baseline=results/training/si/baseline-seed0/best_model.safetensors \
        --model "pan+pgs=results/training/si/pan+pgs-seed0/best_model.safetensors" \
        --out results/pilot/si/errors_by_route.md

Reads ``data/<system>/test.extxyz`` (the ``route`` of each configuration is in its
``info``, see ``data/README.md``), evaluates every model with :class:`PANCalculator`
and writes a Markdown table of force MAE (meV/A) per route, with the number of
configurations, and prints it.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from ase.io import read

from pansim import PANCalculator
from pansim._io import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]


def route_force_mae(frames, model: str, forces_key: str) -> dict[str, float]:
    """Force MAE (meV/A) of ``model`` over ``frames``, per route and over all ('all')."""
    calc = PANCalculator(model=model)
    errors = defaultdict(list)
    for atoms in frames:
        if forces_key not in atoms.arrays:
            raise SystemExit(f"a test configuration has no {forces_key!r} forces")
        copy = atoms.copy()
        copy.calc = calc
        error = np.abs(copy.get_forces() - atoms.arrays[forces_key]).ravel()
        errors[atoms.info.get("route", "unknown")].append(error)
        errors["all"].append(error)
    return {route: 1000.0 * float(np.concatenate(e).mean()) for route, e in errors.items()}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--forces-key", default="REF_forces")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    models = {}
    for item in args.model:
        label, eq, path = item.partition("=")
        if not eq:
            parser.error(f"--model {item!r}: expected LABEL=PATH")
        models[label] = path
    frames = read(ROOT / "data" / args.system / "test.extxyz", ":")
    counts = defaultdict(int)
    for atoms in frames:
        counts[atoms.info.get("route", "unknown")] += 1
    counts["all"] = len(frames)
    mae = {label: route_force_mae(frames, path, args.forces_key) for label, path in models.items()}
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
