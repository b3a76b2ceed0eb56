"""Short-range repulsion: energy and force along compressed contacts, against a reference curve.

Two scans:

- ``contact``: in the crystal, move one atom straight toward its nearest
  neighbour, so that their distance runs from ``rmin_fraction`` to 1 of the
  nearest-neighbour distance (no relaxation);
- ``dimer``: an isolated pair in vacuum.

Energies are relative to the least compressed point (eV, whole cell); the force
is the component on the moved atom along the bond, positive when repulsive.
A reference curve (``r`` in A, ``energy`` in eV, same anchor convention) gives
the RMSE and the softening ratio: model over reference energy rise at the
shortest common distance (below 1 means the model is too soft).

Python::

    from workflows.repulsion import repulsion_scan
    res = repulsion_scan(atoms, calc, reference={"r": r, "energy": e})

CLI: ``pansim repulsion --model emt --structure Cu.cif --reference dft.json --out out/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

import pansim.structures as pansim_structures  # the contact scan, shared with the DFT side
from pansim.structures import contact_cell, contact_scan, nearest_neighbour  # noqa: F401 - re-exported
from workflows._common import (
    WorkflowResult,
    add_common_arguments,
    cli_calculator,
    new_figure,
    provenance,
    read_structure,
    save_figure,
    timed,
    with_calc,
    write_outputs,
)

REPULSION_UNITS = {
    "r_A": "A",
    "energy_eV": "eV (relative to the least compressed point)",
    "force_eV_per_A": "eV/A (along the bond, positive = repulsive)",
    "rmse_eV": "eV",
    "softening_ratio": "dimensionless (model / reference energy rise)",
}


@dataclasses.dataclass
class RepulsionResult(WorkflowResult):
    """Energy and force along a compressed contact or dimer, with reference metrics."""

    mode: str = "contact"
    pair: list[str] = dataclasses.field(default_factory=list)
    r_nn_A: float = float("nan")
    r_A: list[float] = dataclasses.field(default_factory=list)
    energy_eV: list[float] = dataclasses.field(default_factory=list)
    force_eV_per_A: list[float] = dataclasses.field(default_factory=list)
    reference: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    rmse_eV: float | None = None
    softening_ratio: float | None = None
    r_shortest_A: float | None = None


def _energies_forces(cells: list[Atoms], calc: Any) -> tuple[np.ndarray, np.ndarray]:
    """Energies (eV) and forces (eV/A) of ``cells`` with ``calc``, one at a time."""
    energies, forces = [], []
    for cell in cells:
        work = with_calc(cell, calc)
        energies.append(work.get_potential_energy())
        forces.append(work.get_forces())
    return np.array(energies), np.array(forces)


def _scan_contact(
    atoms: Atoms, calc: Any, index: int, fractions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Energy rise (eV) and bond forces (eV/A): :func:`pansim.structures.contact_scan`.

    The DFT reference's contact scan (:mod:`pansim.data.reference`) is the same
    function on the stored DFT energies and forces.
    """
    scan = pansim_structures.contact_scan(
        atoms, lambda cells: _energies_forces(cells, calc), index=index, fractions=fractions
    )
    return scan.energy_eV, scan.force_eV_per_A


def dimer(symbols: list[str], r: float, box: float = 20.0) -> Atoms:
    """Two atoms ``r`` apart along x in a non-periodic box of side ``box`` (A)."""
    centre = box / 2
    return Atoms(
        symbols,
        positions=[[centre - r / 2, centre, centre], [centre + r / 2, centre, centre]],
        cell=[box] * 3,
        pbc=False,
    )


def _scan_dimer(symbols: list[str], calc: Any, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energies (eV) and bond forces (eV/A) of a dimer at distances ``r``."""
    energies, forces = [], []
    for dist in r:
        work = with_calc(dimer(symbols, dist), calc)
        energies.append(work.get_potential_energy())
        forces.append(float(work.get_forces()[1, 0]))
    return np.array(energies), np.array(forces)


def load_curve(reference: Any) -> dict[str, list[float]]:
    """A reference (r, E) curve from a JSON file, a dict or an ``[n, 2]`` array.

    Accepted dict keys: ``r`` or ``r_A``, and ``energy`` or ``energy_eV``; a JSON
    file may hold that dict directly or under ``"repulsion"``.
    """
    if isinstance(reference, (str, Path)):
        reference = json.loads(Path(reference).read_text())
    if isinstance(reference, dict):
        reference = reference.get("repulsion", reference)
        r = reference.get("r", reference.get("r_A"))
        e = reference.get("energy", reference.get("energy_eV"))
        if r is None or e is None:
            raise ValueError("reference curve needs keys 'r' and 'energy'")
    else:
        r, e = np.asarray(reference, dtype=float).T
    order = np.argsort(r)
    return {
        "r": np.asarray(r, float)[order].tolist(),
        "energy": np.asarray(e, float)[order].tolist(),
    }


def compare_curves(
    r: np.ndarray, energy: np.ndarray, ref_r: np.ndarray, ref_e: np.ndarray
) -> tuple[float, float, float]:
    """RMSE (eV), softening ratio and shortest distance on the common range.

    Both curves are shifted to zero at the largest common distance; the model is
    interpolated linearly at the reference distances inside its own range.
    """
    order = np.argsort(r)
    r, energy = np.asarray(r)[order], np.asarray(energy)[order]
    ref_r, ref_e = np.asarray(ref_r, float), np.asarray(ref_e, float)
    inside = (ref_r >= r[0] - 1e-9) & (ref_r <= r[-1] + 1e-9)
    if inside.sum() < 2:
        raise ValueError("reference and model distances overlap in fewer than 2 points")
    rr, re = ref_r[inside], ref_e[inside]
    model = np.interp(rr, r, energy)
    model, re = model - model[-1], re - re[-1]
    rmse = float(np.sqrt(np.mean((model - re) ** 2)))
    ratio = float(model[0] / re[0]) if re[0] != 0 else float("nan")
    return rmse, ratio, float(rr[0])


def repulsion_scan(
    atoms: Atoms,
    calc: Any,
    *,
    mode: str = "contact",
    rmin_fraction: float = 0.6,
    n_points: int = 13,
    index: int = 0,
    reference: Any = None,
) -> RepulsionResult:
    """Scan the compressed nearest-neighbour contact (or dimer) of ``atoms`` (not modified).

    Parameters
    ----------
    mode : {"contact", "dimer"}
        Crystal contact or isolated pair (the species of the nearest pair in ``atoms``).
    rmin_fraction : float
        Shortest distance as a fraction of the nearest-neighbour distance.
    index : int
        Atom moved toward its nearest neighbour.
    reference : path, dict or array, optional
        Reference curve, see :func:`load_curve`.
    """
    if mode not in ("contact", "dimer"):
        raise ValueError("mode must be 'contact' or 'dimer'")
    timings: dict[str, float] = {}
    fractions = np.linspace(rmin_fraction, 1.0, n_points)
    j, vec = nearest_neighbour(atoms, index)
    pair, d_nn = [atoms[index].symbol, atoms[j].symbol], float(np.linalg.norm(vec))
    r = fractions * d_nn
    with timed(timings, "scan"):
        if mode == "contact":
            energies, forces = _scan_contact(atoms, calc, index, fractions)
        else:
            energies, forces = _scan_dimer(pair, calc, r)
    energies = energies - energies[-1]
    ref = load_curve(reference) if reference is not None else {}
    metrics: dict[str, float] = {}
    warnings: list[str] = []
    if ref:
        try:
            rmse, ratio, r_short = compare_curves(
                r, energies, np.array(ref["r"]), np.array(ref["energy"])
            )
            metrics = {"rmse_eV": rmse, "softening_ratio": ratio, "r_shortest_A": r_short}
        except ValueError as err:
            warnings.append(f"reference not compared: {err}")
    inputs = dict(mode=mode, rmin_fraction=rmin_fraction, n_points=n_points, index=index)
    inputs["reference"] = str(reference) if isinstance(reference, (str, Path)) else bool(ref)
    return RepulsionResult(
        units=dict(REPULSION_UNITS),
        provenance=provenance(atoms, calc, inputs, timings),
        warnings=warnings,
        mode=mode,
        pair=pair,
        r_nn_A=d_nn,
        r_A=r.tolist(),
        energy_eV=energies.tolist(),
        force_eV_per_A=forces.tolist(),
        reference=ref,
        **metrics,
    )


def plot_repulsion(result: RepulsionResult, path) -> None:
    """Energy and force against distance, with the reference curve when present."""
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10.0, 4.0))
    ax1.plot(result.r_A, result.energy_eV, "o-", label="model")
    if result.reference:
        ref_r, ref_e = np.array(result.reference["r"]), np.array(result.reference["energy"])
        ax1.plot(ref_r, ref_e - ref_e[-1], "s--", label="reference")
    ax1.set_xlabel(f"{'-'.join(result.pair)} distance (A)")
    ax1.set_ylabel("energy rise (eV)")
    if result.softening_ratio is not None:
        ax1.set_title(f"RMSE {result.rmse_eV:.3f} eV, softening {result.softening_ratio:.2f}")
    ax1.legend()
    ax2.plot(result.r_A, result.force_eV_per_A, "o-")
    ax2.set_xlabel("distance (A)")
    ax2.set_ylabel("bond force (eV/A, + repulsive)")
    save_figure(fig, path)


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim repulsion``."""
    from pansim.cli_common import (
        fraction,
        nonnegative_int,
        number,
    )

    add_common_arguments(parser)
    parser.add_argument("--mode", choices=["contact", "dimer"], default="contact")
    parser.add_argument(
        "--rmin-fraction", type=fraction, default=0.6, help="shortest distance (of the NN distance)"
    )
    parser.add_argument("--points", type=number(int, min=2), default=13, help="distances scanned")
    parser.add_argument(
        "--index", type=nonnegative_int, default=0, help="atom moved toward its neighbour"
    )
    parser.add_argument("--reference", help="JSON with 'r' (A) and 'energy' (eV)")


def run(args: argparse.Namespace) -> int:
    """Run ``pansim repulsion``."""
    result = repulsion_scan(
        read_structure(args.structure),
        cli_calculator(args),
        mode=args.mode,
        rmin_fraction=args.rmin_fraction,
        n_points=args.points,
        index=args.index,
        reference=args.reference,
    )
    write_outputs(result, args.out, plot_repulsion)
    print(
        f"{'-'.join(result.pair)}: E rise at {result.r_A[0]:.3f} A = {result.energy_eV[0]:.3f} eV"
    )
    if result.softening_ratio is not None:
        print(f"RMSE {result.rmse_eV:.4f} eV; softening ratio {result.softening_ratio:.3f}")
    return 0
