"""``pansim validate``: every workflow for one system, model vs baseline vs DFT, in one report.

The reference properties are looked up, by default, in
``pansim/data/reference/properties/<system>.json`` (references the DFT pipeline does
not make, e.g. the EMT demonstration ``ag-emt``), then in
``data/<system>/reference/properties.json``, which ``pansim data`` writes from the
finished DFT reference jobs of ``si``, ``ag`` and ``lif`` (``pansim/data/reference.py``;
``$PANSIM_DATA_DIR`` moves ``data/``). ``--references DIR_OR_FILE`` replaces the
lookup. Expected schema (every block optional, extra keys ignored, units as in spec
section 3)::

    {
      "system": "si",
      "reference": "DFT",       # label of the reference column (e.g. "EMT"); default "DFT"
      "eos": {"V0": A^3/atom, "E0": eV/atom, "B0": GPa, "B0_prime": -,
              "compressed": {"volume_ratio": [0.80, 0.85, 0.90], "energy": [eV/atom, ...]}},
      "elastic": {"C11": GPa, "C12": GPa, "C44": GPa},
      "phonons": {"gamma_THz": [...], "X_THz": [...], "L_THz": [...]},
      "repulsion": {"r": [A, ...], "energy": [eV, ...]},
      "md": {"rdf_first_peak_A": A},
      "liquid": {"temperature_K": K, "rdf_first_peak_A": A, "min_distance_A": A}
    }

``phonons`` frequencies are sorted per point; the table compares their maxima
(LiF: TO modes, no non-analytic correction). The Gamma row is left out for 1-atom
primitive cells (fcc Ag): their only modes at Gamma are the zero acoustic ones, so
its maximum is numerical noise (~1e-6 THz); X and L stay. The DFT pipeline's file
also holds ``gamma_optical_frozen_phonon_THz``, its direct check of the Gamma
optical mode. ``repulsion`` is the energy rise (eV, zero at the longest distance)
when one atom of the conventional cell moves toward its nearest neighbour, as in
:mod:`workflows.repulsion`; the DFT pipeline computes the same scan (``contact``
stage of :mod:`pansim.data.reference`: the conventional cell at the spec lattice
constant, atom 0 pushed toward its nearest neighbour, 0.6-1.0 of the distance). The
``eos.compressed`` block is the second short-range check.

With no MODEL, the registry default is used (``pansim.pretrained``); the system
comes from its registry entry (else from the model name), and the report goes to
a new ``runs/validate-<model>-<UTC time>/`` unless ``--out`` is given; the committed
reference reports in ``results/validate/<model>/`` are rewritten only with the
maintainer flag ``--update-reference``. Each stage prints a progress line, and the
comparison table is printed at the end.

Missing references, models or failing workflows give a message and a partial
report, never a crash. Outputs: ``OUT/report.md`` (table and plots),
``OUT/report.json`` and per model ``OUT/<label>/<workflow>.json|png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pansim.cli_common import add_runtime_arguments, default_out, model_label, prepare_out
from pansim.data.molecule_reference import MOLECULES
from pansim.data.systems import System, get_system, packaged_reference_dir, reference_files
from workflows._common import atomic_write_text, load_calculator, to_jsonable, versions
from workflows.reporting import (  # noqa: F401 - shared with validate_molecule, re-exported
    Skipped,
    _fmt,
    _fmt_error,
    baseline_candidates,
    lookup,
    markdown_report,
    registry_models,
    run_workflows,
)

# --------------------------------------------------------------------------- systems
#: the crystals of ``pansim validate``: a view of :data:`pansim.data.systems.SYSTEMS` (cells
#: at the docs/spec.md §2.1 lattice constants, ``liquid_K``; molecules: :data:`MOLECULES`)
SYSTEMS: dict[str, System] = {n: get_system(n) for n in ("si", "ag", "lif", "ag-emt")}


#: workflows of a molecule report (:data:`workflows.validate_molecule.MOLECULE_WORKFLOWS`)
MOLECULE_WORKFLOW_NAMES = ("vibrations", "repulsion", "md", "test_errors")


def default_reference_dir() -> Path:
    """``pansim/data/reference/properties`` inside the installed package."""
    return packaged_reference_dir()


def reference_label(reference: dict[str, Any]) -> str:
    """Label of the reference column: the file's top-level ``"reference"`` (default ``DFT``)."""
    label = reference.get("reference") if isinstance(reference, dict) else None
    return str(label) if label else "DFT"


def _candidates(base: Path, system: str) -> list[Path]:
    """Reference files tried in the folder ``base``."""
    return [
        base / f"{system}.json",
        base / system / "properties.json",
        base / system / "reference" / "properties.json",
        base / f"{system}_properties.json",
    ]


def _shown(path: Path) -> str:
    """``path`` relative to the repository (or the working folder) when inside it.

    Reports then name files the same way on every machine.
    """
    root = Path(__file__).resolve().parents[1]
    for base in (root, Path.cwd()):
        try:
            return str(path.resolve().relative_to(base))
        except ValueError:
            continue
    return str(path)


def load_reference(system: str, path: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """Reference properties of ``system`` and a message; ``{}`` when none is found.

    ``path`` may be a JSON file or a directory holding ``<system>.json`` (or
    ``<system>/properties.json``, ``<system>/reference/properties.json``). Without
    ``path``: :func:`default_reference_dir`, then the DFT pipeline's
    ``data/<system>/reference/properties.json``.
    """
    if path is None:
        candidates = reference_files(system)  # System.reference_files, for any name
    else:
        base = Path(path)
        candidates = [base] if base.suffix == ".json" else _candidates(base, system)
    for candidate in candidates:
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text())
                return data, f"{reference_label(data)} reference: {_shown(candidate)}"
            except json.JSONDecodeError as err:
                return {}, f"DFT reference {candidate} is not valid JSON: {err}"
    names = ", ".join(str(c) for c in candidates)
    return {}, f"no DFT reference found (looked for {names}); DFT column left empty"


# --------------------------------------------------------------------------- settings
@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of each workflow; ``quick`` is for CI and smoke tests.

    The default (``FULL``) is sized so that ``pansim validate`` of a small model and
    its baseline finishes in under about 10 minutes on 2 busy CPU cores: 400 MD
    steps (liquid: 200 melt + 400) on a 16-atom cell (2x2x1 conventional fcc).
    ``QUICK`` (``--quick``) is about a minute.
    """

    eos_points: int = 11
    elastic_strains: int = 4
    phonon_mesh: tuple[int, int, int] = (16, 16, 16)
    md_steps: int = 400
    md_supercell: tuple[int, int, int] = (2, 2, 1)
    md_temperature_K: float = 300.0


FULL = Settings()
QUICK = Settings(
    eos_points=9, elastic_strains=2, phonon_mesh=(6, 6, 6), md_steps=100, md_supercell=(1, 1, 1)
)


def _run_eos(system: System, calc: Any, s: Settings, out: Path, dft: dict):
    from workflows.eos import equation_of_state, plot_eos

    res = equation_of_state(system.primitive(), calc, n_points=s.eos_points)
    return res, plot_eos


def _run_elastic(system: System, calc: Any, s: Settings, out: Path, dft: dict):
    from workflows.elastic import elastic_constants, plot_elastic

    res = elastic_constants(system.conventional(), calc, n_strains=s.elastic_strains)
    return res, plot_elastic


def _run_phonons(system: System, calc: Any, s: Settings, out: Path, dft: dict):
    from workflows.phonons import phonons, plot_phonons

    res = phonons(
        system.primitive(), calc, supercell=(2, 2, 2), mesh=s.phonon_mesh, relax_cell=True
    )
    return res, plot_phonons


def _run_repulsion(system: System, calc: Any, s: Settings, out: Path, dft: dict):
    from workflows.repulsion import plot_repulsion, repulsion_scan

    res = repulsion_scan(system.conventional(), calc, reference=dft.get("repulsion"))
    return res, plot_repulsion


def _run_md(system: System, calc: Any, s: Settings, out: Path, dft: dict):
    from workflows.md import plot_md, run_md

    atoms = system.conventional() * s.md_supercell
    res = run_md(
        atoms,
        calc,
        ensemble="nve",
        steps=s.md_steps,
        timestep_fs=1.0,
        temperature_K=s.md_temperature_K,
        init_temperature_K=2 * s.md_temperature_K,  # equipartition halves it from a perfect lattice
        outdir=out / "md",
        restart=False,
    )
    return res, plot_md


def _run_liquid(system: System, calc: Any, s: Settings, out: Path, dft: dict):
    """Langevin NVT melt at 1.5 T, then T (the DFT's liquid temperature when given)."""
    from workflows.md import plot_md, run_md

    temperature = lookup(dft, ("liquid", "temperature_K")) or system.liquid_K
    if temperature is None:
        raise Skipped(f"no liquid temperature defined for {system.name}")
    common = dict(ensemble="langevin", timestep_fs=1.0, friction_per_fs=0.05, restart=False)
    melt = run_md(
        system.conventional() * s.md_supercell,
        calc,
        steps=s.md_steps // 2,
        temperature_K=1.5 * temperature,
        outdir=out / "melt",
        **common,
    )
    if melt.status != "completed":
        return melt, plot_md
    from ase.io import read

    start = read(out / "melt" / "md.traj", index=-1)
    res = run_md(
        start, calc, steps=s.md_steps, temperature_K=temperature, outdir=out / "liquid", **common
    )
    return res, plot_md


#: workflow name -> runner(system, calc, settings, outdir, dft) -> (result, plot function)
WORKFLOWS: dict[str, Callable[..., Any]] = {
    "eos": _run_eos,
    "elastic": _run_elastic,
    "phonons": _run_phonons,
    "repulsion": _run_repulsion,
    "md": _run_md,
    "liquid": _run_liquid,
}


def evaluate(
    system: System,
    calc: Any,
    settings: Settings,
    out: Path,
    reference: dict[str, Any],
    skip: tuple[str, ...] = (),
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Run every workflow for one calculator; failures become messages, not exceptions."""
    return run_workflows(
        WORKFLOWS, lambda runner: runner(system, calc, settings, out, reference), out, skip
    )


def _rise_at_shortest(curve: dict) -> float:
    """Reference curve ``{"r", "energy"}``: energy at its shortest distance minus at its longest."""
    r, e = np.asarray(curve["r"], float), np.asarray(curve["energy"], float)
    return float(e[np.argmin(r)] - e[np.argmax(r)])


def _c11(c: list) -> float:
    return float(np.mean(np.diag(c)[:3]))


def _c12(c: list) -> float:
    return float(np.mean([c[0][1], c[0][2], c[1][2]]))


def _c44(c: list) -> float:
    return float(np.mean(np.diag(c)[3:]))


def _max(values: list) -> float:
    return float(np.max(values))


def _rise_at(ratio: float, key: str) -> Callable[[dict], float]:
    """E(ratio * V0) - E0 (eV/atom) from an EOS block holding ``compressed[key]``."""

    def rise(eos: dict) -> float:
        ratios = list(eos["compressed"]["volume_ratio"])
        i = int(np.argmin(np.abs(np.array(ratios) - ratio)))
        if abs(ratios[i] - ratio) > 1e-6:
            raise ValueError(f"no compressed point at {ratio}")
        return float(eos["compressed"][key][i] - eos["E0"])

    return rise


#: (quantity, unit, path in a model's results, path in the DFT reference or None)
QUANTITIES: list[tuple[str, str, tuple, tuple | None]] = [
    ("V0", "A^3/atom", ("eos", "V0"), ("eos", "V0")),
    ("E0", "eV/atom", ("eos", "E0"), None),
    ("B0", "GPa", ("eos", "B0"), ("eos", "B0")),
    ("B0'", "-", ("eos", "B0_prime"), ("eos", "B0_prime")),
    # the local modulus B(V) = -V dP/dV at V0, against the DFT B0 (workflows.bulk_modulus)
    ("B(V0), local", "GPa", ("eos", "B_V0"), ("eos", "B0")),
    ("B(V) falls with V over +-6 % (1 = yes)", "-", ("eos", "checks", "monotone", int), None),
    (
        "E(0.80 V0) - E0",
        "eV/atom",
        ("eos", _rise_at(0.80, "energy_eV_per_atom")),
        ("eos", _rise_at(0.80, "energy")),
    ),
    ("C11", "GPa", ("elastic", "C", _c11), ("elastic", "C11")),
    ("C12", "GPa", ("elastic", "C", _c12), ("elastic", "C12")),
    ("C44", "GPa", ("elastic", "C", _c44), ("elastic", "C44")),
    ("K_VRH", "GPa", ("elastic", "bulk_modulus_vrh"), None),
    ("G_VRH", "GPa", ("elastic", "shear_modulus_vrh"), None),
    (
        "max freq. Gamma",
        "THz",
        ("phonons", "high_symmetry_THz", "Gamma", _max),
        ("phonons", "gamma_THz", _max),
    ),
    ("max freq. X", "THz", ("phonons", "high_symmetry_THz", "X", _max), ("phonons", "X_THz", _max)),
    ("max freq. L", "THz", ("phonons", "high_symmetry_THz", "L", _max), ("phonons", "L_THz", _max)),
    ("imaginary modes", "count", ("phonons", "imaginary_modes", len), None),
    (
        "repulsion E at shortest r",
        "eV",
        ("repulsion", "energy_eV", 0),
        ("repulsion", _rise_at_shortest),
    ),
    ("repulsion RMSE vs DFT", "eV", ("repulsion", "rmse_eV"), None),
    ("softening ratio (1 = DFT)", "-", ("repulsion", "softening_ratio"), None),
    ("NVE drift", "meV/atom/ps", ("md", "drift_meV_per_atom_per_ps"), None),
    ("RDF first peak", "A", ("md", "rdf_first_peak_A"), ("md", "rdf_first_peak_A")),
    ("liquid RDF first peak", "A", ("liquid", "rdf_first_peak_A"), ("liquid", "rdf_first_peak_A")),
    ("liquid closest approach", "A", ("liquid", "min_distance_A"), ("liquid", "min_distance_A")),
]


#: rows about optical modes at Gamma: meaningless for a 1-atom primitive cell
OPTICAL_ROWS = ("max freq. Gamma",)


def comparison_table(
    dft: dict[str, Any],
    baseline: dict[str, Any] | None,
    model: dict[str, Any] | None,
    n_atoms_primitive: int | None = None,
) -> list[dict[str, Any]]:
    """Rows: quantity, unit, dft, baseline, model, baseline_error, model_error (value - DFT).

    With ``n_atoms_primitive == 1`` the Gamma-optical rows (``OPTICAL_ROWS``) are
    left out: such a cell has only the three zero acoustic modes at Gamma.
    """
    rows = []
    for quantity, unit, path, dft_path in QUANTITIES:
        if n_atoms_primitive == 1 and quantity in OPTICAL_ROWS:
            continue
        ref = lookup(dft, dft_path) if dft_path else None
        row = {"quantity": quantity, "unit": unit, "dft": ref}
        for label, res in (("baseline", baseline), ("model", model)):
            value = lookup(res, path) if res else None
            row[label] = value
            row[f"{label}_error"] = value - ref if value is not None and ref is not None else None
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- models
def infer_system(model: str) -> str | None:
    """The system of a model: its registry entry's ``system``, else the one in its name.

    Names are split on ``-``/``_``; a multi-token system (``ag-emt``) wins over the
    shorter one it contains (``ag``).
    """
    try:
        from pansim import pretrained

        registered = pretrained.model_entry(model).get("system")
        if registered in SYSTEMS or registered in MOLECULES:
            return registered
    except Exception:  # noqa: BLE001 - not a registered name: fall back to the name
        pass
    tokens = Path(model).stem.lower().replace("_", "-").split("-")
    joined = f"-{'-'.join(tokens)}-"
    found = [name for name in (*SYSTEMS, *MOLECULES) if f"-{name}-" in joined]
    found = [n for n in found if not any(n != m and f"-{n}-" in f"-{m}-" for m in found)]
    return found[0] if len(found) == 1 else None


def same_model_file(model: Any, baseline: Any) -> bool:
    """True when two model names/paths resolve to byte-identical model files."""
    if not isinstance(model, (str, Path)) or not isinstance(baseline, (str, Path)):
        return False
    from pansim.pretrained import model_file
    from pansim.provenance import file_sha256

    try:
        return file_sha256(model_file(model)) == file_sha256(model_file(baseline))
    except (KeyError, OSError, ValueError):
        return False


def _load(name: str, device: str) -> tuple[Any, str]:
    try:
        return load_calculator(name, device=device), ""
    except Exception as err:  # noqa: BLE001 - reported in the report
        return None, f"model {name!r} could not be loaded: {type(err).__name__}: {err}"


def validate(
    model: str,
    system: str,
    *,
    out: str | Path,
    baseline: str | None = None,
    references: str | Path | None = None,
    quick: bool = False,
    device: str = "cpu",
    skip: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run every workflow for ``model`` and its baseline on ``system`` and write the report.

    Returns the report dictionary (also written to ``OUT/report.json``). Molecules
    (:data:`MOLECULES`) go to :func:`workflows.validate_molecule.validate_molecule`.
    """
    if system in MOLECULES:
        from workflows.validate_molecule import validate_molecule

        return validate_molecule(
            model,
            baseline,
            system,
            out,
            quick=quick,
            references=references,
            device=device,
            skip=skip,
        )
    spec = SYSTEMS[system]
    out = Path(out)
    dft, ref_message = load_reference(system, references)
    messages = [] if dft else [ref_message]
    if baseline is None:
        names, _, _ = registry_models()
        candidates = baseline_candidates(model, system)
        baseline = next((c for c in candidates if c in names), candidates[0])
    settings = QUICK if quick else FULL
    results: dict[str, dict[str, Any]] = {}
    same = same_model_file(model, baseline)
    if same:
        messages.append(
            f"{baseline!r} is the same model file as {model!r} (the name serves the baseline "
            "architecture; its card says why): evaluated once, shown in both columns"
        )
    for label, name in (("model", model), ("baseline", baseline)):
        if label == "baseline" and same:
            if "model" in results:
                results["baseline"] = results["model"]
            continue
        calc, error = _load(name, device)
        if calc is None:
            messages.append(error)
            continue
        results[label], msgs = evaluate(spec, calc, settings, out / label, dft, skip)
        messages += msgs
    n_prim = len(spec.primitive())
    if n_prim == 1:
        messages.append(
            f"{', '.join(OPTICAL_ROWS)} left out: the primitive cell of {system} has 1 atom "
            "(only the zero acoustic modes at Gamma)"
        )
    report = {
        "system": system,
        "model": model,
        "baseline": baseline,
        "baseline_is_model": same,
        "quick": quick,
        "reference_message": ref_message,
        "reference_label": reference_label(dft),
        "reference": dft,
        "messages": messages,
        "table": comparison_table(dft, results.get("baseline"), results.get("model"), n_prim),
        "results": results,
        "versions": versions(),
    }
    atomic_write_text(out / "report.json", json.dumps(to_jsonable(report), indent=2) + "\n")
    atomic_write_text(out / "report.md", markdown_report(report))
    return report


# --------------------------------------------------------------------------- CLI
def terminal_table(report: dict[str, Any]) -> str:
    """The comparison table of ``report`` as aligned plain text (for the terminal)."""
    ref = report.get("reference_label", "DFT")
    header = ["quantity", "unit", ref, "baseline", "model", "baseline err", "model err"]
    rows = [header]
    for r in report.get("table", []):
        values = [_fmt(r.get(k)) for k in ("dft", "baseline", "model")]
        errors = [_fmt_error(r.get(f"{k}_error"), r.get("dft")) for k in ("baseline", "model")]
        rows.append([r["quantity"].replace("DFT", ref), r["unit"], *values, *errors])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


NO_MODEL_HELP = """error: no MODEL given and no default model is registered ({reason}).
Give one explicitly, e.g.
    pansim validate path/to/model.pt --system si
    pansim validate emt --system ag          (ASE's EMT, a smoke test)
or list the registered models with `pansim models`."""


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim validate``."""
    parser.add_argument("model", nargs="?", help="model name or path (default: registry default)")
    parser.add_argument("--model", dest="model_opt", help=argparse.SUPPRESS)
    parser.add_argument(
        "--system", choices=sorted((*SYSTEMS, *MOLECULES)), help="default: from the model name"
    )
    parser.add_argument(
        "--baseline", help="baseline model (default: MODEL-baseline or SYSTEM-baseline)"
    )
    parser.add_argument("--references", help="DFT reference JSON file or directory")
    parser.add_argument(
        "--out", help="output folder; default: a new runs/validate-MODEL-<UTC time>/"
    )
    parser.add_argument(
        "--update-reference",
        action="store_true",
        help="maintainers: write into the committed results/validate/MODEL/ (the reference "
        "results of the README) instead of a new run folder",
    )
    parser.add_argument("--quick", action="store_true", help="small settings (CI)")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=sorted({*WORKFLOWS, *MOLECULE_WORKFLOW_NAMES})
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    add_runtime_arguments(parser, device=False, dtype=False)


def run(args: argparse.Namespace) -> int:
    """Run ``pansim validate``; exit 2 when there is no model or no system."""
    model = args.model or args.model_opt
    if model is None:
        _, model, reason = registry_models()
        if model is None:
            print(NO_MODEL_HELP.format(reason=reason), file=sys.stderr)
            return 2
    system = args.system or infer_system(model)
    if system is None:
        print(
            f"error: cannot tell the system from {model!r}; "
            f"pass --system {{{','.join((*SYSTEMS, *MOLECULES))}}}",
            file=sys.stderr,
        )
        return 2
    if args.out is not None:
        out = Path(args.out)
    elif args.update_reference:
        out = Path("results/validate") / model_label(model)
    else:
        out = default_out("validate", model)
    prepare_out(out)
    print(f"validating {model} on {system}: output folder {out}", flush=True)
    report = validate(
        model,
        system,
        out=out,
        baseline=args.baseline,
        references=args.references,
        quick=args.quick,
        device=args.device,
        skip=tuple(args.skip),
    )
    for message in report["messages"]:
        print(f"note: {message}")
    print()
    print(terminal_table(report))
    print(f"\nwrote {out / 'report.md'} and {out / 'report.json'}")
    return 0 if report["results"].get("model") else 1
