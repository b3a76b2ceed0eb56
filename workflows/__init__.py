"""Validation workflows of pansim: one module per property, each usable from Python and the CLI.

- :mod:`workflows.eos`: relax, volume scan, Birch-Murnaghan fit;
- :mod:`workflows.elastic`: 6x6 elastic constants by stress-strain, VRH moduli, Born stability;
- :mod:`workflows.phonons`: phonopy finite displacements, bands, DOS, thermal properties;
- :mod:`workflows.md`: NVE/NVT/NPT with checkpoints, drift, temperature and RDF analysis;
- :mod:`workflows.repulsion`: compressed contacts and dimers against a reference curve;
- :mod:`workflows.validate`: all of them, model vs baseline vs DFT, in one report;
- :mod:`workflows.molecule_reference`: the molecule DFT reference properties, built
  with these same workflows on the DFT points.

Each takes an ``Atoms`` and any ASE calculator, never modifies the ``Atoms``,
and returns a dataclass with units and provenance (``to_json``/``from_dict``).
``workflows`` uses only pansim's public API; pansim never imports ``workflows``:
the ``pansim`` CLI finds these commands through the ``pansim.commands`` entry
points (:mod:`pansim.commands`).
"""

from collections.abc import Callable
from typing import Any

__all__ = ["COMMANDS", "load_calculator", "register_commands"]


def __getattr__(name: str) -> Any:
    """``load_calculator`` (:func:`workflows._common.load_calculator`), imported on first use."""
    if name == "load_calculator":
        from workflows._common import load_calculator

        return load_calculator
    raise AttributeError(f"module 'workflows' has no attribute {name!r}")


#: the ``pansim`` subcommands of this package: name -> module (``register``/``run``);
#: the same list as the ``pansim.commands`` entry points in setup.cfg
COMMANDS: dict[str, str] = {
    "single": "workflows.single",
    "relax": "workflows.relax_cli",
    "eos": "workflows.eos",
    "elastic": "workflows.elastic",
    "phonons": "workflows.phonons",
    "md": "workflows.md",
    "repulsion": "workflows.repulsion",
    "vibrations": "workflows.vibrations",
    "validate": "workflows.validate",
    "molref": "workflows.molecule_reference",
    "learn": "workflows.learn.cli",
}


def register_commands(register: Callable[[str, str, str], None]) -> None:
    """Call ``register(name, module, help)`` for each of :data:`COMMANDS` (help: '').

    ``pansim.commands`` calls this only when the entry points are not installed.
    """
    for name, module in COMMANDS.items():
        register(name, module, "")
