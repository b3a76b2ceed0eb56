"""Deliberate handling of the e3nn 0.4.4 / torch >= 2.6 / mace-torch import trap.

e3nn 0.4.4 loads its Wigner constants with a bare ``torch.load``; torch >= 2.6
defaults to ``weights_only=True`` and refuses that file. mace-torch works around
it by setting ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` in ``os.environ`` at import
time, which silently changes the process environment for everything after it.

pansim imports e3nn and mace only through :func:`import_mace`, which sets the
flag for the duration of the import and then restores ``os.environ`` exactly,
so the import works whatever the import order and leaves the environment as it
found it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

_FLAG = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


@contextlib.contextmanager
def preserved_environ() -> Iterator[None]:
    """Restore ``os.environ`` to its exact previous content on exit."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def import_mace() -> ModuleType:
    """Import ``mace`` (and e3nn) without leaving any trace in ``os.environ``.

    Returns
    -------
    ModuleType
        The ``mace`` package.
    """
    if "mace" in sys.modules and "e3nn.o3" in sys.modules:
        return sys.modules["mace"]
    with preserved_environ():
        os.environ[_FLAG] = "1"
        importlib.import_module("e3nn.o3")
        mace = importlib.import_module("mace")
        importlib.import_module("mace.modules")
    return mace


def thermalize(atoms: Any, temperature_K: float, rng: Any = None) -> None:
    """Maxwell-Boltzmann momenta at ``temperature_K`` on every supported ase.

    ase 3.29 added ``thermalize_momenta`` and deprecated ``MaxwellBoltzmannDistribution``
    (now a wrapper around it); setup.cfg allows ase >= 3.23, which has only the latter.
    Both draw the same normal deviates from ``rng``, so the momenta are identical.
    """
    from ase.md import velocitydistribution

    if hasattr(velocitydistribution, "thermalize_momenta"):
        velocitydistribution.thermalize_momenta(atoms, temperature_K, rng=rng)
    else:
        velocitydistribution.MaxwellBoltzmannDistribution(
            atoms, temperature_K=temperature_K, rng=rng
        )
