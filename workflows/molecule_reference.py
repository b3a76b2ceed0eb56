"""``pansim molref``: DFT reference vibrations and repulsion of a molecule, resumable.

The builder of the molecule reference properties (the recipe, the point store and
the DFT settings are in :mod:`pansim.data.molecule_reference`): the DFT forces go
through :func:`workflows.vibrations.vibrations`, the same analysis that the models
go through, so that model and reference frequencies differ only by the forces.

Python::

    from workflows.molecule_reference import compute_reference
    compute_reference("ethanol")          # -> data/ethanol/reference/*.json

CLI: ``pansim molref ethanol`` (``all`` for every molecule, ``--retry-failed``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ase import Atoms

from pansim.data import molecule_reference as recipe  # bond_scan: the models' scan too
from pansim.data.labelers import atoms_to_dict, molecule_job
from pansim.data.manifest import write_json_atomic
from pansim.data.molecule_reference import (
    DISPLACEMENT_A,
    FRACTIONS,
    MOLECULES,
    RELAX_FMAX,
    RELAX_STEPS,
    Evaluate,
    PointStore,
    StoreCalculator,
    pyscf_single_point,
    reference_dir,
    scan_bonds,
    start_geometry,
)
from pansim.data.settings import MoleculeSettings
from workflows.vibrations import vibrations


def _dft_block(settings: MoleculeSettings, results: list[dict]) -> dict[str, Any]:
    versions = sorted({str(r.get("version")) for r in results if r.get("version")})
    codes = sorted({str(r.get("code")) for r in results if r.get("code")})
    return {
        "reference": "DFT",
        "code": codes[0] if len(codes) == 1 else codes,
        "version": versions[0] if len(versions) == 1 else versions,
        "settings": settings.to_dict(),
        "units": "energies eV, forces eV/A (Hartree, Bohr: CODATA 2018, pansim.data.units)",
    }


def reference_vibrations(
    molecule: str, start: Atoms, store: PointStore, settings: MoleculeSettings, out: Path
) -> dict[str, Any]:
    """DFT relaxation and finite-difference frequencies -> ``out/vibrations.json``."""
    calc = StoreCalculator(store, tag="vibrations")
    res = vibrations(
        start, calc, delta=DISPLACEMENT_A, relax_first=True, fmax=RELAX_FMAX, max_steps=RELAX_STEPS
    )
    probe = store.result(Atoms(res.symbols, res.positions_A), "vibrations")
    data = {"molecule": molecule, **_dft_block(settings, [probe]), **res.to_dict()}
    data["points"] = store.stats("vibrations")
    write_json_atomic(out / "vibrations.json", data, indent=1)
    return data


def reference_repulsion(
    molecule: str, geometry: Atoms, store: PointStore, settings: MoleculeSettings, out: Path
) -> dict[str, Any]:
    """Compressed-bond scans at the relaxed geometry -> ``out/repulsion.json``."""
    scans, results = [], []

    def stored(bond: dict[str, Any]):
        def evaluate(structures: list[Atoms]) -> list[tuple[float, Any] | None]:
            out = []
            for frac, atoms in zip(FRACTIONS, structures, strict=True):
                r = store.result(atoms, f"repulsion {bond['name']} {frac:.2f}")
                results.append(r)
                out.append((r["energy"], r["forces"]) if r.get("ok") else None)
            return out

        return evaluate

    for bond in scan_bonds(geometry):
        scans.append({**bond, **recipe.bond_scan(geometry, bond, stored(bond), FRACTIONS)})
    data = {
        "molecule": molecule,
        **_dft_block(settings, [r for r in results if r.get("ok")]),
        "geometry": atoms_to_dict(geometry),
        "units": {
            "r_A": "A",
            "energy_eV": "eV, relative to the uncompressed molecule",
            "force_eV_per_A": "eV/A, total force on the moved fragment along the bond, + repulsive",
        },
        "note": "fragment moved rigidly along the bond, no relaxation; failed points are null",
        "bonds": scans,
        "points": store.stats("repulsion"),
    }
    write_json_atomic(out / "repulsion.json", data, indent=1)
    return data


def compute_reference(
    molecule: str,
    root: str | Path | None = None,
    *,
    start: Atoms | None = None,
    evaluate: Evaluate | None = None,
    settings: MoleculeSettings | None = None,
    retry_failed: bool = False,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Vibrations then repulsion of ``molecule``; resumable (see the module docstring).

    Parameters
    ----------
    start : Atoms, optional
        Start geometry (default: GFN2-xTB-relaxed sampling start); only used when
        ``points/start.json`` does not exist yet.
    evaluate : callable, optional
        ``evaluate(job) -> result``; default :func:`pyscf_single_point` (tests pass a fake).

    Returns
    -------
    dict
        ``{"vibrations": ..., "repulsion": ...}`` as written to ``data/<molecule>/reference/``.
    """
    settings = settings or MoleculeSettings()
    out = reference_dir(molecule, root)
    store = PointStore(
        out / "points",
        evaluate or pyscf_single_point,
        lambda atoms: molecule_job(atoms, settings),
        retry_failed,
        log,
    )
    t0 = time.perf_counter()
    vib = reference_vibrations(molecule, start_geometry(molecule, out, start), store, settings, out)
    geometry = Atoms(vib["symbols"], vib["positions_A"])
    rep = reference_repulsion(molecule, geometry, store, settings, out)
    if log is not None:
        f = vib["frequencies_cm1"]
        log(
            f"{molecule}: {len(f)} modes {f[0]:.1f} .. {f[-1]:.1f} cm^-1, "
            f"relaxation {vib['relaxation']}, points {store.stats()}, "
            f"{time.perf_counter() - t0:.0f} s"
        )
    return {"vibrations": vib, "repulsion": rep}


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim molref``."""
    parser.add_argument("molecule", help=f"molecule name ({', '.join(MOLECULES)}) or 'all'")
    parser.add_argument("--data-dir", default=None, help="datasets folder (default: data/)")
    parser.add_argument("--retry-failed", action="store_true", help="rerun failed single points")


def run(args: argparse.Namespace) -> int:
    """Compute (or resume) the reference properties of the named molecules."""
    names = list(MOLECULES) if args.molecule == "all" else [args.molecule.lower()]
    unknown = [n for n in names if n not in MOLECULES]
    if unknown:
        known = ", ".join(MOLECULES)
        print(f"error: no reference recipe for {unknown[0]!r}; known: {known}", file=sys.stderr)
        return 2
    for name in names:
        compute_reference(name, args.data_dir, retry_failed=args.retry_failed)
    return 0
