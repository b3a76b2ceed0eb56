"""Phonons by finite displacements with phonopy, in phonopy's own sequence.

The set-up and the analysis are :func:`pansim.phonons.harmonic_phonons`, which the
DFT reference builder (:mod:`pansim.data.reference`) runs on the stored DFT forces:
``Phonopy(unitcell, supercell_matrix)`` -> ``generate_displacements`` -> forces of
the displaced supercells (one batched call when the calculator has
``batch_evaluate``) -> ``produce_force_constants`` (residual forces subtracted,
force constants symmetrised) -> band structure along phonopy's seekpath path, mesh,
total DOS, thermal properties. This workflow adds the relaxation, the calculator and
the outputs.

Python::

    from workflows.phonons import phonons
    res = phonons(atoms, calc, supercell=(2, 2, 2))
    res.gamma_frequencies_THz, res.imaginary_modes

CLI: ``pansim phonons --model emt --structure Cu.cif --out out/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

import pansim.phonons as pansim_phonons  # the one phonopy set-up, shared with the DFT side
from pansim.phonons import (  # noqa: F401 - re-exported
    THZ_TO_CM1,
    harmonic_phonons,
    plain_label,
    signed,
    to_ase_atoms,
    to_phonopy_atoms,
)
from workflows._common import (
    WorkflowResult,
    add_common_arguments,
    cli_calculator,
    evaluate_forces,
    has_stress,
    new_figure,
    prepare_structure,
    provenance,
    read_structure,
    save_figure,
    write_outputs,
)

PHONON_UNITS = {
    "gamma_frequencies_THz": "THz",
    "gamma_frequencies_cm1": "cm^-1",
    "high_symmetry_THz": "THz",
    "high_symmetry_cm1": "cm^-1",
    "high_symmetry_q": "reduced coordinates of phonopy's primitive reciprocal cell",
    "band_distances": "1/A (phonopy, 2*pi not included)",
    "band_frequencies_THz": "THz",
    "dos_frequencies_THz": "THz",
    "dos": "states/THz per unit cell",
    "thermal": "T: K; free_energy: kJ/mol; entropy, heat_capacity: J/K/mol (per unit cell)",
    "displacement": "A",
    "imaginary_modes": "THz (negative = imaginary)",
}


@dataclasses.dataclass
class PhononResult(WorkflowResult):
    """Frequencies (THz; imaginary ones negative), band structure, DOS, thermal properties."""

    gamma_frequencies_THz: list[float] = dataclasses.field(default_factory=list)
    gamma_frequencies_cm1: list[float] = dataclasses.field(default_factory=list)
    high_symmetry_THz: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    high_symmetry_cm1: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    high_symmetry_q: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    imaginary_modes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    band_labels: list[str] = dataclasses.field(default_factory=list)
    band_distances: list[list[float]] = dataclasses.field(default_factory=list)
    band_frequencies_THz: list[list[list[float]]] = dataclasses.field(default_factory=list)
    band_connections: list[bool] = dataclasses.field(default_factory=list)
    dos_frequencies_THz: list[float] = dataclasses.field(default_factory=list)
    dos: list[float] = dataclasses.field(default_factory=list)
    thermal: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    supercell_matrix: list[list[int]] = dataclasses.field(default_factory=list)
    displacement: float = 0.01
    n_displacements: int = 0
    relaxation: dict[str, Any] = dataclasses.field(default_factory=dict)


def phonons(
    atoms: Atoms,
    calc: Any,
    *,
    supercell: tuple[int, int, int] | list[list[int]] = (2, 2, 2),
    displacement: float = 0.01,
    relax_first: bool = True,
    relax_cell: bool | None = None,
    fmax: float = 1e-4,
    max_steps: int = 500,
    subtract_residual_forces: bool = True,
    symmetrize_force_constants: bool = True,
    mesh: tuple[int, int, int] = (12, 12, 12),
    band_points: int = 51,
    temperatures: tuple[float, float, float] = (0.0, 1000.0, 50.0),
    imaginary_threshold: float = 0.05,
    outdir: str | os.PathLike | None = None,
) -> PhononResult:
    """Harmonic phonons of ``atoms`` (not modified) with finite displacements.

    Parameters
    ----------
    supercell : tuple of int or 3x3 list
        Supercell matrix relative to ``atoms``.
    displacement : float
        Displacement amplitude (A).
    relax_first : bool
        Relax positions (and the cell if ``relax_cell``) to ``fmax`` (eV/A) first.
    relax_cell : bool, optional
        Relax the cell too; default: when the calculator has stress and the
        structure is fully periodic (phonons of a strained cell are not the
        model's phonons). The residual stress is in ``relaxation``.
    subtract_residual_forces : bool
        Subtract the forces of the undisplaced supercell from each displaced one
        (docs/spec.md §2.4).
    symmetrize_force_constants : bool
        Impose translational invariance (the acoustic sum rule) on the force
        constants, as the DFT reference does; for exact forces it moves the
        acoustic Gamma modes by about 1e-6 THz and the rest by round-off.
    mesh : tuple of int
        q mesh for DOS and thermal properties.
    temperatures : tuple of float
        ``(t_min, t_max, t_step)`` in K.
    imaginary_threshold : float
        Modes below ``-imaginary_threshold`` THz are reported as imaginary.
    outdir : str or PathLike, optional
        Also write phonopy's own files there (:func:`write_phonopy_files`):
        ``phonopy.yaml`` (with force constants, readable by ``phonopy.load``),
        ``band.yaml`` and ``FORCE_CONSTANTS``.

    Returns
    -------
    PhononResult
        Frequencies in THz (and cm^-1 at Gamma), sorted; imaginary modes negative.
    """
    timings: dict[str, float] = {}
    warnings: list[str] = []
    if relax_cell is None:
        relax_cell = has_stress(calc) and bool(np.all(atoms.pbc))
    unit, relaxation = prepare_structure(
        atoms,
        calc,
        enabled=relax_first,
        cell=relax_cell,
        fmax=fmax,
        steps=max_steps,
        timings=timings,
        warnings=warnings,
    )
    harmonic = pansim_phonons.harmonic_phonons(
        unit,
        lambda structures: evaluate_forces(structures, calc, "phonon displacements"),
        supercell=supercell,
        displacement=displacement,
        subtract_residual_forces=subtract_residual_forces,
        symmetrize_force_constants=symmetrize_force_constants,
        mesh=mesh,
        band_points=band_points,
        temperatures=temperatures,
        imaginary_threshold=imaginary_threshold,
        timings=timings,
    )
    fields, matrix = dict(harmonic.fields), harmonic.supercell_matrix
    files = {} if outdir is None else write_phonopy_files(harmonic.phonon, outdir)
    fields["imaginary_modes"] = harmonic.imaginary_modes
    if fields["imaginary_modes"]:
        n = len(fields["imaginary_modes"])
        warnings.append(f"{n} imaginary modes below -{imaginary_threshold} THz")
    inputs = dict(supercell=matrix, displacement=displacement, relax_first=relax_first, fmax=fmax)
    inputs.update(relax_cell=relax_cell, phonopy_files=files)
    inputs.update(subtract_residual_forces=subtract_residual_forces, mesh=mesh)
    inputs.update(symmetrize_force_constants=symmetrize_force_constants)
    residual = harmonic.residual_forces
    inputs.update(max_residual_force=float(np.abs(residual).max()), band_points=band_points)
    return PhononResult(
        units=dict(PHONON_UNITS),
        provenance=provenance(atoms, calc, inputs, timings),
        warnings=warnings,
        supercell_matrix=matrix.tolist(),
        displacement=displacement,
        n_displacements=harmonic.n_displacements,
        relaxation=relaxation,
        **fields,
    )


def write_phonopy_files(phonon, outdir: str | os.PathLike) -> dict[str, str]:
    """Write phonopy's own files into ``outdir`` (each atomically); return their paths.

    ``phonopy.yaml`` (structure, supercell matrix, displacements and force
    constants: ``phonopy.load("phonopy.yaml")`` rebuilds the phonons),
    ``band.yaml`` (the band structure, for ``phonopy-bandplot``) and
    ``FORCE_CONSTANTS`` (phonopy's plain-text force constants). Units: eV, A, AMU.
    """
    from phonopy.file_IO import write_FORCE_CONSTANTS

    from pansim.files import atomic_path

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    files = {}
    with atomic_path(outdir / "phonopy.yaml") as tmp:
        phonon.save(filename=str(tmp), settings={"force_constants": True})
    files["phonopy_yaml"] = str(outdir / "phonopy.yaml")
    if phonon.band_structure is not None:
        with atomic_path(outdir / "band.yaml") as tmp:
            phonon.band_structure.write_yaml(filename=str(tmp))
        files["band_yaml"] = str(outdir / "band.yaml")
    with atomic_path(outdir / "FORCE_CONSTANTS") as tmp:
        write_FORCE_CONSTANTS(phonon.force_constants, filename=str(tmp))
    files["force_constants"] = str(outdir / "FORCE_CONSTANTS")
    return files


def set_forces(phonon, calc: Any, subtract_residual: bool) -> np.ndarray:
    """Evaluate displaced supercells (one batch, plus the perfect one); set ``phonon.forces``.

    Returns the residual forces of the undisplaced supercell ``[n_atoms, 3]`` (eV/A),
    which are subtracted from every displaced one when ``subtract_residual``. Kept for
    callers of the step-by-step sequence; :func:`phonons` goes through
    :func:`pansim.phonons.harmonic_phonons`.
    """
    from pansim.phonons import supercells

    forces = evaluate_forces(supercells(phonon), calc, "phonon displacements")
    residual = forces[-1]
    phonon.forces = forces[:-1] - residual if subtract_residual else forces[:-1]
    return residual


def _ticks(result: PhononResult) -> tuple[list[float], list[str]]:
    """Tick positions and labels of the band path; a break shows as ``U|K``."""
    labels = iter(result.band_labels)
    connections = result.band_connections or [True] * len(result.band_distances)
    ticks: list[float] = []
    names: list[str] = []
    for k, d in enumerate(result.band_distances):
        if k == 0:
            ticks.append(d[0])
            names.append(next(labels, ""))
        elif not connections[k - 1]:
            names[-1] += "|" + next(labels, "")
        ticks.append(d[-1])
        names.append(next(labels, ""))
    return ticks, names


def plot_phonons(result: PhononResult, path) -> None:
    """Band structure (left) and total DOS (right) on a shared frequency axis."""
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(9.0, 4.5))
    for d, f in zip(result.band_distances, result.band_frequencies_THz, strict=True):
        ax1.plot(d, f, "-", color="C0", lw=1)
    ticks, names = _ticks(result)
    for x in ticks:
        ax1.axvline(x, color="0.7", lw=0.5)
    ax1.set_xticks(ticks, [s.replace("Gamma", "$\\Gamma$") for s in names])
    ax1.set_xlim(ticks[0], ticks[-1])
    ax1.axhline(0.0, color="k", lw=0.5)
    ax1.set_ylabel("frequency (THz)")
    ax2.plot(result.dos, result.dos_frequencies_THz, "-", color="C1")
    ax2.set_xlabel("DOS")
    ax2.set_ylim(ax1.get_ylim())
    save_figure(fig, path)


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim phonons``."""
    from pansim.cli_common import (
        positive_float,
        positive_int,
    )

    add_common_arguments(parser)
    parser.add_argument(
        "--supercell", type=positive_int, nargs=3, default=[2, 2, 2], help="diagonal supercell"
    )
    parser.add_argument(
        "--displacement", type=positive_float, default=0.01, help="displacement (A)"
    )
    parser.add_argument("--fmax", type=positive_float, default=1e-4, help="relaxation fmax (eV/A)")
    parser.add_argument(
        "--mesh", type=positive_int, nargs=3, default=[12, 12, 12], help="q mesh for DOS"
    )
    parser.add_argument("--no-relax", action="store_true", help="skip the relaxation")
    parser.add_argument(
        "--fixed-cell",
        action="store_true",
        help="relax the positions only (default: the cell too, when the model has stress)",
    )
    parser.add_argument("--relax-cell", action="store_true", help=argparse.SUPPRESS)  # default
    parser.add_argument(
        "--keep-residual-forces", action="store_true", help="do not subtract undisplaced forces"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``pansim phonons``; imaginary modes are reported, not fatal."""
    calc = cli_calculator(args)
    result = phonons(
        read_structure(args.structure),
        calc,
        supercell=tuple(args.supercell),
        displacement=args.displacement,
        relax_first=not args.no_relax,
        relax_cell=False if args.fixed_cell else None,
        fmax=args.fmax,
        mesh=tuple(args.mesh),
        subtract_residual_forces=not args.keep_residual_forces,
        outdir=args.out,
    )
    write_outputs(result, args.out, plot_phonons)
    print("Gamma (THz): " + " ".join(f"{f:.3f}" for f in result.gamma_frequencies_THz))
    for label, freqs in result.high_symmetry_THz.items():
        print(f"{label:>6} (THz): " + " ".join(f"{f:.3f}" for f in freqs))
    if result.imaginary_modes:
        print(f"{len(result.imaginary_modes)} imaginary modes (see result.json)")
    return 0
