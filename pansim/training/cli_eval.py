"""``pansim eval MODEL DATA [--out DIR]``: errors of a model on a labelled extended-XYZ file.

MODEL is a saved model file or a registered pretrained name. Prints MAE and
RMSE of energy per atom (meV/atom), forces (meV/A, also per element) and
stress (GPa); with ``--out`` writes ``metrics.json`` and parity plots (PNG).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval`` arguments."""
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("model", help="model file or registered model name")
    parser.add_argument("data", help="labelled extended-XYZ file")
    parser.add_argument("--out", default=None, help="folder for metrics.json and parity plots")
    parser.add_argument("--energy-key", default="REF_energy")
    parser.add_argument("--forces-key", default="REF_forces")
    parser.add_argument("--stress-key", default="REF_stress")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    from pansim.cli_common import add_runtime_arguments

    add_runtime_arguments(parser, device=False, dtype=False)  # --threads
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run(args: argparse.Namespace) -> int:
    """Evaluate; exit code 0, or 2 on bad input."""
    from pansim.model_io import load_model
    from pansim.pretrained import model_file
    from pansim.training.data import DataError
    from pansim.training.report import evaluate_file, format_table, write_report

    keys = (args.energy_key, args.forces_key, args.stress_key)
    try:
        model = load_model(model_file(args.model))  # in its saved dtype
        result, samples, preds = evaluate_file(model, args.data, keys, args.batch_size, args.device)
    except (DataError, FileNotFoundError, KeyError, ValueError) as err:
        print(f"pansim eval: error: {err}", file=sys.stderr)
        return 2
    result = {"model": args.model, "data": args.data, **result}
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    if args.out:
        for path in write_report(result, samples, preds, args.out):
            print(f"wrote {path}")
    return 0
