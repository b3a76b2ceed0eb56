#!/usr/bin/env python
"""Deterministic EMT-labelled Ag data for the shipped demonstration models.

ASE's EMT plays the role of the reference "truth": the files are a pipeline
demonstration, NOT DFT data. Writes ``data/ag-emt/{train,val,test}.xyz`` with
``REF_energy`` (eV), ``REF_forces`` (eV/A) and ``REF_stress`` (3x3, eV/A^3, ASE sign).

Structure families (4-8 atom fcc Ag cells, EMT lattice constant a0):

- ``strained``: 4-atom cubic cell, random symmetric strain (+-3 %), small rattle;
- ``thermal``: 4- or 8-atom cell, Gaussian displacements of a harmonic crystal
  between 300 K and 1200 K (near melting, 1235 K), slight strain;
- ``vacancy``: 8-atom cell (2x1x1) minus one atom, rattled;
- ``contact``: compressed cells (volume 0.72-0.92 a0^3) with one atom pushed
  toward a nearest neighbour (down to ~2.2 A), the short-range repulsion regime.

Usage: ``python scripts/make_emt_demo_data.py [--out data/ag-emt] [--sizes 64 16 24]``.
The same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

FAMILIES = ("strained", "thermal", "vacancy", "contact")
KB = 8.617333262e-5  # eV/K
SPRING = 6.0  # eV/A^2, effective spring for independent Gaussian displacements


def emt_a0() -> float:
    """EMT equilibrium lattice constant of fcc Ag (A), from a fine 1-D scan."""
    a = np.linspace(3.9, 4.2, 301)
    e = []
    for x in a:
        atoms = bulk("Ag", "fcc", a=x)
        atoms.calc = EMT()
        e.append(atoms.get_potential_energy())
    return float(a[int(np.argmin(e))])


def _sym_strain(rng, scale):
    s = rng.normal(scale=scale, size=(3, 3))
    return np.eye(3) + 0.5 * (s + s.T)


def make_structure(family: str, rng: np.random.Generator, a0: float) -> Atoms:
    """One unlabelled structure of ``family``."""
    if family == "strained":
        atoms = bulk("Ag", "fcc", a=a0, cubic=True)
        atoms.set_cell(atoms.cell @ _sym_strain(rng, 0.03), scale_atoms=True)
        atoms.positions += rng.normal(scale=0.02, size=atoms.positions.shape)
    elif family == "thermal":
        atoms = bulk("Ag", "fcc", a=a0, cubic=True)
        if rng.random() < 0.5:
            atoms = atoms * (2, 1, 1)
        temperature = rng.uniform(300.0, 1200.0)
        sigma = np.sqrt(KB * temperature / SPRING)
        atoms.set_cell(atoms.cell @ _sym_strain(rng, 0.01) * (1 + 1e-5 * temperature),
                       scale_atoms=True)  # fmt: skip
        atoms.positions += rng.normal(scale=sigma, size=atoms.positions.shape)
    elif family == "vacancy":
        atoms = bulk("Ag", "fcc", a=a0, cubic=True) * (2, 1, 1)
        del atoms[int(rng.integers(len(atoms)))]
        atoms.set_cell(atoms.cell @ _sym_strain(rng, 0.015), scale_atoms=True)
        atoms.positions += rng.normal(scale=0.06, size=atoms.positions.shape)
    elif family == "contact":
        atoms = bulk("Ag", "fcc", a=a0, cubic=True)
        if rng.random() < 0.5:
            atoms = atoms * (2, 1, 1)
        ratio = rng.uniform(0.72, 0.92)
        atoms.set_cell(atoms.cell * ratio ** (1 / 3), scale_atoms=True)
        # push atom 0 toward its nearest neighbour (image-aware) by a random fraction
        d = atoms.get_distances(0, range(1, len(atoms)), mic=True, vector=True)
        j = int(np.argmin(np.linalg.norm(d, axis=1)))
        atoms.positions[0] += rng.uniform(0.05, 0.25) * d[j]
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
    else:
        raise ValueError(family)
    atoms.wrap()
    return atoms


def label(atoms: Atoms, family: str) -> Atoms:
    """EMT labels under REF_* keys."""
    atoms.calc = EMT()
    out = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
    out.info["REF_energy"] = float(atoms.get_potential_energy())
    out.info["REF_stress"] = atoms.get_stress(voigt=False).reshape(9)
    out.info["config_type"] = family
    out.arrays["REF_forces"] = atoms.get_forces().copy()
    return out


def main(argv=None) -> int:
    """Write the three splits."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/ag-emt")
    parser.add_argument("--sizes", nargs=3, type=int, default=[64, 16, 24])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    a0 = round(emt_a0(), 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k, (split, n) in enumerate(zip(("train", "val", "test"), args.sizes, strict=True)):
        rng = np.random.default_rng(args.seed + 1000 * k)
        frames = [label(make_structure(FAMILIES[i % 4], rng, a0), FAMILIES[i % 4])
                  for i in range(n)]  # fmt: skip
        ase.io.write(out / f"{split}.xyz", frames, format="extxyz")
        print(f"wrote {out / f'{split}.xyz'}: {n} structures (a0 = {a0} A)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
