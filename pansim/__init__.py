"""pansim: PAN/PGS scalar-pathway modules for equivariant potentials, served through ASE.

The heavy parts (torch, mace-torch) are imported lazily so that ``import pansim``
is cheap and never changes the process environment.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0"

# a library logs, the application decides where: without this, warnings logged by pansim
# (e.g. pansim.domain) would also reach stderr through logging's last-resort handler,
# doubling the Python warning that already says the same
logging.getLogger("pansim").addHandler(logging.NullHandler())

_LAZY = {
    "build_model": "pansim.backbones",
    "save_model": "pansim.model_io",
    "load_model": "pansim.model_io",
    "PANCalculator": "pansim.calculator",
    "graft": "pansim.grafting",
    "keep_freed_memory": "pansim._memory",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pansim' has no attribute {name!r}")
