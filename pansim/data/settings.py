"""Electronic-structure settings of docs/spec.md §2 (their types), and the k-mesh rule.

The settings of each system are part of its spec, :class:`pansim.data.systems.System`
(``dft``), and written there; labels store a copy. ``CRYSTALS``, ``STRUCTURES`` and
``crystal_cell``, defined here before, are still importable from this module: they
are views of :data:`pansim.data.systems.SYSTEMS`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class CrystalSettings:
    """GPAW plane-wave PBE settings of one crystal system (docs/spec.md §2.1).

    Attributes
    ----------
    ecut : float
        Plane-wave cutoff, eV.
    dk : float
        k-point spacing, 1/Angstrom (reciprocal vector lengths include 2*pi).
    width : float
        Fermi-Dirac smearing width, eV.
    lattice_constant : float
        Cubic lattice constant used to build cells, Angstrom.
    melting_K : float
        Experimental melting temperature, K (upper end of thermal sampling).
    """

    system: str
    elements: tuple[str, ...]
    ecut: float
    dk: float
    width: float
    lattice_constant: float
    melting_K: float
    xc: str = "PBE"
    code: str = "gpaw"
    convergence: dict = field(default_factory=lambda: {"energy": 1e-5, "density": 1e-5})

    def to_dict(self) -> dict:
        """JSON-serialisable copy."""
        d = asdict(self)
        d["elements"] = list(self.elements)
        return d


@dataclass(frozen=True)
class MoleculeSettings:
    """PySCF settings of the rMD17-level molecule labels (docs/spec.md §2.2)."""

    xc: str = "PBE"
    basis: str = "def2-SVP"
    conv_tol: float = 1e-10
    grid_level: int = 3
    density_fitting: bool = False
    code: str = "pyscf"

    def to_dict(self) -> dict:
        """JSON-serialisable copy."""
        return asdict(self)


def kmesh(cell: np.ndarray, dk: float) -> tuple[int, int, int]:
    """Monkhorst-Pack counts of docs/spec.md §2.1: smallest even ``n_i >= |b_i| / dk``.

    Parameters
    ----------
    cell : np.ndarray
        [3, 3] cell rows of the *unstrained reference cell* of a supercell family, Angstrom.
    dk : float
        k spacing in 1/Angstrom, with |b_i| = 2*pi / (spacing of lattice planes).
    """
    recip = 2.0 * math.pi * np.linalg.inv(np.asarray(cell, dtype=float)).T
    counts = []
    for b in recip:
        n = math.ceil(np.linalg.norm(b) / dk - 1e-9)
        counts.append(max(2, n + (n % 2)))
    return tuple(int(n) for n in counts)


#: names that moved to :mod:`pansim.data.systems`, still importable from here
_MOVED = ("CRYSTALS", "STRUCTURES", "crystal_cell")


def __getattr__(name: str):
    """``CRYSTALS``, ``STRUCTURES``, ``crystal_cell``: views of the system registry."""
    if name in _MOVED:
        from pansim.data import systems

        return getattr(systems, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
