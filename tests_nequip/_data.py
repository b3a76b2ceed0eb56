"""Tiny synthetic labelled data (ASE's EMT on rattled, strained Cu cells), pansim's data layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write


def emt_frames(n: int, seed: int) -> list:
    """``n`` rattled, strained 8-atom Cu cells, labels under REF_energy, REF_forces, REF_stress."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 1, 2))
        strain = np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))
        atoms.set_cell(atoms.cell.array @ (strain + strain.T) / 2, scale_atoms=True)
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        stress = atoms.get_stress(voigt=False)
        atoms.calc = None
        atoms.info["REF_energy"] = energy
        atoms.info["REF_stress"] = stress
        atoms.arrays["REF_forces"] = forces
        frames.append(atoms)
    return frames


def write_emt_dataset(directory: Path, sizes: tuple[int, int, int] = (16, 4, 4)) -> Path:
    """Write ``train.extxyz``, ``val.extxyz``, ``test.extxyz`` into ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for k, (name, n) in enumerate(zip(("train", "val", "test"), sizes, strict=True)):
        write(directory / f"{name}.extxyz", emt_frames(n, seed=k), format="extxyz")
    return directory


def pansim_c_max(frames: list, r_max: float, p: int = 6, percentile: float = 99.0) -> float:
    """``c_max`` of ``frames`` by the MACE route's function (``pansim.training.data.statistics``).

    The graphs are made in pansim's layout with ASE's neighbour list (pansim's own,
    vesin, is not installed in the second environment).
    """
    from ase.neighborlist import neighbor_list
    from pansim.training.data import Sample, statistics

    samples = []
    for atoms in frames:
        i, j, shifts = neighbor_list("ijS", atoms, r_max)
        graph = {
            "positions": atoms.positions,
            "edge_index": np.stack((i, j)),
            "shifts": shifts @ atoms.cell.array,
            "node_attrs": np.ones((len(atoms), 1)),
        }
        energy, forces = atoms.info["REF_energy"], atoms.arrays["REF_forces"]
        samples.append(Sample(graph, atoms.numbers, energy, forces, None))
    return statistics(samples, np.zeros(1), r_max, percentile, p)["c_max"]
