"""Harmonic vibrations of a molecule (any finite structure) by central finite differences.

Sequence: tight relaxation of a copy (BFGS, ``fmax`` 1e-4 eV/A by default; a run
that hits its step limit is reported, not retried) -> central differences of
the forces, every Cartesian coordinate displaced by ``+-delta`` (one batched
call when the calculator has ``batch_evaluate``) -> symmetrised Hessian ->
mass-weighted analysis.

Rigid-body motion: the 6 (5 for a linear structure) translations and
rotations are built explicitly in mass-weighted coordinates. With
``project=True`` (default) the internal frequencies are the eigenvalues of the
Hessian on the orthogonal complement of that space (Eckart projection, as
quantum-chemistry codes do) and the rigid-body block is reported separately:
its frequencies should be near zero, and their size measures residual forces
and numerical noise. With ``project=False`` the full Hessian is diagonalised and
the 6 (5) modes of smallest ``|frequency|`` are set aside.

Frequencies are in cm^-1, sorted, imaginary ones as negative numbers.

Python::

    from workflows.vibrations import vibrations
    res = vibrations(atoms, calc, delta=0.01)
    res.frequencies_cm1, res.imaginary_cm1

CLI: ``pansim vibrations --model NAME --structure mol.xyz --out out/`` writes
``out/result.json`` and ``out/plot.png`` (stick spectrum, or frequency parity
when ``--reference REF.json`` gives reference frequencies).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from pansim.structures import is_linear, rigid_body_basis  # noqa: F401 - re-exported
from workflows._common import (
    WorkflowResult,
    add_common_arguments,
    cli_calculator,
    evaluate_forces,
    new_figure,
    prepare_structure,
    provenance,
    read_structure,
    save_figure,
    timed,
    with_calc,
    write_outputs,
)

#: sqrt(eV / (A^2 amu)) -> eV (hbar * omega), as in ase.vibrations
_HBAR_OMEGA = units._hbar * 1e10 / np.sqrt(units._e * units._amu)
#: internal modes more imaginary than this (cm^-1) are reported as imaginary
IMAGINARY_TOL_CM1 = 1.0

VIB_UNITS = {
    "positions_A": "A",
    "energy_eV": "eV",
    "frequencies_cm1": "cm^-1 (internal modes, sorted; imaginary as negative)",
    "rigid_body_cm1": "cm^-1 (translations and rotations; ideally 0)",
    "imaginary_cm1": "cm^-1 (negative; internal modes below -1 cm^-1)",
    "zero_point_energy_eV": "eV",
    "displacement_A": "A",
    "hessian_eV_per_A2": "eV/A^2 (Cartesian, symmetrised)",
    "reference_cm1": "cm^-1",
    "mae_cm1": "cm^-1",
    "max_abs_error_cm1": "cm^-1",
    "mean_signed_error_cm1": "cm^-1 (negative = red shift)",
    "highest_shift_cm1": "cm^-1 (highest mode minus reference; negative = red shift)",
}


@dataclasses.dataclass
class VibrationsResult(WorkflowResult):
    """Harmonic frequencies of a finite structure, with the Hessian and reference metrics."""

    symbols: list[str] = dataclasses.field(default_factory=list)
    positions_A: list[list[float]] = dataclasses.field(default_factory=list)
    energy_eV: float = float("nan")
    linear: bool = False
    projected: bool = True
    frequencies_cm1: list[float] = dataclasses.field(default_factory=list)
    rigid_body_cm1: list[float] = dataclasses.field(default_factory=list)
    imaginary_cm1: list[float] = dataclasses.field(default_factory=list)
    zero_point_energy_eV: float = float("nan")
    displacement_A: float = 0.01
    n_evaluations: int = 0
    hessian_eV_per_A2: list[list[float]] = dataclasses.field(default_factory=list)
    relaxation: dict[str, Any] = dataclasses.field(default_factory=dict)
    reference_cm1: list[float] = dataclasses.field(default_factory=list)
    mae_cm1: float | None = None
    max_abs_error_cm1: float | None = None
    mean_signed_error_cm1: float | None = None
    highest_shift_cm1: float | None = None


# --------------------------------------------------------------------------- pure functions
def displaced_structures(atoms: Atoms, delta: float) -> list[Atoms]:
    """Copies of ``atoms`` with coordinate ``(a, i)`` moved by ``+delta`` then ``-delta`` (A).

    Order: atom-major, then x, y, z, then sign; ``6 N`` structures, no calculator attached.
    """
    out = []
    for a in range(len(atoms)):
        for i in range(3):
            for sign in (1.0, -1.0):
                work = atoms.copy()
                work.calc = None
                work.positions[a, i] += sign * delta
                out.append(work)
    return out


def hessian_from_forces(forces: np.ndarray, delta: float) -> np.ndarray:
    """Symmetrised Cartesian Hessian ``[3N, 3N]`` (eV/A^2) from :func:`displaced_structures` forces.

    ``forces`` is ``[6N, N, 3]`` in the order of :func:`displaced_structures`.
    """
    f = np.asarray(forces, float)
    n = f.shape[1]
    rows = -(f[0::2] - f[1::2]).reshape(3 * n, 3 * n) / (2.0 * delta)
    return 0.5 * (rows + rows.T)


def to_cm1(eigenvalues: np.ndarray) -> np.ndarray:
    """Mass-weighted Hessian eigenvalues (eV/(A^2 amu)) -> signed frequencies (cm^-1)."""
    ev = np.asarray(eigenvalues, float)
    return np.sign(ev) * _HBAR_OMEGA * np.sqrt(np.abs(ev)) / units.invcm


def harmonic_analysis(
    hessian: np.ndarray,
    positions: np.ndarray,
    masses: np.ndarray,
    project: bool = True,
    imaginary_tol: float = IMAGINARY_TOL_CM1,
) -> dict[str, Any]:
    """Internal and rigid-body frequencies (cm^-1, sorted) of a Cartesian Hessian (eV/A^2).

    Returns ``{"frequencies_cm1", "rigid_body_cm1", "imaginary_cm1", "linear",
    "zero_point_energy_eV"}``; imaginary frequencies are negative, and those below
    ``-imaginary_tol`` (cm^-1) are listed in ``imaginary_cm1`` (smaller ones are noise).
    """
    m3 = np.repeat(np.asarray(masses, float), 3)
    hmw = np.asarray(hessian, float) / np.sqrt(np.outer(m3, m3))
    basis = rigid_body_basis(positions, masses)
    k = basis.shape[1]
    if project:
        u, _, _ = np.linalg.svd(basis, full_matrices=True)
        internal = u[:, k:]
        freqs = np.sort(to_cm1(np.linalg.eigvalsh(internal.T @ hmw @ internal)))
        rigid = to_cm1(np.linalg.eigvalsh(basis.T @ hmw @ basis))
    else:
        all_f = to_cm1(np.linalg.eigvalsh(hmw))
        order = np.argsort(np.abs(all_f))
        rigid, freqs = all_f[order[:k]], np.sort(all_f[order[k:]])
    zpe = 0.5 * float(np.sum(freqs[freqs > 0])) * units.invcm
    return {
        "frequencies_cm1": freqs.tolist(),
        "rigid_body_cm1": np.sort(rigid).tolist(),
        "imaginary_cm1": freqs[freqs < -imaginary_tol].tolist(),
        "linear": k == 5,
        "zero_point_energy_eV": zpe,
    }


def compare_frequencies(freqs: list[float], reference: list[float]) -> dict[str, float]:
    """Sorted-mode comparison (cm^-1): MAE, max |error|, mean signed error, highest-mode shift."""
    f, r = np.sort(np.asarray(freqs, float)), np.sort(np.asarray(reference, float))
    if len(f) != len(r):
        raise ValueError(f"{len(f)} frequencies against {len(r)} reference frequencies")
    err = f - r
    return {
        "mae_cm1": float(np.mean(np.abs(err))),
        "max_abs_error_cm1": float(np.max(np.abs(err))),
        "mean_signed_error_cm1": float(np.mean(err)),
        "highest_shift_cm1": float(f[-1] - r[-1]),
    }


def load_reference_frequencies(reference: Any) -> list[float]:
    """Reference frequencies (cm^-1) from a list, a result dict, or a JSON file of either.

    A dict may hold ``frequencies_cm1`` directly or under ``"vibrations"``.
    """
    if isinstance(reference, (str, Path)):
        reference = json.loads(Path(reference).read_text())
    if isinstance(reference, dict):
        reference = reference.get("vibrations", reference)["frequencies_cm1"]
    return sorted(float(x) for x in reference)


# --------------------------------------------------------------------------- workflow
def relaxed_start(
    atoms: Atoms,
    calc: Any,
    enabled: bool,
    fmax: float,
    steps: int,
    timings: dict[str, float],
    warnings: list[str],
) -> tuple[Atoms, dict[str, Any]]:
    """A relaxed copy (positions only, no symmetry constraint: no cell needed) and its summary.

    A relaxation that hits ``steps`` is recorded in ``warnings``; the run goes on from there.
    """
    start, summary = prepare_structure(
        atoms,
        calc,
        enabled=enabled,
        cell=False,
        fmax=fmax,
        steps=steps,
        timings=timings,
        warnings=warnings,
        symmetry=False,
    )
    summary.pop("cell", None)  # a finite structure has no cell to relax
    return start, summary


def vibrations(
    atoms: Atoms,
    calc: Any,
    *,
    delta: float = 0.01,
    relax_first: bool = True,
    fmax: float = 1e-4,
    max_steps: int = 1000,
    project: bool = True,
    reference: Any = None,
) -> VibrationsResult:
    """Relax a copy of ``atoms``, then harmonic frequencies by central differences.

    Parameters
    ----------
    atoms : Atoms
        Finite structure (molecule, cluster); not modified.
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator; ``calc.batch_evaluate(structures)`` is used when present.
    delta : float
        Cartesian displacement (A).
    fmax, max_steps : float, int
        Relaxation criterion (eV/A) and step limit; a relaxation that does not
        converge is recorded in ``warnings`` and ``relaxation``.
    project : bool
        Project translations and rotations out (see the module docstring).
    reference : list, dict or path, optional
        Reference frequencies (cm^-1), see :func:`load_reference_frequencies`.
    """
    timings: dict[str, float] = {}
    warnings: list[str] = []
    start, relaxation = relaxed_start(atoms, calc, relax_first, fmax, max_steps, timings, warnings)
    with timed(timings, "hessian"):
        energy = float(with_calc(start, calc).get_potential_energy())
        structures = displaced_structures(start, delta)
        hessian = hessian_from_forces(
            evaluate_forces(structures, calc, "vibration displacements"), delta
        )
    modes = harmonic_analysis(hessian, start.positions, start.get_masses(), project)
    imaginary = modes["imaginary_cm1"]
    if imaginary:
        warnings.append(f"{len(imaginary)} imaginary mode(s) (cm^-1): {imaginary}")
    ref = load_reference_frequencies(reference) if reference is not None else []
    metrics: dict[str, float] = {}
    if ref:
        try:
            metrics = compare_frequencies(modes["frequencies_cm1"], ref)
        except ValueError as err:
            warnings.append(f"reference not compared: {err}")
    inputs = dict(delta=delta, relax_first=relax_first, fmax=fmax, max_steps=max_steps)
    inputs.update(project=project, reference=bool(ref))
    return VibrationsResult(
        units=dict(VIB_UNITS),
        provenance=provenance(atoms, calc, inputs, timings),
        warnings=warnings,
        symbols=start.get_chemical_symbols(),
        positions_A=start.positions.tolist(),
        energy_eV=energy,
        projected=project,
        displacement_A=delta,
        n_evaluations=len(structures) + 1,
        hessian_eV_per_A2=hessian.tolist(),
        relaxation=relaxation,
        reference_cm1=ref,
        **modes,
        **metrics,
    )


def plot_vibrations(result: VibrationsResult, path) -> None:
    """Stick spectrum; with reference frequencies also a parity plot of the sorted modes."""
    freqs = np.array(result.frequencies_cm1, float)
    ref = np.array(result.reference_cm1, float)
    both = len(ref) == len(freqs) and len(ref) > 0
    fig, axes = new_figure(1, 2 if both else 1, figsize=(11.0 if both else 6.0, 4.0))
    ax = axes[0] if both else axes
    ax.vlines(freqs, 0, 1, colors="C0", label="model")
    if len(ref):
        ax.vlines(ref, 0, -1, colors="C1", label="reference")
        ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("frequency (cm$^{-1}$)")
    ax.set_yticks([])
    ax.set_title(f"{len(freqs)} internal modes, {len(result.imaginary_cm1)} imaginary")
    ax.legend()
    if both:
        ax2 = axes[1]
        lim = [min(0.0, ref.min(), freqs.min()), 1.05 * max(ref.max(), freqs.max())]
        ax2.plot(lim, lim, "k-", lw=0.5)
        ax2.plot(ref, freqs, "o")
        ax2.set_xlabel("reference (cm$^{-1}$)")
        ax2.set_ylabel("model (cm$^{-1}$)")
        ax2.set_title(
            f"MAE {result.mae_cm1:.1f} cm$^{{-1}}$, highest shift {result.highest_shift_cm1:+.1f}"
        )
    save_figure(fig, path)


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim vibrations``."""
    from pansim.cli_common import (
        nonnegative_int,
        positive_float,
    )

    add_common_arguments(parser)
    parser.add_argument("--delta", type=positive_float, default=0.01, help="displacement (A)")
    parser.add_argument("--fmax", type=positive_float, default=1e-4, help="relaxation fmax (eV/A)")
    parser.add_argument(
        "--max-steps", type=nonnegative_int, default=1000, help="relaxation step limit"
    )
    parser.add_argument("--no-relax", action="store_true", help="skip the relaxation")
    parser.add_argument(
        "--no-project", action="store_true", help="do not project out translations/rotations"
    )
    parser.add_argument(
        "--reference", help="JSON with reference 'frequencies_cm1' (e.g. a vibrations.json)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``pansim vibrations``; exit code 1 when the relaxation did not converge."""
    result = vibrations(
        read_structure(args.structure),
        cli_calculator(args),
        delta=args.delta,
        relax_first=not args.no_relax,
        fmax=args.fmax,
        max_steps=args.max_steps,
        project=not args.no_project,
        reference=args.reference,
    )
    write_outputs(result, args.out, plot_vibrations)
    f = result.frequencies_cm1
    if f:
        print(f"{len(f)} modes, {f[0]:.1f} .. {f[-1]:.1f} cm^-1; imaginary: {result.imaginary_cm1}")
    if result.mae_cm1 is not None:
        print(f"MAE {result.mae_cm1:.2f} cm^-1, highest shift {result.highest_shift_cm1:+.2f}")
    return 0 if result.relaxation.get("converged", True) else 1
