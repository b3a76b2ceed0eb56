"""The one registry of pretrained pansim models shipped in this package.

``registry.json`` beside this file maps a model name to its entry::

    {"si": {"file": "si.safetensors",      # model file (pansim.save_model), beside this file
            "card": "si.md",               # model card (data, hyperparameters, metrics)
            "system": "si",                # reference system it was trained for
            "variant": "pan+pgs",          # baseline | pan | pgs | pan+pgs
            "baseline": "si-baseline",     # the identically trained plain backbone, if any
            "default": true,               # optional: the default of `pansim validate`
            "committee": "results/training/si/pan+pgs"}}  # optional: runs of <name>-committee

Only ``file`` is required; paths are relative to this directory. ``variant``,
when given, is one of ``pansim.backbones.VARIANTS``. The calculator
(``PANCalculator(model="si")``), ``pansim eval`` and ``pansim models`` read
their choices from here; nothing is downloaded. A malformed registry raises
:class:`RegistryError` naming the entry and the problem.
"""

from __future__ import annotations

import difflib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pansim.variants import VARIANTS as _VARIANTS

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "registry.json"


class UnknownModelError(KeyError):
    """A model name that is not registered (the message lists those that are)."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class RegistryError(ValueError):
    """A malformed ``registry.json`` (the message names the file, entry and problem)."""


@lru_cache(maxsize=1)
def _registry() -> dict[str, dict[str, Any]]:
    if not REGISTRY.exists():
        return {}
    try:
        registry = json.loads(REGISTRY.read_text())
    except json.JSONDecodeError as err:
        raise RegistryError(f"{REGISTRY}: not valid JSON ({err})") from None
    if not isinstance(registry, dict):
        raise RegistryError(f"{REGISTRY}: expected a JSON object of name -> entry")
    for name, entry in registry.items():
        _check_entry(name, entry)
    return registry


def _check_entry(name: str, entry: Any) -> None:
    """Raise :class:`RegistryError` for an entry that does not follow the schema."""
    where = f"{REGISTRY}: entry {name!r}"
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise RegistryError(f"{where} needs a 'file' (model file name beside the registry)")
    if entry.get("committee") is not None and not isinstance(entry["committee"], str):
        raise RegistryError(f"{where}: 'committee' must be a run-folder prefix (a string)")
    variant = entry.get("variant")
    if variant is not None and variant not in _VARIANTS:
        raise RegistryError(f"{where}: unknown variant {variant!r}; known: {list(_VARIANTS)}")


def list_models() -> list[str]:
    """Names of the registered pretrained models (sorted)."""
    return sorted(_registry())


def _unknown(name: str, what: str) -> UnknownModelError:
    """The error for ``name``: the closest registered names, then all of them."""
    registered = sorted(_registry())
    close = difflib.get_close_matches(name, registered, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    listed = ", ".join(registered) or "none yet (train and register models first)"
    return UnknownModelError(f"{what}{hint}; registered: {listed}")


def model_entry(name: str) -> dict[str, Any]:
    """The registry entry of ``name`` (see the module docstring)."""
    reg = _registry()
    if name not in reg:
        raise _unknown(name, f"no pretrained model named {name!r}")
    return {"name": name, **reg[name]}


def model_file(name_or_path: str | os.PathLike) -> Path:
    """The model file of a registered name (looked up first) or of an existing path.

    Raises
    ------
    UnknownModelError
        When ``name_or_path`` is neither; the message suggests the closest
        registered names and lists them all.
    """
    name = str(name_or_path)
    if name in _registry():
        return get_model_path(name)
    if Path(name).exists():
        return Path(name)
    raise _unknown(name, f"{name!r} is neither a registered pretrained model nor a model file")


def get_model_path(name: str) -> Path:
    """Path of the model file of ``name``."""
    return HERE / model_entry(name)["file"]


def model_card(name: str) -> str:
    """Text of the model card of ``name`` ('' if it has none)."""
    card = model_entry(name).get("card")
    return (HERE / card).read_text() if card else ""


def default_model() -> str | None:
    """The default model (entry marked ``default``, else the first pan+pgs model), or None."""
    reg = _registry()
    marked = [n for n, e in sorted(reg.items()) if e.get("default")]
    if marked:
        return marked[0]
    full = [n for n, e in sorted(reg.items()) if e.get("variant") == "pan+pgs"]
    return full[0] if full else None
