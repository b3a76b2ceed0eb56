"""The ``pansim`` command line: a thin dispatcher over one registry of subcommands.

Each subcommand lives in its own module, which defines

- ``register(parser: argparse.ArgumentParser) -> None``: add its arguments;
- ``run(args: argparse.Namespace) -> int``: call library code, print, return an exit code.

Modules are imported only when their subcommand runs, so ``pansim --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: subcommand name -> (module path, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("pansim.data.cli", "sample, label and inspect reference datasets"),
    "train": ("pansim.training.cli_train", "train a model from a YAML config"),
    "eval": ("pansim.training.cli_eval", "errors of a model on a labelled file"),
    "models": ("pansim.pretrained.cli", "list the registered pretrained models"),
    "eos": ("workflows.eos", "equation of state (Birch-Murnaghan)"),
    "elastic": ("workflows.elastic", "elastic constants from stress-strain"),
    "phonons": ("workflows.phonons", "phonons with phonopy"),
    "md": ("workflows.md", "molecular dynamics (NVE, NVT, NPT) and analysis"),
    "repulsion": ("workflows.repulsion", "short-range repulsion scan"),
    "vibrations": ("workflows.vibrations", "harmonic vibrations of a molecule"),
    "validate": ("workflows.validate", "all workflows against DFT and the baseline"),
    "export": ("pansim.export", "export a model for LAMMPS"),
    "learn": ("pansim.learn.cli", "active learning: explore, select, label, retrain"),
}


def _load(name: str):
    module_path, _ = COMMANDS[name]
    return importlib.import_module(module_path)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="pansim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, (_, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if name == chosen:
            _load(name).register(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pansim`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(_load(args.command).run(args) or 0)
    except BrokenPipeError:  # output piped into `head` & co.: stop quietly, like coreutils
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
