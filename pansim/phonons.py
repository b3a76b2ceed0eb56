"""Harmonic phonons by finite displacements with phonopy: one set-up, one analysis.

Both sides of a validation report go through :func:`harmonic_phonons`: the DFT
reference builder (:mod:`pansim.data.reference`, on the stored DFT forces of the
displaced supercells) and the models (:func:`workflows.phonons.phonons`, on a
calculator's forces), so that model and DFT frequencies differ only by the forces.
Phonopy's own sequence:

1. :func:`displaced`: ``Phonopy(unitcell, supercell_matrix, primitive_matrix="auto")``
   and ``generate_displacements(distance)``;
2. :func:`supercells`: the displaced supercells, then the undisplaced one, as ASE
   ``Atoms``; their forces come from the caller (``forces(structures)``);
3. the undisplaced supercell's (residual) forces subtracted from every displaced
   one (docs/spec.md §2.4), ``produce_force_constants``, and
   ``symmetrize_force_constants`` (translational invariance: the acoustic sum rule);
4. band structure along phonopy's seekpath path, mesh, total DOS, thermal
   properties; frequencies at Gamma and at the labelled points of the path
   (:func:`phonon_fields`), imaginary modes (:func:`imaginary_modes`).

Units: eV, A, amu; frequencies in THz (imaginary ones negative), cm^-1 alongside.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ase import Atoms

THZ_TO_CM1 = 33.35640951981521  # 1 THz in cm^-1 (1e12 / c[cm/s])
#: the set-up of the DFT reference and of ``pansim validate`` (docs/spec.md §2.4)
SUPERCELL = (2, 2, 2)
DISPLACEMENT_A = 0.01

#: every mesh frequency below this (THz): zero force constants, no DOS or thermal properties
FLAT_THZ = 1e-6

#: ``forces(structures) -> [n_structures, n_atoms, 3]`` (eV/A)
Forces = Callable[[list[Atoms]], np.ndarray]


def to_phonopy_atoms(atoms: Atoms):
    """An ASE ``Atoms`` as phonopy's ``PhonopyAtoms`` (with its masses)."""
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=atoms.cell.array,
        scaled_positions=atoms.get_scaled_positions(),
        masses=atoms.get_masses(),
    )


def to_ase_atoms(cell) -> Atoms:
    """A phonopy ``PhonopyAtoms`` as periodic ASE ``Atoms``."""
    return Atoms(
        symbols=cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True
    )


def signed(freqs: np.ndarray) -> np.ndarray:
    """Frequencies as phonopy reports them (imaginary ones negative), as a float array."""
    return np.asarray(freqs, dtype=float)


def plain_label(label: str) -> str:
    r"""LaTeX label as plain text: ``$\Gamma$`` -> ``Gamma``, ``$\mathrm{X}$`` -> ``X``."""
    text = str(label).replace("$", "").replace("\\mathrm{", "").replace("}", "")
    return text.replace("\\Gamma", "Gamma").replace("{", "")


def supercell_matrix(supercell: Sequence[int] | Sequence[Sequence[int]]) -> np.ndarray:
    """A supercell given as 3 diagonal counts or a 3x3 matrix, as a 3x3 integer matrix."""
    return np.diag(supercell) if np.ndim(supercell) == 1 else np.asarray(supercell)


def displaced(
    unit: Atoms,
    supercell: Sequence[int] | Sequence[Sequence[int]] = SUPERCELL,
    displacement: float = DISPLACEMENT_A,
    *,
    symmetry: bool = True,
    plusminus: bool | str = "auto",
):
    """Phonopy object of the unit cell ``unit`` with its displacements (A) generated.

    ``symmetry`` and ``plusminus`` are phonopy's ``is_symmetry`` and ``is_plusminus``
    (their defaults: the symmetry-reduced set, +- only where symmetry needs it).
    """
    from phonopy import Phonopy

    phonon = Phonopy(
        to_phonopy_atoms(unit),
        supercell_matrix=supercell_matrix(supercell),
        primitive_matrix="auto",
        is_symmetry=symmetry,
    )
    phonon.generate_displacements(distance=displacement, is_plusminus=plusminus)
    return phonon


def supercells(phonon) -> list[Atoms]:
    """The displaced supercells, then the undisplaced one: the structures forces are asked for."""
    cells = list(phonon.supercells_with_displacements) + [phonon.supercell]
    return [to_ase_atoms(c) for c in cells]


def set_forces(
    phonon,
    forces: np.ndarray,
    subtract_residual_forces: bool = True,
    symmetrize_force_constants: bool = True,
) -> np.ndarray:
    """Force constants from the forces of :func:`supercells` (displaced ones, then the perfect one).

    The perfect supercell's forces (the residual forces, zero for exact forces at
    equilibrium; a few meV/A from GPAW's real-space grid) are subtracted from every
    displaced one when ``subtract_residual_forces``. Returns them, ``[n_atoms, 3]`` eV/A.
    """
    forces = np.asarray(forces, dtype=float)
    residual = forces[-1]
    phonon.forces = forces[:-1] - residual if subtract_residual_forces else forces[:-1]
    phonon.produce_force_constants()
    if symmetrize_force_constants:
        phonon.symmetrize_force_constants()  # translational invariance (acoustic sum rule)
    return residual


def high_symmetry(phonon, labels: list[str]) -> tuple[dict[str, list[float]], dict]:
    """Sorted frequencies (THz) and reduced q of the band path's labelled points, by label."""
    band = phonon.band_structure
    points: dict[str, list[float]] = {}
    qpoints: dict[str, list[float]] = {}
    ends = []
    for seg_q, seg_f in zip(band.qpoints, band.frequencies, strict=True):
        ends += [(seg_q[0], seg_f[0]), (seg_q[-1], seg_f[-1])]
    # labels follow segment ends; phonopy merges labels of connected segments
    connections = list(getattr(band, "path_connections", [False] * len(band.qpoints)))
    names = iter(labels)
    for k, (q, f) in enumerate(ends):
        segment, is_end = divmod(k, 2)
        if not is_end and segment > 0 and connections[segment - 1]:
            continue  # start of a connected segment: same point as the previous end
        name = next(names, f"q{k}")
        if name not in points:
            points[name] = np.sort(signed(f)).tolist()
            qpoints[name] = np.asarray(q, dtype=float).tolist()
    return points, qpoints


def imaginary_modes(phonon, threshold: float) -> list[dict[str, Any]]:
    """Modes below ``-threshold`` THz on the band path and the mesh."""
    found = []
    band = phonon.band_structure
    for seg_q, seg_f in zip(band.qpoints, band.frequencies, strict=True):
        for q, f in zip(seg_q, seg_f, strict=True):
            for value in f[f < -threshold]:
                found.append({"q": np.round(q, 4).tolist(), "frequency_THz": float(value)})
    mesh = phonon.mesh
    for q, f in zip(mesh.qpoints, mesh.frequencies, strict=True):
        for value in f[f < -threshold]:
            found.append({"q": np.round(q, 4).tolist(), "frequency_THz": float(value)})
    return found


def phonon_fields(phonon) -> dict[str, Any]:
    """Frequencies, band structure, DOS and thermal properties read from phonopy's objects.

    DOS and thermal properties are empty when phonopy has none (all frequencies zero).
    """
    gamma = np.sort(signed(phonon.run_qpoints([[0.0, 0.0, 0.0]]).frequencies[0]))
    band, dos, tp = phonon.band_structure, phonon.total_dos, phonon.thermal_properties
    labels = [plain_label(x) for x in (band.labels or [])]
    points, qpoints = high_symmetry(phonon, labels)
    return {
        "gamma_frequencies_THz": gamma.tolist(),
        "gamma_frequencies_cm1": (gamma * THZ_TO_CM1).tolist(),
        "high_symmetry_THz": points,
        "high_symmetry_cm1": {k: (np.array(v) * THZ_TO_CM1).tolist() for k, v in points.items()},
        "high_symmetry_q": qpoints,
        "band_labels": labels,
        "band_distances": [np.asarray(d).tolist() for d in band.distances],
        "band_frequencies_THz": [np.asarray(f).tolist() for f in band.frequencies],
        "band_connections": [bool(c) for c in getattr(band, "path_connections", [])],
        "dos_frequencies_THz": [] if dos is None else np.asarray(dos.frequency_points).tolist(),
        "dos": [] if dos is None else np.asarray(dos.dos).tolist(),
        "thermal": {}
        if tp is None
        else {
            "temperature_K": tp.temperatures.tolist(),
            "free_energy_kJ_per_mol": tp.free_energy.tolist(),
            "entropy_J_per_K_mol": tp.entropy.tolist(),
            "heat_capacity_J_per_K_mol": tp.heat_capacity.tolist(),
        },
    }


@dataclasses.dataclass
class HarmonicPhonons:
    """What :func:`harmonic_phonons` computed.

    Attributes
    ----------
    phonon : phonopy.Phonopy
        With force constants, band structure, mesh, DOS and thermal properties.
    fields : dict
        :func:`phonon_fields` (frequencies in THz, sorted; imaginary ones negative).
    imaginary_modes : list of dict
        :func:`imaginary_modes`.
    residual_forces : np.ndarray
        Forces of the undisplaced supercell ``[n_atoms, 3]`` (eV/A).
    supercell_matrix : np.ndarray
        3x3 integer matrix.
    n_displacements : int
        Displaced supercells.
    """

    phonon: Any
    fields: dict[str, Any]
    imaginary_modes: list[dict[str, Any]]
    residual_forces: np.ndarray
    supercell_matrix: np.ndarray
    n_displacements: int


def harmonic_phonons(
    unit: Atoms,
    forces: Forces,
    *,
    supercell: Sequence[int] | Sequence[Sequence[int]] = SUPERCELL,
    displacement: float = DISPLACEMENT_A,
    subtract_residual_forces: bool = True,
    symmetrize_force_constants: bool = True,
    mesh: tuple[int, int, int] = (12, 12, 12),
    band_points: int = 51,
    temperatures: tuple[float, float, float] = (0.0, 1000.0, 50.0),
    imaginary_threshold: float = 0.05,
    timings: dict[str, float] | None = None,
) -> HarmonicPhonons:
    """Harmonic phonons of the unit cell ``unit`` from the forces of its displaced supercells.

    Parameters
    ----------
    unit : Atoms
        The unit cell (not modified), at the geometry whose phonons are wanted.
    forces : callable
        ``forces(structures) -> [n_structures, n_atoms, 3]`` (eV/A) for the
        structures of :func:`supercells` (displaced ones, then the undisplaced one):
        a calculator's forces, or stored DFT forces.
    supercell : 3 ints or 3x3
        Supercell matrix relative to ``unit``.
    displacement : float
        Displacement amplitude (A).
    subtract_residual_forces : bool
        Subtract the undisplaced supercell's forces from every displaced one.
    symmetrize_force_constants : bool
        Impose translational invariance on the force constants (phonopy).
    mesh : 3 ints
        q mesh of the DOS, the thermal properties and the imaginary-mode search.
    band_points : int
        Points per segment of the band path.
    temperatures : (t_min, t_max, t_step)
        K.
    imaginary_threshold : float
        Modes below ``-imaginary_threshold`` THz are imaginary.
    timings : dict, optional
        Gets the wall time (s) of the forces (``forces``) and of phonopy (``phonopy``) added.
    """
    phonon = displaced(unit, supercell, displacement)
    structures = supercells(phonon)
    t0 = time.perf_counter()
    values = np.asarray(forces(structures), dtype=float)
    t1 = time.perf_counter()
    if values.shape != (len(structures), len(structures[0]), 3):
        raise ValueError(
            f"forces of shape {values.shape} for {len(structures)} supercells "
            f"of {len(structures[0])} atoms"
        )
    residual = set_forces(phonon, values, subtract_residual_forces, symmetrize_force_constants)
    phonon.auto_band_structure(npoints=band_points, plot=False)
    phonon.run_mesh(list(mesh), is_gamma_center=True)
    if np.any(np.abs(phonon.mesh.frequencies) > FLAT_THZ):  # else no DOS: zero force constants
        phonon.run_total_dos()
        phonon.run_thermal_properties(*temperatures, exclude_gamma_acoustic=True)
    fields = phonon_fields(phonon)
    imaginary = imaginary_modes(phonon, imaginary_threshold)
    if timings is not None:
        timings["forces"] = timings.get("forces", 0.0) + t1 - t0
        timings["phonopy"] = timings.get("phonopy", 0.0) + time.perf_counter() - t1
    return HarmonicPhonons(
        phonon=phonon,
        fields=fields,
        imaginary_modes=imaginary,
        residual_forces=residual,
        supercell_matrix=supercell_matrix(supercell),
        n_displacements=len(structures) - 1,
    )
