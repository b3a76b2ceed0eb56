"""Labelled structures for training: reading, checking, graphs, statistics, batches.

A dataset is a list of :class:`Sample`: the float64 numpy graph of one
structure plus its reference labels (energy in eV, forces in eV/A, stress in
eV/A^3 as a 3x3 tensor or absent). Graphs are built once, at load time.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers as Z_OF
from ase.data import chemical_symbols

from pansim.graph import atoms_to_graph, collate


class DataError(ValueError):
    """A dataset that cannot be used for training or evaluation."""


@dataclasses.dataclass
class Sample:
    """One labelled structure.

    Attributes
    ----------
    graph : dict
        Output of :func:`pansim.graph.atoms_to_graph`.
    numbers : np.ndarray
        [n_atoms] atomic numbers.
    energy : float
        Reference energy, eV.
    forces : np.ndarray
        [n_atoms, 3] reference forces, eV/A.
    stress : np.ndarray or None
        [3, 3] reference stress, eV/A^3 (ASE sign), or None when not labelled.
    """

    graph: dict[str, np.ndarray]
    numbers: np.ndarray
    energy: float
    forces: np.ndarray
    stress: np.ndarray | None

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.numbers)


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_structures(path: str | Path) -> list[Atoms]:
    """All frames of an extended-XYZ file."""
    import ase.io

    if not Path(path).exists():
        raise DataError(f"data file not found: {path}")
    return list(ase.io.read(str(path), index=":", format="extxyz"))


def extract_labels(
    atoms: Atoms, keys: tuple[str, str, str], where: str
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """(energy, forces, stress or None) of one frame under the given label keys.

    Raises
    ------
    DataError
        When the energy or forces key is missing, naming ``where`` and the key.
    """
    energy_key, forces_key, stress_key = keys
    if energy_key not in atoms.info:
        raise DataError(f"{where}: no energy label {energy_key!r} in atoms.info")
    if forces_key not in atoms.arrays:
        raise DataError(f"{where}: no forces label {forces_key!r} in atoms.arrays")
    forces = np.asarray(atoms.arrays[forces_key], dtype=np.float64).reshape(len(atoms), 3)
    energy = float(atoms.info[energy_key])
    stress = _stress_3x3(atoms.info.get(stress_key), where)
    for name, value in (("energy", energy), ("forces", forces), ("stress", stress)):
        if value is not None and not np.all(np.isfinite(value)):
            raise DataError(f"{where}: {name} label contains NaN or inf")
    return energy, forces, stress


def _stress_3x3(stress, where: str) -> np.ndarray | None:
    if stress is None:
        return None
    from ase.stress import voigt_6_to_full_3x3_stress

    arr = np.asarray(stress, dtype=np.float64).ravel()
    if arr.size == 9:
        return arr.reshape(3, 3)
    if arr.size == 6:
        return voigt_6_to_full_3x3_stress(arr)
    raise DataError(f"{where}: stress label has {arr.size} values, expected 6 or 9")


def load_dataset(
    path: str | Path, keys: tuple[str, str, str], atomic_numbers: Sequence[int], r_max: float
) -> list[Sample]:
    """Read, check and graph every frame of ``path``."""
    samples = []
    for index, atoms in enumerate(read_structures(path)):
        where = f"{path}, structure {index}"
        energy, forces, stress = extract_labels(atoms, keys, where)
        try:
            graph = atoms_to_graph(atoms, atomic_numbers, r_max)
        except ValueError as err:
            raise DataError(f"{where}: {err}") from err
        samples.append(Sample(graph, atoms.numbers.copy(), energy, forces, stress))
    if not samples:
        raise DataError(f"{path}: no structures")
    return samples


def elements_in(path: str | Path) -> set[int]:
    """Atomic numbers present in a file."""
    return {int(z) for atoms in read_structures(path) for z in atoms.numbers}


def resolve_elements(train_file: str, others: dict[str, str | None], given=None) -> list[int]:
    """Sorted atomic numbers of the model; every other file must use only these.

    Parameters
    ----------
    train_file : str
        Training file; its elements define the model unless ``given``.
    others : dict
        Role name (``valid_file``, ...) -> path (or None) checked against it.
    given : list of str, optional
        Explicit element symbols.
    """
    train = elements_in(train_file)
    model = sorted(Z_OF[s] for s in given) if given else sorted(train)
    missing_in_model = train - set(model)
    if missing_in_model:
        raise DataError(f"{train_file}: elements {_symbols(missing_in_model)} not in `elements`")
    for role, path in others.items():
        if path is None:
            continue
        extra = elements_in(path) - train
        if extra:
            raise DataError(
                f"{role} {path} contains elements {_symbols(extra)} that are absent from "
                f"the training file {train_file} (training elements: {_symbols(train)})"
            )
    return model


def _symbols(numbers) -> list[str]:
    return [chemical_symbols[z] for z in sorted(numbers)]


def fit_atomic_energies(samples: Sequence[Sample], atomic_numbers: Sequence[int]) -> np.ndarray:
    """Per-element reference energies (eV) by least squares: ``E ~ sum_Z n_Z E0_Z``.

    Returns the minimum-norm solution when the composition matrix is rank
    deficient (e.g. every structure is exactly LiF-stoichiometric).
    """
    index = {int(z): i for i, z in enumerate(atomic_numbers)}
    counts = np.zeros((len(samples), len(atomic_numbers)))
    for row, sample in enumerate(samples):
        for z in sample.numbers:
            counts[row, index[int(z)]] += 1
    energies = np.array([s.energy for s in samples])
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return solution


def given_atomic_energies(mapping: dict[str, float], atomic_numbers: Sequence[int]) -> np.ndarray:
    """Reference energies from a mapping element symbol -> eV, in model element order."""
    missing = [chemical_symbols[z] for z in atomic_numbers if chemical_symbols[z] not in mapping]
    if missing:
        raise DataError(f"atomic_energies given without elements {missing}")
    return np.array([float(mapping[chemical_symbols[z]]) for z in atomic_numbers])


def polynomial_envelope(r: np.ndarray, r_max: float, p: int = 5) -> np.ndarray:
    """MACE's polynomial cutoff envelope ``u(r)`` (1 at r = 0, 0 with zero slope at r_max)."""
    x = np.clip(r / r_max, 0.0, 1.0)
    u = (
        1.0
        - (p + 1) * (p + 2) / 2 * x**p
        + p * (p + 2) * x ** (p + 1)
        - p * (p + 1) / 2 * x ** (p + 2)
    )
    return u * (x < 1.0)


def smooth_coordination(sample: Sample, r_max: float, p: int = 5) -> np.ndarray:
    """[n_atoms] ``c_i = sum_j u(r_ij)``: PAN's coordination with all species weights 1."""
    g = sample.graph
    send, recv = g["edge_index"]
    vec = g["positions"][recv] - g["positions"][send] + g["shifts"]
    u = polynomial_envelope(np.linalg.norm(vec, axis=1), r_max, p)
    return np.bincount(recv, weights=u, minlength=sample.n_atoms)


def statistics(
    samples: Sequence[Sample], e0: np.ndarray, r_max: float, percentile: float, p: int = 5
) -> dict[str, float]:
    """Training-set statistics that set model constants.

    Returns
    -------
    dict
        ``avg_num_neighbors`` (edges per atom), ``mean_interaction_energy``
        (eV/atom, after subtracting ``e0``), ``rms_forces`` (eV/A), and
        ``c_max`` (the given percentile of the smooth coordination
        :func:`smooth_coordination` over all training atoms).
    """
    n_atoms = np.array([s.n_atoms for s in samples])
    edges = np.array([s.graph["edge_index"].shape[1] for s in samples])
    interaction = np.array([s.energy - float(s.graph["node_attrs"].sum(0) @ e0) for s in samples])
    forces = np.concatenate([s.forces.ravel() for s in samples])
    coordination = np.concatenate([smooth_coordination(s, r_max, p) for s in samples])
    rms = float(np.sqrt(np.mean(forces**2))) if forces.size else 0.0
    return {
        "avg_num_neighbors": float(edges.sum() / n_atoms.sum()),
        "mean_interaction_energy": float(interaction.sum() / n_atoms.sum()),
        "rms_forces": rms if rms > 0 else 1.0,
        "c_max": max(float(np.percentile(coordination, percentile)), 1.0),
    }


def batch_to_tensors(
    samples: Sequence[Sample], dtype: torch.dtype, device: str | torch.device
) -> dict[str, torch.Tensor]:
    """Collate samples into the model's graph dict plus reference labels.

    Extra keys: ``ref_energy`` [n_graphs], ``ref_forces`` [n_atoms, 3],
    ``ref_stress`` [n_graphs, 3, 3] (zeros where absent), ``stress_mask``
    [n_graphs] (1.0 where labelled) and ``n_atoms`` [n_graphs].
    """
    batch = collate([s.graph for s in samples], dtype=dtype, device=device)
    zeros = np.zeros((3, 3))

    def tensor(values):
        return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=dtype, device=device)

    batch["ref_energy"] = tensor([s.energy for s in samples])
    batch["ref_forces"] = tensor(np.concatenate([s.forces for s in samples]))
    batch["ref_stress"] = tensor([zeros if s.stress is None else s.stress for s in samples])
    batch["stress_mask"] = tensor([s.stress is not None for s in samples])
    batch["n_atoms"] = tensor([s.n_atoms for s in samples])
    return batch
