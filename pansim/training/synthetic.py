"""Small synthetic labelled datasets (ASE's EMT) to exercise the training pipeline.

EMT is a cheap effective-medium potential for fcc metals: these files are for
tests and pipeline smoke runs, never for shipped models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk


def emt_structures(
    n: int, seed: int = 0, elements: tuple[str, ...] = ("Cu", "Ag"), rattle: float = 0.08
) -> list[Atoms]:
    """``n`` strained, rattled 4-atom fcc cells of random composition, EMT-labelled.

    Labels (in ``info`` / ``arrays``): ``REF_energy`` (eV), ``REF_forces`` (eV/A),
    ``REF_stress`` (3x3, eV/A^3).
    """
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.8, cubic=True)
        atoms.symbols = rng.choice(elements, size=len(atoms))
        strain = np.eye(3) + rng.normal(scale=0.02, size=(3, 3))
        atoms.set_cell(atoms.cell @ strain, scale_atoms=True)
        atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
        atoms.calc = EMT()
        frames.append(_labelled(atoms))
    return frames


def _labelled(atoms: Atoms) -> Atoms:
    out = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.info["REF_energy"] = float(atoms.get_potential_energy())
    out.info["REF_stress"] = atoms.get_stress(voigt=False).reshape(9)
    out.arrays["REF_forces"] = atoms.get_forces().copy()
    return out


def write_emt_splits(
    folder: str | Path, sizes: tuple[int, int, int] = (16, 6, 6), seed: int = 0, **kwargs
) -> dict[str, Path]:
    """Write ``train.xyz``, ``val.xyz``, ``test.xyz`` under ``folder``; returns their paths."""
    import ase.io

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for offset, (name, size) in enumerate(zip(("train", "val", "test"), sizes, strict=True)):
        paths[name] = folder / f"{name}.xyz"
        frames = emt_structures(size, seed=seed + 1000 * offset, **kwargs)
        ase.io.write(paths[name], frames, format="extxyz")
    return paths
