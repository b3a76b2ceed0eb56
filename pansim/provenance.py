"""Versions of the software behind a number: the one ``versions()`` of pansim.

Model files, workflow results and benchmark records all store
:func:`versions`, read from the installed distributions' metadata (nothing is
imported, so asking costs no import of torch or mace).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata

#: the distributions whose versions results depend on (pip names)
PACKAGES = (
    "pansim",
    "torch",
    "mace-torch",
    "e3nn",
    "numpy",
    "scipy",
    "ase",
    "phonopy",
    "matscipy",
    "vesin",
)


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """``{"python": ..., package: version}``; ``"not installed"`` for a missing package."""
    out = {"python": platform.python_version()}
    for name in packages:
        if name == "pansim":  # the running source, installed or not
            from pansim import __version__

            out[name] = __version__
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
