"""``pansim validate`` for molecules: a model vs its baseline vs DFT, in one report.

Workflows (``MOLECULE_WORKFLOWS`` registry), each run for both models:

- ``vibrations``: tight relaxation from the DFT geometry, finite-difference
  harmonic frequencies (:mod:`workflows.vibrations`) against the DFT ones, mode by
  mode in sorted order: MAE, max error, mean signed error and the shift of the
  highest mode (negative = red shift of the high-frequency X-H stretches);
- ``repulsion``: the DFT compressed-bond scans (shortest X-H bond and shortest
  heavy-atom bond down to 0.70 of their length, :mod:`pansim.data.molecule_reference`)
  recomputed with the model on the *same* structures: energy rise at the most
  compressed point, softening ratio (model / DFT rise; below 1 = too soft),
  RMSE of the energy curve;
- ``md``: NVE at ``md_temperature_K`` (velocities drawn at twice that: the
  minimum-energy start shares kinetic energy with the potential), energy drift
  in meV/atom/ps, closest approach. The molecule is run in a vacuum box with
  ``pbc=False`` (the box only gives :func:`workflows.md.run_md` its RDF volume);
- ``test_errors``: energy (meV/atom) and force (meV/A) errors on
  ``data/<molecule>/test.extxyz`` (``REF_energy``/``REF_forces``), when present.

DFT reference: ``data/<molecule>/reference/{vibrations,repulsion}.json``
(:mod:`pansim.data.molecule_reference`), or ``references=`` a directory holding
them, a JSON file with ``vibrations``/``repulsion`` blocks, or such a dict.

Outputs as in :mod:`workflows.validate`: ``OUT/report.md``, ``OUT/report.json``
and per model ``OUT/<label>/<workflow>.json|png``.

Python::

    from workflows.validate_molecule import validate_molecule
    report = validate_molecule("ethanol-pan+pgs", None, "ethanol", "results/validate/ethanol")
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from pansim.data.molecule_reference import MOLECULES  # noqa: F401 - the molecule registry
from workflows import reporting
from workflows._common import (
    WorkflowResult,
    atomic_write_text,
    calculator_info,
    load_calculator,
    new_figure,
    provenance,
    save_figure,
    timed,
    to_jsonable,
    versions,
)


# --------------------------------------------------------------------------- settings
@dataclasses.dataclass(frozen=True)
class MoleculeValidationSettings:
    """Sizes of the molecule workflows; ``QUICK_MOLECULE`` is for CI and smoke tests.

    Times in fs, temperatures in K, displacement in A, fmax in eV/A.
    """

    vib_delta: float = 0.01
    vib_fmax: float = 1e-4
    vib_max_steps: int = 1000
    md_steps: int = 2000
    md_timestep_fs: float = 0.5
    md_temperature_K: float = 500.0
    md_box_padding_A: float = 10.0
    test_max_configs: int | None = None
    quick: bool = False


FULL_MOLECULE = MoleculeValidationSettings()
QUICK_MOLECULE = MoleculeValidationSettings(
    vib_max_steps=300, md_steps=200, test_max_configs=50, quick=True
)


@dataclasses.dataclass
class Context:
    """What every molecule workflow needs: the molecule, its start geometry, the DFT blocks."""

    molecule: str
    start: Atoms
    settings: MoleculeValidationSettings
    reference: dict[str, Any]
    test_file: Path | None


#: a workflow that does not apply (no reference, no test set): reported, not an error
Skipped = reporting.Skipped


# --------------------------------------------------------------------------- references
def load_molecule_reference(
    molecule: str, references: str | Path | dict | None = None
) -> tuple[dict[str, Any], str]:
    """DFT blocks ``{"vibrations": ..., "repulsion": ...}`` of ``molecule`` and a message.

    ``references``: ``None`` (``data/<molecule>/reference``), a dict, a JSON file
    (with those blocks, or a vibrations result), or a directory holding
    ``vibrations.json``/``repulsion.json``, ``<molecule>/reference/`` or ``<molecule>.json``.
    """
    if isinstance(references, dict):
        return references, "DFT reference: given as a dictionary"
    from pansim.data.molecule_reference import load_reference, reference_dir

    if references is None:
        found = load_reference(molecule)
        where = reference_dir(molecule)
    else:
        base = Path(references)
        found, where = {}, base
        for candidate in (base, base / molecule / "reference", base / f"{molecule}.json"):
            if candidate.is_file():
                data = json.loads(candidate.read_text())
                found = data if "vibrations" in data or "repulsion" in data else {}
                if not found and "frequencies_cm1" in data:
                    found = {"vibrations": data}
            elif candidate.is_dir():
                found = {
                    n: json.loads((candidate / f"{n}.json").read_text())
                    for n in ("vibrations", "repulsion")
                    if (candidate / f"{n}.json").is_file()
                }
            if found:
                where = candidate
                break
    if not found:
        return {}, f"no DFT reference found for {molecule} in {where}; DFT column left empty"
    return found, f"DFT reference ({', '.join(sorted(found))}): {where}"


def start_geometry(molecule: str, reference: dict[str, Any], start: Atoms | None) -> Atoms:
    """``start``, else the DFT-relaxed geometry, else the molecule's sampling start geometry."""
    if start is not None:
        return start.copy()
    vib = reference.get("vibrations", {})
    if vib.get("positions_A"):
        return Atoms(vib["symbols"], vib["positions_A"])
    geometry = reference.get("repulsion", {}).get("geometry")
    if geometry:
        from pansim.data.labelers import dict_to_atoms

        return dict_to_atoms(geometry)
    from pansim.data.systems import get_system

    return get_system(molecule).initial_geometry()


# --------------------------------------------------------------------------- workflows
def _run_vibrations(ctx: Context, calc: Any, out: Path):
    from workflows.vibrations import plot_vibrations, vibrations

    s, ref = ctx.settings, ctx.reference.get("vibrations")
    res = vibrations(
        ctx.start,
        calc,
        delta=s.vib_delta,
        fmax=s.vib_fmax,
        max_steps=s.vib_max_steps,
        reference=ref["frequencies_cm1"] if ref else None,
    )
    return res, plot_vibrations


@dataclasses.dataclass
class MoleculeRepulsionResult(WorkflowResult):
    """Model energies and forces on the DFT compressed-bond structures, with metrics per bond."""

    bonds: list[dict[str, Any]] = dataclasses.field(default_factory=list)


REPULSION_UNITS = {
    "r_A": "A",
    "energy_eV": "eV, relative to the uncompressed molecule",
    "force_eV_per_A": "eV/A, on the moved fragment along the bond, + repulsive",
    "rise_eV": "eV, energy rise at the most compressed point",
    "softening_ratio": "model / DFT energy rise at the most compressed point",
    "rmse_eV": "eV",
}


def _bond_scan(geometry: Atoms, bond: dict[str, Any], calc: Any) -> dict[str, Any]:
    """Model energies (relative to fraction 1) and bond forces along one DFT scan.

    :func:`pansim.data.molecule_reference.bond_scan`, the DFT reference's own scan.
    """
    from pansim.data.molecule_reference import bond_scan
    from workflows._common import evaluate_forces

    def evaluate(structures: list[Atoms]) -> list[tuple[float, Any]]:
        batch = getattr(calc, "batch_evaluate", None)
        if callable(batch):
            return [(r["energy"], r["forces"]) for r in batch(structures)]
        forces = evaluate_forces(structures, calc, "bond scan")
        return [(_energy(a, calc), f) for a, f in zip(structures, forces, strict=True)]

    scan = bond_scan(geometry, bond, evaluate, bond["fractions"])
    return {
        "name": bond["name"],
        "fractions": scan["fractions"],
        "r_A": list(bond.get("r_A") or scan["r_A"]),
        "energy_eV": scan["energy_eV"],
        "force_eV_per_A": scan["force_eV_per_A"],
    }


def _energy(atoms: Atoms, calc: Any) -> float:
    work = atoms.copy()
    work.calc = calc
    return float(work.get_potential_energy())


def _bond_metrics(model: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """Rise at the most compressed point with a DFT value, softening ratio, RMSE (eV)."""
    e, e_ref = np.array(model["energy_eV"], float), np.array(ref["energy_eV"], dtype=float)
    ok = np.isfinite(e_ref)
    k = int(np.argmin(np.where(ok, model["fractions"], np.inf)))
    return {
        "reference_energy_eV": ref["energy_eV"],
        "reference_force_eV_per_A": ref.get("force_eV_per_A"),
        "fraction_compared": model["fractions"][k],
        "rise_eV": float(e[k]),
        "reference_rise_eV": float(e_ref[k]),
        "force_at_compared_eV_per_A": model["force_eV_per_A"][k],
        "reference_force_at_compared_eV_per_A": (ref.get("force_eV_per_A") or [None] * len(e))[k],
        "softening_ratio": float(e[k] / e_ref[k]) if e_ref[k] else None,
        "rmse_eV": float(np.sqrt(np.mean((e[ok] - e_ref[ok]) ** 2))),
    }


def _run_repulsion(ctx: Context, calc: Any, out: Path):
    from pansim.data.labelers import dict_to_atoms
    from pansim.data.molecule_reference import FRACTIONS, scan_bonds

    ref = ctx.reference.get("repulsion")
    timings: dict[str, float] = {}
    if ref:
        geometry = dict_to_atoms(ref["geometry"]) if "geometry" in ref else ctx.start
        bonds = ref["bonds"]
    else:
        geometry = ctx.start
        bonds = [{**b, "fractions": list(FRACTIONS)} for b in scan_bonds(geometry)]
    scans = []
    with timed(timings, "scan"):
        for bond in bonds:
            scan = _bond_scan(geometry, bond, calc)
            if ref:
                scan.update(_bond_metrics(scan, bond))
            scans.append(scan)
    warnings = [] if ref else ["no DFT repulsion reference: model curves only"]
    inputs = {"bonds": [{k: b[k] for k in ("name", "i", "j", "fragment")} for b in bonds]}
    res = MoleculeRepulsionResult(
        units=dict(REPULSION_UNITS),
        provenance=provenance(geometry, calc, inputs, timings),
        warnings=warnings,
        bonds=scans,
    )
    return res, plot_molecule_repulsion


def plot_molecule_repulsion(result: MoleculeRepulsionResult, path) -> None:
    """Energy rise against bond length per scanned bond, with the DFT curve."""
    n = max(len(result.bonds), 1)
    fig, axes = new_figure(1, n, figsize=(5.0 * n, 4.0))
    for ax, bond in zip(np.atleast_1d(axes), result.bonds, strict=False):
        ax.plot(bond["r_A"], bond["energy_eV"], "o-", label="model")
        if bond.get("reference_energy_eV"):
            ref = np.array(bond["reference_energy_eV"], dtype=float)
            ax.plot(bond["r_A"], ref, "s--", label="DFT")
        ax.set_xlabel(f"{bond['name']} distance (A)")
        ax.set_ylabel("energy rise (eV)")
        if bond.get("softening_ratio") is not None:
            ax.set_title(f"{bond['name']}: softening ratio {bond['softening_ratio']:.2f}")
        ax.legend()
    save_figure(fig, path)


def _run_md(ctx: Context, calc: Any, out: Path):
    from workflows.md import plot_md, run_md

    s = ctx.settings
    res = run_md(
        in_box(ctx.start, s.md_box_padding_A),
        calc,
        ensemble="nve",
        steps=s.md_steps,
        timestep_fs=s.md_timestep_fs,
        temperature_K=s.md_temperature_K,
        init_temperature_K=2 * s.md_temperature_K,
        rdf_rmax=4.0,
        outdir=out / "md",
        restart=False,
    )
    return res, plot_md


def in_box(atoms: Atoms, padding: float) -> Atoms:
    """Copy of a molecule centred in a cubic box ``padding`` (A) wider than it, ``pbc=False``."""
    work = atoms.copy()
    work.pbc = False
    side = float(np.ptp(work.positions, axis=0).max()) + 2.0 * padding
    work.set_cell([side] * 3)
    work.center()
    return work


@dataclasses.dataclass
class DatasetErrorsResult(WorkflowResult):
    """Errors of a model on a labelled test set (``REF_energy``, ``REF_forces``)."""

    file: str = ""
    n_configs: int = 0
    energy_mae_meV_per_atom: float = float("nan")
    energy_rmse_meV_per_atom: float = float("nan")
    forces_mae_meV_per_A: float = float("nan")
    forces_rmse_meV_per_A: float = float("nan")
    energy_ref_eV_per_atom: list[float] = dataclasses.field(default_factory=list)
    energy_pred_eV_per_atom: list[float] = dataclasses.field(default_factory=list)


TEST_UNITS = {
    "energy_mae_meV_per_atom": "meV/atom",
    "energy_rmse_meV_per_atom": "meV/atom",
    "forces_mae_meV_per_A": "meV/A (per component)",
    "forces_rmse_meV_per_A": "meV/A (per component)",
    "energy_ref_eV_per_atom": "eV/atom",
    "energy_pred_eV_per_atom": "eV/atom",
}


def dataset_errors(
    path: str | Path, calc: Any, max_configs: int | None = None
) -> DatasetErrorsResult:
    """Energy (meV/atom) and force (meV/A) MAE/RMSE of ``calc`` on a labelled extxyz file."""
    from ase.io import read

    frames = read(path, index=":")[:max_configs]
    if not frames:
        raise Skipped(f"{path} holds no configurations")
    timings: dict[str, float] = {}
    with timed(timings, "evaluate"):
        batch = getattr(calc, "batch_evaluate", None)
        if callable(batch):
            pred = [(r["energy"], np.asarray(r["forces"])) for r in batch(frames)]
        else:
            pred = [(_energy(a, calc), _forces(a, calc)) for a in frames]
    n = np.array([len(a) for a in frames])
    e_ref = np.array([a.info["REF_energy"] for a in frames]) / n
    e_pred = np.array([p[0] for p in pred]) / n
    df = np.concatenate([p[1] - a.arrays["REF_forces"] for p, a in zip(pred, frames, strict=True)])
    de = (e_pred - e_ref) * 1e3
    return DatasetErrorsResult(
        units=dict(TEST_UNITS),
        provenance=provenance(
            frames[0], calc, {"file": str(path), "max_configs": max_configs}, timings
        ),
        file=str(path),
        n_configs=len(frames),
        energy_mae_meV_per_atom=float(np.mean(np.abs(de))),
        energy_rmse_meV_per_atom=float(np.sqrt(np.mean(de**2))),
        forces_mae_meV_per_A=float(np.mean(np.abs(df)) * 1e3),
        forces_rmse_meV_per_A=float(np.sqrt(np.mean(df**2)) * 1e3),
        energy_ref_eV_per_atom=e_ref.tolist(),
        energy_pred_eV_per_atom=e_pred.tolist(),
    )


def _forces(atoms: Atoms, calc: Any) -> np.ndarray:
    work = atoms.copy()
    work.calc = calc
    return work.get_forces()


def plot_test_errors(result: DatasetErrorsResult, path) -> None:
    """Parity of the per-atom energies (shifted by the reference mean)."""
    fig, ax = new_figure()
    ref = np.array(result.energy_ref_eV_per_atom)
    pred = np.array(result.energy_pred_eV_per_atom)
    shift = ref.mean() if len(ref) else 0.0
    ax.plot((ref - shift) * 1e3, (pred - shift) * 1e3, "o", ms=3)
    lim = [min(((ref - shift) * 1e3).min(), 0), max(((ref - shift) * 1e3).max(), 0)]
    ax.plot(lim, lim, "k-", lw=0.5)
    ax.set_xlabel("DFT energy - mean (meV/atom)")
    ax.set_ylabel("model energy - DFT mean (meV/atom)")
    ax.set_title(
        f"{result.n_configs} configs: E MAE {result.energy_mae_meV_per_atom:.2f} meV/atom, "
        f"F MAE {result.forces_mae_meV_per_A:.1f} meV/A"
    )
    save_figure(fig, path)


def _run_test_errors(ctx: Context, calc: Any, out: Path):
    if ctx.test_file is None or not Path(ctx.test_file).is_file():
        raise Skipped(f"no test set ({ctx.test_file})")
    return dataset_errors(ctx.test_file, calc, ctx.settings.test_max_configs), plot_test_errors


#: workflow name -> runner(context, calc, outdir) -> (result, plot function)
MOLECULE_WORKFLOWS: dict[str, Callable[..., Any]] = {
    "vibrations": _run_vibrations,
    "repulsion": _run_repulsion,
    "md": _run_md,
    "test_errors": _run_test_errors,
}


def evaluate(
    ctx: Context, calc: Any, out: Path, skip: tuple[str, ...] = ()
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Run every molecule workflow for one calculator; failures become messages."""
    return reporting.run_workflows(
        MOLECULE_WORKFLOWS, lambda runner: runner(ctx, calc, out), out, skip
    )


# --------------------------------------------------------------------------- table
def _max(values: list) -> float:
    return float(np.max(values))


def _min(values: list) -> float:
    return float(np.min(values))


def _bond(k: int, key: str) -> tuple:
    return ("repulsion", "bonds", k, key)


def molecule_quantities(reference: dict[str, Any]) -> list[tuple[str, str, tuple, tuple | None]]:
    """(quantity, unit, path in a model's results, path in the DFT reference or None).

    Rows of the repulsion scans are named after the reference's bonds.
    """
    rows: list[tuple[str, str, tuple, tuple | None]] = [
        ("harmonic freq. MAE vs DFT", "cm^-1", ("vibrations", "mae_cm1"), None),
        ("harmonic freq. max error vs DFT", "cm^-1", ("vibrations", "max_abs_error_cm1"), None),
        (
            "harmonic freq. mean signed error (- = red shift)",
            "cm^-1",
            ("vibrations", "mean_signed_error_cm1"),
            None,
        ),
        (
            "highest freq. (error = its shift)",
            "cm^-1",
            ("vibrations", "frequencies_cm1", _max),
            ("vibrations", "frequencies_cm1", _max),
        ),
        (
            "lowest freq.",
            "cm^-1",
            ("vibrations", "frequencies_cm1", _min),
            ("vibrations", "frequencies_cm1", _min),
        ),
        (
            "imaginary modes",
            "count",
            ("vibrations", "imaginary_cm1", len),
            ("vibrations", "imaginary_cm1", len),
        ),
    ]
    for k, bond in enumerate(lookup_bonds(reference)):
        name, frac = bond["name"], min(bond["fractions"])
        rows += [
            (f"{name} E rise at {frac:.2f} r0", "eV", _bond(k, "rise_eV"), _bond(k, "rise_eV")),
            (
                f"{name} bond force at {frac:.2f} r0",
                "eV/A",
                _bond(k, "force_at_compared_eV_per_A"),
                _bond(k, "force_eV_per_A_min"),
            ),
            (f"{name} softening ratio (1 = DFT)", "-", _bond(k, "softening_ratio"), None),
            (f"{name} scan RMSE vs DFT", "eV", _bond(k, "rmse_eV"), None),
        ]
    rows += [
        ("NVE drift", "meV/atom/ps", ("md", "drift_meV_per_atom_per_ps"), None),
        ("NVE mean temperature", "K", ("md", "temperature_mean_K"), None),
        ("NVE steps completed", "count", ("md", "steps_done"), None),
        ("NVE closest approach", "A", ("md", "min_distance_A"), None),
        ("test energy MAE", "meV/atom", ("test_errors", "energy_mae_meV_per_atom"), None),
        ("test force MAE", "meV/A", ("test_errors", "forces_mae_meV_per_A"), None),
        ("test force RMSE", "meV/A", ("test_errors", "forces_rmse_meV_per_A"), None),
    ]
    return rows


def lookup_bonds(reference: dict[str, Any]) -> list[dict[str, Any]]:
    """DFT repulsion scans with ``rise_eV``, ``force_eV_per_A_min`` at the most compressed point."""
    out = []
    for bond in reference.get("repulsion", {}).get("bonds", []):
        e = np.array(bond["energy_eV"], dtype=float)
        ok = np.isfinite(e)
        if not ok.any():
            continue
        k = int(np.argmin(np.where(ok, bond["fractions"], np.inf)))
        forces = bond.get("force_eV_per_A") or [None] * len(e)
        out.append({**bond, "rise_eV": float(e[k]), "force_eV_per_A_min": forces[k]})
    return out


def molecule_table(
    reference: dict[str, Any], baseline: dict[str, Any] | None, model: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Rows: quantity, unit, dft, baseline, model, baseline_error, model_error (value - DFT)."""
    dft = {**reference, "repulsion": {"bonds": lookup_bonds(reference)}}
    rows = []
    for quantity, unit, path, dft_path in molecule_quantities(reference):
        ref = reporting.lookup(dft, dft_path) if dft_path else None
        row = {"quantity": quantity, "unit": unit, "dft": ref}
        for label, res in (("baseline", baseline), ("model", model)):
            value = reporting.lookup(res, path) if res else None
            row[label] = value
            row[f"{label}_error"] = value - ref if value is not None and ref is not None else None
        rows.append(row)
    return rows


def _reference_summary(reference: dict[str, Any]) -> dict[str, Any]:
    """The DFT blocks without Hessian and per-point forces (kept in the data files)."""
    vib = {k: v for k, v in reference.get("vibrations", {}).items() if k != "hessian_eV_per_A2"}
    rep = dict(reference.get("repulsion", {}))
    if "bonds" in rep:
        rep["bonds"] = [
            {k: v for k, v in b.items() if k != "forces_eV_per_A"} for b in rep["bonds"]
        ]
    return {k: v for k, v in (("vibrations", vib), ("repulsion", rep)) if v}


NOTES = """
Frequencies are compared mode by mode in sorted order (internal modes; translations
and rotations projected out). A negative highest-frequency error is a red shift of the
high-frequency X-H stretches. Repulsion rows evaluate the models on the DFT scan
structures (fragment moved rigidly along the bond, no relaxation); a softening ratio
below 1 means a too soft short-range repulsion. The NVE run is a single molecule in
vacuum: its drift measures integration and force-field smoothness, not a thermostat.
"""


# --------------------------------------------------------------------------- driver
def _calculator(model: Any, device: str) -> tuple[Any, str, str]:
    """(calculator or None, display name, error message) of a name, path or calculator."""
    if not isinstance(model, (str, Path)):
        return model, calculator_info(model)["class"], ""
    try:
        return load_calculator(str(model), device=device), str(model), ""
    except Exception as err:  # noqa: BLE001 - reported in the report
        return None, str(model), f"model {model!r} could not be loaded: {type(err).__name__}: {err}"


def validate_molecule(
    model: Any,
    baseline: Any,
    molecule: str,
    out: str | Path,
    settings: MoleculeValidationSettings | None = None,
    *,
    quick: bool = False,
    references: str | Path | dict | None = None,
    device: str = "cpu",
    skip: tuple[str, ...] = (),
    start: Atoms | None = None,
    test_file: str | Path | None = None,
) -> dict[str, Any]:
    """Run every molecule workflow for ``model`` and ``baseline`` and write the report.

    Parameters
    ----------
    model, baseline : str or Calculator
        Model name/path (``load_calculator``) or an ASE calculator; ``baseline=None``
        tries ``MODEL-baseline`` then ``MOLECULE-baseline`` (as for crystals).
    settings : MoleculeValidationSettings, optional
        Default ``QUICK_MOLECULE`` when ``quick``, else ``FULL_MOLECULE``.
    references : see :func:`load_molecule_reference`.
    start : Atoms, optional
        Start geometry (default: the DFT-relaxed one).
    test_file : path, optional
        Labelled test set (default ``data/<molecule>/test.extxyz``).

    Returns
    -------
    dict
        The report, also written to ``OUT/report.json`` and ``OUT/report.md``.
    """
    from pansim.data.datasets import data_dir

    settings = settings or (QUICK_MOLECULE if quick else FULL_MOLECULE)
    out = Path(out)
    dft, ref_message = load_molecule_reference(molecule, references)
    messages = [] if dft else [ref_message]
    if baseline is None:
        names, _, _ = reporting.registry_models()
        candidates = reporting.baseline_candidates(str(model), molecule)
        baseline = next((c for c in candidates if c in names), candidates[0])
    test = Path(test_file) if test_file else data_dir() / molecule / "test.extxyz"
    ctx = Context(molecule, start_geometry(molecule, dft, start), settings, dft, test)
    results: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    for label, spec in (("model", model), ("baseline", baseline)):
        calc, names[label], error = _calculator(spec, device)
        if calc is None:
            messages.append(error)
            continue
        results[label], msgs = evaluate(ctx, calc, out / label, skip)
        messages += msgs
    report = {
        "system": molecule,
        "kind": "molecule",
        "model": names["model"],
        "baseline": names["baseline"],
        "quick": settings.quick,
        "settings": dataclasses.asdict(settings),
        "reference_message": ref_message,
        "reference_label": "DFT",
        "reference": _reference_summary(dft),
        "messages": messages,
        "table": molecule_table(dft, results.get("baseline"), results.get("model")),
        "results": results,
        "versions": versions(),
    }
    atomic_write_text(out / "report.json", json.dumps(to_jsonable(report), indent=2) + "\n")
    atomic_write_text(out / "report.md", reporting.markdown_report(report) + NOTES)
    return report
