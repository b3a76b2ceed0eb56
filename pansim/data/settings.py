"""Electronic-structure settings of docs/spec.md §2, and the k-mesh rule.

Every number here is the project's reference setting; labels store a copy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from ase import Atoms
from ase.build import bulk


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


CRYSTALS: dict[str, CrystalSettings] = {
    "ag": CrystalSettings("ag", ("Ag",), 450.0, 0.35, 0.10, 4.16, 1235.0),
    "si": CrystalSettings("si", ("Si",), 500.0, 0.30, 0.05, 5.47, 1687.0),
    "lif": CrystalSettings("lif", ("Li", "F"), 700.0, 0.40, 0.01, 4.07, 1121.0),
}


#: system -> (``ase.build.bulk`` name, crystal structure)
STRUCTURES: dict[str, tuple[str, str]] = {
    "ag": ("Ag", "fcc"),
    "si": ("Si", "diamond"),
    "lif": ("LiF", "rocksalt"),
}


def crystal_cell(system: str, a: float | None = None, cubic: bool = False) -> Atoms:
    """The perfect crystal of ``system``, primitive (or conventional) cell.

    ``a`` is the lattice constant, by default the docs/spec.md §2.1 constant the datasets use.
    """
    name, structure = STRUCTURES[system]
    return bulk(name, structure, CRYSTALS[system].lattice_constant if a is None else a, cubic=cubic)


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
