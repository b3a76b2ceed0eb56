"""Deliberate handling of the e3nn 0.4.4 / torch >= 2.6 / mace-torch import trap.

e3nn 0.4.4 loads its Wigner constants with a bare ``torch.load``; torch >= 2.6
defaults to ``weights_only=True`` and refuses that file. mace-torch works around
it by setting ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` in ``os.environ`` at import
time, which silently changes the process environment for everything after it.

pansim imports e3nn and mace only through :func:`import_mace`, which sets the
flag for the duration of the import and then restores ``os.environ`` exactly,
so the import works whatever the import order and leaves the environment as it
found it.

The same libraries talk to pansim's user about their own internals: e3nn scripts
its generated code with TorchScript on every model build (a dozen warnings per
model), the e3nn import warns about the flag above, and mace-torch prints a line
about GPU acceleration to stdout at import, where it lands in front of the
command line's output. :func:`quiet_library_noise` hides exactly those messages,
and only for the duration of pansim's own calls (the warning filters are restored
on exit; nothing is filtered for the user's code). They stay reachable: Python's
own ``-W`` / ``PYTHONWARNINGS`` options, or the command line's ``-v``
(:func:`show_library_noise`), turn the hiding off.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import io
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

_FLAG = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"

#: warnings of the libraries under pansim that say nothing to its user (regexes)
LIBRARY_NOISE = (
    r"The TorchScript type system doesn't support instance-level annotations",
    r"Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected",
    r"`torch\.jit\.(script|save|load)` is deprecated",
)

#: lines mace-torch prints to stdout when imported
_IMPORT_PRINTS = ("cuequivariance or cuequivariance_torch is not available",)

_SHOW_NOISE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "pansim_show_library_noise", default=False
)


@contextlib.contextmanager
def show_library_noise(show: bool = True) -> Iterator[None]:
    """Let :func:`quiet_library_noise` show everything inside this block (``-v``)."""
    token = _SHOW_NOISE.set(show)
    try:
        yield
    finally:
        _SHOW_NOISE.reset(token)


def _noise_shown() -> bool:
    return _SHOW_NOISE.get() or bool(sys.warnoptions)


@contextlib.contextmanager
def quiet_library_noise() -> Iterator[None]:
    """Ignore :data:`LIBRARY_NOISE` inside the block; the filters are restored on exit.

    Does nothing when the user asked to see warnings (``python -W ...``,
    ``PYTHONWARNINGS``) or inside :func:`show_library_noise`.
    """
    if _noise_shown():
        yield
        return
    with warnings.catch_warnings():
        for message in LIBRARY_NOISE:
            warnings.filterwarnings("ignore", message=message)
        yield


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
    printed = io.StringIO()
    try:
        with preserved_environ(), quiet_library_noise(), contextlib.redirect_stdout(printed):
            os.environ[_FLAG] = "1"
            importlib.import_module("e3nn.o3")
            mace = importlib.import_module("mace")
            importlib.import_module("mace.modules")
    finally:
        for line in printed.getvalue().splitlines(keepends=True):
            if _noise_shown() or not line.startswith(_IMPORT_PRINTS):
                sys.stdout.write(line)
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
