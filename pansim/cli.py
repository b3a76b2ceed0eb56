"""The ``pansim`` command line: a thin dispatcher over one registry of subcommands.

Each subcommand lives in its own module, which defines

- ``register(parser: argparse.ArgumentParser) -> None``: add its arguments;
- ``run(args: argparse.Namespace) -> int``: call library code, print, return an exit code.

Modules are imported only when their subcommand runs, so ``pansim --help`` is fast.
A subcommand runs with freed memory kept in the process (:func:`pansim.keep_freed_memory`,
glibc only), which library users get only by asking (``PANCalculator(keep_memory=True)``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: pansim's own subcommands: name -> (module path, one-line help); other packages
#: (``workflows``) add theirs through :mod:`pansim.commands`
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("pansim.data.cli", "sample, label and inspect reference datasets"),
    "train": ("pansim.training.cli_train", "train a model from a YAML config"),
    "eval": ("pansim.training.cli_eval", "errors of a model on a labelled file"),
    "replay": ("pansim.training.cli_replay", "label structures with a source model (replay)"),
    "models": ("pansim.pretrained.cli", "list the registered pretrained models"),
    "export": ("pansim.export", "export a model for LAMMPS"),
    "graft": ("pansim.grafting", "add PAN / PGS to a trained MACE (mace-torch or pansim file)"),
}


def _commands() -> dict[str, tuple[str, str]]:
    """:data:`COMMANDS`, then the plugins' (:mod:`pansim.commands`), which never replace them."""
    from pansim.commands import module_summary, plugin_commands

    plugins = plugin_commands()
    extra = {n: (m, h or module_summary(m)) for n, (m, h) in plugins.items() if n not in COMMANDS}
    return {**COMMANDS, **extra}


def _load(name: str):
    module_path, _ = _commands()[name]
    return importlib.import_module(module_path)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser; only the chosen subcommand's module is imported."""
    from pansim import cli_common

    parser = argparse.ArgumentParser(
        prog="pansim",
        description=__doc__.splitlines()[0],
        epilog="Commands run with glibc malloc keeping freed memory for reuse (faster repeated "
        "evaluations of large cells; the process keeps its peak memory).",
    )
    parser.add_argument("--version", action="version", version=cli_common.version_text())
    cli_common.add_global_flags(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, (_, help_) in _commands().items():
        p = sub.add_parser(
            name,
            help=help_,
            description=f"pansim {name}: {help_}",
            formatter_class=cli_common.HelpFormatter,
        )
        cli_common.add_global_flags(p, top_level=False)
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
    from pansim._memory import keep_freed_memory
    from pansim.cli_common import run_command

    keep_freed_memory()  # the CLI's own process only (see the module docstring)
    try:
        return run_command(args.command, _load(args.command).run, args)
    except BrokenPipeError:  # output piped into `head` & co.: stop quietly, like coreutils
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
