"""``pansim models``: list the registered pretrained models."""

from __future__ import annotations

import argparse
import sys


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``pansim models``."""
    parser.add_argument("name", nargs="?", help="show the model card of this model")


def run(args: argparse.Namespace) -> int:
    """Print the registry, or one model card."""
    from pansim.pretrained import UnknownModelError, list_models, model_card

    if args.name:
        try:
            print(model_card(args.name) or f"{args.name}: no model card")
        except UnknownModelError as err:
            print(f"pansim models: {err}", file=sys.stderr)
            return 2
        return 0
    names = list_models()
    if not names:
        print("no pretrained models registered yet")
        return 0
    print(_table(names))
    return 0


def _table(names: list[str]) -> str:
    """One line per model: name, system, variant, baseline, file status, default mark.

    Columns are as wide as their longest entry plus two spaces.
    """
    from pansim.pretrained import default_model, get_model_path, model_entry

    default = default_model()
    rows = [("name", "system", "variant", "baseline", "file")]
    for name in names:
        e = model_entry(name)
        found = "ok" if get_model_path(name).exists() else "MISSING"
        mark = " (default)" if name == default else ""
        rows.append(
            (name, e.get("system", ""), e.get("variant", ""), e.get("baseline", ""), found + mark)
        )
    widths = [max(len(row[k]) for row in rows) + 2 for k in range(4)]
    return "\n".join(
        "".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=False)) + row[-1]
        for row in rows
    )
