"""Elastic constants from stress-strain, with ionic relaxation under each strain.

For each Voigt component j, the relaxed cell is deformed by ``F = 1 + eps(j, e)``
for a few strains ``e`` (engineering shear for j = 4, 5, 6), ions are relaxed, and
column j of C is the least-squares slope of the Voigt stress against ``e``.
Stress follows ASE's sign convention (positive = tensile), so ``sigma = C eps``.

Frame: ``C`` is reported in spglib's standardized conventional frame of the
relaxed crystal (the IEEE 176 frame for cubic, tetragonal, orthorhombic and
hexagonal crystals; see :mod:`workflows.frames`), whatever the input's setting
(primitive cell from a CIF, rotated cell, conventional cell). The strains are
applied in the input frame and the fitted tensor is rotated; ``frame`` records
the space group and the rotation ``R`` (``x_standard = R @ x_input``), and
``C_input_frame`` keeps the matrix before rotation. ``frame="input"`` skips
the rotation.

Python::

    from workflows.elastic import elastic_constants
    res = elastic_constants(atoms, calc)
    res.C, res.bulk_modulus_vrh, res.born_stable

CLI: ``pansim elastic --model emt --structure Cu.cif --out out/``.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import numpy as np
from ase import Atoms, units

from pansim.fits import fit_columns  # noqa: F401 - re-exported
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
from workflows.frames import rotate_stiffness, rotate_stiffness_error, standard_frame

#: Voigt index -> the (i, j) pairs of the symmetric strain tensor it sets.
VOIGT_PAIRS = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]

ELASTIC_UNITS = {
    "C": "GPa",
    "C_std_err": "GPa",
    "bulk_modulus_voigt": "GPa",
    "bulk_modulus_reuss": "GPa",
    "bulk_modulus_vrh": "GPa",
    "shear_modulus_voigt": "GPa",
    "shear_modulus_reuss": "GPa",
    "shear_modulus_vrh": "GPa",
    "eigenvalues": "GPa",
    "strains": "dimensionless (engineering shear)",
}


class StressNotAvailableError(ValueError):
    """The calculator cannot provide the stress that elastic constants need."""


@dataclasses.dataclass
class ElasticResult(WorkflowResult):
    """Full 6x6 C (GPa, Voigt order xx yy zz yz xz xy), VRH moduli and Born stability."""

    C: list[list[float]] = dataclasses.field(default_factory=list)
    C_std_err: list[list[float]] = dataclasses.field(default_factory=list)
    bulk_modulus_voigt: float = float("nan")
    bulk_modulus_reuss: float = float("nan")
    bulk_modulus_vrh: float = float("nan")
    shear_modulus_voigt: float = float("nan")
    shear_modulus_reuss: float = float("nan")
    shear_modulus_vrh: float = float("nan")
    eigenvalues: list[float] = dataclasses.field(default_factory=list)
    born_stable: bool = False
    strains: list[float] = dataclasses.field(default_factory=list)
    stresses: list[list[list[float]]] = dataclasses.field(default_factory=list)
    relaxation: dict[str, Any] = dataclasses.field(default_factory=dict)
    frame: dict[str, Any] = dataclasses.field(default_factory=dict)
    C_input_frame: list[list[float]] = dataclasses.field(default_factory=list)

    @property
    def cubic(self) -> dict[str, float]:
        """Cubic averages C11, C12, C44 (GPa) of the fitted matrix."""
        c = np.array(self.C)
        return {
            "C11": float(np.mean(np.diag(c)[:3])),
            "C12": float(np.mean([c[0, 1], c[0, 2], c[1, 2]])),
            "C44": float(np.mean(np.diag(c)[3:])),
        }


def strain_matrix(voigt: int, e: float) -> np.ndarray:
    """Symmetric 3x3 strain with Voigt component ``voigt`` equal to ``e`` (engineering shear)."""
    eps = np.zeros((3, 3))
    i, j = VOIGT_PAIRS[voigt]
    value = e if i == j else e / 2.0
    eps[i, j] = eps[j, i] = value
    return eps


def voigt_stress(stress_3x3: np.ndarray) -> np.ndarray:
    """Voigt vector (xx, yy, zz, yz, xz, xy) of a 3x3 stress."""
    return np.array([stress_3x3[i, j] for i, j in VOIGT_PAIRS])


def vrh_moduli(c: np.ndarray) -> dict[str, float]:
    """Voigt, Reuss and Hill bulk and shear moduli of a 6x6 stiffness (same unit as ``c``)."""
    s = np.linalg.inv(c)
    kv = (c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[1, 2] + c[0, 2])) / 9
    gv = (
        c[0, 0]
        + c[1, 1]
        + c[2, 2]
        - (c[0, 1] + c[1, 2] + c[0, 2])
        + 3 * (c[3, 3] + c[4, 4] + c[5, 5])
    ) / 15
    kr = 1 / (s[0, 0] + s[1, 1] + s[2, 2] + 2 * (s[0, 1] + s[1, 2] + s[0, 2]))
    gr = 15 / (
        4 * (s[0, 0] + s[1, 1] + s[2, 2])
        - 4 * (s[0, 1] + s[1, 2] + s[0, 2])
        + 3 * (s[3, 3] + s[4, 4] + s[5, 5])
    )
    return {
        "bulk_modulus_voigt": kv,
        "bulk_modulus_reuss": kr,
        "bulk_modulus_vrh": (kv + kr) / 2,
        "shear_modulus_voigt": gv,
        "shear_modulus_reuss": gr,
        "shear_modulus_vrh": (gv + gr) / 2,
    }


def born_stability(c: np.ndarray, rtol: float = 1e-4) -> tuple[bool, np.ndarray]:
    """General Born criterion: every eigenvalue of the symmetric 6x6 C is positive.

    Eigenvalues below ``rtol * max|eigenvalue|`` count as zero (numerical noise),
    so a floppy lattice is reported unstable. Returns ``(stable, eigenvalues)``.
    """
    eig = np.linalg.eigvalsh(0.5 * (c + c.T))
    return bool(np.all(eig > rtol * np.abs(eig).max())), eig


def _strained_stress(
    relaxed: Atoms, calc: Any, eps: np.ndarray, relax_ions: bool, fmax: float
) -> np.ndarray:
    """3x3 stress (eV/A^3) of ``relaxed`` deformed by ``1 + eps``, ions relaxed if asked."""
    work = with_calc(relaxed, calc)
    work.set_cell(relaxed.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    if relax_ions and len(work) > 1:
        work = relax(work, calc, fmax=fmax, steps=300, symmetry=False).atoms
    return work.get_stress(voigt=False)


def elastic_constants(
    atoms: Atoms,
    calc: Any,
    *,
    max_strain: float = 0.005,
    n_strains: int = 4,
    relax_ions: bool = True,
    relax_cell_first: bool = True,
    fmax: float = 1e-4,
    max_steps: int = 300,
    frame: str = "standard",
    symprec: float = 1e-3,
) -> ElasticResult:
    """Full elastic tensor of ``atoms`` by stress-strain with relaxed ions.

    Parameters
    ----------
    max_strain : float
        Largest strain magnitude; ``n_strains`` values evenly spaced in
        ``[-max_strain, max_strain]`` without zero.
    relax_ions : bool
        Relax ionic positions at each strain (internal strain, e.g. Si).
    relax_cell_first : bool
        Relax positions and cell before straining.
    frame : {"standard", "input"}
        Report ``C`` in the standardized conventional frame of the crystal
        (default; see the module notes) or in the input's Cartesian frame.
    symprec : float
        spglib's symmetry tolerance (A) for finding the standard frame.

    Returns
    -------
    ElasticResult
        ``C`` (6x6 GPa), VRH moduli (GPa), eigenvalues (GPa), ``born_stable``.

    Raises
    ------
    StressNotAvailableError
        When the calculator does not implement stress.
    """
    if frame not in ("standard", "input"):
        raise ValueError(f"frame must be 'standard' or 'input', not {frame!r}")
    if not has_stress(calc):
        raise StressNotAvailableError(
            f"calculator {type(calc).__name__} does not implement 'stress'; "
            "elastic constants need the stress tensor"
        )
    timings: dict[str, float] = {}
    warnings: list[str] = []
    relaxed, relaxation = prepare_structure(
        atoms,
        calc,
        enabled=relax_cell_first,
        cell=True,
        fmax=fmax,
        steps=max_steps,
        timings=timings,
        warnings=warnings,
    )
    half = np.linspace(max_strain / (n_strains // 2), max_strain, max(n_strains // 2, 1))
    strains = np.concatenate([-half[::-1], half])
    with timed(timings, "strains"):
        stresses = np.array(
            [
                [
                    voigt_stress(
                        _strained_stress(relaxed, calc, strain_matrix(j, e), relax_ions, fmax)
                    )
                    for e in strains
                ]
                for j in range(6)
            ]
        )
    c, err = fit_columns(strains, stresses)
    c_gpa, err_gpa = c / units.GPa, err / units.GPa
    c_input = 0.5 * (c_gpa + c_gpa.T)
    info = _frame_of(relaxed, frame, symprec)
    rotation = np.array(info["rotation"])
    c_gpa = rotate_stiffness(c_gpa, rotation)
    err_gpa = rotate_stiffness_error(err_gpa, rotation)
    c_sym = 0.5 * (c_gpa + c_gpa.T)
    asym = float(np.abs(c_gpa - c_gpa.T).max())
    if asym > 0.05 * max(np.abs(c_gpa).max(), 1e-12):
        warnings.append(f"fitted C is not symmetric (max |Cij - Cji| = {asym:.2f} GPa)")
    stable, eig = born_stability(c_sym)
    try:
        moduli = vrh_moduli(c_sym)
    except np.linalg.LinAlgError:
        moduli = {}
        warnings.append("C is singular: no Reuss moduli")
    inputs = dict(max_strain=max_strain, n_strains=n_strains, relax_ions=relax_ions)
    inputs.update(relax_cell_first=relax_cell_first, fmax=fmax, max_steps=max_steps)
    inputs.update(frame=frame, symprec=symprec)
    return ElasticResult(
        units=dict(ELASTIC_UNITS),
        provenance=provenance(atoms, calc, inputs, timings),
        warnings=warnings,
        C=c_sym.tolist(),
        C_std_err=err_gpa.tolist(),
        eigenvalues=eig.tolist(),
        born_stable=stable,
        strains=strains.tolist(),
        stresses=(stresses / units.GPa).tolist(),
        relaxation=relaxation,
        frame=info,
        C_input_frame=c_input.tolist(),
        **{k: float(v) for k, v in moduli.items()},
    )


def _frame_of(relaxed: Atoms, frame: str, symprec: float) -> dict[str, Any]:
    """The frame record of the result: the standard frame, or the input frame (identity)."""
    if frame == "input" or not np.all(relaxed.pbc):
        return {"name": "input", "rotation": np.eye(3).tolist()}
    return {"name": "standard conventional (spglib)", **standard_frame(relaxed, symprec)}


def plot_elastic(result: ElasticResult, path) -> None:
    """Stress-strain lines of the six diagonal components and the C matrix as a heat map."""
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10.0, 4.0))
    strains = np.array(result.strains)
    stresses = np.array(result.stresses)
    for j, name in enumerate(["xx", "yy", "zz", "yz", "xz", "xy"]):
        ax1.plot(strains * 100, stresses[j, :, j], "o-", label=name)
    ax1.set_xlabel("strain (%)")
    ax1.set_ylabel("stress, same component (GPa)")
    ax1.legend(fontsize=7)
    c = np.array(result.C)
    image = ax2.imshow(c, cmap="viridis")
    for (i, j), value in np.ndenumerate(c):
        ax2.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7, color="w")
    ax2.set_title(
        f"C (GPa); K_VRH={result.bulk_modulus_vrh:.1f}, G_VRH={result.shear_modulus_vrh:.1f}"
    )
    fig.colorbar(image, ax=ax2)
    save_figure(fig, path)


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim elastic``."""
    from pansim.cli_common import (
        number,
        positive_float,
    )

    add_common_arguments(parser)
    parser.add_argument(
        "--max-strain",
        type=number(float, min=0.0, max=0.1, strict_min=True),
        default=0.005,
        help="largest strain magnitude (dimensionless, e.g. 0.005 = 0.5 %%)",
    )
    parser.add_argument(
        "--strains", type=number(int, min=2), default=4, help="strains per component"
    )
    parser.add_argument("--fmax", type=positive_float, default=1e-4, help="relaxation fmax (eV/A)")
    parser.add_argument("--no-relax-ions", action="store_true", help="clamped-ion constants")
    parser.add_argument(
        "--no-relax",
        action="store_true",
        help="skip relaxing positions and cell first (the residual stress is reported)",
    )
    parser.add_argument(
        "--frame",
        choices=("standard", "input"),
        default="standard",
        help="report C in the standard conventional frame (default) or the input's frame",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``pansim elastic``; exit code 2 when the calculator has no stress."""
    calc = cli_calculator(args)
    try:
        result = elastic_constants(
            read_structure(args.structure),
            calc,
            max_strain=args.max_strain,
            n_strains=args.strains,
            relax_ions=not args.no_relax_ions,
            relax_cell_first=not args.no_relax,
            fmax=args.fmax,
            frame=getattr(args, "frame", "standard"),
        )
    except StressNotAvailableError as err:
        print(f"error: {err}")
        return 2
    write_outputs(result, args.out, plot_elastic)
    print(np.array2string(np.array(result.C), precision=1, suppress_small=True))
    print(f"K_VRH = {result.bulk_modulus_vrh:.2f} GPa  G_VRH = {result.shear_modulus_vrh:.2f} GPa")
    print("Born stable" if result.born_stable else "NOT Born stable")
    return 0
