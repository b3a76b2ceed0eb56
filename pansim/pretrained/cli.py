"""``pansim models``: list the registered pretrained models."""

from __future__ import annotations

import argparse


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``pansim models``."""
    parser.add_argument("name", nargs="?", help="show the model card of this model")


def run(args: argparse.Namespace) -> int:
    """Print the registry, or one model card."""
    from pansim.pretrained import default_model, list_models, model_card, model_entry

    if args.name:
        print(model_card(args.name) or f"{args.name}: no model card")
        return 0
    names = list_models()
    if not names:
        print("no pretrained models registered yet")
        return 0
    default = default_model()
    print(f"{'name':<22}{'system':<14}{'variant':<10}baseline")
    for name in names:
        e = model_entry(name)
        mark = " (default)" if name == default else ""
        print(
            f"{name:<22}{e.get('system', ''):<14}{e.get('variant', ''):<10}"
            f"{e.get('baseline', '')}{mark}"
        )
    return 0
