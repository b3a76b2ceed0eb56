"""Equation of state: relax, scan volumes, fit Birch-Murnaghan.

Python::

    from workflows.eos import equation_of_state
    result = equation_of_state(atoms, calc, strain=0.06, n_points=11)
    result.B0  # GPa

CLI: ``pansim eos --model emt --structure Cu.cif --out out/`` writes
``out/result.json`` and ``out/plot.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import numpy as np
from ase import Atoms, units

from pansim.cli_common import progress
from pansim.fits import birch_murnaghan, fit_birch_murnaghan  # noqa: F401 - re-exported
from workflows._common import (
    WorkflowResult,
    add_common_arguments,
    cli_calculator,
    has_stress,
    new_figure,
    prepare_structure,
    provenance,
    read_structure,
    relax,
    save_figure,
    timed,
    with_calc,
    write_outputs,
)
from workflows.bulk_modulus import bulk_modulus_checks, local_bulk_modulus

EOS_UNITS = {
    "V0": "A^3/atom",
    "E0": "eV/atom",
    "B0": "GPa",
    "B0_prime": "dimensionless",
    "fit_rms_residual": "eV/atom",
    "B_V0": "GPa",
    "local_bulk_modulus": "GPa",
    "pressures": "GPa",
    "volumes": "A^3/atom",
    "energies": "eV/atom",
}


@dataclasses.dataclass
class EOSResult(WorkflowResult):
    """Birch-Murnaghan fit of E(V) per atom, with the scanned points and compressed points."""

    V0: float = float("nan")
    E0: float = float("nan")
    B0: float = float("nan")
    B0_prime: float = float("nan")
    fit_rms_residual: float = float("nan")
    volumes: list[float] = dataclasses.field(default_factory=list)
    energies: list[float] = dataclasses.field(default_factory=list)
    compressed: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    relaxation: dict[str, Any] = dataclasses.field(default_factory=dict)
    B_V0: float = float("nan")
    local_bulk_modulus: list[float] = dataclasses.field(default_factory=list)
    pressures: list[float] = dataclasses.field(default_factory=list)
    checks: dict[str, Any] = dataclasses.field(default_factory=dict)


def _energy_at_volume(
    relaxed: Atoms,
    calc: Any,
    volume_ratio: float,
    relax_positions: bool,
    fmax: float,
    pressures: list[float] | None = None,
) -> float:
    """Energy (eV/atom) of ``relaxed`` scaled isotropically to ``volume_ratio``, ions relaxed.

    With a ``pressures`` list the pressure (eV/A^3, from the stress) is appended to it.
    """
    work = with_calc(relaxed, calc)
    work.set_cell(relaxed.cell * volume_ratio ** (1.0 / 3.0), scale_atoms=True)
    if relax_positions and len(work) > 1:
        work = relax(work, calc, fmax=fmax, steps=200).atoms
    if pressures is not None:
        pressures.append(-float(np.mean(work.get_stress()[:3])))
    return work.get_potential_energy() / len(work)


def equation_of_state(
    atoms: Atoms,
    calc: Any,
    *,
    strain: float = 0.06,
    n_points: int = 11,
    relax_first: bool = True,
    relax_positions: bool = True,
    fmax: float = 1e-3,
    max_steps: int = 300,
    compressed: tuple[float, ...] = (0.80, 0.85, 0.90),
) -> EOSResult:
    """Relax ``atoms``, scan ``n_points`` volumes over ``1 +- strain``, fit Birch-Murnaghan.

    Parameters
    ----------
    atoms : Atoms
        Periodic structure (not modified).
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator; without stress only positions are relaxed first.
    strain : float
        Half-width of the volume scan as a fraction of the relaxed volume.
    n_points : int
        Number of volumes (at least 9 recommended, at least 5 required).
    compressed : tuple of float
        Volume ratios V/V0 evaluated after the fit (short-range repulsion check).

    Returns
    -------
    EOSResult
        ``V0`` (A^3/atom), ``E0`` (eV/atom), ``B0`` (GPa), ``B0_prime``, residual (eV/atom);
        the local bulk modulus ``B(V) = -V dP/dV`` (from the stress; ``V d2E/dV2``
        without it) at every scanned volume and interpolated at V0 (``B_V0``),
        and ``checks`` (see :func:`workflows.bulk_modulus.bulk_modulus_checks`),
        whose findings (B0' outside 2..8, B(V) not decreasing within +-6 % of
        V0) are also in ``warnings``.
    """
    if n_points < 5:
        raise ValueError("n_points must be at least 5 for a 4-parameter fit")
    timings: dict[str, float] = {}
    warnings: list[str] = []
    cell = has_stress(calc)
    if relax_first and not cell:
        warnings.append("calculator has no stress: cell not relaxed, scan centred on input")
    start, relaxation = prepare_structure(
        atoms,
        calc,
        enabled=relax_first,
        cell=cell,
        fmax=fmax,
        steps=max_steps,
        timings=timings,
        warnings=warnings,
    )
    ratios = np.linspace(1.0 - strain, 1.0 + strain, n_points)
    v_ref = start.get_volume() / len(start)
    pressures: list[float] | None = [] if cell else None
    with timed(timings, "scan"):
        energies = np.array(
            [
                _energy_at_volume(start, calc, r, relax_positions, fmax, pressures)
                for r in progress(ratios, total=len(ratios), desc="eos volumes")
            ]
        )
    volumes = ratios * v_ref
    (e0, v0, b0, bp), rms = fit_birch_murnaghan(volumes, energies)
    local_b = local_bulk_modulus(volumes, energies, pressures or None)
    checks = bulk_modulus_checks(volumes, local_b, v0, bp)
    warnings.extend(checks["warnings"])
    if not volumes.min() <= v0 <= volumes.max():
        warnings.append(f"fitted V0={v0:.3f} lies outside the scanned range")
    comp_e = [float("nan")] * len(compressed)
    if volumes.min() <= v0 <= volumes.max():
        with timed(timings, "compressed"):
            comp_e = [
                _energy_at_volume(start, calc, r * v0 / v_ref, relax_positions, fmax)
                for r in compressed
            ]
    inputs = dict(strain=strain, n_points=n_points, relax_first=relax_first, fmax=fmax)
    inputs.update(relax_positions=relax_positions, max_steps=max_steps)
    return EOSResult(
        units=dict(EOS_UNITS),
        provenance=provenance(atoms, calc, inputs, timings),
        warnings=warnings,
        V0=float(v0),
        E0=float(e0),
        B0=float(b0 / units.GPa),
        B0_prime=float(bp),
        fit_rms_residual=rms,
        volumes=volumes.tolist(),
        energies=energies.tolist(),
        compressed={
            "volume_ratio": list(compressed),
            "energy_eV_per_atom": comp_e,
            "bm_energy_eV_per_atom": birch_murnaghan(
                np.array(compressed) * v0, e0, v0, b0, bp
            ).tolist(),
        },
        relaxation=relaxation,
        B_V0=checks["B_V0"],
        local_bulk_modulus=local_b.tolist(),
        pressures=(np.array(pressures) / units.GPa).tolist() if pressures else [],
        checks={k: v for k, v in checks.items() if k != "warnings"},
    )


def plot_eos(result: EOSResult, path) -> None:
    """E(V) points, the Birch-Murnaghan curve and the compressed points."""
    fig, ax = new_figure()
    v = np.array(result.volumes)
    grid = np.linspace(min(v.min(), 0.78 * result.V0), v.max(), 200)
    b0 = result.B0 * units.GPa
    ax.plot(
        grid, birch_murnaghan(grid, result.E0, result.V0, b0, result.B0_prime), "-", label="BM fit"
    )
    ax.plot(v, result.energies, "o", label="scan")
    comp = result.compressed
    if comp.get("volume_ratio"):
        vv = np.array(comp["volume_ratio"]) * result.V0
        ax.plot(vv, comp["energy_eV_per_atom"], "s", label="compressed")
    ax.set_xlabel("volume (A$^3$/atom)")
    ax.set_ylabel("energy (eV/atom)")
    ax.set_title(
        f"V0={result.V0:.3f} A^3, B0={result.B0:.1f} GPa, B(V0)={result.B_V0:.1f} GPa, "
        f"B0'={result.B0_prime:.2f}" + (" (see warnings)" if result.warnings else "")
    )
    ax.legend()
    save_figure(fig, path)


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim eos``."""
    from pansim.cli_common import (
        fraction,
        nonnegative_int,
        number,
        positive_float,
    )

    add_common_arguments(parser)
    parser.add_argument(
        "--strain", type=fraction, default=0.06, help="volume half-range (fraction of V0)"
    )
    parser.add_argument("--points", type=number(int, min=5), default=11, help="number of volumes")
    parser.add_argument("--fmax", type=positive_float, default=1e-3, help="relaxation fmax (eV/A)")
    parser.add_argument(
        "--max-steps", type=nonnegative_int, default=300, help="relaxation step limit"
    )
    parser.add_argument("--no-relax", action="store_true", help="skip the initial relaxation")


def run(args: argparse.Namespace) -> int:
    """Run ``pansim eos``; exit code 1 when the relaxation did not converge."""
    calc = cli_calculator(args)
    result = equation_of_state(
        read_structure(args.structure),
        calc,
        strain=args.strain,
        n_points=args.points,
        relax_first=not args.no_relax,
        fmax=args.fmax,
        max_steps=args.max_steps,
    )
    write_outputs(result, args.out, plot_eos)
    print(f"V0 = {result.V0:.4f} A^3/atom  E0 = {result.E0:.4f} eV/atom  B0 = {result.B0:.2f} GPa")
    print(f"B(V0) = {result.B_V0:.2f} GPa (local, -V dP/dV)  B0' = {result.B0_prime:.2f}")
    return 0 if result.relaxation.get("converged", True) else 1
